"""Physics-based synthetic HiSS-Cube generator.

The synthetic cube stands in for real SDSS data on machines without it. Every object is built
from a small physical model rather than from noise with a trend: a stellar-mass function and
volume-limited redshifts pass through the SDSS target selection; star formation follows the
main sequence or a quenched population; stellar populations, dust, nebular lines, distance and
redshift give a spectral energy distribution; a bulge and a disk (and, for quasars, a point
source) spread that light over the sky; the 3" fibre sees only the seeing-convolved centre while
the image sees everything, through the real SDSS filter curves, with SDSS-like sky noise. The
MPA-JHU-like labels then carry a known per-object uncertainty, so the noise floor of the study
is known.

All constants below carry a comment with their source. ``[approx]`` marks values that are
representative rather than measured (see ``shared/docs/data-formats.md`` for the sourced ones).
"""

from __future__ import annotations

import math
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ._layout import (
    BAND_NAMES,
    IMAGE_UNIT_PER_NMGY,
    PIXEL_SCALE,
    wavelength_grid,
)

__all__ = ["make_synthetic_cube", "simulate_objects"]

# =============================================================================================
# Physical constants
# =============================================================================================
C_KMS = 299792.458  # speed of light [km/s]
C_AA = 2.99792458e18  # speed of light [Angstrom/s]
HC_OVER_K = 1.438777e8  # h c / k_B [Angstrom K]
H_PLANCK_C = 1.98644586e-8  # h c [erg Angstrom]
MPC_CM = 3.0856775814913673e24  # one megaparsec [cm]
#: The Sun's L_lambda at 5500 A [erg/s/A]: solar irradiance 1.87 W m^-2 nm^-1 at 550 nm
#: (ASTM E-490) times 4 pi (1 au)^2. Stellar luminosities below are in these units.
L_SUN_5500 = 5.26e29

# =============================================================================================
# Population (what SDSS targets)
# =============================================================================================
#: Cosmology of MPA-JHU (h=0.7, Om=0.3, OL=0.7); data-formats 2.3.
COSMO_H0, COSMO_OM0 = 70.0, 0.3
#: Stellar-mass function at z < 0.06, double Schechter (Baldry et al. 2012, MNRAS 421, 621):
#: log M*, alpha_1, phi_1, alpha_2, phi_2.
MASS_FUNCTION = (10.66, -0.35, 3.96e-3, -1.47, 0.79e-3)
LOG_MSTAR_RANGE = (9.0, 11.6)
#: SDSS MAIN galaxy sample: r_petro < 17.77 (Strauss et al. 2002); bright cut of the
#: fibre-saturation kind [approx].
MAIN_R_LIMIT, MAIN_R_BRIGHT = 17.77, 14.0
GALAXY_Z_RANGE = (0.02, 0.30)
#: SDSS quasar target selection, i < 19.1 for z < 3 (Richards et al. 2002).
QSO_I_LIMIT, QSO_I_BRIGHT = 19.1, 15.0
QSO_Z_RANGE = (0.3, 2.5)
#: Quasar luminosity: log(lambda L_5100 / erg/s) drawn from dN/dlog L ~ L^-0.9 above 10^44
#: (steep bright end of the quasar luminosity function; Richards et al. 2006) [approx].
QSO_LOG_L5100_RANGE, QSO_LF_SLOPE = (44.0, 47.0), 0.9
#: Star-forming main sequence at z ~ 0 from MPA-JHU (Renzini & Peng 2015, ApJ 801, L29):
#: log SFR = 0.76 log M* - 7.64, observed scatter ~0.3 dex (data-formats 5.3).
MS_SLOPE, MS_INTERCEPT, MS_SCATTER = 0.76, -7.64, 0.3
#: Redshift evolution of the main-sequence normalisation, SFR ~ (1+z)^3 around the SDSS
#: median redshift (Speagle et al. 2014; Whitaker et al. 2012) [approx].
MS_Z_EXPONENT, MS_Z_ANCHOR = 3.0, 0.05
#: Quenched galaxies lie 1-1.5 dex below the main sequence (Renzini & Peng 2015, Fig. 1).
QUENCHED_OFFSET_MEAN, QUENCHED_OFFSET_SD = 1.25, 0.3
#: Quenched fraction rising with mass (Peng et al. 2010; Baldry et al. 2006), logistic in log M*.
QUENCHED_FRACTION = (0.05, 0.85, 10.6, 0.3)  # floor, amplitude, centre, width
#: Mass-metallicity relation (Tremonti et al. 2004): 12+log(O/H) = a + b x + c x^2.
MZR = (-1.492, 1.847, -0.08026)
#: Dust: Garn & Best (2010) A_Halpha(M*) = 0.91 + 0.77 X + 0.11 X^2 - 0.09 X^3, X = log(M*/1e10),
#: scatter 0.28 mag; A_V = A_Halpha / 0.818 for the Cardelli et al. (1989) curve.
GARN_BEST = (0.91, 0.77, 0.11, -0.09)
GARN_BEST_SCATTER = 0.28
#: Stars see less dust than the gas: E(B-V)_stars = 0.44 E(B-V)_gas (Calzetti et al. 2000).
STARS_TO_GAS_EBV = 0.44
R_V_CALZETTI, R_V_MW = 4.05, 3.1
#: Galactic foreground E(B-V)_SFD at high latitude, lognormal [approx; Schlegel et al. 1998].
EBV_SFD_MEDIAN, EBV_SFD_LOGSIGMA = 0.03, 0.35

# =============================================================================================
# Stellar populations and lines
# =============================================================================================
#: Mass-to-light ratios per L_sun at 5500 A for the three analytic populations: young
#: (<100 Myr), intermediate (0.1-1 Gyr), old (>1 Gyr); BC03-like values [approx].
ML_YOUNG, ML_INTERMEDIATE, ML_OLD = 0.04, 0.35, 3.0
YOUNG_AGE_YR, INTERMEDIATE_AGE_YR = 1e8, 9e8
#: Kennicutt (1998): SFR [M_sun/yr] = 7.9e-42 L(Halpha) [erg/s] (the thesis outline's choice).
KENNICUTT_HALPHA = 7.9e-42
#: Case B recombination at 10^4 K (Storey & Hummer 1995): Halpha/Hbeta = 2.86 and the higher
#: Balmer lines relative to Hbeta.
BALMER_DECREMENT = 2.86
BALMER_RATIOS = {"Hgamma": 0.468, "Hdelta": 0.259, "Hepsilon": 0.159, "H8": 0.105}
#: Pettini & Pagel (2004): 12 + log(O/H) = 8.90 + 0.57 log([NII]6584/Halpha); the Tremonti
#: scale lies ~0.25 dex above the PP04 N2 scale (Kewley & Ellison 2008), and the N2 of star
#: formers saturates near -0.3.
PP04_N2, T04_TO_PP04, N2_MAX = (8.90, 0.57), -0.25, -0.3
#: Vacuum rest wavelengths as the SDSS pipeline uses them (data-formats 5.1) [A].
LINE_WAVELENGTHS = {
    "OII_3727": 3727.092, "OII_3730": 3729.875, "NeIII_3870": 3869.857, "H8": 3890.151,
    "Hepsilon": 3971.195, "Hdelta": 4102.892, "Hgamma": 4341.684, "Hbeta": 4862.683,
    "OIII_4960": 4960.295, "OIII_5008": 5008.240, "OI_6302": 6302.046, "NII_6550": 6549.859,
    "Halpha": 6564.614, "NII_6585": 6585.268, "SII_6718": 6718.294, "SII_6733": 6732.678,
}  # fmt: skip
NARROW_LINES = tuple(LINE_WAVELENGTHS)
#: Quasar template (Vanden Berk et al. 2001, AJ 122, 549): f_nu ~ nu^-0.44 below 5000 A and
#: nu^-2.45 above (hot dust); rest-frame equivalent widths [A] of the broad and narrow lines.
QSO_ALPHA_BLUE, QSO_ALPHA_RED, QSO_BREAK = -0.44, -2.45, 5000.0
QSO_BROAD_LINES = (
    ("Lyalpha", 1215.67, 80.0), ("NV", 1240.14, 13.0), ("SiIV", 1399.8, 8.1),
    ("CIV", 1549.06, 23.8), ("CIII]", 1908.73, 21.2), ("MgII", 2799.12, 32.3),
    ("Hdelta", 4102.89, 5.1), ("Hgamma", 4341.68, 12.6), ("Hbeta", 4862.68, 46.2),
    ("Halpha", 6564.61, 194.5),
)  # fmt: skip
QSO_NARROW_EW = {
    "OII_3727": 0.7, "OII_3730": 0.9, "NeIII_3870": 1.4, "OIII_4960": 4.4, "OIII_5008": 13.2,
    "NII_6550": 2.0, "NII_6585": 6.0, "SII_6718": 2.5, "SII_6733": 2.5, "OI_6302": 1.0,
}  # fmt: skip
#: Broad-line FWHM, lognormal around 4000 km/s (Shen et al. 2011) [approx]; Baldwin effect
#: EW ~ L^-0.15 (Baldwin 1977, Dietrich et al. 2002).
QSO_FWHM_KMS, QSO_BALDWIN = 4000.0, -0.15
#: Lyman-alpha forest transmission exp(-0.0036 (lambda_obs/1216)^3.46) (Madau 1995).
MADAU_TAU = (0.0036, 3.46)

# =============================================================================================
# SDSS instrument: imaging (data-formats 3.3, 4) and spectroscopy (3.2)
# =============================================================================================
#: SDSS-I/II fibre diameter 3" (MPA galspec page; data-formats 3.2).
FIBRE_DIAMETER_ARCSEC = 3.0
#: r-band seeing FWHM quartiles 1.30/1.43/1.58" (SDSS DR7 seeing page); other bands follow
#: Kolmogorov turbulence, FWHM ~ lambda^-0.2.
SEEING_R_MEDIAN, SEEING_LOG_SIGMA = 1.43, 0.148
SEEING_EXPONENT = -0.2
#: SDSS PSF: double Gaussian, the wing twice as wide with a tenth of the core's peak
#: (Stoughton et al. 2002, sect. 4.2).
PSF_WING_WIDTH, PSF_WING_PEAK = 2.0, 0.1
#: Dark-sky surface brightness [AB mag/arcsec^2]: r 20.86 is the DR7 median (data-formats 4),
#: u 22.05 from the real frame-u-004948 (26 counts x 0.00917 nMgy), g/i/z typical DR7 [approx].
SKY_MAG = {"u": 22.05, "g": 21.85, "r": 20.86, "i": 20.15, "z": 18.95}
#: CCD gain [e-/DN] and dark variance [DN^2], camcol averages of the frame datamodel tables
#: (HiSS-Cube config/ccd_gain.tsv, ccd_dark_variance.tsv).
GAIN = {"u": 1.67, "g": 3.85, "r": 4.74, "i": 5.15, "z": 4.62}
DARK_VARIANCE = {"u": 9.5, "g": 1.6, "r": 1.0, "i": 6.2, "z": 1.2}
#: Calibration [nMgy per DN]: u 0.00917 from the real frame (data-formats 3.3), others typical
#: of DR8+ frames [approx].
NMGY_PER_COUNT = {"u": 0.0092, "g": 0.0038, "r": 0.0048, "i": 0.0065, "z": 0.030}
#: Spectrograph resolution R = lambda / FWHM ~ 2000 (SDSS-I/II, 1800-2200).
SPEC_RESOLUTION = 2000.0
#: Spectroscopic photon budget: 2.5 m aperture less the central obstruction [cm^2] and the
#: usual 3 x 15 min exposure [s] (York et al. 2000); per-pixel read noise^2 of the
#: extraction [e-^2] [approx]. These set the wavelength dependence of the noise; its level is
#: then fixed by the survey depth below.
SPEC_AREA_CM2, SPEC_EXPTIME_S, SPEC_READ_VAR = 3.7e4, 2700.0, 60.0
#: Survey depth: SDSS-I/II plates are exposed until (S/N)^2 per pixel >= 15 at fibre magnitude
#: g = 20.2 (Stoughton et al. 2002); we put the median plate at 20 (the requirement plus a
#: typical margin [approx]), a flat-f_nu source, median over 4000-5500 A.
SPEC_SN2_AT_G20P2 = 20.0
#: Plate-to-plate spread of the depth (lognormal sigma of the photon budget) and of the sky.
SPEC_DEPTH_SCATTER, SPEC_SKY_SCATTER = 0.25, 0.15
#: Total throughput shape (atmosphere, telescope, fibre, spectrograph, CCD): peak, blue and red
#: half-power points and widths, dichroic dip at 6000 A [approx; Smee et al. 2013 Fig. 19].
SPEC_THROUGHPUT = (0.20, 4050.0, 150.0, 9200.0, 300.0)
#: Night-sky continuum in the 3" fibre [1e-17 erg/s/cm^2/A] at the given wavelengths [A],
#: tuned so that ugriz broad-band sky matches SKY_MAG once the lines are added [approx].
SKY_CONTINUUM = ((3800.0, 7.5), (4500.0, 6.0), (5500.0, 7.8), (6500.0, 8.5), (7500.0, 6.5),
                 (8500.0, 6.5), (9300.0, 7.0))  # fmt: skip
#: Bright natural and artificial sky lines [A vacuum, 1e-17 erg/s/cm^2 in the fibre]:
#: [OI] 5577, 6300, 6364, Na D and the Hg street-light lines [approx].
SKY_LINES = ((4047.7, 20.0), (4359.6, 40.0), (5462.3, 40.0), (5578.9, 250.0), (5891.6, 60.0),
             (5897.6, 60.0), (6302.0, 110.0), (6365.5, 35.0))  # fmt: skip
#: OH Meinel bands: wavelength windows [A] and total line flux per window [1e-17 erg/s/cm^2];
#: line positions inside a window are drawn once from a fixed seed (not a real line list).
OH_BANDS = ((6250, 6600, 250.0), (6820, 7050, 900.0), (7230, 7450, 1300.0),
            (7550, 7720, 700.0), (7740, 8030, 3000.0), (8270, 8560, 4000.0),
            (8750, 9050, 6000.0))  # fmt: skip
OH_SEED, OH_LINES_PER_BAND = 20240601, 30

# =============================================================================================
# Labels (MPA-JHU-like, data-formats 2.3-2.4)
# =============================================================================================
#: Uncertainty of the fibre SFR from Halpha (calibration + dust-correction) [dex], and of
#: the SFR from D4000 when lines are weak or not from star formation (Brinchmann et al. 2004).
LABEL_SIGMA_LINES, LABEL_SIGMA_D4000 = 0.15, 0.8
#: Uncertainty of the outside-fibre SFR from colours (Salim et al. 2007) for blue and red
#: outskirts [dex].
LABEL_SIGMA_OUT_BLUE, LABEL_SIGMA_OUT_RED = 0.35, 0.85
#: Model floor and clipping of the P16-P84 half width [dex]; real values 0.2-1.1
#: (data-formats 2.4). Per-object spread (lognormal sigma) of the width.
LABEL_SIGMA_FLOOR, LABEL_SIGMA_RANGE, LABEL_SIGMA_SPREAD = 0.08, (0.12, 1.15), 0.2
#: Quasar hosts: SFR from a spectrum dominated by the AGN [dex] [approx].
LABEL_SIGMA_QSO = (0.55, 0.95)
#: FLAG=2 ("aperture correction failed"): bias [dex] and width inflation [approx]; FLAG=1 is
#: the -99 "no estimate" sentinel. Share of FLAG=1 among flagged objects.
FLAG2_BIAS_MEAN, FLAG2_BIAS_SD, FLAG2_WIDTH_FACTOR = -0.4, 0.5, (1.5, 2.5)
FLAG1_SHARE = 0.4
SENTINEL = -99.0
#: MODE is quantised to 0.05 dex; ENTROPY = -(differential entropy + ln 100), i.e. the
#: entropy sum p ln p of the likelihood on a 0.01 dex grid, which reproduces MPA's observed
#: -4.1 ... -6.4 (data-formats 2.3) [derived].
MODE_STEP, ENTROPY_GRID = 0.05, 0.01

# =============================================================================================
# Geometry and rendering
# =============================================================================================
#: Half-light radii: Shen et al. (2003) late types R = 0.1 M^0.14 (1 + M/3.98e10)^0.25 kpc,
#: early types R = 2.88e-6 M^0.56 kpc (M in M_sun); lognormal scatter [dex].
SHEN_LATE = (0.1, 0.14, 0.39, 3.98e10)
SHEN_EARLY = (2.88e-6, 0.56)
SIZE_SCATTER_DEX = 0.2
#: Intrinsic thickness of disks (inclined disks get axis ratio sqrt(cos^2 i (1-q0^2) + q0^2)).
DISK_Q0 = 0.2
CUTOUT = 64
_PAD = 16
_NPAD = CUTOUT + 2 * _PAD
#: The object sits at cutout pixel (32, 32) plus a sub-pixel offset (pixel centres at integers).
CUTOUT_CENTRE = 32.0
#: Neighbours: 1 + Poisson(0.35) objects, 7-29 px from the centre, a third of them stars.
NEIGHBOUR_EXTRA_RATE, NEIGHBOUR_RADIUS_PX, NEIGHBOUR_STAR_SHARE = 0.35, (7.0, 29.0), 0.35
#: Synthetic plate numbering: SDSS-I/II plates start at 266 and carry 640 fibres.
FIRST_PLATE, FIBRES_PER_PLATE, FIRST_MJD = 266, 640, 51578

# =============================================================================================
# Grids, tables and caches
# =============================================================================================
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
#: populations (centre [A], EW [A], intrinsic sigma [A]) [approx, Worthey et al. 1994 scale].
_OLD_LINES = (
    (3934.78, 12.0, 6.0), (3969.59, 10.0, 6.0), (4102.89, 1.5, 8.0), (4305.0, 5.0, 10.0),
    (4341.68, 1.5, 8.0), (4862.68, 2.0, 8.0), (5176.7, 5.0, 9.0), (5270.0, 2.5, 6.0),
    (5335.0, 1.8, 6.0), (5895.6, 3.5, 5.0), (6564.61, 1.8, 8.0), (8500.4, 1.4, 4.0),
    (8544.4, 3.0, 4.0), (8664.5, 2.5, 4.0), (4045.8, 1.8, 3.0), (4063.6, 1.2, 3.0),
    (4071.7, 1.0, 3.0), (4077.7, 1.0, 3.0), (4132.0, 1.2, 3.0), (4144.0, 1.2, 3.0),
    (4154.0, 1.0, 3.0),
)  # fmt: skip
#: Balmer absorption series (centre, strength relative to Hdelta) of A/B-star populations.
_BALMER_ABS = ((3971.2, 1.0), (4102.89, 1.0), (4341.68, 0.95), (4862.68, 0.85), (6564.61, 0.6),
               (3890.15, 0.9), (3836.47, 0.75), (3798.98, 0.6), (3771.7, 0.45))  # fmt: skip


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
        (3934.78, 3.0, 5.0),
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


@lru_cache(maxsize=1)
def _filters():
    """The real SDSS filter curves (speclite ``sdss2010-*``, Doi et al. 2010, airmass 1.3)."""
    import speclite.filters

    return speclite.filters.load_filters("sdss2010-*")


@lru_cache(maxsize=1)
def _band_lambda_eff():
    return np.array([f.effective_wavelength.value for f in _filters()])


@lru_cache(maxsize=1)
def _line_weight_table():
    """Maggies per unit line flux [erg/s/cm^2] at each wavelength of a fine grid, per band.

    A line of flux F at lambda adds F * lambda R(lambda) / Z to the maggies (photon-weighted
    convolution); Z is calibrated against speclite on a flat spectrum so the two agree.
    """
    from scipy.integrate import trapezoid

    lam = np.arange(2800.0, 11300.0, 0.5)
    out = np.zeros((len(lam), 5))
    flat_lam = np.arange(2900.0, 11200.0, 1.0)
    for b, f in enumerate(_filters()):
        w = f.wavelength
        r = f.response
        z = trapezoid(r * w, w) / f.get_ab_maggies(np.ones_like(flat_lam), flat_lam)
        out[:, b] = np.interp(lam, w, r, left=0.0, right=0.0) * lam / z
    return lam, out


def _line_maggies(lam_obs, flux):
    """Maggies of emission lines ``flux`` (n, m) at observed wavelengths ``lam_obs`` (n, m)."""
    grid, table = _line_weight_table()
    out = np.zeros((*lam_obs.shape[:-1], 5))
    for b in range(5):
        out[..., b] = np.sum(flux * np.interp(lam_obs, grid, table[:, b]), axis=-1)
    return out


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


@lru_cache(maxsize=1)
def _kcorrection_tables():
    """Band maggies of each template per unit luminosity, versus redshift, for the selection.

    Galaxies: r-band maggies of 1 L_sun at 5500 A of the old/intermediate/young templates;
    quasars: i-band maggies of L_lambda(5100) = 1 erg/s/A of the AGN template.
    """
    tpl = _templates()
    lam_w = _wide_lam()
    filt = _filters()
    zg = np.linspace(GALAXY_Z_RANGE[0] - 0.005, GALAXY_Z_RANGE[1] + 0.005, 60)
    s = _Sampler(lam_w, zg)
    norm = L_SUN_5500 / (4 * np.pi * _lum_distance_cm(zg) ** 2 * (1 + zg))
    gal = {
        name: filt[2].get_ab_maggies(table * norm[:, None], lam_w)
        for name, table in (
            ("old", s(tpl["old"][2])),
            ("intermediate", s(tpl["intermediate"])),
            ("young", s(tpl["young"])),
        )
    }
    zq = np.linspace(QSO_Z_RANGE[0] - 0.01, QSO_Z_RANGE[1] + 0.01, 120)
    sq = _Sampler(lam_w, zq)
    normq = 1.0 / (4 * np.pi * _lum_distance_cm(zq) ** 2 * (1 + zq))
    qso = filt[3].get_ab_maggies(sq(tpl["agn"]) * normq[:, None], lam_w)
    return zg, gal, zq, qso


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


@lru_cache(maxsize=1)
def _psf_core_sigma_per_fwhm():
    """Core sigma of the double-Gaussian PSF per unit FWHM of the combined profile."""
    from scipy.optimize import brentq

    def half(r):
        return (
            np.exp(-0.5 * r**2) + PSF_WING_PEAK * np.exp(-0.5 * (r / PSF_WING_WIDTH) ** 2)
        ) - 0.5 * (1 + PSF_WING_PEAK)

    return 1.0 / (2.0 * brentq(half, 0.5, 3.0))


# =============================================================================================
# Population
# =============================================================================================
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


def _assign_types_and_flags(rng, n, quasar_fraction, flagged_fraction):
    """Exact numbers of quasars and flagged objects, stratified so that FLAG=0 and each flagged
    kind keep the quasar fraction."""
    n_flagged = round(flagged_fraction * n)
    n_flag1 = round(FLAG1_SHARE * n_flagged)
    flag = np.zeros(n, dtype=np.int8)
    flag[:n_flag1] = 1
    flag[n_flag1:n_flagged] = 2
    is_q = np.zeros(n, dtype=bool)
    for lo, hi in ((0, n_flag1), (n_flag1, n_flagged), (n_flagged, n)):
        k = round(quasar_fraction * (hi - lo))
        is_q[lo + rng.choice(hi - lo, k, replace=False)] = True
    perm = rng.permutation(n)
    return is_q[perm], flag[perm]


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


# =============================================================================================
# Spectral energy distributions
# =============================================================================================
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
    cont_ha = np.interp(6564.6, tpl["lam"], tpl["old"][2]) * pop["L_bulge"] * L_SUN_5500
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


def _component_spectra(pop, lam):
    """Observed-frame f_lambda [erg/s/cm^2/A] of the bulge, disk and AGN components on ``lam``.

    Returns float32 (n, 3, L): the stellar continua with dust, distance, redshift, Galactic
    foreground and (for quasars) the forest, plus the quasars' broad lines. Narrow lines are
    added separately (on the cube grid as pixel-integrated profiles, analytically for
    photometry).
    """
    tpl = _templates()
    z = pop["z"]
    n = len(z)
    smp = _Sampler(lam, z)
    d_l = _lum_distance_cm(z)
    f32 = np.float32
    kz = (L_SUN_5500 / (4 * np.pi * d_l**2 * (1 + z)))[:, None]
    k_calz = smp(tpl["calzetti"])
    c_att = f32(-0.4 * np.log(10.0) / R_V_CALZETTI)
    att_s = np.exp(c_att * pop["av_stars"].astype(f32)[:, None] * k_calz)
    mw_k = _ccm_k(lam).astype(f32)[None, :]
    mw = np.exp(f32(-0.4 * np.log(10.0)) * pop["ebv_sfd"].astype(f32)[:, None] * mw_k)
    common = mw * _igm_transmission(lam, z, pop["is_q"]).astype(f32)
    # Old population at the velocity dispersion of the object (nearest template).
    row = np.argmin(np.abs(pop["sigma_v"][:, None] - _SIGMA_V_GRID[None, :]), axis=1)
    out = np.empty((n, 3, len(lam)), dtype=f32)
    out[:, 0] = smp.rows(tpl["old"], row) * att_s
    out[:, 0] *= (pop["L_bulge"][:, None] * kz).astype(f32) * common
    disk = smp(tpl["old"][0]) * (pop["L_disk_old"][:, None] * kz).astype(f32)
    disk += smp(tpl["intermediate"]) * (pop["L_inter"][:, None] * kz).astype(f32)
    disk += smp(tpl["young"]) * (pop["L_young"][:, None] * kz).astype(f32)
    out[:, 1] = disk * att_s * common
    out[:, 2] = 0.0
    q = np.flatnonzero(pop["is_q"])
    if q.size:
        l5100 = 10.0 ** pop["log_l5100"][q] / 5100.0
        sq = _Sampler(lam, z[q])
        att_q = np.exp(c_att * pop["av_agn"][q].astype(f32)[:, None] * sq(tpl["calzetti"]))
        shape = att_q * common[q]
        geo = kz[q, 0] / L_SUN_5500  # 1 / (4 pi d_L^2 (1+z)), float64: far below float32 range
        agn = sq(tpl["agn"]) * shape * (l5100 * geo).astype(f32)[:, None]
        agn += _broad_lines(pop, q, lam, shape, geo)
        out[q, 2] = agn
    return out


def _igm_transmission(lam, z, is_q):
    """Lyman-alpha forest (Madau 1995) for quasars; 1 elsewhere."""
    t = np.ones((len(z), 1))
    if not np.any(is_q & (z > 2.1)):
        return t
    lam_rest = lam[None, :] / (1 + z[:, None])
    tau = MADAU_TAU[0] * (lam[None, :] / 1216.0) ** MADAU_TAU[1]
    trans = np.where((lam_rest < 1216.0) & is_q[:, None], np.exp(-tau), 1.0)
    return trans


def _broad_lines(pop, q, lam, shape, geo):
    """Broad emission lines of the quasars ``q`` on grid ``lam`` (observed f_lambda).

    ``shape`` (k, L) is the attenuation along the line of sight (taken at the line centre),
    ``geo`` (k,) the factor 1 / (4 pi d_L^2 (1+z)).
    """
    tpl = _templates()
    z = pop["z"][q]
    l5100 = 10.0 ** pop["log_l5100"][q] / 5100.0
    out = np.zeros((len(q), len(lam)), dtype=np.float32)
    dl = lam[1] - lam[0]
    fwhm = pop["broad_fwhm"][q]
    ew_scale = pop["broad_ew_scale"][q] * (10.0 ** (pop["log_l5100"][q] - 45.0)) ** QSO_BALDWIN
    for _, lam0, ew in QSO_BROAD_LINES:
        lam_obs = lam0 * (1 + z)
        cont_rest = l5100 * np.interp(lam0, tpl["lam"], tpl["agn"])
        flux = ew * ew_scale * cont_rest * (1 + z) * geo  # L / (4 pi d_L^2) [erg/s/cm^2]
        sigma = np.hypot(lam_obs * fwhm / C_KMS / 2.3548, lam_obs / (2.3548 * SPEC_RESOLUTION))
        inside = np.flatnonzero((lam_obs + 6 * sigma > lam[0]) & (lam_obs - 6 * sigma < lam[-1]))
        if not inside.size:
            continue
        prof = _binned_gaussian(lam, dl, lam_obs[inside], sigma[inside])
        ci = np.clip(np.searchsorted(lam, lam_obs[inside]), 0, len(lam) - 1)
        att = shape[inside, ci]
        out[inside] += (prof * (flux[inside] * att)[:, None]).astype(np.float32)
    return out


def _binned_gaussian(lam, dl, centre, sigma):
    """Unit-flux Gaussians integrated over pixels of width ``dl`` [1/A], shape (k, L)."""
    from scipy.special import erf

    s = np.sqrt(2.0) * sigma[:, None]
    hi = erf((lam[None, :] + 0.5 * dl - centre[:, None]) / s)
    lo = erf((lam[None, :] - 0.5 * dl - centre[:, None]) / s)
    return 0.5 * (hi - lo) / dl


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


# =============================================================================================
# Images
# =============================================================================================
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


# =============================================================================================
# Neighbours
# =============================================================================================
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


# =============================================================================================
# Labels
# =============================================================================================
def _split_normal_quantile(p, mode, s_lo, s_hi):
    from scipy.special import ndtri

    p = np.asarray(p)
    tot = s_lo + s_hi
    left = p < s_lo / tot
    q_left = mode + s_lo * ndtri(np.clip(p * tot / (2 * s_lo), 1e-12, 1 - 1e-12))
    q_right = mode + s_hi * ndtri(np.clip((p * tot - s_lo + s_hi) / (2 * s_hi), 1e-12, 1 - 1e-12))
    return np.where(left, q_left, q_right)


def _draw_labels(rng, true_log_sfr, sigma, skew, flag):
    """MPA-JHU-like posterior summaries around the true log SFR.

    The likelihood is a split normal with left/right widths ``sigma * skew`` and
    ``sigma / skew``; its mean (AVG) is the truth displaced by a draw from the same shape, so
    the truth lies inside P16-P84 about 68% of the time. FLAG=2 labels are biased and wider;
    FLAG=1 rows carry the -99 sentinels.
    """
    n = len(true_log_sfr)
    sigma = np.array(sigma, dtype=np.float64)
    skew = np.array(skew, dtype=np.float64)
    bias = np.zeros(n)
    f2 = flag == 2
    sigma[f2] *= rng.uniform(*FLAG2_WIDTH_FACTOR, f2.sum())
    skew[f2] = np.sqrt(rng.uniform(1.0, 4.0, f2.sum()))
    bias[f2] = rng.normal(FLAG2_BIAS_MEAN, FLAG2_BIAS_SD, f2.sum())
    s_lo, s_hi = sigma * skew, sigma / skew
    shift = np.sqrt(2 / np.pi) * (s_hi - s_lo)  # mean - mode of the split normal
    draw = _split_normal_quantile(rng.random(n), 0.0, s_lo, s_hi) - shift  # zero mean
    avg = true_log_sfr + bias - draw
    mode = avg - shift
    out = {
        "AVG": avg,
        "ENTROPY": -(np.log((s_lo + s_hi) * np.sqrt(np.pi / 2)) + 0.5 - np.log(ENTROPY_GRID)),
        "FLAG": flag.astype(np.float64),
        "MEDIAN": _split_normal_quantile(0.5, mode, s_lo, s_hi),
        "MODE": np.round(mode / MODE_STEP) * MODE_STEP,
        "P16": _split_normal_quantile(0.15865525, mode, s_lo, s_hi),
        "P2P5": _split_normal_quantile(0.025, mode, s_lo, s_hi),
        "P84": _split_normal_quantile(0.84134475, mode, s_lo, s_hi),
        "P97P5": _split_normal_quantile(0.975, mode, s_lo, s_hi),
    }
    f1 = flag == 1
    for k in out:
        if k == "FLAG":
            continue
        out[k] = np.where(f1, 0.0 if k == "ENTROPY" else SENTINEL, out[k])
    return out


# =============================================================================================
# One block of objects
# =============================================================================================
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


def _simulate_block(rng, is_q, flag, first_index, *, neighbour_fraction, noise):
    """Simulate one block: objects of the given types (``is_q``) and label flags."""
    # Objects without any usable pixel in a window give NaN medians: expected, not news.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return _simulate_block_impl(
            rng, is_q, flag, first_index, neighbour_fraction=neighbour_fraction, noise=noise
        )


def _simulate_block_impl(rng, is_q, flag, first_index, *, neighbour_fraction, noise):
    n = len(is_q)
    lam = wavelength_grid(0)
    dl = lam[1] - lam[0]
    lam_w = _wide_lam()
    filt = _filters()
    # Noise draws come from their own stream, so noise=False gives exactly the noiseless
    # version of the noisy block (same objects, conditions, masks and errors).
    noise_rng = rng.spawn(1)[0]
    pop = _draw_population(rng, is_q)
    pop["broad_fwhm"] = QSO_FWHM_KMS * 10 ** rng.normal(0.0, 0.15, n)
    pop["broad_ew_scale"] = 10 ** rng.normal(0.0, 0.15, n)
    geo = _draw_geometry(rng, pop)
    lum_sf, lum_lin, lum_agn = _line_luminosities(pop, rng)
    lam_lines, f_lines, s_lines = _observed_lines(pop, lum_sf, lum_lin, lum_agn)

    # Photometry of each component: continuum through speclite on a wide grid, narrow lines
    # analytically through the same filter curves.
    wide = _component_spectra(pop, lam_w)
    comp_maggies = np.empty((n, 3, 5))
    for b, f in enumerate(filt):
        comp_maggies[:, :, b] = f.get_ab_maggies(wide, lam_w)
    del wide
    for c in range(3):
        comp_maggies[:, c] += _line_maggies(lam_lines, f_lines[:, c])
    total_maggies = comp_maggies.sum(axis=1)
    mag = -2.5 * np.log10(np.maximum(total_maggies, 1e-30))

    # Component spectra on the cube grid, with the narrow lines.
    comp = _component_spectra(pop, lam)
    for c in range(3):
        view = comp[:, c]  # a view: _add_lines writes into comp
        _add_lines(view, lam, lam_lines, f_lines[:, c], s_lines[:, c], half_width=30)

    # Neighbours: a rescaled copy of another galaxy of the block, or a star.
    nb = _draw_neighbours(rng, pop, mag[:, 2], neighbour_fraction)
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

    images, image_errors, fibre = _render_images(noise_rng, pop, geo, maggies, nb, noise)

    # The fibre spectrum: each component weighted by its seeing-convolved fibre fraction.
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
    del comp

    # Spectroscopic noise: photon noise of object and sky, read noise, sky-subtraction residuals.
    _, sky_cont, sky_lines, cpf = _spectrograph()
    t_fac = np.exp(rng.normal(0.0, SPEC_DEPTH_SCATTER, n))[:, None]
    sky_fac = np.exp(rng.normal(0.0, SPEC_SKY_SCATTER, n))[:, None]
    k_counts = cpf[None, :] * t_fac
    sky = (sky_cont + sky_lines)[None, :] * sky_fac
    var = (np.maximum(model, 0.0) + sky) * k_counts + SPEC_READ_VAR
    sigma = np.sqrt(var) / k_counts
    sigma = np.sqrt(sigma**2 + (0.015 * sky_lines[None, :] * sky_fac) ** 2)
    # Masked pixels: bright sky-line cores, bad runs (cosmic rays, bad columns) and,
    # occasionally, a missing half of a camera.
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
    flux = model.copy()
    if noise:
        flux += sigma * noise_rng.standard_normal(flux.shape)
        junk = mask & (noise_rng.random(flux.shape) < 0.5)
        flux[junk] += 3 * sigma[junk] * noise_rng.standard_normal(int(junk.sum()))
    spec_err = np.where(mask, np.nan, sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        sn_median = np.nanmedian(np.where(mask, np.nan, flux / sigma), axis=1)

    # Line measurements that set the label width: Halpha in the fibre.
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
        ew_ha = np.where(in_range, ha_fib / cont_ha / (1 + pop["z"]), np.nan)
    dn4000 = _dn4000(lam, model, pop["z"])

    # Labels: the MPA-JHU-like total SFR posterior.
    w_in = np.clip(a_disk_ha, 0.0, 1.0)
    sf_lines = in_range & (ha_sn > 3) & (ha_sf > 0.5 * ha_fib) & ~pop["quenched"]
    sig_fib = np.where(
        sf_lines,
        np.hypot(LABEL_SIGMA_LINES, 1.5 * 0.434 / np.maximum(ha_sn, 1e-3)),
        LABEL_SIGMA_D4000,
    )
    sig_out = np.where(pop["quenched"], LABEL_SIGMA_OUT_RED, LABEL_SIGMA_OUT_BLUE)
    label_sigma = np.sqrt(
        (w_in * sig_fib) ** 2 + ((1 - w_in) * sig_out) ** 2 + LABEL_SIGMA_FLOOR**2
    ) * np.exp(rng.normal(0.0, LABEL_SIGMA_SPREAD, n))
    label_sigma = np.where(is_q, rng.uniform(*LABEL_SIGMA_QSO, n), label_sigma)
    label_sigma = np.clip(label_sigma, *LABEL_SIGMA_RANGE)
    skew = np.where(sf_lines & ~is_q, np.exp(rng.normal(0.0, 0.05, n)), np.sqrt(1.3 / 0.7))
    labels = _draw_labels(rng, pop["log_sfr"], label_sigma, skew, flag)

    # Tables.
    gidx = first_index + np.arange(n)
    plate = FIRST_PLATE + gidx // FIBRES_PER_PLATE
    mjd = FIRST_MJD + (plate * 37) % 3000
    fiber = gidx % FIBRES_PER_PLATE + 1
    ra = rng.uniform(120.0, 240.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(0.0, np.sin(np.radians(60.0)), n)))
    z_err = np.where(is_q, 10 ** rng.uniform(-3.5, -2.8, n), 10 ** rng.uniform(-5.2, -4.5, n))
    z_err = z_err * (1 + pop["z"])
    starburst = sf_lines & (ew_ha > 50)
    subclass = np.select(
        [is_q, starburst, sf_lines, pop["quenched"] & (ha_sn > 5) & (ew_ha > 1.0)],
        ["BROADLINE", "STARBURST", "STARFORMING", "AGN"],
        "",
    )
    cls = np.where(is_q, "QSO", "GALAXY")
    spectrum_table = pd.DataFrame(
        {
            "PLATEID": plate.astype(np.int32),
            "MJD": mjd.astype(np.int32),
            "FIBERID": fiber.astype(np.int32),
            "PLUG_RA": ra,
            "PLUG_DEC": dec,
            "TAI": (mjd + 0.15 + 0.2 * rng.random(n)) * 86400.0,
            "RA": ra,
            "DEC": dec,
            "Z": pop["z"] + z_err * rng.standard_normal(n),
            "Z_ERR": z_err,
            "SUBCLASS": subclass,
            "TARGETTYPE": cls,
            "SPECTROTYPE": cls,
            "SN_MEDIAN": sn_median,
            "CLASS": cls,
            "V_DISP": pop["sigma_v"] * (1 + 0.08 * rng.standard_normal(n)),
            "E_BV_SFD": pop["ebv_sfd"],
            **labels,
        }
    )
    main_r = comp_maggies[:, :, 2]
    fibre_r = np.sum(main_r * fibre[:, :3, 2], axis=1)
    bright = np.argmin(np.where(nb["kind"] > 0, nb["mag_r"], np.inf), axis=1)
    has_nb = nb["kind"].max(axis=1) > 0
    rows = np.arange(n)
    nb_r = np.sum(maggies[:, 3:, 2] * (nb["kind"] > 0), axis=1)
    target = {
        "object_type": np.where(is_q, "quasar", "galaxy"),
        "sf_class": np.where(
            is_q, "quasar", np.where(pop["quenched"], "quenched", "star-forming")
        ),
        "true_log_sfr": pop["log_sfr"],
        "true_log_sfr_fibre": pop["log_sfr"] + np.log10(np.maximum(a_disk_ha, 1e-6)),
        "true_log_mstar": pop["log_m"],
        "true_redshift": pop["z"],
        "true_dust_av": pop["av_gas"],
        "true_dust_av_stars": pop["av_stars"],
        "true_log_l5100": pop["log_l5100"],
        "true_dn4000": dn4000,
        "true_halpha_flux": ha_fib,
        "true_halpha_ew": ew_ha,
        "true_halpha_sn": ha_sn,
        "label_sigma": np.where(flag == 1, np.nan, 0.5 * (labels["P84"] - labels["P16"])),
    }
    for b, band in enumerate(BAND_NAMES):
        target[f"true_mag_{band}"] = mag[:, b]
    target.update(
        {
            "true_fibre_mag_r": -2.5 * np.log10(np.maximum(fibre_r, 1e-30)),
            "fibre_fraction": fibre_r / main_r.sum(axis=1),
            "true_bulge_fraction_r": main_r[:, 0] / main_r.sum(axis=1),
            "true_agn_fraction_r": main_r[:, 2] / main_r.sum(axis=1),
            "true_re_disk_arcsec": geo["re_disk_arcsec"],
            "true_re_bulge_arcsec": geo["re_bulge_arcsec"],
            "true_sersic_n_bulge": geo["n_bulge"],
            "true_axis_ratio_disk": geo["q_disk"],
            "true_seeing_r": geo["seeing_r"],
            "centre_x": geo["centre_x"],
            "centre_y": geo["centre_y"],
            "n_neighbours": (nb["kind"] > 0).sum(axis=1).astype(np.int64),
            "neighbour_type": np.where(
                has_nb, np.array(["", "galaxy", "star"])[nb["kind"][rows, bright]], ""
            ),
            "neighbour_x": np.where(has_nb, nb["x"][rows, bright], np.nan),
            "neighbour_y": np.where(has_nb, nb["y"][rows, bright], np.nan),
            "neighbour_mag_r": np.where(has_nb, nb["mag_r"][rows, bright], np.nan),
            "neighbour_flux_ratio_r": nb_r / main_r.sum(axis=1),
            "neighbour_fibre_fraction_r": np.sum(
                maggies[:, 3:, 2] * fibre[:, 3:, 2] * (nb["kind"] > 0), axis=1
            )
            / (fibre_r + np.sum(maggies[:, 3:, 2] * fibre[:, 3:, 2] * (nb["kind"] > 0), axis=1)),
        }
    )
    target_table = pd.DataFrame(target)
    unit = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float64)
    return {
        "images": (images * unit[None, :, None, None]).astype(np.float32),
        "image_errors": (image_errors * unit[None, :, None, None]).astype(np.float32),
        "spectra": flux.astype(np.float32),
        "spectrum_errors": spec_err.astype(np.float32),
        "spectrum_table": spectrum_table,
        "target_table": target_table,
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


# =============================================================================================
# Public API
# =============================================================================================
def simulate_objects(
    n,
    *,
    random_state=None,
    flagged_fraction=0.2,
    quasar_fraction=1 / 11,
    neighbour_fraction=0.15,
    noise=True,
    first_index=0,
):
    """Simulate SDSS galaxies and quasars: cutouts, fibre spectra and MPA-JHU-like labels.

    Parameters
    ----------
    n : int
        Number of objects.
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seed; the same seed gives the same arrays and tables.
    flagged_fraction : float, default=0.2
        Fraction of objects with FLAG != 0 labels (40% of them FLAG=1 with -99 sentinels,
        60% FLAG=2 with biased, wider labels).
    quasar_fraction : float, default=1/11
        Fraction of quasars, the same among FLAG=0 and flagged objects.
    neighbour_fraction : float, default=0.15
        Fraction of cutouts with one to three neighbouring galaxies or stars.
    noise : bool, default=True
        Add image and spectrum noise. The noise comes from its own random stream, so with
        False the arrays are exactly the noiseless models of the same objects (same
        conditions, masks, errors and labels), which tests use to compare the two modalities
        and to check the errors.
    first_index : int, default=0
        Index of the first object, which numbers the synthetic plates and fibres.

    Returns
    -------
    dict
        ``images``, ``image_errors``: float32 (n, 5, 64, 64), band order u, g, r, i, z, in
        cube units (nanomaggies times ``IMAGE_UNIT_PER_NMGY[band]``), errors the true 1-sigma;
        ``spectra``, ``spectrum_errors``: float32 (n, 4620) f_lambda [erg/s/cm^2/A] on
        ``wavelength_grid(0)``, masked pixels with error NaN (flux kept);
        ``spectrum_table``: DataFrame, one row per object, with the SDSS header keys
        (PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC, TAI), MPA-JHU gal_info-like columns
        (RA, DEC, Z, Z_ERR, SUBCLASS, TARGETTYPE, SPECTROTYPE, SN_MEDIAN, V_DISP, E_BV_SFD),
        CLASS and the total-SFR columns AVG, ENTROPY, FLAG, MEDIAN, MODE, P16, P2P5, P84, P97P5;
        ``target_table``: DataFrame with ``object_type``, ``sf_class`` and the truth
        (``true_log_sfr``, ``true_log_mstar``, ``true_redshift``, ``true_dust_av``,
        ``true_mag_*``, ``fibre_fraction``, ...), ``label_sigma`` and the neighbour record
        (``n_neighbours``, ``neighbour_x``/``neighbour_y`` offsets of the brightest neighbour
        from the object's centre ``centre_x``/``centre_y`` in zoom-0 pixels, NaN when none,
        ``neighbour_mag_r``, ``neighbour_type``).

    See Also
    --------
    make_synthetic_cube : Write a whole synthetic HiSS-Cube file.

    Notes
    -----
    Population: log M* from the Baldry et al. (2012) mass function, redshifts uniform in
    comoving volume (FlatLambdaCDM, H0=70, Om0=0.3), kept if r < 17.77 (SDSS MAIN); quasars
    with i < 19.1, 0.3 < z < 2.5. Star formers lie on the Renzini & Peng (2015) main sequence,
    log SFR = 0.76 log M* - 7.64 (0.3 dex scatter, normalisation rising as (1+z)^3); quenched
    galaxies 1-1.5 dex below, their fraction rising with mass.

    Spectra: three analytic stellar populations (young, intermediate, old; mass-to-light
    ratios turn the SFR history into light) give the continuum, the 4000 A break and Balmer
    absorption; Calzetti et al. (2000) dust with E(B-V)_stars = 0.44 E(B-V)_gas and A_V from
    Garn & Best (2010); nebular lines from Kennicutt (1998), SFR = 7.9e-42 L(Halpha), case-B
    Balmer ratios and metallicity-dependent [NII], [OIII], [OII], [SII] (Tremonti et al. 2004,
    Pettini & Pagel 2004), Cardelli et al. (1989) attenuation; weak LINER-like emission in
    retired galaxies; quasars with the Vanden Berk et al. (2001) continuum, broad and narrow
    lines and the Madau (1995) forest. Only the seeing-convolved light inside the 3" fibre
    enters the spectrum (per component, bulge and disk apart, so the fibre misses the star
    formation in the outer disk); noise from object and sky photons with sky lines, a few per
    cent of masked pixels.

    Images: a Sersic bulge and an exponential disk (sizes from Shen et al. 2003) and a point
    source for quasars, colours from the total model spectrum through the SDSS filter curves
    (speclite ``sdss2010-*``), a double-Gaussian PSF with the SDSS seeing distribution, SDSS
    sky, gain and dark variance; some cutouts hold neighbouring galaxies or stars, whose light
    also leaks into the fibre.

    Labels: the truth plus a draw from a per-object split-normal likelihood whose P16-P84
    half width combines the fibre (Halpha S/N or D4000) and outside-fibre (colour) parts
    weighted by the fibre fraction, giving ~0.2-0.45 dex for star formers and 0.5-1.1 dex for
    weak-line, passive and quasar hosts (``shared/docs/data-formats.md`` 2.4).

    Examples
    --------
    >>> from sklearn_sfr.datasets._synthetic import simulate_objects
    >>> sim = simulate_objects(4, random_state=0)
    >>> sim["images"].shape, sim["spectra"].shape
    ((4, 5, 64, 64), (4, 4620))
    >>> table = sim["target_table"]
    >>> bool((table["fibre_fraction"] < 1).all())  # the 3" fibre misses the outskirts
    True
    >>> sim["spectrum_table"].loc[0, ["AVG", "P16", "P84", "FLAG"]].shape
    (4,)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    _check_fraction("flagged_fraction", flagged_fraction)
    _check_fraction("quasar_fraction", quasar_fraction)
    _check_fraction("neighbour_fraction", neighbour_fraction)
    rng = np.random.default_rng(random_state)
    is_q, flag = _assign_types_and_flags(rng, n, quasar_fraction, flagged_fraction)
    return _simulate_block(
        rng, is_q, flag, int(first_index), neighbour_fraction=neighbour_fraction, noise=noise
    )


def _check_fraction(name, value):
    if not (isinstance(value, (int, float, np.floating, np.integer)) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def make_synthetic_cube(
    path,
    n_objects=None,
    *,
    n_flag0=11000,
    flagged_fraction=0.2,
    quasar_fraction=1 / 11,
    neighbour_fraction=0.15,
    random_state=0,
    block_size=1024,
    overwrite=False,
    verbose=False,
):
    """Write a physics-based synthetic HiSS-Cube file of SDSS-like galaxies and quasars.

    Parameters
    ----------
    path : str or path-like
        Output ``.h5`` file.
    n_objects : int, default=None
        Total number of objects (FLAG=0 and flagged). By default
        ``round(n_flag0 / (1 - flagged_fraction))``, about 13,750 objects of which 11,000 have
        FLAG=0 (10,000 galaxies and 1,000 quasars), as the thesis sample. Up to 150,000 for
        scale work.
    n_flag0 : int, default=11000
        Number of FLAG=0 objects when ``n_objects`` is None.
    flagged_fraction : float, default=0.2
        Fraction of objects with FLAG != 0 labels.
    quasar_fraction : float, default=1/11
        Fraction of quasars (among FLAG=0 and among flagged objects).
    neighbour_fraction : float, default=0.15
        Fraction of cutouts with neighbouring galaxies or stars.
    random_state : int or None, default=0
        Seed of a ``numpy.random.SeedSequence`` that spawns one independent seed per block
        (and one for the object types and flags), so a file is reproducible for a given
        ``random_state`` and ``block_size``. None draws fresh entropy, which is stored.
    block_size : int, default=1024
        Objects simulated and written at a time; bounds the memory (peak about 1.5 GB at
        1024).
    overwrite : bool, default=False
        Replace an existing file.
    verbose : bool, default=False
        Print progress per block.

    Returns
    -------
    pathlib.Path
        The written file.

    See Also
    --------
    simulate_objects : The simulation of one block, as in-memory arrays.
    load_hisscube : Load the file for scikit-learn.

    Notes
    -----
    The physics is described in :func:`simulate_objects`. The file follows the HiSS-Cube
    layout (:class:`HiSSCubeWriter`); besides the MPA-JHU-like label tables it holds the
    per-object truth (``sklearn_sfr_targets`` table) and the root attributes ``noise_floor``
    (RMSE of AVG against the true log SFR over FLAG=0 objects: the error no model can beat
    on average when it predicts AVG), ``generator`` and ``random_state``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube, HiSSCube
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "tiny.h5"), n_objects=20)
    >>> with HiSSCube(path) as cube:
    ...     print(cube.n_objects, round(cube.noise_floor, 2) > 0)
    20 True
    """
    from ._writer import HiSSCubeWriter

    if n_objects is None:
        if int(n_flag0) < 1:
            raise ValueError(f"n_flag0 must be a positive integer, got {n_flag0!r}")
        _check_fraction("flagged_fraction", flagged_fraction)
        n_objects = round(int(n_flag0) / (1.0 - flagged_fraction))
    n = int(n_objects)
    if n < 1:
        raise ValueError(f"n_objects must be a positive integer, got {n_objects!r}")
    for name, value in (
        ("flagged_fraction", flagged_fraction),
        ("quasar_fraction", quasar_fraction),
        ("neighbour_fraction", neighbour_fraction),
    ):
        _check_fraction(name, value)
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    path = Path(path)
    seed = np.random.SeedSequence(random_state)
    n_blocks = -(-n // block_size)
    children = seed.spawn(n_blocks + 1)
    is_q, flag = _assign_types_and_flags(
        np.random.default_rng(children[0]), n, quasar_fraction, flagged_fraction
    )
    spectrum_tables, target_tables = [], []
    sq_err, n_clean = 0.0, 0
    t0 = time.perf_counter()
    with HiSSCubeWriter(path, n_targets=n, n_spectra=n, overwrite=overwrite) as writer:
        for k in range(n_blocks):
            sl = slice(k * block_size, min(n, (k + 1) * block_size))
            block = _simulate_block(
                np.random.default_rng(children[k + 1]),
                is_q[sl],
                flag[sl],
                sl.start,
                neighbour_fraction=neighbour_fraction,
                noise=True,
            )
            writer.write_block(
                block["images"],
                block["image_errors"],
                block["spectra"],
                block["spectrum_errors"],
            )
            st, tt = block["spectrum_table"], block["target_table"]
            clean = st["FLAG"].to_numpy() == 0
            sq_err += float(
                np.sum((st["AVG"].to_numpy()[clean] - tt["true_log_sfr"].to_numpy()[clean]) ** 2)
            )
            n_clean += int(clean.sum())
            spectrum_tables.append(st)
            target_tables.append(tt)
            if verbose:
                print(
                    f"block {k + 1}/{n_blocks}: {sl.stop}/{n} objects, "
                    f"{time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
        noise_floor = math.sqrt(sq_err / n_clean) if n_clean else float("nan")
        writer.set_tables(
            pd.concat(spectrum_tables, ignore_index=True),
            pd.concat(target_tables, ignore_index=True),
        )
        writer.attrs["noise_floor"] = float(noise_floor)
        writer.attrs["generator"] = "sklearn_sfr.datasets.make_synthetic_cube"
        entropy = seed.entropy
        writer.attrs["random_state"] = int(entropy) if entropy < 2**63 else str(entropy)
        writer.attrs["flagged_fraction"] = float(flagged_fraction)
        writer.attrs["quasar_fraction"] = float(quasar_fraction)
        writer.attrs["neighbour_fraction"] = float(neighbour_fraction)
        writer.attrs["block_size"] = int(block_size)
    if verbose:
        print(
            f"wrote {path}: {n} objects ({n_clean} with FLAG=0), noise floor "
            f"{noise_floor:.3f} dex, {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    return path
