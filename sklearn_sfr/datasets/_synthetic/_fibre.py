"""The 3" fibre: its aperture on the pixel grid, fibre fractions and the fibre spectrum."""

import numpy as np

from ._photometry import _band_lambda_eff
from ._templates import _blackbody


def _aperture_weights(cx, cy, radius, size, sub=8):
    """Fractional pixel overlap of circles (centres in pixel coordinates) on a square grid."""
    n = len(cx)
    box = 2 * int(np.ceil(radius)) + 3
    x0 = np.floor(cx).astype(int) - box // 2
    y0 = np.floor(cy).astype(int) - box // 2
    sub_off = (np.arange(sub) + 0.5) / sub - 0.5
    px = x0[:, None] + np.arange(box)[None, :]
    py = y0[:, None] + np.arange(box)[None, :]
    sx = px[:, :, None] + sub_off[None, None, :] - cx[:, None, None]  # (n, box, sub)
    sy = py[:, :, None] + sub_off[None, None, :] - cy[:, None, None]
    inside = (
        sx[:, None, :, None, :] ** 2 + sy[:, :, None, :, None] ** 2 <= radius**2
    )  # (n, y, x, sy, sx)
    frac = inside.mean(axis=(3, 4))
    w = np.zeros((n, size, size))
    rows = np.arange(n)[:, None, None]
    yy = np.broadcast_to(py[:, :, None], frac.shape)
    xx = np.broadcast_to(px[:, None, :], frac.shape)
    ok = (yy >= 0) & (yy < size) & (xx >= 0) & (xx < size)
    np.add.at(w, (np.broadcast_to(rows, frac.shape)[ok], yy[ok], xx[ok]), frac[ok])
    return w


def _fibre_profile(a_band, lam):
    """Interpolate per-band fibre fractions (n, 5) linearly in wavelength to ``lam`` (L,),
    constant beyond u and z; returns (n, L)."""
    return a_band @ _band_interpolation_matrix(np.asarray(lam, dtype=np.float64))


def _band_interpolation_matrix(lam):
    lam_eff = _band_lambda_eff()
    j = np.clip(np.searchsorted(lam_eff, lam) - 1, 0, 3)
    t = np.clip((lam - lam_eff[j]) / (lam_eff[j + 1] - lam_eff[j]), 0.0, 1.0)
    mat = np.zeros((5, len(lam)))
    mat[j, np.arange(len(lam))] = 1 - t
    mat[j + 1, np.arange(len(lam))] += t
    return mat


def _fibre_at(a_band, lam_obj):
    """Fibre fraction of each object (n, 5) at its own wavelength ``lam_obj`` (n,)."""
    lam_eff = _band_lambda_eff()
    j = np.clip(np.searchsorted(lam_eff, lam_obj) - 1, 0, 3)
    t = np.clip((lam_obj - lam_eff[j]) / (lam_eff[j + 1] - lam_eff[j]), 0.0, 1.0)
    rows = np.arange(len(lam_obj))
    return a_band[rows, j] * (1 - t) + a_band[rows, j + 1] * t


def _fibre_spectrum(lam, comp, fibre, nb, nb_scale, star_norm):
    """The fibre spectrum (n, L): each component weighted by its seeing-convolved fibre fraction.

    ``comp`` (n, 3, L) are the bulge, disk and AGN spectra, ``fibre`` (n, S, 5) the fibre
    fractions of every slot per band; neighbour galaxies add a rescaled copy of their source
    galaxy (``nb_scale``), neighbour stars a blackbody (``star_norm``).
    """
    n = len(comp)
    n_nb = nb["x"].shape[1]
    model = np.zeros((n, len(lam)))
    for c in range(3):
        model += comp[:, c] * _fibre_profile(fibre[:, c], lam)
    total_comp = comp.sum(axis=1)
    for k in range(n_nb):
        a_k = _fibre_profile(fibre[:, 3 + k], lam)
        gal = np.flatnonzero(nb["kind"][:, k] == 1)
        if gal.size:
            model[gal] += total_comp[nb["source"][gal, k]] * (nb_scale[gal, k][:, None] * a_k[gal])
        star = np.flatnonzero(nb["kind"][:, k] == 2)
        if star.size:
            bb = _blackbody(lam[None, :], nb["t_star"][star, k][:, None])
            model[star] += bb * (star_norm[star, k][:, None] * a_k[star])
    return model
