"""Rest-frame templates of the stellar populations and the quasar.

The templates live on a log-lambda rest-frame grid and are computed once; :class:`_Sampler`
shifts them to each object's redshift. The wide linear grid carries spectra through the
SDSS filter curves.
"""

import math
from functools import lru_cache

import numpy as np

from ...utils._survey import SPECTRAL_LINES
from ._constants import C_KMS, HC_OVER_K, QSO_ALPHA_BLUE, QSO_ALPHA_RED, QSO_BREAK
from ._dust import _calzetti_k

_REST_LOGLAM0 = np.log10(700.0)
_REST_DLOG = 5e-5
_REST_N = int(np.ceil((np.log10(12600.0) - _REST_LOGLAM0) / _REST_DLOG)) + 1
_WIDE_STEP = 2.0
_WIDE_RANGE = (2900.0, 11200.0)  # covers every sdss2010 filter (u from 2939 A, z to 11141 A)
_SIGMA_V_GRID = np.arange(50.0, 401.0, 50.0)  # km/s


def _rest_lam():
    return 10.0 ** (_REST_LOGLAM0 + _REST_DLOG * np.arange(_REST_N))


def _wide_lam():
    return np.arange(_WIDE_RANGE[0], _WIDE_RANGE[1] + 0.5 * _WIDE_STEP, _WIDE_STEP)


def _blackbody(lam, t):
    """Planck f_lambda shape (arbitrary units)."""
    x = np.minimum(HC_OVER_K / (lam * t), 700.0)
    return lam**-5.0 / np.expm1(x)


def _step(lam, edge, width):
    """Smooth step: 1 blueward of ``edge``, 0 redward."""
    return 1.0 / (1.0 + np.exp(np.clip((lam - edge) / width, -60.0, 60.0)))


def _absorb(lam, lines, sigma_v=0.0):
    """Multiplicative Gaussian absorption lines ``(centre, EW, intrinsic sigma)``."""
    prof = np.ones_like(lam)
    for centre, ew, sig in lines:
        s = math.hypot(sig, centre * sigma_v / C_KMS)
        depth = min(ew / (math.sqrt(2 * math.pi) * s), 0.9)
        window = np.abs(lam - centre) < 8 * s
        prof[window] *= 1.0 - depth * np.exp(-0.5 * ((lam[window] - centre) / s) ** 2)
    return prof


def _normalise(lam, f, at):
    sel = np.abs(lam - at) < 50.0
    return f / f[sel].mean()


#: Absorption features of the old population: Ca II K, H, Balmer, G band, Mg b, Fe, Na D,
#: Ca triplet, and the Fe I/Sr II lines around Hdelta that make HdeltaA negative for old
#: populations (centre [A, vacuum], EW [A], intrinsic sigma [A]) [approx, Worthey et al. 1994
#: scale]. Single lines take their centre from the package's line table by name; the blends
#: (G band, Mg b, Fe 5270/5335, Na D, the Fe I/Sr II group) are this template's own centres.
_OLD_LINES = tuple(
    (SPECTRAL_LINES.get(centre, centre), ew, sigma)
    for centre, ew, sigma in (
        ("CaII_K", 12.0, 6.0), ("CaII_H", 10.0, 6.0), ("Hdelta", 1.5, 8.0), (4305.0, 5.0, 10.0),
        ("Hgamma", 1.5, 8.0), ("Hbeta", 2.0, 8.0), (5176.7, 5.0, 9.0), (5270.0, 2.5, 6.0),
        (5335.0, 1.8, 6.0), (5895.6, 3.5, 5.0), ("Halpha", 1.8, 8.0), ("CaII_8500", 1.4, 4.0),
        ("CaII_8544", 3.0, 4.0), ("CaII_8665", 2.5, 4.0), (4045.8, 1.8, 3.0), (4063.6, 1.2, 3.0),
        (4071.7, 1.0, 3.0), (4077.7, 1.0, 3.0), (4132.0, 1.2, 3.0), (4144.0, 1.2, 3.0),
        (4154.0, 1.0, 3.0),
    )
)  # fmt: skip
#: Balmer absorption series (centre, strength relative to Hdelta) of A/B-star populations.
_BALMER_ABS = tuple(
    (SPECTRAL_LINES[name], strength)
    for name, strength in (
        ("Hepsilon", 1.0), ("Hdelta", 1.0), ("Hgamma", 0.95), ("Hbeta", 0.85), ("Halpha", 0.6),
        ("H8", 0.9), ("H9", 0.75), ("H10", 0.6), ("H11", 0.45),
    )
)  # fmt: skip


def _old_template(lam, sigma_v):
    """Old (>1 Gyr) population: cool giants + turn-off stars, blanketing below 4000 A.

    Tuned to rest-frame AB u-g 1.78, g-r 0.80, r-i 0.39, i-z 0.23, Dn4000 1.96, HdeltaA -3.2
    (red-sequence values, e.g. Blanton & Moustakas 2009; Kauffmann et al. 2003).
    """
    t_cool, t_warm, t_hot = 3500.0, 4600.0, 6277.0
    ref = _blackbody(5500.0, t_warm)
    f = (
        _blackbody(lam, t_warm)
        + 1.891 * _blackbody(lam, t_cool) * ref / _blackbody(5500.0, t_cool)
        + 2.894 * _blackbody(lam, t_hot) * ref / _blackbody(5500.0, t_hot)
    )
    f *= 1.0 - 0.371 * _step(lam, 4000.0, 15.0)  # metal-line blanketing: the 4000 A break
    f *= 1.0 - 0.95 * _step(lam, 3300.0, 250.0)  # UV deficit of an old population
    f *= _absorb(lam, _OLD_LINES, sigma_v)
    f[lam < 912.0] = 0.0
    return _normalise(lam, f, 5500.0)


def _intermediate_template(lam):
    """0.1-1 Gyr population dominated by A stars: Balmer jump, strong Balmer absorption.

    Rest-frame u-g 0.94, g-r 0.27, Dn4000 1.31, HdeltaA 7.9.
    """
    ref = _blackbody(5500.0, 8500.0)
    f = _blackbody(lam, 8500.0) + 0.5 * _blackbody(lam, 5500.0) * ref / _blackbody(5500.0, 5500.0)
    f *= 1.0 - 0.45 * _step(lam, 3646.0, 20.0)  # Balmer jump
    f *= 1.0 - 0.1 * _step(lam, 4000.0, 15.0)
    lines = [(c, 10.0 * s, 14.0) for c, s in _BALMER_ABS] + [
        (SPECTRAL_LINES["CaII_K"], 3.0, 5.0),
        (5176.7, 1.0, 8.0),
    ]
    f *= _absorb(lam, lines)
    f[lam < 912.0] = 0.0
    return _normalise(lam, f, 5500.0)


def _young_template(lam):
    """<100 Myr population of O/B stars: blue power law f_lambda ~ lambda^-2.6, weak break.

    Rest-frame u-g 0.18, g-r -0.17, Dn4000 1.00, HdeltaA 3.5.
    """
    f = lam**-2.6
    f *= 1.0 - 0.45 * _step(lam, 3646.0, 20.0)
    f *= _absorb(lam, [(c, 4.0 * s, 12.0) for c, s in _BALMER_ABS])
    f[lam < 912.0] = 0.0
    return _normalise(lam, f, 5500.0)


def _agn_template(lam):
    """Quasar continuum (Vanden Berk et al. 2001) plus a small blue bump (Balmer continuum and
    Fe II, 2000-4000 A), normalised to 1 at 5100 A; zero below the Lyman limit."""
    nu_slope_blue = -(QSO_ALPHA_BLUE + 2.0)  # f_lambda ~ lambda^(-alpha_nu - 2)
    nu_slope_red = -(QSO_ALPHA_RED + 2.0)
    f = np.where(
        lam < QSO_BREAK,
        (lam / QSO_BREAK) ** nu_slope_blue,
        (lam / QSO_BREAK) ** nu_slope_red,
    )
    f = f * (1.0 + 0.3 * np.exp(-0.5 * ((lam - 3000.0) / 500.0) ** 2))
    f[lam < 912.0] = 0.0
    return _normalise(lam, f, 5100.0)


@lru_cache(maxsize=1)
def _templates():
    """Rest-frame templates on the log-lambda grid (computed once)."""
    lam = _rest_lam()
    old = np.stack([_old_template(lam, s) for s in _SIGMA_V_GRID])
    f32 = np.float32
    return {
        "lam": lam,
        "old": old.astype(f32),  # (len(_SIGMA_V_GRID), N): old population per dispersion
        "intermediate": _intermediate_template(lam).astype(f32),
        "young": _young_template(lam).astype(f32),
        "agn": _agn_template(lam).astype(f32),
        "calzetti": _calzetti_k(lam).astype(f32),
    }


class _Sampler:
    """Linear interpolation of rest-frame template rows at lambda_obs / (1 + z), per object."""

    def __init__(self, lam_obs, z):
        x = (np.log10(lam_obs)[None, :] - np.log10(1.0 + z)[:, None] - _REST_LOGLAM0) / _REST_DLOG
        x = np.clip(x, 0.0, _REST_N - 1.000001)
        self.i0 = x.astype(np.int32)
        self.frac = (x - self.i0).astype(np.float32)

    def __call__(self, table):
        t0 = table[self.i0]
        return t0 + self.frac * (table[self.i0 + 1] - t0)

    def rows(self, table2d, row):
        """Like ``__call__`` but each object picks its own row of ``table2d``."""
        r = row[:, None]
        t0 = table2d[r, self.i0]
        return t0 + self.frac * (table2d[r, self.i0 + 1] - t0)
