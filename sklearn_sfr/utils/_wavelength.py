"""The wavelength grid of spectra given as bare arrays: the user's, or the HiSS-Cube's."""

from __future__ import annotations

import numpy as np

from ._survey import ZOOMS, grid_for_length, n_wavelength


def resolve_wavelength(wavelength, n_pixels, *, what="the spectra", required=False):
    """The wavelength of each of ``n_pixels`` pixels, checked.

    Parameters
    ----------
    wavelength : array-like of shape (n_pixels,) or None
        The user's grid (strictly increasing), or None for the HiSS-Cube level with
        ``n_pixels`` pixels.
    n_pixels : int
    what : str, default="the spectra"
        How error messages name the spectra (e.g. ``"X['spectrum']"``).
    required : bool, default=False
        Whether a physical grid is needed: if so a length that is no HiSS-Cube level is an
        error, else the pixel index stands in for the wavelength.

    Returns
    -------
    ndarray of shape (n_pixels,), float64

    Examples
    --------
    >>> from sklearn_sfr.utils._wavelength import resolve_wavelength
    >>> resolve_wavelength(None, 4620)[[0, -1]].round(1)
    array([3839.7, 8914.6])
    >>> resolve_wavelength(None, 7)
    array([0., 1., 2., 3., 4., 5., 6.])
    """
    if wavelength is None:
        grid = grid_for_length(n_pixels)
        if grid is not None:
            return grid
        if required:
            raise ValueError(
                f"{what} has {n_pixels} pixels, which is no HiSS-Cube level "
                f"({[n_wavelength(z) for z in ZOOMS]}); pass wavelength= explicitly"
            )
        return np.arange(n_pixels, dtype=np.float64)
    grid = np.asarray(wavelength, dtype=np.float64)
    if grid.shape != (n_pixels,):
        raise ValueError(f"wavelength has shape {grid.shape} but {what} has {n_pixels} pixels")
    if not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
        raise ValueError("wavelength must be finite and strictly increasing")
    return grid
