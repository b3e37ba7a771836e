"""The checks of what reaches the network besides X: the target and the sample weights.

The networks compute in float32, so a target or a weight that float32 cannot hold (or whose
scaling overflows it) would make every prediction infinite or NaN without a word. The three
estimator families (the regressors, the contrastive regressor and the classifier) check and
scale ``y`` and ``sample_weight`` here, in one place.
"""

from __future__ import annotations

import numpy as np

#: The largest finite float32, the networks' number type.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_regression_target(y, n_samples, *, allow_nan=False):
    """A 1-D float64 target with one value per sample (2-D targets are refused).

    Infinity, values beyond float32's range and (unless ``allow_nan``) NaN are refused.
    """
    if n_samples == 0:
        raise ValueError("X has no samples; at least one is required")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one target per sample), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} values but X has {n_samples} samples")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if np.isinf(y).any() or (not allow_nan and np.isnan(y).any()):
        raise ValueError(
            "y contains NaN or infinity; drop unlabelled objects first (e.g. with FlagFilter)"
        )
    with np.errstate(invalid="ignore"):
        too_big = np.abs(y) > FLOAT32_MAX
    if too_big.any():
        raise ValueError(
            f"y has {int(too_big.sum())} values beyond float32's range (largest |y| = "
            f"{np.nanmax(np.abs(y)):.3g} > {FLOAT32_MAX:.3g}, e.g. rows "
            f"{np.flatnonzero(too_big)[:5].tolist()}), which the network cannot represent; "
            "rescale the target (a log SFR is of order one)"
        )
    return y


def standardise_target(y):
    """``(mean, scale, y_scaled)``: y standardised, as a float32 (n, 1) column.

    The column shape keeps a 1-D target from broadcasting against an (n, 1) output. A
    scaling that float32 cannot hold is refused, naming ``y``.
    """
    mean = float(y.mean())
    scale = float(y.std()) or 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scaled = ((y - mean) / scale).astype(np.float32)[:, None]
    if not (np.isfinite(mean) and np.isfinite(scale) and np.isfinite(scaled).all()):
        raise ValueError(
            f"y cannot be standardised in float32 (mean {mean:.3g}, standard deviation "
            f"{scale:.3g}); rescale the target (a log SFR is of order one)"
        )
    return mean, scale, scaled


def check_sample_weight(sample_weight, n_samples, *, rows=None):
    """Per-sample loss weights as float32, or None.

    Weights must be finite, within float32's range and non-negative, with a positive sum
    (over ``rows``, a boolean mask of the rows that are trained on, where given: the weights
    of the other rows are ignored). Only their ratios matter (the loss is a weighted mean),
    so they are scaled by a power of two, which is exact, to put the largest in [1, 2):
    weights whose float32 sum would overflow, or that float32 would round to zero, train
    like any others.
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must be {n_samples} finite values (one per sample), got shape "
            f"{w.shape}"
        )
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(
            f"sample_weight must be {n_samples} finite values, but {int(bad.sum())} are NaN "
            f"or infinite (e.g. rows {np.flatnonzero(bad)[:5].tolist()})"
        )
    too_big = np.abs(w) > FLOAT32_MAX
    if too_big.any():
        raise ValueError(
            f"sample_weight has {int(too_big.sum())} values beyond float32's range (largest "
            f"{np.abs(w).max():.3g} > {FLOAT32_MAX:.3g}, e.g. rows "
            f"{np.flatnonzero(too_big)[:5].tolist()}), which the network cannot represent; "
            "only the ratios of the weights matter, so divide them by their maximum"
        )
    where = ""
    if rows is not None:
        w, where = w[rows], " over the labelled rows"
    if (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"sample_weight must be non-negative with a positive sum{where}")
    exponent = np.frexp(w.max())[1] - 1
    return np.ldexp(w, -exponent).astype(np.float32)
