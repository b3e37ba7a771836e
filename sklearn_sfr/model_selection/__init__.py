"""Model selection: Optuna tuning, the study's named models, and blocked splits.

:func:`make_model` builds a fresh Pipeline for each of the study's models
(:data:`MODEL_NAMES`), :func:`default_search_space` gives Optuna distributions to tune it over,
and :class:`OptunaSearchCV` runs a resumable, database-backed Optuna search with
cross-validation. :func:`tune` runs such a search for a named model on a cube and writes its
results (``sklearn-sfr tune``). :class:`BlockedFrameSplit` keeps blocks of correlated samples
(consecutive video frames) together in cross-validation. Importing this package does not
import torch or optuna.
"""

from ._blocked import BlockedFrameSplit, block_ids, frame_blocks
from ._models import MODEL_NAMES, default_search_space, make_model, model_modalities
from ._search import DEFAULT_STORAGE, OptunaSearchCV, storage_url
from ._tune import tune

__all__ = [
    "DEFAULT_STORAGE",
    "MODEL_NAMES",
    "BlockedFrameSplit",
    "OptunaSearchCV",
    "block_ids",
    "default_search_space",
    "frame_blocks",
    "make_model",
    "model_modalities",
    "storage_url",
    "tune",
]
