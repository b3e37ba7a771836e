"""``sklearn-sfr tune``: a study on a cube, continued by a second run, with its output files."""

import json

import pandas as pd
import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.utils._outputs import MARKER
from tests.conftest import file_state


def tune(cube, out, *extra):
    return main(
        [
            "tune",
            "--cube",
            str(cube),
            "--estimator",
            "tree-spectrum",
            "--spectrum-zoom",
            "3",
            "--cv",
            "2",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def test_tune_writes_results_and_continues_the_study(synthetic_cube, tmp_path, capsys):
    before = file_state(synthetic_cube)
    out = tmp_path / "tuned"
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    assert tune(synthetic_cube, out, "--n-trials", "3", "--storage", db) == 0
    printed = capsys.readouterr().out
    assert "study 'tree-spectrum-16px-level3'" in printed and "3 trials" in printed
    assert "CV RMSE" in printed and "noise floor" in printed and "max_depth" in printed
    best = json.loads((out / "best_params.json").read_text())
    assert best["estimator"] == "tree-spectrum" and best["n_trials"] == 3
    assert set(best["best_params"]) == {
        "model__max_depth",
        "model__min_samples_leaf",
        "rebin__factor",
    }
    assert best["best_rmse"] > 0
    assert len(pd.read_csv(out / "trials.csv")) == 3

    # The same study name and storage go on: 2 more trials, 5 in all.
    assert tune(synthetic_cube, out, "--n-trials", "2", "--storage", db) == 0
    assert "5 trials (2 this run" in capsys.readouterr().out
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["number"]) == [0, 1, 2, 3, 4]
    assert json.loads((out / "best_params.json").read_text())["best_rmse"] <= best["best_rmse"]
    # Only the final files: no temporary leftovers, the cube untouched.
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "best_params.json", "trials.csv"]
    assert file_state(synthetic_cube) == before


def test_default_storage_is_in_the_out_folder(synthetic_cube, tmp_path, capsys):
    out = tmp_path / "tuned"
    assert tune(synthetic_cube, out, "--n-trials", "1", "--study-name", "mine") == 0
    assert (out / "optuna.db").exists()
    assert "study 'mine'" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (["--cv", "3"], "another configuration (cv 2 -> 3)"),
        (["--spectrum-zoom", "2"], "spectrum_level 3 -> 2"),
    ],
)
def test_refuses_to_continue_a_study_of_another_configuration(
    synthetic_cube, tmp_path, capsys, change, message
):
    db = str(tmp_path / "s.db")  # a plain path is a SQLite file
    args = ["--n-trials", "1", "--storage", db, "--study-name", "s"]
    assert tune(synthetic_cube, tmp_path, *args) == 0
    capsys.readouterr()
    assert tune(synthetic_cube, tmp_path, *args, *change) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_input_is_one_line(tmp_path, capsys):
    assert tune(tmp_path / "missing.h5", tmp_path, "--n-trials", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.h5" in err
    with pytest.raises(SystemExit):  # argparse: unknown model name
        main(["tune", "--cube", "c.h5", "--estimator", "forest", "--n-trials", "1"])


@pytest.mark.parametrize("beat, expected", [("5", 5), ("0", None)])
def test_tune_heartbeat_option(synthetic_cube, tmp_path, monkeypatch, beat, expected):
    from sklearn_sfr.model_selection import OptunaSearchCV

    seen = {}
    original = OptunaSearchCV.fit

    def spy(self, *args, **kwargs):
        seen["heartbeat"] = self.heartbeat_interval
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OptunaSearchCV, "fit", spy)
    assert tune(synthetic_cube, tmp_path, "--n-trials", "1", "--heartbeat", beat) in (0, None)
    assert seen["heartbeat"] == expected


def test_tune_refuses_a_negative_heartbeat(synthetic_cube, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tune(synthetic_cube, tmp_path, "--n-trials", "1", "--heartbeat", "-1")
    assert "--heartbeat" in capsys.readouterr().err


def test_the_old_option_names_still_work_with_a_warning(synthetic_cube, tmp_path, capsys):
    # Earlier releases spelled the zooms --image-size PX and --spectrum-level L.
    args = ["--n-trials", "1", "--spectrum-level", "3", "--study-name", "old"]
    assert tune(synthetic_cube, tmp_path, *args) == 0
    captured = capsys.readouterr()
    assert "warning: --spectrum-level is deprecated" in captured.err
    assert "use --spectrum-zoom 3" in captured.err
