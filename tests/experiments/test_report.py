"""The study's report: summary tables, conclusions, Markdown/HTML rendering and the report
folder ``run_study`` writes (atomically, never touching the cube)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.experiments import SCORE_COLUMNS
from sklearn_sfr.experiments._report import (
    FULL_SETTINGS,
    QUICK_SETTINGS,
    SMOKE_TEST_LABEL,
    _comparison_frame,
    _Report,
    _result_figures,
    conclusions,
    render_report,
    run_study,
    summary_table,
)
from sklearn_sfr.experiments.studies import baseline as baseline_module
from sklearn_sfr.utils._outputs import MARKER, OutputFolder
from tests.conftest import file_state
from tests.experiments.test_render import parse_html, plain

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FLOOR = 0.2


def make_scores(rows, **constant):
    """A score table in the studies' layout: ``rows`` give some columns, the rest default."""
    frame = pd.DataFrame(rows).assign(**constant)
    defaults = {"split": "test", "fold": 0, "n_train": 40, "n_test": 10, "noise_floor": FLOOR}
    for column in SCORE_COLUMNS:
        if column not in frame:
            frame[column] = defaults.get(column, 0.1)
    frame["rmse_over_floor"] = frame["rmse"] / frame["noise_floor"]
    extra = [c for c in frame.columns if c not in SCORE_COLUMNS]
    return frame[["model", *extra, *SCORE_COLUMNS[1:]]]


def leftovers(parent, name):
    """Temporary or old folders of a report called ``name`` left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# -- summary_table ------------------------------------------------------------------------------
def test_summary_table_keeps_the_test_rows_best_first_with_the_noise_floor():
    scores = make_scores({"model": ["a", "b", "c"], "rmse": [0.5, 0.3, 0.4]})
    table = summary_table(scores)
    assert list(table["model"]) == ["b", "c", "a"]
    assert list(table.columns[:3]) == ["model", "noise_floor", "rmse"]
    assert "rmse_over_floor" in table and "cv_rmse_mean" not in table
    np.testing.assert_allclose(table["rmse_over_floor"], table["rmse"] / FLOOR)


def test_summary_table_adds_the_cross_validation_mean_and_spread():
    scores = make_scores(
        {
            "model": ["a"] * 3 + ["b"] * 3,
            "trained_on": ["x"] * 6,
            "split": ["cv", "cv", "test"] * 2,
            "fold": [0, 1, 0] * 2,
            "rmse": [0.5, 0.7, 0.6, 0.3, 0.5, 0.45],
        }
    )
    table = summary_table(scores, keys=("model", "trained_on"))
    assert len(table) == 2 and list(table["model"]) == ["b", "a"]
    assert list(table.columns[-2:]) == ["cv_rmse_mean", "cv_rmse_std"]
    np.testing.assert_allclose(table["cv_rmse_mean"], [0.4, 0.6])
    np.testing.assert_allclose(table["cv_rmse_std"], [np.std([0.3, 0.5], ddof=1)] * 2)
    np.testing.assert_allclose(table["rmse"], [0.45, 0.6])  # the test score, not the folds'


# -- conclusions --------------------------------------------------------------------------------
def _tables(**overrides):
    tables = {
        "modality": make_scores(
            {
                "model": ["image", "spectrum", "fusion (intermediate)"],
                "modality": ["image", "spectrum", "both"],
                "rmse": [0.5, 0.4, 0.3],
            }
        ),
        "fusion": make_scores(
            {
                "model": ["fusion (early)", "fusion (late)", "contrastive"],
                "fusion": ["early", "late", "contrastive"],
                "rmse": [0.4, 0.3, 0.35],
            }
        ),
        "baseline": make_scores({"model": ["tree-pixels", "tree-lines"], "rmse": [0.6, 0.45]}),
        "resolution": make_scores(
            {
                "model": ["64", "32", "16", "8"],
                "image_size": [64, 32, 16, 8],
                "spectrum_length": [4620, 2310, 1155, 577],
                "rmse": [0.300, 0.303, 0.305, 0.5],
                "fit_time": [100.0, 20.0, 5.0, 1.0],
            }
        ),
        "flag": make_scores(
            {
                "model": ["tree", "tree", "net", "net"],
                "trained_on": ["FLAG=0", "all labelled"] * 2,
                "rmse": [0.30, 0.40, 0.40, 0.35],
            }
        ),
        "isolation": make_scores(
            {
                "model": ["tree"] * 4,
                "isolation": ["none", "none", "ObjectIsolator", "ObjectIsolator"],
                "objects": ["all", "with neighbour"] * 2,
                "rmse": [0.30, 0.50, 0.35, 0.40],
            }
        ),
    }
    tables.update(overrides)
    return {
        name: summary_table(t, [c for c in t.columns[: list(t.columns).index("split")]])
        for name, t in tables.items()
    }


def _predictions(tables, n=4000, seed=0):
    """Test predictions whose RMSE is each summary row's (every configuration scored on the
    same objects, as a study does): what the conclusions draw their intervals from."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    neighbour = np.arange(n) < n // 2
    out = {}
    for name, table in tables.items():
        keys = [k for k in table.columns[: list(table.columns).index("noise_floor")]
                if k != "objects"]  # fmt: skip
        frames = []
        for _, group in table.groupby(keys, sort=False):
            row = group.iloc[0]
            where = {k: row[k] for k in keys}
            scale = np.full(n, row["rmse"])
            if "objects" in group:  # the isolation study: its objects with a neighbour apart
                near = group[group["objects"] == "with neighbour"]
                if len(near):
                    scale[neighbour] = near["rmse"].iloc[0]
            noise = scale * rng.normal(size=n)
            frame = pd.DataFrame(
                {**where, "position": np.arange(n), "y_true": y, "y_pred": y + noise, "repeat": 0}
            )
            if name == "isolation":
                frame["neighbour"] = neighbour
            frames.append(frame)
        out[name] = pd.concat(frames, ignore_index=True)
    return out


def _sentence(found, start):
    matches = [s for s in found if s.startswith(start)]
    assert len(matches) == 1, (start, found)
    return matches[0]


def test_conclusions_name_the_right_winners():
    tables = _tables()
    found = conclusions(tables, _predictions(tables))
    modality = _sentence(found, "**Modalities**")
    assert "best single modality is spectrum" in modality
    assert "the best fused model, fusion (intermediate), reaches RMSE 0.300 dex" in modality
    assert "fusion helps (-0.0" in modality and "95 % interval [" in modality
    assert "x the noise floor 0.200" in modality
    ranking = _sentence(found, "Modality ranking")
    assert (
        ranking.index("fusion (intermediate)") < ranking.index("spectrum") < ranking.index("image")
    )
    fusion = _sentence(found, "**Fusion strategy**")
    assert "late has the lowest RMSE, RMSE 0.300" in fusion
    assert "Against the runner-up contrastive, it wins" in fusion
    baseline = _sentence(found, "**Decision-tree")
    assert "best is tree-lines with RMSE 0.450" in baseline and "it wins" in baseline
    resolution = _sentence(found, "**Resolution**")
    assert "most accurate pair is 64 px images x 4620 px spectra" in resolution
    # 0.305 is within the interval of 0.300 and fits fastest; 8 px is faster still but far
    # worse.
    assert "cheapest pair not detectably less accurate is 16 px x 1155 px" in resolution
    assert "20.0x faster" in resolution
    finest = _sentence(found, "The finest pair")
    assert "(64 px x 4620 px) reaches RMSE 0.300" in finest and "20.0x the fit time" in finest
    tree = _sentence(found, "**FLAG filter** (tree,")
    assert "the filter helps (+0.1" in tree
    net = _sentence(found, "**FLAG filter** (net,")
    assert "the filter does not help (training on everything is better) (-0.0" in net
    isolation = _sentence(found, "**Object isolation** (tree,")
    assert "0.500 without, 0.400 with ObjectIsolator: isolation helps (-0.0" in isolation


def test_verdicts_need_their_intervals():
    # Without predictions there is no interval, hence no verdict word.
    found = conclusions(_tables())
    for sentence in found:
        for word in (" helps", " hurts", " wins", " does not help"):
            assert word not in sentence, sentence
    assert "cannot be decided" in _sentence(found, "**Modalities**")


def test_conclusions_when_fusion_and_isolation_do_not_help():
    modality = make_scores(
        {
            "model": ["image", "spectrum", "fusion (late)"],
            "modality": ["image", "spectrum", "both"],
            "rmse": [0.5, 0.4, 0.45],
        }
    )
    isolation = make_scores(
        {
            "model": ["tree"] * 2,
            "isolation": ["none", "ObjectIsolator"],
            "objects": ["with neighbour"] * 2,
            "rmse": [0.4, 0.5],
        }
    )
    # Without the fusion study (whose late fusion would win) the modality study decides.
    tables = _tables(modality=modality, isolation=isolation)
    tables = {name: t for name, t in tables.items() if name != "fusion"}
    found = conclusions(tables, _predictions(tables))
    modality_sentence = _sentence(found, "**Modalities**")
    assert "the best fused model, fusion (late), reaches" in modality_sentence
    assert "fusion hurts (+0.0" in modality_sentence
    assert "isolation hurts (+0.0" in _sentence(found, "**Object isolation**")


def test_conclusions_only_answer_the_studies_run():
    found = conclusions(_tables())
    assert len(found) == 9  # the resolution study says two things
    only = conclusions({"baseline": _tables()["baseline"]})
    assert len(only) == 1 and only[0].startswith("**Decision-tree baselines**")


def test_conclusions_without_a_noise_floor_do_not_print_nan():
    # Real data has no truth, hence no floor: the sentences then leave it out.
    tables = {name: t.assign(noise_floor=np.nan) for name, t in _tables().items()}
    found = conclusions(tables)
    assert len(found) == 9  # the resolution study says two things
    assert not any("nan" in sentence for sentence in found)
    assert "best is tree-lines with RMSE 0.450 dex." in _sentence(found, "**Decision-tree")


# -- rendering ----------------------------------------------------------------------------------
def test_markdown_and_html_hold_the_tables_and_figures(tmp_path):
    report = _Report("Study <1>")
    report.heading("Tables & figures")
    report.text("the **best** model is `fusion` <script>alert(1)</script>")
    report.bullets(["a < b", "**c**"])
    report.table(pd.DataFrame({"model": ["<x>", "y"], "rmse": [0.12345, np.nan]}))
    report.figure(tmp_path / "fig.png", "RMSE < 1")
    markdown = report.markdown()
    assert markdown.startswith("# Study <1>\n")
    assert "| model | rmse |" in markdown and "| <x> | 0.123 |" in markdown
    assert "| y | – |" in markdown  # a missing value reads as a dash
    assert "![RMSE < 1](fig.png)" in markdown
    assert "- a < b" in markdown
    page = report.html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<table" in page and "&lt;x&gt;" in page and "<td>0.123</td>" in page
    assert '<img src="fig.png" alt="RMSE &lt; 1">' in page
    assert "<h1>Study &lt;1&gt;</h1>" in page and "<h2>Tables &amp; figures</h2>" in page
    assert "<b>best</b>" in page and "<code>fusion</code>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<li>a &lt; b</li>" in page and "<li><b>c</b></li>" in page


# -- the comparison figure ----------------------------------------------------------------------
def test_comparison_figure_shows_cv_folds_or_the_test_split_never_both():
    scores = make_scores(
        {
            "model": ["a"] * 3,
            "split": ["cv", "cv", "test"],
            "fold": [0, 1, 0],
            "rmse": [0.5, 0.7, 0.1],
        }
    )
    frame, caption = _comparison_frame("baseline", scores)
    assert list(frame["rmse"]) == [0.5, 0.7] and caption.startswith("cross-validated RMSE")
    frame, caption = _comparison_frame("baseline", scores[scores["split"] == "test"])
    assert list(frame["rmse"]) == [0.1] and caption == "test RMSE"


def test_isolation_figure_without_any_neighbour(tmp_path):
    # No test object has a neighbour: the figure falls back to all objects instead of failing.
    scores = make_scores(
        {
            "model": ["tree"] * 2,
            "isolation": ["none", "ObjectIsolator"],
            "objects": ["all"] * 2,
            "rmse": [0.3, 0.35],
        }
    )
    frame, caption = _comparison_frame("isolation", scores)
    assert list(frame["model"]) == ["tree / none", "tree / ObjectIsolator"]
    assert "all objects" in caption
    figures = _result_figures("isolation", scores, pd.DataFrame(), None, tmp_path)
    path, _ = figures["isolation_comparison"]
    assert path.read_bytes().startswith(PNG_SIGNATURE)


# -- run_study ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(synthetic_cube, tmp_path_factory):
    """``run_study`` in quick mode on two studies, once (a few seconds)."""
    before = file_state(synthetic_cube)
    out = tmp_path_factory.mktemp("run") / "report"
    result = run_study(
        synthetic_cube, out, studies=("baseline", "flag"), quick=True, verbose=False
    )
    return result, out, before


def test_run_study_writes_the_report_folder(quick_run, synthetic_cube):
    result, out, before = quick_run
    assert result["out"] == out and result["seconds"] > 0
    assert set(result["tables"]) == {"baseline", "flag"}
    names = {p.name for p in out.iterdir()}
    for study in ("baseline", "flag"):
        for kind in ("scores", "summary", "predictions"):
            assert f"{study}_{kind}.csv" in names
        saved = pd.read_csv(out / f"{study}_scores.csv")
        assert list(saved.columns) == list(result["scores"][study].columns)
        np.testing.assert_allclose(saved["rmse"], result["scores"][study]["rmse"])
    assert {"report.md", "report.html", "config.json"} <= names
    pngs = sorted(p for p in out.iterdir() if p.suffix == ".png")
    assert {p.stem for p in pngs} >= {
        "cutouts",
        "spectra",
        "sfr_distribution",
        "baseline_comparison",
        "baseline_predicted_vs_true",
        "baseline_residuals",
        "flag_comparison",
    }
    for png in pngs:
        assert png.stat().st_size > 1000 and png.read_bytes().startswith(PNG_SIGNATURE)
    # Nothing else beside the report, and the cube untouched.
    assert leftovers(out.parent, out.name) == []
    assert file_state(synthetic_cube) == before


def test_run_study_report_shows_tables_figures_and_conclusions(quick_run):
    result, out, _ = quick_run
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    pngs = {p.name for p in out.glob("*.png")}
    for name in pngs:  # every figure is inline in both
        assert f"]({name})" in markdown and f'<img src="{name}"' in page
    assert "## Baseline study" in markdown and "## Flag study" in markdown
    assert "| model | noise_floor | rmse |" in markdown
    assert "| model | trained_on | noise_floor | rmse |" in markdown
    # the two summaries, and the epochs the FLAG study's network trained
    assert page.count("<table") == 3 and "flag_training.png" in markdown
    assert "Quick mode" in markdown
    assert result["conclusions"] and all(c in markdown for c in result["conclusions"])
    assert "## Modality study" not in markdown


def test_quick_report_says_it_is_a_smoke_test_in_markdown_html_and_terminal(
    quick_run, tmp_path, capsys
):
    result, out, _ = quick_run
    banner, *lines = result["conclusions"]
    assert banner.startswith("**Smoke test of the pipeline, not the study's answer**")
    assert "--quick" in banner and "max_epochs=3" in banner
    # Every verdict is labelled, and keeps its interval.
    assert lines and all(line.startswith(f"{SMOKE_TEST_LABEL} **") for line in lines)
    assert any("95 % interval [" in line for line in lines)
    markdown = (out / "report.md").read_text()
    conclusions_md = markdown.split("## Conclusions\n", 1)[1].split("\n## ", 1)[0]
    assert conclusions_md.lstrip().startswith(f"> {banner}")  # the banner opens them
    assert all(f"- {line}" in conclusions_md for line in lines)
    page = parse_html((out / "report.html").read_text())
    texts = [plain(line) for line in result["conclusions"]]
    assert all(text in page.text for text in texts)
    assert page.text.index(texts[0]) < page.text.index(texts[1])
    # The terminal prints the same lines.
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    assert main(["report", str(folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [plain(line.removeprefix("- ")) for line in printed[:-1]] == texts


def test_a_full_run_has_no_smoke_test_label():
    tables = _tables()
    found = conclusions(tables, _predictions(tables))
    assert not any(SMOKE_TEST_LABEL in line or "Smoke test" in line for line in found)


def test_report_html_is_well_formed_and_escapes_model_names(quick_run, tmp_path):
    # A model named like a script: the rendered pages show it, never run it.
    _, out, _ = quick_run
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    hostile = "<script>alert(1)</script>"
    for name in ("baseline_scores.csv", "baseline_predictions.csv"):
        frame = pd.read_csv(folder / name)
        frame["model"] = frame["model"].replace("tree-lines", f"tree-lines {hostile}")
        frame.to_csv(folder / name, index=False)
    again = render_report(folder, verbose=False)
    assert any(hostile in line for line in again["conclusions"])
    page = (folder / "report.html").read_text()
    tree = parse_html(page)
    assert "script" not in {tag for tag, _ in tree.tags}
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"tree-lines {hostile}" in tree.text  # in the table and the conclusions, as text
    assert f"| tree-lines {hostile} |" in (folder / "report.md").read_text()


def test_run_study_config_records_versions_and_settings(quick_run, synthetic_cube):
    result, out, _ = quick_run
    config = json.loads((out / "config.json").read_text())
    assert config["cube"] == str(synthetic_cube.resolve())
    assert config["studies"] == ["baseline", "flag"]
    assert config["quick"] is True and config["random_state"] == 0
    assert set(config["settings"]) == set(FULL_SETTINGS)
    assert config["settings"]["neural_params"] == QUICK_SETTINGS["neural_params"]
    assert config["settings"]["image_zooms"] == list(QUICK_SETTINGS["image_zooms"])
    for package in ("python", "numpy", "scikit-learn", "torch"):
        assert config["versions"][package]
    assert config["seconds"] == pytest.approx(result["seconds"])


def test_run_study_refuses_an_existing_folder_and_leaves_it(synthetic_cube, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists"):
        run_study(synthetic_cube, out, studies=("baseline",), quick=True, verbose=False)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert leftovers(tmp_path, "report") == []


def _earlier_report(out):
    """A folder this library wrote (its marker lists mine.txt), as an earlier run leaves."""
    with OutputFolder(out, kind="study") as tmp:
        (tmp / "mine.txt").write_text("old report")


def test_run_study_overwrite_replaces_the_folder(synthetic_cube, tmp_path):
    before = file_state(synthetic_cube)
    out = tmp_path / "report"
    _earlier_report(out)
    run_study(
        synthetic_cube, out, studies=("baseline",), quick=True, overwrite=True, verbose=False
    )
    names = {p.name for p in out.iterdir()}
    assert "mine.txt" not in names and "report.md" in names and "baseline_scores.csv" in names
    assert leftovers(tmp_path, "report") == []
    assert file_state(synthetic_cube) == before


@pytest.mark.parametrize(("error", "existing"), [(RuntimeError, False), (KeyboardInterrupt, True)])
def test_a_failure_in_the_middle_leaves_nothing_behind(
    synthetic_cube, tmp_path, monkeypatch, error, existing
):
    before = file_state(synthetic_cube)
    out = tmp_path / "report"
    if existing:
        _earlier_report(out)
    seen = []

    def fail(*args, **kwargs):
        # The figures of the data are already written in the temporary folder by now.
        seen.extend(leftovers(tmp_path, "report"))
        raise error("study failed")

    monkeypatch.setattr(baseline_module, "baseline_study", fail)
    with pytest.raises(error, match="study failed"):
        run_study(
            synthetic_cube,
            out,
            studies=("flag", "baseline"),
            quick=True,
            overwrite=True,
            verbose=False,
            flag_models=("tree-lines",),
        )
    assert len(seen) == 1 and seen[0].endswith(".tmp")  # there was a folder to clean up
    assert leftovers(tmp_path, "report") == []
    if existing:
        assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "mine.txt"])
    else:
        assert not out.exists()
    assert file_state(synthetic_cube) == before


def test_run_study_rejects_bad_arguments_before_any_work(synthetic_cube, tmp_path):
    out = tmp_path / "report"
    with pytest.raises(FileNotFoundError, match="cube not found"):
        run_study(tmp_path / "missing.h5", out, verbose=False)
    with pytest.raises(ValueError, match=r"unknown studies \['nope'\]"):
        run_study(synthetic_cube, out, studies=("baseline", "nope"), verbose=False)
    with pytest.raises(TypeError, match="unknown study settings"):
        run_study(synthetic_cube, out, verbose=False, max_epochs=3)
    assert list(tmp_path.iterdir()) == []


def test_markdown_table_fixed_decimals_and_dashes():
    from sklearn_sfr.experiments._report import markdown_table

    frame = pd.DataFrame(
        {"model": ["a", "b"], "rmse": [0.5, np.nan], "fit_time": [12.345, 1.0], "n": [3, 4]}
    )
    assert markdown_table(frame).splitlines() == [
        "| model | rmse | fit_time | n |",
        "|---|---|---|---|",
        "| a | 0.500 | 12.3 | 3 |",
        "| b | – | 1.0 | 4 |",
    ]


def test_render_report_rebuilds_the_report_from_the_saved_scores(quick_run, tmp_path, capsys):
    _, out, _ = quick_run
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    for name in ("report.md", "report.html", "baseline_summary.csv", "cutouts.png"):
        (folder / name).unlink()
    scores = (folder / "baseline_scores.csv").read_bytes()
    assert main(["report", str(folder), "--quiet"]) == 0
    assert (folder / "baseline_scores.csv").read_bytes() == scores  # inputs untouched
    assert (folder / "report.md").read_text() == (out / "report.md").read_text()
    pd.testing.assert_frame_equal(
        pd.read_csv(folder / "baseline_summary.csv"), pd.read_csv(out / "baseline_summary.csv")
    )
    assert (folder / "cutouts.png").read_bytes().startswith(PNG_SIGNATURE)
    assert leftovers(folder.parent, folder.name) == []
    assert capsys.readouterr().out.strip() == f"report: {folder / 'report.html'}"


def test_render_report_refuses_a_folder_that_is_not_a_study(quick_run, tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a study folder" in capsys.readouterr().err
    _, out, _ = quick_run
    folder = tmp_path / "partial"
    shutil.copytree(out, folder)
    (folder / "flag_predictions.csv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks flag_predictions.csv"):
        render_report(folder)
    assert (folder / "report.md").read_text() == (out / "report.md").read_text()


def test_fusion_verdict_takes_the_best_fused_model_of_both_studies():
    modality = make_scores(
        {
            "model": ["image", "spectrum", "fusion (intermediate)"],
            "modality": ["image", "spectrum", "both"],
            "rmse": [0.5, 0.4, 0.41],
        }
    )
    fusion = make_scores(
        {
            "model": ["fusion (late)", "contrastive"],
            "fusion": ["late", "contrastive"],
            "rmse": [0.38, 0.6],
        }
    )
    tables = {
        "modality": summary_table(modality, ["model", "modality"]),
        "fusion": summary_table(fusion, ["model", "fusion"]),
    }
    found = _sentence(conclusions(tables, _predictions(tables)), "**Modalities**")
    assert "the best fused model, fusion (late), reaches RMSE 0.380" in found
    alone = {"modality": tables["modality"]}
    alone = _sentence(conclusions(alone, _predictions(alone)), "**Modalities**")
    assert "the best fused model, fusion (intermediate)," in alone


def test_resolution_verdict_when_the_best_pair_is_also_the_cheapest():
    scores = make_scores(
        {
            "model": ["fusion"] * 2,
            "image_size": [8, 64],
            "spectrum_length": [577, 4620],
            "rmse": [0.30, 0.31],
            "fit_time": [10.0, 200.0],
        }
    )
    table = summary_table(scores, ["model", "image_size", "spectrum_length"])
    tables = {"resolution": table.assign(model=["8", "64"])}
    found = conclusions(tables, _predictions(tables))
    assert "no pair that fits faster is as accurate" in _sentence(found, "**Resolution**")
    assert "20.0x the fit time" in _sentence(found, "The finest pair")


def test_negligible_differences_are_not_called_gains():
    flag = make_scores(
        {"model": ["net", "net"], "trained_on": ["FLAG=0", "all labelled"], "rmse": [0.631, 0.628]}
    )
    tables = {"flag": summary_table(flag, ["model", "trained_on"])}
    found = conclusions(tables, _predictions(tables))
    assert "the filter makes no detectable difference at this sample size" in found[0]
    assert "the smallest difference this run could detect is" in found[0]


def test_report_command_prints_the_conclusions_as_plain_text(quick_run, tmp_path, capsys):
    result, out, _ = quick_run
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    assert main(["report", str(folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [f"- {line.replace('**', '')}" for line in result["conclusions"]]
    assert printed == [*expected, f"report: {folder / 'report.html'}"]


def test_repeats_are_averaged_with_their_training_spread():
    scores = pd.concat(
        [make_scores({"model": ["a", "b"], "rmse": [0.40 + d, 0.50 - d]}).assign(repeat=r)
         for r, d in enumerate((0.0, 0.02, 0.04))],
        ignore_index=True,
    )  # fmt: skip
    table = summary_table(scores)
    assert table["model"].tolist() == ["a", "b"] and (table["repeats"] == 3).all()
    np.testing.assert_allclose(table["rmse"], [0.42, 0.48])
    np.testing.assert_allclose(table["rmse_training_std"], [0.02, 0.02])
    # Each configuration counts its own repeats (here b was trained twice only).
    fewer = summary_table(scores.drop(index=scores.index[-1]))
    assert fewer.set_index("model")["repeats"].to_dict() == {"a": 3, "b": 2}


def test_a_re_rendered_report_gives_the_same_intervals_and_verdicts(quick_run, tmp_path):
    result, out, _ = quick_run
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    before = pd.read_csv(folder / "flag_summary.csv")
    assert {"rmse_low", "rmse_high", "nmad_low", "outlier_fraction_high"} <= set(before)
    assert (before["rmse_low"] <= before["rmse"]).all()
    assert (before["rmse"] <= before["rmse_high"]).all()
    again = render_report(folder, verbose=False)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "flag_summary.csv"), before)
    assert again["conclusions"] == result["conclusions"]
    assert any("95 % interval [" in line for line in again["conclusions"])


def test_a_new_study_is_one_object_and_one_registry_entry(synthetic_cube, tmp_path, monkeypatch):
    """What adding a study takes: a Study subclass (its file) and its registry entry (the
    one line in ``studies/__init__.py``); the report, its tables, conclusions and figures
    follow without any other change."""
    from sklearn.dummy import DummyRegressor

    from sklearn_sfr.experiments import evaluate_models, study_split
    from sklearn_sfr.experiments.studies import REGISTRY, Study

    class MeanStudy(Study):
        """How good is predicting the training mean: the floor of every model."""

        name = "mean"
        keys = ("model",)

        def run(self, run):
            data = run.data
            train, test = study_split(len(data.y), test_size=run.common["test_size"],
                                      random_state=run.common["random_state"])  # fmt: skip
            return evaluate_models({"mean": DummyRegressor()}, data.X, data.y, train=train,
                                   test=test, noise_floor=data.noise_floor)  # fmt: skip

        def conclusions(self, tables, dex, compare):
            return [f"**Mean**: predicting the mean gives {dex(tables[self.name].iloc[0])}."]

    monkeypatch.setitem(REGISTRY, "mean", MeanStudy())
    result = run_study(synthetic_cube, tmp_path / "r", studies=["mean"], quick=True,
                       verbose=False)  # fmt: skip
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "## Mean study" in markdown and "**Mean**: predicting the mean gives RMSE" in markdown
    assert (tmp_path / "r" / "mean_comparison.png").is_file()
    assert {"rmse_low", "rmse_high"} <= set(result["tables"]["mean"].columns)
