"""Five-band cutouts.

Sersic profiles and point sources rendered on a padded grid, the double-Gaussian SDSS PSF,
the fibre fraction of every component, and sky and detector noise.
"""

from functools import lru_cache

import numpy as np

from .._layout import BAND_NAMES, PIXEL_SCALE
from ._constants import (
    CUTOUT,
    DARK_VARIANCE,
    FIBRE_DIAMETER_ARCSEC,
    GAIN,
    NMGY_PER_COUNT,
    PSF_WING_PEAK,
    PSF_WING_WIDTH,
    SEEING_EXPONENT,
    SKY_MAG,
)
from ._fibre import _aperture_weights
from ._photometry import _band_lambda_eff

_PAD = 16
_NPAD = CUTOUT + 2 * _PAD


@lru_cache(maxsize=1)
def _psf_core_sigma_per_fwhm():
    """Core sigma of the double-Gaussian PSF per unit FWHM of the combined profile."""
    from scipy.optimize import brentq

    def half(r):
        return (
            np.exp(-0.5 * r**2) + PSF_WING_PEAK * np.exp(-0.5 * (r / PSF_WING_WIDTH) ** 2)
        ) - 0.5 * (1 + PSF_WING_PEAK)

    return 1.0 / (2.0 * brentq(half, 0.5, 3.0))


def _sersic_bn(n):
    from scipy.special import gammaincinv

    return gammaincinv(2.0 * n, 0.5)


def _render_sersic(xc, yc, re, n, q, pa, oversample, x0, y0, size):
    """Unit-flux Sersic profiles in ``size`` x ``size`` windows, pixel-integrated by oversampling.

    Positions are padded-grid pixel coordinates (pixel centres at integers), the window of job
    ``j`` starts at padded pixel ``(x0[j], y0[j])``; ``re`` is the semi-major half-light radius
    in pixels. The sum inside the largest ellipse that fits the window is scaled to the
    analytic enclosed fraction, which removes the discretisation error of the central cusp;
    light beyond the window is dropped (a truncated profile).
    """
    from scipy.special import gammainc, gammaln

    npix = size * oversample
    g = ((np.arange(npix) + 0.5) / oversample - 0.5).astype(np.float32)
    xl = (xc - x0).astype(np.float32)
    yl = (yc - y0).astype(np.float32)
    dx = g[None, None, :] - xl[:, None, None]
    dy = g[None, :, None] - yl[:, None, None]
    c = np.cos(pa).astype(np.float32)[:, None, None]
    s = np.sin(pa).astype(np.float32)[:, None, None]
    xp = dx * c + dy * s
    yp = (dy * c - dx * s) / q.astype(np.float32)[:, None, None]
    r = np.sqrt(xp * xp + yp * yp)
    bn = _sersic_bn(n)
    rr = np.maximum(r / re.astype(np.float32)[:, None, None], np.float32(1e-6))
    inv_n = (1.0 / n).astype(np.float32)[:, None, None]
    prof = np.exp(-bn.astype(np.float32)[:, None, None] * (np.exp(np.log(rr) * inv_n) - 1.0))
    edge = np.minimum(np.minimum(xl, size - 1 - xl), np.minimum(yl, size - 1 - yl)) + 0.5
    edge = np.maximum(edge, 0.5)
    inside = r < edge[:, None, None]
    sum_inside = np.sum(prof * inside, axis=(1, 2), dtype=np.float64) / oversample**2
    if oversample > 1:
        prof = prof.reshape(len(xc), size, oversample, size, oversample).mean(axis=(2, 4))
    f_enc = gammainc(2 * n, bn * (edge / re) ** (1.0 / n))
    log_total = np.log(2 * np.pi * q * re**2 * n) + bn - 2 * n * np.log(bn) + gammaln(2 * n)
    scale = np.where(sum_inside > 0, f_enc / np.maximum(sum_inside, 1e-30), np.exp(-log_total))
    return prof * scale[:, None, None].astype(np.float32)


_WINDOWS = (16, 24, 32, 48, 64, _NPAD)


def _render_sersic_jobs(xs, ys, res, ns, qs, pas):
    """Render Sersic jobs into full padded grids (J, _NPAD, _NPAD), each in a fitting window."""
    out = np.zeros((len(xs), _NPAD, _NPAD), dtype=np.float32)
    reach = (8.0 + 2.5 * (np.maximum(ns, 1.0) - 1.0)) * res  # ~all the light of the profile
    size = np.array(_WINDOWS)[
        np.minimum(np.searchsorted(_WINDOWS, 2 * reach + 2), len(_WINDOWS) - 1)
    ]
    oversample = np.where(res < 4.0, 2, 1)
    for w in np.unique(size):
        for os_ in (1, 2):
            idx = np.flatnonzero((size == w) & (oversample == os_))
            for b0 in range(0, len(idx), 64):
                jj = idx[b0 : b0 + 64]
                x0 = np.clip(np.rint(xs[jj]).astype(int) - w // 2, 0, _NPAD - w)
                y0 = np.clip(np.rint(ys[jj]).astype(int) - w // 2, 0, _NPAD - w)
                prof = _render_sersic(
                    xs[jj], ys[jj], res[jj], ns[jj], qs[jj], pas[jj], os_, x0, y0, w
                )
                rows = (y0[:, None] + np.arange(w)[None, :])[:, :, None]
                cols = (x0[:, None] + np.arange(w)[None, :])[:, None, :]
                out[jj[:, None, None], rows, cols] = prof
    return out


def _render_images(noise_rng, pop, geo, maggies, nb, noise, chunk=128):
    """Render the five-band cutouts, their errors and the fibre fractions of every component.

    ``maggies`` (n, S, 5): band fluxes of each slot (0 bulge, 1 disk, 2 AGN point source,
    3.. neighbours). Every slot is rendered once (unit flux, pixel-integrated) and Fourier
    transformed; per band, the slots are combined with their fluxes and multiplied by the
    object's PSF transfer function. Returns images and errors in nanomaggies (n, 5, 64, 64)
    and the fraction of each slot's light inside the 3" fibre per band (n, S, 5), the latter by
    Parseval's theorem against the transform of the fibre aperture.
    """
    n, n_slots, _ = maggies.shape
    images = np.empty((n, 5, CUTOUT, CUTOUT), dtype=np.float32)
    errors = np.empty_like(images)
    fibre = np.zeros((n, n_slots, 5))
    nk = _NPAD // 2 + 1
    ky = np.fft.fftfreq(_NPAD)[:, None]
    kx = np.fft.rfftfreq(_NPAD)[None, :]
    k2 = (kx**2 + ky**2).astype(np.float32)
    col = np.arange(nk)
    kweight = np.where((col == 0) | (col == _NPAD // 2), 1.0, 2.0)[None, :]
    pixel_mtf = (np.sinc(kx) * np.sinc(ky)).astype(np.float32)
    lam_eff = _band_lambda_eff()
    core = _psf_core_sigma_per_fwhm()
    wing_frac = PSF_WING_PEAK * PSF_WING_WIDTH**2 / (1 + PSF_WING_PEAK * PSF_WING_WIDTH**2)
    fibre_radius_px = 0.5 * FIBRE_DIAMETER_ARCSEC / PIXEL_SCALE
    sl = slice(_PAD, _PAD + CUTOUT)
    band_ratio = (lam_eff / lam_eff[2]) ** SEEING_EXPONENT
    for start in range(0, n, chunk):
        ob = np.arange(start, min(n, start + chunk))
        m = len(ob)
        ft = np.zeros((m, n_slots, _NPAD, nk), dtype=np.complex64)
        cx = geo["centre_x"][ob] + _PAD
        cy = geo["centre_y"][ob] + _PAD
        loc = np.arange(m)
        # Sersic jobs: bulge (slot 0), disk (slot 1), neighbour galaxies (slots 3..).
        jobs = [
            (
                loc,
                0,
                cx,
                cy,
                geo["re_bulge_arcsec"][ob] / PIXEL_SCALE,
                geo["n_bulge"][ob],
                geo["q_bulge"][ob],
                geo["pa"][ob],
            ),
            (
                loc,
                1,
                cx,
                cy,
                geo["re_disk_arcsec"][ob] / PIXEL_SCALE,
                np.ones(m),
                geo["q_disk"][ob],
                geo["pa"][ob],
            ),
        ]
        points = []  # point sources: AGN (slot 2) and neighbour stars
        q = pop["is_q"][ob]
        if q.any():
            points.append((loc[q], 2, cx[q], cy[q]))
        for k in range(nb["x"].shape[1]):
            kind = nb["kind"][ob, k]
            x = cx + nb["x"][ob, k]
            y = cy + nb["y"][ob, k]
            g = kind == 1
            if g.any():
                jobs.append(
                    (
                        loc[g],
                        3 + k,
                        x[g],
                        y[g],
                        nb["re_px"][ob, k][g],
                        nb["n"][ob, k][g],
                        nb["q"][ob, k][g],
                        nb["pa"][ob, k][g],
                    )
                )
            st = kind == 2
            if st.any():
                points.append((loc[st], 3 + k, x[st], y[st]))
        cols = [
            np.concatenate(v)
            for v in zip(*[(j[0], np.full(len(j[0]), j[1]), *j[2:]) for j in jobs])
        ]
        lo, slot, xs, ys, res, ns, qs, pas = cols
        res = np.clip(res, 0.2, 300.0)
        prof = _render_sersic_jobs(xs, ys, res, ns, qs, pas)
        ft[lo, slot.astype(int)] = np.fft.rfft2(prof)
        del prof
        for lp, sp, xp, yp in points:
            phase = np.exp(
                -2j * np.pi * (kx[None] * xp[:, None, None] + ky[None] * yp[:, None, None])
            )
            ft[lp, sp] = (phase * pixel_mtf[None]).astype(np.complex64)
        ftf = ft.reshape(m, n_slots, -1)
        # PSF transfer functions (m, 5, K) of the double Gaussian at each band's seeing.
        fwhm_px = geo["seeing_r"][ob][:, None] * band_ratio[None, :] / PIXEL_SCALE
        s1 = (core * fwhm_px).astype(np.float32)[:, :, None]
        kk = k2.reshape(1, 1, -1)
        otf = (1 - wing_frac) * np.exp(-2 * np.pi**2 * s1**2 * kk) + wing_frac * np.exp(
            -2 * np.pi**2 * (PSF_WING_WIDTH * s1) ** 2 * kk
        )
        # Fibre fractions: sum_x W P = sum_k conj(W^) P^ / N^2 over the full plane.
        wap = _aperture_weights(cx, cy, fibre_radius_px, _NPAD)
        wft = (np.conj(np.fft.rfft2(wap)) * kweight / _NPAD**2).reshape(m, 1, -1)
        fibre[ob] = np.matmul(ftf, np.swapaxes(wft * otf, 1, 2).astype(np.complex64)).real
        # Images: sum of the slots weighted by their band fluxes, then the PSF.
        img_ft = np.matmul(np.swapaxes(maggies[ob], 1, 2).astype(np.complex64), ftf) * otf
        model = np.fft.irfft2(img_ft.reshape(m, 5, _NPAD, nk), s=(_NPAD, _NPAD))
        model = model[:, :, sl, sl].astype(np.float32) * np.float32(1e9)  # nanomaggies
        for b, band in enumerate(BAND_NAMES):
            nmgy = NMGY_PER_COUNT[band]
            sky = 10 ** (-0.4 * (SKY_MAG[band] - 22.5)) * PIXEL_SCALE**2
            sky = (sky * geo["sky_factor_image"][ob]).astype(np.float32)[:, None, None]
            mb = model[:, b]
            var_dn = (sky + np.maximum(mb, 0.0)) / (nmgy * GAIN[band]) + DARK_VARIANCE[band]
            sigma = np.float32(nmgy) * np.sqrt(var_dn)
            if noise:
                mb = mb + sigma * noise_rng.standard_normal(mb.shape, dtype=np.float32)
            images[ob, b] = mb
            errors[ob, b] = sigma
    return images, errors, np.clip(fibre, 0.0, None)
