"""Attack catalogue, files never damaged: inputs are left as they were, and a process killed
(SIGKILL) while writing leaves no partial file under the final name.

Outputs are written to a temporary name in the same folder and renamed at the end: the cube
writer (:class:`~sklearn_sfr.datasets.HiSSCubeWriter`), the report folder of ``run_study`` and
every CSV, JSON and figure (:mod:`sklearn_sfr.utils._io`).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import HiSSCubeWriter, make_synthetic_cube
from sklearn_sfr.utils._io import write_csv_atomic
from tests.conftest import file_state

REPO = Path(__file__).parents[2]


def test_input_cube_unchanged_by_every_command(synthetic_cube, tmp_path, capsys):
    before = file_state(synthetic_cube)
    cube = str(synthetic_cube)
    assert main(["info", cube]) == 0
    assert main(["tune", "--cube", cube, "--estimator", "tree-spectrum", "--n-trials", "1",
                 "--cv", "2", "--out", str(tmp_path / "t"), "--quiet"]) == 0  # fmt: skip
    assert main(["study", "--cube", cube, "--out", str(tmp_path / "s"), "--quick",
                 "--studies", "baseline", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert file_state(synthetic_cube) == before


@pytest.mark.slow
def test_input_cube_unchanged_by_the_demo(synthetic_cube, tmp_path):
    before = file_state(synthetic_cube)
    assert main(["demo", "--cube", str(synthetic_cube), "--out", str(tmp_path / "d")]) == 0
    assert file_state(synthetic_cube) == before


def _kill_when(args, ready, timeout=120):
    """Start the CLI with ``args``, SIGKILL it once ``ready()`` is true; return the exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_sfr.cli", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, "the process finished before it could be killed"
            assert time.monotonic() < deadline, "the process never reached the kill point"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return proc.returncode


def _temporaries(folder, name):
    return [p for p in folder.iterdir() if p.name.startswith(f".{name}.")]


def test_make_cube_killed_mid_write_leaves_no_cube(tmp_path):
    out = tmp_path / "cube.h5"

    def writing():  # the temporary file exists and holds data
        tmp = _temporaries(tmp_path, out.name)
        return bool(tmp) and tmp[0].stat().st_size > 1_000_000

    args = ["make-cube", out, "--n-objects", "400", "--quiet"]
    assert _kill_when(args, writing) == -signal.SIGKILL
    assert not out.exists()  # only the temporary was written
    assert _temporaries(tmp_path, out.name)
    # The name is free: a new run (no --overwrite needed) writes the cube, and removes what
    # the killed writer left.
    assert main(["make-cube", str(out), "--n-objects", "8", "--quiet"]) == 0
    assert out.exists()
    assert not _temporaries(tmp_path, out.name)


@pytest.mark.slow
def test_study_killed_mid_run_publishes_no_report(synthetic_cube, tmp_path):
    before = file_state(synthetic_cube)
    out = tmp_path / "report"
    args = ["study", "--cube", synthetic_cube, "--out", out, "--quick", "--quiet",
            "--studies", "baseline", "modality"]  # fmt: skip

    def started():  # the temporary report folder exists and has files in it
        tmp = _temporaries(tmp_path, out.name)
        return bool(tmp) and any(tmp[0].iterdir())

    assert _kill_when(args, started) == -signal.SIGKILL
    assert not out.exists()
    assert file_state(synthetic_cube) == before
    # The next study removes the killed one's temporary folder.
    assert main([str(a) for a in args[:-1]]) == 0  # baseline only: quick
    assert out.is_dir() and not _temporaries(tmp_path, out.name)


def test_a_failing_writer_keeps_the_previous_file(tmp_path):
    path = tmp_path / "scores.csv"
    write_csv_atomic(pd.DataFrame({"a": [1, 2]}), path, index=False)
    before = file_state(path)

    class Boom(pd.DataFrame):
        def to_csv(self, fh, **kw):
            fh.write("a\n1\n")  # half the table, then the crash
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_csv_atomic(Boom({"a": [3]}), path, index=False)
    assert file_state(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_cube_writer_interrupted_leaves_nothing(tmp_path):
    path = tmp_path / "partial.h5"
    with pytest.raises(RuntimeError, match="stop"), HiSSCubeWriter(path, n_targets=2) as writer:
        writer.attrs["note"] = "never finished"
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    # A cube that exists is not replaced unless asked, and survives a refused overwrite.
    make_synthetic_cube(path, n_objects=6, random_state=0)
    before = file_state(path)
    with pytest.raises(FileExistsError, match="partial.h5 exists"):
        make_synthetic_cube(path, n_objects=6, random_state=1)
    assert file_state(path) == before


def test_outputs_get_the_usual_permissions(tmp_path):
    # Temporary names are created with mode 0o666 and the umask, not mkstemp's private 0o600.
    path = make_synthetic_cube(tmp_path / "c.h5", n_objects=6, random_state=0)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    csv = write_csv_atomic(pd.DataFrame({"x": np.arange(2)}), tmp_path / "x.csv")
    assert os.stat(csv).st_mode & 0o777 == 0o666 & ~umask
