"""Distances and comoving volume of the MPA-JHU cosmology, tabulated once in redshift."""

from functools import lru_cache

import numpy as np

from ._constants import COSMO_H0, COSMO_OM0, MPC_CM


@lru_cache(maxsize=1)
def _cosmology_tables():
    """Luminosity and angular-diameter distance [Mpc] and dV/dz on a redshift grid."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=COSMO_H0, Om0=COSMO_OM0)
    z = np.linspace(0.0, 3.0, 3001)
    d_l = cosmo.luminosity_distance(z).value
    d_a = cosmo.angular_diameter_distance(z).value
    dvdz = cosmo.differential_comoving_volume(z).value
    return z, d_l, d_a, dvdz


def _lum_distance_cm(z):
    zz, d_l, _, _ = _cosmology_tables()
    return np.interp(z, zz, d_l) * MPC_CM


def _kpc_per_arcsec(z):
    zz, _, d_a, _ = _cosmology_tables()
    return np.interp(z, zz, d_a) * 1e3 / 206264.806
