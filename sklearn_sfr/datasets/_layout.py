"""Constants and value rules of the HiSS-Cube file layout.

Everything here follows the reference implementation (github.com/nadvornikjiri/HiSS-Cube,
commit c8b796a) as described in ``shared/docs/hisscube-layout.md``; the section numbers in the
comments refer to that page. The reader and the writer both use this module so that the two can
never disagree about a path, a dtype or a derivation rule.
"""

from __future__ import annotations

import warnings

import numpy as np

# The survey knowledge this layout builds on (bands, zoom levels, the wavelength grid) lives in
# the bottom layer; it is re-exported here for the reader, the writer and existing imports.
from ..utils._survey import (  # noqa: F401
    BAND_MIDPOINTS,
    BAND_NAMES,
    CUTOUT_SIZES,
    N_WAVELENGTH,
    PIXEL_SCALE,
    WAVELENGTH_MAX,
    WAVELENGTH_MIN,
    ZOOMS,
    grid_for_length,
    n_wavelength,
    wavelength_grid,
)

#: Slots per reference array (image cutouts, spectra of one target).
REF_SLOTS = 200

#: Image value per nanomaggy in the reference's units, including its factor-4 fibre-area slip
#: (section 7): nMgy * 3.631e-6 * 2.99792458e-5 / lambda_b**2 * (pi * D**2 / p**2), D=2", p=0.4".
_FIBRE_FACTOR = np.pi * 2.0**2 / 0.4**2
IMAGE_UNIT_PER_NMGY = {
    b: 3.631e-6 * 2.99792458e-5 / BAND_MIDPOINTS[b] ** 2 * _FIBRE_FACTOR for b in BAND_NAMES
}

#: The packed region-reference compound of section 4.3 (not an HDF5 region reference).
REF_DTYPE = np.dtype(
    [
        ("ds_path", "S64"),
        ("ds_slice_idx", "<i8"),
        ("x_min", "<i4"),
        ("x_max", "<i4"),
        ("y_min", "<i4"),
        ("y_max", "<i4"),
    ]
)

IMAGE_DB_INDEX_DTYPE = np.dtype(
    [("spatial", "<i8"), ("time", "<f4"), ("wl", "<i4"), ("ds_slice_idx", "<i8")]
)
SPECTRUM_DB_INDEX_DTYPE = np.dtype([("spatial", "<i8"), ("time", "<f4"), ("ds_slice_idx", "<i8")])
IMAGE_METADATA_DTYPE = np.dtype([("path", "S256"), ("header", "S4096")])
SPECTRUM_METADATA_DTYPE = np.dtype([("path", "S256"), ("header", "S8192")])
WCS_DTYPE = np.dtype(
    [("NAXIS1", "<i2"), ("NAXIS2", "<i2")]
    + [(k, "<f4") for k in ("CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")]
    + [("CRVAL1", "<f4"), ("CRVAL2", "<f4"), ("CTYPE1", "S8"), ("CTYPE2", "S8")]
)

#: Keys of the two pandas "fixed" label tables (section 8).
SFR_TABLE_KEY = "star_formation_rates"
MERGED_LABEL_KEY = "fits_spectra_metadata_star_formation_rates"

#: Header key of the spectroscopic pipeline's redshift (spec file HDU2 ``Z``) in our spectrum
#: headers. Not ``Z``: that name is an MPA-JHU gal_info column, which marks a catalogue match.
SPECTRUM_REDSHIFT_KEY = "SPEC_Z"

#: Our own per-target table (pandas "fixed" frame, ignored by the reference).
TARGET_TABLE_KEY = "sklearn_sfr_targets"

#: MPA-JHU SFR columns (gal_totsfr / gal_fibsfr, file order).
SFR_COLUMNS = ("AVG", "ENTROPY", "FLAG", "MEDIAN", "MODE", "P16", "P2P5", "P84", "P97P5")

#: gal_info columns the reference keeps (section 8).
GAL_INFO_COLUMNS = (
    "PLATEID", "MJD", "FIBERID", "RA", "DEC", "PRIMTARGET", "SECTARGET", "TARGETTYPE",
    "SPECTROTYPE", "SUBCLASS", "Z", "Z_ERR", "Z_WARNING", "V_DISP", "V_DISP_ERR", "SN_MEDIAN",
    "E_BV_SFD", "ZTWEAK", "ZTWEAK_ERR", "RELEASE",
)  # fmt: skip


def float_compress(data, ndig=10):
    """Zero all but ``ndig`` mantissa bits, as the reference does to semi-sparse arrays.

    ``+inf`` becomes NaN first (section 7); zero and NaN are kept.
    """
    data = np.array(data, dtype=np.float32, copy=True)
    data[np.isposinf(data)] = np.nan
    out = data.astype(np.float64)
    ok = np.isfinite(out) & (out != 0)
    x = out[ok]
    exponent = np.ceil(np.log2(np.abs(x)))
    out[ok] = np.round(x / 2.0 ** (exponent - ndig)) / 2.0**ndig * 2.0**exponent
    return out.astype(np.float32)


def _interp_rows(x_new, x, rows):
    """``np.interp`` of every row of ``rows`` (NaN propagates as in ``np.interp``)."""
    # Both grids are uniform and increasing, so the bracketing indices are shared by all rows.
    j = np.clip(np.searchsorted(x, x_new, side="right") - 1, 0, x.size - 2)
    t = (x_new - x[j]) / (x[j + 1] - x[j])
    out = rows[:, j] * (1 - t) + rows[:, j + 1] * t
    # np.interp returns the left value exactly at a node (t == 0), even next to a NaN.
    exact = t == 0
    out[:, exact] = rows[:, j[exact]]
    last = t == 1
    out[:, last] = rows[:, j[last] + 1]
    return out


def derive_spectrum_level(flux, sigma, grid):
    """One lower spectral level from the previous one, by the reference's rule (section 7).

    ``flux_z = interp(grid_z, grid_{z-1}, convolve(flux_{z-1}, Gaussian1DKernel(2)))`` and
    ``sigma_z = interp(grid_z, grid_{z-1}, sigma_{z-1}) / 2``, applied to every row.

    Parameters
    ----------
    flux, sigma : ndarray of shape (n, L)
        Previous level (uncompressed).
    grid : ndarray of shape (L,)
        Previous level's wavelength grid.

    Returns
    -------
    flux, sigma : ndarray of shape (n, int(L / 2)), float64
    grid : ndarray of shape (int(L / 2),)
    """
    # astropy is imported here, not at module level, to keep `import sklearn_sfr` light.
    from astropy.convolution import Gaussian1DKernel, convolve

    kernel = Gaussian1DKernel(stddev=2).array[None, :]
    new_grid = np.linspace(grid[0], grid[-1], int(grid.size / 2))
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    # A (1, 17) kernel over the 2-D batch is exactly the row-wise 1-D convolution (same NaN
    # interpolation and zero-filled boundary), without a Python loop over rows.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns about long NaN runs; they stay NaN below
        smoothed = convolve(flux, kernel)
    smoothed[np.isnan(flux).all(axis=1)] = np.nan
    out_flux = _interp_rows(new_grid, grid, smoothed)
    out_sigma = _interp_rows(new_grid, grid, sigma) / 2
    return out_flux, out_sigma, new_grid


def _keys_cubic(d, a=-0.75):
    # Keys' cubic convolution kernel; a = -0.75 is OpenCV's INTER_CUBIC constant.
    d = np.abs(d)
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _cubic_resize_matrix(n, m):
    """(m, n) matrix of OpenCV's INTER_CUBIC resize of n pixels to m (edges replicated)."""
    scale = n / m
    # OpenCV maps output pixel j to source coordinate (j + 0.5) * scale - 0.5.
    src = (np.arange(m) + 0.5) * scale - 0.5
    left = np.floor(src).astype(int)
    frac = src - left
    offsets = np.arange(-1, 3)
    taps = np.clip(left[:, None] + offsets[None, :], 0, n - 1)
    weights = _keys_cubic(frac[:, None] - offsets[None, :])
    matrix = np.zeros((m, n))
    np.add.at(matrix, (np.repeat(np.arange(m), 4), taps.ravel()), weights.ravel())
    return matrix


def derive_image_level(flux, sigma):
    """One lower image zoom by the reference's rule (section 7).

    ``cv2.resize(x, (W // 2, H // 2), interpolation=cv2.INTER_CUBIC)`` on flux and sigma, then
    ``sigma / 4``. Implemented in NumPy over the last two axes of a batch; the test suite checks
    it against OpenCV itself.

    Parameters
    ----------
    flux, sigma : ndarray of shape (..., H, W)

    Returns
    -------
    flux, sigma : ndarray of shape (..., H // 2, W // 2), float64
    """
    flux = np.asarray(flux, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    rows = _cubic_resize_matrix(flux.shape[-2], flux.shape[-2] // 2)
    cols = _cubic_resize_matrix(flux.shape[-1], flux.shape[-1] // 2)

    def resize(x):
        # Separable: rows @ x @ cols.T over the last two axes (a BLAS matmul per image).
        return rows @ x @ cols.T

    return resize(flux), resize(sigma) / 4


def inverse_variance_stack(flux, sigma):
    """Stack several observations per pixel as the reference does (section 5.2).

    ``mean = nansum(f / s**2) / nansum(1 / s**2)``, ``sigma = sqrt(1 / nansum(1 / s**2))`` in
    float64; inputs with ``s == 0`` are skipped, inputs with ``s = NaN`` add nothing, and where
    every input has ``s = NaN`` the result is flux NaN and error 0.

    Parameters
    ----------
    flux, sigma : ndarray of shape (k, ...)
        ``k`` observations of the same pixels.

    Returns
    -------
    mean, sigma : ndarray of shape (...)
    """
    f = np.asarray(flux, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    usable = s != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(usable, 1.0 / s**2, np.nan)
        wsum = np.nansum(w, axis=0)
        mean = np.nansum(np.where(usable, f * w, np.nan), axis=0) / wsum
        err = np.sqrt(1.0 / wsum)
    all_nan = np.all(~np.isfinite(w), axis=0)
    mean = np.where(all_nan, np.nan, mean)
    err = np.where(all_nan, 0.0, err)
    return mean, err
