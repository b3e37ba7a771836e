"""``sklearn-sfr study`` end to end on a tiny cube, and its one-line errors."""

import json

import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.experiments._report import STUDIES
from tests.conftest import file_state


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_study_quick_writes_the_report(synthetic_cube, tmp_path, capsys):
    before = file_state(synthetic_cube)
    out = tmp_path / "report"
    argv = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--quick"]
    assert main([*argv, "--studies", "baseline", "--cv", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no progress
    assert captured.out.startswith(f"report: {out / 'report.html'}")
    for name in ("report.md", "report.html", "config.json", "baseline_scores.csv"):
        assert (out / name).stat().st_size > 0
    config = json.loads((out / "config.json").read_text())
    assert config["studies"] == ["baseline"] and config["settings"]["cv"] == 2
    assert "cv_rmse_mean" in (out / "baseline_summary.csv").read_text()
    assert file_state(synthetic_cube) == before
    # Run again on the same folder: refused without --overwrite, in one line.
    assert main([*argv, "--studies", "baseline", "--quiet"]) == 2
    _one_error_line(capsys, str(out), "--overwrite")


def test_study_settings_add_to_the_options(synthetic_cube, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--quick", "--quiet"]
    settings = json.dumps({"neural_params": {"width": 4}, "isolation_models": ["tree-pixels"]})
    argv += ["--studies", "isolation", "--max-epochs", "1", "--settings", settings]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    # --max-epochs survives a --settings dict of the same name; quick's other values stay.
    assert config["settings"]["neural_params"] == {
        "max_epochs": 1,
        "width": 4,
        "embed_dim": 16,
        "batch_size": 64,
    }
    assert config["settings"]["isolation_models"] == ["tree-pixels"]


def test_study_missing_cube(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["study", "--cube", str(tmp_path / "missing.h5"), "--out", str(out), "--quiet"])
    assert code == 2
    _one_error_line(capsys, "cube not found", "missing.h5")
    assert not out.exists()


def test_study_not_an_hdf5_file(tmp_path, capsys):
    bad = tmp_path / "cube.h5"
    bad.write_text("not an HDF5 file\n")
    before = file_state(bad)
    out = tmp_path / "report"
    assert main(["study", "--cube", str(bad), "--out", str(out), "--quick", "--quiet"]) == 2
    _one_error_line(capsys, str(bad))
    assert not out.exists() and file_state(bad) == before


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ("{not json", "--settings is not valid JSON"),
        ("[1, 2]", "--settings must be a JSON object"),
        ('{"epochs": 3}', "unknown study settings ['epochs']"),
    ],
)
def test_study_bad_settings(synthetic_cube, tmp_path, capsys, settings, needle):
    out = tmp_path / "report"
    argv = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--quiet"]
    assert main([*argv, "--settings", settings]) == 2
    _one_error_line(capsys, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_study_quick_runs_every_study(synthetic_cube, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["study", "--cube", str(synthetic_cube), "--out", str(out), "--quick"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "resolution study done" in captured.err
    markdown = (out / "report.md").read_text()
    for study in STUDIES:
        assert f"## {study.capitalize()} study" in markdown
        assert (out / f"{study}_summary.csv").stat().st_size > 0
    assert (out / "resolution_heatmap.png").stat().st_size > 0
    for start in ("**Modalities**", "**Fusion strategy**", "**Resolution**", "**FLAG filter**"):
        assert start in markdown
