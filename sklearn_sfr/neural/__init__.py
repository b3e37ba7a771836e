"""Neural estimators (skorch-backed scikit-learn estimators). Only this package imports torch."""

from ._classifier import FusionClassifier
from ._contrastive import ContrastiveRegressor
from ._estimators import FusionRegressor, ImageRegressor, SpectrumRegressor
from ._lazy import HiSSCubeDataset
from ._modules import FUSIONS, FusionNet, ImageEncoder, SpectrumEncoder
from ._pruning import SkorchPruningCallback

__all__ = [
    "FUSIONS",
    "ContrastiveRegressor",
    "FusionClassifier",
    "FusionNet",
    "FusionRegressor",
    "HiSSCubeDataset",
    "ImageEncoder",
    "ImageRegressor",
    "SkorchPruningCallback",
    "SpectrumEncoder",
    "SpectrumRegressor",
]
