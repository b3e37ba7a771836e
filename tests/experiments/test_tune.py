"""``tune``: the library function behind ``sklearn-sfr tune``."""

import json

import pandas as pd
import pytest

from sklearn_sfr.experiments import tune
from sklearn_sfr.model_selection import OptunaSearchCV
from sklearn_sfr.utils._outputs import MARKER, read_marker
from tests.conftest import file_state

FAST = {"estimator": "tree-spectrum", "spectrum_zoom": 3, "cv": 2, "verbose": 0}


def run(cube, out, **kwargs):
    options = {**FAST, **kwargs}
    return tune(cube, options.pop("estimator"), out=out, **options)


def test_tune_returns_the_search_and_writes_its_results(synthetic_cube, tmp_path):
    before = file_state(synthetic_cube)
    out = tmp_path / "tuned"
    result = run(synthetic_cube, out, n_trials=2)
    assert isinstance(result.search, OptunaSearchCV) and result.search.n_trials_ == 2
    assert result.study_name == "tree-spectrum-16px-level3"
    assert result.out == out and result.n_earlier_trials == 0 and result.elapsed >= 0
    assert result.n_objects == result.summary["config"]["n_objects"] > 0
    assert result.noise_floor is not None and result.storage.endswith("optuna.db")
    # best_params.json is the summary; trials.csv the trials.
    assert result.best_params_path == out / "best_params.json"
    assert json.loads(result.best_params_path.read_text()) == result.summary
    summary = result.summary
    assert summary["best_params"] == result.search.best_params_
    assert summary["best_rmse"] == -result.search.best_score_ > 0
    assert summary["n_trials"] == 2 and summary["states"] == {"COMPLETE": 2}
    # The keys earlier releases stored, so that their studies continue.
    assert summary["config"] == {
        "estimator": "tree-spectrum",
        "image_size": None,
        "spectrum_level": 3,
        "cv": 2,
        "seed": 0,
        "n_objects": result.n_objects,
        "scoring": "neg_root_mean_squared_error",
    }
    trials = pd.read_csv(result.trials_path)
    assert list(trials["number"]) == list(result.trials["number"]) == [0, 1]
    # Our folder: every file is in the manifest, the cube is untouched.
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "best_params.json",
        "optuna.db",
        "trials.csv",
    ]
    assert read_marker(out)["files"] == ["best_params.json", "optuna.db", "trials.csv"]
    assert file_state(synthetic_cube) == before


def test_tune_prints_its_study_when_verbose(synthetic_cube, tmp_path, capsys):
    run(synthetic_cube, tmp_path / "t", n_trials=1, study_name="loud", verbose=1)
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1  # one line, before the search; the rest is the caller's
    assert "FLAG=0 objects from" in printed and "tuning 'tree-spectrum' with 2-fold CV" in printed
    assert "study 'loud'" in printed and printed.endswith("(0 earlier trials)\n")


def test_tune_continues_the_study(synthetic_cube, tmp_path):
    db = tmp_path / "studies.db"
    first = run(synthetic_cube, tmp_path / "a", n_trials=2, storage=db, study_name="s")
    # Another output folder, the same storage and study name: the study goes on.
    second = run(synthetic_cube, tmp_path / "b", n_trials=1, storage=db, study_name="s")
    assert second.n_earlier_trials == 2 and second.search.n_trials_ == 1
    assert list(second.trials["number"]) == [0, 1, 2]
    assert second.summary["n_trials"] == 3
    assert second.summary["best_rmse"] <= first.summary["best_rmse"]
    assert second.storage == f"sqlite:///{db}"
    # A storage outside the folder is not ours to list.
    assert "studies.db" not in read_marker(tmp_path / "b")["files"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cv": 3}, "another configuration (cv 2 -> 3)"),
        ({"spectrum_zoom": 2}, "spectrum_level 3 -> 2"),
        ({"random_state": 1}, "seed 0 -> 1"),
    ],
)
def test_tune_refuses_another_configuration(synthetic_cube, tmp_path, change, message):
    import optuna

    db = tmp_path / "s.db"
    out = tmp_path / "t"
    run(synthetic_cube, out, n_trials=1, storage=db, study_name="s")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="study_name") as error:
        run(synthetic_cube, out, n_trials=1, storage=db, study_name="s", **change)
    assert message in str(error.value)
    # Nothing changed: no trial was added, the results are those of the first call.
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert len(study.trials) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_tune_with_an_unusable_storage_leaves_no_folder(synthetic_cube, tmp_path):
    out = tmp_path / "t"
    with pytest.raises(ValueError, match="Optuna storage"):
        run(synthetic_cube, out, n_trials=1, storage="postgresql://nobody@127.0.0.1:1/none")
    assert not out.exists()


def test_tune_with_another_configuration_leaves_no_new_folder(synthetic_cube, tmp_path):
    db = tmp_path / "s.db"
    run(synthetic_cube, tmp_path / "a", n_trials=1, storage=db, study_name="s")
    with pytest.raises(ValueError, match="another configuration"):
        run(synthetic_cube, tmp_path / "b", n_trials=1, storage=db, study_name="s", cv=3)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"estimator": "forest"}, ValueError, "unknown model name 'forest'"),
        ({"estimator": None}, TypeError, "estimator must be a model name"),
        ({"n_trials": 0}, ValueError, "n_trials must be an integer of at least 1"),
        ({"cv": 1}, ValueError, "cv must be an integer of at least 2"),
        ({"image_zoom": 4}, ValueError, "image_zoom must be one of"),
        ({"spectrum_zoom": 1.5}, ValueError, "spectrum_zoom must be one of"),
        ({"random_state": -1}, ValueError, "random_state must be an integer"),
        ({"heartbeat_interval": 0}, ValueError, "heartbeat_interval must be"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number"),
        ({"storage": 3}, TypeError, "storage must be"),
        ({"cv": 50}, ValueError, "too few for 50-fold CV"),
    ],
)
def test_tune_refuses_bad_arguments_before_any_work(
    synthetic_cube, tmp_path, kwargs, error, match
):
    out = tmp_path / "t"
    with pytest.raises(error, match=match):
        run(synthetic_cube, out, **{"n_trials": 1, **kwargs})
    assert not out.exists()


def test_tune_refuses_a_missing_cube_and_an_overlapping_storage(synthetic_cube, tmp_path):
    out = tmp_path / "t"
    with pytest.raises(FileNotFoundError, match="cube not found"):
        run(tmp_path / "missing.h5", out, n_trials=1)
    before = file_state(synthetic_cube)
    with pytest.raises(ValueError, match=r"storage \(--storage\)"):
        run(synthetic_cube, out, n_trials=1, storage=synthetic_cube)
    assert not out.exists() and file_state(synthetic_cube) == before


def test_tune_never_replaces_a_users_file(synthetic_cube, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        run(synthetic_cube, folder, n_trials=1)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
