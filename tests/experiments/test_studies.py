"""The SFR studies on a tiny cube: their tables, their split, their cross-validation and
the time and memory they measure."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, cross_validate
from sklearn.tree import DecisionTreeRegressor

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.experiments import (
    SCORE_COLUMNS,
    Measure,
    baseline_study,
    evaluate_models,
    flag_study,
    fusion_study,
    has_neighbour,
    isolation_study,
    make_model,
    modality_study,
    resolution_study,
    study_split,
)
from sklearn_sfr.metrics import get_scorers, regression_report, rmse

# Networks that train in a fraction of a second: these tests check tables, not accuracy.
NEURAL = {"max_epochs": 1, "width": 4, "embed_dim": 8, "batch_size": 32}
METRICS = ["rmse", "mae", "r2", "bias", "nmad", "outlier_fraction"]
PREDICTION_COLUMNS = ["model", "position", "y_true", "y_pred", "repeat"]


@pytest.fixture(scope="module")
def data(synthetic_cube):
    """The FLAG=0 objects of the session cube at the coarsest zoom (8 px, 577 px)."""
    return load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=0)


def _columns(*extra):
    """SCORE_COLUMNS with a study's own columns right after ``model``."""
    return [SCORE_COLUMNS[0], *extra, *SCORE_COLUMNS[1:]]


def check_scores(scores, predictions, data_y, noise_floor, *, n_train, n_test):
    """What every study's tables must satisfy on the test split (``data_y``: y of X's rows)."""
    test = scores[scores["split"] == "test"]
    assert set(scores["split"]) <= {"test", "cv"}
    assert (test["fold"] == 0).all()
    assert (test["n_train"] == n_train).all() and (test["n_test"] == n_test).all()
    assert np.isfinite(test[[*METRICS, "fit_time", "predict_time"]].to_numpy()).all()
    assert (test[["fit_time", "predict_time", "peak_memory_mb"]] >= 0).all().all()
    assert (scores["noise_floor"] == noise_floor).all()
    np.testing.assert_allclose(scores["rmse_over_floor"], scores["rmse"] / noise_floor)
    # The predictions are those of the test rows: same objects, same RMSE.
    # (the isolation study adds which objects have a neighbour)
    columns = [c for c in predictions.columns if c != "neighbour"]
    assert columns[-4:] == ["position", "y_true", "y_pred", "repeat"]
    np.testing.assert_array_equal(predictions["y_true"], data_y[predictions["position"]])
    for model, group in predictions.groupby("model", sort=False):
        assert len(group) == n_test
        rows = test[test["model"] == model]
        np.testing.assert_allclose(rows["rmse"], rmse(group["y_true"], group["y_pred"]))


# -- study_split -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(5, 300),
    test_size=st.floats(0.1, 0.5),
    random_state=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_study_split_is_a_disjoint_covering_reproducible_partition(
    n, test_size, random_state, data
):
    use_eligible = data.draw(st.booleans(), label="use_eligible")
    eligible = None
    if use_eligible:
        eligible = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        # train_test_split needs at least one train and one test object in the pool.
        eligible[:2] = True
    train, test = study_split(n, test_size=test_size, random_state=random_state, eligible=eligible)
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert (np.diff(train) > 0).all() and (np.diff(test) > 0).all()
    pool = n if eligible is None else int(eligible.sum())
    assert len(test) == math.ceil(test_size * pool)
    if eligible is not None:
        assert eligible[test].all()
        assert np.isin(np.flatnonzero(~eligible), train).all()
    again = study_split(n, test_size=test_size, random_state=random_state, eligible=eligible)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)


def test_study_split_depends_on_the_seed():
    tests = {tuple(study_split(100, random_state=seed)[1]) for seed in range(5)}
    assert len(tests) == 5


def test_study_split_rejects_an_eligible_mask_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"eligible must have shape \(10,\)"):
        study_split(10, eligible=np.ones(9, bool))


# -- the studies --------------------------------------------------------------------------------
def test_baseline_study(data):
    scores, predictions = baseline_study(data)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert list(scores["model"]) == [
        "tree-spectrum",
        "tree-lines",
        "tree-pixels",
        "tree-photometry",
    ]
    assert (scores["split"] == "test").all()
    assert list(predictions.columns) == PREDICTION_COLUMNS
    train, test = study_split(len(data.y))
    np.testing.assert_array_equal(predictions["position"][: len(test)], test)
    check_scores(
        scores, predictions, data.y, data.noise_floor, n_train=len(train), n_test=len(test)
    )


def test_cross_validation_rows_equal_sklearns_cross_validate(data):
    # Leaves of 2 objects so that the two models differ and each fold's tree is its own.
    models = {
        "photometry": make_model("tree-photometry", min_samples_leaf=2),
        "pixels": make_model("tree-pixels", min_samples_leaf=2),
    }
    train, test = study_split(len(data.y), random_state=0)
    scores, _ = evaluate_models(
        models,
        data.X,
        data.y,
        train=train,
        test=test,
        cv=2,
        noise_floor=data.noise_floor,
        random_state=0,
    )
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert list(scores["split"]) == ["cv", "cv", "test"] * 2
    assert list(scores["fold"]) == [0, 1, 0] * 2
    folds = KFold(2, shuffle=True, random_state=0)
    sizes = [(len(a), len(b)) for a, b in folds.split(train)]
    signs = {
        "neg_rmse": ("rmse", -1),
        "neg_mae": ("mae", -1),
        "r2": ("r2", 1),
        "bias": ("bias", 1),
        "neg_nmad": ("nmad", -1),
        "neg_outlier_fraction": ("outlier_fraction", -1),
    }
    for name, model in models.items():
        cv_rows = scores[(scores["model"] == name) & (scores["split"] == "cv")]
        expected = cross_validate(
            model, data.X[train], data.y[train], cv=folds, scoring=get_scorers()
        )
        for scorer, (column, sign) in signs.items():
            np.testing.assert_allclose(cv_rows[column], sign * expected[f"test_{scorer}"])
        assert list(zip(cv_rows["n_train"], cv_rows["n_test"])) == sizes
        assert np.isfinite(cv_rows[METRICS].to_numpy()).all()
        np.testing.assert_allclose(cv_rows["rmse_over_floor"], cv_rows["rmse"] / data.noise_floor)
    # The two models really are different models, so the comparison above says something.
    assert not np.allclose(scores["rmse"][:2], scores["rmse"][3:5])


def test_baseline_study_with_cv_has_k_rows_per_model(data):
    scores, predictions = baseline_study(data, models=["tree-lines", "tree-pixels"], cv=2)
    for model in ("tree-lines", "tree-pixels"):
        rows = scores[scores["model"] == model]
        assert list(rows["split"]) == ["cv", "cv", "test"]
        assert list(rows["fold"]) == [0, 1, 0]
        cv = rows[rows["split"] == "cv"]
        n_train = rows[rows["split"] == "test"]["n_train"].iloc[0]
        # The folds split the training objects, and only them.
        assert (cv["n_train"] + cv["n_test"] == n_train).all()
        assert cv["n_test"].sum() == n_train
    # Predictions stay the test split's only.
    assert len(predictions) == 2 * len(study_split(len(data.y))[1])


def test_modality_study(data):
    scores, predictions = modality_study(data, neural_params=NEURAL)
    assert list(scores.columns) == _columns("modality")
    assert list(scores["model"]) == ["image", "spectrum", "fusion (intermediate)"]
    assert list(scores["modality"]) == ["image", "spectrum", "both"]
    assert list(predictions.columns) == PREDICTION_COLUMNS
    train, test = study_split(len(data.y))
    check_scores(
        scores, predictions, data.y, data.noise_floor, n_train=len(train), n_test=len(test)
    )


def test_fusion_study(data):
    scores, predictions = fusion_study(
        data,
        fusions=("early", "late"),
        contrastive_params={"pretrain_epochs": 1},
        neural_params=NEURAL,
    )
    assert list(scores.columns) == _columns("fusion")
    assert list(scores["model"]) == ["fusion (early)", "fusion (late)", "contrastive"]
    assert list(scores["fusion"]) == ["early", "late", "contrastive"]
    train, test = study_split(len(data.y))
    check_scores(
        scores, predictions, data.y, data.noise_floor, n_train=len(train), n_test=len(test)
    )


def test_resolution_study(synthetic_cube, data):
    scores, predictions = resolution_study(
        synthetic_cube, image_zooms=(2, 3), spectrum_zooms=(3,), neural_params=NEURAL
    )
    extra = ["image_zoom", "spectrum_zoom", "image_size", "spectrum_length"]
    assert list(scores.columns) == _columns(*extra)
    assert list(predictions.columns) == ["model", *extra, "position", "y_true", "y_pred", "repeat"]
    assert scores[extra].values.tolist() == [[2, 3, 16, 577], [3, 3, 8, 577]]
    assert list(scores["model"]) == ["16 px x 577 px", "8 px x 577 px"]
    train, test = study_split(len(data.y))
    for (size,), group in predictions.groupby(["image_size"], sort=False):
        rows = scores[scores["image_size"] == size]
        check_scores(rows, group, data.y, data.noise_floor, n_train=len(train), n_test=len(test))
    assert (scores["peak_memory_mb"] >= 0).all()


def test_resolution_study_reads_each_zoom_once(synthetic_cube, monkeypatch):
    """Run one pair after another, the grid reads each image zoom and spectral level once,
    and its pairs see the same arrays (and give the same predictions) as separate loads."""
    from sklearn_sfr.experiments.studies import resolution

    reads = []
    real = resolution.load_hisscube

    def counted(cube, **kwargs):
        reads.append((kwargs.get("modalities"), kwargs.get("image_zoom"),
                      kwargs.get("spectrum_zoom")))  # fmt: skip
        return real(cube, **kwargs)

    monkeypatch.setattr(resolution, "load_hisscube", counted)
    zooms = dict(image_zooms=(2, 3), spectrum_zooms=(2, 3))
    scores, predictions = resolution_study(synthetic_cube, neural_params=NEURAL, **zooms)
    assert len(scores) == 4
    assert sorted(map(str, reads)) == sorted(map(str, [
        (("image",), 2, None), (("spectrum",), None, 2), (("spectrum",), None, 3),
        (("image",), 3, None),
    ]))  # fmt: skip
    # The same pair loaded on its own: identical arrays, hence identical predictions.
    pair = resolution._ZoomReads(synthetic_cube, 0).pair(3, 2)
    alone = real(synthetic_cube, image_zoom=3, spectrum_zoom=2)
    for key in ("image", "spectrum", "flag", "redshift"):
        np.testing.assert_array_equal(pair.X[key], alone.X[key])
    np.testing.assert_array_equal(pair.y, alone.y)
    _, single_pred = resolution_study(
        synthetic_cube, image_zooms=(3,), spectrum_zooms=(2,), neural_params=NEURAL
    )
    mine = predictions[(predictions["image_zoom"] == 3) & (predictions["spectrum_zoom"] == 2)]
    np.testing.assert_array_equal(mine["y_pred"].to_numpy(), single_pred["y_pred"].to_numpy())


def test_flag_study_tests_on_the_same_flag0_objects(synthetic_cube):
    models = ("tree-photometry",)
    scores, predictions = flag_study(synthetic_cube, models=models, image_zoom=3, spectrum_zoom=3)
    assert list(scores.columns) == _columns("trained_on")
    assert list(predictions.columns) == [
        "model",
        "trained_on",
        "position",
        "y_true",
        "y_pred",
        "repeat",
    ]
    assert list(scores["trained_on"]) == ["FLAG=0", "all labelled"]
    # The positions index the labelled objects of the whole cube.
    everything = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    labelled = np.isfinite(everything.y)
    flags = everything.frame["FLAG"].to_numpy()[labelled]
    y = everything.y[labelled]
    assert (flags != 0).any(), "the cube must have labelled flagged objects for this test"
    by_training = {k: g["position"].to_numpy() for k, g in predictions.groupby("trained_on")}
    np.testing.assert_array_equal(by_training["FLAG=0"], by_training["all labelled"])
    test = by_training["FLAG=0"]
    assert (flags[test] == 0).all()
    train, expected_test = study_split(len(y), eligible=flags == 0)
    np.testing.assert_array_equal(test, expected_test)
    n_train = dict(zip(scores["trained_on"], scores["n_train"]))
    assert n_train["FLAG=0"] == int((flags[train] == 0).sum())
    assert n_train["all labelled"] == len(train) == len(y) - len(test)
    for trained_on, group in predictions.groupby("trained_on"):
        check_scores(
            scores[scores["trained_on"] == trained_on],
            group,
            y,
            everything.noise_floor,
            n_train=n_train[trained_on],
            n_test=len(test),
        )


def test_flag_study_never_tests_on_a_flagged_object_with_cv(synthetic_cube):
    scores, _ = flag_study(
        synthetic_cube, models=("tree-lines",), image_zoom=3, spectrum_zoom=3, cv=2
    )
    assert list(scores["split"]) == ["cv", "cv", "test"] * 2
    n_train = scores[scores["split"] == "test"].set_index("trained_on")["n_train"]
    for trained_on, rows in scores[scores["split"] == "cv"].groupby("trained_on"):
        # The folds split that training's objects: the FLAG=0 folds see no flagged object.
        assert rows["n_train"].sum() == rows["n_test"].sum() == n_train[trained_on]


def test_isolation_study(data):
    scores, predictions = isolation_study(data, models=("tree-photometry",))
    assert list(scores.columns) == _columns("isolation", "objects")
    assert list(predictions.columns) == [
        "model",
        "isolation",
        "position",
        "y_true",
        "y_pred",
        "repeat",
        "neighbour",
    ]
    neighbour, source = has_neighbour(data)
    assert source == "truth" and scores.attrs["neighbours_from"] == "truth"
    train, test = study_split(len(data.y))
    n_with = int(neighbour[test].sum())
    assert 0 < n_with < len(test), "the test split must hold objects with and without"
    assert scores[["isolation", "objects"]].values.tolist() == [
        [isolation, objects]
        for isolation in ("none", "ObjectIsolator")
        for objects in ("all", "with neighbour", "without neighbour")
    ]
    n_test = dict(zip(scores["objects"], scores["n_test"]))
    assert n_test == {
        "all": len(test),
        "with neighbour": n_with,
        "without neighbour": len(test) - n_with,
    }
    assert (scores["n_train"] == len(train)).all()
    np.testing.assert_allclose(scores["rmse_over_floor"], scores["rmse"] / data.noise_floor)
    for isolation, group in predictions.groupby("isolation"):
        rows = scores[scores["isolation"] == isolation].set_index("objects")
        mask = neighbour[group["position"].to_numpy()]
        for objects, keep in (
            ("all", np.ones_like(mask)),
            ("with neighbour", mask),
            ("without neighbour", ~mask),
        ):
            report = regression_report(group["y_true"][keep], group["y_pred"][keep])
            for metric in METRICS:
                np.testing.assert_allclose(rows.loc[objects, metric], report[metric].iloc[0])
        check_scores(
            rows.loc[["all"]].reset_index(),
            group,
            data.y,
            data.noise_floor,
            n_train=len(train),
            n_test=len(test),
        )


def test_has_neighbour_detects_without_the_truth(data):
    frame = data.frame.drop(columns="n_neighbours")
    mask, source = has_neighbour(type(data)(**{**data, "frame": frame}))
    assert source == "detected"
    assert mask.dtype == bool and mask.shape == data.y.shape


def test_studies_are_reproducible_for_a_seed(data):
    first, _ = baseline_study(data, models=["tree-lines"], random_state=3)
    second, _ = baseline_study(data, models=["tree-lines"], random_state=3)
    pd.testing.assert_frame_equal(first[METRICS], second[METRICS])


# -- Measure ------------------------------------------------------------------------------------
def test_measure_sees_a_100_mb_allocation():
    with Measure() as measure:
        block = np.ones(100 * 2**20 // 8)  # 100 MB, every page touched
    assert block.nbytes == 100 * 2**20
    assert measure.peak_memory_mb >= 50
    assert measure.seconds > 0


def test_measure_does_not_count_memory_held_before_the_block():
    held = np.ones(100 * 2**20 // 8)
    with Measure() as measure:
        total = held.sum()
    assert total == held.size
    assert measure.peak_memory_mb < 50
    assert measure.seconds > 0


@pytest.mark.parametrize(
    "study",
    [
        lambda cube, data, **kw: baseline_study(data, **kw),
        lambda cube, data, **kw: flag_study(cube, models=["tree-lines", "tree-photometry"], **kw),
        lambda cube, data, **kw: isolation_study(data, **kw),
        lambda cube, data, **kw: resolution_study(
            cube, model="tree-photometry", image_zooms=[2, 3], spectrum_zooms=[3], **kw
        ),
    ],
    ids=["models", "flag", "isolation", "resolution"],
)
def test_parallel_jobs_give_the_sequential_tables(synthetic_cube, data, study):
    # Without cv, n_jobs spreads the models or configurations over processes.
    sequential, seq_pred = study(synthetic_cube, data)
    parallel, par_pred = study(synthetic_cube, data, n_jobs=2)
    exact = [c for c in sequential.columns if c not in ("fit_time", "predict_time",
                                                         "peak_memory_mb")]  # fmt: skip
    pd.testing.assert_frame_equal(parallel[exact], sequential[exact])
    pd.testing.assert_frame_equal(par_pred, seq_pred)


def test_repeats_train_each_model_again_with_other_seeds():
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = X[:, 0] + 0.3 * rng.normal(size=80)
    train, test = study_split(80, test_size=0.25, random_state=0)
    models = {
        "trees": ExtraTreesRegressor(n_estimators=5, random_state=0),
        "mean": DummyRegressor(),
    }
    _, first = evaluate_models(models, X, y, train=train, test=test)
    scores, predictions = evaluate_models(models, X, y, train=train, test=test, repeats=3)
    assert scores[["model", "repeat"]].values.tolist() == [
        ["trees", 0], ["trees", 1], ["trees", 2], ["mean", 0], ["mean", 1], ["mean", 2],
    ]  # fmt: skip
    assert sorted(predictions["repeat"].unique()) == [0, 1, 2]
    # Repeat 0 is the model as given; the others differ by their seed only.
    np.testing.assert_array_equal(
        predictions.query("repeat == 0")["y_pred"], first["y_pred"].to_numpy()
    )
    trees = scores[scores["model"] == "trees"]["rmse"].to_numpy()
    assert len(set(np.round(trees, 12))) == 3
    mean = scores[scores["model"] == "mean"]["rmse"].to_numpy()
    assert np.ptp(mean) == 0  # nothing random: the repeats agree
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        evaluate_models(models, X, y, train=train, test=test, repeats=0)


class _CountingTree(DecisionTreeRegressor):
    """A tree that counts its fits across clones (a class attribute)."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight=sample_weight)


def test_a_shared_cache_trains_a_model_once_per_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    train, test = study_split(60, test_size=0.25, random_state=0)
    cache = {}
    _CountingTree.fits = 0
    first, pred_first = evaluate_models(
        {"a": _CountingTree(max_depth=3)}, X, y, train=train, test=test, cache=cache
    )
    again, pred_again = evaluate_models(
        {"b": _CountingTree(max_depth=3)}, X, y, train=train, test=test, cache=cache
    )
    assert _CountingTree.fits == 1  # the same model on the same data: reused, renamed
    assert again["model"].tolist() == ["b"] and pred_again["model"].unique().tolist() == ["b"]
    np.testing.assert_array_equal(again["rmse"], first["rmse"])
    np.testing.assert_array_equal(pred_again["y_pred"], pred_first["y_pred"])
    # Another model, other data or another split is trained.
    evaluate_models({"c": _CountingTree(max_depth=2)}, X, y, train=train, test=test, cache=cache)
    evaluate_models({"d": _CountingTree(max_depth=3)}, X, y + 1, train=train, test=test,
                    cache=cache)  # fmt: skip
    assert _CountingTree.fits == 3
