"""The studies of the thesis as functions returning tidy DataFrames.

Every SFR study scores its models on one fixed, seeded train/test split (:func:`study_split`),
optionally with cross-validation on the training part, and returns ``(scores, predictions)``:
one row per model and fold with RMSE, MAE, R2, bias, NMAD, outlier fraction, the noise floor
and the cost (fit and predict time, peak memory), and the test predictions for the plots.
The Scene study (:func:`scene_study`) does the same for the image + audio classification set,
under random and blocked splits.
"""

from ._scene import (
    REFERENCE_ACCURACY,
    SCENE_SCORE_COLUMNS,
    scene_models,
    scene_splitter,
    scene_study,
    scene_summary,
)
from ._scene_report import write_scene_report

__all__ = [
    "REFERENCE_ACCURACY",
    "SCENE_SCORE_COLUMNS",
    "scene_models",
    "scene_splitter",
    "scene_study",
    "scene_summary",
    "write_scene_report",
]
