"""Per-object scalars (the redshift) read by the heads, image augmentation by symmetry, and
the input scaling of in-memory fits (the same numbers without full-size copies)."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skorch.dataset import Dataset
from skorch.helper import SliceDict

from sklearn_sfr import ContrastiveRegressor, FusionRegressor, ImageRegressor
from sklearn_sfr.neural import _inputs
from sklearn_sfr.neural._inputs import InputScaler, ScaledArrays, _kth_of_two, _robust_scale
from sklearn_sfr.neural._modules import FusionNet, augment_images

FAST = {"max_epochs": 3, "batch_size": 32, "width": 8, "embed_dim": 16, "random_state": 0}


def _data(n=128, seed=0):
    """Images carry a, the redshift carries z; y needs both (as a luminosity needs a distance)."""
    rng = np.random.default_rng(seed)
    a, z = rng.normal(size=n), rng.uniform(0.02, 0.3, n)
    blob = np.exp(-((np.mgrid[:8, :8] - 3.5) ** 2).sum(0) / 6.0)
    images = (1.5 + a)[:, None, None, None] * blob + rng.normal(0, 0.05, (n, 5, 8, 8))
    spectra = 1e-17 * (1 + rng.normal(0, 0.05, (n, 64)))
    X = SliceDict(image=images.astype(np.float32), spectrum=spectra.astype(np.float32),
                  redshift=z)  # fmt: skip
    return X, a + 10 * z


def test_auto_reads_the_redshift_when_x_has_it():
    X, y = _data()
    with_z = ImageRegressor(**FAST).fit(X, y)
    assert with_z.scalar_keys_ == ("redshift",)
    assert with_z.net_.module_.n_scalars == 1
    without = ImageRegressor(**FAST, scalar_keys=None).fit(X, y)
    assert without.scalar_keys_ == () and without.net_.module_.n_scalars == 0
    # A bare array has no redshift: "auto" reads none.
    assert ImageRegressor(**FAST).fit(X["image"], y).scalar_keys_ == ()


def test_the_redshift_helps_when_the_target_needs_it():
    X, y = _data(n=400)
    params = {**FAST, "max_epochs": 30, "augment": None}
    rmse = {}
    for keys in ("auto", None):
        model = ImageRegressor(**params, scalar_keys=keys).fit(X[:300], y[:300])
        rmse[keys] = np.sqrt(np.mean((model.predict(X[300:]) - y[300:]) ** 2))
    assert rmse["auto"] < 0.8 * rmse[None], rmse


def test_missing_or_bad_scalars_are_named():
    X, y = _data()
    model = FusionRegressor(**FAST).fit(X, y)
    no_z = SliceDict(image=X["image"], spectrum=X["spectrum"])
    with pytest.raises(KeyError, match="redshift"):
        model.predict(no_z)
    with pytest.raises(TypeError, match="SliceDict"):
        ImageRegressor(**FAST, scalar_keys=["redshift"]).fit(X["image"], y)
    bad = SliceDict(image=X["image"], redshift=np.zeros((len(y), 2)))
    with pytest.raises(ValueError, match="one number per sample"):
        ImageRegressor(**FAST).fit(bad, y)


def test_nan_scalars_are_imputed_not_propagated():
    X, y = _data()
    z = X["redshift"].copy()
    z[::7] = np.nan
    X = SliceDict(image=X["image"], spectrum=X["spectrum"], redshift=z)
    pred = FusionRegressor(**FAST).fit(X, y).predict(X)
    assert np.isfinite(pred).all()


def test_contrastive_head_reads_the_scalars():
    X, y = _data()
    model = ContrastiveRegressor(**FAST, pretrain_epochs=1, projection_dim=8).fit(X, y)
    assert model.net_.module_.n_scalars == 1
    assert np.isfinite(model.predict(X)).all()


def test_fusion_net_refuses_missing_scalars():
    net = FusionNet("late", image_shape=(6, 8, 8), spectrum_shape=(2, 64), embed_dim=8,
                    n_scalars=1)  # fmt: skip
    image, spectrum = torch.zeros(3, 6, 8, 8), torch.zeros(3, 2, 64)
    assert net(image=image, spectrum=spectrum, scalars=torch.zeros(3, 1)).shape == (3, 1)
    with pytest.raises(ValueError, match="n_scalars=1"):
        net(image=image, spectrum=spectrum)
    with pytest.raises(ValueError, match=r"scalars must have shape \(n_samples, 1\)"):
        net(image=image, spectrum=spectrum, scalars=torch.zeros(3, 2))


def test_dihedral_augmentation_draws_all_eight_symmetries():
    torch.manual_seed(0)
    x = torch.arange(9.0).reshape(1, 1, 3, 3).repeat(400, 1, 1, 1)
    out = augment_images(x, "dihedral")
    # Every output is a symmetry of the square: the same pixel values, rearranged.
    assert torch.equal(out.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert torch.equal(out[:, 0, 1, 1], x[:, 0, 1, 1])  # the centre stays
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8
    flips = augment_images(x, "flip")
    assert len({tuple(o.flatten().tolist()) for o in flips}) == 2
    assert augment_images(x, None) is x
    with pytest.raises(ValueError, match="augment must be one of"):
        augment_images(x, "rotate")


def test_augmentation_only_while_training():
    X, y = _data()
    model = ImageRegressor(**FAST).fit(X, y)
    # Prediction never augments: the same input gives the same output every time.
    np.testing.assert_array_equal(model.predict(X), model.predict(X))
    assert model.net_.module_.image_encoder.augment == "dihedral"


# -- input scaling without full-size copies ---------------------------------------------------


def _reference_transform(scaler, arrays):
    """InputScaler.transform as first written: whole-array float64 temporaries (the
    definition the block-wise transform must reproduce bit for bit)."""
    out = {}
    for key, x in arrays.items():
        centre, scale = scaler.stats_[key]
        x = x.astype(np.float32)
        valid = np.isfinite(x)
        if key == "image":
            z = (x - centre[None, :, None, None]) / (3.0 * scale[None, :, None, None])
            mask = valid.mean(axis=1, keepdims=True)
        else:
            z = (x / (3.0 * scale))[:, None, :]
            mask = valid[:, None, :]
        values = np.where(np.isfinite(z), np.arcsinh(z), 0.0)
        out[key] = np.concatenate([values, mask], axis=1).astype(np.float32)
    return out


def _assert_identical(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def _messy_arrays(seed, n, bands, size, length, kind):
    """float32 images and spectra with NaN, ties, zeros and wide dynamic ranges."""
    rng = np.random.default_rng(seed)
    image_shape, spectrum_shape = (n, bands, size, size), (n, length)
    if kind == "normal":
        image, spectrum = rng.normal(size=image_shape), rng.normal(1e-17, 1e-18, spectrum_shape)
    elif kind == "ties":
        image = rng.integers(-2, 3, image_shape).astype(float)
        spectrum = rng.integers(0, 2, spectrum_shape).astype(float)
    elif kind == "zeros":
        image, spectrum = np.zeros(image_shape), np.zeros(spectrum_shape)
    else:  # "wide": many decades, both signs, a far-off median
        image = np.exp(rng.uniform(-60, 60, image_shape)) * rng.choice([-1, 1], image_shape)
        spectrum = rng.normal(1e30, 1e29, spectrum_shape)
    image, spectrum = image.astype(np.float32), spectrum.astype(np.float32)
    image[rng.uniform(size=image_shape) < rng.uniform(0, 0.6)] = np.nan
    spectrum[rng.uniform(size=spectrum_shape) < rng.uniform(0, 0.6)] = np.nan
    return image, spectrum


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    bands=st.integers(1, 5),
    size=st.sampled_from([1, 2, 5]),
    length=st.integers(1, 40),
    kind=st.sampled_from(["normal", "ties", "zeros", "wide"]),
    nan_band=st.booleans(),
)
def test_input_scaler_equals_its_float64_definition(seed, n, bands, size, length, kind, nan_band):
    """Statistics from one sorted float32 copy per band and block-wise scaling give the
    numbers of the whole-array float64 definition exactly, so fits do not change."""
    image, spectrum = _messy_arrays(seed, n, bands, size, length, kind)
    if nan_band:  # a band missing everywhere: NaN statistics, scale 1, zero inputs
        image[:, 0] = np.nan
    arrays = {"image": image, "spectrum": spectrum}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        scaler = InputScaler().fit(arrays)
        bands64 = np.moveaxis(image, 1, 0).reshape(bands, -1).astype(np.float64)
        expected = {
            "image": _robust_scale(bands64, axis=1),
            "spectrum": _robust_scale(spectrum.astype(np.float64).ravel()),
        }
    for key in arrays:
        for actual, reference in zip(scaler.stats_[key], expected[key]):
            assert type(actual) is type(reference)
            _assert_identical(actual, reference)
    reference = _reference_transform(scaler, arrays)
    for key, values in scaler.transform(arrays).items():
        _assert_identical(values, reference[key])


def test_transform_blocks_do_not_change_the_values(monkeypatch):
    image, spectrum = _messy_arrays(0, 37, 5, 8, 100, "normal")
    arrays = {"image": image, "spectrum": spectrum}
    scaler = InputScaler().fit(arrays)
    whole = scaler.transform(arrays)
    monkeypatch.setattr(_inputs, "_BLOCK_VALUES", 700)  # a few rows per block, a ragged end
    for key, values in scaler.transform(arrays).items():
        _assert_identical(values, whole[key])
    # A batch's rows scale to the same values as within the whole array.
    rows = [5, 0, 36, 5]
    batch = scaler.transform({k: v[rows] for k, v in arrays.items()})
    for key, values in batch.items():
        _assert_identical(values, whole[key][rows])


@settings(max_examples=200, deadline=None)
@given(
    a=st.lists(st.integers(-20, 20), max_size=12),
    b=st.lists(st.integers(-20, 20), max_size=12),
    data=st.data(),
)
def test_kth_of_two_sorted_sequences(a, b, data):
    a, b = sorted(a), sorted(b)
    merged = sorted(a + b)
    if not merged:
        return
    k = data.draw(st.integers(0, len(merged) - 1))
    assert _kth_of_two(a.__getitem__, len(a), b.__getitem__, len(b), k) == merged[k]


def test_in_memory_fit_scales_batches_as_the_scaled_arrays_would():
    """The fit hands skorch the unscaled arrays (scaled batch by batch, no scaled copy): the
    items are the rows of the scaled SliceDict, and the fit, its validation split included,
    is the one a SliceDict of scaled arrays gives (kept for a user's skorch ``dataset``)."""
    X, y = _data(n=96)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    model = FusionRegressor(**FAST).fit(X, y, sample_weight=w)
    arrays = model._arrays(X)
    data = ScaledArrays(arrays, model.scaler_, y[:, None], w.astype(np.float32))
    scaled = model._net_inputs(arrays, w.astype(np.float32))
    items = data.__getitems__([3, 90])
    for j, row in enumerate([3, 90]):
        assert set(items[j][0]) == set(scaled)
        for key, values in items[j][0].items():
            _assert_identical(values, scaled[key][row])
        assert items[j][1] == y[row]
    with_copy = FusionRegressor(**FAST, net_kwargs={"dataset": Dataset})
    with_copy.fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(model.predict(X), with_copy.predict(X))
    for key in ("train_loss", "valid_loss"):
        assert model.net_.history[:, key] == with_copy.net_.history[:, key]
    # A fixed seed gives the same predictions run to run.
    again = FusionRegressor(**FAST).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(model.predict(X), again.predict(X))


def test_predict_scales_batch_by_batch(monkeypatch):
    """predict scales X one batch at a time (no scaled copy of X), with the predictions
    the network gives on the whole scaled SliceDict."""
    X, y = _data(n=96)
    model = FusionRegressor(**FAST).fit(X, y)
    whole = model.net_.forward(model._net_inputs(model._arrays(X)), training=False)
    expected = whole.numpy()[:, 0] * model.y_scale_ + model.y_mean_
    rows = []
    transform = InputScaler.transform

    def spy(self, arrays):
        rows.append(len(next(iter(arrays.values()))))
        return transform(self, arrays)

    monkeypatch.setattr(InputScaler, "transform", spy)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-6, atol=1e-6)
    assert rows and max(rows) <= model.net_.batch_size < len(y)
