"""Attack catalogue, resumability: ``sklearn-sfr tune`` killed with SIGKILL and restarted
continues the same study, with no lost or duplicated trial.

The Optuna side (a killed trial is marked FAIL after two missed heartbeats and its parameters
are run again) is tested with a 1-s heartbeat in
``tests/model_selection/test_search.py::test_resume_after_sigkill_loses_no_trial``; here the
real command is killed and restarted at once, well inside its 60-s heartbeat, so the killed
trial is still RUNNING: it must stay recorded, and the restart must add its own trials after
it.
"""

import json

import optuna
from optuna.trial import TrialState

from sklearn_sfr.cli import main
from sklearn_sfr.model_selection import storage_url
from tests.conftest import file_state
from tests.robustness.test_outputs import _kill_when


def _trials(db, name):
    try:
        study = optuna.load_study(study_name=name, storage=storage_url(db))
    except Exception:  # not created yet (or the database is being created)
        return []
    return study.get_trials(deepcopy=False)


def test_tune_killed_and_restarted_continues_the_study(synthetic_cube, tmp_path, capsys):
    before_cube = file_state(synthetic_cube)
    db, name, out = tmp_path / "s.db", "killed", tmp_path / "out"
    args = ["tune", "--cube", synthetic_cube, "--estimator", "tree-spectrum", "--cv", "2",
            "--storage", db, "--study-name", name, "--out", out, "--quiet"]  # fmt: skip

    def some_done():
        return sum(t.state == TrialState.COMPLETE for t in _trials(db, name)) >= 3

    _kill_when([*args, "--n-trials", "500"], some_done)
    killed = _trials(db, name)
    done = {t.number: (t.params, t.value) for t in killed if t.state == TrialState.COMPLETE}
    running = [t.number for t in killed if t.state == TrialState.RUNNING]
    assert len(done) >= 3 and len(running) <= 1
    assert not (out / "best_params.json").exists()  # never written by the killed run

    # The restart: the same command, 2 more trials.
    assert main([*map(str, args), "--n-trials", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(killed) + 2} trials (2 this run" in printed
    after = _trials(db, name)
    assert [t.number for t in after] == list(range(len(killed) + 2))  # no gap, no duplicate
    # Nothing completed before the kill was lost or changed; the new trials completed.
    assert {n: (after[n].params, after[n].value) for n in done} == done
    assert all(t.state == TrialState.COMPLETE for t in after[len(killed) :])
    # The trial in flight at the kill is still recorded (Optuna fails and retries it once its
    # heartbeat is stale, see the module docstring).
    assert [t.number for t in after if t.state == TrialState.RUNNING] == running
    summary = json.loads((out / "best_params.json").read_text())
    assert summary["n_trials"] == len(after) and summary["study_name"] == name
    assert file_state(synthetic_cube) == before_cube
