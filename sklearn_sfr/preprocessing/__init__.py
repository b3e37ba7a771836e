"""Transformers and samplers for multi-modal HiSS-Cube samples."""

from ._flag import FlagFilter, flag_mask, flag_scorer
from ._images import CentralCrop, FlattenBands, ImageScaler
from ._isolation import ObjectIsolator, neighbour_detection_scores
from ._select import ModalitySelector
from ._spectra import SpectrumNormalizer, SpectrumRebin

__all__ = [
    "CentralCrop",
    "FlagFilter",
    "FlattenBands",
    "ImageScaler",
    "ModalitySelector",
    "ObjectIsolator",
    "SpectrumNormalizer",
    "SpectrumRebin",
    "flag_mask",
    "flag_scorer",
    "neighbour_detection_scores",
]
