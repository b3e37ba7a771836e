"""Physical, survey and instrument constants of the synthetic generator.

All constants below carry a comment with their source. ``[approx]`` marks values that are
representative rather than measured (see ``shared/docs/data-formats.md`` for the sourced ones).
Line wavelengths are not typed here: they come from the package's one line table,
``sklearn_sfr.utils._survey.SPECTRAL_LINES`` (vacuum, SDSS values).
"""

from ...utils._survey import SPECTRAL_LINES

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
#: The narrow lines the generator draws, in its (array) order; vacuum rest wavelengths [A] from
#: the package's line table, which holds the SDSS pipeline's values (data-formats 5.1).
NARROW_LINES = (
    "OII_3727", "OII_3730", "NeIII_3870", "H8", "Hepsilon", "Hdelta", "Hgamma", "Hbeta",
    "OIII_4960", "OIII_5008", "OI_6302", "NII_6550", "Halpha", "NII_6585", "SII_6718", "SII_6733",
)  # fmt: skip
LINE_WAVELENGTHS = {name: SPECTRAL_LINES[name] for name in NARROW_LINES}
#: Quasar template (Vanden Berk et al. 2001, AJ 122, 549): f_nu ~ nu^-0.44 below 5000 A and
#: nu^-2.45 above (hot dust); rest-frame equivalent widths [A] of the broad and narrow lines.
QSO_ALPHA_BLUE, QSO_ALPHA_RED, QSO_BREAK = -0.44, -2.45, 5000.0
QSO_BROAD_LINES = tuple(
    (name, SPECTRAL_LINES[name], ew)
    for name, ew in (
        ("Lyalpha", 80.0), ("NV_1240", 13.0), ("SiIV_1400", 8.1), ("CIV_1549", 23.8),
        ("CIII_1909", 21.2), ("MgII_2799", 32.3), ("Hdelta", 5.1), ("Hgamma", 12.6),
        ("Hbeta", 46.2), ("Halpha", 194.5),
    )
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
#: The object sits at cutout pixel (32, 32) plus a sub-pixel offset (pixel centres at integers).
CUTOUT_CENTRE = 32.0
#: Neighbours: 1 + Poisson(0.35) objects, 7-29 px from the centre, a third of them stars.
NEIGHBOUR_EXTRA_RATE, NEIGHBOUR_RADIUS_PX, NEIGHBOUR_STAR_SHARE = 0.35, (7.0, 29.0), 0.35
#: Synthetic plate numbering: SDSS-I/II plates start at 266 and carry 640 fibres.
FIRST_PLATE, FIBRES_PER_PLATE, FIRST_MJD = 266, 640, 51578
