"""Model selection: Optuna tuning with cross-validation, and blocked splits.

:class:`OptunaSearchCV` runs a resumable, database-backed Optuna search with cross-validation,
for any scikit-learn estimator. :class:`BlockedFrameSplit` keeps blocks of correlated samples
(consecutive video frames) together in cross-validation. Importing this package does not
import torch or optuna.

The study's named models (:func:`~sklearn_sfr.experiments.make_model`,
:data:`~sklearn_sfr.experiments.MODEL_NAMES`, ...) and :func:`~sklearn_sfr.experiments.tune`
moved to :mod:`sklearn_sfr.experiments`, the layer that knows the study's models; importing
them from here still works, with a ``FutureWarning``.
"""

import importlib
import warnings

from ._blocked import BlockedFrameSplit, block_ids, frame_blocks
from ._search import DEFAULT_STORAGE, OptunaSearchCV, storage_url

#: Names that moved to sklearn_sfr.experiments (0.1), importable from here for now.
_MOVED = ("MODEL_NAMES", "default_search_space", "make_model", "model_modalities", "tune")


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(
            f"sklearn_sfr.model_selection.{name} moved to sklearn_sfr.experiments.{name}; "
            "import it from there (this alias will be removed in a future release)",
            FutureWarning,
            stacklevel=2,
        )
        # The one import of a higher layer, for this deprecation only (see tests/test_package.py).
        return getattr(importlib.import_module("sklearn_sfr.experiments"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_STORAGE",
    "BlockedFrameSplit",
    "OptunaSearchCV",
    "block_ids",
    "frame_blocks",
    "storage_url",
]
