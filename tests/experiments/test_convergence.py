"""Networks compared at convergence (#19): the epochs each fit used and whether it reached the
cap, its per-epoch history saved with the study and plotted in the report, and, with
cross-validation, the folds' corrected resampled t-test beside each stated difference."""

import json

import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.experiments import (
    evaluate_models,
    flag_study,
    make_model,
    render_report,
    resolution_study,
    run_study,
    study_split,
)
from sklearn_sfr.experiments._evaluate import HISTORY_COLUMNS
from sklearn_sfr.experiments.studies._base import (
    CV_METHOD,
    Comparisons,
    cap_sentence,
    training_summary,
)
from sklearn_sfr.metrics import corrected_resampled_ttest
from sklearn_sfr.plotting import plot_training_curves

TINY = {"width": 4, "embed_dim": 8, "batch_size": 32, "device": "cpu"}
FIT = ["split", "fold", "repeat"]


@pytest.fixture(scope="module")
def data(synthetic_cube):
    return load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=0)


def _fits(history, stage="regression"):
    """Epochs, cap and kept epoch of each fit of a history."""
    rows = history[history["stage"] == stage]
    kept = rows["epoch"].where(rows["best"].astype(bool))
    return (
        rows.assign(kept=kept)
        .groupby(["model", *FIT])
        .agg(
            epochs=("epoch", "size"),
            last=("epoch", "max"),
            cap=("max_epochs", "first"),
            kept=("kept", "max"),
            n_kept=("best", "sum"),
        )
    )


# -- evaluate_models ----------------------------------------------------------------------------
def test_epochs_and_hit_cap_agree_with_the_history(data):
    train, test = study_split(len(data.y), test_size=0.25, random_state=0)
    models = {
        "capped": make_model("spectrum", max_epochs=2, **TINY),
        # A learning rate too small to change the validation loss: early stopping ends the
        # training after `patience` epochs without improvement, well before the cap.
        "stalled": make_model("spectrum", max_epochs=9, patience=2, lr=1e-12, **TINY),
        "tree": make_model("tree-lines"),
    }
    history = []
    scores, _ = evaluate_models(models, data.X, data.y, train=train, test=test, cv=2,
                                repeats=1, history=history)  # fmt: skip
    assert {"epochs", "hit_cap"} <= set(scores.columns)
    assert len(history) == 1 and list(history[0].columns) == list(HISTORY_COLUMNS)
    tree = scores[scores["model"] == "tree"]
    assert tree["epochs"].isna().all() and tree["hit_cap"].isna().all()
    assert set(history[0]["model"]) == {"capped", "stalled"}  # a tree has no history

    fits = _fits(history[0])
    nets = scores[scores["model"] != "tree"].set_index(["model", *FIT])
    assert len(nets) == len(fits) == 2 * (2 + 1)  # each model: 2 folds and the test fit
    fits = fits.loc[nets.index]
    # One row per epoch, numbered 1..epochs, and exactly one kept epoch per fit.
    np.testing.assert_array_equal(fits["epochs"], nets["epochs"])
    np.testing.assert_array_equal(fits["last"], nets["epochs"])
    assert (fits["n_kept"] == 1).all()
    np.testing.assert_array_equal(nets["hit_cap"].astype(bool), fits["epochs"] >= fits["cap"])
    capped, stalled = nets.loc["capped"], nets.loc["stalled"]
    assert (capped["epochs"] == 2).all() and capped["hit_cap"].astype(bool).all()
    assert (stalled["epochs"] == 3).all() and not stalled["hit_cap"].astype(bool).any()
    assert (fits.loc["stalled", "kept"] == 1).all()  # early stopping kept the first epoch


def test_a_cached_model_brings_its_history_under_the_new_name(data):
    train, test = study_split(len(data.y), test_size=0.25, random_state=0)
    cache, first, again = {}, [], []
    model = make_model("spectrum", max_epochs=2, **TINY)
    evaluate_models({"a": model}, data.X, data.y, train=train, test=test, cache=cache,
                    history=first)  # fmt: skip
    evaluate_models({"b": model}, data.X, data.y, train=train, test=test, cache=cache,
                    history=again)  # fmt: skip
    assert set(again[0]["model"]) == {"b"}
    pd.testing.assert_frame_equal(again[0].drop(columns="model"), first[0].drop(columns="model"))


# -- the studies --------------------------------------------------------------------------------
def test_studies_label_their_history_with_their_columns(synthetic_cube):
    neural = {"max_epochs": 2, **TINY}
    history = []
    scores, _ = resolution_study(synthetic_cube, image_zooms=[3], spectrum_zooms=[2, 3],
                                 neural_params=neural, history=history)  # fmt: skip
    (frame,) = history
    assert list(frame.columns[:5]) == ["model", "image_zoom", "spectrum_zoom", "image_size",
                                       "spectrum_length"]  # fmt: skip
    assert sorted(frame["spectrum_length"].unique()) == sorted(scores["spectrum_length"])
    history = []
    flag_study(synthetic_cube, models=["spectrum"], image_zoom=3, spectrum_zoom=3,
               neural_params=neural, history=history)  # fmt: skip
    assert set(history[0]["trained_on"]) == {"FLAG=0", "all labelled"}
    table = training_summary(history[0], ("model", "trained_on"))
    assert table[["trained_on", "epochs", "cap", "reached cap"]].values.tolist() == [
        ["FLAG=0", "2", 2, "yes"],
        ["all labelled", "2", 2, "yes"],
    ]
    sentence = cap_sentence(table)
    assert "reached the cap of 2 epochs" in sentence
    assert "spectrum / FLAG=0" in sentence and "spectrum / all labelled" in sentence


def test_cap_sentence_names_only_the_configurations_at_the_cap():
    def fits(model, epochs, repeat=0):
        return pd.DataFrame({"model": model, "split": "test", "fold": 0, "repeat": repeat,
                             "stage": "regression", "max_epochs": 4,
                             "epoch": range(1, epochs + 1),
                             "best": np.arange(1, epochs + 1) == epochs})  # fmt: skip

    early = training_summary(pd.concat([fits("a", 3), fits("a", 2, repeat=1)]))
    assert early[["fits", "epochs", "reached cap"]].values.tolist() == [[2, "2–3", "no"]]
    assert "every network stopped early on its validation loss" in cap_sentence(early)
    mixed = training_summary(pd.concat([fits("a", 3), fits("b", 4), fits("b", 2, repeat=1)]))
    assert mixed["reached cap"].tolist() == ["no", "1 of 2"]
    assert cap_sentence(mixed) == (
        "**Training**: reached the cap of 4 epochs, so possibly stopped before converging: "
        "b (1 of 2 fits); the others stopped early on their validation loss."
    )


# -- the corrected resampled t-test ---------------------------------------------------------------
def _cv_scores(rmse_a, rmse_b, n_train=(40, 40, 40), n_test=(20, 20, 20)):
    rows = []
    for model, values in (("a", rmse_a), ("b", rmse_b)):
        for fold, value in enumerate(values):
            rows.append({"model": model, "split": "cv", "fold": fold, "rmse": value,
                         "n_train": n_train[fold], "n_test": n_test[fold]})  # fmt: skip
    return pd.DataFrame(rows)


def test_cv_difference_is_the_corrected_resampled_ttest_of_the_folds():
    scores = _cv_scores([0.50, 0.52, 0.49], [0.55, 0.56, 0.53])
    compare = Comparisons(scores={"s": scores})
    result = compare.cv_difference(("s", {"model": "a"}), ("s", {"model": "b"}))
    expected = corrected_resampled_ttest([0.50, 0.52, 0.49], [0.55, 0.56, 0.53],
                                         n_train=40, n_test=20)  # fmt: skip
    assert result == expected
    words = compare.said(("s", {"model": "a"}), ("s", {"model": "b"}), "wins", "loses")
    assert CV_METHOD in words and f"p = {expected.pvalue:.2g}" in words
    assert words.startswith("cannot be decided")  # no test predictions: no verdict


def test_cv_difference_needs_paired_folds():
    compare = Comparisons(scores={"s": _cv_scores([0.5, 0.5, 0.5], [0.6, 0.6, 0.6])})
    assert compare.cv_difference(("s", {"model": "a"}), ("other", {"model": "b"})) is None
    # Folds of different training sets (the FLAG study's two trainings) are not paired.
    other = _cv_scores([0.5, 0.5, 0.5], [0.6, 0.6, 0.6]).assign(n_train=50)
    both = pd.concat([_cv_scores([0.5] * 3, [0.6] * 3).query("model == 'a'"),
                      other.query("model == 'b'")])  # fmt: skip
    assert (
        Comparisons(scores={"s": both}).cv_difference(("s", {"model": "a"}), ("s", {"model": "b"}))
        is None
    )
    test_only = _cv_scores([0.5] * 3, [0.6] * 3).assign(split="test")
    assert (
        Comparisons(scores={"s": test_only}).cv_difference(
            ("s", {"model": "a"}), ("s", {"model": "b"})
        )
        is None
    )


# -- plot_training_curves -------------------------------------------------------------------------
def test_plot_training_curves_draws_a_panel_per_model_and_stage():
    history = pd.DataFrame({
        "model": ["m"] * 6 + ["m"] * 2, "stage": ["regression"] * 6 + ["pretraining"] * 2,
        "repeat": [0, 0, 0, 1, 1, 1, 0, 0], "epoch": [1, 2, 3, 1, 2, 3, 1, 2],
        "train_loss": [1.0, 0.8, 0.7, 1.1, 0.9, 0.8, 4.0, 3.9],
        "valid_loss": [0.9, 0.85, 0.86, 1.0, 0.9, 0.88, 4.1, 4.0], "max_epochs": 3,
    })  # fmt: skip
    fig = plot_training_curves(history)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["m\n2 fits, up to 3 epochs, 2 reached the cap",
                      "m (pretraining)\nkept epoch 2 of 2"]  # fmt: skip
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["training loss", "validation loss", "kept epoch", "cap on epochs"]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"model": ["a"], "epoch": [1]}), "no column 'train_loss'"),
        (pd.DataFrame({"model": ["a"], "epoch": [1], "train_loss": ["x"]}), "numeric"),
        (pd.DataFrame(columns=["model", "epoch", "train_loss"]), "numeric|no rows"),
    ],
)
def test_plot_training_curves_rejects_bad_history(frame, match):
    with pytest.raises(ValueError, match=match):
        plot_training_curves(frame)


# -- the report -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cv_run(synthetic_cube, tmp_path_factory):
    """The modality study, quick, with 3-fold cross-validation (its networks stop at the cap)."""
    out = tmp_path_factory.mktemp("convergence") / "report"
    result = run_study(synthetic_cube, out, studies=["modality"], quick=True, cv=3,
                       verbose=False)  # fmt: skip
    return result, out


@pytest.mark.slow
def test_the_report_saves_and_plots_the_training_history(cv_run):
    result, out = cv_run
    history = pd.read_csv(out / "modality_history.csv")
    assert list(history.columns) == ["model", "modality", *HISTORY_COLUMNS[1:]]
    scores = result["scores"]["modality"]
    fits = _fits(history).loc[scores.set_index(["model", *FIT]).index]
    np.testing.assert_array_equal(fits["epochs"], scores["epochs"])
    assert set(history["split"]) == {"cv", "test"}
    markdown = (out / "report.md").read_text()
    assert "modality_training.png" in markdown
    # quick mode: 3 epochs, too few for early stopping
    assert "**Training**: every network reached the cap of 3 epochs" in markdown
    assert "| kept epoch |" in markdown  # the epochs table
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["neural_params"]["max_epochs"] == 3
    assert "until the shared cap of 3 epochs" in markdown


@pytest.mark.slow
def test_with_cv_every_stated_difference_gets_the_corrected_ttest(cv_run):
    result, out = cv_run
    fusion_line = next(line for line in result["conclusions"] if "**Modalities**" in line)
    assert f"over the 3 cross-validation folds, {CV_METHOD}" in fusion_line
    markdown = (out / "report.md").read_text()
    assert f"3 folds; each difference the conclusions state also gets the folds' {CV_METHOD}" in (
        markdown
    )


@pytest.mark.slow
def test_render_report_reads_the_history_back_and_renders_without_it(cv_run, tmp_path):
    import shutil

    _, out = cv_run
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    (folder / "modality_training.png").unlink()
    render_report(folder, verbose=False)
    assert (folder / "modality_training.png").is_file()  # redrawn from the saved history
    assert "**Training**" in (folder / "report.md").read_text()
    # A folder of an older version, without the history: the report renders without it.
    (folder / "modality_history.csv").unlink()
    again = render_report(folder, verbose=False)
    markdown = (folder / "report.md").read_text()
    assert "**Training**" not in markdown and "modality_training.png" not in markdown
    assert any("**Modalities**" in line for line in again["conclusions"])


def test_a_resolution_pair_may_not_have_its_own_cap(synthetic_cube, tmp_path):
    with pytest.raises(ValueError, match="resolution_params sets max_epochs.*neural_params"):
        run_study(synthetic_cube, tmp_path / "r", studies=["resolution"], quick=True,
                  resolution_params={"max_epochs": 8}, verbose=False)  # fmt: skip
    assert not (tmp_path / "r").exists()
