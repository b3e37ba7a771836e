"""The studies of the thesis as functions returning tidy DataFrames."""

from ._scene import (
    REFERENCE_ACCURACY,
    SCORE_COLUMNS,
    scene_models,
    scene_splitter,
    scene_study,
    scene_summary,
)
from ._scene_report import write_scene_report

__all__ = [
    "REFERENCE_ACCURACY",
    "SCORE_COLUMNS",
    "scene_models",
    "scene_splitter",
    "scene_study",
    "scene_summary",
    "write_scene_report",
]
