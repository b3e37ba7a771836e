"""Figures for exploring HiSS-Cube data and reporting models.

matplotlib is imported only when a plotting function runs, never at ``import sklearn_sfr``.
"""

from ._eda import (
    EMISSION_LINES,
    plot_cutouts,
    plot_spectra,
    plot_target_distribution,
    save_figure,
)
from ._scene import plot_confusion_matrices

__all__ = [
    "EMISSION_LINES",
    "plot_confusion_matrices",
    "plot_cutouts",
    "plot_spectra",
    "plot_target_distribution",
    "save_figure",
]
