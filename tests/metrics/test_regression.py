"""Tests of :mod:`sklearn_sfr.metrics`: hand-computed values, invariances, scorers."""

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.model_selection import KFold, cross_validate
from sklearn.tree import DecisionTreeRegressor

from sklearn_sfr import metrics
from sklearn_sfr.metrics import (
    NMAD_SCALE,
    SCORING,
    bias,
    get_scorer,
    get_scorers,
    nmad,
    outlier_fraction,
    regression_report,
    rmse,
)
from sklearn_sfr.metrics._regression import _weighted_median

# ------------------------------------------------------------------------------ hand-computed

Y_TRUE = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
Y_PRED = np.array([0.1, 0.8, 2.0, 3.5, 3.0])  # residuals 0.1, -0.2, 0.0, 0.5, -1.0


def test_rmse_by_hand():
    expected = math.sqrt((0.01 + 0.04 + 0.0 + 0.25 + 1.0) / 5)
    assert rmse(Y_TRUE, Y_PRED) == pytest.approx(expected)
    assert rmse([1.0, 2.0], [1.0, 2.0]) == 0.0


def test_bias_is_the_median_residual():
    assert bias(Y_TRUE, Y_PRED) == pytest.approx(0.0)
    assert bias([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    # sign: over-prediction is positive
    assert bias([0.0, 0.0, 0.0], [0.3, 0.3, 0.3]) == pytest.approx(0.3)
    assert bias([0.0, 0.0, 0.0], [-0.3, -0.3, -0.3]) == pytest.approx(-0.3)


def test_nmad_by_hand():
    # residuals 0.1, -0.2, 0.0, 0.5, -1.0: median 0.0; |r - 0| sorted 0, .1, .2, .5, 1 -> 0.2
    assert nmad(Y_TRUE, Y_PRED) == pytest.approx(1.4826 * 0.2)
    assert NMAD_SCALE == 1.4826
    # an outlier does not move it
    assert nmad(np.zeros(5), [1.0, 2.0, 3.0, 4.0, 1e6]) == pytest.approx(1.4826)


def test_nmad_estimates_a_gaussian_sigma():
    rng = np.random.default_rng(0)
    y = rng.normal(size=20000)
    assert nmad(y, y + rng.normal(0.3, 0.5, size=y.size)) == pytest.approx(0.5, rel=0.03)


def test_outlier_fraction_by_hand():
    # |r| = 0.1, 0.2, 0.0, 0.5, 1.0: two above 0.3
    assert outlier_fraction(Y_TRUE, Y_PRED) == pytest.approx(2 / 5)
    assert outlier_fraction(Y_TRUE, Y_PRED, threshold=0.15) == pytest.approx(3 / 5)
    assert outlier_fraction(Y_TRUE, Y_PRED, threshold=2.0) == 0.0
    # exactly at the threshold is not an outlier
    assert outlier_fraction([0.0, 0.0], [0.5, -0.5], threshold=0.5) == 0.0


def test_weighted_metrics_by_hand():
    w = np.array([1.0, 1.0, 1.0, 1.0, 4.0])  # the -1.0 residual carries half the weight
    expected_rmse = math.sqrt((0.01 + 0.04 + 0.0 + 0.25 + 4 * 1.0) / 8)
    assert rmse(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx(expected_rmse)
    # weighted residuals sorted: -1.0 (w 4), -0.2, 0.0, 0.1, 0.5; cumulative 4 = half of 8
    assert bias(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx(-0.6)
    assert outlier_fraction(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx(5 / 8)
    # zero weight drops a sample
    w0 = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    assert bias(Y_TRUE, Y_PRED, sample_weight=w0) == pytest.approx(0.05)
    assert nmad(Y_TRUE, Y_PRED, sample_weight=w0) == pytest.approx(nmad(Y_TRUE[:4], Y_PRED[:4]))


def test_sklearn_metrics_are_reexported_not_reimplemented():
    assert metrics.mean_absolute_error is sklearn.metrics.mean_absolute_error
    assert metrics.r2_score is sklearn.metrics.r2_score


def test_column_vectors_accepted():
    assert rmse(Y_TRUE[:, None], Y_PRED[:, None]) == pytest.approx(rmse(Y_TRUE, Y_PRED))
    assert bias(list(Y_TRUE), pd.Series(Y_PRED)) == pytest.approx(bias(Y_TRUE, Y_PRED))


# ------------------------------------------------------------------------------ bad input

ALL = [rmse, bias, nmad, outlier_fraction, regression_report]


@pytest.mark.parametrize("func", ALL)
def test_nan_is_a_clear_error(func):
    with pytest.raises(ValueError, match="y_true contains NaN"):
        func([0.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="y_pred contains infinity"):
        func([0.0, 1.0], [0.0, np.inf])
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        func([0.0, 1.0], [0.0, 1.0], sample_weight=[1.0, np.nan])


@pytest.mark.parametrize("func", ALL)
def test_bad_shapes_and_weights(func):
    with pytest.raises(ValueError, match=r"`y_true` and `y_pred` .* got 3 and 2"):
        func([0.0, 1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"`y_pred` must be 1-D"):
        func([0.0, 1.0], [[0.0, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        func([], [])
    with pytest.raises(ValueError, match=r"`sample_weight` must have one weight per sample \(2\)"):
        func([0.0, 1.0], [0.0, 1.0], sample_weight=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        func([0.0, 1.0], [0.0, 1.0], sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="all zero"):
        func([0.0, 1.0], [0.0, 1.0], sample_weight=[0.0, 0.0])


@pytest.mark.parametrize("threshold", [0, -0.3, np.nan, "0.3", True])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="`threshold` must be a positive"):
        outlier_fraction([0.0], [0.0], threshold=threshold)
    with pytest.raises(ValueError, match="`threshold` must be a positive"):
        get_scorers(threshold=threshold)


@pytest.mark.parametrize("noise_floor", [0.0, -1.0, np.inf, "x"])
def test_bad_noise_floor(noise_floor):
    with pytest.raises(ValueError, match="`noise_floor` must be a positive"):
        regression_report([0.0, 1.0], [0.0, 1.0], noise_floor=noise_floor)


# ------------------------------------------------------------------------------ invariances

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
vectors = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite)
    )
)
TOL = 1e-9


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(-5.0, 5.0, allow_nan=False))
def test_shift_invariance(pair, shift):
    y_true, y_pred = pair
    # shifting both leaves every metric unchanged; shifting the prediction moves only the bias
    # (the outlier count only where no residual sits on the threshold itself, where rounding
    # the shifted values decides: 1.3 - 1.0 > 0.3)
    on_threshold = np.isclose(np.abs(y_pred - y_true), 0.3, rtol=0, atol=1e-9).any()
    for func in (rmse, bias, nmad) + (() if on_threshold else (outlier_fraction,)):
        assert func(y_true + shift, y_pred + shift) == pytest.approx(
            func(y_true, y_pred), abs=1e-9
        )
    assert nmad(y_true, y_pred + shift) == pytest.approx(nmad(y_true, y_pred), abs=TOL)
    assert bias(y_true, y_pred + shift) == pytest.approx(bias(y_true, y_pred) + shift, abs=TOL)


@settings(max_examples=60, deadline=None)
@given(vectors, st.randoms(use_true_random=False))
def test_permutation_invariance(pair, random):
    y_true, y_pred = pair
    order = np.arange(y_true.size)
    random.shuffle(order)
    for func in (rmse, bias, nmad, outlier_fraction):
        assert func(y_true[order], y_pred[order]) == pytest.approx(func(y_true, y_pred), abs=TOL)


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(0.01, 100.0))
def test_scale_equivariance(pair, scale):
    y_true, y_pred = pair
    for func in (rmse, bias, nmad):
        assert func(scale * y_true, scale * y_pred) == pytest.approx(
            scale * func(y_true, y_pred), rel=1e-9, abs=TOL * scale
        )
    # a negative scale flips the sign of the bias only
    assert bias(-y_true, -y_pred) == pytest.approx(-bias(y_true, y_pred), abs=TOL)
    assert nmad(-y_true, -y_pred) == pytest.approx(nmad(y_true, y_pred), abs=TOL)


@settings(max_examples=60, deadline=None)
@given(vectors)
def test_orderings(pair):
    y_true, y_pred = pair
    r = rmse(y_true, y_pred)
    # at least half the residuals are at least |median| away from zero, so
    # mean(r^2) >= bias^2 / 2
    assert math.sqrt(2.0) * r >= abs(bias(y_true, y_pred)) - TOL
    assert r >= sklearn.metrics.mean_absolute_error(y_true, y_pred) - TOL
    assert nmad(y_true, y_pred) >= 0.0
    assert 0.0 <= outlier_fraction(y_true, y_pred) <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 25).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=finite),
            arrays(np.int64, n, elements=st.integers(0, 4)),
        )
    )
)
def test_integer_weights_equal_repetition(pair):
    values, weights = pair
    if weights.sum() == 0:
        weights[0] = 1
    repeated = np.repeat(values, weights)
    assert _weighted_median(values, weights.astype(float)) == pytest.approx(
        np.median(repeated), abs=TOL
    )
    zeros = np.zeros_like(values)
    w = weights.astype(float)
    assert nmad(zeros, values, sample_weight=w) == pytest.approx(
        nmad(np.zeros_like(repeated), repeated), abs=TOL
    )
    assert outlier_fraction(zeros, values, sample_weight=w) == pytest.approx(
        outlier_fraction(np.zeros_like(repeated), repeated), abs=TOL
    )


@settings(max_examples=30, deadline=None)
@given(vectors)
def test_unit_weights_equal_unweighted(pair):
    y_true, y_pred = pair
    ones = np.ones_like(y_true)
    for func in (rmse, bias, nmad, outlier_fraction):
        assert func(y_true, y_pred, sample_weight=ones) == pytest.approx(
            func(y_true, y_pred), abs=TOL
        )


# ------------------------------------------------------------------------------ scorers


def _data(n=90):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    y = X[:, 0] - 0.5 * X[:, 1] + rng.normal(0, 0.2, size=n)
    return X, y


def test_scorers_in_cross_validate_match_the_metrics():
    X, y = _data()
    cv = KFold(3, shuffle=True, random_state=0)
    tree = DecisionTreeRegressor(max_depth=4, random_state=0)
    scores = cross_validate(tree, X, y, cv=cv, scoring=SCORING, return_estimator=True)
    expected = {
        "neg_rmse": lambda t, p: -rmse(t, p),
        "neg_mae": lambda t, p: -sklearn.metrics.mean_absolute_error(t, p),
        "r2": sklearn.metrics.r2_score,
        "bias": bias,
        "neg_nmad": lambda t, p: -nmad(t, p),
        "neg_outlier_fraction": lambda t, p: -outlier_fraction(t, p),
    }
    assert set(SCORING) == set(expected)
    for k, (_, test) in enumerate(cv.split(X)):
        pred = scores["estimator"][k].predict(X[test])
        for name, func in expected.items():
            assert scores[f"test_{name}"][k] == pytest.approx(func(y[test], pred))
    assert (scores["test_neg_rmse"] < 0).all()
    assert (scores["test_neg_outlier_fraction"] <= 0).all()


def test_scorer_threshold_and_single_scorer():
    X, y = _data()
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    pred = tree.predict(X)
    loose = get_scorers(threshold=5.0)["neg_outlier_fraction"](tree, X, y)
    assert loose == 0.0
    assert get_scorer("neg_outlier_fraction", threshold=0.1)(tree, X, y) == pytest.approx(
        -outlier_fraction(y, pred, threshold=0.1)
    )
    assert get_scorer("neg_rmse")(tree, X, y) == pytest.approx(-rmse(y, pred))
    # scikit-learn's names still work, and a callable passes through
    assert get_scorer("neg_median_absolute_error")(tree, X, y) == pytest.approx(
        -sklearn.metrics.median_absolute_error(y, pred)
    )
    assert get_scorer(len) is len
    with pytest.raises(ValueError, match=r"unknown scorer 'rmse'.*neg_rmse"):
        get_scorer("rmse")


def test_scorers_pickle_and_are_fresh():
    # n_jobs > 1 pickles the scorers; get_scorers() must not hand out the shared SCORING
    restored = pickle.loads(pickle.dumps(SCORING))
    X, y = _data()
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    assert restored["neg_nmad"](tree, X, y) == SCORING["neg_nmad"](tree, X, y)
    assert get_scorers() is not SCORING


# ------------------------------------------------------------------------------ report


def test_regression_report_columns_and_values():
    report = regression_report(Y_TRUE, Y_PRED)
    assert list(report.columns) == [
        "n",
        "rmse",
        "mae",
        "r2",
        "bias",
        "nmad",
        "outlier_fraction",
    ]
    assert report.shape == (1, 7)
    row = report.iloc[0]
    assert row["n"] == 5
    assert row["rmse"] == pytest.approx(rmse(Y_TRUE, Y_PRED))
    assert row["mae"] == pytest.approx(0.36)
    assert row["r2"] == pytest.approx(sklearn.metrics.r2_score(Y_TRUE, Y_PRED))
    assert row["bias"] == pytest.approx(0.0)
    assert row["nmad"] == pytest.approx(1.4826 * 0.2)
    assert row["outlier_fraction"] == pytest.approx(0.4)
    assert report.attrs["threshold"] == 0.3


def test_regression_report_noise_floor_name_and_concat():
    a = regression_report(Y_TRUE, Y_PRED, noise_floor=0.5, name="tree", threshold=0.15)
    assert a.index.tolist() == ["tree"]
    assert a.loc["tree", "noise_floor"] == 0.5
    assert a.loc["tree", "rmse_over_noise_floor"] == pytest.approx(rmse(Y_TRUE, Y_PRED) / 0.5)
    assert a.loc["tree", "outlier_fraction"] == pytest.approx(0.6)
    b = regression_report(Y_TRUE, Y_TRUE, noise_floor=0.5, name="perfect")
    table = pd.concat([a, b])
    assert table.loc["perfect", "rmse"] == 0.0
    assert table.loc["perfect", "r2"] == 1.0


def test_regression_report_single_sample_has_nan_r2_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = regression_report([1.0], [1.5])
    assert np.isnan(report.loc[0, "r2"])
    assert report.loc[0, "rmse"] == pytest.approx(0.5)
    assert report.loc[0, "outlier_fraction"] == 1.0


def test_regression_report_weighted():
    w = np.array([1.0, 1.0, 1.0, 1.0, 4.0])
    report = regression_report(Y_TRUE, Y_PRED, sample_weight=w)
    assert report.loc[0, "n"] == 5
    assert report.loc[0, "bias"] == pytest.approx(-0.6)
    assert report.loc[0, "mae"] == pytest.approx((0.1 + 0.2 + 0.0 + 0.5 + 4.0) / 8)
