"""The Scene study: its table, its report folder, its CLI and the conventions of its models."""

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import load_scene, make_synthetic_scene
from sklearn_sfr.experiments import (
    SCENE_SCORE_COLUMNS,
    scene_models,
    scene_study,
    scene_summary,
    write_scene_report,
)
from sklearn_sfr.features import ColourFeatures
from sklearn_sfr.utils._outputs import MARKER

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_PER_CLASS = 8


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene") / "scene"
    return make_synthetic_scene(root, n_per_class=N_PER_CLASS, image_size=16, random_state=2)


@pytest.fixture(scope="module")
def data(scene_dir):
    return load_scene(scene_dir, image_size=8)


@pytest.fixture(scope="module")
def quick_report(scene_dir, tmp_path_factory):
    """``sklearn-sfr scene --quick`` run once: every model, both targets, both splits (~30 s)."""
    out = tmp_path_factory.mktemp("report")
    argv = ["scene", "--data", str(scene_dir), "--out", str(out), "--quick", "--cv", "2"]
    assert main([*argv, "--image-size", "8"]) == 0
    return out


def test_quick_study_returns_the_documented_table(data, tmp_path):
    # Every model, one target and split here; the CLI test below runs all four combinations.
    scores, predictions = scene_study(
        data, quick=True, targets="CLASS2", splits="blocked", n_splits=2, return_predictions=True
    )
    assert tuple(scores.columns) == SCENE_SCORE_COLUMNS
    assert len(scores) == len(scene_models(quick=True)) * 2
    assert set(scores["family"]) == {"decision tree", "neural"}
    assert set(scores["modality"]) == {"audio", "image", "both"}
    assert set(scores["fusion"]) == {"", "early", "intermediate", "late"}
    metrics = scores[["accuracy", "balanced_accuracy", "f1_macro"]].to_numpy()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    assert (scores["n_train"] + scores["n_test"] == 9 * N_PER_CLASS).all()
    paths = write_scene_report(tmp_path, scores, predictions)
    assert paths["confusion_class2_blocked"].read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
def test_quick_cli_table(quick_report):
    scores = pd.read_csv(quick_report / "scene_scores.csv", keep_default_na=False)
    assert tuple(scores.columns) == SCENE_SCORE_COLUMNS
    n_models = len(scene_models(quick=True))
    assert len(scores) == n_models * 2 * 2 * 2  # models x targets x splits x folds
    assert set(scores["split"]) == {"random", "blocked"}
    assert set(scores["target"]) == {"CLASS1", "CLASS2"}
    assert set(scores["family"]) == {"decision tree", "neural"}
    assert set(scores["fusion"]) == {"", "early", "intermediate", "late"}
    metrics = scores[["accuracy", "balanced_accuracy", "f1_macro"]].to_numpy()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    assert (scores["n_train"] + scores["n_test"] == 9 * N_PER_CLASS).all()


@pytest.mark.slow
def test_quick_cli_report_folder(quick_report):
    names = sorted(p.name for p in quick_report.iterdir())
    assert names == [
        MARKER,  # the folder is ours (utils._outputs)
        "confusion_class1_blocked.png",
        "confusion_class1_random.png",
        "confusion_class2_blocked.png",
        "confusion_class2_random.png",
        "scene_report.md",
        "scene_scores.csv",
        "scene_summary.csv",
    ]  # and no temporary files left behind
    for png in quick_report.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    report = (quick_report / "scene_report.md").read_text()
    assert "| model | target | accuracy random |" in report
    assert "Quick mode" in report and "**Leakage**" in report and "**Fusion, neural" in report
    assert "(confusion_class2_blocked.png)" in report
    # Honest framing: a smoke test, on synthetic data, with 9 classes against 8.
    assert "**Synthetic data**" in report and "9 classes against 8" in report
    assert "This run's CLASS2 task has 9 classes (all of them)" in report
    findings = report.split("## Findings\n", 1)[1].split("\n## ", 1)[0]
    assert "> **Quick mode: a smoke test" in findings
    bullets = [line for line in findings.splitlines() if line.startswith("- ")]
    assert bullets and all(line.startswith("- [smoke test] **") for line in bullets)
    summary = pd.read_csv(quick_report / "scene_summary.csv", index_col=[0, 1])
    assert summary.loc[("decision tree (both)", "CLASS2"), "outline"] == 0.92
    assert summary.loc[("fusion late (both)", "CLASS2"), "paper"] == pytest.approx(0.9681)


def test_study_on_a_bunch_with_predictions(data):
    kwargs = {"models": ["decision tree (audio)", "decision tree (both)"], "n_splits": 2}
    scores, predictions = scene_study(data, return_predictions=True, **kwargs)
    assert len(scores) == 2 * 2 * 2 * 2
    n = len(data.frame)
    counts = predictions.groupby(["model", "target", "split"]).size()
    assert (counts == n).all() and len(counts) == 8
    # every row predicted once per model, target and split (out-of-fold)
    for _, part in predictions.groupby(["model", "target", "split"]):
        assert sorted(part["row"]) == list(range(n))
    again = scene_study(data, **kwargs)
    pd.testing.assert_frame_equal(scores.drop(columns="fit_time"), again.drop(columns="fit_time"))
    with pytest.raises(ValueError, match="models must be a non-empty subset"):
        scene_study(data, models=["random forest"])
    with pytest.raises(ValueError, match="splits must be"):
        scene_study(data, splits="loo")


def test_summary_sets_published_numbers_beside_ours():
    scores = pd.DataFrame(
        {
            "model": ["decision tree (audio)"] * 4 + ["CNN (image)"] * 4,
            "family": ["decision tree"] * 4 + ["neural"] * 4,
            "modality": ["audio"] * 4 + ["image"] * 4,
            "fusion": "",
            "target": ["CLASS1", "CLASS1", "CLASS2", "CLASS2"] * 2,
            "split": ["random", "blocked"] * 4,
            "fold": 0,
            "accuracy": [0.9, 0.8, 0.7, 0.5, 1.0, 0.9, 0.99, 0.8],
            "f1_macro": 0.5,
        }
    )
    summary = scene_summary(scores)
    assert summary.loc[("decision tree (audio)", "CLASS1"), "outline"] == 0.81
    assert summary.loc[("CNN (image)", "CLASS2"), "paper"] == 0.8927
    assert np.isnan(summary.loc[("CNN (image)", "CLASS1"), "outline"])
    assert summary.loc[("decision tree (audio)", "CLASS2"), "leak"] == pytest.approx(0.2)


def test_report_without_predictions_is_atomic(tmp_path):
    scores = pd.DataFrame(
        {"model": "MLP (audio)", "family": "neural", "modality": "audio", "fusion": "",
         "target": "CLASS2", "split": ["random"], "fold": 0, "accuracy": [0.9],
         "f1_macro": [0.9]}
    )  # fmt: skip
    paths = write_scene_report(tmp_path, scores)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["scene_report.md", "scene_scores.csv", "scene_summary.csv", MARKER]
    )
    assert paths["report"].read_text().startswith("# Scene study")


@pytest.fixture(scope="module")
def tree_scores(data):
    """Decision trees only (fast): scores and out-of-fold predictions on both targets."""
    models = ["decision tree (audio)", "decision tree (both)"]
    return scene_study(data, models=models, n_splits=2, return_predictions=True)


def _report_text(out, scores, predictions, **kwargs):
    return write_scene_report(out, scores, predictions, **kwargs)["report"].read_text()


def test_report_says_when_its_data_are_synthetic(tree_scores, scene_dir, tmp_path):
    scores, predictions = tree_scores
    synthetic = _report_text(tmp_path / "a", scores, predictions, data_dir=scene_dir)
    assert f"**Synthetic data**: `{scene_dir}` was written by `make_synthetic_scene`" in synthetic
    assert "not as a comparison of methods" in synthetic
    # A set without our marker (as the release) is not called synthetic.
    release = tmp_path / "release"
    shutil.copytree(scene_dir, release, ignore=shutil.ignore_patterns(MARKER))
    real = _report_text(tmp_path / "b", scores, predictions, data_dir=release)
    assert "Synthetic data" not in real and "taken to be the Kaggle release" in real
    unknown = _report_text(tmp_path / "c", scores, predictions)
    assert "**Data origin not recorded**" in unknown


def test_report_sets_the_published_real_data_numbers_and_the_class_count_beside_ours(
    tree_scores, scene_dir, tmp_path
):
    scores, predictions = tree_scores
    report = _report_text(tmp_path / "r", scores, predictions, data_dir=scene_dir)
    # The paper's accuracies (shared/docs/data-formats.md 1.3), from REFERENCE_ACCURACY.
    paper = "Bird et al. 2020, arXiv 2007.10175 (image 89.27%, audio 93.72%, late fusion 96.81%"
    assert paper + ", 8 classes)" in report
    # The outline's decision-tree numbers (thesis section 1.5) in the table beside ours.
    assert "| decision tree (both) | CLASS2 |" in report and "| 0.920 | – |" in report
    # 9 strings in the release against the 8 environments of the outline and the paper.
    assert "**9 classes against 8**" in report and "FOOTBALL-MATCH" in report
    assert "This run's CLASS2 task has 9 classes (all of them)" in report


def test_quick_report_labels_every_finding_a_smoke_test(tree_scores, tmp_path):
    scores, predictions = tree_scores
    quick = _report_text(tmp_path / "q", scores, predictions, quick=True)
    full = _report_text(tmp_path / "f", scores, predictions)
    findings = quick.split("## Findings\n", 1)[1].split("\n## ", 1)[0]
    assert findings.lstrip().startswith("> **Quick mode: a smoke test of the pipeline")
    assert f"on {N_PER_CLASS * 9} frames" in findings
    bullets = [line for line in findings.splitlines() if line.startswith("- ")]
    assert len(bullets) >= 2 and all(b.startswith("- [smoke test] **") for b in bullets)
    assert "smoke test" not in full.lower() and "- **Leakage**" in full


def test_cli_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scene", "--data", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ") and "holds no dataset.csv" in err and "--make-synthetic" in err
    )
    (empty / "notes.txt").write_text("mine")
    argv = ["scene", "--data", str(empty), "--out", str(tmp_path / "o"), "--make-synthetic"]
    assert main(argv) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (empty / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name", list(scene_models(quick=True)))
def test_classifier_pipelines_follow_the_conventions(name, data):
    model = scene_models(quick=True)[name].estimator
    assert is_classifier(model)
    twin = clone(model)
    assert twin is not model and twin.get_params().keys() == model.get_params().keys()
    X, y = data.X, data.target_class2
    fitted = clone(model).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X[:5]), fitted.predict(X[:5]))
    assert fitted.predict_proba(X[:5]).shape == (5, 9)
    assert list(fitted.classes_) == sorted(set(y))
    if "decision tree" in name or "MLP" in name:  # the fast ones: a grid search over SliceDicts
        key = next(k for k in model.get_params() if k.endswith("random_state"))
        search = GridSearchCV(model, {key: [0, 1]}, cv=KFold(2, shuffle=True, random_state=0))
        assert search.fit(X, y).best_estimator_.predict(X[:3]).shape == (3,)


@pytest.mark.parametrize(
    "check",
    [
        check_parameters_default_constructible,
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
    ],
    ids=lambda c: c.__name__,
)
def test_colour_features_api_checks(check):
    # scikit-learn's checks that apply to a transformer of images (not of 2-D tables)
    check("ColourFeatures", ColourFeatures())


def test_colour_features_values(data):
    images = np.asarray(data.X["image"])
    features = ColourFeatures(bins=5, grid=2).fit(data.X)
    table = features.transform(data.X)
    assert table.shape == (len(images), 3 * 5 + 3 * 4) == (len(images), features.n_features_out_)
    hist = table[:, :15].reshape(-1, 3, 5)
    np.testing.assert_allclose(hist.sum(axis=2), 1, rtol=1e-6)
    np.testing.assert_allclose(
        table[:, 15:].reshape(-1, 3, 4).mean(axis=2), images.mean(axis=(2, 3)), rtol=1e-5
    )
    frame = clone(features).set_output(transform="pandas").fit_transform(images)
    assert list(frame.columns[[0, 15]]) == ["red_hist0", "red_mean_0_0"]
    holes = images[:4].copy()
    holes[:, :, :4, :4] = np.nan  # a masked cell: ignored, the table stays finite
    assert np.isfinite(features.transform(holes)).all()
    with pytest.raises(ValueError, match="fitted on"):
        features.transform(images[:, :, :4, :4])
    with pytest.raises(ValueError, match="cannot both be 0"):
        ColourFeatures(bins=0, grid=0).fit(images)


def test_importing_the_study_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, sklearn_sfr.experiments, sklearn_sfr.model_selection, sklearn_sfr.features;"
        "bad = [m for m in ('torch', 'skorch', 'matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
