"""``sklearn-sfr study --scheduler``: the folds run on a dask.distributed cluster, same scores."""

import pandas as pd
import pytest

from sklearn_sfr.cli import main

pytest.importorskip("distributed", reason="dask.distributed: pip install sklearn-sfr[scale]")

SCORES = ["model", "split", "fold", "n_train", "n_test", "rmse", "mae", "r2", "bias", "nmad"]


def _study(cube, out, *extra):
    settings = '{"isolation_models": ["tree-pixels", "tree-photometry"]}'
    argv = ["study", "--cube", str(cube), "--out", str(out), "--quick", "--quiet"]
    argv += ["--studies", "isolation", "--cv", "2", "--settings", settings, *extra]
    assert main(argv) == 0
    return pd.read_csv(out / "isolation_scores.csv")


def test_study_on_a_local_cluster_scores_as_the_sequential_run(synthetic_cube, tmp_path):
    from distributed import LocalCluster

    sequential = _study(synthetic_cube, tmp_path / "sequential")
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Finished(SchedulerPlugin):
        def __init__(self):
            self.keys = []

        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory":
                self.keys.append(str(key))

    finished = Finished()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        cluster.scheduler.add_plugin(finished)
        on_dask = _study(
            synthetic_cube, tmp_path / "dask", "--scheduler", cluster.scheduler_address
        )
    # The folds really ran on the cluster's workers (joblib's dask tasks: "batch_of_...").
    assert any("fit_and_score" in key for key in finished.keys), finished.keys
    assert (sequential["split"] == "cv").sum() == 2 * 2 * 2  # 2 models x 2 folds (+ groups)
    pd.testing.assert_frame_equal(on_dask[SCORES], sequential[SCORES])


def test_unreachable_scheduler_is_one_error_line(synthetic_cube, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sklearn_sfr.cli._SCHEDULER_TIMEOUT", "2s")
    argv = ["study", "--cube", str(synthetic_cube), "--out", str(tmp_path / "r"), "--quiet"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the dask scheduler tcp://127.0.0.1:1")
    assert err.count("\n") == 1
