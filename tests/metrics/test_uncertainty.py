"""Tests of :mod:`sklearn_sfr.metrics._uncertainty`: intervals, paired differences, the
corrected resampled t-test and verdicts. Coverage is checked on simulated test sets with a
known truth; every simulation has fixed seeds."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_sfr import metrics
from sklearn_sfr.metrics import (
    NMAD_SCALE,
    CorrectedTTestResult,
    PairedDifference,
    ScoreInterval,
    bias,
    corrected_resampled_ttest,
    mean_absolute_error,
    nmad,
    outlier_fraction,
    paired_difference,
    rmse,
    score_interval,
    score_intervals,
    verdict,
)
from sklearn_sfr.metrics._uncertainty import _along

METRICS = ["rmse", "mae", "nmad", "bias", "abs_bias", "outlier_fraction"]


def _reference(metric, residual, axis=-1):
    """The metrics written out again with numpy, independently of the module under test."""
    r = np.asarray(residual)
    if metric == "rmse":
        return np.sqrt(np.mean(r**2, axis=axis))
    if metric == "mae":
        return np.mean(np.abs(r), axis=axis)
    if metric in ("bias", "abs_bias"):
        b = np.median(r, axis=axis)
        return np.abs(b) if metric == "abs_bias" else b
    if metric == "nmad":
        m = np.median(r, axis=axis, keepdims=True)
        return NMAD_SCALE * np.median(np.abs(r - m), axis=axis)
    return np.mean(np.abs(r) > 0.3, axis=axis)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 1.0, n)
    shared = rng.normal(0.0, 0.25, n)  # errors both models make (hard objects)
    a = y + shared + rng.normal(0.0, 0.10, n)
    b = y + shared + rng.normal(0.05, 0.20, n)
    return y, a, b


# ------------------------------------------------------------------------ the metrics reused


@pytest.mark.parametrize("n", [7, 8, 301])
def test_vectorised_metrics_equal_the_library_functions(n):
    y, a, _ = _data(n)
    expected = {
        "rmse": rmse(y, a),
        "mae": mean_absolute_error(y, a),
        "nmad": nmad(y, a),
        "bias": bias(y, a),
        "abs_bias": abs(bias(y, a)),
        "outlier_fraction": outlier_fraction(y, a),
    }
    along = _along(tuple(METRICS), a - y, threshold=0.3)
    for k, metric in enumerate(METRICS):
        assert along[k] == pytest.approx(expected[metric], rel=1e-12, abs=1e-15), metric
        assert score_interval(y, a, metric, n_resamples=20, random_state=0).value == (
            pytest.approx(expected[metric], rel=1e-12, abs=1e-15)
        )


def test_outlier_threshold_is_the_library_default():
    y = np.zeros(4)
    p = np.array([0.1, 0.29, 0.31, 1.0])
    assert score_interval(y, p, "outlier_fraction", n_resamples=10).value == 0.5
    assert score_interval(y, p, "outlier_fraction", n_resamples=10, threshold=0.2).value == 0.75


# -------------------------------------------------------------- equal to scipy's own bootstrap


@pytest.mark.parametrize("method", ["percentile", "BCa"])
@pytest.mark.parametrize("metric", METRICS)
def test_one_repeat_is_scipys_paired_bootstrap(metric, method):
    y, a, b = _data(250, seed=1)

    def one(y_, p_, axis):
        return _reference(metric, p_ - y_, axis)

    def two(y_, a_, b_, axis):
        return _reference(metric, a_ - y_, axis) - _reference(metric, b_ - y_, axis)

    kw = {"n_resamples": 500, "method": method, "confidence_level": 0.9}
    for data, statistic, ours in [
        ((y, a), one, score_interval(y, a, metric, random_state=3, **kw)),
        ((y, a, b), two, paired_difference(y, a, b, metric, random_state=3, **kw)),
    ]:
        theirs = stats.bootstrap(
            data, statistic, paired=True, vectorized=True, axis=-1,
            rng=np.random.default_rng(3), **kw,
        )  # fmt: skip
        assert ours.low == pytest.approx(theirs.confidence_interval.low, rel=1e-10)
        assert ours.high == pytest.approx(theirs.confidence_interval.high, rel=1e-10)
        assert ours.sample_std == pytest.approx(theirs.standard_error, rel=1e-10)
        assert ours.training_std == 0.0
        assert ours.std == ours.sample_std
        assert method in ours.method and "paired" in ours.method


def test_score_intervals_share_one_bootstrap():
    y, a, _ = _data(200)
    row = score_intervals(y, a, random_state=5, n_resamples=300)
    assert list(row) == ["rmse", "mae", "nmad", "bias", "outlier_fraction"]
    for metric, result in row.items():
        assert result == score_interval(y, a, metric, random_state=5, n_resamples=300)
    assert list(score_intervals(y, a, "nmad", n_resamples=10)) == ["nmad"]
    with pytest.raises(ValueError, match="distinct"):
        score_intervals(y, a, ("rmse", "rmse"))
    with pytest.raises(ValueError, match="distinct"):
        score_intervals(y, a, ())


def test_same_seed_same_interval_and_the_result_is_a_plain_record():
    y, a, b = _data(100)
    first = paired_difference(y, a, b, random_state=np.random.default_rng(7), n_resamples=200)
    again = paired_difference(y, a, b, random_state=7, n_resamples=200)
    assert first == again
    row = dataclasses.asdict(first)
    assert row["difference"] == first.value_a - first.value_b
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.low = 0.0


# -------------------------------------------------------------------- coverage on simulations


def test_paired_difference_covers_the_true_rmse_difference():
    # Residuals: a shared part (hard objects) and each model's own; the population RMSE of a
    # Gaussian residual is its standard deviation, so the true difference is known.
    truth = math.hypot(0.25, 0.10) - math.hypot(0.25, 0.15)
    covered = detected = 0
    stds = []
    n_sets = 200
    for seed in range(n_sets):
        rng = np.random.default_rng(seed)
        y = rng.normal(size=400)
        shared = rng.normal(0, 0.25, 400)
        a = y + shared + rng.normal(0, 0.10, 400)
        b = y + shared + rng.normal(0, 0.15, 400)
        result = paired_difference(y, a, b, n_resamples=500, random_state=seed)
        covered += result.low <= truth <= result.high
        detected += result.excludes_zero
        stds.append(result.std)
    assert 0.90 <= covered / n_sets <= 0.99
    # The detection rate is the power the standard error predicts, the relation behind
    # ``detectable``: a true difference of (z_0.975 + z_0.8) standard errors is found 80 % of
    # the time. Here |truth| is 2.65 standard errors: power Phi(2.65 - 1.96), about 0.75.
    power = stats.norm.cdf(abs(truth) / np.mean(stds) - stats.norm.ppf(0.975))
    assert 0.6 < power < 0.9
    assert detected / n_sets == pytest.approx(power, abs=0.1)


def test_seed_repeats_cover_the_seed_averaged_truth_and_need_the_training_part():
    # Every seed shifts the predictions by its own offset delta ~ N(0, 0.08): the quantity
    # estimated is the RMSE averaged over seeds, E sqrt(0.25**2 + 0.15**2 + delta**2).
    tau, n_repeats, n_sets = 0.08, 3, 200
    delta = np.random.default_rng(123).normal(0, tau, 1_000_000)
    truth = float(np.mean(np.sqrt(0.25**2 + 0.15**2 + delta**2)))
    covered = covered_by_test_sample_alone = 0
    for seed in range(n_sets):
        rng = np.random.default_rng(seed)
        y = rng.normal(size=400)
        shared = rng.normal(0, 0.25, 400)
        offsets = rng.normal(0, tau, (n_repeats, 1))
        preds = y + shared + offsets + rng.normal(0, 0.15, (n_repeats, 400))
        result = score_interval(y, preds, n_resamples=500, random_state=seed)
        covered += result.low <= truth <= result.high
        half = 1.96 * result.sample_std
        covered_by_test_sample_alone += result.value - half <= truth <= result.value + half
    assert 0.90 <= covered / n_sets <= 0.99
    assert covered_by_test_sample_alone / n_sets < 0.85


# ------------------------------------------------------------------------------ seed repeats


def test_identical_repeats_give_the_one_repeat_interval():
    y, a, _ = _data(200)
    one = score_interval(y, a, random_state=0, n_resamples=300)
    three = score_interval(y, np.stack([a, a, a]), random_state=0, n_resamples=300)
    assert (three.low, three.high, three.value) == pytest.approx((one.low, one.high, one.value))
    assert three.training_std == 0.0 and three.n_repeats == 3
    assert "MOVER" not in three.method


def test_noisy_training_widens_the_interval():
    y, a, b = _data(300)
    rng = np.random.default_rng(1)
    quiet = np.stack([a, a + 1e-9, a - 1e-9])
    # every seed scales the errors by its own factor: the RMSE differs from seed to seed
    noisy = y + (a - y) * rng.uniform(0.8, 1.2, (3, 1)) + rng.normal(0, 0.02, (3, 300))
    tight = score_interval(y, quiet, random_state=0, n_resamples=400)
    wide = score_interval(y, noisy, random_state=0, n_resamples=400)
    assert wide.training_std > 10 * tight.training_std
    assert wide.high - wide.low > 1.5 * (tight.high - tight.low)
    assert wide.low < wide.value < wide.high
    assert wide.std == pytest.approx(math.hypot(wide.sample_std, wide.training_std))
    values = [rmse(y, row) for row in noisy]
    assert wide.value == pytest.approx(np.mean(values))
    assert wide.training_std == pytest.approx(np.std(values, ddof=1) / math.sqrt(3))
    assert "MOVER" in wide.method and "3 repeats" in wide.method

    # the same for a difference: the training spread of either model widens it
    plain = paired_difference(y, a, b, random_state=0, n_resamples=400)
    seeded = paired_difference(y, noisy, b, random_state=0, n_resamples=400)
    assert seeded.high - seeded.low > plain.high - plain.low
    assert seeded.n_repeats_a == 3 and seeded.n_repeats_b == 1
    assert seeded.training_std == pytest.approx(np.std(values, ddof=1) / math.sqrt(3))


def test_mover_widening_adds_half_widths_in_quadrature():
    y, a, _ = _data(300)
    rng = np.random.default_rng(2)
    noisy = a + rng.normal(0, 0.05, (4, 1))
    result = score_interval(y, noisy, random_state=0, n_resamples=400)
    # the test-sample part alone: the 4 repeats fixed, no training spread
    values = np.array([rmse(y, row) for row in noisy])
    boot = stats.bootstrap(
        tuple(noisy - y),
        lambda *rows, axis: np.mean([_reference("rmse", r, axis) for r in rows], axis=0),
        paired=True, vectorized=True, axis=-1, n_resamples=400, method="percentile",
        rng=np.random.default_rng(0),
    )  # fmt: skip
    w = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    value = values.mean()
    low, high = boot.confidence_interval
    assert result.low == pytest.approx(value - math.hypot(value - low, w))
    assert result.high == pytest.approx(value + math.hypot(high - value, w))


# ------------------------------------------------------------------- differences and verdicts


def test_paired_difference_is_a_minus_b_and_detectable_is_named():
    y, a, b = _data(300)
    result = paired_difference(y, a, b, random_state=0, n_resamples=400)
    assert isinstance(result, PairedDifference)
    assert result.value_a == pytest.approx(rmse(y, a))
    assert result.value_b == pytest.approx(rmse(y, b))
    assert result.difference == pytest.approx(rmse(y, a) - rmse(y, b))
    assert result.low <= result.difference <= result.high
    factor = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert factor == pytest.approx(2.80, abs=0.005)
    assert result.detectable == pytest.approx(factor * result.std)
    assert "80 % power" in result.detectable_method
    assert "2.80" in result.detectable_method
    assert paired_difference(
        y, a, b, random_state=0, n_resamples=400, power=0.5
    ).detectable == pytest.approx(stats.norm.ppf(0.975) * result.std)
    # swapping the models flips the difference and its interval
    swapped = paired_difference(y, b, a, random_state=0, n_resamples=400)
    assert swapped.difference == pytest.approx(-result.difference)
    assert (swapped.low, swapped.high) == pytest.approx((-result.high, -result.low))
    assert verdict(result) == "better" and verdict(swapped) == "worse"


def test_paired_interval_is_narrower_than_two_separate_ones():
    y, a, b = _data(400)
    diff = paired_difference(y, a, b, random_state=0, n_resamples=400)
    ia = score_interval(y, a, random_state=0, n_resamples=400)
    ib = score_interval(y, b, random_state=0, n_resamples=400)
    assert diff.sample_std < 0.8 * math.hypot(ia.sample_std, ib.sample_std)


def test_identical_models_make_no_detectable_difference():
    y, a, _ = _data(100)
    for method in ("percentile", "BCa"):
        result = paired_difference(y, a, a.copy(), method=method, n_resamples=200)
        assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
        assert not result.excludes_zero and result.detectable == 0.0
        assert verdict(result) == "no detectable difference"
    perfect = score_interval(y, y, "rmse", method="BCa", n_resamples=200)
    assert (perfect.value, perfect.low, perfect.high) == (0.0, 0.0, 0.0)


def _difference(low, high):
    return PairedDifference(
        metric="rmse", difference=(low + high) / 2, low=low, high=high,
        confidence_level=0.95, method="test", excludes_zero=bool(low > 0 or high < 0),
        detectable=0.1, detectable_method="test", value_a=0.3, value_b=0.3, sample_std=0.01,
        training_std=0.0, std=0.01, n_samples=100, n_repeats_a=1, n_repeats_b=1,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("low", "high", "lower", "higher"),
    [
        (-0.2, -0.1, "better", "worse"),
        (0.1, 0.2, "worse", "better"),
        (-0.1, 0.1, "no detectable difference", "no detectable difference"),
        (0.0, 0.1, "no detectable difference", "no detectable difference"),
        (-0.1, 0.0, "no detectable difference", "no detectable difference"),
        (np.nan, np.nan, "no detectable difference", "no detectable difference"),
    ],
)
def test_verdict_only_from_an_interval_excluding_zero(low, high, lower, higher):
    result = _difference(low, high)
    assert verdict(result) == lower
    assert verdict(result, better="higher") == higher


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(5, 60),
    gap=st.floats(-0.3, 0.3),
    metric=st.sampled_from(["rmse", "mae", "abs_bias", "nmad", "outlier_fraction"]),
)
def test_verdict_says_better_or_worse_exactly_when_zero_is_excluded(seed, n, gap, metric):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    a = y + rng.normal(0, 0.3, n)
    b = y + rng.normal(0, max(0.3 + gap, 0.01), n)
    result = paired_difference(y, a, b, metric, n_resamples=100, random_state=seed)
    word = verdict(result)
    assert (word != "no detectable difference") == result.excludes_zero
    if word == "better":
        assert result.high < 0
    if word == "worse":
        assert result.low > 0


def test_verdict_refuses_what_is_not_a_difference():
    y, a, _ = _data(50)
    with pytest.raises(TypeError, match="difference"):
        verdict(score_interval(y, a, n_resamples=10))
    with pytest.raises(ValueError, match="better"):
        verdict(_difference(0.1, 0.2), better="smaller")


# --------------------------------------------------------------------- the interval's shape


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(8, 80),
    scale=st.floats(0.01, 2.0),
    tail=st.floats(1.5, 30.0),
    metric=st.sampled_from(["rmse", "mae", "nmad", "bias", "abs_bias", "outlier_fraction"]),
)
def test_percentile_interval_contains_the_point_estimate(seed, n, scale, tail, metric):
    # Non-degenerate data: continuous residuals, Student-t tails from heavy to Gaussian.
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    p = y + scale * rng.standard_t(tail, size=n)
    result = score_interval(y, p, metric, n_resamples=200, random_state=seed)
    assert result.low <= result.value <= result.high
    q = y + scale * rng.standard_t(tail, size=n)
    diff = paired_difference(y, p, q, metric, n_resamples=200, random_state=seed)
    assert diff.low <= diff.difference <= diff.high


def test_bca_is_close_to_percentile_on_a_large_sample():
    y, a, _ = _data(1000)
    pct = score_interval(y, a, random_state=0, n_resamples=1000)
    bca = score_interval(y, a, method="bca", random_state=0, n_resamples=1000)
    assert "BCa" in bca.method
    assert bca.low == pytest.approx(pct.low, abs=0.3 * pct.sample_std)
    assert bca.high == pytest.approx(pct.high, abs=0.3 * pct.sample_std)


# ---------------------------------------------------------------- the corrected t-test


def test_corrected_ttest_by_hand():
    a = np.array([0.50, 0.52, 0.49, 0.51, 0.50, 0.53, 0.48, 0.50, 0.52, 0.51])
    b = np.array([0.52, 0.52, 0.52, 0.50, 0.53, 0.54, 0.50, 0.53, 0.51, 0.53])
    result = corrected_resampled_ttest(a, b, n_train=900, n_test=100)
    assert isinstance(result, CorrectedTTestResult)
    d = a - b
    se = math.sqrt((1 / 10 + 100 / 900) * np.var(d, ddof=1))
    assert result.difference == pytest.approx(d.mean())
    assert result.std_error == pytest.approx(se)
    assert result.df == 9 and result.n_folds == 10
    assert result.statistic == pytest.approx(d.mean() / se)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), 9))
    q = stats.t.ppf(0.975, 9)
    assert (result.low, result.high) == pytest.approx((d.mean() - q * se, d.mean() + q * se))
    assert result.detectable == pytest.approx((q + stats.t.ppf(0.8, 9)) * se)
    assert "Nadeau and Bengio" in result.method
    assert result.excludes_zero == (result.low > 0 or result.high < 0)


def test_corrected_ttest_is_wider_than_the_naive_one():
    rng = np.random.default_rng(0)
    a = 0.5 + rng.normal(0, 0.01, 10)
    b = a + 0.006 + rng.normal(0, 0.005, 10)
    corrected = corrected_resampled_ttest(a, b, n_train=900, n_test=100)
    naive = stats.ttest_rel(a, b)
    naive_low, naive_high = naive.confidence_interval(0.95)
    assert corrected.naive_std_error == pytest.approx(np.std(a - b, ddof=1) / math.sqrt(10))
    assert corrected.high - corrected.low > naive_high - naive_low
    # the width grows by sqrt(1 + J * n_test / n_train): sqrt(2.11) for 10-fold CV
    ratio = (corrected.high - corrected.low) / (naive_high - naive_low)
    assert ratio == pytest.approx(math.sqrt(1 + 10 * 100 / 900))
    assert corrected.pvalue > naive.pvalue
    # here the naive test would claim a difference the corrected one does not
    assert naive.pvalue < 0.05 and verdict(corrected) == "no detectable difference"


def test_corrected_ttest_constant_differences():
    same = corrected_resampled_ttest([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], n_train=20, n_test=10)
    assert (same.difference, same.low, same.high, same.pvalue) == (0.0, 0.0, 0.0, 1.0)
    assert verdict(same) == "no detectable difference"
    shifted = corrected_resampled_ttest([0.4, 0.5, 0.6], [0.5, 0.6, 0.7], n_train=20, n_test=10)
    assert shifted.pvalue == 0.0 and shifted.statistic == -math.inf
    assert verdict(shifted) == "better"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores_b": [0.1, 0.2]}, "one score per fold"),
        ({"scores_a": [0.1], "scores_b": [0.2]}, "at least 2 folds"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": -5}, "n_test"),
        ({"n_test": True}, "n_test"),
        ({"confidence_level": 95}, "confidence_level"),
        ({"power": 1.0}, "power"),
        ({"scores_a": [0.1, np.nan, 0.3]}, "NaN"),
    ],
)
def test_corrected_ttest_rejects_bad_input(kwargs, match):
    args = {"scores_a": [0.1, 0.2, 0.3], "scores_b": [0.2, 0.2, 0.2], "n_train": 20}
    args |= {"n_test": 10} | kwargs
    with pytest.raises(ValueError, match=match):
        corrected_resampled_ttest(args.pop("scores_a"), args.pop("scores_b"), **args)


# ------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "r2"}, "metric"),
        ({"y_pred": np.zeros(5)}, "n_samples=6"),
        ({"y_pred": np.zeros((6, 1))}, "n_repeats"),
        ({"y_pred": np.zeros((2, 3, 6))}, "dim"),
        ({"y_pred": [0.0, np.nan, 0, 0, 0, 0]}, "NaN"),
        ({"y_true": [0.0], "y_pred": [0.0]}, "at least 2 objects"),
        ({"confidence_level": 1.0}, "confidence_level"),
        ({"n_resamples": 1}, "n_resamples"),
        ({"n_resamples": 10.0}, "n_resamples"),
        ({"method": "basic"}, "method"),
        ({"threshold": 0}, "threshold"),
    ],
)
def test_score_interval_rejects_bad_input(kwargs, match):
    args = {"y_true": np.arange(6.0), "y_pred": np.arange(6.0) + 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        score_interval(args.pop("y_true"), args.pop("y_pred"), **args)


def test_paired_difference_rejects_mismatched_models():
    y, a, b = _data(20)
    with pytest.raises(ValueError, match="pred_b"):
        paired_difference(y, a, b[:10])
    with pytest.raises(ValueError, match="power"):
        paired_difference(y, a, b, power=0)


def test_exported_from_metrics():
    for name in [
        "CorrectedTTestResult",
        "PairedDifference",
        "ScoreInterval",
        "corrected_resampled_ttest",
        "paired_difference",
        "score_interval",
        "score_intervals",
        "verdict",
    ]:
        assert name in metrics.__all__
        assert getattr(metrics, name).__module__ == "sklearn_sfr.metrics._uncertainty"
    assert isinstance(score_interval([0.0, 1.0], [0.1, 1.0], n_resamples=10), ScoreInterval)
