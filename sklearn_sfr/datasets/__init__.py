"""Reading, writing and generating HiSS-Cube files."""

from ._ingest import ingest_sdss_fits
from ._layout import BAND_NAMES, wavelength_grid
from ._loader import load_hisscube
from ._reader import HiSSCube, HiSSCubeFormatError
from ._synthetic import make_synthetic_cube
from ._writer import HiSSCubeWriter, write_hisscube

__all__ = [
    "BAND_NAMES",
    "HiSSCube",
    "HiSSCubeFormatError",
    "HiSSCubeWriter",
    "ingest_sdss_fits",
    "load_hisscube",
    "make_synthetic_cube",
    "wavelength_grid",
    "write_hisscube",
]
