"""Attack catalogue, outputs: no command ever deletes or replaces a file the user owns.

Every command that writes (``make-cube``, ``demo``, ``study``, ``report``, ``scene``, ``tune``,
``ingest``) follows one rule (:mod:`sklearn_sfr.utils._outputs`): a folder is replaced only if
our marker says we wrote it and it holds nothing else, and only with ``--overwrite``; a file
only if it is one of ours; an output that equals, contains or lies inside an input is refused
before any work; an output that cannot be written is refused before the work; a full disk or
a signal leaves no temporary behind. Each test checks the user's files byte for byte.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import make_synthetic_cube
from sklearn_sfr.utils._outputs import MARKER, OutputFolder
from tests.robustness._signals import default_signals

REPO = Path(__file__).parents[2]
SPECTRA = REPO.parent / "shared" / "data" / "sdss" / "spectra"


def tree_state(root):
    """Every file under ``root`` (hidden ones included) with the SHA-256 of its bytes."""
    root = Path(root)
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def user_project(tmp_path):
    """A folder of someone's work that happens to hold a config.json."""
    project = tmp_path / "myproject"
    (project / "src").mkdir(parents=True)
    (project / "config.json").write_text('{"mine": true}')
    (project / "thesis.tex").write_text("\\documentclass{article}")
    (project / "src" / "main.py").write_text("print('hello')")
    return project


def earlier_report(out, names=("report.md",)):
    """A folder this library wrote, as a finished run leaves it."""
    with OutputFolder(out, kind="study") as tmp:
        for name in names:
            (tmp / name).write_text("an earlier report")
    return out


# -- folders holding a user's files are never replaced ------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_demo_refuses_a_folder_holding_a_config_json(
    synthetic_cube, user_project, capsys, overwrite
):
    before = tree_state(user_project)
    args = ["demo", "--cube", str(synthetic_cube), "--out", str(user_project), *overwrite]
    assert main(args) == 2
    one_error(capsys, "myproject", "did not write")
    assert tree_state(user_project) == before


@pytest.mark.parametrize("command", ["demo", "study"])
def test_a_cube_inside_the_output_folder_is_refused(synthetic_cube, tmp_path, capsys, command):
    rep = earlier_report(tmp_path / "rep")
    cube = rep / "mycube.h5"
    cube.write_bytes(synthetic_cube.read_bytes())
    before = tree_state(rep)
    assert main([command, "--cube", str(cube), "--out", str(rep), "--overwrite", "--quick"][
        : 6 if command == "demo" else 7
    ]) == 2  # fmt: skip
    one_error(capsys, "contains the input")
    assert tree_state(rep) == before


def test_study_in_the_cubes_own_project_folder_is_refused(synthetic_cube, tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "cube.h5").write_bytes(synthetic_cube.read_bytes())
    (proj / "notes.txt").write_text("my notes")
    before = tree_state(proj)
    args = ["study", "--cube", str(proj / "cube.h5"), "--out", str(proj), "--overwrite",
            "--quick", "--studies", "baseline"]  # fmt: skip
    assert main(args) == 2
    one_error(capsys, "contains the input")
    assert tree_state(proj) == before


def test_study_onto_its_own_cube_is_refused(synthetic_cube, tmp_path, capsys):
    same = tmp_path / "same.h5"
    same.write_bytes(synthetic_cube.read_bytes())
    before = tree_state(tmp_path)
    args = ["study", "--cube", str(same), "--out", str(same), "--overwrite", "--quick"]
    assert main(args) == 2
    one_error(capsys, "is the input")
    assert tree_state(tmp_path) == before  # no hidden .old copy either
    assert main(args) == 2  # and a second run deletes nothing
    assert tree_state(tmp_path) == before


def test_a_file_a_user_added_to_our_folder_is_never_deleted(synthetic_cube, tmp_path, capsys):
    out = earlier_report(tmp_path / "report")
    (out / "notes.txt").write_text("mine")
    before = tree_state(out)
    args = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--overwrite", "--quick",
            "--studies", "baseline", "--quiet"]  # fmt: skip
    assert main(args) == 2
    one_error(capsys, "notes.txt")
    assert tree_state(out) == before


def test_overwrite_is_needed_to_replace_our_own_folder(synthetic_cube, tmp_path, capsys):
    out = earlier_report(tmp_path / "report")
    before = tree_state(out)
    args = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--quick",
            "--studies", "baseline", "--quiet"]  # fmt: skip
    assert main(args) == 2
    one_error(capsys, "--overwrite")
    assert tree_state(out) == before
    assert main([*args, "--overwrite"]) == 0
    assert "report.md" in tree_state(out) and MARKER in tree_state(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary left


def test_a_marker_we_did_not_write_does_not_count(tmp_path, capsys, synthetic_cube):
    out = tmp_path / "fake"
    out.mkdir()
    (out / MARKER).write_text('{"hello": 1}')  # not our format
    (out / "data.txt").write_text("keep")
    before = tree_state(out)
    assert main(["study", "--cube", str(synthetic_cube), "--out", str(out), "--overwrite",
                 "--quick"]) == 2  # fmt: skip
    one_error(capsys, "did not write")
    assert tree_state(out) == before


def test_scene_refuses_a_folder_of_someone_elses_files(tmp_path, user_project, capsys):
    from sklearn_sfr.datasets import make_synthetic_scene

    data = make_synthetic_scene(tmp_path / "scene", n_per_class=2, image_size=8)
    before = tree_state(user_project), tree_state(data)
    assert main(["scene", "--data", str(data), "--out", str(user_project), "--quick",
                 "--overwrite"]) == 2  # fmt: skip
    one_error(capsys, "did not write")
    assert main(["scene", "--data", str(data), "--out", str(data / "report"), "--quick"]) == 2
    one_error(capsys, "lies inside the input")
    assert (tree_state(user_project), tree_state(data)) == before


def test_tune_refuses_someone_elses_folder_and_its_cube_as_storage(
    synthetic_cube, user_project, tmp_path, capsys
):
    before = tree_state(user_project), tree_state(synthetic_cube)
    base = ["tune", "--cube", str(synthetic_cube), "--estimator", "tree-spectrum",
            "--n-trials", "1", "--cv", "2", "--quiet"]  # fmt: skip
    assert main([*base, "--out", str(user_project)]) == 2
    one_error(capsys, "did not write")
    assert main([*base, "--out", str(tmp_path / "t"), "--storage", str(synthetic_cube)]) == 2
    one_error(capsys, "--storage")
    assert not (tmp_path / "t").exists()
    assert (tree_state(user_project), tree_state(synthetic_cube)) == before


def test_tune_never_adds_optunas_tables_to_a_users_own_database(synthetic_cube, tmp_path, capsys):
    import sqlite3

    own = tmp_path / "lab.db"
    with sqlite3.connect(own) as db:
        db.execute("CREATE TABLE runs (id INTEGER, note TEXT)")
        db.execute("INSERT INTO runs VALUES (42, 'years of work')")
    db.close()
    before = tree_state(tmp_path)
    base = ["tune", "--cube", str(synthetic_cube), "--estimator", "tree-spectrum",
            "--n-trials", "1", "--cv", "2", "--quiet", "--out", str(tmp_path / "t")]  # fmt: skip
    for storage in (str(own), f"sqlite:///{own}"):
        assert main([*base, "--storage", storage]) == 2
        one_error(capsys, "Optuna did not write (tables: runs)")
    assert not (tmp_path / "t").exists()
    assert tree_state(tmp_path) == before


def test_tune_with_an_unusable_storage_leaves_no_folder(synthetic_cube, tmp_path, capsys):
    out = tmp_path / "t"
    args = ["tune", "--cube", str(synthetic_cube), "--estimator", "tree-spectrum",
            "--n-trials", "1", "--cv", "2", "--quiet", "--out", str(out),
            "--storage", "postgresql://nobody@127.0.0.1:1/none"]  # fmt: skip
    assert main(args) == 2
    one_error(capsys, "Optuna storage")
    assert not out.exists()


# -- files ----------------------------------------------------------------------------------
def test_make_cube_never_replaces_a_file_that_is_not_our_cube(tmp_path, capsys):
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("years of work")
    before = tree_state(tmp_path)
    assert main(["make-cube", str(thesis), "--n-objects", "5", "--overwrite", "--quiet"]) == 2
    one_error(capsys, "was not written by sklearn-sfr")
    assert tree_state(tmp_path) == before


def test_ingest_onto_an_input_fits_file_is_refused(tmp_path, capsys):
    if not SPECTRA.is_dir():
        pytest.skip(f"the real SDSS files are not at {SPECTRA}")
    folder = tmp_path / "spectra"
    folder.mkdir()
    for path in sorted(SPECTRA.glob("spec-*.fits"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    target = sorted(folder.iterdir())[0]
    before = tree_state(folder)
    assert main(["ingest", str(target), "--spectra", str(folder), "--overwrite", "--quiet"]) == 2
    one_error(capsys, "input")
    assert main(["ingest", str(target), "--spectra", *map(str, folder.iterdir()),
                 "--overwrite", "--quiet"]) == 2  # fmt: skip
    one_error(capsys, "is the input")
    assert tree_state(folder) == before


@pytest.mark.parametrize(
    ("make_path", "needle"),
    [
        (lambda tmp: tmp, "is a folder"),  # a folder where the cube file goes
        (lambda tmp: tmp / ("x" * 240 + ".h5"), "too long"),  # no room for the temporary name
        (lambda tmp: tmp / "afile" / "c.h5", "is a file, not a folder"),
    ],
)
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, make_path, needle):
    (tmp_path / "afile").write_text("x")
    before = tree_state(tmp_path)
    t0 = time.perf_counter()
    assert main(["make-cube", str(make_path(tmp_path)), "--n-objects", "100000", "--quiet"]) == 2
    one_error(capsys, needle)
    assert time.perf_counter() - t0 < 30  # refused, not simulated (100,000 objects take hours)
    assert tree_state(tmp_path) == before


def test_a_cube_larger_than_the_disk_is_refused_at_once(tmp_path, capsys):
    assert main(["make-cube", str(tmp_path / "c.h5"), "--n-objects", str(10**12)]) == 2
    one_error(capsys, "disk", "TB")
    assert list(tmp_path.iterdir()) == []


def test_scene_frames_that_cannot_fit_in_memory_are_refused(tmp_path, capsys):
    from sklearn_sfr.datasets import make_synthetic_scene

    data = make_synthetic_scene(tmp_path / "scene", n_per_class=2, image_size=8)
    out = tmp_path / "report"
    args = ["scene", "--data", str(data), "--out", str(out), "--image-size", "200000"]
    assert main(args) == 2
    one_error(capsys, "--image-size 200000", "GB of memory")
    assert not out.exists()


# -- full disks and signals -------------------------------------------------------------------
def _cli(args, *, file_limit=None, code="", timeout=300):
    """Run the CLI in a child process (optionally under a file-size limit, as a full disk)."""
    limit = ""
    if file_limit is not None:
        limit = (
            "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, "
            f"({file_limit}, {file_limit}))\n"
        )
    program = f"{limit}{code}\nimport sys\nfrom sklearn_sfr.cli import main\nsys.exit(main())"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", program, *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _no_traceback(res, *needles):
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr[-2000:]
    for needle in needles:
        assert needle in res.stderr, res.stderr


def test_make_cube_on_a_full_disk_says_so_and_leaves_nothing(tmp_path):
    # The estimate is made to pass, so the disk fills up in the middle of the HDF5 writes
    # (which used to crash the interpreter in h5py's File.close, exit 139).
    patch = "import sklearn_sfr.datasets._synthetic._cube as c; c.BYTES_PER_OBJECT = 1"
    res = _cli(["make-cube", tmp_path / "c.h5", "--n-objects", "300", "--quiet"],
               file_limit=5_000_000, code=patch)  # fmt: skip
    _no_traceback(res, "c.h5", "larger than this process may write")
    assert list(tmp_path.iterdir()) == []  # the temporary is gone


def test_make_cube_refuses_what_the_file_size_limit_cannot_take(tmp_path):
    res = _cli(["make-cube", tmp_path / "c.h5", "--n-objects", "300"], file_limit=5_000_000)
    _no_traceback(res, "ulimit -f")
    assert list(tmp_path.iterdir()) == []


def test_report_and_study_on_a_full_disk_change_nothing(synthetic_cube, tmp_path):
    out = tmp_path / "report"
    base = ["study", "--cube", synthetic_cube, "--out", out, "--quick", "--studies", "baseline",
            "--quiet"]  # fmt: skip
    assert main([str(a) for a in base]) == 0
    before = tree_state(out)
    res = _cli(["report", out, "--quiet"], file_limit=20_000)  # a figure does not fit
    _no_traceback(res, "larger than")
    assert tree_state(out) == before
    res = _cli([*base, "--overwrite"], file_limit=20_000)
    _no_traceback(res)
    assert tree_state(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporaries


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_clean_up_the_temporary_cube(tmp_path, signum):
    out = tmp_path / "cube.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sklearn_sfr.cli", "make-cube", str(out), "--n-objects", "4000",
         "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".cube.h5.") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # inside the writing
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "nothing was left half-written" in err
    assert list(tmp_path.iterdir()) == []


#: The CLI, printing its threads' stacks and exiting if it hangs (a stop that was lost).
_HANG_REPORTING_CLI = (
    "import faulthandler, sys; faulthandler.dump_traceback_later(45, exit=True); "
    "from sklearn_sfr.cli import main; sys.exit(main())"
)


def test_ctrl_c_stops_tune_in_one_line(synthetic_cube, tmp_path):
    # skorch ends a network's training on KeyboardInterrupt and goes on: Ctrl-C used to stop
    # one fit only, and Optuna printed its traceback.
    out = tmp_path / "t"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HANG_REPORTING_CLI, "tune", "--cube", str(synthetic_cube),
         "--estimator", "spectrum", "--n-trials", "50", "--cv", "2", "--out", str(out),
         "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "optuna.db").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(3)  # inside a trial's training
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: nothing was left half-written", err
    assert "Traceback" not in err


# -- clear errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--device", "tpu"], "argument --device"),
        (["--seed", "-1"], "argument --seed"),
        (["--n-jobs", "0"], "argument --n-jobs"),
    ],
)
def test_bad_options_name_the_option(synthetic_cube, tmp_path, capsys, option, needle):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "--cube", str(synthetic_cube), "--out", str(tmp_path / "o"), *option])
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cuda_on_a_cpu_only_torch_is_one_line(synthetic_cube, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit):
        main(["study", "--cube", str(synthetic_cube), "--out", str(tmp_path), "--device", "cuda"])
    err = capsys.readouterr().err
    assert "argument --device: cuda: this PyTorch build sees no CUDA GPU" in err
    assert "Traceback" not in err and "AssertionError" not in err


def test_info_into_a_closed_pipe_is_quiet(synthetic_cube):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        f"{sys.executable} -m sklearn_sfr.cli info {synthetic_cube} | head -1",
        shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.stdout.count("\n") == 1
    assert "Broken pipe" not in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_report_refuses_a_cube_that_is_not_the_studys(tmp_path, capsys):
    cube = make_synthetic_cube(tmp_path / "cube.h5", n_objects=60, random_state=0)
    out = tmp_path / "report"
    assert main(["study", "--cube", str(cube), "--out", str(out), "--quick", "--studies",
                 "baseline", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    before = tree_state(out)
    make_synthetic_cube(cube, n_objects=60, random_state=1, overwrite=True)  # another cube
    assert main(["report", str(out), "--quiet"]) == 2
    one_error(capsys, "no longer holds the data")
    assert tree_state(out) == before


def test_report_keeps_a_file_a_user_added_and_does_not_claim_it(synthetic_cube, tmp_path):
    import json

    out = tmp_path / "report"
    assert main(["study", "--cube", str(synthetic_cube), "--out", str(out), "--quick",
                 "--studies", "baseline", "--quiet"]) == 0  # fmt: skip
    (out / "notes.txt").write_text("mine")
    assert main(["report", str(out), "--quiet"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    manifest = json.loads((out / MARKER).read_text())["files"]
    assert "notes.txt" not in manifest and "report.md" in manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


@pytest.mark.parametrize(
    "command",
    [
        ["study", "--quick"],
        ["fit", "--estimator", "tree-spectrum"],
        ["tune", "--estimator", "tree-spectrum", "--n-trials", "1"],
    ],
)
def test_a_folder_given_as_the_cube_is_called_a_folder(tmp_path, capsys, command):
    folder = tmp_path / "cubes.h5"
    folder.mkdir()
    before = tree_state(tmp_path)
    assert main([*command, "--cube", str(folder), "--out", str(tmp_path / "out")]) == 2
    one_error(capsys, "is a folder, not a cube")
    assert tree_state(tmp_path) == before and not (tmp_path / "out").exists()


def test_a_link_as_the_output_folder_is_called_a_link(synthetic_cube, tmp_path, capsys):
    target = earlier_report(tmp_path / "report")
    link = tmp_path / "latest"
    link.symlink_to(target, target_is_directory=True)
    before = tree_state(target)
    args = ["study", "--quick", "--cube", str(synthetic_cube), "--out", str(link), "--overwrite"]
    assert main(args) == 2
    one_error(capsys, "is a symbolic link")
    assert tree_state(target) == before and link.is_symlink()
