"""Regression metrics astronomers report for photometric estimates, beside scikit-learn's.

RMSE, MAE and R2 are scikit-learn's. Bias, NMAD and the outlier fraction are the robust
statistics of photometric-redshift and SFR papers: they describe the bulk of the residuals
``y_pred - y_true`` (in dex for log SFR) without letting a few catastrophic failures dominate,
and the outlier fraction counts those failures separately.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from astropy.stats import median_absolute_deviation
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.utils.validation import check_array

__all__ = [
    "NMAD_SCALE",
    "bias",
    "nmad",
    "outlier_fraction",
    "regression_report",
    "rmse",
]

#: Factor that makes the median absolute deviation a consistent estimator of a Gaussian's
#: standard deviation: ``1 / Phi^-1(3/4)``, to the four digits of the photometric-redshift
#: literature's NMAD (``astropy.stats.mad_std`` uses all of them: 1.482602...), so that our
#: NMADs compare with published ones digit for digit.
NMAD_SCALE = 1.4826


# --------------------------------------------------------------------------------------------
# validation


def _check_1d(y, name):
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name=name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"`{name}` must be 1-D (n_samples,) or a single column; got shape {y.shape}"
        )
    return y


def check_targets(y_true, y_pred, sample_weight=None):
    """``y_true``, ``y_pred`` (and ``sample_weight``) as finite 1-D float arrays of one length.

    NaN or infinity raises scikit-learn's "Input y_true contains NaN." error: a metric that
    silently skipped them would score a model on fewer objects than its competitors.
    """
    y_true = _check_1d(y_true, "y_true")
    y_pred = _check_1d(y_pred, "y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"`y_true` and `y_pred` must have the same number of samples; "
            f"got {y_true.shape[0]} and {y_pred.shape[0]}"
        )
    if sample_weight is not None:
        sample_weight = _check_1d(sample_weight, "sample_weight")
        if sample_weight.shape[0] != y_true.shape[0]:
            raise ValueError(
                f"`sample_weight` must have one weight per sample ({y_true.shape[0]}); "
                f"got {sample_weight.shape[0]}"
            )
        if np.any(sample_weight < 0):
            raise ValueError("`sample_weight` must be non-negative")
        if not sample_weight.sum() > 0:
            raise ValueError("`sample_weight` must not be all zero")
    return y_true, y_pred, sample_weight


def check_threshold(threshold):
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not (np.isfinite(threshold) and threshold > 0)
    ):
        raise ValueError(f"`threshold` must be a positive finite number; got {threshold!r}")
    return float(threshold)


# --------------------------------------------------------------------------------------------
# statistics


def _weighted_median(values, weights=None):
    """Median of ``values``; with ``weights``, the median of the weighted distribution.

    With integer weights this equals :func:`numpy.median` of the values repeated by their
    weights (so unit weights give :func:`numpy.median` exactly): when the cumulative weight
    reaches exactly half the total at one value, the median is the mean of it and the next.
    ``numpy.quantile(..., weights=)`` (numpy >= 2) is not used because it supports only the
    ``inverted_cdf`` method, which picks the lower middle value and so does not reduce to
    :func:`numpy.median` for unit weights; astropy has no weighted median.
    """
    if weights is None:
        return float(np.median(values))
    keep = weights > 0  # a zero-weight value must never be picked as the "next" one
    values, weights = values[keep], weights[keep]
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    cumulative = np.cumsum(weights)
    half = 0.5 * cumulative[-1]
    # tolerance so that float weights summing to exactly half are treated as such
    tol = 1e-12 * cumulative[-1]
    k = int(np.searchsorted(cumulative, half - tol))
    if abs(cumulative[k] - half) <= tol and k + 1 < values.size:
        return float(0.5 * (values[k] + values[k + 1]))
    return float(values[k])


def rmse(y_true, y_pred, *, sample_weight=None):
    """Root mean squared error, :func:`sklearn.metrics.root_mean_squared_error` on 1-D targets.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values (e.g. catalogue log SFR).
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights.

    Returns
    -------
    float
        ``sqrt(mean((y_pred - y_true)**2))``, in the units of ``y`` (dex for log SFR).

    Raises
    ------
    ValueError
        If an input is not 1-D, contains NaN or infinity, or the lengths differ.

    Examples
    --------
    >>> from sklearn_sfr.metrics import rmse
    >>> rmse([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0])
    1.0
    """
    y_true, y_pred, sample_weight = check_targets(y_true, y_pred, sample_weight)
    return float(root_mean_squared_error(y_true, y_pred, sample_weight=sample_weight))


def bias(y_true, y_pred, *, sample_weight=None):
    """Median residual ``median(y_pred - y_true)``: the systematic offset of the predictions.

    Positive when the model over-predicts. The median rather than the mean keeps a few
    catastrophic outliers from setting the offset.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values.
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights; the weighted median then equals the median of the residuals
        repeated by their (integer) weights.

    Returns
    -------
    float
        The median residual, in the units of ``y`` (dex for log SFR).

    Raises
    ------
    ValueError
        If an input is not 1-D, contains NaN or infinity, or the lengths differ.

    Examples
    --------
    >>> from sklearn_sfr.metrics import bias
    >>> bias([0.0, 0.0, 0.0], [0.1, 0.2, 5.0])
    0.2
    """
    y_true, y_pred, sample_weight = check_targets(y_true, y_pred, sample_weight)
    return _weighted_median(y_pred - y_true, sample_weight)


def nmad(y_true, y_pred, *, sample_weight=None):
    """Normalised median absolute deviation of the residuals, a robust scatter.

    ``NMAD = 1.4826 * median(|r - median(r)|)`` with ``r = y_pred - y_true``. For Gaussian
    residuals it estimates their standard deviation; unlike the RMSE it ignores the offset
    (see :func:`bias`) and is barely moved by outliers (see :func:`outlier_fraction`).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values.
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights; both medians are then weighted medians.

    Returns
    -------
    float
        The NMAD, in the units of ``y`` (dex for log SFR).

    Raises
    ------
    ValueError
        If an input is not 1-D, contains NaN or infinity, or the lengths differ.

    Examples
    --------
    >>> from sklearn_sfr.metrics import nmad
    >>> round(nmad([0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0, 100.0]), 4)
    1.4826
    """
    y_true, y_pred, sample_weight = check_targets(y_true, y_pred, sample_weight)
    residual = y_pred - y_true
    if sample_weight is None:
        return NMAD_SCALE * float(median_absolute_deviation(residual))
    centre = _weighted_median(residual, sample_weight)
    return NMAD_SCALE * _weighted_median(np.abs(residual - centre), sample_weight)


def outlier_fraction(y_true, y_pred, *, threshold=0.3, sample_weight=None):
    """Fraction of catastrophic predictions, ``|y_pred - y_true| > threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values.
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    threshold : float, default=0.3
        Absolute residual above which a prediction is an outlier, in the units of ``y``
        (0.3 dex, the usual choice for log SFR). A residual equal to it is not an outlier.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights; the fraction is then the weighted fraction.

    Returns
    -------
    float
        The fraction, between 0 and 1.

    Raises
    ------
    ValueError
        If an input is not 1-D, contains NaN or infinity, the lengths differ, or
        ``threshold`` is not a positive number.

    Examples
    --------
    >>> from sklearn_sfr.metrics import outlier_fraction
    >>> outlier_fraction([0.0, 0.0, 0.0, 0.0], [0.1, -0.2, 0.5, -1.0])
    0.5
    """
    threshold = check_threshold(threshold)
    y_true, y_pred, sample_weight = check_targets(y_true, y_pred, sample_weight)
    is_outlier = np.abs(y_pred - y_true) > threshold
    return float(np.average(is_outlier, weights=sample_weight))


def regression_report(
    y_true, y_pred, *, noise_floor=None, threshold=0.3, sample_weight=None, name=None
):
    """Every metric of one set of predictions as a one-row DataFrame.

    Rows of several models or folds concatenate with :func:`pandas.concat` into a table.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values.
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    noise_floor : float, optional
        The RMSE no model can beat (for a synthetic cube, ``cube.noise_floor``: the RMSE of the
        catalogue label against the true log SFR). When given, the row also has the columns
        ``noise_floor`` and ``rmse_over_noise_floor``.
    threshold : float, default=0.3
        Outlier threshold of :func:`outlier_fraction`; also stored in ``report.attrs``.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights, passed to every metric (``n`` stays the number of samples).
    name : str, optional
        Index of the row (e.g. the model's name); default the integer 0.

    Returns
    -------
    report : DataFrame of shape (1, 7) or (1, 9)
        Columns ``n, rmse, mae, r2, bias, nmad, outlier_fraction`` and, with ``noise_floor``,
        ``noise_floor, rmse_over_noise_floor``. ``r2`` is NaN for fewer than 2 samples.

    Raises
    ------
    ValueError
        If an input is not 1-D, contains NaN or infinity, the lengths differ, or
        ``threshold`` or ``noise_floor`` is not a positive number.

    Examples
    --------
    >>> from sklearn_sfr.metrics import regression_report
    >>> report = regression_report([0.0, 1.0, 2.0, 3.0], [0.1, 1.1, 1.9, 3.5],
    ...                            noise_floor=0.25, name="tree")
    >>> report.round(3).T
                            tree
    n                      4.000
    rmse                   0.265
    mae                    0.200
    r2                     0.944
    bias                   0.100
    nmad                   0.148
    outlier_fraction       0.250
    noise_floor            0.250
    rmse_over_noise_floor  1.058
    """
    threshold = check_threshold(threshold)
    if noise_floor is not None:
        if isinstance(noise_floor, bool) or not isinstance(noise_floor, numbers.Real):
            raise ValueError(f"`noise_floor` must be a positive number; got {noise_floor!r}")
        if not (np.isfinite(noise_floor) and noise_floor > 0):
            raise ValueError(f"`noise_floor` must be a positive finite number; got {noise_floor}")
    y_true, y_pred, sample_weight = check_targets(y_true, y_pred, sample_weight)
    kw = {"sample_weight": sample_weight}
    row = {
        "n": y_true.shape[0],
        "rmse": rmse(y_true, y_pred, **kw),
        "mae": float(mean_absolute_error(y_true, y_pred, **kw)),
        # scikit-learn warns and returns NaN for one sample; say NaN without the warning
        "r2": float(r2_score(y_true, y_pred, **kw)) if y_true.shape[0] >= 2 else np.nan,
        "bias": bias(y_true, y_pred, **kw),
        "nmad": nmad(y_true, y_pred, **kw),
        "outlier_fraction": outlier_fraction(y_true, y_pred, threshold=threshold, **kw),
    }
    if noise_floor is not None:
        row["noise_floor"] = float(noise_floor)
        row["rmse_over_noise_floor"] = row["rmse"] / float(noise_floor)
    report = pd.DataFrame([row], index=[0 if name is None else name])
    report.attrs["threshold"] = threshold
    return report
