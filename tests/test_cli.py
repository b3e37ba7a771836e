"""The sklearn-sfr command: make-cube, info, demo, and one-line errors."""

import subprocess
import sys

import pytest

from sklearn_sfr.cli import main
from tests.conftest import file_state


def test_info_on_synthetic_cube(synthetic_cube, capsys):
    before = file_state(synthetic_cube)
    assert main(["info", str(synthetic_cube)]) == 0
    out = capsys.readouterr().out
    assert "objects: 80" in out
    assert "FLAG=0" in out and "galaxy" in out
    assert "64px, 32px, 16px, 8px" in out
    assert "noise floor" in out
    assert file_state(synthetic_cube) == before


def test_make_cube(tmp_path, capsys):
    path = tmp_path / "c.h5"
    assert main(["make-cube", str(path), "--n-objects", "25", "--seed", "3"]) == 0
    assert path.exists()
    assert "objects: 25" in capsys.readouterr().out
    # Quiet: the one line naming the cube.
    quiet = tmp_path / "q.h5"
    assert main(["make-cube", str(quiet), "--n-objects", "25", "--quiet"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"wrote {quiet} (")
    # A second run refuses to overwrite, with one line and exit status 2.
    assert main(["make-cube", str(path), "--n-objects", "25", "--quiet"]) == 2
    assert "overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, b"garbage"])
def test_errors_are_one_line(tmp_path, content):
    path = tmp_path / "x.h5"
    if content is not None:
        path.write_bytes(content)
    res = subprocess.run(
        [sys.executable, "-m", "sklearn_sfr.cli", "info", str(path)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "x.h5" in res.stderr and "Traceback" not in res.stderr


def test_demo_runs_the_quick_study(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["demo", "--out", str(out), "--n-objects", "250"]) == 0
    printed = capsys.readouterr().out
    assert "Modalities" in printed and "Fusion strategy" in printed and "noise floor" in printed
    for name in ("cutouts.png", "spectra.png", "sfr_distribution.png", "resolution_heatmap.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("report.md", "report.html", "config.json", "modality_summary.csv"):
        assert (out / name).stat().st_size > 0
    # The demo keeps its cube in the report folder: info and report work on it.
    assert main(["info", str(out / "cube.h5")]) == 0
    assert main(["report", str(out), "--quiet"]) == 0
    # A second demo replaces the first report only with --overwrite; another folder is
    # never overwritten.
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--n-objects", "250"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--n-objects", "250", "--overwrite"]) == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert main(["demo", "--out", str(other), "--n-objects", "250", "--overwrite"]) == 2
    assert (other / "notes.txt").read_text() == "keep"
    # Nothing is left behind beside the report folder (no temporaries, no other cube).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "report"]
