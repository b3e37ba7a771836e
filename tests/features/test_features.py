"""Tests of SpectralLineFeatures and PhotometryFeatures on hand-made and synthetic data."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf, gammaincinv
from sklearn.utils._param_validation import InvalidParameterError
from skorch.helper import SliceDict

from sklearn_sfr.datasets._layout import IMAGE_UNIT_PER_NMGY, n_wavelength, wavelength_grid
from sklearn_sfr.features import PhotometryFeatures, SpectralLineFeatures
from sklearn_sfr.features._lines import DN4000_BANDS, HDELTA_A_BANDS, LINES
from tests.test_common import check_contract

HALPHA = 6564.614
HDELTA = 4102.892


# -- hand-made spectra ----------------------------------------------------------------------
def gaussian_pixels(lam, centre, sigma):
    """Unit-flux Gaussians integrated over the pixels of ``lam`` [1/A]; centre, sigma (n,)."""
    d = lam[1] - lam[0]
    s = np.sqrt(2.0) * np.asarray(sigma, dtype=float)[:, None]
    c = np.asarray(centre, dtype=float)[:, None]
    return 0.5 * (erf((lam + d / 2 - c) / s) - erf((lam - d / 2 - c) / s)) / d


def spectra(z, level=0, continuum=2.0, lines=(), slope=0.0):
    """Flat (or sloped) continuum in 1e-17 erg/s/cm2/A plus Gaussian lines, observed frame.

    ``lines``: (rest wavelength, flux in 1e-17 erg/s/cm2, rest sigma in A); negative flux is
    an absorption line.
    """
    z = np.asarray(z, dtype=float)
    lam = wavelength_grid(level)
    flux = continuum + slope * (lam[None, :] / (1 + z[:, None]) - 6000.0)
    for rest, line_flux, sigma in lines:
        flux = flux + line_flux * gaussian_pixels(lam, rest * (1 + z), sigma * (1 + z))
    return SliceDict(spectrum=flux.astype(np.float32), redshift=z)


def features(X, **params):
    est = SpectralLineFeatures(**params).set_output(transform="pandas")
    return est.fit_transform(X)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_halpha_flux_and_ew_recovered(level):
    z = np.array([0.02, 0.08, 0.15, 0.3])
    X = spectra(z, level=level, continuum=2.0, lines=[(HALPHA, 100.0, 2.5)], slope=-1e-4)
    out = features(X)
    np.testing.assert_allclose(out["halpha_flux"], 100.0, rtol=0.03)
    # rest-frame EW = flux / continuum / (1 + z); the continuum at H-alpha is 2 - 0.0564
    expected_ew = 100.0 / (2.0 - 1e-4 * (HALPHA - 6000.0)) / (1 + z)
    np.testing.assert_allclose(out["halpha_ew"], expected_ew, rtol=0.03)
    assert (out["halpha_missing"] == 0).all()
    # the neighbouring windows see (almost) nothing of H-alpha
    assert (out["nii_6584_flux"].abs() < 3.0).all()
    assert (out["hbeta_flux"].abs() < 1.0).all()


def test_doublets_and_ratios():
    z = np.array([0.1])
    lines = [
        (3727.092, 40.0, 2.0), (3729.875, 30.0, 2.0), (6718.294, 20.0, 2.0),
        (6732.678, 15.0, 2.0), (HALPHA, 100.0, 2.0), (6585.268, 30.0, 2.0),
        (4862.683, 25.0, 2.0), (5008.240, 50.0, 2.0),
    ]  # fmt: skip
    out = features(spectra(z, lines=lines))
    np.testing.assert_allclose(out["oii_3727_flux"], 70.0, rtol=0.03)
    np.testing.assert_allclose(out["sii_6717_6731_flux"], 35.0, rtol=0.03)
    np.testing.assert_allclose(out["log_nii_halpha"], np.log10(0.3), atol=0.02)
    np.testing.assert_allclose(out["log_oiii_hbeta"], np.log10(2.0), atol=0.02)
    np.testing.assert_allclose(out["log_halpha_hbeta"], np.log10(4.0), atol=0.02)
    assert (out.filter(like="_missing") == 0).all().all()


def test_halpha_luminosity_follows_distance():
    z = np.array([0.05, 0.1])
    out = features(spectra(z, lines=[(HALPHA, 100.0, 2.0)]))
    from astropy.cosmology import FlatLambdaCDM

    d_l = FlatLambdaCDM(H0=70, Om0=0.3).luminosity_distance(z).to_value("cm")
    expected = 4 * np.pi * d_l**2 * 100e-17 / 1e40
    np.testing.assert_allclose(out["halpha_lum"], expected, rtol=0.03)


def _fnu_step(z, level, ratio):
    """F_nu = 1 below 3975 A rest (between the Dn4000 bands), ``ratio`` above; as f_lambda."""
    lam = wavelength_grid(level)
    rest = lam[None, :] / (1 + z[:, None])
    f_nu = np.where(rest < 3975.0, 1.0, ratio)
    return SliceDict(spectrum=(f_nu / lam**2 * 1e8).astype(np.float32), redshift=z)


@pytest.mark.parametrize("level", [0, 3])
def test_dn4000_step(level):
    z = np.array([0.0, 0.05, 0.2, 0.5])
    out = features(_fnu_step(z, level, 1.6))
    np.testing.assert_allclose(out["dn4000"], 1.6, rtol=0.01)
    assert (out["dn4000_missing"] == 0).all()


def test_dn4000_averages_f_nu():
    # a flat f_lambda has F_nu ~ lambda**2, so Dn4000 = <lambda^2>_red / <lambda^2>_blue
    (b0, b1), (r0, r1) = DN4000_BANDS["blue"], DN4000_BANDS["red"]
    expected = ((r1**3 - r0**3) / (r1 - r0)) / ((b1**3 - b0**3) / (b1 - b0))
    out = features(spectra(np.array([0.1]), continuum=3.0))
    np.testing.assert_allclose(out["dn4000"], expected, rtol=1e-3)
    np.testing.assert_allclose(out["color_4200_5500"], 1.0, rtol=1e-6)


def test_hdelta_absorption():
    # a Gaussian absorption of 5 A rest-frame EW on a flat continuum of 2
    z = np.array([0.03, 0.1])
    X = spectra(z, continuum=2.0)
    lam = wavelength_grid(0)
    prof = gaussian_pixels(lam, HDELTA * (1 + z), 3.0 * (1 + z))
    X["spectrum"] = (2.0 - 2.0 * 5.0 * (1 + z[:, None]) * prof).astype(np.float32)
    out = features(X)
    # the Lick index band holds >99 % of the line; the index is rest-frame Angstrom
    np.testing.assert_allclose(out["hdelta_a"], 5.0, rtol=0.03)
    assert HDELTA_A_BANDS["index"][0] < HDELTA < HDELTA_A_BANDS["index"][1]


def test_line_out_of_range_gets_fill_and_indicator():
    # H-alpha leaves the 8915 A grid at z > 0.35; [O II] 3727 needs z > 0.04
    z = np.array([0.0, 0.5, np.nan])
    out = features(spectra(z, lines=[(HALPHA, 100.0, 2.0)]))
    assert out.loc[1, "halpha_missing"] == 1 and out.loc[0, "halpha_missing"] == 0
    assert out.loc[1, ["halpha_flux", "halpha_ew", "halpha_lum"]].eq(0).all()
    assert out.loc[1, "log_nii_halpha_missing"] == 1 and out.loc[1, "log_nii_halpha"] == 0
    assert out.loc[0, "oii_3727_missing"] == 1 and out.loc[0, "oii_3727_flux"] == 0
    assert out.loc[1, "color_6200_5500_missing"] == 1 and out.loc[1, "color_6200_5500"] == 1
    # an unknown redshift: everything missing, with the documented fill values
    row = out.loc[2]
    assert row.filter(like="_missing").eq(1).all()
    assert row["dn4000"] == 1 and row["halpha_flux"] == 0 and row["hdelta_a"] == 0
    assert np.isfinite(out.to_numpy()).all()


def test_masked_pixels_are_ignored():
    rng = np.random.default_rng(1)
    z = np.array([0.05, 0.1, 0.2])
    X = spectra(z, lines=[(HALPHA, 100.0, 2.0)])
    flux = X["spectrum"].copy()
    flux[rng.random(flux.shape) < 0.05] = np.nan
    flux[:, :300] = np.nan  # a masked blue end
    flux[2] = np.nan  # a fully masked spectrum
    out = features(SliceDict(spectrum=flux, redshift=z))
    assert np.isfinite(out.to_numpy()).all()
    np.testing.assert_allclose(out["halpha_flux"][:2], 100.0, rtol=0.1)
    assert out.loc[2].filter(like="_missing").eq(1).all()


def test_spectrum_error_masks_pixels():
    z = np.array([0.1, 0.1])
    X = spectra(z, lines=[(HALPHA, 100.0, 2.0)])
    flux = X["spectrum"].copy()
    err = np.full_like(flux, 0.1)
    hit = np.argmin(np.abs(wavelength_grid(0) - HALPHA * 1.1)) + 3
    flux[1, hit] = 1e4  # a cosmic ray, flagged by its error only
    err[1, hit] = np.nan
    out = features(SliceDict(spectrum=flux, spectrum_error=err, redshift=z))
    np.testing.assert_allclose(out["halpha_flux"], 100.0, rtol=0.1)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    perm=st.permutations(range(5)),
)
def test_spectral_features_row_order_invariant(seed, perm):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 0.6, 5)
    X = spectra(z, level=3, lines=[(HALPHA, 80.0, 2.0), (5008.240, 30.0, 2.0)])
    flux = X["spectrum"] + rng.normal(0, 0.2, X["spectrum"].shape).astype(np.float32)
    flux[rng.random(flux.shape) < 0.02] = np.nan
    X = SliceDict(spectrum=flux, redshift=z)
    est = SpectralLineFeatures().fit(X)
    perm = np.asarray(perm)
    np.testing.assert_array_equal(est.transform(X)[perm], est.transform(X[perm]))


def test_set_output_pandas_and_names():
    X = spectra(np.array([0.05, 0.1]), level=2)
    est = SpectralLineFeatures().set_output(transform="pandas").fit(X)
    out = est.transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(est.get_feature_names_out())
    names = set(out.columns)
    for line in LINES:
        assert {f"{line}_flux", f"{line}_ew", f"{line}_missing"} <= names
    assert {"dn4000", "hdelta_a", "halpha_lum", "color_4200_5500", "log_nii_halpha"} <= names
    assert not out.isna().any().any()
    no_ratios = SpectralLineFeatures(line_ratios=False).fit(X).get_feature_names_out()
    assert not any(n.startswith("log_") for n in no_ratios)


def test_flux_scale_and_units():
    X = spectra(np.array([0.05, 0.1]), lines=[(HALPHA, 100.0, 2.0)])
    linear = features(X)
    asinh = features(X, flux_scale="asinh")
    np.testing.assert_allclose(asinh["halpha_flux"], np.arcsinh(linear["halpha_flux"]))
    np.testing.assert_allclose(asinh["halpha_ew"], linear["halpha_ew"])
    cube = SliceDict(spectrum=X["spectrum"].astype(np.float64) * 1e-17, redshift=X["redshift"])
    in_cube_units = features(cube, units="cube")
    keep = [c for c in linear.columns if not c.startswith("log_")]  # log of ~1e-8 noise
    np.testing.assert_allclose(in_cube_units[keep], linear[keep], rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="units='cube'"):
        SpectralLineFeatures().fit(cube)


def test_explicit_wavelength_grid():
    lam = np.linspace(5000.0, 8000.0, 3000)
    z = np.array([0.05])
    flux = 2.0 + 100.0 * gaussian_pixels(lam, HALPHA * (1 + z), 2.0 * (1 + z))
    X = SliceDict(spectrum=flux.astype(np.float32), redshift=z)
    out = features(X, wavelength=lam)
    np.testing.assert_allclose(out["halpha_flux"], 100.0, rtol=0.03)
    assert out.loc[0, "dn4000_missing"] == 1


def test_bad_spectral_input():
    X = spectra(np.array([0.1, 0.2]), level=3)
    est = SpectralLineFeatures()
    with pytest.raises(TypeError, match="redshift.*SliceDict|SliceDict.*redshift"):
        est.fit(X["spectrum"])
    with pytest.raises(TypeError, match="plain dict"):
        est.fit(dict(X))
    with pytest.raises(KeyError, match="'redshift'"):
        est.fit(SliceDict(spectrum=X["spectrum"]))
    with pytest.raises(KeyError, match="'spectrum'"):
        est.fit(SliceDict(redshift=X["redshift"]))
    with pytest.raises(KeyError, match="'z'"):
        SpectralLineFeatures(redshift_key="z").fit(X)
    with pytest.raises(ValueError, match=r"X\['spectrum'\] must have shape .*\(2, 1, 577\)"):
        est.fit(SliceDict(spectrum=X["spectrum"][:, None], redshift=X["redshift"]))
    with pytest.raises(ValueError, match=r"X\['redshift'\].*\(2,\).*\(2, 2\)"):
        est.fit(SliceDict(spectrum=X["spectrum"], redshift=np.zeros((2, 2))))
    with pytest.raises(ValueError, match="600 pixels.*wavelength="):
        est.fit(SliceDict(spectrum=np.ones((2, 600)), redshift=X["redshift"]))
    with pytest.raises(ValueError, match="wavelength has shape"):
        SpectralLineFeatures(wavelength=np.arange(10.0)).fit(X)
    est.fit(X)
    with pytest.raises(ValueError, match="1155 pixels.*fitted on 577"):
        est.transform(spectra(np.array([0.1, 0.2]), level=2))
    with pytest.raises(InvalidParameterError):
        SpectralLineFeatures(flux_scale="log").fit(X)
    with pytest.raises(InvalidParameterError):
        SpectralLineFeatures(min_coverage=0).fit(X)


def test_spectral_estimator_contract():
    X = spectra(np.array([0.1]), level=3)
    est = SpectralLineFeatures(flux_scale="asinh")
    tags = est.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.dict
    assert tags.input_tags.allow_nan
    fitted = est.fit(X)
    assert fitted is est and est.n_pixels_in_ == n_wavelength(3)


# -- hand-made images -----------------------------------------------------------------------
def gaussian_image(size, sigma_arcsec, total_nmgy, centre=None):
    """A circular Gaussian of ``total_nmgy`` per band at the HiSS-Cube centre, (5, S, S).

    Pixel values are surface brightness per 0.396" pixel, as HiSS-Cube stores every zoom.
    """
    zoom = {64: 0, 32: 1, 16: 2, 8: 3}[size]
    scale = 0.396 * 2**zoom
    c = (32.5 / 2**zoom - 0.5) if centre is None else centre
    sub = 8  # pixel-integrate by oversampling
    o = (np.arange(size * sub) + 0.5) / sub - 0.5
    yy, xx = np.meshgrid(o, o, indexing="ij")
    s = sigma_arcsec / scale
    prof = np.exp(-0.5 * ((xx - c) ** 2 + (yy - c) ** 2) / s**2)
    prof = prof.reshape(size, sub, size, sub).mean(axis=(1, 3))
    prof /= 2 * np.pi * s**2  # unit total flux per native pixel
    prof /= (scale / 0.396) ** 2  # to per 0.396" pixel
    return np.asarray(total_nmgy, dtype=float)[:, None, None] * prof[None]


def sersic_image(n, re_arcsec, total=100.0, size=64, q=1.0):
    """A round Sersic profile (r band, others scaled), zoom 0, per 0.396" pixel."""
    bn = gammaincinv(2 * n, 0.5)
    sub = 8
    o = (np.arange(size * sub) + 0.5) / sub - 0.5
    yy, xx = np.meshgrid(o, o, indexing="ij")
    r = np.hypot(xx - 32.0, (yy - 32.0) / q) * 0.396
    prof = np.exp(-bn * ((r / re_arcsec) ** (1.0 / n) - 1.0))
    prof = prof.reshape(size, sub, size, sub).mean(axis=(1, 3))
    prof *= total / prof.sum()
    return np.stack([prof * k for k in (0.3, 0.6, 1.0, 1.3, 1.5)])


def photometry(X, **params):
    est = PhotometryFeatures(**params).set_output(transform="pandas")
    return est.fit_transform(X)


@pytest.mark.parametrize(("size", "sigma"), [(64, 1.0), (32, 2.0), (16, 3.0)])
def test_gaussian_source_fluxes_and_colours(size, sigma):
    # sigma in arcsec, at least ~2 pixels: pixelised apertures cannot do better on sharper
    # profiles, whose light is not uniform within the pixels cut by the aperture edge
    totals = np.array([20.0, 50.0, 100.0, 130.0, 150.0])
    images = gaussian_image(size, sigma, totals)[None]
    radii = (1.5, 3.0, 6.0)
    out = photometry(images, radii=radii)
    for band, total in zip("ugriz", totals):
        # a Gaussian holds 1 - exp(-R^2 / 2 sigma^2) within radius R
        for radius in radii:
            expected = total * (1 - np.exp(-(radius**2) / (2 * sigma**2)))
            rtol = 0.02 if radius >= 2 * 0.396 * 64 / size else 0.06  # < 2 pixels: coarse
            np.testing.assert_allclose(out[f"{band}_flux_{radius:g}arcsec"], expected, rtol=rtol)
        np.testing.assert_allclose(out[f"{band}_petro_flux"], total, rtol=0.02)
        np.testing.assert_allclose(out[f"{band}_mag"], 22.5 - 2.5 * np.log10(total), atol=0.02)
    np.testing.assert_allclose(out["color_g_r"], -2.5 * np.log10(50 / 100), atol=0.02)
    np.testing.assert_allclose(out["color_u_g"], -2.5 * np.log10(20 / 50), atol=0.02)
    # half-light radius of a Gaussian: sigma * sqrt(2 ln 2)
    np.testing.assert_allclose(out["r_r50"], sigma * np.sqrt(2 * np.log(2)), rtol=0.05)
    assert (out["r_petro_missing"] == 0).all()


def test_cube_units_and_sky():
    totals = np.array([20.0, 50.0, 100.0, 130.0, 150.0])
    images = gaussian_image(64, 1.0, totals)[None]
    images = images + np.array([3.0, 1.0, 0.5, 0.2, 0.1])[None, :, None, None]  # a flat sky
    unit = np.array([IMAGE_UNIT_PER_NMGY[b] for b in "ugriz"])[None, :, None, None]
    sdss = photometry(images)
    cube = photometry(images * unit, units="cube")
    np.testing.assert_allclose(cube, sdss, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sdss["r_petro_flux"], 100.0, rtol=0.02)
    with pytest.warns(UserWarning, match="units='cube'"):
        PhotometryFeatures().fit(images * unit)


def test_de_vaucouleurs_more_concentrated_than_exponential():
    images = np.stack([sersic_image(1.0, 2.0), sersic_image(4.0, 2.0)])
    out = photometry(images)
    exp_c, dev_c = out["r_concentration"]
    assert dev_c > exp_c + 0.5
    assert 2.0 < exp_c < 2.6  # 2.3 for an exponential disc
    # the Petrosian flux holds ~99 % of an exponential and ~80 % of a de Vaucouleurs profile
    np.testing.assert_allclose(out["r_petro_flux"][0], 100.0, rtol=0.03)
    assert 0.7 * 100 < out["r_petro_flux"][1] < 0.95 * 100
    np.testing.assert_allclose(out["r_r50"][0], 2.0, rtol=0.1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), perm=st.permutations(range(4)))
def test_photometry_row_order_invariant(seed, perm):
    rng = np.random.default_rng(seed)
    images = np.stack(
        [gaussian_image(16, rng.uniform(0.5, 3), rng.uniform(1, 100, 5)) for _ in range(4)]
    )
    images += rng.normal(0, 0.05, images.shape)
    est = PhotometryFeatures().fit(images)
    perm = np.asarray(perm)
    np.testing.assert_array_equal(est.transform(images)[perm], est.transform(images[perm]))


def test_photometry_nan_free():
    rng = np.random.default_rng(0)
    images = np.stack([gaussian_image(32, 1.5, np.full(5, 50.0)) for _ in range(4)])
    images += rng.normal(0, 0.02, images.shape)
    images[0, :, 10:14, 10:14] = np.nan  # a masked patch
    images[1, 2, 0, :] = np.nan  # a masked border row
    images[2] = np.nan  # nothing at all
    images[3] = rng.normal(0, 0.02, images[3].shape)  # pure noise
    out = photometry(SliceDict(image=images.astype(np.float32)))
    assert np.isfinite(out.to_numpy()).all()
    np.testing.assert_allclose(out["r_petro_flux"][:2], 50.0, rtol=0.05)
    assert out.loc[2, "r_petro_missing"] == 1 and out.loc[2, "r_concentration"] == 0
    assert list(out.columns) == list(PhotometryFeatures().fit(images).get_feature_names_out())


def test_photometry_slice_dict_equals_bare_array():
    images = gaussian_image(8, 2.0, np.full(5, 80.0))[None].astype(np.float32)
    bare = PhotometryFeatures().fit_transform(images)
    sliced = PhotometryFeatures().fit_transform(SliceDict(image=images, redshift=np.zeros(1)))
    np.testing.assert_array_equal(bare, sliced)


def test_bad_image_input():
    images = np.zeros((2, 5, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"X must have shape .*got \(2, 32, 32\)"):
        PhotometryFeatures().fit(images[:, 0])
    with pytest.raises(ValueError, match=r"bands .* axis 1, got \(2, 3, 32, 32\)"):
        PhotometryFeatures().fit(images[:, :3])
    with pytest.raises(KeyError, match="'image'"):
        PhotometryFeatures().fit(SliceDict(spectrum=np.zeros((2, 577))))
    with pytest.raises(TypeError, match="plain dict"):
        PhotometryFeatures().fit({"image": images})
    with pytest.raises(ValueError, match="pixel_scale="):
        PhotometryFeatures().fit(np.zeros((2, 5, 24, 24)))
    PhotometryFeatures(pixel_scale=0.396).fit(np.zeros((2, 5, 24, 24)))
    with pytest.raises(ValueError, match="radii"):
        PhotometryFeatures(radii=(1.0, -2.0)).fit(images)
    est = PhotometryFeatures().fit(images)
    with pytest.raises(ValueError, match=r"fitted on cutouts of shape \(n_samples, 5, 32, 32\)"):
        est.transform(np.zeros((2, 5, 16, 16)))
    with pytest.raises(InvalidParameterError):
        PhotometryFeatures(units="jansky").fit(images)
    tags = est.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.dict
    assert tags.input_tags.allow_nan


# -- the synthetic cube ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cube_data(synthetic_cube):
    from sklearn_sfr.datasets import load_hisscube

    return load_hisscube(synthetic_cube, image_zoom=1, spectrum_zoom=1, flag=None)


def test_halpha_tracks_sfr_on_synthetic_cube(cube_data):
    from scipy.stats import spearmanr

    out = features(cube_data.X)
    frame = cube_data.frame
    galaxy = (frame["object_type"] == "galaxy").to_numpy()
    assert np.isfinite(out.to_numpy()).all()
    rho_flux = spearmanr(out["halpha_flux"][galaxy], frame["true_log_sfr"][galaxy])[0]
    rho_lum = spearmanr(out["halpha_lum"][galaxy], frame["true_log_sfr"][galaxy])[0]
    assert rho_flux > 0.3 and rho_lum > 0.3
    quenched = (frame["sf_class"] == "quenched").to_numpy()
    forming = (frame["sf_class"] == "star-forming").to_numpy()
    assert out["dn4000"][quenched].median() > out["dn4000"][forming].median()


def test_quenched_galaxies_are_redder(cube_data):
    out = photometry(cube_data.X)
    frame = cube_data.frame
    quenched = (frame["sf_class"] == "quenched").to_numpy()
    forming = (frame["sf_class"] == "star-forming").to_numpy()
    assert np.isfinite(out.to_numpy()).all()
    assert out["color_g_r"][quenched].median() > out["color_g_r"][forming].median() + 0.1


def test_tree_pipeline_cross_validates(synthetic_cube):
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeRegressor

    from sklearn_sfr.datasets import load_hisscube

    data = load_hisscube(synthetic_cube, spectrum_zoom=1)
    model = make_pipeline(SpectralLineFeatures(), DecisionTreeRegressor(random_state=0))
    scores = cross_validate(model, data.X, data.y, cv=3, scoring="neg_root_mean_squared_error")
    assert np.isfinite(scores["test_score"]).all()


# -- the multi-modal estimator contract -----------------------------------------------------
def _multimodal(n=40, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.01, 0.3, n)
    X = spectra(z, level=3, lines=[(HALPHA, 50.0, 2.0)])
    X["spectrum"] = X["spectrum"] + rng.normal(0, 0.1, X["spectrum"].shape).astype(np.float32)
    images = rng.normal(0.0, 0.05, size=(n, 5, 16, 16)).astype(np.float32)
    images[:, :, 7:9, 7:9] += rng.uniform(1, 10, size=(n, 5, 1, 1)).astype(np.float32)
    y = np.log10(rng.uniform(1, 10, n))
    return SliceDict(image=images, spectrum=X["spectrum"], redshift=z, flag=np.zeros(n)), y


@pytest.mark.parametrize(
    "transformer",
    [SpectralLineFeatures(), PhotometryFeatures(), PhotometryFeatures(radii=[2.0])],
    ids=["SpectralLineFeatures", "PhotometryFeatures", "PhotometryFeatures-one-radius"],
)
def test_multimodal_contract_on_galaxies(transformer):
    # tests/test_common.py checks every estimator's contract on noise; here on spectra with
    # an H-alpha line and images with a source, and with a single aperture radius (a list).
    check_contract(transformer, *_multimodal())
