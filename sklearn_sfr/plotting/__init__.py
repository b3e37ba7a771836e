"""Figures for exploring HiSS-Cube data and reporting models.

matplotlib is imported only when a plotting function runs, never at ``import sklearn_sfr``.
"""

from ._eda import (
    EMISSION_LINES,
    QUASAR_LINES,
    plot_cutouts,
    plot_spectra,
    plot_target_distribution,
    save_figure,
)
from ._label_efficiency import plot_label_efficiency
from ._results import (
    SFR_LABEL,
    plot_model_comparison,
    plot_optuna_history,
    plot_param_importances,
    plot_pareto,
    plot_predicted_vs_true,
    plot_residuals,
    plot_resolution_heatmap,
)
from ._scene import plot_confusion_matrices
from ._training import plot_training_curves

__all__ = [
    "EMISSION_LINES",
    "QUASAR_LINES",
    "SFR_LABEL",
    "plot_confusion_matrices",
    "plot_cutouts",
    "plot_label_efficiency",
    "plot_model_comparison",
    "plot_optuna_history",
    "plot_param_importances",
    "plot_pareto",
    "plot_predicted_vs_true",
    "plot_residuals",
    "plot_resolution_heatmap",
    "plot_spectra",
    "plot_target_distribution",
    "plot_training_curves",
    "save_figure",
]
