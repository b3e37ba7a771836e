"""Observed-frame spectra of the bulge, disk and AGN components.

Stellar continua with dust, distance, redshift and the Galactic foreground, the quasar
continuum with its broad lines, and the Lyman-alpha forest.
"""

import numpy as np

from ._constants import (
    C_KMS,
    L_SUN_5500,
    MADAU_TAU,
    QSO_BALDWIN,
    QSO_BROAD_LINES,
    R_V_CALZETTI,
    SPEC_RESOLUTION,
)
from ._cosmology import _lum_distance_cm
from ._dust import _ccm_k
from ._templates import _SIGMA_V_GRID, _Sampler, _templates


def _component_spectra(pop, lam):
    """Observed-frame f_lambda [erg/s/cm^2/A] of the bulge, disk and AGN components on ``lam``.

    Returns float32 (n, 3, L): the stellar continua with dust, distance, redshift, Galactic
    foreground and (for quasars) the forest, plus the quasars' broad lines. Narrow lines are
    added separately (on the cube grid as pixel-integrated profiles, analytically for
    photometry).
    """
    tpl = _templates()
    z = pop["z"]
    n = len(z)
    smp = _Sampler(lam, z)
    d_l = _lum_distance_cm(z)
    f32 = np.float32
    kz = (L_SUN_5500 / (4 * np.pi * d_l**2 * (1 + z)))[:, None]
    k_calz = smp(tpl["calzetti"])
    c_att = f32(-0.4 * np.log(10.0) / R_V_CALZETTI)
    att_s = np.exp(c_att * pop["av_stars"].astype(f32)[:, None] * k_calz)
    mw_k = _ccm_k(lam).astype(f32)[None, :]
    mw = np.exp(f32(-0.4 * np.log(10.0)) * pop["ebv_sfd"].astype(f32)[:, None] * mw_k)
    common = mw * _igm_transmission(lam, z, pop["is_q"]).astype(f32)
    # Old population at the velocity dispersion of the object (nearest template).
    row = np.argmin(np.abs(pop["sigma_v"][:, None] - _SIGMA_V_GRID[None, :]), axis=1)
    out = np.empty((n, 3, len(lam)), dtype=f32)
    out[:, 0] = smp.rows(tpl["old"], row) * att_s
    out[:, 0] *= (pop["L_bulge"][:, None] * kz).astype(f32) * common
    disk = smp(tpl["old"][0]) * (pop["L_disk_old"][:, None] * kz).astype(f32)
    disk += smp(tpl["intermediate"]) * (pop["L_inter"][:, None] * kz).astype(f32)
    disk += smp(tpl["young"]) * (pop["L_young"][:, None] * kz).astype(f32)
    out[:, 1] = disk * att_s * common
    out[:, 2] = 0.0
    q = np.flatnonzero(pop["is_q"])
    if q.size:
        l5100 = 10.0 ** pop["log_l5100"][q] / 5100.0
        sq = _Sampler(lam, z[q])
        att_q = np.exp(c_att * pop["av_agn"][q].astype(f32)[:, None] * sq(tpl["calzetti"]))
        shape = att_q * common[q]
        geo = kz[q, 0] / L_SUN_5500  # 1 / (4 pi d_L^2 (1+z)), float64: far below float32 range
        agn = sq(tpl["agn"]) * shape * (l5100 * geo).astype(f32)[:, None]
        agn += _broad_lines(pop, q, lam, shape, geo)
        out[q, 2] = agn
    return out


def _igm_transmission(lam, z, is_q):
    """Lyman-alpha forest (Madau 1995) for quasars; 1 elsewhere."""
    t = np.ones((len(z), 1))
    if not np.any(is_q & (z > 2.1)):
        return t
    lam_rest = lam[None, :] / (1 + z[:, None])
    tau = MADAU_TAU[0] * (lam[None, :] / 1216.0) ** MADAU_TAU[1]
    trans = np.where((lam_rest < 1216.0) & is_q[:, None], np.exp(-tau), 1.0)
    return trans


def _broad_lines(pop, q, lam, shape, geo):
    """Broad emission lines of the quasars ``q`` on grid ``lam`` (observed f_lambda).

    ``shape`` (k, L) is the attenuation along the line of sight (taken at the line centre),
    ``geo`` (k,) the factor 1 / (4 pi d_L^2 (1+z)).
    """
    tpl = _templates()
    z = pop["z"][q]
    l5100 = 10.0 ** pop["log_l5100"][q] / 5100.0
    out = np.zeros((len(q), len(lam)), dtype=np.float32)
    dl = lam[1] - lam[0]
    fwhm = pop["broad_fwhm"][q]
    ew_scale = pop["broad_ew_scale"][q] * (10.0 ** (pop["log_l5100"][q] - 45.0)) ** QSO_BALDWIN
    for _, lam0, ew in QSO_BROAD_LINES:
        lam_obs = lam0 * (1 + z)
        cont_rest = l5100 * np.interp(lam0, tpl["lam"], tpl["agn"])
        flux = ew * ew_scale * cont_rest * (1 + z) * geo  # L / (4 pi d_L^2) [erg/s/cm^2]
        sigma = np.hypot(lam_obs * fwhm / C_KMS / 2.3548, lam_obs / (2.3548 * SPEC_RESOLUTION))
        inside = np.flatnonzero((lam_obs + 6 * sigma > lam[0]) & (lam_obs - 6 * sigma < lam[-1]))
        if not inside.size:
            continue
        prof = _binned_gaussian(lam, dl, lam_obs[inside], sigma[inside])
        ci = np.clip(np.searchsorted(lam, lam_obs[inside]), 0, len(lam) - 1)
        att = shape[inside, ci]
        out[inside] += (prof * (flux[inside] * att)[:, None]).astype(np.float32)
    return out


def _binned_gaussian(lam, dl, centre, sigma):
    """Unit-flux Gaussians integrated over pixels of width ``dl`` [1/A], shape (k, L)."""
    from scipy.special import erf

    s = np.sqrt(2.0) * sigma[:, None]
    hi = erf((lam[None, :] + 0.5 * dl - centre[:, None]) / s)
    lo = erf((lam[None, :] - 0.5 * dl - centre[:, None]) / s)
    return 0.5 * (hi - lo) / dl
