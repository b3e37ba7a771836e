"""Reading, writing and generating HiSS-Cube files, and the Scene (images + audio) set."""

from ._ingest import ingest_sdss_fits
from ._layout import BAND_NAMES, wavelength_grid
from ._loader import load_hisscube
from ._reader import HiSSCube, HiSSCubeFormatError
from ._scene import SCENE_CLASSES, LazyImageArray, load_scene
from ._scene_synthetic import make_synthetic_scene
from ._selection import flag_mask
from ._synthetic import make_synthetic_cube
from ._writer import HiSSCubeWriter, write_hisscube

__all__ = [
    "BAND_NAMES",
    "SCENE_CLASSES",
    "HiSSCube",
    "HiSSCubeFormatError",
    "HiSSCubeWriter",
    "LazyImageArray",
    "flag_mask",
    "ingest_sdss_fits",
    "load_hisscube",
    "load_scene",
    "make_synthetic_cube",
    "make_synthetic_scene",
    "wavelength_grid",
    "write_hisscube",
]
