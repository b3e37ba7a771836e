"""Neighbouring galaxies and stars in the cutouts, and the band fluxes of every slot."""

import numpy as np

from ._constants import NEIGHBOUR_EXTRA_RATE, NEIGHBOUR_RADIUS_PX, NEIGHBOUR_STAR_SHARE
from ._photometry import _filters
from ._templates import _blackbody, _wide_lam


def _draw_neighbours(rng, pop, mag_r, neighbour_fraction):
    """Neighbouring galaxies and stars in the cutouts (up to three per object)."""
    n = len(mag_r)
    max_nb = 3
    has = rng.random(n) < neighbour_fraction
    count = np.where(has, np.minimum(1 + rng.poisson(NEIGHBOUR_EXTRA_RATE, n), max_nb), 0)
    slot = np.arange(max_nb)[None, :]
    present = slot < count[:, None]
    star = rng.random((n, max_nb)) < NEIGHBOUR_STAR_SHARE
    kind = np.where(present, np.where(star, 2, 1), 0)
    r_lo, r_hi = NEIGHBOUR_RADIUS_PX
    radius = np.sqrt(rng.uniform(r_lo**2, r_hi**2, (n, max_nb)))
    angle = rng.uniform(0, 2 * np.pi, (n, max_nb))
    galaxies = np.flatnonzero(~pop["is_q"])
    source = rng.choice(galaxies if galaxies.size else np.arange(n), (n, max_nb))
    return {
        "kind": kind,
        "x": radius * np.cos(angle),
        "y": radius * np.sin(angle),
        "mag_r": mag_r[:, None] + rng.uniform(-1.5, 2.5, (n, max_nb)),
        "re_px": 10 ** rng.uniform(np.log10(1.2), np.log10(8.0), (n, max_nb)),
        "n": rng.uniform(0.7, 4.0, (n, max_nb)),
        "q": rng.uniform(0.3, 1.0, (n, max_nb)),
        "pa": rng.uniform(0, np.pi, (n, max_nb)),
        "source": source,
        "t_star": 10 ** rng.uniform(np.log10(3300.0), np.log10(9500.0), (n, max_nb)),
    }


def _slot_maggies(nb, comp_maggies, total_maggies, mag):
    """Band fluxes [maggies] of every slot of the cutouts (n, 3 + n_nb, 5).

    Slots 0-2 are the bulge, disk and AGN ``comp_maggies``; each neighbour is a rescaled copy
    of another galaxy of the block (``total_maggies``, ``mag`` of the block), or a star.
    Also returns the neighbour galaxies' flux scale and the stars' blackbody normalisation,
    both (n, n_nb).
    """
    n = len(mag)
    lam_w = _wide_lam()
    filt = _filters()
    n_nb = nb["x"].shape[1]
    maggies = np.zeros((n, 3 + n_nb, 5))
    maggies[:, :3] = comp_maggies
    nb_scale = np.zeros((n, n_nb))
    star_norm = np.zeros((n, n_nb))
    for k in range(n_nb):
        gal = nb["kind"][:, k] == 1
        src = nb["source"][:, k]
        nb_scale[:, k] = np.where(gal, 10 ** (-0.4 * (nb["mag_r"][:, k] - mag[src, 2])), 0.0)
        maggies[:, 3 + k] = total_maggies[src] * nb_scale[:, k][:, None]
        star = np.flatnonzero(nb["kind"][:, k] == 2)
        if star.size:
            bb = _blackbody(lam_w[None, :], nb["t_star"][star, k][:, None])
            r_maggies = filt[2].get_ab_maggies(bb, lam_w)
            star_norm[star, k] = 10 ** (-0.4 * nb["mag_r"][star, k]) / r_maggies
            for b, f in enumerate(filt):
                maggies[star, 3 + k, b] = f.get_ab_maggies(bb, lam_w) * star_norm[star, k]
    return maggies, nb_scale, star_norm
