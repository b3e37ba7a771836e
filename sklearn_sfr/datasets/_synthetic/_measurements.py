"""Measurements on the noiseless fibre spectrum: Halpha (flux, S/N, EW) and Dn4000."""

import numpy as np

from ._constants import NARROW_LINES
from ._fibre import _fibre_at


def _measure_halpha(lam, model, sigma, fibre, lam_lines, f_lines, s_lines, z):
    """Line measurements that set the label width: Halpha in the fibre.

    ``model`` and ``sigma`` (n, L) are the fibre spectra and their errors on ``lam``,
    ``fibre`` the fibre fractions of the slots, ``lam_lines``, ``f_lines``, ``s_lines`` the
    observed narrow lines (:func:`_observed_lines`), ``z`` the redshifts. Returns a dict of
    (n,) arrays: ``disk_fibre_fraction`` (of the disk at Halpha), ``flux_sf`` (star-formation
    Halpha in the fibre), ``flux`` (all Halpha in the fibre) [erg/s/cm^2], ``in_range``
    (Halpha on the spectrum), ``sn`` and ``ew`` (rest frame [A]).
    """
    n = len(model)
    dl = lam[1] - lam[0]
    i_ha = NARROW_LINES.index("Halpha")
    a_disk_ha = _fibre_at(fibre[:, 1], lam_lines[:, i_ha])
    a_bulge_ha = _fibre_at(fibre[:, 0], lam_lines[:, i_ha])
    a_agn_ha = _fibre_at(fibre[:, 2], lam_lines[:, i_ha])
    ha_sf = f_lines[:, 1, i_ha] * a_disk_ha
    ha_fib = ha_sf + f_lines[:, 0, i_ha] * a_bulge_ha + f_lines[:, 2, i_ha] * a_agn_ha
    ha_pix = np.clip(np.rint((lam_lines[:, i_ha] - lam[0]) / dl).astype(int), 0, len(lam) - 1)
    in_range = (lam_lines[:, i_ha] > lam[0] + 30) & (lam_lines[:, i_ha] < lam[-1] - 30)
    sig_pix = sigma[np.arange(n), ha_pix]
    sig_line = s_lines[:, 1, i_ha]
    ha_err = sig_pix * np.sqrt(2 * np.sqrt(np.pi) * sig_line * dl)
    ha_sn = np.where(in_range, ha_fib / ha_err, 0.0)
    side = (np.abs(lam[None, :] - lam_lines[:, i_ha][:, None]) > 40) & (
        np.abs(lam[None, :] - lam_lines[:, i_ha][:, None]) < 80
    )
    with np.errstate(invalid="ignore"):
        cont_ha = np.nanmedian(np.where(side, model, np.nan), axis=1)
        ew_ha = np.where(in_range, ha_fib / cont_ha / (1 + z), np.nan)
    return {
        "disk_fibre_fraction": a_disk_ha,
        "flux_sf": ha_sf,
        "flux": ha_fib,
        "in_range": in_range,
        "sn": ha_sn,
        "ew": ew_ha,
    }


def _dn4000(lam, spec, z):
    """Narrow 4000 A break (Balogh et al. 1999): <F_nu>(4000-4100) / <F_nu>(3850-3950)."""
    lam_rest = lam[None, :] / (1 + z[:, None])
    fnu = spec * lam[None, :] ** 2
    red = (lam_rest > 4000) & (lam_rest < 4100)
    blue = (lam_rest > 3850) & (lam_rest < 3950)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sum(fnu * red, axis=1) / red.sum(axis=1)
        b = np.sum(fnu * blue, axis=1) / blue.sum(axis=1)
        ok = (lam[0] * (1 + 0) < 3850 * (1 + z)) & (4100 * (1 + z) < lam[-1])
        return np.where(ok & (blue.sum(axis=1) > 0), r / b, np.nan)
