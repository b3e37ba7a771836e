"""The studies of the thesis as functions returning tidy DataFrames.

Every SFR study scores its models on one fixed, seeded train/test split (:func:`study_split`),
optionally with cross-validation on the training part, and returns ``(scores, predictions)``:
one row per model and fold with RMSE, MAE, R2, bias, NMAD, outlier fraction, the noise floor
and the cost (fit and predict time, peak memory), and the test predictions for the plots.
The Scene study (:func:`scene_study`) does the same for the image + audio classification set,
under random and blocked splits.
"""

from ._evaluate import HISTORY_COLUMNS, SCORE_COLUMNS, evaluate_models, study_split
from ._measure import Measure
from ._models import MODEL_NAMES, default_search_space, make_model, model_modalities
from ._persist import fit_model, load_model, predict_cube
from ._report import STUDIES, render_report, run_study
from ._scene import (
    REFERENCE_ACCURACY,
    SCENE_SCORE_COLUMNS,
    scene_models,
    scene_splitter,
    scene_study,
    scene_summary,
)
from ._scene_report import write_scene_report
from ._tune import tune
from .studies._base import BASELINE_MODELS, NEURAL_MODELS
from .studies.baseline import baseline_study
from .studies.flag import flag_study
from .studies.fusion import fusion_study
from .studies.isolation import has_neighbour, isolation_study
from .studies.label_efficiency import label_efficiency_study, subsets_per_fraction
from .studies.modality import modality_study
from .studies.resolution import resolution_study

__all__ = [
    "BASELINE_MODELS",
    "HISTORY_COLUMNS",
    "MODEL_NAMES",
    "NEURAL_MODELS",
    "REFERENCE_ACCURACY",
    "SCENE_SCORE_COLUMNS",
    "SCORE_COLUMNS",
    "STUDIES",
    "Measure",
    "baseline_study",
    "default_search_space",
    "evaluate_models",
    "fit_model",
    "flag_study",
    "fusion_study",
    "has_neighbour",
    "isolation_study",
    "label_efficiency_study",
    "load_model",
    "make_model",
    "modality_study",
    "model_modalities",
    "predict_cube",
    "render_report",
    "resolution_study",
    "run_study",
    "scene_models",
    "scene_splitter",
    "scene_study",
    "scene_summary",
    "study_split",
    "subsets_per_fraction",
    "tune",
    "write_scene_report",
]
