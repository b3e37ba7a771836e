"""Turn physical arrays into network inputs: robust scaling learnt in fit, NaN masking.

Users pass the cube's arrays as they come (spectral flux densities of order 1e-17 or 1, image
fluxes in any calibration, NaN for masked pixels). Networks need values of order one and no
NaN, so each modality is scaled with statistics learnt on the training data and its masked
pixels are set to zero with an extra channel telling the network which pixels were valid.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..utils._multimodal import check_array_ndim, get_key, is_multimodal

#: asinh softening in units of the robust noise/scale: linear below, logarithmic above.
_ASINH_SOFTENING = 3.0

_SHAPES = {"image": "(n_samples, n_bands, size, size)", "spectrum": "(n_samples, n_pixels)"}
_NDIM = {"image": 4, "spectrum": 2}


def _robust_scale(values, axis=None):
    """(median, 1.4826 * MAD) ignoring NaN; a zero spread falls back to the median |value|.

    The reference definition (float64, several full-size copies); :func:`_robust_stats`
    computes the same numbers from one sorted copy.
    """
    med = np.nanmedian(values, axis=axis)
    mad = 1.4826 * np.nanmedian(np.abs(values - np.expand_dims(med, -1)), axis=axis)
    fallback = np.nanmedian(np.abs(values), axis=axis)
    scale = np.where(mad > 0, mad, np.where(fallback > 0, fallback, 1.0))
    return med, scale


def _kth_of_two(a, n_a, b, n_b, k):
    """The ``k``-th smallest (from 0) of the values ``a(0..n_a-1)`` and ``b(0..n_b-1)``
    together, each sequence non-decreasing: O(log) calls of ``a`` and ``b``."""
    lo, hi = max(0, k + 1 - n_b), min(k + 1, n_a)
    while lo < hi:  # the fewest of a's values among the k + 1 smallest
        i = (lo + hi) // 2
        if a(i) < b(k - i):
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    return max(a(lo - 1) if lo > 0 else -np.inf, b(j - 1) if j > 0 else -np.inf)


def _deviation_median(v, centre):
    """``np.median(np.abs(v - centre))`` in float64 for a sorted 1-D ``v`` (no NaN), exactly.

    ``fl(x - centre)`` is monotone in ``x`` (rounding is), so the deviations of the values
    below ``centre`` (read downwards) and of the others (read upwards) are two non-decreasing
    sequences: their middle order statistics are found by bisection, without an array of
    deviations. ``np.median`` of those one or two values is then the full median, bit for
    bit (it averages the same middle values).
    """
    m = len(v)
    lo, hi = 0, m  # split: the number of values below centre
    while lo < hi:
        mid = (lo + hi) // 2
        if np.float64(v[mid]) < centre:
            lo = mid + 1
        else:
            hi = mid
    split = lo

    def below(i):
        return abs(np.float64(v[split - 1 - i]) - centre)

    def above(i):
        return abs(np.float64(v[split + i]) - centre)

    ks = (m // 2,) if m % 2 else (m // 2 - 1, m // 2)
    middle = [_kth_of_two(below, split, above, m - split, k) for k in ks]
    return np.median(np.array(middle, dtype=np.float64))


def _sorted_values(x):
    """A sorted 1-D copy of ``x`` (float32, or float64 for other dtypes) without its NaN."""
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    v = np.array(x, dtype=dtype, order="C").reshape(-1)  # the one copy
    v.sort()  # NaN last
    lo, hi = 0, len(v)  # the number of values that are not NaN
    while lo < hi:
        mid = (lo + hi) // 2
        if np.isnan(v[mid]):
            hi = mid
        else:
            lo = mid + 1
    return v[:lo]


def _robust_stats(x):
    """``(median, mad, fallback)`` of the values of ``x`` as :func:`_robust_scale` computes
    them in float64 (``mad`` with the 1.4826 factor; ``fallback``, the median |value|, is
    only computed when ``mad`` is not positive, else NaN), from one sorted copy in ``x``'s
    precision: the median's middle values are values of x, and the deviations' middle values
    are found without an array of them (:func:`_deviation_median`).
    """
    v = _sorted_values(x)
    m = len(v)
    if m == 0:
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=3)
        return np.float64(np.nan), np.float64(np.nan), np.float64(np.nan)
    middle = (v[m // 2],) if m % 2 else (v[m // 2 - 1], v[m // 2])
    med = np.median(np.array(middle, dtype=np.float64))
    mad = 1.4826 * _deviation_median(v, med)
    fallback = _deviation_median(v, np.float64(0.0)) if not mad > 0 else np.float64(np.nan)
    return med, mad, fallback


#: Values of a block of rows that the checks and ``InputScaler.transform`` work through at
#: once: their temporaries (float64 in the scaling: 16 MB) are a block's, not the array's.
_BLOCK_VALUES = 1 << 21


def _block_rows(x):
    """Rows of ``x`` per block of about :data:`_BLOCK_VALUES` values (at least one)."""
    return max(1, _BLOCK_VALUES // max(1, int(np.prod(x.shape[1:]))))


def modality_arrays(X, keys):
    """The network inputs by role (``"image"``, ``"spectrum"``) from a SliceDict.

    ``keys`` maps each role to the SliceDict key holding it (``{"image": "image"}``, or
    ``{"spectrum": "audio"}`` for another 1-D modality). A bare array is accepted when the
    network has a single input.
    """
    if is_multimodal(X):
        out = {}
        for role, key in keys.items():
            out[role] = check_array_ndim(
                get_key(X, key), _NDIM[role], f"X[{key!r}]", shape_hint=_SHAPES[role]
            )
        n = {len(v) for v in out.values()}
        if len(n) > 1:
            raise ValueError(f"modalities have different numbers of rows: {sorted(n)}")
        return out
    if len(keys) != 1:
        raise TypeError(
            f"X must be a SliceDict with keys {list(keys.values())}, got {type(X).__name__}"
        )
    role = next(iter(keys))
    return {role: check_array_ndim(X, _NDIM[role], "X", shape_hint=_SHAPES[role])}


def network_arrays(arrays, roles, scalar_keys=()):
    """The network's inputs from arrays keyed like X: ``{role: arrays[key]}`` for each input
    in ``roles``, plus ``"scalars"`` (n, k) stacked from the ``scalar_keys`` columns."""
    out = {role: arrays[key] for role, key in roles.items()}
    if scalar_keys:
        out["scalars"] = np.column_stack(
            [np.asarray(arrays[key], dtype=np.float64).reshape(-1) for key in scalar_keys]
        )
    return out


def check_no_empty_rows(arrays):
    """Refuse rows whose every pixel is NaN: there is nothing to learn or predict from."""
    for key, x in arrays.items():
        if key == "scalars":  # a missing scalar is imputed, not fatal
            continue
        # Block by block: the NaN test's booleans are those of a block of rows.
        empty = np.empty(len(x), dtype=bool)
        step = _block_rows(x)
        for start in range(0, len(x), step):
            block = x[start : start + step]
            empty[start : start + step] = np.isnan(block.reshape(len(block), -1)).all(axis=1)
        if empty.any():
            rows = np.flatnonzero(empty)[:5].tolist()
            raise ValueError(
                f"X[{key!r}] has {int(empty.sum())} rows that are entirely NaN (e.g. rows "
                f"{rows}); drop them before fitting or predicting"
            )


class InputScaler:
    """Per-modality scaling learnt in ``fit``; ``transform`` gives float32 network inputs.

    Images: per band ``asinh((x - sky_b) / (3 * noise_b))`` with the band's median and robust
    noise over all training pixels, plus one channel holding the fraction of valid bands per
    pixel. Spectra: ``asinh(x / (3 * scale))`` with one robust scale for all pixels (a global
    scale keeps the absolute flux level, which carries the luminosity), plus a validity channel.
    NaN pixels become 0 in the value channels. Per-object scalars (role ``"scalars"``, shape
    (n, k)) are standardised column by column; a NaN becomes 0, the training mean.
    """

    def fit(self, arrays):
        self.stats_ = {}
        for key, x in arrays.items():
            if key == "image":
                # Band by band, from one sorted float32 copy of the band at a time: the
                # statistics of _robust_scale(bands, axis=1), bit for bit.
                med, mad, fallback = map(
                    np.array, zip(*(_robust_stats(x[:, b]) for b in range(x.shape[1])))
                )
                scale = np.where(mad > 0, mad, np.where(fallback > 0, fallback, 1.0))
                self.stats_[key] = (med, scale)
            elif key == "scalars":
                x = x.astype(np.float64)
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
                    mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
                mean = np.where(np.isfinite(mean), mean, 0.0)
                std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
                self.stats_[key] = (mean, std)
            else:
                med, mad, fallback = _robust_stats(x)
                scale = np.where(mad > 0, mad, np.where(fallback > 0, fallback, 1.0))
                self.stats_[key] = (med, scale)
        return self

    def transform(self, arrays):
        out = {}
        for key, x in arrays.items():
            centre, scale = self.stats_[key]
            if key == "scalars":
                x = x.astype(np.float32)
                z = (x - centre) / scale
                out[key] = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
                continue
            if key == "image":
                if x.shape[1] != len(scale):
                    raise ValueError(
                        f"X['image'] has {x.shape[1]} bands, but the model was fitted on "
                        f"{len(scale)}"
                    )
                shape = (len(x), x.shape[1] + 1, *x.shape[2:])
            else:
                shape = (len(x), 2, x.shape[1])
            # Written block by block into the float32 result: the float64 temporaries are
            # those of a block of rows, not of the whole array.
            result = np.empty(shape, dtype=np.float32)
            step = _block_rows(x)
            for start in range(0, len(x), step):
                rows = slice(start, start + step)
                _scale_rows(key, x[rows], centre, scale, result[rows])
            out[key] = result
        return out


def _scale_rows(key, x, centre, scale, out):
    """Scale a block of rows of an image or spectrum array into ``out``, its float32 network
    input (values, then the validity channel): the arithmetic of the whole-array definition
    (float32 input, float64 scaling and asinh, one rounding to float32), in place."""
    x = np.asarray(x, dtype=np.float32)
    if key == "image":
        z = np.subtract(x, centre[None, :, None, None])
        np.divide(z, _ASINH_SOFTENING * scale[None, :, None, None], out=z)
        values, mask = out[:, :-1], out[:, -1:]
        mask[...] = np.isfinite(x).mean(axis=1, keepdims=True)  # fraction of valid bands
    else:
        z = np.divide(x, _ASINH_SOFTENING * scale)
        values, mask = out[:, 0], out[:, 1]
        np.isfinite(x, out=mask, casting="unsafe")  # 1 where valid, else 0
    bad = np.isfinite(z)
    np.logical_not(bad, out=bad)
    np.arcsinh(z, out=z)
    z[bad] = 0.0
    values[...] = z


class ScaledArrays(torch.utils.data.Dataset):
    """In-memory arrays as network inputs, scaled batch by batch as the data loader asks.

    What an in-memory fit hands to skorch instead of the scaled arrays: items are the rows
    of ``InputScaler.transform(arrays)`` (plus ``"sample_weight"``) with their ``y``, exactly
    those values, but a batch is scaled only when it is read, so no scaled copy of the data
    (1.2 to 2 times its bytes, with the validity channels) is ever held. skorch's validation
    split takes the items by index (a ``Subset``), without copying them either.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The network inputs by role (:func:`modality_arrays`, plus ``"scalars"``), unscaled.
    scaler : InputScaler
        Fitted.
    y : ndarray, default=None
        Targets of the rows, indexed like the arrays (None: a placeholder 0).
    sample_weight : ndarray of shape (n_samples,), default=None
        Per-row loss weights, handed to the network as ``"sample_weight"``.
    """

    def __init__(self, arrays, scaler, y=None, sample_weight=None):
        self.arrays = arrays
        self.scaler = scaler
        self.y = y
        self.sample_weight = sample_weight

    def __len__(self):
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, positions):
        # torch's DataLoader calls this with a batch's positions: one transform per batch.
        index = np.asarray(positions, dtype=np.intp)
        inputs = self.scaler.transform({k: v[index] for k, v in self.arrays.items()})
        if self.sample_weight is not None:
            inputs["sample_weight"] = self.sample_weight[index]
        return [
            (
                {k: v[j] for k, v in inputs.items()},
                np.float32(0.0) if self.y is None else self.y[p],
            )
            for j, p in enumerate(positions)
        ]
