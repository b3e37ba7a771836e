"""Distributed tuning: two ``sklearn-sfr tune`` workers share one study on a real PostgreSQL.

A throwaway server is started on localhost (``initdb`` + ``pg_ctl``, a free port, a data folder
removed afterwards). PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (Debian's package creates it) or ``nobody``. Skipped, with the reason, when
the binaries, the driver or a usable user are missing or the server does not start.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
N_TRIALS = 3  # per worker


def _pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    # Debian installs the server outside PATH.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user():
    """The user to run the server as: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _run_as(user, args, **kwargs):
    if user is not None:
        args = ["runuser", "-u", user.pw_name, "--", *args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install sklearn-sfr[scale]")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt install postgresql"
        )
    user = _server_user()
    if user is not None and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    # Not pytest's tmp_path: as root that folder is closed to the server's user.
    base = Path(tempfile.mkdtemp(prefix="sfr-pg-"))
    data = base / "data"
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    port = _free_port()
    try:
        res = _run_as(user, [initdb, "-D", str(data), "-U", "sfr", "--auth=trust", "-E", "UTF8"])
        if res.returncode != 0:
            pytest.skip(f"initdb failed: {res.stderr.strip().splitlines()[-1:]}")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
        res = _run_as(
            user, [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        )
        if res.returncode != 0:
            log = (base / "log").read_text() if (base / "log").exists() else res.stderr
            pytest.skip(f"the PostgreSQL server did not start: {log.strip()[-300:]}")
        yield f"postgresql://sfr@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            _run_as(user, [pg_ctl, "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def test_two_tune_workers_share_one_study(postgres_url, synthetic_cube, tmp_path):
    import optuna

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "sklearn_sfr.cli", "tune",
        "--cube", str(synthetic_cube), "--estimator", "tree-spectrum",
        "--spectrum-zoom", "3", "--cv", "2", "--n-trials", str(N_TRIALS),
        "--storage", postgres_url, "--study-name", "shared", "--quiet",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            [*command, "--out", str(tmp_path / f"worker{k}")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        assert "study 'shared'" in out
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    # Every trial of both workers is in the study exactly once, finished, with its value.
    assert len(trials) == 2 * N_TRIALS
    assert sorted(t.number for t in trials) == list(range(2 * N_TRIALS))
    assert len({t._trial_id for t in trials}) == 2 * N_TRIALS
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(len(t.user_attrs["split_test_scores"]) == 2 for t in trials)
    # And the database itself holds one row per trial.
    import psycopg

    with psycopg.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT number) FROM trials")
        assert cur.fetchone() == (2 * N_TRIALS, 2 * N_TRIALS)
