"""Intervals and verdicts: every metric and every difference of a study with its uncertainty.

All models of a study are scored on the same test objects, so their errors are paired: a
difference between two models is bootstrapped by resampling the objects once and scoring both
models on that one resample (:func:`paired_difference`). A single metric gets the same
bootstrap (:func:`score_interval`). Both use :func:`scipy.stats.bootstrap`, vectorised over the
resamples, with the metrics of :mod:`sklearn_sfr.metrics` written as reductions along the
object axis.

A model trained ``K`` times with different seeds on the same split (``y_pred`` of shape
``(K, n_samples)``) is scored by the mean of its ``K`` metrics, and the interval of that mean
has two independent parts: the spread due to the test sample (the bootstrap over objects, the
``K`` models held fixed) and the spread due to training (the variance of the ``K`` metrics
divided by ``K``). They are combined by the MOVER rule (Zou and Donner 2008): each half-width
of the bootstrap interval is added in quadrature to the Student-t half-width of the training
part. With ``K = 1`` the training part is zero and the interval is scipy's paired bootstrap.

Cross-validated scores (one per fold, both models on the same folds) are compared by the
corrected resampled t-test of Nadeau and Bengio (2003), :func:`corrected_resampled_ttest`,
whose variance accounts for the overlap of the folds' training sets.

:func:`verdict` turns an interval of a difference into the words a report uses: ``"better"``
or ``"worse"`` only when the interval excludes zero, else ``"no detectable difference"``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import median_absolute_deviation
from scipy import stats
from sklearn.metrics import mean_absolute_error
from sklearn.utils.validation import check_array

from ._regression import NMAD_SCALE, _check_1d, bias, check_threshold, nmad, outlier_fraction
from ._regression import rmse as _rmse

__all__ = [
    "CorrectedTTestResult",
    "PairedDifference",
    "ScoreInterval",
    "corrected_resampled_ttest",
    "paired_difference",
    "score_interval",
    "score_intervals",
    "verdict",
]

#: The outlier threshold of :func:`~sklearn_sfr.metrics.outlier_fraction` (0.3 dex), read from
#: its signature so that the two never disagree.
_THRESHOLD = inspect.signature(outlier_fraction).parameters["threshold"].default

#: Bootstrap interval methods of :func:`scipy.stats.bootstrap` offered here, by lower-case name.
_METHODS = {"percentile": "percentile", "bca": "BCa"}

#: The words of :func:`verdict`.
_BETTER, _WORSE, _NONE = "better", "worse", "no detectable difference"

#: Elements of one resampled array per vectorised call (bounds the memory of a batch).
_BATCH_ELEMENTS = 2**21


# --------------------------------------------------------------------------------------------
# the metrics: point values from sklearn_sfr.metrics, resamples as reductions along an axis


#: The metrics, by name: the functions of :mod:`sklearn_sfr.metrics` for the point values
#: (:func:`_point_value`) and the same statistics as reductions of the residuals along an axis
#: for the bootstrap resamples (:func:`_along`); the two agree on one sample (tested).
_METRIC_NAMES = ("rmse", "mae", "nmad", "bias", "abs_bias", "outlier_fraction")


def _point_value(metric, y_true, y_pred, threshold):
    """The metric of one set of predictions, by the library's own function."""
    if metric == "rmse":
        return _rmse(y_true, y_pred)
    if metric == "mae":
        return float(mean_absolute_error(y_true, y_pred))
    if metric == "nmad":
        return nmad(y_true, y_pred)
    if metric == "bias":
        return bias(y_true, y_pred)
    if metric == "abs_bias":
        return abs(bias(y_true, y_pred))
    return outlier_fraction(y_true, y_pred, threshold=threshold)


def _along(metrics, residual, threshold):
    """The metrics of the residuals ``y_pred - y_true`` along the last axis, stacked on a new
    first axis: every bootstrap resample (and repeat) at once. The median of the residuals is
    computed once for ``bias``, ``abs_bias`` and ``nmad``."""
    out = []
    median = None
    for metric in metrics:
        if metric in ("nmad", "bias", "abs_bias") and median is None:
            median = np.median(residual, axis=-1, keepdims=True)
        if metric == "rmse":
            out.append(np.sqrt(np.mean(np.square(residual), axis=-1)))
        elif metric == "mae":
            out.append(np.mean(np.abs(residual), axis=-1))
        elif metric == "nmad":
            out.append(NMAD_SCALE * median_absolute_deviation(residual, axis=-1))
        elif metric == "bias":
            out.append(median[..., 0])
        elif metric == "abs_bias":
            out.append(np.abs(median[..., 0]))
        else:
            out.append(np.mean(np.abs(residual) > threshold, axis=-1))
    return np.stack(out)


def _check_metric(metric):
    if not isinstance(metric, str) or metric not in _METRIC_NAMES:
        raise ValueError(f"`metric` must be one of {list(_METRIC_NAMES)}; got {metric!r}")
    return metric


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ScoreInterval:
    """A metric of one model with its confidence interval, from :func:`score_interval`.

    Parameters
    ----------
    metric : str
        The metric's name (``"rmse"``, ``"mae"``, ``"nmad"``, ``"bias"``, ``"abs_bias"`` or
        ``"outlier_fraction"``).
    value : float
        The metric; with seed repeats, the mean of the repeats' metrics.
    low, high : float
        The bounds of the interval.
    confidence_level : float
        The interval's confidence level (0.95 for a 95 % interval).
    method : str
        How the interval was made, in words a report can quote.
    sample_std : float
        Standard error of ``value`` due to the test sample: the standard deviation of the
        bootstrap distribution over objects.
    training_std : float
        Standard error of ``value`` due to training: the standard deviation of the repeats'
        metrics divided by ``sqrt(n_repeats)``; 0 for one repeat (not measured).
    std : float
        Total standard error, ``hypot(sample_std, training_std)``.
    n_samples : int
        Number of test objects.
    n_repeats : int
        Number of seed repeats.

    See Also
    --------
    score_interval : Makes it.

    Examples
    --------
    >>> from sklearn_sfr.metrics import score_interval
    >>> result = score_interval([0.0, 1.0, 2.0, 3.0], [0.1, 1.2, 1.7, 3.0], random_state=0)
    >>> result.metric, round(result.value, 3)
    ('rmse', 0.187)
    """

    metric: str
    value: float
    low: float
    high: float
    confidence_level: float
    method: str
    sample_std: float
    training_std: float
    std: float
    n_samples: int
    n_repeats: int


@dataclass(frozen=True)
class PairedDifference:
    """The difference of a metric between two models on the same objects, with its interval.

    Made by :func:`paired_difference`; :func:`verdict` reads it.

    Parameters
    ----------
    metric : str
        The metric's name.
    difference : float
        ``value_a - value_b``.
    low, high : float
        The bounds of the interval of the difference.
    confidence_level : float
        The interval's confidence level.
    method : str
        How the interval was made, in words a report can quote.
    excludes_zero : bool
        Whether ``low > 0`` or ``high < 0``: the difference is detected.
    detectable : float
        The smallest difference this run could have detected: the minimum detectable effect
        ``(z_(1 - alpha/2) + z_power) * std`` (2.80 standard errors for a 95 % interval and
        80 % power).
    detectable_method : str
        How ``detectable`` was computed, in words.
    value_a, value_b : float
        The two models' metrics (means over their repeats).
    sample_std : float
        Standard error of the difference due to the test sample (paired bootstrap).
    training_std : float
        Standard error of the difference due to training,
        ``sqrt(s_a**2 / K_a + s_b**2 / K_b)`` over the models with two or more repeats.
    std : float
        Total standard error, ``hypot(sample_std, training_std)``.
    n_samples : int
        Number of test objects.
    n_repeats_a, n_repeats_b : int
        Numbers of seed repeats of the two models.

    See Also
    --------
    paired_difference : Makes it.
    verdict : Its verdict.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.metrics import paired_difference
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=300)
    >>> result = paired_difference(y, y + rng.normal(0, 0.2, 300), y + rng.normal(0, 0.4, 300),
    ...                            random_state=0)
    >>> result.excludes_zero, result.difference < 0
    (True, True)
    """

    metric: str
    difference: float
    low: float
    high: float
    confidence_level: float
    method: str
    excludes_zero: bool
    detectable: float
    detectable_method: str
    value_a: float
    value_b: float
    sample_std: float
    training_std: float
    std: float
    n_samples: int
    n_repeats_a: int
    n_repeats_b: int


@dataclass(frozen=True)
class CorrectedTTestResult:
    """Comparison of two models' cross-validation scores, from :func:`corrected_resampled_ttest`.

    Parameters
    ----------
    difference : float
        Mean over folds of ``scores_a - scores_b``.
    low, high : float
        The bounds of the t interval of the difference (corrected variance).
    confidence_level : float
        The interval's confidence level.
    method : str
        The test's name and its correction, in words a report can quote.
    statistic : float
        The t statistic, ``difference / std_error``.
    pvalue : float
        The two-sided p-value of no difference.
    df : int
        Degrees of freedom, the number of folds minus one.
    std_error : float
        Corrected standard error, ``sqrt((1/J + n_test/n_train) * s**2)``.
    naive_std_error : float
        The uncorrected one, ``sqrt(s**2 / J)``, which treats folds as independent.
    excludes_zero : bool
        Whether ``low > 0`` or ``high < 0``.
    detectable : float
        The minimum detectable effect, ``(t_(1 - alpha/2, df) + t_(power, df)) * std_error``.
    detectable_method : str
        How ``detectable`` was computed, in words.
    n_folds : int
        ``J``, the number of paired fold scores.

    See Also
    --------
    corrected_resampled_ttest : Makes it.
    verdict : Its verdict.

    Examples
    --------
    >>> from sklearn_sfr.metrics import corrected_resampled_ttest
    >>> result = corrected_resampled_ttest([0.50, 0.52, 0.49, 0.51, 0.50],
    ...                                    [0.55, 0.56, 0.53, 0.57, 0.54],
    ...                                    n_train=800, n_test=200)
    >>> round(result.difference, 3), result.df
    (-0.046, 4)
    """

    difference: float
    low: float
    high: float
    confidence_level: float
    method: str
    statistic: float
    pvalue: float
    df: int
    std_error: float
    naive_std_error: float
    excludes_zero: bool
    detectable: float
    detectable_method: str
    n_folds: int


# --------------------------------------------------------------------------------------------
# validation


def _check_predictions(y_pred, n_samples, name):
    """``y_pred`` as a finite float array of shape ``(n_repeats, n_samples)``."""
    y_pred = check_array(y_pred, ensure_2d=False, dtype=np.float64, input_name=name)
    if y_pred.ndim == 1:
        y_pred = y_pred[np.newaxis, :]
    if y_pred.ndim != 2 or y_pred.shape[1] != n_samples:
        raise ValueError(
            f"`{name}` must have shape (n_samples,) or (n_repeats, n_samples) with "
            f"n_samples={n_samples} (the length of `y_true`); got shape {y_pred.shape}"
        )
    return y_pred


def _check_level(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"`{name}` must be a number strictly between 0 and 1; got {value!r}")
    return float(value)


def _check_common(y_true, confidence_level, n_resamples, method, threshold):
    y_true = _check_1d(y_true, "y_true")
    if y_true.shape[0] < 2:
        raise ValueError(f"a bootstrap needs at least 2 objects; got {y_true.shape[0]}")
    confidence_level = _check_level(confidence_level, "confidence_level")
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, numbers.Integral)
        or n_resamples < 2
    ):
        raise ValueError(f"`n_resamples` must be an integer >= 2; got {n_resamples!r}")
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"`method` must be 'percentile' or 'BCa'; got {method!r}")
    threshold = check_threshold(threshold)
    return y_true, confidence_level, int(n_resamples), _METHODS[method.lower()], threshold


def _rng_argument(random_state):
    """``{"rng": Generator}`` for :func:`scipy.stats.bootstrap` (``random_state`` before 1.15)."""
    rng = np.random.default_rng(random_state)
    if "rng" in inspect.signature(stats.bootstrap).parameters:
        return {"rng": rng}
    return {"random_state": rng}  # pragma: no cover - scipy < 1.15


# --------------------------------------------------------------------------------------------
# the bootstrap


def _bootstrap(
    residuals, n_first, metrics, threshold, *, confidence_level, n_resamples, method, random_state
):
    """Paired bootstrap over objects of the metrics of ``residuals`` (shape ``(K, n)``).

    The statistic is the mean over the ``K`` rows of each metric or, with ``n_first``, the mean
    over the first ``n_first`` rows minus the mean over the others (model A minus model B).
    All metrics here are functions of the residual ``y_pred - y_true`` of each object, so
    resampling residuals is resampling (label, prediction) pairs. Every row is one sample of a
    paired :func:`scipy.stats.bootstrap`, so all rows are resampled on the same objects; the
    statistic loops over the rows (the repeats, a handful), never over resamples, and reduces
    each resampled row, an ``(n_resamples, n)`` array, along its last axis.

    Returns arrays ``(low, high, standard error)`` of shape ``(len(metrics),)``.
    """
    n_rows, n = residuals.shape

    def statistic(*rows, axis=-1):
        values = [_along(metrics, row, threshold) for row in rows]  # each (n_metrics, ...)
        if n_first is None:
            return sum(values) / n_rows
        return sum(values[:n_first]) / n_first - sum(values[n_first:]) / (n_rows - n_first)

    # at most _BATCH_ELEMENTS per resampled row and 8 times that in all
    batch = max(1, min(n_resamples, _BATCH_ELEMENTS // n, 8 * _BATCH_ELEMENTS // (n * n_rows)))
    with warnings.catch_warnings():
        # A statistic that no resample changes (identical models) has an interval of width
        # zero; BCa then warns and gives NaN, handled below.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        result = stats.bootstrap(
            tuple(residuals),
            statistic,
            paired=True,
            vectorized=True,
            axis=-1,
            n_resamples=n_resamples,
            batch=batch,
            confidence_level=confidence_level,
            method=method,
            **_rng_argument(random_state),
        )
    low = np.array(result.confidence_interval.low, dtype=np.float64).reshape(-1)
    high = np.array(result.confidence_interval.high, dtype=np.float64).reshape(-1)
    distribution = np.asarray(result.bootstrap_distribution).reshape(len(metrics), -1)
    fixed = np.ptp(distribution, axis=-1) == 0  # every resample gives the same value
    low[fixed] = high[fixed] = distribution[fixed, 0]
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        warnings.warn(
            f"the {method} interval could not be computed (a degenerate bootstrap "
            "distribution); use method='percentile'",
            stats.DegenerateDataWarning,
            stacklevel=3,
        )
    return low, high, np.asarray(result.standard_error, dtype=np.float64).reshape(-1)


def _repeat_values(y_true, predictions, metric, threshold):
    return np.array([_point_value(metric, y_true, row, threshold) for row in predictions])


def _training_part(values_per_model, confidence_level):
    """Standard error due to training and the Student-t half-width of that part.

    The variance of a model's mean over ``K`` seed repeats is ``s**2 / K`` (``s`` the sample
    standard deviation of its ``K`` metrics); models are trained independently, so their
    variances add. The degrees of freedom are Welch-Satterthwaite's. A model with one repeat
    contributes nothing (its training spread is not measured).
    """
    variances, dofs = [], []
    for values in values_per_model:
        k = values.shape[0]
        if k >= 2:
            variances.append(np.var(values, ddof=1) / k)
            dofs.append(k - 1)
    variance = float(sum(variances))
    if variance == 0:
        return 0.0, 0.0, None
    df = variance**2 / sum(v**2 / d for v, d in zip(variances, dofs))
    std = math.sqrt(variance)
    return std, float(stats.t.ppf(0.5 + confidence_level / 2, df)) * std, df


def _widen(value, low, high, half_width):
    """The bootstrap interval ``(low, high)`` of ``value`` widened by an independent part of
    half-width ``half_width``: MOVER, each half-width added in quadrature. ``half_width = 0``
    returns ``(low, high)`` unchanged."""
    if half_width == 0:
        return low, high
    below, above = value - low, high - value
    low = low - (math.hypot(below, half_width) - abs(below))
    high = high + (math.hypot(above, half_width) - abs(above))
    return low, high


def _method_text(method, n_samples, n_resamples, n_repeats, df):
    text = (
        f"paired {method} bootstrap over {n_samples} objects "
        f"(scipy.stats.bootstrap, {n_resamples} resamples)"
    )
    if df is not None:
        text += (
            f"; seed spread of {n_repeats} repeats added by MOVER "
            f"(Student t, {df:.3g} degrees of freedom)"
        )
    return text


def _detectable(std, confidence_level, power, df=None):
    """Minimum detectable effect: ``(q(1 - alpha/2) + q(power)) * std``, ``q`` the normal
    quantile (or Student t's with ``df``)."""
    dist = stats.norm if df is None else stats.t(df)
    factor = float(dist.ppf(0.5 + confidence_level / 2) + dist.ppf(power))
    return factor * std, factor


# --------------------------------------------------------------------------------------------
# public functions


def score_interval(
    y_true,
    y_pred,
    metric="rmse",
    *,
    confidence_level=0.95,
    n_resamples=2000,
    method="percentile",
    threshold=_THRESHOLD,
    random_state=None,
):
    """A metric with its confidence interval from a paired bootstrap over the test objects.

    Labels and predictions are resampled together (:func:`scipy.stats.bootstrap` with
    ``paired=True``), and the metric is computed on every resample at once, as a reduction
    along the object axis.

    With seed repeats (``y_pred`` of shape ``(K, n_samples)``, one row per model trained with
    another seed on the same split) the value is the mean of the ``K`` metrics. Its
    uncertainty has two independent parts:

    * the test sample: the bootstrap above, every resample scoring all ``K`` models on the
      same objects and averaging their metrics, gives the interval ``(l, u)`` and the standard
      error ``sample_std``;
    * training: the sample standard deviation ``s`` of the ``K`` metrics on the full test set
      gives ``training_std = s / sqrt(K)``, with the half-width
      ``w = t_(1 - alpha/2, K - 1) * training_std``.

    They are combined by MOVER (the method of variance estimates recovery, Zou and Donner
    2008), adding the half-widths in quadrature on each side:
    ``low = value - sqrt((value - l)**2 + w**2)``,
    ``high = value + sqrt((u - value)**2 + w**2)``. This keeps the bootstrap interval's
    asymmetry, is what "adding the between-repeat variance divided by K" means for an interval,
    and with ``K = 1`` (``w = 0``) is exactly scipy's paired bootstrap interval. Resampling the
    repeats as well was not chosen: with a few repeats it underestimates their variance by
    ``(K - 1) / K`` and cannot use the t quantile that a few repeats need.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values (e.g. catalogue log SFR); at least 2.
    y_pred : array-like of shape (n_samples,) or (n_repeats, n_samples)
        Predictions; one row per seed repeat.
    metric : {"rmse", "mae", "nmad", "bias", "abs_bias", "outlier_fraction"}, default="rmse"
        The metric: :func:`~sklearn_sfr.metrics.rmse`,
        :func:`~sklearn.metrics.mean_absolute_error`, :func:`~sklearn_sfr.metrics.nmad`,
        :func:`~sklearn_sfr.metrics.bias`, the absolute bias, or
        :func:`~sklearn_sfr.metrics.outlier_fraction`.
    confidence_level : float, default=0.95
        Confidence level of the interval.
    n_resamples : int, default=2000
        Number of bootstrap resamples.
    method : {"percentile", "BCa"}, default="percentile"
        The bootstrap interval. The percentile interval is the default: it is what the model
        cards report, it always lies within the bootstrap distribution, and it needs no
        jackknife. BCa's acceleration comes from a jackknife, which adds ``n_samples``
        leave-one-out evaluations to the ``n_resamples`` of the bootstrap and is inconsistent
        for medians (``bias``, ``nmad``), whose bootstrap distributions are also discrete.
        BCa is second-order accurate and may cover better for a small sample of a skewed
        metric; it is not guaranteed to contain the point estimate.
    threshold : float, default=0.3
        Outlier threshold of ``"outlier_fraction"`` (that of
        :func:`~sklearn_sfr.metrics.outlier_fraction`).
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the resampling.

    Returns
    -------
    ScoreInterval
        ``value``, ``low``, ``high``, ``method`` (in words), ``sample_std``, ``training_std``,
        ``std``, ``confidence_level``, ``n_samples``, ``n_repeats`` and ``metric``.

    Raises
    ------
    ValueError
        If the inputs are not finite, have the wrong shapes, or fewer than 2 objects, or an
        option is unknown.

    See Also
    --------
    score_intervals : Several metrics on one set of resamples.
    paired_difference : The difference between two models, with its interval.

    Notes
    -----
    Every metric here is a function of the residual ``y_pred - y_true`` of each object, so the
    residuals are what is resampled: that is resampling (label, prediction) pairs, with the
    same draws as :func:`scipy.stats.bootstrap` with ``paired=True`` on
    ``(y_true, y_pred)``.

    The interval of a degenerate bootstrap (every resample giving the same value, as for a
    perfect model) is that value. The interval of a metric that the bootstrap cannot move,
    such as an outlier fraction of 0, has width zero: it says nothing about rare outliers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.metrics import score_interval
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=500)
    >>> result = score_interval(y, y + rng.normal(0, 0.3, 500), random_state=0)
    >>> result.low < result.value < result.high
    True
    >>> round(result.value, 2), result.n_repeats
    (0.3, 1)

    Three seed repeats whose errors differ from seed to seed (a training spread):

    >>> repeats = y + rng.normal(0, 1, (3, 1)) * 0.05 + rng.normal(0, 0.3, (3, 500))
    >>> result = score_interval(y, repeats, random_state=0)
    >>> result.n_repeats, bool(result.training_std > 0)
    (3, True)
    """
    metric = _check_metric(metric)
    return _score_intervals(
        y_true,
        y_pred,
        (metric,),
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        threshold=threshold,
        random_state=random_state,
    )[metric]


def score_intervals(
    y_true,
    y_pred,
    metrics=("rmse", "mae", "nmad", "bias", "outlier_fraction"),
    *,
    confidence_level=0.95,
    n_resamples=2000,
    method="percentile",
    threshold=_THRESHOLD,
    random_state=None,
):
    """Several metrics of one model with their intervals, from one shared bootstrap.

    The intervals of a table row in one pass: the objects are resampled once and every metric
    is computed on the same resamples (the median of the residuals once for the bias and the
    NMAD), which is several times faster than one :func:`score_interval` per metric. Each
    result equals :func:`score_interval`'s for that metric with the same ``random_state``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values; at least 2.
    y_pred : array-like of shape (n_samples,) or (n_repeats, n_samples)
        Predictions; one row per seed repeat.
    metrics : sequence of str, default=("rmse", "mae", "nmad", "bias", "outlier_fraction")
        Names of the metrics, as in :func:`score_interval`; by default the five of a study's
        table.
    confidence_level : float, default=0.95
        Confidence level of the intervals.
    n_resamples : int, default=2000
        Number of bootstrap resamples.
    method : {"percentile", "BCa"}, default="percentile"
        The bootstrap interval (see :func:`score_interval` for the choice).
    threshold : float, default=0.3
        Outlier threshold of ``"outlier_fraction"``.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the resampling.

    Returns
    -------
    dict of str to ScoreInterval
        One :class:`ScoreInterval` per metric, in the order of ``metrics``.

    Raises
    ------
    ValueError
        As :func:`score_interval`, or if ``metrics`` is empty or repeats a name.

    See Also
    --------
    score_interval : One metric.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.metrics import score_intervals
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=2000)
    >>> row = score_intervals(y, y + rng.normal(0.05, 0.3, 2000), random_state=0)
    >>> list(row)
    ['rmse', 'mae', 'nmad', 'bias', 'outlier_fraction']
    >>> {name: round(r.value, 2) for name, r in row.items()}
    {'rmse': 0.3, 'mae': 0.24, 'nmad': 0.3, 'bias': 0.04, 'outlier_fraction': 0.32}
    >>> round(row["rmse"].low, 3), round(row["rmse"].high, 3)
    (0.294, 0.312)
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(_check_metric(metric) for metric in metrics)
    if not metrics or len(set(metrics)) != len(metrics):
        raise ValueError(f"`metrics` must name distinct metrics, at least one; got {metrics}")
    return _score_intervals(
        y_true,
        y_pred,
        metrics,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        threshold=threshold,
        random_state=random_state,
    )


def _score_intervals(
    y_true, y_pred, metrics, *, confidence_level, n_resamples, method, threshold, random_state
):
    y_true, confidence_level, n_resamples, method, threshold = _check_common(
        y_true, confidence_level, n_resamples, method, threshold
    )
    n = y_true.shape[0]
    y_pred = _check_predictions(y_pred, n, "y_pred")
    lows, highs, sample_stds = _bootstrap(
        y_pred - y_true,
        None,
        metrics,
        threshold,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        random_state=random_state,
    )
    results = {}
    for metric, low, high, sample_std in zip(metrics, lows, highs, sample_stds):
        values = _repeat_values(y_true, y_pred, metric, threshold)
        value = float(np.mean(values))
        training_std, half_width, df = _training_part([values], confidence_level)
        low, high = _widen(value, float(low), float(high), half_width)
        results[metric] = ScoreInterval(
            metric=metric,
            value=value,
            low=low,
            high=high,
            confidence_level=confidence_level,
            method=_method_text(method, n, n_resamples, y_pred.shape[0], df),
            sample_std=float(sample_std),
            training_std=training_std,
            std=math.hypot(sample_std, training_std),
            n_samples=n,
            n_repeats=y_pred.shape[0],
        )
    return results


def paired_difference(
    y_true,
    pred_a,
    pred_b,
    metric="rmse",
    *,
    confidence_level=0.95,
    n_resamples=2000,
    method="percentile",
    power=0.8,
    threshold=_THRESHOLD,
    random_state=None,
):
    """The difference of a metric between two models, with its paired bootstrap interval.

    Both models were scored on the same objects, so the bootstrap resamples the objects once
    for both (:func:`scipy.stats.bootstrap` with ``paired=True``, every prediction row one
    paired sample) and the difference ``metric(a) - metric(b)`` is computed on every resample:
    what the two models have in common (hard objects) cancels, and the interval is far
    narrower than two separate intervals would suggest.

    Seed repeats are handled as in :func:`score_interval`: each model's value is the mean of
    its repeats' metrics, the bootstrap over objects gives the test-sample part, and the
    training part, ``training_std = sqrt(s_a**2 / K_a + s_b**2 / K_b)`` (models trained
    independently; a model with one repeat contributes 0), is added to each half-width in
    quadrature (MOVER) with a Student-t quantile on Welch-Satterthwaite's degrees of freedom.
    With one repeat each, the interval is exactly scipy's paired bootstrap interval.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values; at least 2.
    pred_a : array-like of shape (n_samples,) or (n_repeats_a, n_samples)
        Model A's predictions, one row per seed repeat.
    pred_b : array-like of shape (n_samples,) or (n_repeats_b, n_samples)
        Model B's predictions on the same objects, one row per seed repeat.
    metric : {"rmse", "mae", "nmad", "bias", "abs_bias", "outlier_fraction"}, default="rmse"
        The metric, as in :func:`score_interval`. The bias is signed, so a lower one is not
        a better one: compare ``"abs_bias"`` for a verdict.
    confidence_level : float, default=0.95
        Confidence level of the interval.
    n_resamples : int, default=2000
        Number of bootstrap resamples.
    method : {"percentile", "BCa"}, default="percentile"
        The bootstrap interval (see :func:`score_interval` for the choice).
    power : float, default=0.8
        Power of the minimum detectable effect ``detectable``.
    threshold : float, default=0.3
        Outlier threshold of ``"outlier_fraction"``.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the resampling.

    Returns
    -------
    PairedDifference
        ``difference`` (A minus B), ``low``, ``high``, ``excludes_zero``, ``detectable``, the
        two values, the standard errors ``sample_std``, ``training_std`` and ``std``, and the
        method in words.

    Raises
    ------
    ValueError
        If the inputs are not finite, have the wrong shapes, or fewer than 2 objects, or an
        option is unknown.

    See Also
    --------
    verdict : The words for the result.
    corrected_resampled_ttest : The comparison of cross-validation scores.

    Notes
    -----
    ``detectable`` is the minimum detectable effect at the given power (Bloom 1995),
    ``(z_(1 - alpha/2) + z_power) * std`` with normal quantiles and the total standard error:
    2.80 standard errors for a 95 % interval and 80 % power. A true difference of that size
    would give an interval excluding zero in 80 % of runs like this one; a smaller one would
    often be missed. When ``excludes_zero`` is false, report "no detectable difference"
    together with it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.metrics import paired_difference, verdict
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=1000)
    >>> hard = rng.normal(0, 0.3, 1000)  # errors both models share
    >>> a = y + hard + rng.normal(0, 0.1, 1000)
    >>> b = y + hard + rng.normal(0, 0.2, 1000)
    >>> result = paired_difference(y, a, b, random_state=0)
    >>> result.low < result.difference < result.high < 0
    True
    >>> verdict(result)
    'better'
    >>> verdict(paired_difference(y, a, a + rng.normal(0, 0.01, 1000), random_state=0))
    'no detectable difference'
    """
    y_true, confidence_level, n_resamples, method, threshold = _check_common(
        y_true, confidence_level, n_resamples, method, threshold
    )
    metric = _check_metric(metric)
    power = _check_level(power, "power")
    n = y_true.shape[0]
    pred_a = _check_predictions(pred_a, n, "pred_a")
    pred_b = _check_predictions(pred_b, n, "pred_b")
    values_a = _repeat_values(y_true, pred_a, metric, threshold)
    values_b = _repeat_values(y_true, pred_b, metric, threshold)
    value_a, value_b = float(np.mean(values_a)), float(np.mean(values_b))
    difference = value_a - value_b
    (low,), (high,), (sample_std,) = _bootstrap(
        np.concatenate([pred_a - y_true, pred_b - y_true]),
        pred_a.shape[0],
        (metric,),
        threshold,
        confidence_level=confidence_level,
        n_resamples=n_resamples,
        method=method,
        random_state=random_state,
    )
    training_std, half_width, df = _training_part([values_a, values_b], confidence_level)
    low, high = _widen(difference, float(low), float(high), half_width)
    sample_std = float(sample_std)
    std = math.hypot(sample_std, training_std)
    detectable, factor = _detectable(std, confidence_level, power)
    repeats = f"{pred_a.shape[0]} and {pred_b.shape[0]}"
    return PairedDifference(
        metric=metric,
        difference=difference,
        low=low,
        high=high,
        confidence_level=confidence_level,
        method=_method_text(method, n, n_resamples, repeats, df),
        excludes_zero=bool(low > 0 or high < 0),
        detectable=detectable,
        detectable_method=(
            f"minimum detectable effect at {100 * power:.0f} % power: "
            f"(z_{0.5 + confidence_level / 2:.3g} + z_{power:.3g}) x standard error "
            f"= {factor:.2f} x {std:.3g}"
        ),
        value_a=value_a,
        value_b=value_b,
        sample_std=sample_std,
        training_std=training_std,
        std=std,
        n_samples=n,
        n_repeats_a=pred_a.shape[0],
        n_repeats_b=pred_b.shape[0],
    )


def corrected_resampled_ttest(
    scores_a, scores_b, *, n_train, n_test, confidence_level=0.95, power=0.8
):
    """Compare two models' cross-validation scores by the corrected resampled t-test.

    The folds of a cross-validation share most of their training objects, so their scores are
    correlated and the plain paired t-test (variance ``s**2 / J`` over ``J`` folds) is far too
    confident. Nadeau and Bengio (2003) correct the variance of the mean difference to
    ``(1/J + n_test/n_train) * s**2``, ``s**2`` the sample variance of the per-fold
    differences; the t statistic has ``J - 1`` degrees of freedom (:data:`scipy.stats.t`).
    For ``r`` repeats of ``k``-fold cross-validation pass all ``J = r * k`` scores (Bouckaert
    and Frank's corrected repeated k-fold test is the same formula).

    Parameters
    ----------
    scores_a : array-like of shape (n_folds,)
        Model A's score on every fold (any metric, e.g. the RMSE).
    scores_b : array-like of shape (n_folds,)
        Model B's score on the same folds, in the same order.
    n_train : int or float
        Number of training objects of a fold (the mean, if folds differ).
    n_test : int or float
        Number of test objects of a fold (the mean, if folds differ).
    confidence_level : float, default=0.95
        Confidence level of the interval.
    power : float, default=0.8
        Power of the minimum detectable effect ``detectable``.

    Returns
    -------
    CorrectedTTestResult
        ``difference`` (mean of A minus B), ``low``, ``high``, ``statistic``, ``pvalue``,
        ``df``, ``std_error``, ``naive_std_error``, ``excludes_zero``, ``detectable`` and
        ``method`` (the test's name).

    Raises
    ------
    ValueError
        If the scores are not finite 1-D arrays of one length of at least 2, or ``n_train``
        or ``n_test`` is not a positive number.

    See Also
    --------
    paired_difference : The comparison on one test set.
    verdict : The words for the result.

    Notes
    -----
    If every fold gives the same difference, the standard error is 0: the interval is that
    difference and the p-value is 0 (1 if the difference is 0). ``detectable`` is
    ``(t_(1 - alpha/2, df) + t_(power, df)) * std_error``.

    References
    ----------
    C. Nadeau and Y. Bengio, "Inference for the Generalization Error", Machine Learning 52,
    239-281 (2003).

    Examples
    --------
    >>> from sklearn_sfr.metrics import corrected_resampled_ttest, verdict
    >>> rmse_a = [0.50, 0.52, 0.49, 0.51, 0.50]
    >>> rmse_b = [0.55, 0.56, 0.53, 0.57, 0.54]
    >>> result = corrected_resampled_ttest(rmse_a, rmse_b, n_train=800, n_test=200)
    >>> round(result.difference, 3), round(result.pvalue, 4)
    (-0.046, 0.0016)
    >>> result.std_error > result.naive_std_error, verdict(result)
    (True, 'better')
    """
    scores_a = _check_1d(scores_a, "scores_a")
    scores_b = _check_1d(scores_b, "scores_b")
    if scores_a.shape != scores_b.shape:
        raise ValueError(
            f"`scores_a` and `scores_b` must have one score per fold each; got "
            f"{scores_a.shape[0]} and {scores_b.shape[0]}"
        )
    n_folds = scores_a.shape[0]
    if n_folds < 2:
        raise ValueError(f"the t-test needs at least 2 folds; got {n_folds}")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (np.isfinite(value) and value > 0)
        ):
            raise ValueError(f"`{name}` must be a positive number; got {value!r}")
    confidence_level = _check_level(confidence_level, "confidence_level")
    power = _check_level(power, "power")
    d = scores_a - scores_b
    difference = float(np.mean(d))
    variance = float(np.var(d, ddof=1))
    df = n_folds - 1
    ratio = float(n_test) / float(n_train)
    std_error = math.sqrt((1 / n_folds + ratio) * variance)
    naive_std_error = math.sqrt(variance / n_folds)
    quantile = float(stats.t.ppf(0.5 + confidence_level / 2, df))
    low, high = difference - quantile * std_error, difference + quantile * std_error
    if std_error > 0:
        statistic = difference / std_error
        pvalue = float(2 * stats.t.sf(abs(statistic), df))
    else:  # every fold gives the same difference
        statistic = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        pvalue = 1.0 if difference == 0 else 0.0
    detectable, factor = _detectable(std_error, confidence_level, power, df=df)
    return CorrectedTTestResult(
        difference=difference,
        low=low,
        high=high,
        confidence_level=confidence_level,
        method=(
            f"corrected resampled t-test (Nadeau and Bengio 2003): {n_folds} folds, variance "
            f"factor 1/{n_folds} + n_test/n_train = {1 / n_folds + ratio:.3g}, "
            f"Student t with {df} degrees of freedom"
        ),
        statistic=float(statistic),
        pvalue=pvalue,
        df=df,
        std_error=std_error,
        naive_std_error=naive_std_error,
        excludes_zero=bool(low > 0 or high < 0),
        detectable=detectable,
        detectable_method=(
            f"minimum detectable effect at {100 * power:.0f} % power: "
            f"(t_{0.5 + confidence_level / 2:.3g} + t_{power:.3g}, {df} df) x standard "
            f"error = {factor:.2f} x {std_error:.3g}"
        ),
        n_folds=n_folds,
    )


def verdict(result, *, better="lower"):
    """The report's word for a difference: decided only by whether its interval excludes zero.

    Parameters
    ----------
    result : PairedDifference or CorrectedTTestResult
        A difference "A minus B" with its interval (``low``, ``high``).
    better : {"lower", "higher"}, default="lower"
        Which direction of the metric is better: ``"lower"`` for RMSE, MAE, NMAD, the
        absolute bias and the outlier fraction, ``"higher"`` for a score such as R2.

    Returns
    -------
    str
        ``"better"`` (A is better than B) or ``"worse"`` when the interval excludes zero,
        else ``"no detectable difference"`` (also for an interval that could not be computed,
        NaN). A report may say "helps", "hurts" or "wins" only for the first two; for the
        third, it gives ``result.detectable``, the smallest difference the run could have
        detected.

    Raises
    ------
    TypeError
        If ``result`` is not a difference (a :class:`ScoreInterval`, say).
    ValueError
        If ``better`` is neither ``"lower"`` nor ``"higher"``.

    See Also
    --------
    paired_difference : A difference on one test set.
    corrected_resampled_ttest : A difference of cross-validation scores.

    Examples
    --------
    >>> from sklearn_sfr.metrics import corrected_resampled_ttest, verdict
    >>> result = corrected_resampled_ttest([0.50, 0.52, 0.49], [0.55, 0.56, 0.53],
    ...                                    n_train=200, n_test=100)
    >>> verdict(result), verdict(result, better="higher")
    ('better', 'worse')
    >>> verdict(corrected_resampled_ttest([0.50, 0.56, 0.49], [0.55, 0.52, 0.53],
    ...                                   n_train=200, n_test=100))
    'no detectable difference'
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"`better` must be 'lower' or 'higher'; got {better!r}")
    if not all(hasattr(result, name) for name in ("difference", "low", "high")):
        raise TypeError(
            "verdict needs a difference with an interval (from paired_difference or "
            f"corrected_resampled_ttest); got {type(result).__name__}"
        )
    low, high = float(result.low), float(result.high)
    if low > 0:  # A's metric is higher than B's
        return _WORSE if better == "lower" else _BETTER
    if high < 0:  # A's metric is lower than B's
        return _BETTER if better == "lower" else _WORSE
    return _NONE
