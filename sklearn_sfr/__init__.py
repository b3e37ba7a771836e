"""sklearn-sfr: scikit-learn compatible multi-modal learning on HiSS-Cube survey data.

Subpackages and the estimators are imported on first use, so ``import sklearn_sfr`` stays fast
and never imports torch (only :mod:`sklearn_sfr.neural` does).
"""

import importlib

from ._version import __version__

_SUBMODULES = (
    "datasets",
    "experiments",
    "features",
    "metrics",
    "model_selection",
    "neural",
    "plotting",
    "preprocessing",
)

#: Public estimators reachable as ``sklearn_sfr.<name>``, and the subpackage holding each.
_ESTIMATORS = {
    "ContrastiveRegressor": "neural",
    "FusionClassifier": "neural",
    "FusionRegressor": "neural",
    "ImageRegressor": "neural",
    "SpectrumRegressor": "neural",
}

__all__ = ["__version__", *_SUBMODULES, *_ESTIMATORS]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _ESTIMATORS:
        return getattr(importlib.import_module(f"{__name__}.{_ESTIMATORS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
