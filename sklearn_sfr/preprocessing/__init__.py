"""Transformers and samplers for multi-modal HiSS-Cube samples."""

# flag_mask and flag_scorer live in datasets and metrics; importable from here too, as before.
from ..datasets._selection import flag_mask  # noqa: F401
from ..metrics._scorers import flag_scorer  # noqa: F401
from ._flag import FlagFilter
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
    "neighbour_detection_scores",
]
