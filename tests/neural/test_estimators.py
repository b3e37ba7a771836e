"""Neural estimators: every fusion strategy, learning, uncertainty and input guards.

The scikit-learn contract of each estimator (clone, pickle, skops, reproducible fits,
pipelines, cross-validation, grid search) is checked in tests/test_common.py; here it is
checked again for each fusion strategy that is not the default.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from skorch.helper import SliceDict

from sklearn_sfr import FusionRegressor, ImageRegressor, SpectrumRegressor
from sklearn_sfr.neural import FUSIONS
from sklearn_sfr.preprocessing import CentralCrop, SpectrumRebin
from tests.test_common import check_contract, make_instance

FAST = {"max_epochs": 2, "batch_size": 32, "width": 8, "embed_dim": 16, "random_state": 0}


def _data(n=96, size=16, length=577, seed=0, noise=0.05):
    """Images and spectra in physical-looking units whose target depends on both."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    yy, xx = np.mgrid[:size, :size] - size / 2
    blob = np.exp(-(xx**2 + yy**2) / 8.0)
    images = rng.normal(0, 0.05, size=(n, 5, size, size)) + (1.5 + a)[:, None, None, None] * blob
    wl = np.linspace(0, 1, length)
    line = np.exp(-((wl - 0.6) ** 2) / 1e-4)
    spectra = 1e-17 * (1 + rng.normal(0, 0.05, size=(n, length)) + (1.5 + b)[:, None] * line)
    spectra[:, 10:20] = np.nan  # masked pixels, as real spectra have
    y = a + b + rng.normal(0, noise, n)
    X = SliceDict(image=images.astype(np.float32), spectrum=spectra.astype(np.float32))
    return X, y, a, b


@pytest.mark.parametrize("fusion", [f for f in FUSIONS if f != FusionRegressor().fusion])
def test_every_fusion_keeps_the_contract(fusion):
    # Fit, finite predictions, clone, the same predictions from the same random_state (CPU),
    # pickle and skops (which lists the estimator's type as one the user must trust), a
    # pipeline in cross_validate and GridSearchCV: as test_common checks the default fusion.
    check_contract(make_instance(FusionRegressor).set_params(fusion=fusion))


def test_single_modality_accepts_bare_arrays():
    X, y, *_ = _data()
    a = ImageRegressor(**FAST).fit(X["image"], y).predict(X["image"])
    b = ImageRegressor(**FAST).fit(X, y).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert SpectrumRegressor(**FAST).fit(X["spectrum"], y).predict(X["spectrum"]).shape == (96,)


def test_two_d_target_never_broadcasts():
    X, y, *_ = _data()
    a = SpectrumRegressor(**FAST).fit(X, y).predict(X)
    b = SpectrumRegressor(**FAST).fit(X, y[:, None]).predict(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="y must be 1-D"):
        SpectrumRegressor(**FAST).fit(X, np.c_[y, y])


def test_pipeline_cross_validate_and_grid_search():
    X, y, *_ = _data(size=32, length=1155)
    model = make_pipeline(CentralCrop(16), SpectrumRebin(2), FusionRegressor(**FAST))
    res = cross_validate(model, X, y, cv=KFold(2, shuffle=True, random_state=0), n_jobs=2)
    assert np.isfinite(res["test_score"]).all()
    search = GridSearchCV(FusionRegressor(**FAST), {"fusion": ["intermediate", "late"]}, cv=2).fit(
        X, y
    )
    assert search.best_params_["fusion"] in ("intermediate", "late")


@pytest.mark.parametrize(
    "est",
    [ImageRegressor(), SpectrumRegressor(), FusionRegressor("intermediate"),
     FusionRegressor("cross_attention")],
    ids=["image", "spectrum", "intermediate", "cross_attention"],
)  # fmt: skip
def test_learns_more_than_the_mean(est):
    X, y, *_ = _data(n=400, size=16, length=577)
    train, test = np.arange(300), np.arange(300, 400)
    model = clone(est).set_params(max_epochs=40, width=8, embed_dim=16, random_state=0)
    model.fit(X[train], y[train])
    rmse = mean_squared_error(y[test], model.predict(X[test])) ** 0.5
    dummy = DummyRegressor().fit(X["spectrum"][train], y[train])
    base = mean_squared_error(y[test], dummy.predict(X["spectrum"][test])) ** 0.5
    # A single modality sees half of the signal (y = a + b); fusion sees all of it.
    assert rmse < (0.9 if len(est._modalities) == 1 else 0.6) * base


def test_gaussian_nll_std_tracks_label_noise():
    X, _, _, b = _data(n=400, noise=0.0)
    rng = np.random.default_rng(1)
    # The target is the spectral line's strength b, with labels much noisier where b > 0.
    y = b + rng.normal(0, np.where(b > 0, 1.0, 0.1))
    model = SpectrumRegressor(loss="gaussian_nll", max_epochs=40, width=8, embed_dim=16,
                              random_state=0).fit(X, y)  # fmt: skip
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == (400,) and (std > 0).all()
    assert np.median(std[b > 0.5]) > 2 * np.median(std[b < -0.5])
    with pytest.raises(ValueError, match="gaussian_nll"):
        SpectrumRegressor(**FAST).fit(X, y).predict(X, return_std=True)


def test_sample_weight_changes_the_fit():
    X, y, *_ = _data()
    w = np.where(np.arange(len(y)) % 2 == 0, 1.0, 0.0)
    a = SpectrumRegressor(**FAST).fit(X, y).predict(X)
    b = SpectrumRegressor(**FAST).fit(X, y, sample_weight=w).predict(X)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="sample_weight"):
        SpectrumRegressor(**FAST).fit(X, y, sample_weight=-w)


def test_guards():
    X, y, *_ = _data()
    with pytest.raises(KeyError, match="no key 'spectrum'"):
        FusionRegressor(**FAST).fit(SliceDict(image=X["image"]), y)
    with pytest.raises(TypeError, match="plain dict"):
        FusionRegressor(**FAST).fit(dict(X), y)
    with pytest.raises(TypeError, match="SliceDict with keys"):
        FusionRegressor(**FAST).fit(X["image"], y)
    bad = X["spectrum"].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        SpectrumRegressor(**FAST).fit(bad, y)
    bad = X["spectrum"].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="entirely NaN"):
        SpectrumRegressor(**FAST).fit(bad, y)
    with pytest.raises(ValueError, match="NaN or infinity"):
        SpectrumRegressor(**FAST).fit(X, np.where(np.arange(len(y)) == 0, np.nan, y))
    model = ImageRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="fitted on"):
        model.predict(CentralCrop(8).fit_transform(X))
    with pytest.raises(ValueError, match="fusion"):
        FusionRegressor(fusion="sideways").fit(X, y)
