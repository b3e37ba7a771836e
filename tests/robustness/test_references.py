"""Attack catalogue, references and values read from a cube (issue #17).

Every index the reader takes from a file (``spec_metadata_refs``, the image metadata and
cutout references of reference builds) is bounds-checked: a bad one is an error naming the
file, the dataset and the row, never another object's label or band read through numpy's
negative indexing. A damaged compressed chunk is an error naming the file and the dataset.
Labels that are not log SFRs (infinite, beyond float32, absurd), all missing, or a FLAG column
that selects nothing are errors naming the file and the column. ``sklearn-sfr info`` describes
such cubes or prints one line, never a traceback. The input file is never modified.
"""

import h5py
import numpy as np
import pytest

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import HiSSCube, HiSSCubeFormatError, load_hisscube, write_hisscube
from sklearn_sfr.datasets._layout import CUTOUT_SIZES, MERGED_LABEL_KEY
from tests.conftest import file_state, make_arrays
from tests.reference_cube import write_reference_cube
from tests.robustness._cubes import (
    N,
    copy_cube,
    corrupt_chunk,
    empty_labels,
    recompress,
    set_labels,
    set_reference,
)

SPEC_REFS = "dense_cube/0/ml_spectrum/spec_metadata_refs"
DENSE_SPECTRA = "dense_cube/0/ml_spectrum/spectral_1d_cube_zoom_0"


@pytest.fixture(scope="module")
def good_cube(tmp_path_factory):
    # 6 objects, one spectrum each (spectrum i is object i); object 3 has FLAG 2.
    path = tmp_path_factory.mktemp("good") / "good.h5"
    write_hisscube(path, **make_arrays(n=N))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "SDSS_cube.h5"
    write_reference_cube(path)
    return path


@pytest.fixture
def copy(tmp_path):
    def make(good, name):
        return copy_cube(good, tmp_path, name)

    return make


def _one_line_cli_error(capsys, path, *needles):
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and path.name in err, err
    for needle in needles:
        assert needle in err, err


# -- 1. spectrum references: spectrum -> object -> label ------------------------------------
@pytest.mark.parametrize("value", [-3, -1, N, 10**12])
def test_spectrum_reference_outside_the_spectra(good_cube, copy, capsys, value):
    # -3 used to wrap round to spectrum 3 (numpy indexing): object 2 got object 3's label.
    path = copy(good_cube, f"ref_{value}")
    set_reference(path, SPEC_REFS, (2, 0), ds_slice_idx=value)
    before = file_state(path)
    with pytest.raises(HiSSCubeFormatError, match=r"spec_metadata_refs\[2, 0\]") as info:
        load_hisscube(path, flag=0)
    message = str(info.value)
    assert path.name in message and str(value) in message
    with HiSSCube(path) as cube, pytest.raises(HiSSCubeFormatError, match=r"\[2, 0\]"):
        cube.validate()
    _one_line_cli_error(capsys, path, "spec_metadata_refs[2, 0]")
    assert file_state(path) == before


def test_two_objects_referencing_one_spectrum(good_cube, copy):
    # Object 2 pointing at spectrum 0 would silently carry object 0's label.
    path = copy(good_cube, "duplicate")
    set_reference(path, SPEC_REFS, (2, 0), ds_slice_idx=0)
    with pytest.raises(HiSSCubeFormatError, match=r"spec_metadata_refs\[0, 0\] and \[2, 0\]"):
        load_hisscube(path, flag=None)


def test_spectrum_reference_to_another_dataset(good_cube, copy):
    path = copy(good_cube, "other_dataset")
    set_reference(path, SPEC_REFS, (4, 0), ds_path=b"/fits_images_metadata")
    with pytest.raises(
        HiSSCubeFormatError, match=r"spec_metadata_refs\[4, 0\] points to /fits_images_metadata"
    ):
        load_hisscube(path, flag=None)


def test_label_table_with_no_rows(good_cube, copy, capsys):
    # Used to be an IndexError (a traceback from `sklearn-sfr info`).
    path = copy(good_cube, "no_label_rows")
    empty_labels(path)
    with pytest.raises(HiSSCubeFormatError, match=r"label table has 0 rows") as info:
        load_hisscube(path, flag=None)
    assert path.name in str(info.value)
    _one_line_cli_error(capsys, path, "label table has 0 rows", "spec_metadata_refs[0, 0]")


# -- 1. image references of reference builds ------------------------------------------------
def _ref_row(path, name, where):
    with h5py.File(path, "r") as f:
        return f[name][where]


def _n_rows(path, name):
    with h5py.File(path, "r") as f:
        return f[name].shape[0]


@pytest.mark.parametrize("shift", ["wraps", "beyond"])
def test_band_metadata_reference_outside_the_frames(reference, copy, shift):
    # The FILTER of a band slot is read through image_metadata_refs: a negative row used to
    # wrap round to another frame's header (a band order from the wrong frame), a row past
    # the end was an IndexError.
    zoom = 1
    name = f"dense_cube/{zoom}/ml_image/image_metadata_refs"
    path = copy(reference, f"meta_{shift}")
    row = int(_ref_row(path, name, (0, 0, 0))["ds_slice_idx"])
    n = _n_rows(path, f"semi_sparse_cube/{zoom}/images/metadata")
    value = row - n if shift == "wraps" else n + 5
    set_reference(path, name, (0, 0, 0), ds_slice_idx=value)
    with HiSSCube(path) as cube:
        cube.read_spectra(level=zoom)  # other data stay readable
        with pytest.raises(HiSSCubeFormatError, match=r"image_metadata_refs\[0, 0, 0\]") as info:
            cube.read_images(zoom=zoom)
    assert path.name in str(info.value) and str(value) in str(info.value)


@pytest.mark.parametrize("damage", ["negative row", "row past the end", "window off the frame",
                                    "window of the wrong size"])  # fmt: skip
def test_cutout_reference_outside_its_frame(reference, copy, damage):
    # Reference files' true image errors are restacked through image_cutout_refs. A negative
    # row used to wrap round to another frame; a bad window came back as NaN with a warning
    # that the frames were missing.
    zoom = 1
    s = CUTOUT_SIZES[zoom]
    name = f"dense_cube/{zoom}/ml_image/image_cutout_refs"
    path = copy(reference, damage)
    ref = _ref_row(path, name, (0, 0, 0))
    n = _n_rows(path, f"semi_sparse_cube/{zoom}/images/data")
    fields = {
        "negative row": dict(ds_slice_idx=int(ref["ds_slice_idx"]) - n),
        "row past the end": dict(ds_slice_idx=n),
        "window off the frame": dict(x_min=-10, x_max=s - 10),
        "window of the wrong size": dict(x_max=int(ref["x_min"]) + s + 1),
    }[damage]
    set_reference(path, name, (0, 0, 0), **fields)
    with (
        HiSSCube(path) as cube,
        pytest.raises(HiSSCubeFormatError, match=r"image_cutout_refs\[0, 0, 0\]") as info,
    ):
        cube.read_image_errors(zoom=zoom)
    assert path.name in str(info.value)


# -- 2. damaged compressed chunks -------------------------------------------------------------
def test_corrupt_compressed_references(good_cube, copy, capsys):
    # h5py said "Can't synchronously read data (filter returned failure ...)", no file named.
    path = copy(good_cube, "corrupt_refs")
    corrupt_chunk(path, SPEC_REFS, (0, 0))
    with pytest.raises((OSError, ValueError), match="spec_metadata_refs") as info:
        load_hisscube(path, flag=0)
    assert path.name in str(info.value)
    _one_line_cli_error(capsys, path, SPEC_REFS)


def test_corrupt_compressed_dense_chunk(good_cube, copy):
    # Another writer (or h5repack) may compress the dense cube: a bad chunk names the file,
    # the dataset and the rows of the read; the other chunks stay readable.
    path = copy(good_cube, "corrupt_spectra")
    recompress(path, DENSE_SPECTRA, chunks=(2, 4620))
    corrupt_chunk(path, DENSE_SPECTRA, (2, 0))
    with HiSSCube(path) as cube:
        assert cube.read_spectra([0, 1]).shape == (2, 4620)
        with pytest.raises((OSError, ValueError), match="rows 0 to 5") as info:
            cube.read_spectra()
        with pytest.raises((OSError, ValueError), match="rows 1 to 4"):
            cube.read_spectra(np.array([4, 1, 2]))  # a shuffled batch
    message = str(info.value)
    assert path.name in message and DENSE_SPECTRA in message


# -- 3. labels that are not log SFRs ----------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300, -1e300, 1e30, 25.0])
def test_unusable_label_values(good_cube, copy, value):
    # inf and 1e300 used to reach scikit-learn ("Input y contains NaN" or "infinity"), -inf
    # and -1e300 became silently missing labels, 1e30 (a float32) was learnt from.
    path = copy(good_cube, f"avg_{value}")
    set_labels(path, "AVG", [1], value)
    with pytest.raises(ValueError, match=r"'AVG'") as info:
        load_hisscube(path, flag=0)
    message = str(info.value)
    assert path.name in message and "object 1" in message and "label-table row 1" in message
    # A column that is not the target does not stop a load.
    assert len(load_hisscube(path, flag=0, target="MEDIAN").y) == N - 1


def test_all_labels_missing(good_cube, copy):
    path = copy(good_cube, "avg_nan")
    set_labels(path, "AVG", None, np.nan)
    with pytest.raises(ValueError, match=r"'AVG' is missing \(NaN\) for all 5 objects") as info:
        load_hisscube(path, flag=0)
    assert path.name in str(info.value)
    # flag=None keeps unlabelled objects: that is documented, not an error.
    assert np.isnan(load_hisscube(path, flag=None).y).all()


def test_all_flags_missing(good_cube, copy, capsys):
    path = copy(good_cube, "flag_nan")
    set_labels(path, "FLAG", None, np.nan)
    with pytest.raises(ValueError, match=r"FLAG column is missing \(NaN\) for all 6") as info:
        load_hisscube(path, flag=0)
    assert path.name in str(info.value) and "flag=None" in str(info.value)
    assert len(load_hisscube(path, flag=None).y) == N
    assert main(["info", str(path)]) == 0  # described: every object has FLAG missing
    assert "missing" in capsys.readouterr().out


def test_no_object_with_the_requested_flag(good_cube):
    with pytest.raises(ValueError, match=r"no object .* has FLAG in \(1,\)") as info:
        load_hisscube(good_cube, flag=1)
    assert "FLAG=0: 5" in str(info.value) and "FLAG=2: 1" in str(info.value)


@pytest.mark.parametrize("value", [np.inf, 1e300])
def test_infinite_flag(good_cube, copy, capsys, value):
    # `sklearn-sfr info` used to end in an OverflowError traceback (int(inf)).
    path = copy(good_cube, f"flag_{value}")
    set_labels(path, "FLAG", [2], value)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"FLAG={value:g}" in out and "FLAG=0" in out
    with pytest.raises(ValueError, match=r"FLAG") as info:
        load_hisscube(path, flag=0)
    assert path.name in str(info.value) and "object 2" in str(info.value)


def test_empty_cube_info(good_cube, copy, capsys):
    path = copy(good_cube, "no_objects")
    with h5py.File(path, "a") as f:
        f["dense_cube"].attrs["target_count"] = np.int64(0)
    assert main(["info", str(path)]) == 0
    assert "objects: 0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="holds no objects"):
        load_hisscube(path, flag=0)


# -- siblings: other values read from the file -------------------------------------------------
@pytest.mark.parametrize("value", ["abc", np.nan, np.inf, -0.5])
def test_bad_noise_floor_attribute(good_cube, copy, value):
    # "abc" used to stop the file from opening at all, with no file named.
    path = copy(good_cube, f"noise_floor_{value}")
    with h5py.File(path, "a") as f:
        f.attrs["noise_floor"] = value
    with pytest.warns(UserWarning, match="noise_floor") as record:
        data = load_hisscube(path, flag=0)
    assert path.name in str(record[0].message)
    assert data.noise_floor is None and "unknown" in data.DESCR


def test_infinite_label_width_keeps_the_label(good_cube, copy):
    # A P84 of inf gave the spectrum weight 0, so its object's label became NaN.
    path = copy(good_cube, "p84_inf")
    set_labels(path, "P84", [0], np.inf)
    expected = load_hisscube(good_cube, flag=0).y
    np.testing.assert_allclose(load_hisscube(path, flag=0).y, expected)


def test_non_finite_object_identifier(good_cube, copy):
    # PLATEID inf used to end in pandas' "Cannot convert non-finite values" naming nothing.
    path = copy(good_cube, "plateid_inf")
    set_labels(path, "PLATEID", [0], np.inf)
    data = load_hisscube(path, flag=0)
    assert np.isinf(data.frame["PLATEID"].iloc[0]) and len(data.y) == N - 1


def test_unparsable_header_without_label_table(good_cube, copy):
    path = copy(good_cube, "bad_header")
    with h5py.File(path, "a") as f:
        del f[MERGED_LABEL_KEY]
        meta = f["fits_spectra_metadata"]
        row = meta[1]
        row["header"] = b'{"PLATEID": 3'
        meta[1] = row
    with (
        pytest.warns(UserWarning, match="labels are missing"),
        pytest.raises(HiSSCubeFormatError, match=r"fits_spectra_metadata\[1\]") as info,
    ):
        load_hisscube(path, flag=None)
    assert path.name in str(info.value)


def test_info_describes_unusable_labels(good_cube, copy, capsys):
    path = copy(good_cube, "avg_inf_info")
    set_labels(path, "AVG", [2], np.inf)
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert "not log SFRs" in captured.out and "objects 2" in captured.out
    assert captured.err == ""  # no numpy warnings about inf arithmetic


def test_fewer_spectrum_references_than_objects(good_cube, copy):
    # Objects 4 and 5 had no reference: their labels were silently missing (NaN).
    path = copy(good_cube, "short_refs")
    with h5py.File(path, "a") as f:
        refs = f[SPEC_REFS][:4]
        del f[SPEC_REFS]
        f[SPEC_REFS] = refs
    with pytest.raises(
        HiSSCubeFormatError, match=r"spec_metadata_refs has 4 rows but the cube has 6 objects"
    ):
        load_hisscube(path, flag=None)
