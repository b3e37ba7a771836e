"""What every layer knows about the survey: SDSS bands, the HiSS-Cube grids, spectral lines.

This is the one home of these values. It sits at the bottom of the package (it imports nothing
from :mod:`sklearn_sfr`), so that ``datasets`` (the reader, the writer and the synthetic
generator), ``features``, ``plotting`` and ``utils`` itself take them from here and never from
each other; :mod:`sklearn_sfr.datasets._layout` re-exports the band and grid names for the
file-format code.

Wavelength convention: every wavelength here is in Angstrom, **in vacuum**, as SDSS spectra are
(``VACUUM=T``) and as the SDSS pipeline lists its lines (SPZLINE ``LINEWAVE``). A band or line
defined in air (the Lick indices, most atlases) is converted with :func:`air_to_vacuum` first.
"""

from __future__ import annotations

import numpy as np

# =============================================================================================
# SDSS imaging
# =============================================================================================

#: The five SDSS bands, in the order every image of this package has them (axis 1); the
#: HiSS-Cube reference stores them in varying order (layout section 5.3).
BAND_NAMES = ("u", "g", "r", "i", "z")

#: Effective wavelengths of the SDSS bands [Angstrom] (Fukugita et al. 1996), the band
#: midpoints the HiSS-Cube reference stores as its image ``db_index.wl`` (layout section 4.4).
BAND_MIDPOINTS = {"u": 3551.0, "g": 4686.0, "r": 6166.0, "i": 7480.0, "z": 8932.0}

#: SDSS pixel scale [arcsec/pixel] (the HiSS-Cube reference rounds it to 0.4, section 7).
PIXEL_SCALE = 0.396

# =============================================================================================
# HiSS-Cube levels (layout section 2; reference config REBIN_MIN/MAX/SAMPLES)
# =============================================================================================

#: Zoom levels; the reference always writes exactly four.
ZOOMS = (0, 1, 2, 3)

#: Cutout side per image zoom, pixels.
CUTOUT_SIZES = (64, 32, 16, 8)

#: Wavelength grid of spectral level 0, observed-frame vacuum Angstrom.
WAVELENGTH_MIN = 3839.7244
WAVELENGTH_MAX = 8914.597
N_WAVELENGTH = 4620


def n_wavelength(level):
    """Number of spectral pixels at ``level`` (4620, 2310, 1155, 577).

    Examples
    --------
    >>> from sklearn_sfr.utils._survey import n_wavelength
    >>> [n_wavelength(z) for z in range(4)]
    [4620, 2310, 1155, 577]
    """
    n = N_WAVELENGTH
    for _ in range(level):
        n = int(n / 2)
    return n


def wavelength_grid(level=0):
    """The wavelength grid of a spectral level, recomputed as the reference defines it.

    The stored ``wl`` datasets are quantised by ``float_compress`` (section 7), so the grid is
    never read from the file.

    Parameters
    ----------
    level : int
        Spectral level, 0 (4620 pixels) to 3 (577 pixels).

    Returns
    -------
    ndarray of float64
        Observed-frame vacuum wavelengths in Angstrom.

    Examples
    --------
    >>> from sklearn_sfr.datasets import wavelength_grid
    >>> [len(wavelength_grid(z)) for z in range(4)]
    [4620, 2310, 1155, 577]
    """
    grid = np.linspace(WAVELENGTH_MIN, WAVELENGTH_MAX, N_WAVELENGTH)
    for _ in range(level):
        grid = np.linspace(grid[0], grid[-1], int(grid.size / 2))
    return grid


def grid_for_length(n_pixels):
    """The HiSS-Cube wavelength grid with ``n_pixels`` pixels, or None if no level has that many.

    Spectra loaded from a cube carry no grid of their own; their length says which level they
    are.

    Examples
    --------
    >>> from sklearn_sfr.utils._survey import grid_for_length
    >>> grid_for_length(1155).size, grid_for_length(100) is None
    (1155, True)
    """
    for level in ZOOMS:
        if n_wavelength(level) == n_pixels:
            return wavelength_grid(level)
    return None


# =============================================================================================
# Spectral lines
# =============================================================================================

#: Rest wavelengths of the spectral lines any part of the package uses, name -> vacuum
#: Angstrom. Users pick their lines by name (:func:`line_wavelengths`) and never retype a value.
#:
#: * Narrow optical emission lines: the SDSS pipeline's own values (SPZLINE ``LINEWAVE``,
#:   ``shared/docs/data-formats.md`` 5.1; astroML's ``LINES`` are the same rounded to 0.01 A).
#:   SDSS labels 3890.151 "H_epsilon"; that is H8 (+He I), named so here, and ``Hepsilon`` is
#:   the true H-epsilon 3971.195 (NIST air 3970.072 in vacuum), blended with [Ne III] 3968.
#: * Higher Balmer lines and the Ca II lines seen in absorption: NIST air wavelengths converted
#:   with :func:`air_to_vacuum` (H9 3835.384, H10 3797.898, H11 3770.630, Ca II K 3933.663,
#:   H 3968.469, triplet 8498.02, 8542.09, 8662.14).
#: * Broad quasar lines: the centres of the Vanden Berk et al. (2001, AJ 122, 549) composite
#:   (blends; their width, thousands of km/s, makes sub-Angstrom precision moot).
SPECTRAL_LINES = {
    # broad quasar emission (rest-frame UV)
    "Lyalpha": 1215.67, "NV_1240": 1240.14, "SiIV_1400": 1399.8, "CIV_1549": 1549.06,
    "CIII_1909": 1908.73, "MgII_2799": 2799.12,
    # Balmer series beyond H8, in absorption
    "H11": 3771.701, "H10": 3798.976, "H9": 3836.472,
    # narrow optical emission (SDSS SPZLINE) and the Balmer series
    "OII_3727": 3727.092, "OII_3730": 3729.875, "NeIII_3870": 3869.857, "H8": 3890.151,
    "Hepsilon": 3971.195, "Hdelta": 4102.892, "Hgamma": 4341.684, "OIII_4364": 4364.435,
    "Hbeta": 4862.683, "OIII_4960": 4960.295, "OIII_5008": 5008.240, "OI_6302": 6302.046,
    "NII_6550": 6549.859, "Halpha": 6564.614, "NII_6585": 6585.268, "SII_6718": 6718.294,
    "SII_6733": 6732.678,
    # stellar absorption
    "CaII_K": 3934.777, "CaII_H": 3969.592, "CaII_8500": 8500.355, "CaII_8544": 8544.437,
    "CaII_8665": 8664.519,
}  # fmt: skip


def line_wavelengths(*names):
    """Vacuum rest wavelengths [Angstrom] of the named lines of :data:`SPECTRAL_LINES`.

    Parameters
    ----------
    *names : str
        Keys of :data:`SPECTRAL_LINES` (a doublet is named by both its lines).

    Returns
    -------
    tuple of float
        One wavelength per name, in the order given.

    Raises
    ------
    KeyError
        If a name is not in the table.

    Examples
    --------
    >>> from sklearn_sfr.utils._survey import line_wavelengths
    >>> line_wavelengths("OII_3727", "OII_3730")
    (3727.092, 3729.875)
    """
    unknown = [name for name in names if name not in SPECTRAL_LINES]
    if unknown:
        raise KeyError(f"no spectral line {unknown}; known: {sorted(SPECTRAL_LINES)}")
    return tuple(SPECTRAL_LINES[name] for name in names)


def air_to_vacuum(lam_air):
    """Vacuum wavelength of an air wavelength [Angstrom] (Ciddor 1996 refractive index, as VALD).

    Parameters
    ----------
    lam_air : float or array-like
        Air wavelengths in Angstrom.

    Returns
    -------
    ndarray of float64
        Vacuum wavelengths in Angstrom, about 1.8 A longer at 6563 A.

    Examples
    --------
    >>> from sklearn_sfr.utils._survey import air_to_vacuum
    >>> round(float(air_to_vacuum(3970.072)), 3)
    3971.195
    """
    s2 = (1e4 / np.asarray(lam_air, dtype=np.float64)) ** 2
    n = (
        1.0
        + 8.336624212083e-5
        + 2.408926869968e-2 / (130.1065924522 - s2)
        + 1.599740894897e-4 / (38.92568793293 - s2)
    )
    return lam_air * n
