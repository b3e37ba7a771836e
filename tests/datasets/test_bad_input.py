"""Bad files and bad arguments: clear errors that name the file and the path inside it."""

import shutil

import h5py
import numpy as np
import pytest

from sklearn_sfr.datasets import HiSSCube, HiSSCubeFormatError, load_hisscube, write_hisscube
from tests.conftest import file_state, make_arrays


@pytest.fixture(scope="module")
def good_cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "good.h5"
    write_hisscube(path, **make_arrays(n=6))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        HiSSCube(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not an HDF5 file")
    before = file_state(path)
    with pytest.raises(HiSSCubeFormatError, match="text.h5 is not an HDF5 file"):
        HiSSCube(path)
    assert file_state(path) == before


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    path.touch()
    with pytest.raises(HiSSCubeFormatError, match="empty.h5"):
        HiSSCube(path)


def test_folder(tmp_path):
    with pytest.raises(HiSSCubeFormatError, match="is a folder"):
        HiSSCube(tmp_path)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_file(good_cube, tmp_path, fraction):
    path = tmp_path / "truncated.h5"
    data = good_cube.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    before = file_state(path)
    with pytest.raises(HiSSCubeFormatError, match="truncated.h5"), HiSSCube(path) as cube:
        # A file cut after its metadata may open; reading the data must still fail clearly.
        cube.read_images(zoom=0)
        cube.read_spectra(level=0)
        cube.read_frame()
    assert file_state(path) == before


def test_hdf5_of_another_layout(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(HiSSCubeFormatError, match=r"other.h5 has no /dense_cube"):
        HiSSCube(path)


@pytest.mark.parametrize(
    ("delete", "read"),
    [
        ("dense_cube/2", lambda c: c.read_images(zoom=2)),
        ("dense_cube/1/ml_spectrum/spectral_1d_cube_zoom_1", lambda c: c.read_spectra(level=1)),
        ("dense_cube/0/ml_image/errors", lambda c: c.read_image_errors(zoom=0)),
        ("dense_cube/0/ml_spectrum/spec_metadata_refs", lambda c: c.read_frame()),
    ],
)
def test_cube_lacking_a_zoom_or_dataset(good_cube, tmp_path, delete, read):
    path = tmp_path / "lacking.h5"
    shutil.copy(good_cube, path)
    with h5py.File(path, "a") as f:
        del f[delete]
    with HiSSCube(path) as cube, pytest.raises(HiSSCubeFormatError, match="lacking.h5 has no"):
        read(cube)


def test_label_rows_not_matching(good_cube, tmp_path):
    path = tmp_path / "short.h5"
    shutil.copy(good_cube, path)
    with h5py.File(path, "a") as f:
        f["dense_cube"].attrs["target_count"] = 50
    with HiSSCube(path) as cube, pytest.raises(HiSSCubeFormatError, match="rows but the cube"):
        cube.read_images()


def test_wrong_dataset_shape(good_cube, tmp_path):
    path = tmp_path / "shape.h5"
    shutil.copy(good_cube, path)
    with h5py.File(path, "a") as f:
        del f["dense_cube/3/ml_spectrum/spectral_1d_cube_zoom_3"]
        f["dense_cube/3/ml_spectrum/spectral_1d_cube_zoom_3"] = np.zeros((6, 100), "f4")
    with HiSSCube(path) as cube, pytest.raises(HiSSCubeFormatError, match=r"expected \(n, 577\)"):
        cube.read_spectra(level=3)


def test_unknown_target_and_bad_arguments(good_cube):
    before = file_state(good_cube)
    with pytest.raises(KeyError, match="target 'SFR' is not a column"):
        load_hisscube(good_cube, target="SFR")
    with pytest.raises(ValueError, match="image_zoom must be one of"):
        load_hisscube(good_cube, image_zoom=4)
    with pytest.raises(ValueError, match="modalities"):
        load_hisscube(good_cube, modalities=("audio",))
    with pytest.raises(ValueError, match="label_policy"):
        HiSSCube(good_cube, label_policy="mean")
    with pytest.raises(TypeError, match="flag"):
        load_hisscube(good_cube, flag="zero")
    assert file_state(good_cube) == before


def test_flag_selection(good_cube):
    everything = load_hisscube(good_cube, flag=None)
    assert len(everything.y) == 6
    reliable = load_hisscube(good_cube, flag=0)
    assert (reliable.frame["FLAG"] == 0).all() and len(reliable.y) == 5
    both = load_hisscube(good_cube, flag=(0, 2), return_X_y=True)
    assert len(both[1]) == 6


def test_units(good_cube):
    from sklearn_sfr.datasets import HiSSCube
    from sklearn_sfr.datasets._layout import IMAGE_UNIT_PER_NMGY

    sdss = load_hisscube(good_cube, with_errors=True, flag=None)
    cube = load_hisscube(good_cube, with_errors=True, flag=None, units="cube")
    np.testing.assert_allclose(sdss.X["spectrum"], cube.X["spectrum"] * 1e17, rtol=1e-6)
    np.testing.assert_allclose(
        sdss.X["image_error"][:, 1],
        cube.X["image_error"][:, 1] / IMAGE_UNIT_PER_NMGY["g"],
        rtol=1e-6,
    )
    with HiSSCube(good_cube) as c:
        np.testing.assert_array_equal(cube.X["image"], c.read_images())
    with pytest.raises(ValueError, match="units must be one of"):
        load_hisscube(good_cube, units="jansky")
