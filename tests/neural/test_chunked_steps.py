"""Training batches whose activations exceed the budget run in chunks of rows (issue #21).

A chunked step must be the step of the whole batch (the loss is a per-sample mean, so the
chunks' gradients add up to the batch's), and nothing else may change: no chunking where a
batch fits, none with batch-dependent layers, the random stream untouched by the measuring.
"""

import pickle

import numpy as np
import pytest
import torch

from sklearn_sfr import FusionRegressor
from sklearn_sfr.neural import _base
from sklearn_sfr.neural._modules import FusionNet
from tests.neural.test_estimators import _data

# No dropout and no augmentation: the only randomness left is the weights' initialisation
# and the shuffling, which chunking does not touch, so chunked and whole fits can be compared.
DETERMINISTIC = {
    "max_epochs": 2,
    "batch_size": 32,
    "width": 8,
    "embed_dim": 16,
    "dropout": 0.0,
    "augment": None,
    "random_state": 0,
    "device": "cpu",
}


def _count_infer(monkeypatch):
    """Count the net's forward passes (``infer`` calls)."""
    calls = []
    infer = _base._WeightedNet.infer

    def counting(self, x, **fit_params):
        calls.append(len(next(iter(x.values()))))
        return infer(self, x, **fit_params)

    monkeypatch.setattr(_base._WeightedNet, "infer", counting)
    return calls


def _fit(monkeypatch, budget, sample_weight=None, **params):
    monkeypatch.setattr(_base, "STEP_ACTIVATION_BUDGET", budget)
    X, y, *_ = _data(n=80, size=8)
    model = FusionRegressor(**{**DETERMINISTIC, **params}).fit(X, y, sample_weight=sample_weight)
    return model, X


@pytest.mark.parametrize("weighted", [False, True])
def test_a_chunked_step_is_the_step_of_the_whole_batch(monkeypatch, weighted):
    # Weights with zeros: a chunk whose weights are all zero must count for nothing.
    weight = np.tile([0.0, 0.0, 0.0, 1.0, 2.0], 16) if weighted else None
    whole, X = _fit(monkeypatch, float("inf"), weight)
    calls = _count_infer(monkeypatch)
    chunked, _ = _fit(monkeypatch, 1, weight)  # one row per chunk
    assert max(calls) == 1  # every forward pass was one row
    np.testing.assert_allclose(chunked.predict(X), whole.predict(X), rtol=1e-4, atol=1e-5)
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(
            chunked.net_.history[:, key], whole.net_.history[:, key], rtol=1e-4, atol=1e-6
        )


def test_predictions_in_chunks_equal_those_of_whole_batches(monkeypatch):
    model, X = _fit(monkeypatch, float("inf"))
    whole = model.predict(X)
    monkeypatch.setattr(_base, "STEP_ACTIVATION_BUDGET", 1)
    calls = _count_infer(monkeypatch)
    np.testing.assert_allclose(model.predict(X), whole, rtol=1e-5, atol=1e-6)
    assert set(calls) == {1}


def test_batch_norm_is_never_chunked(monkeypatch):
    # BatchNorm normalises over the batch: a chunk's statistics would not be the batch's.
    calls = _count_infer(monkeypatch)
    _fit(monkeypatch, 1, norm="batch", max_epochs=1)
    assert max(calls) == 32  # whole batches of batch_size


def test_measuring_leaves_the_random_stream_and_the_saved_state_alone(monkeypatch):
    model, X = _fit(monkeypatch, 1)
    net = model.net_
    assert net._row_bytes  # measured while fitting
    state = torch.get_rng_state()
    inputs = {"image": torch.zeros(2, 6, 8, 8), "spectrum": torch.zeros(2, 2, 577)}
    assert _base._saved_bytes(net.module_.train(), inputs) > 0
    assert torch.equal(torch.get_rng_state(), state)
    # The rows per chunk are a cache of this process, not part of the fitted model.
    assert "_row_bytes" not in net.__getstate__()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X))


@pytest.mark.parametrize(("image", "spectrum", "chunked"), [(64, 4620, True), (8, 577, False)])
def test_the_budget_chunks_large_images_only(image, spectrum, chunked):
    # The default network (FusionRegressor's widths) on a batch of 128: about 5 MB of
    # activations per 64 px object, so those batches run in chunks; small inputs never do.
    net = FusionNet(
        image_shape=(6, image, image),
        spectrum_shape=(2, spectrum),
        width=32,
        depth=3,
        spectrum_depth=4,
        norm="group",
        n_scalars=1,
        augment="dihedral",
    ).train()
    inputs = {
        "image": torch.zeros(2, 6, image, image),
        "spectrum": torch.zeros(2, 2, spectrum),
        "scalars": torch.zeros(2, 1),
    }
    batch = 128 * _base._saved_bytes(net, inputs) / 2
    assert (batch > _base.STEP_ACTIVATION_BUDGET) == chunked
