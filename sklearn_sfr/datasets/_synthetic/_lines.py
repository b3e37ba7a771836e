"""Narrow emission lines.

Luminosities of star formation, of the weak LINER-like emission of retired galaxies and of
the AGN narrow-line region; their observed fluxes and widths; and pixel-integrated line
profiles on a spectrum.
"""

import numpy as np

from ._constants import (
    BALMER_DECREMENT,
    BALMER_RATIOS,
    C_KMS,
    KENNICUTT_HALPHA,
    L_SUN_5500,
    LINE_WAVELENGTHS,
    MADAU_TAU,
    N2_MAX,
    NARROW_LINES,
    PP04_N2,
    QSO_NARROW_EW,
    R_V_CALZETTI,
    R_V_MW,
    SPEC_RESOLUTION,
    T04_TO_PP04,
)
from ._cosmology import _lum_distance_cm
from ._dust import _calzetti_k, _ccm_k
from ._templates import _templates


def _line_luminosities(pop, rng):
    """Narrow-line luminosities [erg/s] (n, n_lines) of star formation (disk), retired-galaxy
    (LINER-like, bulge) and AGN narrow-line-region emission, before dust."""
    n = len(pop["z"])
    names = NARROW_LINES
    idx = {k: i for i, k in enumerate(names)}
    sf = np.zeros((n, len(names)))
    ha = 10.0 ** pop["log_sfr"] / KENNICUTT_HALPHA
    hb = ha / BALMER_DECREMENT
    sf[:, idx["Halpha"]] = ha
    sf[:, idx["Hbeta"]] = hb
    for k, r in BALMER_RATIOS.items():
        sf[:, idx[k]] = r * hb
    # Metallicity-driven strong-line ratios on the star-forming BPT locus (Pettini & Pagel
    # 2004; Kauffmann et al. 2003 demarcation shifted 0.2 dex down into the SF locus).
    n2 = np.clip((pop["oh"] + T04_TO_PP04 - PP04_N2[0]) / PP04_N2[1], -1.6, N2_MAX)
    o3 = 0.61 / (n2 - 0.05) + 1.3 - 0.2 + rng.normal(0.0, 0.1, n)
    o2 = np.clip(0.45 - 0.6 * (n2 + 0.7), -0.3, 0.9) + rng.normal(0.0, 0.1, n)
    s2 = -0.45 + rng.normal(0.0, 0.1, n)
    sf[:, idx["NII_6585"]] = ha * 10**n2
    sf[:, idx["NII_6550"]] = sf[:, idx["NII_6585"]] / 3.05
    sf[:, idx["OIII_5008"]] = hb * 10**o3
    sf[:, idx["OIII_4960"]] = sf[:, idx["OIII_5008"]] / 2.98
    sf[:, idx["NeIII_3870"]] = 0.08 * sf[:, idx["OIII_5008"]]
    o2_tot = hb * 10**o2
    sf[:, idx["OII_3730"]] = o2_tot * 1.3 / 2.3
    sf[:, idx["OII_3727"]] = o2_tot * 1.0 / 2.3
    s2_tot = ha * 10**s2
    sf[:, idx["SII_6718"]] = s2_tot * 1.4 / 2.4
    sf[:, idx["SII_6733"]] = s2_tot * 1.0 / 2.4
    sf[:, idx["OI_6302"]] = 0.03 * ha
    # Retired galaxies: hot evolved stars ionise weak LINER-like emission, EW(Halpha) 0.3-2.5 A
    # of the bulge continuum (Cid Fernandes et al. 2011).
    tpl = _templates()
    lam_ha = LINE_WAVELENGTHS["Halpha"]
    cont_ha = np.interp(lam_ha, tpl["lam"], tpl["old"][2]) * pop["L_bulge"] * L_SUN_5500
    ew = np.where(pop["quenched"], 10 ** rng.uniform(np.log10(0.3), np.log10(2.5), n), 0.0)
    lin = np.zeros_like(sf)
    ha_l = ew * cont_ha
    hb_l = ha_l / 3.1
    lin[:, idx["Halpha"]] = ha_l
    lin[:, idx["Hbeta"]] = hb_l
    lin[:, idx["NII_6585"]] = ha_l * 10 ** rng.normal(0.15, 0.1, n)
    lin[:, idx["NII_6550"]] = lin[:, idx["NII_6585"]] / 3.05
    lin[:, idx["OIII_5008"]] = hb_l * 10 ** rng.normal(0.25, 0.15, n)
    lin[:, idx["OIII_4960"]] = lin[:, idx["OIII_5008"]] / 2.98
    lin[:, idx["SII_6718"]] = 0.45 * ha_l
    lin[:, idx["SII_6733"]] = 0.35 * ha_l
    lin[:, idx["OI_6302"]] = 0.15 * ha_l
    lin[:, idx["OII_3730"]] = hb_l * 5.0 * 1.3 / 2.3
    lin[:, idx["OII_3727"]] = hb_l * 5.0 / 2.3
    # AGN narrow-line region (quasars): EWs against the AGN continuum.
    agn = np.zeros_like(sf)
    q = pop["is_q"]
    if q.any():
        l5100 = 10.0 ** pop["log_l5100"][q] / 5100.0
        for k, ew_k in QSO_NARROW_EW.items():
            lam_k = LINE_WAVELENGTHS[k]
            cont = l5100 * np.interp(lam_k, tpl["lam"], tpl["agn"])
            agn[q, idx[k]] = ew_k * cont * 10 ** rng.normal(0.0, 0.15, q.sum())
        agn[q, idx["Hbeta"]] = 0.1 * agn[q, idx["OIII_5008"]]
        agn[q, idx["Halpha"]] = 0.3 * agn[q, idx["OIII_5008"]]
    return sf, lin, agn


def _observed_lines(pop, lum_sf, lum_lin, lum_agn):
    """Observed narrow-line fluxes [erg/s/cm^2] per component, wavelengths and widths."""
    z = pop["z"]
    lam0 = np.array([LINE_WAVELENGTHS[k] for k in NARROW_LINES])
    lam_obs = lam0[None, :] * (1 + z[:, None])
    d_l = _lum_distance_cm(z)
    geo = 1.0 / (4 * np.pi * d_l**2)
    k_gas = _ccm_k(lam0)
    att_gas = 10 ** (-0.4 * pop["av_gas"][:, None] * k_gas[None, :] / R_V_MW)
    att_agn = 10 ** (-0.4 * pop["av_agn"][:, None] * _calzetti_k(lam0)[None, :] / R_V_CALZETTI)
    mw = 10 ** (-0.4 * pop["ebv_sfd"][:, None] * _ccm_k(lam_obs))
    igm = np.where(
        pop["is_q"][:, None] & (z[:, None] > 2.1),
        np.exp(-MADAU_TAU[0] * (lam_obs / 1216.0) ** MADAU_TAU[1] * (lam0[None, :] < 1216)),
        1.0,
    )
    common = geo[:, None] * mw * igm
    flux = np.stack(
        [lum_lin * att_gas * common, lum_sf * att_gas * common, lum_agn * att_agn * common],
        axis=1,
    )  # (n, 3 components, m): bulge (retired emission), disk (star formation), AGN
    inst = lam_obs / (2.3548 * SPEC_RESOLUTION)
    sig_gas = np.hypot(inst, lam_obs * pop["sigma_gas"][:, None] / C_KMS)
    sig_agn = np.hypot(inst, lam_obs * 300.0 / C_KMS)
    sigma = np.stack([sig_gas, sig_gas, sig_agn], axis=1)
    return lam_obs, flux, sigma


def _add_lines(spec, lam, centres, fluxes, sigmas, half_width):
    """Add pixel-integrated Gaussian lines to ``spec`` (n, L) in place, in windows."""
    from scipy.special import erf

    n, n_pix = spec.shape
    dl = lam[1] - lam[0]
    ic = np.rint((centres - lam[0]) / dl).astype(np.int64)
    offs = np.arange(-half_width, half_width + 1)
    idx = ic[..., None] + offs  # (n, m, W)
    c = centres[..., None]
    s = np.sqrt(2.0) * sigmas[..., None]
    lo = lam[0] + (idx - 0.5) * dl
    val = 0.5 * (erf((lo + dl - c) / s) - erf((lo - c) / s)) / dl * fluxes[..., None]
    ok = (idx >= 0) & (idx < n_pix) & (fluxes[..., None] != 0)
    rows = np.broadcast_to(np.arange(n)[:, None, None], idx.shape)
    flat = rows[ok] * n_pix + idx[ok]
    spec += (
        np.bincount(flat, weights=val[ok], minlength=n * n_pix)
        .reshape(n, n_pix)
        .astype(spec.dtype)
    )
