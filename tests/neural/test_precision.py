"""precision="bfloat16": the forward passes run under bfloat16 autocast, the outputs, weights
and loss stay float32, and every neural estimator takes it."""

import numpy as np
import pytest
import torch
from skorch.helper import SliceDict

from sklearn_sfr.neural import FusionClassifier, FusionRegressor, SpectrumRegressor
from sklearn_sfr.neural._contrastive import ContrastiveRegressor
from sklearn_sfr.utils._sklearn import InvalidParameterError

FAST = {"max_epochs": 2, "width": 4, "embed_dim": 8, "batch_size": 16, "random_state": 0,
        "device": "cpu"}  # fmt: skip


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    X = SliceDict(
        image=(np.exp(a)[:, None, None, None] * rng.lognormal(size=(n, 5, 8, 8))).astype("f4"),
        spectrum=(1e-17 * (2 + a[:, None] + rng.normal(size=(n, 64)))).astype("f4"),
    )
    return X, a


def _conv_dtypes(model):
    """Record the output dtype of every convolution of ``model``'s fitted network."""
    seen = []
    for layer in model.net_.module_.modules():
        if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d):
            layer.register_forward_hook(lambda _, __, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("fusion", ["intermediate", "cross_attention"])
def test_bfloat16_runs_the_convolutions_in_bfloat16(fusion):
    X, y = _data()
    model = FusionRegressor(fusion, precision="bfloat16", **FAST).fit(X, y)
    seen = _conv_dtypes(model)
    prediction = model.predict(X)
    assert seen and set(seen) == {torch.bfloat16}
    assert prediction.dtype == np.float64 and np.isfinite(prediction).all()
    # The weights stay float32 (mixed precision), and the default computes in float32.
    assert {p.dtype for p in model.net_.module_.parameters()} == {torch.float32}
    default = FusionRegressor(fusion, **FAST).fit(X, y)
    seen = _conv_dtypes(default)
    default.predict(X)
    assert set(seen) == {torch.float32}


def test_every_neural_estimator_takes_the_precision():
    X, y = _data()
    for model in (SpectrumRegressor(**FAST), ContrastiveRegressor(pretrain_epochs=2, **FAST)):
        fitted = model.set_params(precision="bfloat16").fit(X, y)
        assert np.isfinite(fitted.predict(X)).all()
        assert fitted.net_.precision == "bfloat16"
    assert fitted.pretrain_net_.precision == "bfloat16"  # the pretraining too
    labels = np.where(y > 0, "bright", "faint")
    classifier = FusionClassifier(precision="bfloat16", **FAST).fit(X, labels)
    proba = classifier.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_an_unknown_precision_is_refused():
    X, y = _data()
    with pytest.raises(InvalidParameterError, match="precision"):
        FusionRegressor(precision="float16", **FAST).fit(X, y)
