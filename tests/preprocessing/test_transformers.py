"""Image and spectrum transformers: properties (hypothesis), SliceDict routing, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError
from skorch.helper import SliceDict

from sklearn_sfr.preprocessing import (
    CentralCrop,
    FlattenBands,
    ImageScaler,
    ModalitySelector,
    SpectrumNormalizer,
    SpectrumRebin,
)

_SETTINGS = settings(max_examples=30, deadline=None)


def _images(n=3, size=16, bands=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, bands, size, size)).astype(np.float32)


@_SETTINGS
@given(st.integers(4, 20), st.data())
def test_crop_of_crop_is_one_crop(size, data):
    images = _images(size=size)
    a = data.draw(st.integers(1, size))
    b = data.draw(st.integers(1, a))
    twice = CentralCrop(b).fit_transform(CentralCrop(a).fit_transform(images))
    once = CentralCrop(b).fit_transform(images)
    # Every crop keeps pixel S // 2 at its own centre, so nested crops compose exactly.
    np.testing.assert_array_equal(twice, once)
    assert twice.shape == (3, 5, b, b)


@_SETTINGS
@given(st.integers(2, 20), st.data())
def test_crop_keeps_the_central_pixel(size, data):
    images = _images(size=size)
    c = data.draw(st.integers(1, size))
    out = CentralCrop(c).fit_transform(images)
    np.testing.assert_array_equal(out[..., c // 2, c // 2], images[..., size // 2, size // 2])


def test_crop_slicedict_and_errors():
    X = SliceDict(image=_images(), image_error=np.abs(_images()), spectrum=np.ones((3, 10)))
    out = CentralCrop(8).fit_transform(X)
    assert out["image"].shape == out["image_error"].shape == (3, 5, 8, 8)
    assert out["spectrum"] is X["spectrum"]
    with pytest.raises(ValueError, match=r"CentralCrop\(size=32\) is larger than the 16x16"):
        CentralCrop(32).fit(X)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, n_bands"):
        CentralCrop(4).fit(np.ones((3, 16, 16)))
    with pytest.raises(TypeError, match="plain dict"):
        CentralCrop(4).fit(dict(X))
    with pytest.raises(KeyError, match="no key 'image'"):
        CentralCrop(4).fit(SliceDict(spectrum=np.ones((3, 10))))


def test_crop_default_and_fraction():
    images = _images(size=64)
    crop = CentralCrop().fit(images)  # the central half
    assert crop.size_ == 32 and crop.transform(images).shape == (3, 5, 32, 32)
    np.testing.assert_array_equal(crop.transform(images), CentralCrop(32).fit_transform(images))
    assert CentralCrop(0.25).fit(_images(size=16)).size_ == 4
    assert CentralCrop(1.0).fit_transform(images).shape == (3, 5, 64, 64)
    assert CentralCrop(0.01).fit(_images(size=8)).size_ == 1  # at least one pixel
    # The crop is resolved in fit: the same number of pixels from any later size.
    assert crop.transform(_images(size=40)).shape == (3, 5, 32, 32)
    with pytest.raises(ValueError, match=r"CentralCrop\(size=0.5\) \(32 pixels\) is larger"):
        crop.transform(_images(size=16))
    for bad in (0.0, 1.5, -2, 0):
        with pytest.raises(InvalidParameterError):
            CentralCrop(bad).fit(images)


def test_rebin_default_halves_the_resolution():
    flux = np.ones((3, 4620))
    rebin = SpectrumRebin().fit(flux)
    assert rebin.factor == 2 and rebin.transform(flux).shape == (3, 2310)
    np.testing.assert_array_equal(rebin.wavelength_, SpectrumRebin(2).fit(flux).wavelength_)


def test_selector_default_keeps_every_key():
    X = SliceDict(image=_images(), spectrum=np.ones((3, 4)), redshift=np.zeros(3))
    out = ModalitySelector().fit_transform(X)
    assert isinstance(out, SliceDict) and set(out) == set(X) and len(out) == 3
    for key in X:
        assert out[key] is X[key]


@_SETTINGS
@given(st.integers(1, 9), st.integers(20, 200))
def test_rebin_conserves_mean_flux_density(factor, n_pixels):
    rng = np.random.default_rng(factor)
    flux = rng.normal(1.0, 0.1, size=(4, n_pixels))
    wl = np.linspace(4000, 8000, n_pixels)
    rebin = SpectrumRebin(factor, wavelength=wl).fit(flux)
    out = rebin.transform(flux)
    kept = (n_pixels // factor) * factor
    np.testing.assert_allclose(out.mean(axis=1), flux[:, :kept].mean(axis=1), rtol=1e-5)
    assert rebin.wavelength_.shape == (n_pixels // factor,)
    assert len(rebin.get_feature_names_out()) == out.shape[1]


def test_rebin_masked_pixels_and_errors():
    flux = np.ones((2, 8))
    err = np.ones((2, 8))
    flux[0, 0] = np.nan  # one masked pixel: ignored
    flux[1, 4:8] = np.nan  # a whole bin masked: flagged as NaN
    err[0, 2:4] = 2.0
    X = SliceDict(spectrum=flux * 3, spectrum_error=err)
    out = SpectrumRebin(4, wavelength=np.arange(8.0)).fit_transform(X)
    np.testing.assert_allclose(out["spectrum"][0], [3.0, 3.0])
    assert np.isnan(out["spectrum"][1, 1]) and np.isnan(out["spectrum_error"][1, 1])
    # three usable pixels with sigma 1, 2, 2: 1 / sqrt(1 + 1/4 + 1/4)
    np.testing.assert_allclose(out["spectrum_error"][0, 0], 1 / np.sqrt(1.5), rtol=1e-6)
    np.testing.assert_allclose(out["spectrum_error"][0, 1], 0.5, rtol=1e-6)
    plain = SpectrumRebin(4, wavelength=np.arange(8.0)).fit_transform(flux)
    assert plain[0, 0] == 1.0


def test_rebin_default_grid_and_errors():
    rebin = SpectrumRebin(2).fit(np.ones((2, 577)))
    assert rebin.wavelength_in_.size == 577
    # Another length has no physical grid: bins are named by pixel index.
    assert SpectrumRebin(2).fit(np.ones((2, 100))).get_feature_names_out()[0] == "flux_0.50"
    with pytest.raises(ValueError, match="expecting 577 features"):
        rebin.transform(np.ones((2, 1155)))
    X = SliceDict(spectrum=np.ones((2, 577)))
    with pytest.raises(ValueError, match="X\\['spectrum'\\] has 1155 pixels.*fitted on 577"):
        SpectrumRebin(2).fit(X).transform(SliceDict(spectrum=np.ones((2, 1155))))
    with pytest.raises(ValueError, match="could not convert string"):
        SpectrumRebin(2).fit(np.array([["a"] * 577]))


@_SETTINGS
@given(st.integers(1, 4), st.integers(2, 12), st.integers(1, 5))
def test_flatten_round_trip(n, size, bands):
    images = _images(n=n, size=size, bands=bands)
    names = tuple("ugriz"[:bands])
    flat = FlattenBands(band_names=names).fit(images)
    table = flat.transform(images)
    assert table.shape == (n, bands * size * size)
    np.testing.assert_array_equal(flat.inverse_transform(table), images)
    fn = flat.get_feature_names_out()
    assert fn[0] == f"{names[0]}_0_0" and fn[-1] == f"{names[-1]}_{size - 1}_{size - 1}"


def test_flatten_names_point_at_pixels():
    images = _images(n=1, size=8)
    flat = FlattenBands().fit(images)
    names = list(flat.get_feature_names_out())
    j = names.index("r_3_5")
    assert flat.transform(images)[0, j] == images[0, 2, 3, 5]
    with pytest.raises(ValueError, match="band_names has 5 names but the images have 3"):
        FlattenBands().fit(_images(bands=3))


@_SETTINGS
@given(st.sampled_from(["asinh", "linear"]), st.floats(0.5, 10))
def test_image_scaling_is_monotonic(stretch, softening):
    images = _images(n=5, size=8) * 3 + 1
    scaler = ImageScaler(stretch=stretch, softening=softening).fit(images)
    x = np.sort(images.reshape(-1))
    ramp = np.broadcast_to(x[:320].reshape(1, 1, 8, 40)[..., :8], (1, 5, 8, 8)).copy()
    out = scaler.transform(ramp)
    for b in range(5):
        flat_in = ramp[0, b].ravel()
        flat_out = out[0, b].ravel()
        order = np.argsort(flat_in, kind="stable")
        assert np.all(np.diff(flat_out[order]) >= 0)


def test_image_scaler_slicedict_errors_scale_with_images():
    X = SliceDict(image=_images(n=10) * 2, image_error=np.ones((10, 5, 16, 16), np.float32))
    out = ImageScaler(stretch="linear").fit_transform(X)
    ratio = out["image_error"] / X["image_error"]
    np.testing.assert_allclose(ratio[:, 0], ratio[0, 0, 0, 0], rtol=1e-6)


def test_spectrum_normalizer_survives_masked_pixels():
    flux = np.full((3, 577), 4e-17)
    flux[0, :100] = np.nan
    flux[2] = np.nan  # all masked: left alone, counted
    norm = SpectrumNormalizer(window=(5000, 6000)).fit(flux)
    with pytest.warns(UserWarning, match="1 spectra have no positive flux level"):
        out = norm.transform(flux)
    np.testing.assert_allclose(out[1], 1.0)
    assert np.isnan(out[0, :100]).all() and np.allclose(out[0, 100:], 1.0)
    cont = SpectrumNormalizer(method="continuum", continuum_width=11).fit_transform(flux[:2])
    np.testing.assert_allclose(cont[1], 1.0)
    with pytest.raises(ValueError, match="holds no pixel"):
        SpectrumNormalizer(window=(100, 200)).fit(flux)


def test_modality_selector():
    X = SliceDict(image=_images(), spectrum=np.ones((3, 4)), redshift=np.zeros(3))
    assert ModalitySelector("spectrum").fit_transform(X).shape == (3, 4)
    sub = ModalitySelector(["spectrum", "redshift"]).fit_transform(X)
    assert set(sub) == {"spectrum", "redshift"} and len(sub) == 3
    with pytest.raises(KeyError, match=r"no key 'audio'; available keys: \['image'"):
        ModalitySelector("audio").fit(X)
    with pytest.raises(TypeError, match="needs a SliceDict"):
        ModalitySelector("image").fit(np.ones((3, 4)))


@pytest.mark.parametrize(
    "transformer",
    [CentralCrop(4), FlattenBands(), ImageScaler()],
    ids=lambda t: type(t).__name__,
)
def test_image_transformers_refuse_inf_and_empty(transformer):
    bad = _images()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        transformer.fit(bad)
    with pytest.raises(ValueError, match="empty"):
        transformer.fit(np.zeros((0, 5, 8, 8)))


def test_set_output_pandas_on_tabular_transformers():
    images = _images(n=4, size=8)
    table = FlattenBands().set_output(transform="pandas").fit_transform(images)
    assert list(table.columns[:2]) == ["u_0_0", "u_0_1"] and table.shape == (4, 320)
    flux = np.ones((3, 577))
    rebinned = SpectrumRebin(4).set_output(transform="pandas").fit_transform(flux)
    assert rebinned.shape == (3, 144) and rebinned.columns[0].startswith("flux_38")
