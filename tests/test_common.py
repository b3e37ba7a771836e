"""scikit-learn's common checks on every estimator that takes a 2-D table, and the
multi-modal contract (clone, params, pickling, pipelines, CV, grid search) on the others."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.helper import SliceDict

from sklearn_sfr.features import PhotometryFeatures, SpectralLineFeatures
from sklearn_sfr.preprocessing import (
    CentralCrop,
    FlattenBands,
    ImageScaler,
    ModalitySelector,
    ObjectIsolator,
    SpectrumNormalizer,
    SpectrumRebin,
)

TABULAR = [SpectrumRebin(2), SpectrumNormalizer(), SpectrumNormalizer(method="continuum")]


@parametrize_with_checks(TABULAR)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _multimodal(n=40, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 5, 16, 16)).astype(np.float32)
    spectra = rng.normal(1.0, 0.1, size=(n, 577)).astype(np.float32)
    y = images[:, 2, 8, 8] + spectra[:, 100]
    redshift = rng.uniform(0.02, 0.2, n)
    return SliceDict(image=images, spectrum=spectra, flag=np.zeros(n), redshift=redshift), y


# Each multi-modal transformer with the step that makes its output a table for a tree.
MULTIMODAL = [
    (CentralCrop(8), [FlattenBands()]),
    (ImageScaler(), [FlattenBands()]),
    (FlattenBands(), []),
    (SpectrumRebin(4), [ModalitySelector("spectrum")]),
    (SpectrumNormalizer(), [ModalitySelector("spectrum")]),
    (SpectralLineFeatures(), []),
    (PhotometryFeatures(), []),
    (ObjectIsolator(random_state=0), [FlattenBands()]),
]


@pytest.mark.parametrize(("transformer", "then"), MULTIMODAL, ids=lambda t: type(t).__name__)
def test_multimodal_contract(transformer, then):
    X, y = _multimodal()
    params = transformer.get_params()
    twin = clone(transformer)
    assert twin.get_params() == params and twin is not transformer
    twin.set_params(**params)
    fitted = clone(transformer).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    a, b = fitted.transform(X), restored.transform(X)
    if isinstance(a, dict):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    else:
        np.testing.assert_array_equal(a, b)
    model = make_pipeline(clone(transformer), *[clone(t) for t in then],
                          DecisionTreeRegressor(max_depth=3, random_state=0))  # fmt: skip
    res = cross_validate(model, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert np.isfinite(res["test_score"]).all()
    first = model.steps[0][0]
    name, value = next(iter(params.items()))
    search = GridSearchCV(model, {f"{first}__{name}": [value]}, cv=2).fit(X, y)
    assert search.best_estimator_.predict(X[:3]).shape == (3,)
