"""Attack catalogue, files: missing, empty, foreign, truncated and damaged inputs.

Every bad file gives an error naming the file and what is wrong inside it (the HDF5 path, the
column), from the loader and from every command of the CLI, which prints one line
``error: ...`` and exits with status 2, never a traceback. The input is never modified.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import HiSSCube, HiSSCubeFormatError, load_hisscube, write_hisscube
from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY, ZOOMS
from tests.conftest import file_state, make_arrays
from tests.robustness._cubes import DAMAGE, N, damaged_copy

REPO = Path(__file__).parents[2]
SDSS = REPO.parent / "shared" / "data" / "sdss"


@pytest.fixture(scope="module")
def good_cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.h5"
    write_hisscube(path, **make_arrays(n=N))
    return path


@pytest.fixture(scope="module")
def damaged(good_cube, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged")
    return {name: damaged_copy(good_cube, folder, name) for name in DAMAGE}


def _load_every_zoom(path):
    for z in ZOOMS:
        load_hisscube(path, image_zoom=z, spectrum_zoom=z, flag=None, with_errors=True)


@pytest.mark.parametrize("name", DAMAGE)
def test_loader_names_the_file_and_the_path_inside(damaged, name):
    path = damaged[name]
    before = file_state(path)
    expected = DAMAGE[name][1]
    with pytest.raises(HiSSCubeFormatError, match=expected) as info:
        _load_every_zoom(path)
    assert path.name in str(info.value)
    # validate() finds the same damage without reading the arrays.
    with pytest.raises(HiSSCubeFormatError, match=expected), HiSSCube(path) as cube:
        cube.validate()
    assert file_state(path) == before


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_hisscube(tmp_path / "nope.h5")
    with pytest.raises(HiSSCubeFormatError, match="is a folder"):
        load_hisscube(tmp_path)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(0.0, 0.9999))
def test_truncated_at_any_offset(good_cube, tmp_path, fraction):
    data = good_cube.read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: int(len(data) * fraction)])
    before = file_state(path)
    with pytest.raises(HiSSCubeFormatError, match="cut.h5"):
        _load_every_zoom(path)
    assert file_state(path) == before


TUNE_FAST = ["--n-trials", "1", "--cv", "2", "--quiet"]


def _commands(cube, tmp_path):
    """Every command that reads a cube, with the options that make it quick."""
    return {
        "info": ["info", str(cube)],
        "study": ["study", "--cube", str(cube), "--out", str(tmp_path / "s"), "--quick"],
        "tune": [
            "tune",
            "--cube",
            str(cube),
            "--estimator",
            "tree-spectrum",
            *TUNE_FAST,
            "--out",
            str(tmp_path / "t"),
        ],
        "demo": ["demo", "--cube", str(cube), "--out", str(tmp_path / "d")],
    }


def _assert_one_line_error(err, *needles):
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("command", ["info", "study", "tune", "demo"])
def test_cli_one_line_error_for_every_damage(damaged, tmp_path, capsys, command):
    for name, path in damaged.items():
        before = file_state(path)
        assert main(_commands(path, tmp_path)[command]) == 2, name
        _assert_one_line_error(capsys.readouterr().err, path.name)
        assert file_state(path) == before, name
    # Nothing was published under the output names.
    assert not [p for p in tmp_path.iterdir() if p.name in ("s", "t", "d")]


@pytest.mark.parametrize("command", ["info", "study", "tune", "demo"])
def test_cli_missing_cube(tmp_path, capsys, command):
    assert main(_commands(tmp_path / "absent.h5", tmp_path)[command]) == 2
    _assert_one_line_error(capsys.readouterr().err, "absent.h5")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sklearn_sfr.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )


def test_cli_process_never_prints_a_traceback(damaged):
    # The case that used to escape as an IndexError traceback (exit status 1).
    res = _cli("info", damaged["references of the wrong dtype"])
    assert res.returncode == 2
    _assert_one_line_error(res.stderr, "spec_metadata_refs")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["study", "tune", "demo"])
def test_cli_process_never_prints_a_traceback_slow(damaged, tmp_path, command):
    path = damaged["references of the wrong dtype"]
    res = _cli(*_commands(path, tmp_path)[command])
    assert res.returncode == 2
    _assert_one_line_error(res.stderr, "spec_metadata_refs")


def test_cli_missing_labels_warn_in_one_line(good_cube, tmp_path, capsys):
    # A cube without a label table is still described; the warning is one line, not the
    # library's source line.
    path = tmp_path / "unlabelled.h5"
    shutil.copy(good_cube, path)
    with h5py.File(path, "a") as f:
        del f[MERGED_LABEL_KEY]
    assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and "labels are missing" in err


# -- ingest and scene read other files: FITS and CSV --------------------------------------------
@pytest.fixture
def bad_fits(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    files = {
        "garbage": b"this is not FITS",
        "empty": b"",
        "truncated": b"SIMPLE  =                    T",
    }
    for name, content in files.items():
        (folder / f"{name}.fits").write_bytes(content)
    return {name: folder / f"{name}.fits" for name in files}


@pytest.mark.parametrize("which", ["garbage", "empty", "truncated"])
def test_ingest_unreadable_catalogue_is_one_line(bad_fits, tmp_path, capsys, which):
    bad = bad_fits[which]
    before = file_state(bad)
    spectrum = bad_fits["garbage"]
    args = ["ingest", str(tmp_path / "c.h5"), "--spectra", str(spectrum), "--quiet"]
    assert main([*args, "--mpa-info", str(bad), "--mpa-sfr", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: ") and bad.name in err[-1], err
    assert file_state(bad) == before
    assert not (tmp_path / "c.h5").exists()


def test_ingest_unreadable_spectra_and_missing_files(bad_fits, tmp_path, capsys):
    out = tmp_path / "c.h5"
    assert main(["ingest", str(out), "--spectra", str(tmp_path / "nope.fits"), "--quiet"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "nope.fits")
    # Unreadable spectra are skipped with the reason in the report; none left is an error.
    spectra = [str(p) for p in bad_fits.values()]
    assert main(["ingest", str(out), "--spectra", *spectra, "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"error: no object could be kept; {tmp_path / 'c_ingest.csv'} lists why"
    report = (tmp_path / "c_ingest.csv").read_text()
    assert report.count("unreadable spectrum") == 3 and not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [(b"", "cannot be read as a CSV table"), (b"a,b\n1,2\n", "has no column IMAGE")],
)
def test_scene_bad_table_is_one_line(tmp_path, capsys, content, message):
    data = tmp_path / "scene"
    data.mkdir()
    (data / "dataset.csv").write_bytes(content)
    before = file_state(data / "dataset.csv")
    assert main(["scene", "--data", str(data), "--out", str(tmp_path / "r"), "--quick"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "dataset.csv", message)
    assert file_state(data / "dataset.csv") == before
    assert not (tmp_path / "r").exists()
