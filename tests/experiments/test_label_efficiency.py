"""The label-efficiency study: the same label subsets for every model, a pretraining that reads
every non-test object, its table, its figure and verdicts that follow their intervals."""

import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.experiments._report import summary_table
from sklearn_sfr.experiments.studies import REGISTRY
from sklearn_sfr.experiments.studies import label_efficiency as study_module
from sklearn_sfr.experiments.studies._base import Comparisons, _labels
from sklearn_sfr.experiments.studies.label_efficiency import (
    MODELS,
    STUDY,
    label_efficiency_study,
    label_subsets,
    subsets_per_fraction,
)

# Networks that train in a fraction of a second: these tests check tables, not accuracy.
NEURAL = {"max_epochs": 1, "width": 4, "embed_dim": 8, "batch_size": 32, "device": "cpu"}
ZOOMS = {"image_zoom": 3, "spectrum_zoom": 3}
FRACTIONS = (0.25, 1.0)


def test_label_subsets_are_nested_reproducible_and_checked():
    pool = np.arange(100, 300, 2)
    subsets = label_subsets(pool, [0.05, 0.3, 1.0], n_subsets=3, random_state=1)
    # The whole pool is one subset, the same objects whatever the draw.
    assert sorted(subsets) == sorted(
        [(0.05, s) for s in range(3)] + [(0.3, s) for s in range(3)] + [(1.0, 0)]
    )
    for s in range(3):
        assert len(subsets[0.05, s]) == 5 and len(subsets[0.3, s]) == 30
        assert set(subsets[0.05, s]) <= set(subsets[0.3, s]) <= set(pool)
    assert not np.array_equal(subsets[0.3, 0], subsets[0.3, 1])
    np.testing.assert_array_equal(subsets[1.0, 0], pool)
    again = label_subsets(pool, [0.05, 0.3, 1.0], n_subsets=3, random_state=1)
    assert all(np.array_equal(subsets[k], again[k]) for k in subsets)
    assert len(label_subsets(pool, [0.001], n_subsets=1)[0.001, 0]) == 2  # never fewer
    with pytest.raises(ValueError, match=r"fractions must be in \(0, 1\]"):
        label_subsets(pool, [0.0, 0.5], n_subsets=1)
    with pytest.raises(ValueError, match="n_subsets must be a positive integer"):
        label_subsets(pool, [0.5], n_subsets=0)
    with pytest.raises(ValueError, match="or 'auto'"):
        label_subsets(pool, [0.5], n_subsets="many")


def test_small_fractions_get_more_subsets_by_default():
    """``"auto"``: three subsets from 10 % of the labels up, more below (their verdicts need
    them), at most ten; every fraction's subset s is nested in the larger fractions' subset s."""
    fractions = [0.01, 0.03, 0.05, 0.1, 0.3, 1.0]
    counts = subsets_per_fraction(fractions)
    assert counts == {0.01: 10, 0.03: 10, 0.05: 6, 0.1: 3, 0.3: 3, 1.0: 1}
    assert all(n == 1 for n in subsets_per_fraction([1.0], 5).values())
    pool = np.arange(2000)
    subsets = label_subsets(pool, fractions, random_state=3)
    for f, n in counts.items():
        assert sorted(s for g, s in subsets if g == f) == list(range(n))
    for s in range(3):
        assert set(subsets[0.01, s]) <= set(subsets[0.05, s]) <= set(subsets[0.3, s])
    assert len({tuple(subsets[0.01, s]) for s in range(10)}) == 10
    assert STUDY.settings["label_subsets"] == "auto"
    (line,) = STUDY.settings_lines(dict(STUDY.settings))
    assert "1 % (10 subsets)" in line and "10 % (3 subsets)" in line and "100 % (1 subset)" in line


@pytest.fixture(scope="module")
def run(synthetic_cube):
    """The study on the session cube, with a record of what each training saw."""
    calls, pretrainings = [], []
    evaluate, pretrain = study_module.evaluate_models, study_module.pretrain

    def spy_evaluate(models, **kwargs):
        calls.append((tuple(models), np.asarray(kwargs["train"]), np.asarray(kwargs["test"])))
        return evaluate(models, **kwargs)

    def spy_pretrain(X, y, rows, **kwargs):
        model = pretrain(X, y, rows, **kwargs)
        pretrainings.append((np.asarray(y)[rows], np.asarray(X["flag"])[rows], model))
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_module, "evaluate_models", spy_evaluate)
        patch.setattr(study_module, "pretrain", spy_pretrain)
        scores, predictions = label_efficiency_study(
            synthetic_cube, fractions=FRACTIONS, n_subsets=2, neural_params=NEURAL,
            contrastive_params={"pretrain_epochs": 1, "validation_fraction": 0.0}, **ZOOMS,
        )  # fmt: skip
    data = load_hisscube(synthetic_cube, flag=None, **ZOOMS)
    return scores, predictions, calls, pretrainings, data


@pytest.mark.slow  # the study's trainings: over a minute on a shared CPU
def test_every_model_trains_on_the_same_subsets(run):
    scores, _, calls, _, data = run
    flag = data.frame["FLAG"].to_numpy()
    tests = {tuple(test) for _, _, test in calls}
    assert len(tests) == 1  # one test set for every training
    (test,) = tests
    assert (flag[list(test)] == 0).all() and np.isfinite(data.y[list(test)]).all()
    # One call per subset, each with every model: they cannot see different labels.
    assert all(models == tuple(MODELS) for models, _, _ in calls)
    trained = [train for _, train, _ in calls]
    pool = np.setdiff1d(np.flatnonzero((flag == 0) & np.isfinite(data.y)), test)
    expected = label_subsets(pool, FRACTIONS, n_subsets=2, random_state=0)
    assert len(trained) == len(expected) == 3  # 25 % twice, 100 % once
    assert all(any(np.array_equal(t, e) for t in trained) for e in expected.values())
    assert all(np.isin(t, pool).all() for t in trained)
    assert sorted(scores["n_labels"].unique()) == sorted({len(e) for e in expected.values()})


@pytest.mark.slow  # the study's trainings: over a minute on a shared CPU
def test_pretraining_reads_every_non_test_object(run):
    scores, _, calls, pretrainings, data = run
    ((y, flag, model),) = pretrainings  # once, shared by both contrastive models
    test = calls[0][2]
    n_rows = len(data.y) - len(test)
    assert len(y) == n_rows
    assert np.isnan(y).any() and (flag != 0).any()  # unlabelled and flagged objects too
    seen = model.pretrain_net_.history[0, "batches", :, "train_batch_size"]
    assert sum(seen) == n_rows
    contrastive = scores["model"].str.startswith("contrastive")
    assert (scores.loc[contrastive, "n_pretrain"] == n_rows).all()
    assert (scores.loc[~contrastive, "n_pretrain"] == 0).all()
    # Only labels from the subset trained each head: fewer than the objects pretrained on.
    assert (scores.loc[contrastive, "n_labels"] < n_rows).all()


@pytest.mark.slow  # the study's trainings: over a minute on a shared CPU
def test_table_shape_and_predictions(run):
    scores, predictions, calls, _, data = run
    test = calls[0][2]
    # 4 models x (2 subsets at 25 % + 1 at 100 %)
    assert len(scores) == len(MODELS) * 3
    assert list(scores.columns[:5]) == ["model", "fraction", "subset", "n_labels", "n_pretrain"]
    assert (scores["split"] == "test").all() and (scores["n_test"] == len(test)).all()
    assert np.isfinite(scores["rmse"]).all()
    assert set(zip(scores["fraction"], scores["subset"])) == {(0.25, 0), (0.25, 1), (1.0, 0)}
    # Each subset is a repeat of its (model, fraction): the summary averages them.
    assert scores.groupby(["model", "fraction"])["repeat"].nunique().to_dict() == {
        (m, f): 2 if f < 1 else 1 for m in MODELS for f in FRACTIONS
    }
    np.testing.assert_array_equal(predictions["y_true"], data.y[predictions["position"]])
    assert set(predictions["position"]) == set(test)
    table = summary_table(scores, STUDY.keys, predictions)
    assert len(table) == len(MODELS) * len(FRACTIONS)
    assert (table["rmse_low"] <= table["rmse"]).all() and (
        table["rmse"] <= table["rmse_high"]
    ).all()


@pytest.mark.slow  # the study's trainings: over a minute on a shared CPU
def test_the_figure_is_drawn(run, tmp_path):
    scores, predictions, _, _, data = run
    table = summary_table(scores, STUDY.keys, predictions)
    figures = STUDY.figures(scores, predictions, data, tmp_path, table)
    ((path, caption),) = figures.values()
    assert path.exists() and path.stat().st_size > 0 and "labelled fraction" in caption


def _verdict_inputs(fusion_noise, tree_noise, n=400):
    """A table and predictions where the probe predicts with noise 0.3, the network from
    scratch and the tree with the given noise, at one fraction."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=n)
    noise = {"contrastive (probe)": 0.3, "fusion (scratch)": fusion_noise,
             "tree-lines": tree_noise}  # fmt: skip
    frames = []
    for model, sigma in noise.items():
        pred = y + sigma * rng.normal(size=n) if sigma else y.copy()
        frames.append(pd.DataFrame({"model": model, "fraction": 0.1, "subset": 0,
                                    "position": np.arange(n), "y_true": y, "y_pred": pred,
                                    "repeat": 0}))  # fmt: skip
    predictions = pd.concat(frames, ignore_index=True)
    rmse = predictions.groupby("model").apply(
        lambda g: float(np.sqrt(np.mean((g["y_true"] - g["y_pred"]) ** 2))), include_groups=False
    )
    table = pd.DataFrame({"model": rmse.index, "fraction": 0.1, "rmse": rmse.to_numpy()})
    return {STUDY.name: table}, Comparisons({STUDY.name: predictions})


def _conclusion(fusion_noise, tree_noise):
    tables, compare = _verdict_inputs(fusion_noise, tree_noise)
    (line,) = STUDY.conclusions(tables, lambda row: f"{row['rmse']:.3f} dex", compare)
    return line


def test_verdicts_follow_the_interval():
    # Clearly worse from scratch, clearly better tree.
    line = _conclusion(fusion_noise=0.8, tree_noise=0.1)
    assert line.startswith("**Label efficiency at 10 % of the labels**: contrastive (probe)")
    scratch, tree = line.split("; against ")[1:]
    assert scratch.startswith("fusion (scratch)") and " it wins (" in scratch
    assert tree.startswith("tree-lines") and " it loses (" in tree
    assert "95 % interval" in scratch
    # The same predictions as the probe's, up to a hair: no verdict word at all.
    line = _conclusion(fusion_noise=0.3001, tree_noise=0.8)
    scratch = line.split("; against ")[1]
    assert "no detectable difference" in scratch
    assert " wins" not in scratch and " loses" not in scratch


def test_the_study_is_registered_with_quick_settings():
    assert REGISTRY["label_efficiency"] is STUDY
    assert set(STUDY.quick_settings) == set(STUDY.settings)
    assert len(STUDY.quick_settings["label_fractions"]) < len(STUDY.settings["label_fractions"])
    assert STUDY.quick_settings["label_subsets"] == 1


def test_the_shared_pretraining_is_recorded_once(synthetic_cube):
    """Every contrastive fit reuses the one pretraining: its curve is kept once, under its own
    name, and each fit keeps only its own regression stage."""
    history = []
    label_efficiency_study(
        synthetic_cube, fractions=FRACTIONS, n_subsets=2, neural_params=NEURAL,
        models=["contrastive (probe)", "contrastive (fine-tuned)"],
        contrastive_params={"pretrain_epochs": 2}, history=history, **ZOOMS,
    )  # fmt: skip
    (frame,) = history
    pretraining = frame[frame["stage"] == "pretraining"]
    assert set(pretraining["model"]) == {study_module.PRETRAINING}
    assert sorted(pretraining["epoch"]) == [1, 2]  # its two epochs, once
    fits = frame[frame["model"] != study_module.PRETRAINING]
    assert set(fits["stage"]) == {"regression"}
    # The fine-tuned model on three subsets (25 % twice, 100 % once), one epoch each; the
    # probe is a least-squares fit (head="ridge"), with no epochs to record.
    assert len(fits.groupby(["model", "fraction", "subset"])) == 3
    assert set(fits["model"]) == {"contrastive (fine-tuned)"}
    # Its panel in the report is named after it, not after a fraction it has none of.
    names = set(_labels(frame, STUDY.keys))
    assert study_module.PRETRAINING in names
    assert "contrastive (fine-tuned) / 0.25" in names
