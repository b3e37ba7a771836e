"""Transformers and samplers for multi-modal HiSS-Cube samples."""

from ._flag import FlagFilter, flag_mask, flag_scorer
from ._images import CentralCrop, FlattenBands, ImageScaler
from ._select import ModalitySelector
from ._spectra import SpectrumNormalizer, SpectrumRebin

__all__ = [
    "CentralCrop",
    "FlagFilter",
    "FlattenBands",
    "ImageScaler",
    "ModalitySelector",
    "SpectrumNormalizer",
    "SpectrumRebin",
    "flag_mask",
    "flag_scorer",
]
