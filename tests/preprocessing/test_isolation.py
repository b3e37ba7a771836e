"""ObjectIsolator: neighbour removal on toy scenes, modes, routing, errors, the synthetic cube."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError
from skorch.helper import SliceDict

from sklearn_sfr.preprocessing import ObjectIsolator, neighbour_detection_scores
from sklearn_sfr.preprocessing._isolation import _multi_peaked

SIZE = 64
CENTRAL = dict(amp=50.0, sigma=3.0)


def _blob(size, x0, y0, amp, sigma):
    y, x = np.mgrid[:size, :size]
    return amp * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


def _scene(n=1, size=SIZE, offset=(14, 0), amp=30.0, sigma=2.0, noise=1.0, seed=0):
    """n cutouts: a central Gaussian galaxy, an optional neighbour at ``offset`` (x, y), noise.

    Returns the float32 images and the noise-free central and neighbour light (S, S).
    """
    c, zoom = size // 2, size / SIZE  # sizes and offsets shrink with the cutout, as zooms do
    central = _blob(size, c, c, CENTRAL["amp"], max(CENTRAL["sigma"] * zoom, 0.8))
    neighbour = np.zeros_like(central)
    if offset is not None:
        x, y = c + offset[0] * zoom, c + offset[1] * zoom
        neighbour = _blob(size, x, y, amp, max(sigma * zoom, 0.8))
    rng = np.random.default_rng(seed)
    images = central + neighbour + rng.normal(0.0, noise, (n, 5, size, size))
    return images.astype(np.float32), central, neighbour


def _changed(out, images):
    """Pixels (n, bands, S, S) that differ, NaN counting as a change."""
    return ~((out == images) | (np.isnan(out) & np.isnan(images)))


@pytest.mark.parametrize("mode", ["noise", "zero", "mask"])
def test_neighbour_removed_and_central_untouched(mode):
    images, central, neighbour = _scene(n=3)
    iso = ObjectIsolator(mode=mode, random_state=0).fit(images)
    out, stats = iso.isolate(images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out is not images and np.isfinite(images).all()  # the input is left alone
    changed = _changed(out, images)
    # Whole pixels are replaced, in every band alike.
    assert (changed == changed[:, :1]).all()
    y, x = np.mgrid[:SIZE, :SIZE]
    r_central = np.hypot(x - 32, y - 32)
    r_neighbour = np.hypot(x - 46, y - 32)
    assert not changed[:, :, r_central <= 6].any()  # the central object's pixels are kept
    assert changed[:, :, r_neighbour <= 3].all()  # the neighbour's core is gone
    assert not changed[:, :, r_neighbour > 12].any()  # and nothing far from it changes

    assert len(stats) == 3
    assert (stats["n_sources"] == 2).all() and (stats["n_removed"] == 1).all()
    assert stats["central_found"].all()
    np.testing.assert_allclose(stats["neighbour_x"], 14, atol=1)
    np.testing.assert_allclose(stats["neighbour_y"], 0, atol=1)
    share = neighbour.sum() / (neighbour.sum() + central.sum())
    for band in "ugriz":
        np.testing.assert_allclose(stats[f"fraction_flux_removed_{band}"], share, atol=0.04)

    values = out[changed]
    if mode == "mask":
        assert np.isnan(values).all()
    elif mode == "zero":
        assert (values == 0).all()
    else:  # sky noise of the measured level: median 0, std 1
        assert abs(values.mean()) < 0.1
        assert 0.9 < values.std() < 1.1


@pytest.mark.parametrize("mode", ["noise", "zero", "mask"])
def test_lone_object_is_unchanged(mode):
    images, _, _ = _scene(n=2, offset=None)
    out, stats = ObjectIsolator(mode=mode, random_state=0).fit(images).isolate(images)
    np.testing.assert_array_equal(out, images)
    assert (stats["n_sources"] == 1).all() and (stats["n_removed"] == 0).all()
    assert stats["central_found"].all()
    assert stats[["neighbour_x", "neighbour_y"]].isna().all().all()
    assert (stats["fraction_flux_removed_r"] == 0).all()


def test_blended_neighbour_needs_deblending():
    # 10 px apart, one isophote: detection alone sees one source, deblending splits it.
    images, central, neighbour = _scene(offset=(10, 0), amp=40.0, sigma=2.0)
    out, stats = ObjectIsolator(mode="zero", deblend=False).fit(images).isolate(images)
    np.testing.assert_array_equal(out, images)
    assert stats["n_sources"][0] == 1

    out, stats = ObjectIsolator(mode="zero").fit(images).isolate(images)
    assert stats["n_sources"][0] == 2 and stats["n_removed"][0] == 1
    np.testing.assert_allclose(stats["neighbour_x"][0], 10, atol=1.5)
    assert (out[0, :, 32, 42] == 0).all()  # the neighbour's centre is removed
    assert (out[0, :, 32, 32] == images[0, :, 32, 32]).all()  # the central one kept
    share = neighbour.sum() / (neighbour.sum() + central.sum())
    assert abs(stats["fraction_flux_removed_r"][0] - share) < 0.1


def test_deblending_is_photutils(monkeypatch):
    # A pair 9.5 px apart: photutils' deblend_sources splits the detected segment, and the
    # isolator removes exactly the pixels of photutils' neighbour segment (no dilation).
    import photutils.segmentation

    real, calls = photutils.segmentation.deblend_sources, []

    def spy(data, segm, n_pixels, **kwargs):
        result = real(data, segm, n_pixels, **kwargs)
        calls.append((segm.n_labels, result.copy(), n_pixels, kwargs))
        return result

    monkeypatch.setattr(photutils.segmentation, "deblend_sources", spy)
    images, _, _ = _scene(offset=(9, 3), amp=40.0)
    iso = ObjectIsolator(mode="zero", dilate=0, npixels=6, nlevels=16, contrast=0.01)
    out, stats = iso.fit(images).isolate(images)
    [(n_detected, segm, n_pixels, kwargs)] = calls
    assert n_detected == 1 and segm.n_labels == 2 and stats["n_removed"][0] == 1
    assert n_pixels == 6 and kwargs["n_levels"] == 16 and kwargs["contrast"] == 0.01
    neighbour = segm.data == segm.data[32 + 3, 32 + 9]
    np.testing.assert_array_equal(out[0, 2] == 0, neighbour)


def test_single_peaked_segments_need_no_deblending():
    # Only the segments of _multi_peaked go to deblend_sources: the rest could not split, so
    # photutils deblending them all gives the same segmentation, on scenes of 1-5 blobs.
    from photutils.segmentation import deblend_sources, detect_sources

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32]
    n_split = 0
    for _ in range(30):
        image = rng.normal(0.0, 1.0, (32, 32))
        for _ in range(rng.integers(1, 6)):
            x0, y0, amp, width = rng.uniform([0, 0, 3, 0.7], [32, 32, 60, 4])
            image += amp * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * width**2))
        segm = detect_sources(image, 1.0, 3)
        kwargs = dict(n_levels=32, contrast=0.001, progress_bar=False)
        full = deblend_sources(image, segm, 3, **kwargs).data
        labels = _multi_peaked(image, segm)
        some = deblend_sources(image, segm, 3, labels=labels, **kwargs).data
        np.testing.assert_array_equal(some, full)
        n_split += full.max() > segm.data.max()
    assert n_split >= 5  # the scenes do hold blends
    assert len(_multi_peaked(image, None)) == 0


def test_noise_is_reproducible():
    images, _, _ = _scene(n=2)
    a = ObjectIsolator(random_state=3).fit_transform(images)
    b = ObjectIsolator(random_state=3).fit_transform(images)
    c = ObjectIsolator(random_state=4).fit_transform(images)
    np.testing.assert_array_equal(a, b)
    changed = _changed(a, images)
    assert changed.any() and not np.array_equal(a[changed], c[changed])
    np.testing.assert_array_equal(a[~changed], c[~changed])
    iso = ObjectIsolator(random_state=np.random.RandomState(0)).fit(images)
    assert iso.transform(images).shape == images.shape  # a RandomState works too


@pytest.mark.parametrize("mode", ["noise", "zero", "mask"])
def test_slicedict_routes_images_and_errors(mode):
    images, _, _ = _scene(n=2)
    errors = np.full_like(images, 0.5)
    X = SliceDict(image=images, image_error=errors, spectrum=np.ones((2, 7)), flag=np.zeros(2))
    iso = ObjectIsolator(mode=mode, random_state=0).fit(X)
    out = iso.transform(X)
    assert isinstance(out, SliceDict)
    assert out["spectrum"] is X["spectrum"] and out["flag"] is X["flag"]
    bare = ObjectIsolator(mode=mode, random_state=0).fit_transform(images)
    np.testing.assert_array_equal(out["image"], bare)  # detection reads the images only
    changed = _changed(out["image"], images)
    assert changed.any()
    np.testing.assert_array_equal(out["image_error"][~changed], errors[~changed])
    err = out["image_error"][changed]
    if mode == "mask":
        assert np.isnan(err).all()
    else:  # the measured sky noise (1), not the input error (0.5)
        np.testing.assert_allclose(err, 1.0, rtol=0.1)
    np.testing.assert_array_equal(X["image_error"], errors)  # input untouched
    as64 = images.astype(np.float64)
    out = ObjectIsolator(mode=mode, random_state=0).fit_transform(as64)
    assert out.dtype == np.float32 and (as64 == images).all()

    # A SliceDict without errors works too.
    out = ObjectIsolator(mode=mode, random_state=0).fit_transform(SliceDict(image=images))
    assert set(out.keys()) == {"image"}


def test_bad_input():
    images, _, _ = _scene(n=2, size=16)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, n_bands"):
        ObjectIsolator().fit(images[:, 0])
    with pytest.raises(TypeError, match="plain dict"):
        ObjectIsolator().fit({"image": images})
    with pytest.raises(KeyError, match="no key 'image'"):
        ObjectIsolator().fit(SliceDict(spectrum=np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"detection_bands \('g', 'r', 'i'\).*missing: \['r'\]"):
        ObjectIsolator(band_names=("u", "g", "x", "i", "z")).fit(images)
    with pytest.raises(ValueError, match="non-empty subset"):
        ObjectIsolator(detection_bands=()).fit(images)
    with pytest.raises(ValueError, match="band_names has 5 names .* 3 bands"):
        ObjectIsolator().fit(images[:, :3])
    iso = ObjectIsolator(detection_bands=("r",), band_names=("g", "r", "i")).fit(images[:, :3])
    with pytest.raises(ValueError, match="has 5 bands, but ObjectIsolator was fitted on 3"):
        iso.transform(images)
    with pytest.raises(ValueError, match=r"X\['image_error'\] has shape .* must match"):
        ObjectIsolator().fit(images).transform(
            SliceDict(image=images, image_error=images[:, :, :8, :8])
        )
    with pytest.raises(InvalidParameterError, match="mode"):
        ObjectIsolator(mode="blank").fit(images)
    with pytest.raises(InvalidParameterError, match="contrast"):
        ObjectIsolator(contrast=2.0).fit(images)
    with pytest.raises(ValueError, match="infinity"):
        ObjectIsolator().fit(np.full((1, 5, 8, 8), np.inf))


@pytest.mark.parametrize("size", [64, 32, 16, 8])
def test_every_zoom(size):
    images, _, _ = _scene(n=4, size=size)
    iso = ObjectIsolator(random_state=0).fit(images)
    out, stats = iso.isolate(images)
    assert out.shape == images.shape
    assert len(stats) == 4 and iso.image_size_ == size and iso.n_bands_ == 5
    if size >= 16:
        assert stats["central_found"].all()
    if size >= 32:
        assert (stats["n_removed"] == 1).all()


def test_odd_inputs_do_not_fail():
    images, _, _ = _scene(n=3)
    images[1] = 0.0  # a blank cutout: nothing detected, nothing changed
    images[2, :, :5] = np.nan  # missing rows
    iso = ObjectIsolator(random_state=0).fit(images)
    out, stats = iso.isolate(images)
    np.testing.assert_array_equal(out[1], 0.0)
    assert not stats["central_found"][1] and stats["n_sources"][1] == 0
    assert stats["n_removed"][2] == 1
    assert np.isnan(out[2, :, :5]).all()
    # Another cutout size than in fit is fine (detection is per cutout).
    assert iso.transform(images[:, :, 16:48, 16:48]).shape == (3, 5, 32, 32)
    # Smoothing off and no dilation.
    iso = ObjectIsolator(fwhm=0, dilate=0, mode="zero").fit(images)
    assert iso.transform(images[:1]).shape == (1, 5, 64, 64)


def test_estimator_contract():
    iso = ObjectIsolator(mode="mask", nsigma=3.0)
    tags = iso.__sklearn_tags__()
    assert tags.input_tags.dict and tags.input_tags.allow_nan
    assert not tags.input_tags.two_d_array
    images, _, _ = _scene(n=2, size=16)
    iso.fit(images)
    # scikit-learn's check_dict_unchanged: transforming changes nothing in the estimator.
    state = copy.deepcopy(iso.__dict__)
    out, stats = iso.isolate(images)
    np.testing.assert_array_equal(iso.transform(images), out)
    np.testing.assert_equal(iso.__dict__, state)
    assert isinstance(stats, pd.DataFrame) and list(stats.index) == [0, 1]


def test_detection_scores():
    stats = pd.DataFrame({"neighbour_x": [5.0, np.nan, 1.0, 3.0], "neighbour_y": [0.0] * 4})
    frame = pd.DataFrame(
        {
            "n_neighbours": [1, 2, 0, 1],
            "neighbour_x": [10.0, 4.0, np.nan, -6.0],
            "neighbour_y": [0.0, 4.0, np.nan, 0.0],
        },
        index=[10, 11, 12, 13],  # a filtered frame: positions, not labels, are matched
    )
    # At zoom 1 the truth (zoom-0 pixels) halves: 10 -> 5 matches, -6 -> -3 does not.
    assert neighbour_detection_scores(stats, frame, zoom=1) == {
        "precision": 1 / 3,
        "recall": 1 / 3,
        "n_true": 3,
        "n_detected": 3,
        "n_matched": 1,
    }
    assert neighbour_detection_scores(stats, frame, zoom=0)["n_matched"] == 0
    none = neighbour_detection_scores(stats.iloc[2:3], frame.iloc[2:3])
    assert none["precision"] == 0 and np.isnan(none["recall"])
    with pytest.raises(KeyError, match=r"frame lacks \['n_neighbours'\]"):
        neighbour_detection_scores(stats, frame.drop(columns="n_neighbours"))
    with pytest.raises(ValueError, match="stats has 4 rows but frame has 2"):
        neighbour_detection_scores(stats, frame.iloc[:2])


@pytest.mark.parametrize("zoom", [0, 1])
def test_neighbours_of_the_synthetic_cube(synthetic_cube, zoom):
    from sklearn_sfr.datasets import load_hisscube

    data = load_hisscube(synthetic_cube, image_zoom=zoom, flag=None, modalities=("image",))
    out, stats = ObjectIsolator(random_state=0).fit(data.X).isolate(data.X)
    scores = neighbour_detection_scores(stats, data.frame, zoom=zoom)
    # Measured on 1000 objects: precision 0.96 / 0.96, recall 0.93 / 0.87 at zooms 0 / 1;
    # the base rate of neighbours (chance precision) is ~0.14. 80 objects hold ~10 neighbours.
    assert scores["n_true"] >= 5
    assert scores["precision"] >= 0.75, scores
    assert scores["recall"] >= 0.7, scores
    # Removed flux follows the neighbours' true share of the light.
    frame = data.frame.reset_index(drop=True)
    hit = (frame["n_neighbours"] > 0) & (stats["n_removed"] > 0)
    ratio = frame.loc[hit, "neighbour_flux_ratio_r"]
    share = ratio / (1 + ratio)
    assert np.median(np.abs(stats.loc[hit, "fraction_flux_removed_r"] - share)) < 0.1
    # Objects without neighbours are left alone.
    lone = (frame["n_neighbours"] == 0).to_numpy()
    unchanged = (out["image"][lone] == data.X["image"][lone]).all(axis=(1, 2, 3))
    assert unchanged.mean() >= 0.9
