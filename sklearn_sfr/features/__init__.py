"""Tabular features from spectra and image cutouts, for trees and linear models.

:class:`SpectralLineFeatures` measures rest-frame emission lines (H-alpha traces the
star-formation rate), the 4000 A break and H-delta (stellar age) and continuum colours from the
spectra; :class:`PhotometryFeatures` measures aperture and Petrosian fluxes, asinh magnitudes,
colours, sizes and concentration from the ugriz cutouts; :class:`ColourFeatures` summarises any
image (e.g. a Scene video frame) as colour histograms and a coarse thumbnail.
"""

from ._colour import ColourFeatures
from ._lines import SpectralLineFeatures
from ._photometry import PhotometryFeatures

__all__ = ["ColourFeatures", "PhotometryFeatures", "SpectralLineFeatures"]
