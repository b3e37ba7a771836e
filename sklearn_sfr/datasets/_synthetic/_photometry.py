"""Broad-band fluxes through the real SDSS filter curves.

The filters themselves, line fluxes in maggies, the k-correction tables that the target
selection uses, and the band fluxes of the bulge, disk and AGN components of each object.
"""

from functools import lru_cache

import numpy as np

from ._constants import GALAXY_Z_RANGE, L_SUN_5500, QSO_Z_RANGE
from ._cosmology import _lum_distance_cm
from ._spectra import _component_spectra
from ._templates import _Sampler, _templates, _wide_lam


@lru_cache(maxsize=1)
def _filters():
    """The real SDSS filter curves (speclite ``sdss2010-*``, Doi et al. 2010, airmass 1.3)."""
    import speclite.filters

    return speclite.filters.load_filters("sdss2010-*")


@lru_cache(maxsize=1)
def _band_lambda_eff():
    return np.array([f.effective_wavelength.value for f in _filters()])


@lru_cache(maxsize=1)
def _line_weight_table():
    """Maggies per unit line flux [erg/s/cm^2] at each wavelength of a fine grid, per band.

    A line of flux F at lambda adds F * lambda R(lambda) / Z to the maggies (photon-weighted
    convolution); Z is calibrated against speclite on a flat spectrum so the two agree.
    """
    from scipy.integrate import trapezoid

    lam = np.arange(2800.0, 11300.0, 0.5)
    out = np.zeros((len(lam), 5))
    flat_lam = np.arange(2900.0, 11200.0, 1.0)
    for b, f in enumerate(_filters()):
        w = f.wavelength
        r = f.response
        z = trapezoid(r * w, w) / f.get_ab_maggies(np.ones_like(flat_lam), flat_lam)
        out[:, b] = np.interp(lam, w, r, left=0.0, right=0.0) * lam / z
    return lam, out


def _line_maggies(lam_obs, flux):
    """Maggies of emission lines ``flux`` (n, m) at observed wavelengths ``lam_obs`` (n, m)."""
    grid, table = _line_weight_table()
    out = np.zeros((*lam_obs.shape[:-1], 5))
    for b in range(5):
        out[..., b] = np.sum(flux * np.interp(lam_obs, grid, table[:, b]), axis=-1)
    return out


@lru_cache(maxsize=1)
def _kcorrection_tables():
    """Band maggies of each template per unit luminosity, versus redshift, for the selection.

    Galaxies: r-band maggies of 1 L_sun at 5500 A of the old/intermediate/young templates;
    quasars: i-band maggies of L_lambda(5100) = 1 erg/s/A of the AGN template.
    """
    tpl = _templates()
    lam_w = _wide_lam()
    filt = _filters()
    zg = np.linspace(GALAXY_Z_RANGE[0] - 0.005, GALAXY_Z_RANGE[1] + 0.005, 60)
    s = _Sampler(lam_w, zg)
    norm = L_SUN_5500 / (4 * np.pi * _lum_distance_cm(zg) ** 2 * (1 + zg))
    gal = {
        name: filt[2].get_ab_maggies(table * norm[:, None], lam_w)
        for name, table in (
            ("old", s(tpl["old"][2])),
            ("intermediate", s(tpl["intermediate"])),
            ("young", s(tpl["young"])),
        )
    }
    zq = np.linspace(QSO_Z_RANGE[0] - 0.01, QSO_Z_RANGE[1] + 0.01, 120)
    sq = _Sampler(lam_w, zq)
    normq = 1.0 / (4 * np.pi * _lum_distance_cm(zq) ** 2 * (1 + zq))
    qso = filt[3].get_ab_maggies(sq(tpl["agn"]) * normq[:, None], lam_w)
    return zg, gal, zq, qso


def _component_maggies(pop, lam_lines, f_lines):
    """Band fluxes [maggies] (n, 3, 5) of the bulge, disk and AGN components of each object.

    Photometry of each component: continuum through speclite on a wide grid, narrow lines
    analytically through the same filter curves.
    """
    n = len(pop["z"])
    lam_w = _wide_lam()
    filt = _filters()
    wide = _component_spectra(pop, lam_w)
    comp_maggies = np.empty((n, 3, 5))
    for b, f in enumerate(filt):
        comp_maggies[:, :, b] = f.get_ab_maggies(wide, lam_w)
    del wide
    for c in range(3):
        comp_maggies[:, c] += _line_maggies(lam_lines, f_lines[:, c])
    return comp_maggies
