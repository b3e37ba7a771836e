"""Spectrum transformers: rebinning and normalisation, both tolerant of masked pixels."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils._multimodal import (
    check_array_ndim,
    get_key,
    is_multimodal,
    multimodal_tags,
    replace_keys,
)
from ..utils._sklearn import Interval, StrOptions, fit_context
from ..utils._wavelength import resolve_wavelength

_SPECTRUM_SHAPE = "(n_samples, n_pixels)"


class _SpectrumTransformer(TransformerMixin, BaseEstimator):
    """Base: spectra as a bare (n, L) array or under ``spectrum`` of a SliceDict."""

    def _spectra_of(self, X, *, reset=False):
        if is_multimodal(X):
            flux = check_array_ndim(
                get_key(X, "spectrum"), 2, "X['spectrum']", shape_hint=_SPECTRUM_SHAPE
            )
            if reset:
                self.n_features_in_ = flux.shape[1]
            return flux
        # A bare table is validated the scikit-learn way (n_features_in_, dtype, finiteness).
        return validate_data(
            self, X, reset=reset, dtype=(np.float64, np.float32), ensure_all_finite="allow-nan"
        )

    def _errors_of(self, X, flux):
        if not is_multimodal(X) or "spectrum_error" not in X:
            return None
        err = check_array_ndim(
            X["spectrum_error"], 2, "X['spectrum_error']", shape_hint=_SPECTRUM_SHAPE
        )
        if err.shape != flux.shape:
            raise ValueError(
                f"X['spectrum_error'] has shape {err.shape} but X['spectrum'] has {flux.shape}"
            )
        return err

    def _fit_grid(self, flux):
        self.wavelength_in_ = resolve_wavelength(self.wavelength, flux.shape[1])
        self.n_pixels_in_ = flux.shape[1]

    def _check_pixels(self, flux, name):
        if flux.shape[1] != self.n_pixels_in_:
            raise ValueError(
                f"{name} has {flux.shape[1]} pixels, but {type(self).__name__} was fitted on "
                f"{self.n_pixels_in_}"
            )

    def __sklearn_tags__(self):
        # Bare spectra are 2-D arrays.
        return multimodal_tags(super().__sklearn_tags__(), two_d_array=True)


class SpectrumRebin(_SpectrumTransformer):
    """Rebin spectra by an integer factor (flux-density mean), masked pixels ignored.

    Each output pixel is the mean flux density of ``factor`` adjacent input pixels (the
    trailing remainder is dropped). NaN pixels are ignored; a bin whose pixels are all masked
    comes out NaN (flagged), in flux and error. When a SliceDict holds ``spectrum_error`` the
    mean is inverse-variance weighted and the errors are propagated,
    ``sigma = 1 / sqrt(sum(1 / sigma_i**2))``. The output wavelength of a bin is the mean of its
    input wavelengths.

    Parameters
    ----------
    factor : int, default=2
        Input pixels per output pixel. The default halves the resolution, one level of the
        HiSS-Cube's zoom pyramid (4620 -> 2310 pixels), as the cube's own ``spectrum_zoom``
        does.
    wavelength : array-like of shape (n_pixels,), default=None
        Wavelength grid of the input; None takes the HiSS-Cube grid of matching length (and
        the pixel index for any other length).

    Attributes
    ----------
    wavelength_ : ndarray of shape (n_pixels // factor,)
        Bin-centre wavelengths in Angstrom.
    wavelength_in_ : ndarray of shape (n_pixels,)
    n_pixels_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import SpectrumRebin
    >>> flux = np.ones((3, 4620)) * 1e-17
    >>> rebin = SpectrumRebin(4).fit(flux)
    >>> rebin.transform(flux).shape, rebin.get_feature_names_out()[0]
    ((3, 1155), 'flux_3841.37')
    """

    _parameter_constraints: dict = {
        "factor": [Interval(Integral, 1, None, closed="left")],
        "wavelength": ["array-like", None],
    }

    def __init__(self, factor=2, wavelength=None):
        self.factor = factor
        self.wavelength = wavelength

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the wavelength grid and compute the bin centres.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_pixels) or SliceDict
            Spectra, or a SliceDict holding them under ``spectrum``.
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumRebin
            The fitted transformer.
        """
        flux = self._spectra_of(X, reset=True)
        self._fit_grid(flux)
        n_out = flux.shape[1] // self.factor
        if n_out < 1:
            raise ValueError(
                f"factor={self.factor} is larger than the spectra "
                f"(n_features = {flux.shape[1]} pixels)"
            )
        self.wavelength_ = self.wavelength_in_[: n_out * self.factor].reshape(n_out, -1).mean(1)
        return self

    def _bins(self, x):
        n_out = self.wavelength_.size
        return x[:, : n_out * self.factor].reshape(x.shape[0], n_out, self.factor)

    def _rebin(self, flux, errors=None):
        dtype = flux.dtype
        f = self._bins(flux.astype(np.float64))
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins are expected
            if errors is None:
                return np.nanmean(f, axis=2).astype(dtype), None
            s = self._bins(errors.astype(np.float64))
            w = np.where(np.isfinite(f) & np.isfinite(s) & (s > 0), 1.0 / s**2, 0.0)
            wsum = w.sum(axis=2)
            mean = np.where(
                wsum > 0, np.nansum(np.where(w > 0, f, 0.0) * w, axis=2) / wsum, np.nan
            )
            sigma = np.where(wsum > 0, 1.0 / np.sqrt(wsum), np.nan)
        return mean.astype(dtype), sigma.astype(dtype)

    def transform(self, X):
        """Rebin the spectra (and their errors under ``spectrum_error``).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_pixels) or SliceDict
            Spectra of the length seen in ``fit``, or a SliceDict holding them under
            ``spectrum`` (and their errors under ``spectrum_error``).

        Returns
        -------
        X_rebinned : ndarray of shape (n_samples, n_pixels // factor) or SliceDict
            The rebinned spectra, in the input's dtype; a SliceDict input comes back as a
            SliceDict whose other keys are unchanged.
        """
        check_is_fitted(self)
        flux = self._spectra_of(X)
        self._check_pixels(flux, "X['spectrum']" if is_multimodal(X) else "X")
        errors = self._errors_of(X, flux)
        mean, sigma = self._rebin(flux, errors)
        if not is_multimodal(X):
            return mean
        updates = {"spectrum": mean}
        if sigma is not None:
            updates["spectrum_error"] = sigma
        return replace_keys(X, **updates)

    def get_feature_names_out(self, input_features=None):
        """Get the names ``flux_{wavelength:.2f}`` of the bins (centres in Angstrom).

        Parameters
        ----------
        input_features : None
            Ignored (the names come from the wavelength grid).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output pixel.
        """
        check_is_fitted(self)
        return np.asarray([f"flux_{w:.2f}" for w in self.wavelength_], dtype=object)


class SpectrumNormalizer(_SpectrumTransformer):
    """Divide each spectrum by its own flux level, so shapes compare across distances.

    ``method="median"`` divides by the median flux density in ``window`` (observed-frame
    Angstrom; the whole spectrum when None or when the window is entirely masked);
    ``method="continuum"`` divides pixel by pixel by a running median of ``continuum_width``
    pixels, which keeps lines and breaks and removes the continuum slope. NaN pixels are
    ignored throughout and stay NaN. A spectrum whose level is not positive (all masked, or
    negative noise) is left unscaled, with a warning.
    Errors under ``spectrum_error`` are divided by the same factor.

    Parameters
    ----------
    method : {"median", "continuum"}, default="median"
    window : tuple of float or None, default=None
        Wavelength range of the median.
    continuum_width : int, default=101
        Pixels of the running median (odd) for ``method="continuum"``.
    wavelength : array-like, default=None
        Input wavelength grid; None takes the HiSS-Cube grid of matching length (and the
        pixel index for any other length).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import SpectrumNormalizer
    >>> flux = np.vstack([np.full(577, 2e-17), np.full(577, 5e-17)])
    >>> SpectrumNormalizer().fit_transform(flux)[:, :3]
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"median", "continuum"})],
        "window": [tuple, list, None],
        "continuum_width": [Interval(Integral, 3, None, closed="left")],
        "wavelength": ["array-like", None],
    }

    def __init__(self, method="median", window=None, continuum_width=101, wavelength=None):
        self.method = method
        self.window = window
        self.continuum_width = continuum_width
        self.wavelength = wavelength

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the wavelength grid (and the pixels of ``window``).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_pixels) or SliceDict
            Spectra, or a SliceDict holding them under ``spectrum``.
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumNormalizer
            The fitted transformer.
        """
        flux = self._spectra_of(X, reset=True)
        self._fit_grid(flux)
        if self.window is not None:
            lo, hi = self.window
            self.window_mask_ = (self.wavelength_in_ >= lo) & (self.wavelength_in_ <= hi)
            if not self.window_mask_.any():
                raise ValueError(
                    f"window {self.window} holds no pixel of the {self.wavelength_in_[0]:.0f}-"
                    f"{self.wavelength_in_[-1]:.0f} A grid"
                )
        return self

    def _levels(self, flux):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are handled below
            if self.method == "continuum":
                from scipy.ndimage import median_filter

                filled = _fill_nan_rows(flux)
                return median_filter(filled, size=(1, self.continuum_width), mode="nearest")
            whole = np.nanmedian(flux, axis=1)
            if self.window is None:
                return whole[:, None]
            inside = np.nanmedian(flux[:, self.window_mask_], axis=1)
            return np.where(np.isfinite(inside), inside, whole)[:, None]

    def transform(self, X):
        """Normalise the spectra (and their errors).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_pixels) or SliceDict
            Spectra of the length seen in ``fit``, or a SliceDict holding them under
            ``spectrum`` (and their errors under ``spectrum_error``).

        Returns
        -------
        X_normalised : ndarray of shape (n_samples, n_pixels) or SliceDict
            The spectra divided by their flux level, in the input's dtype; a SliceDict input
            comes back as a SliceDict whose other keys are unchanged.
        """
        check_is_fitted(self)
        flux = self._spectra_of(X)
        dtype = flux.dtype
        flux = flux.astype(np.float64)
        self._check_pixels(flux, "X['spectrum']" if is_multimodal(X) else "X")
        level = self._levels(flux)
        bad = ~(np.isfinite(level) & (level > 0))
        n_unscaled = int(bad.all(axis=1).sum())
        if n_unscaled:
            warnings.warn(
                f"{n_unscaled} spectra have no positive flux level (all masked or noise) and "
                "are left unscaled",
                stacklevel=2,
            )
        level = np.where(bad, 1.0, level)
        out = (flux / level).astype(dtype)
        if not is_multimodal(X):
            return out
        updates = {"spectrum": out}
        errors = self._errors_of(X, flux)
        if errors is not None:
            updates["spectrum_error"] = (errors / level).astype(dtype)
        return replace_keys(X, **updates)


def _fill_nan_rows(flux):
    """Linear interpolation over NaN pixels of each row (all-NaN rows stay NaN)."""
    out = flux.copy()
    x = np.arange(flux.shape[1])
    for i in np.flatnonzero(np.isnan(flux).any(axis=1)):
        ok = np.isfinite(flux[i])
        if ok.any():
            out[i] = np.interp(x, x[ok], flux[i, ok])
    return out
