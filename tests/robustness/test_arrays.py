"""Attack catalogue, arrays: every transformer and estimator against malformed inputs.

Wrong ndim, wrong band count, wrong spectrum length for a fitted model, NaN and infinity,
all-masked rows, empty input, one sample, object dtype, a plain dict, a 2-D target: each is a
clear error naming the key and the shape, or a documented handling; a prediction is never NaN.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from skorch.helper import SliceDict

from sklearn_sfr.features import ColourFeatures, PhotometryFeatures, SpectralLineFeatures
from sklearn_sfr.neural import (
    ContrastiveRegressor,
    FusionClassifier,
    FusionRegressor,
    ImageRegressor,
    SpectrumRegressor,
)
from sklearn_sfr.preprocessing import (
    CentralCrop,
    FlagFilter,
    FlattenBands,
    ImageScaler,
    ModalitySelector,
    ObjectIsolator,
    SpectrumNormalizer,
    SpectrumRebin,
)

N, S, L = 12, 16, 577
TINY = dict(width=4, depth=1, embed_dim=8, max_epochs=2, batch_size=8, random_state=0)
TINY_NET = dict(**TINY, validation_fraction=0, device="cpu")

# Each estimator with the keys of X it reads.
TRANSFORMERS = {
    "CentralCrop": (CentralCrop(8), ("image",)),
    "ImageScaler": (ImageScaler(), ("image",)),
    "FlattenBands": (FlattenBands(), ("image",)),
    "PhotometryFeatures": (PhotometryFeatures(), ("image",)),
    "ObjectIsolator": (ObjectIsolator(random_state=0), ("image",)),
    "ColourFeatures": (ColourFeatures(), ("image",)),
    "SpectrumRebin": (SpectrumRebin(4), ("spectrum",)),
    "SpectrumNormalizer": (SpectrumNormalizer(), ("spectrum",)),
    "SpectralLineFeatures": (SpectralLineFeatures(), ("spectrum",)),
}
NEURAL = {
    "ImageRegressor": (ImageRegressor(**TINY_NET), ("image",)),
    "SpectrumRegressor": (SpectrumRegressor(**TINY_NET), ("spectrum",)),
    "FusionRegressor": (FusionRegressor(**TINY_NET), ("image", "spectrum")),
    "ContrastiveRegressor": (
        ContrastiveRegressor(pretrain_epochs=1, **TINY_NET),
        ("image", "spectrum"),
    ),
    "FusionClassifier": (FusionClassifier(**TINY_NET), ("image", "spectrum")),
}
ALL = {**TRANSFORMERS, **NEURAL}
READS = [(name, key) for name, (_, keys) in ALL.items() for key in keys]


def make_X(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return SliceDict(
        image=rng.normal(1.0, 0.3, size=(n, 5, S, S)).astype(np.float32),
        spectrum=rng.normal(1.0, 0.1, size=(n, L)).astype(np.float32),
        flag=np.zeros(n),
        redshift=rng.uniform(0.02, 0.2, n),
    )


def target(name, n=N):
    y = np.random.default_rng(1).normal(size=n)
    return (np.arange(n) % 2).astype(int) if name == "FusionClassifier" else y


def with_key(X, key, value):
    return SliceDict(**{**X, key: value})


def output(est, X):
    """predict for estimators, transform for transformers."""
    return est.predict(X) if hasattr(est, "predict") else est.transform(X)


def fit_output(name, X, y=None):
    """Fit a fresh clone of estimator ``name`` on X and return its output on X."""
    est = clone(ALL[name][0])
    est.fit(X, target(name, len(X["image"])) if y is None else y)
    return output(est, X)


@pytest.fixture(scope="module")
def fitted():
    """Every estimator fitted once on good data (predict-time attacks reuse them)."""
    X = make_X()
    return {name: clone(est).fit(X, target(name)) for name, (est, _) in ALL.items()}


# -- fit-time attacks on each key an estimator reads ---------------------------------------
def _wrong_ndim(x):
    return x[..., 0]


def _object(x):
    return x.astype(object)


def _inf(x):
    x = x.copy()
    x.flat[3] = np.inf
    return x


def _empty(x):
    return x[:0]


FIT_ATTACKS = {
    "wrong ndim": (_wrong_ndim, ValueError, r"X\['{key}'\] must have shape"),
    "object dtype": (_object, TypeError, r"X\['{key}'\] must be a numeric array"),
    "infinity": (_inf, ValueError, r"X\['{key}'\] contains infinity"),
    "empty": (_empty, ValueError, r"is empty|no samples"),
}


@pytest.mark.parametrize("attack", FIT_ATTACKS)
@pytest.mark.parametrize(("name", "key"), READS)
def test_fit_refuses_malformed_arrays(name, key, attack):
    change, error, message = FIT_ATTACKS[attack]
    X = make_X()
    # "empty" empties every key, as a slice of no rows would.
    X = X[:0] if attack == "empty" else with_key(X, key, change(X[key]))
    with pytest.raises(error, match=message.format(key=key)):
        fit_output(name, X, target(name, len(X[key])))


@pytest.mark.parametrize("name", ALL)
def test_plain_dict_is_refused_with_a_remedy(name, fitted):
    X = dict(make_X())
    with pytest.raises(TypeError, match=r"plain dict; wrap it in skorch.helper.SliceDict"):
        clone(ALL[name][0]).fit(X, target(name))
    with pytest.raises(TypeError, match="plain dict"):
        output(fitted[name], X)


def test_plain_dict_is_refused_by_selectors():
    X, y = dict(make_X()), target("FlagFilter")
    with pytest.raises(TypeError, match="plain dict"):
        FlagFilter().fit_resample(X, y)
    with pytest.raises(TypeError, match="plain dict"):
        ModalitySelector("spectrum").fit(X, y)


# -- predict-time attacks on fitted estimators --------------------------------------------
BAND_BOUND = [n for n, (_, keys) in ALL.items() if "image" in keys and n != "CentralCrop"]
LENGTH_BOUND = [n for n, (_, keys) in ALL.items() if "spectrum" in keys]


@pytest.mark.parametrize("bands", [3, 6])
@pytest.mark.parametrize("name", BAND_BOUND)
def test_wrong_band_count_for_a_fitted_model(fitted, name, bands):
    X = make_X()
    image = np.concatenate([X["image"], X["image"]], axis=1)[:, :bands]
    with pytest.raises(ValueError, match=rf"{bands}|bands"):
        output(fitted[name], with_key(X, "image", image))


@pytest.mark.parametrize("length", [300, 1154])
@pytest.mark.parametrize("name", LENGTH_BOUND)
def test_wrong_spectrum_length_for_a_fitted_model(fitted, name, length):
    X = make_X()
    spectrum = np.tile(X["spectrum"], (1, 2))[:, :length]
    with pytest.raises(ValueError, match=rf"X\['spectrum'\] has (shape \(12, )?{length}"):
        output(fitted[name], with_key(X, "spectrum", spectrum))


def test_central_crop_takes_any_band_count(fitted):
    # Documented handling: a crop is per pixel, so it works on any number of bands.
    X = make_X()
    out = fitted["CentralCrop"].transform(with_key(X, "image", X["image"][:, :3]))
    assert out["image"].shape == (N, 3, 8, 8)


@pytest.mark.parametrize("name", NEURAL)
def test_all_masked_rows_are_refused_by_networks(fitted, name):
    X = make_X()
    for key in NEURAL[name][1]:
        x = X[key].copy()
        x[[2, 5]] = np.nan
        with pytest.raises(ValueError, match=rf"X\['{key}'\] has 2 rows that are entirely NaN"):
            fitted[name].predict(with_key(X, key, x))
        with pytest.raises(ValueError, match="entirely NaN"):
            clone(NEURAL[name][0]).fit(with_key(X, key, x), target(name))


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_all_masked_rows_pass_through_transformers(fitted, name):
    # Documented handling: transformers keep NaN rows (a FlagFilter or the model decides);
    # the output has one row per input row and never infinity.
    X = make_X()
    key = TRANSFORMERS[name][1][0]
    x = X[key].copy()
    x[[2, 5]] = np.nan
    out = fitted[name].transform(with_key(X, key, x))
    arr = np.asarray(out[key] if isinstance(out, dict) else out, dtype=np.float64)
    assert arr.shape[0] == N and not np.isinf(arr).any()


@settings(max_examples=10, deadline=None)
@given(
    fraction=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
    which=st.sampled_from(["FusionRegressor", "ContrastiveRegressor", "FusionClassifier"]),
)
def test_partly_masked_inputs_never_give_nan_predictions(fitted, fraction, seed, which):
    X = make_X()
    rng = np.random.default_rng(seed)
    arrays = {}
    for key in ("image", "spectrum"):
        x = X[key].copy()
        mask = rng.random(x.shape) < fraction
        mask.reshape(N, -1)[:, 0] = False  # keep one valid pixel per row
        x[mask] = np.nan
        arrays[key] = x
    est = fitted[which]
    pred = est.predict(SliceDict(**{**X, **arrays}))
    assert pred.shape == (N,)
    if which == "FusionClassifier":
        assert set(pred) <= set(est.classes_)
        assert np.isfinite(est.predict_proba(SliceDict(**{**X, **arrays}))).all()
    else:
        assert np.isfinite(pred).all()


@pytest.mark.parametrize("name", NEURAL)
def test_predict_on_empty_input(fitted, name):
    with pytest.raises(ValueError, match="is empty"):
        fitted[name].predict(make_X()[:0])


# -- one sample ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRANSFORMERS)
def test_single_sample_transformers(fitted, name):
    X = make_X()
    out = fit_output(name, X[:1])
    assert len(out[TRANSFORMERS[name][1][0]] if isinstance(out, dict) else out) == 1
    one = output(fitted[name], X[:1])
    assert len(one[TRANSFORMERS[name][1][0]] if isinstance(one, dict) else one) == 1


@pytest.mark.parametrize("name", [n for n in NEURAL if n != "FusionClassifier"])
def test_single_sample_networks(fitted, name):
    X = make_X()
    pred = clone(NEURAL[name][0]).fit(X[:1], target(name, 1)).predict(X[:1])
    assert pred.shape == (1,) and np.isfinite(pred).all()
    assert np.isfinite(fitted[name].predict(X[:1])).all()


@pytest.mark.parametrize("name", ["ImageRegressor", "SpectrumRegressor", "FusionRegressor"])
def test_single_sample_with_a_validation_split_says_why(name):
    est = clone(NEURAL[name][0]).set_params(validation_fraction=0.1)
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 holds out every one of the 1"):
        est.fit(make_X()[:1], target(name, 1))


def test_single_class_is_refused_by_the_classifier():
    with pytest.raises(ValueError, match="y has a single class 1; need at least two"):
        clone(NEURAL["FusionClassifier"][0]).fit(make_X()[:3], np.ones(3, int))


# -- targets ---------------------------------------------------------------------------------
REGRESSORS = [n for n in NEURAL if n != "FusionClassifier"]


@pytest.mark.parametrize("name", NEURAL)
def test_two_column_target_is_refused(name):
    y = np.c_[target(name), target(name)]
    with pytest.raises(ValueError, match=r"y must be 1-D"):
        clone(NEURAL[name][0]).fit(make_X(), y)


@pytest.mark.parametrize("name", REGRESSORS)
def test_column_target_is_the_same_as_a_flat_one(fitted, name):
    X = make_X()
    pred = clone(NEURAL[name][0]).fit(X, target(name)[:, None]).predict(X)
    np.testing.assert_array_equal(pred, fitted[name].predict(X))


@pytest.mark.parametrize("name", REGRESSORS)
def test_target_of_the_wrong_length_or_with_nan(name):
    X, y = make_X(), target(name)
    with pytest.raises(ValueError, match=f"y has {N - 1} values but X has {N} samples"):
        clone(NEURAL[name][0]).fit(X, y[:-1])
    y = y.copy()
    y[0] = np.inf
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        clone(NEURAL[name][0]).fit(X, y)


def test_contrastive_takes_unlabelled_rows():
    # Documented handling: NaN marks an unlabelled row that only takes part in pretraining.
    X, y = make_X(), target("ContrastiveRegressor")
    y[:4] = np.nan
    pred = clone(NEURAL["ContrastiveRegressor"][0]).fit(X, y).predict(X)
    assert np.isfinite(pred).all()
    with pytest.raises(ValueError, match="y is NaN for every row"):
        clone(NEURAL["ContrastiveRegressor"][0]).fit(X, np.full(N, np.nan))
