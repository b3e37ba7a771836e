"""Fit once, keep, apply: fit_model, load_model, predict_cube and the fit/predict commands.

The models are trained once per module on the 80-object synthetic cube (a tree and a tiny
network); each test then reads the folders they wrote.
"""

import argparse
import io
import json
import os
import pickle
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skops")

from sklearn_sfr.datasets import HiSSCube, load_hisscube, write_hisscube
from sklearn_sfr.datasets._fingerprint import cube_fingerprint
from sklearn_sfr.experiments import fit_model, load_model, predict_cube
from sklearn_sfr.experiments._persist import (
    _check_trusted,
    _pickle_globals,
    _sha256,
)
from sklearn_sfr.metrics import bias, mean_absolute_error, nmad, outlier_fraction, rmse
from sklearn_sfr.utils._outputs import MARKER, OutputError

from ..conftest import file_state, make_arrays

#: Small inputs: 8 px cutouts and 577-pixel spectra (zoom and level 3).
ZOOMS = {"image_zoom": 3, "spectrum_zoom": 3}
NEURAL = {"max_epochs": 2, "width": 8, "embed_dim": 16, "loss": "gaussian_nll"}
METRICS = ("rmse", "mae", "nmad", "bias", "outlier_fraction")


@pytest.fixture(scope="module")
def models(synthetic_cube, tmp_path_factory):
    """A tree and a tiny network, fitted and saved once."""
    folder = tmp_path_factory.mktemp("models")
    tree = fit_model(synthetic_cube, "tree-spectrum", folder / "tree", verbose=False, **ZOOMS)
    net = fit_model(
        synthetic_cube, "spectrum", folder / "net", params=NEURAL, verbose=False, **ZOOMS
    )
    return {"tree": tree, "net": net}


@pytest.fixture(scope="module")
def other_cube(tmp_path_factory):
    """Another cube (other objects, same layout)."""
    from sklearn_sfr.datasets import make_synthetic_cube

    path = tmp_path_factory.mktemp("other") / "other.h5"
    make_synthetic_cube(path, n_objects=30, random_state=1)
    return path


def _all_objects(cube, modalities):
    return load_hisscube(cube, flag=None, modalities=modalities, **ZOOMS)


# -- save, load, predict ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tree", "net"])
def test_saved_model_predicts_as_the_fitted_one(models, synthetic_cube, other_cube, kind):
    result = models[kind]
    assert sorted(p.name for p in result.path.iterdir()) == sorted(
        [MARKER, "model.skops", "model_card.json", "model_card.md"]
    )
    loaded = load_model(result.path)
    assert loaded.card == json.loads((result.path / "model_card.json").read_text())
    for cube in (synthetic_cube, other_cube):
        X = _all_objects(cube, ("spectrum",)).X
        np.testing.assert_array_equal(loaded.model.predict(X), result.model.predict(X))
        predictions = predict_cube(result.path, cube, verbose=False)
        np.testing.assert_array_equal(predictions["log_sfr_pred"], result.model.predict(X))
        assert len(predictions) == HiSSCube(cube).n_objects  # every object, flagged too
    if kind == "net":
        _, std = result.model.predict(X, return_std=True)
        np.testing.assert_array_equal(predictions["log_sfr_std"], std)
        assert (std > 0).all()
    else:
        assert "log_sfr_std" not in predictions


#: Run in a new interpreter: load the model folder, predict every object of a cube, save.
_FRESH = """
import sys
import numpy as np
from sklearn_sfr.experiments import predict_cube
predictions = predict_cube(sys.argv[1], sys.argv[2], verbose=False)
np.save(sys.argv[3], predictions.drop(columns=["PLATEID", "MJD", "FIBERID"]).to_numpy())
"""


@pytest.mark.parametrize("kind", ["tree", "net"])
def test_a_model_reloaded_in_a_fresh_process_predicts_identically(
    models, other_cube, tmp_path, kind
):
    # A new interpreter shares nothing with this one (no torch state, no cached modules):
    # what it predicts from the saved folder must be what the fitted model predicts here,
    # bit for bit, the std of the network included.
    import subprocess
    import sys

    result = models[kind]
    out = tmp_path / "fresh.npy"
    subprocess.run(
        [sys.executable, "-c", _FRESH, str(result.path), str(other_cube), str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    fresh = np.load(out)
    X = _all_objects(other_cube, ("spectrum",)).X
    columns = [np.arange(len(fresh)), result.model.predict(X)]
    if kind == "net":
        columns.append(result.model.predict(X, return_std=True)[1])
    here = np.column_stack(columns).astype(np.float64)
    assert fresh.shape == here.shape == (HiSSCube(other_cube).n_objects, len(columns))
    assert fresh.tobytes() == here.tobytes()


def test_the_card_holds_every_field(models, synthetic_cube):
    card = models["net"].card
    versions = card["versions"]
    for package in ("sklearn-sfr", "python", "numpy", "scipy", "scikit-learn", "skorch", "torch"):
        assert versions[package], package
    assert versions["skops"] is not None
    # The cube: path, content hash, selection.
    assert card["cube"]["path"] == str(synthetic_cube.resolve())
    assert card["cube"]["fingerprint"] == cube_fingerprint(synthetic_cube)
    selection = card["selection"]
    assert selection["flag"] == [0] and "FLAG == 0" in selection["flag_rule"]
    rows = selection["rows"]
    assert all(rows[k] for k in ("train", "validation", "test"))
    parts = [set(rows[k]) for k in ("train", "validation", "test")]
    assert sum(map(len, parts)) == len(set().union(*parts))  # disjoint
    flag0 = np.flatnonzero(HiSSCube(synthetic_cube).read_frame()["FLAG"].to_numpy() == 0)
    assert sorted(set().union(*parts)) == flag0.tolist() == sorted(flag0)
    assert selection["n_selected"] == len(flag0) and selection["n_objects"] == 80
    # What the model reads: what predict checks.
    inputs = card["inputs"]
    assert inputs["modalities"] == ["spectrum"]
    assert (inputs["spectrum_zoom"], inputs["spectrum_length"]) == (3, 577)
    tree_inputs = models["tree"].card["inputs"]
    assert tree_inputs["spectrum_length"] == 577
    # Parameters, history, scores.
    assert card["parameters"]["given"] == {f"model__{k}": v for k, v in NEURAL.items()}
    assert card["parameters"]["all"]["model__max_epochs"] == 2
    history = card["training"]["history"]["regression"]
    assert [e["epoch"] for e in history] == [1, 2]
    assert all(np.isfinite([e["train_loss"], e["valid_loss"]]).all() for e in history)
    assert models["tree"].card["training"]["history"] is None
    scores = card["scores"]
    assert scores["method"] in ("percentile", "BCa") and scores["confidence_level"] == 0.95
    assert "bootstrap" in scores["interval"]
    for part in ("validation", "test"):
        assert scores[part]["n"] == len(rows[part])
        for metric in METRICS:
            entry = scores[part][metric]
            assert entry["low"] <= entry["high"], (part, metric)
    assert card["model"]["predicts_std"] is True
    assert card["model"]["sha256"] == _sha256(models["net"].path / "model.skops")
    markdown = (models["net"].path / "model_card.md").read_text()
    for text in ("## Scores", "## Training history", "## Versions", "RMSE", "NMAD", "bias"):
        assert text in markdown


def test_the_card_scores_are_the_library_metrics(models):
    result = models["tree"]
    test = result.predictions[result.predictions["split"] == "test"]
    y, pred = test["label"].to_numpy(), test["log_sfr_pred"].to_numpy()
    expected = {
        "rmse": rmse(y, pred),
        "mae": mean_absolute_error(y, pred),
        "nmad": nmad(y, pred),
        "bias": bias(y, pred),
        "outlier_fraction": outlier_fraction(y, pred),
    }
    for metric in METRICS:
        assert result.card["scores"]["test"][metric]["value"] == pytest.approx(expected[metric])
    test_rows = sorted(test["cube_row"])
    assert test_rows == result.card["selection"]["rows"]["test"]


def test_predict_scores_only_unseen_objects(models, synthetic_cube, other_cube):
    card = models["tree"].card
    same = predict_cube(models["tree"].path, synthetic_cube, verbose=False)
    assert same.attrs["scored_rows"] == card["selection"]["rows"]["test"]
    assert same.attrs["scores"]["rmse"]["value"] == pytest.approx(
        card["scores"]["test"]["rmse"]["value"]
    )
    other = predict_cube(models["tree"].path, other_cube, verbose=False)
    flags = HiSSCube(other_cube).read_frame()["FLAG"].to_numpy()
    assert other.attrs["scored_rows"] == np.flatnonzero(flags == 0).tolist()


def test_fit_takes_the_best_params_of_tune(synthetic_cube, tmp_path):
    best = tmp_path / "best_params.json"
    best.write_text(
        json.dumps(
            {
                "study_name": "tree-spectrum-8px-level3",
                "estimator": "tree-spectrum",
                "best_trial": 4,
                "best_rmse": 0.5,
                "best_params": {"model__max_depth": 3, "rebin__factor": 4},
                "config": {"image_size": None, "spectrum_level": 3},
            }
        )
    )
    result = fit_model(synthetic_cube, "tree-spectrum", tmp_path / "m", params=best, verbose=False)
    params = result.model.get_params()
    assert (params["model__max_depth"], params["rebin__factor"]) == (3, 4)
    assert result.card["inputs"]["spectrum_zoom"] == 3  # the tuned level
    assert result.card["parameters"]["sources"][0]["study_name"] == "tree-spectrum-8px-level3"
    assert "Tuned by `sklearn-sfr tune`" in (tmp_path / "m" / "model_card.md").read_text()
    with pytest.raises(ValueError, match="tuned for 'tree-spectrum', not 'tree-lines'"):
        fit_model(synthetic_cube, "tree-lines", tmp_path / "m2", params=best, verbose=False)
    with pytest.raises(ValueError, match="has no parameter"):
        fit_model(synthetic_cube, "tree-lines", tmp_path / "m2", params={"lr": 1}, verbose=False)
    assert not (tmp_path / "m2").exists()


# -- refusals --------------------------------------------------------------------------------
def test_a_cube_with_other_images_is_refused(synthetic_cube, tmp_path, monkeypatch):
    model = fit_model(synthetic_cube, "tree-pixels", tmp_path / "m", verbose=False, **ZOOMS)
    # A cube whose zoom-3 cutouts are 16 px (a layout with other cutout sizes).
    monkeypatch.setattr(HiSSCube, "image_size", lambda self, zoom=0: 16)
    with pytest.raises(ValueError, match=r"images are 16x16 px at zoom 3, the model was trained"):
        predict_cube(model.path, synthetic_cube, tmp_path / "p.csv", verbose=False)
    monkeypatch.undo()
    # A cube whose bands come in another order (HiSSCube sets band_names when it opens).
    import sklearn_sfr.datasets._reader as reader

    monkeypatch.setattr(reader, "BAND_NAMES", ("g", "r", "u", "i", "z"))
    with pytest.raises(ValueError, match=r"bands are in the order g, r, u, i, z, the model"):
        predict_cube(model.path, synthetic_cube, verbose=False)
    assert not (tmp_path / "p.csv").exists()


def test_a_spectrum_model_refuses_other_spectra(models, synthetic_cube, monkeypatch):
    monkeypatch.setattr(HiSSCube, "wavelength", lambda self, level=0: np.linspace(4e3, 9e3, 600))
    with pytest.raises(ValueError, match=r"spectra have 600 pixels at level 3, the model was"):
        predict_cube(models["tree"].path, synthetic_cube, verbose=False)


def test_an_image_model_refuses_a_cube_without_images(synthetic_cube, tmp_path):
    model = fit_model(synthetic_cube, "tree-pixels", tmp_path / "m", verbose=False, **ZOOMS)
    arrays = make_arrays(n=6)
    spectra_only = write_hisscube(
        tmp_path / "spectra.h5",
        spectra=arrays["spectra"],
        spectrum_errors=arrays["spectrum_errors"],
        spectrum_table=arrays["spectrum_table"],
    )
    with pytest.raises(ValueError, match=r"holds no images, and the model reads 8x8 px images"):
        predict_cube(model.path, spectra_only, verbose=False)


def test_predict_never_replaces_a_file_that_is_not_ours(models, synthetic_cube, tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("PLATEID,MJD,my,own\n1,2,3,4\n")
    before = file_state(notes)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="notes.csv exists"):
            predict_cube(models["tree"].path, synthetic_cube, notes, overwrite=overwrite)
    assert file_state(notes) == before
    # Our own predictions: replaced with overwrite only.
    ours = tmp_path / "p.csv"
    predict_cube(models["tree"].path, synthetic_cube, ours, verbose=False)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        predict_cube(models["tree"].path, synthetic_cube, ours, verbose=False)
    predict_cube(models["net"].path, synthetic_cube, ours, overwrite=True, verbose=False)
    table = pd.read_csv(ours)
    assert list(table.columns) == [
        "PLATEID", "MJD", "FIBERID", "cube_row", "log_sfr_pred", "log_sfr_std",
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv", "p.csv"]  # no temporary


def test_an_output_equal_to_an_input_is_refused(models, synthetic_cube, tmp_path):
    cube = tmp_path / "cube.h5"
    shutil.copy(synthetic_cube, cube)
    before = file_state(cube)
    model = models["tree"].path
    with pytest.raises(OutputError, match="is the input"):
        predict_cube(model, cube, cube, overwrite=True)
    with pytest.raises(OutputError, match="lies inside the input"):
        predict_cube(model, cube, model / "predictions.csv", overwrite=True)
    with pytest.raises(OutputError, match="is the input"):
        fit_model(cube, "tree-spectrum", cube, overwrite=True, verbose=False)
    with pytest.raises(OutputError, match="contains the input"):
        fit_model(cube, "tree-spectrum", tmp_path, overwrite=True, verbose=False)
    assert file_state(cube) == before
    assert sorted(p.name for p in model.iterdir()) == sorted(
        [MARKER, "model.skops", "model_card.json", "model_card.md"]
    )


def test_fit_never_replaces_a_folder_that_is_not_ours(synthetic_cube, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("mine")
    with pytest.raises(FileExistsError, match="sklearn-sfr did not write"):
        fit_model(synthetic_cube, "tree-spectrum", project, overwrite=True, verbose=False)
    assert [p.name for p in project.iterdir()] == ["thesis.tex"]


def test_parquet_needs_pyarrow(models, synthetic_cube, tmp_path):
    out = tmp_path / "p.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ModuleNotFoundError, match="needs the package pyarrow"):
            predict_cube(models["tree"].path, synthetic_cube, out, verbose=False)
        assert not out.exists()
        return
    frame = predict_cube(models["tree"].path, synthetic_cube, out, verbose=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out), frame, check_like=True)
    predict_cube(models["tree"].path, synthetic_cube, out, overwrite=True, verbose=False)
    theirs = tmp_path / "theirs.parquet"
    pd.DataFrame({"a": [1.0]}).to_parquet(theirs)
    before = file_state(theirs)
    with pytest.raises(FileExistsError, match="was not written by sklearn-sfr"):
        predict_cube(models["tree"].path, synthetic_cube, theirs, overwrite=True)
    assert file_state(theirs) == before


# -- loading only what is trusted ------------------------------------------------------------
def _copy_model(source, target, blob):
    """A copy of a model folder whose model.skops is ``blob`` (its card updated to match)."""
    shutil.copytree(source, target)
    (target / "model.skops").write_bytes(blob)
    card = json.loads((target / "model_card.json").read_text())
    card["model"]["sha256"] = _sha256(target / "model.skops")
    (target / "model_card.json").write_text(json.dumps(card))
    return target


def test_a_model_with_types_outside_the_allow_list_is_not_loaded(models, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    blob = sio.dumps(FunctionTransformer(func=os.getcwd))
    folder = _copy_model(models["tree"].path, tmp_path / "m", blob)
    with pytest.raises(ValueError, match=r"outside sklearn-sfr's allow-list.*posix\.getcwd"):
        load_model(folder)


class _Reduced:
    """Unpickled, it would call os.getcwd (harmless, but a function no model holds)."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_a_network_pickle_naming_other_globals_is_not_loaded(models, tmp_path):
    # A skorch net's module is a pickle inside the skops file, which skorch unpickles without
    # restriction: its globals are checked before anything is loaded.
    source = models["net"].path / "model.skops"
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(buffer, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith(".bin"):
                data = pickle.dumps(_Reduced(), protocol=0)
            new.writestr(item, data)
    folder = _copy_model(models["net"].path, tmp_path / "m", buffer.getvalue())
    _, refused = _check_trusted(folder / "model.skops")
    assert refused == ["posix.getcwd"]
    with pytest.raises(ValueError, match=r"allow-list.*posix\.getcwd"):
        load_model(folder)


def test_the_pickle_scan_follows_memo_and_fails_safe():
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps([_Reduced(), _Reduced()], protocol=protocol)
        assert _pickle_globals(data) == {"posix.getcwd"}
        assert _pickle_globals(data[:-1] + b"\xff garbage") == {"posix.getcwd"}
    assert _pickle_globals(b"not a pickle") == set()


def test_the_saved_models_need_only_allow_listed_types(models):
    for result in models.values():
        trusted, refused = _check_trusted(result.path / "model.skops")
        assert refused == []
        assert trusted == result.card["model"]["trusted_types"]
        assert not [t for t in trusted if t.startswith("builtins.")]


def test_a_changed_model_file_or_foreign_folder_is_refused(models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(models["tree"].path, folder)
    with open(folder / "model.skops", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        load_model(folder)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a model folder written by sklearn-sfr fit"):
        load_model(tmp_path / "plain")


# -- the commands ----------------------------------------------------------------------------
def _parser():
    from sklearn_sfr._cli_models import add_parsers

    parser = argparse.ArgumentParser(prog="sklearn-sfr")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    args.func(args)


def test_cli_fit_and_predict_round_trip(synthetic_cube, tmp_path, capsys):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"model__width": 8, "model__embed_dim": 16}))
    model, out = tmp_path / "model", tmp_path / "predictions.csv"
    _run(
        ["fit", "--cube", str(synthetic_cube), "--estimator", "spectrum", "--out", str(model),
         "--params", str(params), "--max-epochs", "1", "--spectrum-zoom", "3", "--seed", "1"]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert "training 'spectrum' on 38, validating on 13, testing on 13 (seed 1)" in text
    assert "test (13 objects): RMSE" in text and f"wrote {model}" in text
    card = json.loads((model / "model_card.json").read_text())
    assert card["parameters"]["given"] == {
        "model__width": 8, "model__embed_dim": 16, "model__max_epochs": 1,
    }  # fmt: skip
    assert card["parameters"]["sources"] == [{"file": str(params)}]
    _run(["predict", "--model", str(model), "--cube", str(synthetic_cube), "--out", str(out)])
    text = capsys.readouterr().out
    assert "predicted the log SFR of 80 objects" in text
    assert "13 test objects" in text and "RMSE" in text and "NMAD" in text
    table = pd.read_csv(out)
    assert len(table) == 80 and table["log_sfr_pred"].notna().all()
    loaded = load_model(model).model
    X = _all_objects(synthetic_cube, ("spectrum",)).X
    np.testing.assert_allclose(table["log_sfr_pred"], loaded.predict(X), rtol=1e-5)


def test_cli_errors_are_one_clear_line(synthetic_cube, tmp_path):
    with pytest.raises(ValueError, match="--max-epochs applies to the neural models"):
        _run(["fit", "--cube", str(synthetic_cube), "--estimator", "tree-lines",
              "--out", str(tmp_path / "m"), "--max-epochs", "3"])  # fmt: skip
    with pytest.raises(FileNotFoundError, match="cube not found"):
        _run(["fit", "--cube", str(tmp_path / "no.h5"), "--estimator", "tree-lines",
              "--out", str(tmp_path / "m")])  # fmt: skip
    with pytest.raises(SystemExit):
        _parser().parse_args(["fit", "--cube", "c.h5", "--estimator", "forest"])
    assert not (tmp_path / "m").exists()


def test_objects_without_a_label_are_left_out_and_counted(tmp_path):
    arrays = make_arrays(n=30)
    arrays["spectrum_table"].loc[[0, 1], "AVG"] = np.nan  # two FLAG=0 objects unlabelled
    cube = write_hisscube(tmp_path / "c.h5", **arrays)
    result = fit_model(cube, "tree-spectrum", tmp_path / "m", verbose=False, **ZOOMS)
    selection = result.card["selection"]
    assert (selection["n_objects"], selection["n_selected"], selection["n_unlabelled"]) == (
        30, 21, 2,
    )  # fmt: skip
    used = sorted(k for rows in selection["rows"].values() for k in rows)
    flag0 = [k for k in range(30) if k % 4 != 3]
    assert used == [k for k in flag0 if k not in (0, 1)]
    predictions = predict_cube(result.path, cube, verbose=False)
    assert len(predictions) == 30 and predictions["log_sfr_pred"].notna().all()
    assert "2 without a label left out" in (tmp_path / "m" / "model_card.md").read_text()


def test_scores_of_a_handful_of_objects_carry_no_interval():
    """A bootstrap of a few objects resamples the same values: no interval is claimed."""
    from sklearn_sfr.experiments._persist import _MIN_INTERVAL_OBJECTS, _score_predictions

    rng = np.random.default_rng(0)
    few = _score_predictions(rng.normal(size=2), rng.normal(size=2))
    assert few["rmse"]["low"] is None and few["nmad"]["high"] is None
    assert np.isfinite(few["rmse"]["value"])
    n = _MIN_INTERVAL_OBJECTS
    enough = _score_predictions(rng.normal(size=n), rng.normal(size=n), n_resamples=200)
    assert enough["rmse"]["low"] <= enough["rmse"]["value"] <= enough["rmse"]["high"]
