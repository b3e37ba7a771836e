"""Attenuation curves: Calzetti et al. (2000) and Cardelli, Clayton & Mathis (1989)."""

import numpy as np

from ._constants import R_V_CALZETTI, R_V_MW


def _calzetti_k(lam):
    """Calzetti et al. (2000) starburst attenuation k(lambda) = A_lambda / E(B-V)_stars."""
    x = lam / 1e4
    xc = np.clip(x, 0.12, 2.2)
    blue = 2.659 * (-2.156 + 1.509 / xc - 0.198 / xc**2 + 0.011 / xc**3) + R_V_CALZETTI
    red = 2.659 * (-1.857 + 1.040 / xc) + R_V_CALZETTI
    k = np.where(xc < 0.63, blue, red)
    # Linear extrapolation below 1200 A with the slope at 1200 A; zero floor in the IR.
    slope = 2.659 * (
        -1.509 / 0.12**2 + 2 * 0.198 / 0.12**3 - 3 * 0.011 / 0.12**4
    )  # dk/dx at 0.12 micron
    k = np.where(x < 0.12, k + slope * (x - 0.12), k)
    return np.maximum(k, 0.0)


def _ccm_k(lam, r_v=R_V_MW):
    """Cardelli, Clayton & Mathis (1989) extinction A_lambda / E(B-V) for R_V = 3.1."""
    x = np.clip(1e4 / np.asarray(lam, dtype=np.float64), 0.3, 10.0)
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    ir = x < 1.1
    a[ir], b[ir] = 0.574 * x[ir] ** 1.61, -0.527 * x[ir] ** 1.61
    op = (x >= 1.1) & (x < 3.3)
    y = x[op] - 1.82
    a[op] = np.polyval([0.32999, -0.77530, 0.01979, 0.72085, -0.02427, -0.50447, 0.17699, 1.0], y)
    b[op] = np.polyval([-2.09002, 5.30260, -0.62251, -5.38434, 1.07233, 2.28305, 1.41338, 0.0], y)
    uv = (x >= 3.3) & (x < 8.0)
    xu = x[uv]
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb
    fuv = x >= 8.0
    xf = x[fuv] - 8.0
    a[fuv] = -1.073 - 0.628 * xf + 0.137 * xf**2 - 0.070 * xf**3
    b[fuv] = 13.670 + 4.257 * xf - 0.420 * xf**2 + 0.374 * xf**3
    return r_v * (a + b / r_v)
