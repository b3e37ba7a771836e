"""Turn physical arrays into network inputs: robust scaling learnt in fit, NaN masking.

Users pass the cube's arrays as they come (spectral flux densities of order 1e-17 or 1, image
fluxes in any calibration, NaN for masked pixels). Networks need values of order one and no
NaN, so each modality is scaled with statistics learnt on the training data and its masked
pixels are set to zero with an extra channel telling the network which pixels were valid.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..utils._multimodal import check_array_ndim, get_key, is_multimodal

#: asinh softening in units of the robust noise/scale: linear below, logarithmic above.
_ASINH_SOFTENING = 3.0

_SHAPES = {"image": "(n_samples, n_bands, size, size)", "spectrum": "(n_samples, n_pixels)"}
_NDIM = {"image": 4, "spectrum": 2}


def _robust_scale(values, axis=None):
    """(median, 1.4826 * MAD) ignoring NaN; a zero spread falls back to the median |value|."""
    med = np.nanmedian(values, axis=axis)
    mad = 1.4826 * np.nanmedian(np.abs(values - np.expand_dims(med, -1)), axis=axis)
    fallback = np.nanmedian(np.abs(values), axis=axis)
    scale = np.where(mad > 0, mad, np.where(fallback > 0, fallback, 1.0))
    return med, scale


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
        empty = np.isnan(x.reshape(len(x), -1)).all(axis=1)
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
                bands = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype(np.float64)
                self.stats_[key] = _robust_scale(bands, axis=1)
            elif key == "scalars":
                x = x.astype(np.float64)
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
                    mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
                mean = np.where(np.isfinite(mean), mean, 0.0)
                std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
                self.stats_[key] = (mean, std)
            else:
                self.stats_[key] = _robust_scale(x.astype(np.float64).ravel())
        return self

    def transform(self, arrays):
        out = {}
        for key, x in arrays.items():
            centre, scale = self.stats_[key]
            x = x.astype(np.float32)
            valid = np.isfinite(x)
            if key == "scalars":
                z = (x - centre) / scale
                out[key] = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
                continue
            if key == "image":
                if x.shape[1] != len(scale):
                    raise ValueError(
                        f"X['image'] has {x.shape[1]} bands, but the model was fitted on "
                        f"{len(scale)}"
                    )
                z = (x - centre[None, :, None, None]) / (
                    _ASINH_SOFTENING * scale[None, :, None, None]
                )
                mask = valid.mean(axis=1, keepdims=True)
            else:
                z = x / (_ASINH_SOFTENING * scale)
                mask = valid[:, None, :]
                z = z[:, None, :]
            values = np.where(np.isfinite(z), np.arcsinh(z), 0.0)
            out[key] = np.concatenate([values, mask], axis=1).astype(np.float32)
        return out
