"""The SDSS spectrograph: sky, throughput and photon budget; noise and masked pixels."""

from functools import lru_cache

import numpy as np

from .._layout import wavelength_grid
from ._constants import (
    C_AA,
    H_PLANCK_C,
    OH_BANDS,
    OH_LINES_PER_BAND,
    OH_SEED,
    SKY_CONTINUUM,
    SKY_LINES,
    SPEC_AREA_CM2,
    SPEC_DEPTH_SCATTER,
    SPEC_EXPTIME_S,
    SPEC_READ_VAR,
    SPEC_RESOLUTION,
    SPEC_SKY_SCATTER,
    SPEC_SN2_AT_G20P2,
    SPEC_THROUGHPUT,
)


@lru_cache(maxsize=1)
def _spectrograph():
    """Sky spectrum (continuum, lines) [erg/s/cm^2/A in the fibre] and counts per unit flux."""
    lam = wavelength_grid(0)
    dl = lam[1] - lam[0]
    nodes = np.array(SKY_CONTINUUM)
    cont = np.interp(lam, nodes[:, 0], nodes[:, 1]) * 1e-17
    rng = np.random.default_rng(OH_SEED)
    centres, fluxes = [c for c, _ in SKY_LINES], [f for _, f in SKY_LINES]
    for lo, hi, total in OH_BANDS:
        c = np.sort(rng.uniform(lo, hi, OH_LINES_PER_BAND))
        w = rng.lognormal(0.0, 0.8, OH_LINES_PER_BAND)
        centres.extend(c)
        fluxes.extend(total * w / w.sum())
    centres = np.array(centres)
    fluxes = np.array(fluxes) * 1e-17
    lines = np.zeros_like(lam)
    sig = centres / (2.3548 * SPEC_RESOLUTION)
    from scipy.special import erf

    for c, f, s in zip(centres, fluxes, sig):
        lo = (lam - 0.5 * dl - c) / (np.sqrt(2) * s)
        hi = (lam + 0.5 * dl - c) / (np.sqrt(2) * s)
        lines += f * 0.5 * (erf(hi) - erf(lo)) / dl
    peak, blue, bw, red, rw = SPEC_THROUGHPUT
    eta = peak / (1 + np.exp(-(lam - blue) / bw)) / (1 + np.exp((lam - red) / rw))
    eta *= 1 - 0.25 * np.exp(-0.5 * ((lam - 6000.0) / 60.0) ** 2)  # dichroic crossover
    counts_per_flux = lam / H_PLANCK_C * SPEC_AREA_CM2 * SPEC_EXPTIME_S * dl * eta
    # Scale the photon budget so that the median plate meets SPEC_SN2_AT_G20P2.
    from scipy.optimize import brentq

    f_g = 10 ** (-0.4 * (20.2 + 48.6)) * C_AA / lam**2
    sel = (lam > 4000.0) & (lam < 5500.0)

    def excess(log_scale):
        k = counts_per_flux[sel] * 10.0**log_scale
        sn = f_g[sel] * k / np.sqrt((f_g[sel] + cont[sel] + lines[sel]) * k + SPEC_READ_VAR)
        return np.median(sn) ** 2 - SPEC_SN2_AT_G20P2

    counts_per_flux = counts_per_flux * 10.0 ** brentq(excess, -4.0, 4.0)
    return lam, cont, lines, counts_per_flux


def _spectrum_sigma(rng, model):
    """1-sigma errors (n, L) of the fibre spectra ``model`` on the cube grid.

    Spectroscopic noise: photon noise of object and sky, read noise, sky-subtraction
    residuals, with the depth and the sky level of each object's plate drawn from ``rng``.
    """
    n = len(model)
    _, sky_cont, sky_lines, cpf = _spectrograph()
    t_fac = np.exp(rng.normal(0.0, SPEC_DEPTH_SCATTER, n))[:, None]
    sky_fac = np.exp(rng.normal(0.0, SPEC_SKY_SCATTER, n))[:, None]
    k_counts = cpf[None, :] * t_fac
    sky = (sky_cont + sky_lines)[None, :] * sky_fac
    var = (np.maximum(model, 0.0) + sky) * k_counts + SPEC_READ_VAR
    sigma = np.sqrt(var) / k_counts
    sigma = np.sqrt(sigma**2 + (0.015 * sky_lines[None, :] * sky_fac) ** 2)
    return sigma


def _spectrum_mask(rng, n, lam):
    """Masked pixels (n, L) of ``n`` spectra on ``lam``.

    Bright sky-line cores, bad runs (cosmic rays, bad columns) and, occasionally, a missing
    half of a camera.
    """
    _, sky_cont, sky_lines, _ = _spectrograph()
    mask = (sky_lines[None, :] > 8 * sky_cont[None, :]) & (rng.random((n, 1)) < 0.7)
    n_runs = rng.poisson(3.0, n)
    run_obj = np.repeat(np.arange(n), n_runs)
    run_start = rng.integers(0, len(lam), run_obj.size)
    run_len = (10 ** rng.uniform(np.log10(3), np.log10(100), run_obj.size)).astype(int)
    big = rng.random(n) < 0.04
    big_obj = np.flatnonzero(big)
    run_obj = np.concatenate([run_obj, big_obj])
    run_start = np.concatenate([run_start, rng.integers(0, len(lam) - 300, big_obj.size)])
    run_len = np.concatenate([run_len, rng.integers(300, 1200, big_obj.size)])
    marks = np.zeros((n, len(lam) + 1), dtype=np.int32)
    np.add.at(marks, (run_obj, run_start), 1)
    np.add.at(marks, (run_obj, np.minimum(run_start + run_len, len(lam))), -1)
    mask |= np.cumsum(marks, axis=1)[:, :-1] > 0
    return mask


def _add_spectrum_noise(noise_rng, model, sigma, mask, noise):
    """Observed fluxes: ``model`` plus Gaussian noise of ``sigma``, and extra junk in about
    half of the masked pixels; the model itself when ``noise`` is False."""
    flux = model.copy()
    if noise:
        flux += sigma * noise_rng.standard_normal(flux.shape)
        junk = mask & (noise_rng.random(flux.shape) < 0.5)
        flux[junk] += 3 * sigma[junk] * noise_rng.standard_normal(int(junk.sum()))
    return flux
