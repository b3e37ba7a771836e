"""Metrics of log SFR predictions: scikit-learn's RMSE/MAE/R2 and the robust statistics
astronomers report (bias, NMAD, outlier fraction), as functions, named scorers and a report;
their bootstrap intervals, paired differences between models and verdicts decided by them.

Examples
--------
>>> from sklearn_sfr.metrics import SCORING, regression_report
>>> sorted(SCORING)
['bias', 'neg_mae', 'neg_nmad', 'neg_outlier_fraction', 'neg_rmse', 'r2']
>>> list(regression_report([0.0, 1.0, 2.0], [0.1, 0.9, 2.4]).columns)
['n', 'rmse', 'mae', 'r2', 'bias', 'nmad', 'outlier_fraction']
"""

from sklearn.metrics import mean_absolute_error, r2_score

from ._regression import NMAD_SCALE, bias, nmad, outlier_fraction, regression_report, rmse
from ._scorers import SCORING, flag_scorer, get_scorer, get_scorers
from ._uncertainty import (
    CorrectedTTestResult,
    PairedDifference,
    ScoreInterval,
    corrected_resampled_ttest,
    paired_difference,
    score_interval,
    score_intervals,
    verdict,
)

__all__ = [
    "NMAD_SCALE",
    "SCORING",
    "CorrectedTTestResult",
    "PairedDifference",
    "ScoreInterval",
    "bias",
    "corrected_resampled_ttest",
    "flag_scorer",
    "get_scorer",
    "get_scorers",
    "mean_absolute_error",
    "nmad",
    "outlier_fraction",
    "paired_difference",
    "r2_score",
    "regression_report",
    "rmse",
    "score_interval",
    "score_intervals",
    "verdict",
]
