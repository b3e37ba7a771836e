"""FusionClassifier on image + 1-D inputs (the Scene study's image + MFCC audio shape)."""

import numpy as np
import pytest
from skorch.helper import SliceDict

from sklearn_sfr import FusionClassifier

FAST = {"max_epochs": 30, "batch_size": 32, "width": 8, "embed_dim": 16, "random_state": 0}


def _scenes(n=240, seed=0):
    """Three classes: one told by image colour, one by audio, the third by neither alone."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    image = rng.normal(0, 1, size=(n, 3, 16, 16)).astype(np.float32)
    audio = rng.normal(0, 1, size=(n, 104)).astype(np.float32)
    image[kind == 0, 0] += 2.0  # red scenes
    audio[kind == 1, :13] += 2.0  # loud low coefficients
    labels = np.array(["BEACH", "CITY", "FOREST"])[kind]
    return SliceDict(image=image, audio=audio), labels


def test_fit_predict_proba_and_labels():
    X, y = _scenes()
    clf = FusionClassifier(sequence_key="audio", **FAST).fit(X[:180], y[:180])
    proba = clf.predict_proba(X[180:])
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(clf.classes_) == ["BEACH", "CITY", "FOREST"]
    accuracy = (clf.predict(X[180:]) == y[180:]).mean()
    assert accuracy > 0.8  # chance is 1/3; each class needs one modality or both


@pytest.mark.parametrize("keys", [{"sequence_key": None}, {"image_key": None}])
def test_single_modality(keys):
    X, y = _scenes(n=120)
    keys = {"sequence_key": "audio", **keys}
    clf = FusionClassifier(**keys, **{**FAST, "max_epochs": 3}).fit(X, y)
    assert clf.predict(X).shape == (120,)


def test_params_and_errors():
    # Clone, pickle, skops and cross-validation are checked in tests/test_common.py.
    X, y = _scenes(n=120)
    clf = FusionClassifier(sequence_key="audio", fusion="late", **{**FAST, "max_epochs": 3})
    assert "loss" not in clf.get_params()
    with pytest.raises(ValueError, match="single class"):
        clf.fit(X, np.full(120, "CITY"))
    with pytest.raises(KeyError, match="no key 'spectrum'"):
        FusionClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="both be None"):
        FusionClassifier(image_key=None, sequence_key=None, **FAST).fit(X, y)
