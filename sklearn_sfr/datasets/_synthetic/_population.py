"""The population SDSS targets.

Stellar masses and redshifts, the SDSS MAIN and quasar selections, star formation on or
below the main sequence, dust, metallicity, the luminosities of the stellar populations,
quasar luminosities and hosts, and the sizes and shapes of bulges and disks.
"""

import numpy as np

from ._constants import (
    CUTOUT_CENTRE,
    DISK_Q0,
    EBV_SFD_LOGSIGMA,
    EBV_SFD_MEDIAN,
    GALAXY_Z_RANGE,
    GARN_BEST,
    GARN_BEST_SCATTER,
    INTERMEDIATE_AGE_YR,
    LOG_MSTAR_RANGE,
    MAIN_R_BRIGHT,
    MAIN_R_LIMIT,
    MASS_FUNCTION,
    ML_INTERMEDIATE,
    ML_OLD,
    ML_YOUNG,
    MS_INTERCEPT,
    MS_SCATTER,
    MS_SLOPE,
    MS_Z_ANCHOR,
    MS_Z_EXPONENT,
    MZR,
    QSO_I_BRIGHT,
    QSO_I_LIMIT,
    QSO_LF_SLOPE,
    QSO_LOG_L5100_RANGE,
    QSO_Z_RANGE,
    QUENCHED_FRACTION,
    QUENCHED_OFFSET_MEAN,
    QUENCHED_OFFSET_SD,
    R_V_CALZETTI,
    R_V_MW,
    SEEING_LOG_SIGMA,
    SEEING_R_MEDIAN,
    SHEN_EARLY,
    SHEN_LATE,
    SIZE_SCATTER_DEX,
    STARS_TO_GAS_EBV,
    YOUNG_AGE_YR,
)
from ._cosmology import _cosmology_tables, _kpc_per_arcsec
from ._dust import _calzetti_k
from ._photometry import _kcorrection_tables


def _sample_redshift(rng, n, z_range, evolution=0.0):
    """Redshifts uniform in comoving volume (times (1+z)^evolution, capped at z=2)."""
    zz, _, _, dvdz = _cosmology_tables()
    sel = (zz >= z_range[0]) & (zz <= z_range[1])
    z, w = zz[sel], dvdz[sel] * (1.0 + np.minimum(zz[sel], 2.0)) ** evolution
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(z))])
    return np.interp(rng.random(n) * cdf[-1], cdf, z)


def _sample_log_mass(rng, n):
    """log M* from the Baldry et al. (2012) double-Schechter mass function."""
    m_star, a1, p1, a2, p2 = MASS_FUNCTION
    x = np.linspace(*LOG_MSTAR_RANGE, 2001)
    t = 10.0 ** (x - m_star)
    phi = np.log(10) * np.exp(-t) * (p1 * t ** (a1 + 1) + p2 * t ** (a2 + 1))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (phi[1:] + phi[:-1]) * np.diff(x))])
    return np.interp(rng.random(n) * cdf[-1], cdf, x)


def _main_sequence(log_m, z):
    """Ridge line of the star-forming main sequence [log M_sun/yr]."""
    evol = MS_Z_EXPONENT * np.log10((1.0 + z) / (1.0 + MS_Z_ANCHOR))
    return MS_SLOPE * log_m + MS_INTERCEPT + evol


def _galaxy_physics(rng, log_m, z, quenched, bulge_mass_fraction):
    """Star formation, dust, metallicity and stellar luminosities of galaxies (or hosts)."""
    n = len(log_m)
    ms = _main_sequence(log_m, z)
    offset = np.clip(rng.normal(QUENCHED_OFFSET_MEAN, QUENCHED_OFFSET_SD, n), 0.6, 2.2)
    log_sfr = np.where(quenched, ms - offset, ms + rng.normal(0.0, MS_SCATTER, n))
    # SFR averaged over the last Gyr: star formers fluctuate around it; quenched galaxies
    # stopped at some time, recently quenched ones keep many A stars (strong Balmer absorption).
    u = rng.beta(1.0, 5.0, n)
    log_sfr_gyr = np.where(
        quenched, log_sfr + u * (ms - log_sfr), log_sfr + rng.normal(0.0, 0.15, n)
    )
    m = 10.0**log_m
    m_disk = (1.0 - bulge_mass_fraction) * m
    m_young = 10.0**log_sfr * YOUNG_AGE_YR
    m_inter = 10.0**log_sfr_gyr * INTERMEDIATE_AGE_YR
    scale = np.minimum(1.0, 0.9 * m_disk / (m_young + m_inter))
    m_young, m_inter = m_young * scale, m_inter * scale
    x = log_m - 10.0
    c0, c1, c2, c3 = GARN_BEST
    a_halpha = c0 + c1 * x + c2 * x**2 + c3 * x**3 + rng.normal(0.0, GARN_BEST_SCATTER, n)
    av_gas = np.where(
        quenched, np.abs(rng.normal(0.2, 0.25, n)), np.clip(a_halpha, 0.0, None) / 0.818
    )
    av_gas = np.clip(av_gas, 0.0, 4.0)
    av_stars = STARS_TO_GAS_EBV * av_gas * R_V_CALZETTI / R_V_MW
    xm = np.clip(log_m, 8.5, 11.5)
    oh = MZR[0] + MZR[1] * xm + MZR[2] * xm**2 + rng.normal(0.0, 0.1, n)
    return {
        "log_sfr": log_sfr,
        "log_sfr_gyr": log_sfr_gyr,
        "L_bulge": bulge_mass_fraction * m / ML_OLD,
        "L_disk_old": (m_disk - m_young - m_inter) / ML_OLD,
        "L_inter": m_inter / ML_INTERMEDIATE,
        "L_young": m_young / ML_YOUNG,
        "av_gas": av_gas,
        "av_stars": av_stars,
        "oh": oh,
    }


def _quenched_probability(log_m):
    floor, amp, centre, width = QUENCHED_FRACTION
    return floor + amp / (1.0 + np.exp(-(log_m - centre) / width))


def _bulge_mass_fraction(rng, log_m, quenched):
    mean = np.where(quenched, 0.7, 0.08 + 0.25 * np.clip((log_m - 9.0) / 2.5, 0.0, 1.0))
    conc = 6.0
    return np.clip(rng.beta(mean * conc, (1 - mean) * conc), 0.02, 0.98)


def _estimate_mag(phys, z):
    """Approximate r magnitude (selection only: no lines, mean dust reddening)."""
    zg, gal, _, _ = _kcorrection_tables()
    k_r = _calzetti_k(np.array([6200.0]))[0]
    att_s = 10 ** (-0.4 * phys["av_stars"] * k_r / R_V_CALZETTI)
    maggies = (
        (phys["L_bulge"] + phys["L_disk_old"]) * np.interp(z, zg, gal["old"]) * att_s
        + phys["L_inter"] * np.interp(z, zg, gal["intermediate"]) * att_s
        + phys["L_young"] * np.interp(z, zg, gal["young"]) * att_s
    )
    return -2.5 * np.log10(maggies)


def _draw_galaxies(rng, n):
    """Draw ``n`` galaxies that pass the SDSS MAIN selection (rejection sampling)."""
    parts, have = [], 0
    while have < n or not parts:
        m = max(12 * (n - have), 256)
        log_m = _sample_log_mass(rng, m)
        z = _sample_redshift(rng, m, GALAXY_Z_RANGE)
        quenched = rng.random(m) < _quenched_probability(log_m)
        fb = _bulge_mass_fraction(rng, log_m, quenched)
        phys = _galaxy_physics(rng, log_m, z, quenched, fb)
        mag = _estimate_mag(phys, z)
        keep = (mag < MAIN_R_LIMIT) & (mag > MAIN_R_BRIGHT)
        part = {"log_m": log_m, "z": z, "quenched": quenched, "bulge_mass_fraction": fb}
        part.update(phys)
        parts.append({k: v[keep] for k, v in part.items()})
        have += int(keep.sum())
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}


def _draw_quasars(rng, n):
    """Draw ``n`` quasars (AGN + host) that pass the SDSS quasar selection."""
    _, _, zq, kq = _kcorrection_tables()
    parts, have = [], 0
    lo, hi = QSO_LOG_L5100_RANGE
    rate = QSO_LF_SLOPE * np.log(10)
    while have < n or not parts:
        m = max(12 * (n - have), 256)
        u = rng.random(m)
        log_l = lo - np.log(1 - u * (1 - np.exp(-rate * (hi - lo)))) / rate
        z = _sample_redshift(rng, m, QSO_Z_RANGE, evolution=3.0)
        av_agn = np.minimum(rng.exponential(0.1, m), 1.0)
        l5100 = 10.0**log_l / 5100.0  # L_lambda(5100) [erg/s/A]
        att = 10 ** (-0.4 * av_agn * 4.0 / R_V_CALZETTI)
        mag = -2.5 * np.log10(l5100 * np.interp(z, zq, kq) * att)
        keep = (mag < QSO_I_LIMIT) & (mag > QSO_I_BRIGHT)
        parts.append({"log_l5100": log_l[keep], "z": z[keep], "av_agn": av_agn[keep]})
        have += int(keep.sum())
    q = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
    # Host: more luminous quasars live in more massive hosts, whose star formation rises with
    # the AGN power (e.g. Netzer 2009) around a main sequence at the quasar's redshift.
    log_m = np.clip(10.7 + 0.3 * (q["log_l5100"] - 45.0) + rng.normal(0, 0.25, n), 9.8, 11.8)
    quenched = np.zeros(n, dtype=bool)
    fb = np.clip(rng.beta(2.4, 3.6, n), 0.05, 0.9)
    phys = _galaxy_physics(rng, log_m, q["z"], quenched, fb)
    shift = -0.2 + 0.25 * (q["log_l5100"] - 45.0) + rng.normal(0.0, 0.3, n)
    phys["log_sfr"] = phys["log_sfr"] + shift
    phys["log_sfr_gyr"] = phys["log_sfr_gyr"] + shift
    # Recompute the young/intermediate luminosities for the shifted SFR.
    m = 10.0**log_m
    m_disk = (1 - fb) * m
    m_young = 10.0 ** phys["log_sfr"] * YOUNG_AGE_YR
    m_inter = 10.0 ** phys["log_sfr_gyr"] * INTERMEDIATE_AGE_YR
    scale = np.minimum(1.0, 0.9 * m_disk / (m_young + m_inter))
    phys["L_young"] = m_young * scale / ML_YOUNG
    phys["L_inter"] = m_inter * scale / ML_INTERMEDIATE
    phys["L_disk_old"] = (m_disk - (m_young + m_inter) * scale) / ML_OLD
    q.update(phys)
    q.update({"log_m": log_m, "quenched": quenched, "bulge_mass_fraction": fb})
    return q


def _draw_population(rng, is_q):
    """All per-object scalars of a block, galaxies and quasars merged in block order."""
    n = len(is_q)
    gal = _draw_galaxies(rng, int((~is_q).sum()))
    qso = _draw_quasars(rng, int(is_q.sum()))
    keys = set(gal) | set(qso)
    pop = {}
    for k in keys:
        g = gal.get(k)
        q = qso.get(k)
        dtype = (g if g is not None else q).dtype
        fill = False if dtype.kind == "b" else np.nan
        out = np.full(n, fill, dtype=dtype)
        if g is not None:
            out[~is_q] = g
        if q is not None:
            out[is_q] = q
        pop[k] = out
    pop["is_q"] = is_q
    pop["av_agn"] = np.where(is_q, pop["av_agn"], 0.0)
    pop["log_l5100"] = np.where(is_q, pop["log_l5100"], np.nan)
    # Shared per-object quantities.
    pop["ebv_sfd"] = EBV_SFD_MEDIAN * np.exp(rng.normal(0.0, EBV_SFD_LOGSIGMA, n))
    log_sigma = 2.1 + 0.29 * (pop["log_m"] - 10.5) - 0.08 * (~pop["quenched"])
    pop["sigma_v"] = np.clip(10.0 ** (log_sigma + rng.normal(0.0, 0.06, n)), 40.0, 400.0)
    pop["sigma_gas"] = np.clip(
        10.0 ** (1.75 + 0.15 * (pop["log_m"] - 10.0) + rng.normal(0.0, 0.08, n)), 25.0, 250.0
    )
    return pop


def _draw_geometry(rng, pop):
    """Sizes, shapes and position of each object in its cutout."""
    n = len(pop["z"])
    m = 10.0 ** pop["log_m"]
    mb = np.maximum(pop["bulge_mass_fraction"] * m, 1e8)
    g, a, b, m0 = SHEN_LATE
    re_disk = g * m**a * (1 + m / m0) ** (b - a) * 10 ** rng.normal(0, SIZE_SCATTER_DEX, n)
    ge, ae = SHEN_EARLY
    re_bulge = np.maximum(ge * mb**ae * 10 ** rng.normal(0, SIZE_SCATTER_DEX, n), 0.3)
    re_bulge = np.where(pop["quenched"], re_bulge, np.minimum(re_bulge, 0.6 * re_disk))
    scale = _kpc_per_arcsec(pop["z"])
    cos_i = rng.random(n)
    q_disk = np.sqrt(cos_i**2 * (1 - DISK_Q0**2) + DISK_Q0**2)
    q_bulge = np.where(pop["quenched"], rng.uniform(0.5, 1.0, n), rng.uniform(0.65, 1.0, n))
    n_bulge = np.where(pop["quenched"], rng.uniform(3.5, 5.0, n), rng.uniform(1.5, 4.0, n))
    return {
        "re_disk_arcsec": re_disk / scale,
        "re_bulge_arcsec": re_bulge / scale,
        "q_disk": q_disk,
        "q_bulge": q_bulge,
        "n_bulge": n_bulge,
        "pa": rng.uniform(0.0, np.pi, n),
        "centre_x": CUTOUT_CENTRE + rng.uniform(-0.5, 0.5, n),
        "centre_y": CUTOUT_CENTRE + rng.uniform(-0.5, 0.5, n),
        "seeing_r": SEEING_R_MEDIAN * np.exp(rng.normal(0.0, SEEING_LOG_SIGMA, n)),
        "sky_factor_image": np.exp(rng.normal(0.0, 0.1, n)),
    }
