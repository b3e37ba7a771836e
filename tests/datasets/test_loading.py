"""load_hisscube's in-memory path (#21): the unit change as the rows are read, the frame built
once per file, the label tables read without PyTables; the same values as before."""

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_sfr.datasets import HiSSCube, _reader, load_hisscube, write_hisscube
from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY
from sklearn_sfr.datasets._selection import SDSS_UNITS, to_sdss_units
from tests.conftest import make_arrays


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A cube of 30 objects (zoom-0 image chunks of 12 rows: a padded last chunk)."""
    arrays = make_arrays(n=30)
    target_table = pd.DataFrame(
        {"object_type": ["galaxy"] * 29 + ["quasar"], "true_x": np.arange(30.0)}
    )
    path = tmp_path_factory.mktemp("load") / "cube.h5"
    write_hisscube(path, target_table=target_table, **arrays)
    return path


# -- the unit change, applied as the rows are read ----------------------------------------------
@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same values in the layouts a read may meet: chunked by whole rows (read chunk by
    chunk), compressed, contiguous, chunked across the columns too, and stored as float64."""
    path = tmp_path_factory.mktemp("layouts") / "layouts.h5"
    values = np.random.default_rng(0).normal(0, 1e-17, size=(50, 2, 3)).astype(np.float32)
    values[4, 1, 2] = np.nan
    with h5py.File(path, "w") as f:
        f.create_dataset("chunked", data=values, chunks=(7, 2, 3))
        f.create_dataset("gzip", data=values, chunks=(7, 2, 3), compression="gzip")
        f.create_dataset("contiguous", data=values)
        f.create_dataset("split", data=values, chunks=(7, 1, 3))
        f.create_dataset("f8", data=values.astype(np.float64), chunks=(7, 2, 3))
    return path, values


def test_only_whole_row_uncompressed_float32_chunks_are_read_directly(layouts):
    path, _ = layouts
    with h5py.File(path, "r") as f:
        direct = {name: _reader._direct_chunks(f[name]) for name in f}
    assert direct == {
        "chunked": True, "gzip": False, "contiguous": False, "split": False, "f8": False,
    }  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["chunked", "gzip", "contiguous", "split", "f8"]),
    st.one_of(
        st.sets(st.integers(0, 49), min_size=1, max_size=50).map(sorted),
        st.tuples(st.integers(0, 49), st.integers(1, 50)).map(
            lambda t: list(range(t[0], max(t[0] + 1, min(50, t[0] + t[1]))))
        ),
    ),
    st.sampled_from([1, 60, 4 << 20]),
)
def test_converted_reads_equal_the_reads_then_the_conversion(layouts, name, rows, window):
    """Scattered rows, runs starting and ending inside a chunk, the padded last chunk, every
    layout and window size: bit for bit the reads followed by the conversion."""
    path, _ = layouts
    rows = np.asarray(rows, dtype=np.int64)
    convert = SDSS_UNITS["spectrum"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_reader, "_WINDOW_BYTES", window)
        with h5py.File(path, "r") as f:
            ds = f[name]
            want = _reader._read_rows(ds, rows, dtype=np.float32)
            convert(want)
            direct = _reader._direct_chunks(ds)
            got = _reader._read_rows(ds, rows, dtype=np.float32, convert=convert, direct=direct)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("flag", [None, 0])
@pytest.mark.parametrize("zoom", [0, 3])
def test_load_hisscube_equals_the_reader_then_to_sdss_units(written, flag, zoom):
    """The arrays of a load are, bit for bit, the reader's in cube units converted by
    to_sdss_units (the route of HiSSCubeDataset and of the load before the change)."""
    data = load_hisscube(written, image_zoom=zoom, spectrum_zoom=zoom, flag=flag,
                         with_errors=True)  # fmt: skip
    with HiSSCube(written) as cube:
        keep = np.arange(cube.n_objects) if flag is None else np.flatnonzero(
            cube.read_frame()["FLAG"].to_numpy() == flag
        )  # fmt: skip
        want = {
            "image": cube.read_images(keep, zoom=zoom),
            "image_error": cube.read_image_errors(keep, zoom=zoom),
            "spectrum": cube.read_spectra(keep, level=zoom),
            "spectrum_error": cube.read_spectrum_errors(keep, level=zoom),
        }
    to_sdss_units(want)
    for key, expected in want.items():
        got = data.X[key]
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.owndata
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_permuted_bands_are_converted_band_by_band(written, tmp_path):
    """Stored in another band order, cutouts are converted after they are put in u, g, r, i,
    z order: each band by its own factor, as before."""
    path = tmp_path / "permuted.h5"
    path.write_bytes(written.read_bytes())
    order = [4, 2, 0, 1, 3]  # stored slot s holds band order[s]
    with h5py.File(path, "a") as f:
        for zoom in range(4):
            group = f[f"dense_cube/{zoom}/ml_image"]
            for name in (f"cutout_3d_cube_zoom_{zoom}", "errors"):
                group[name][...] = group[name][()][:, order]
            group.attrs["bands"] = [b"ugriz"[i : i + 1] for i in order]
    for zoom in (0, 2):
        got = load_hisscube(path, image_zoom=zoom, flag=None, with_errors=True).X
        want = load_hisscube(written, image_zoom=zoom, flag=None, with_errors=True).X
        for key in ("image", "image_error"):
            np.testing.assert_array_equal(got[key].view(np.uint32), want[key].view(np.uint32))


# -- the frame: built once per file, handed out as copies --------------------------------------
def _count_builds(monkeypatch):
    builds = []
    build = HiSSCube._build_frame

    def counted(self):
        builds.append(self.path)
        return build(self)

    monkeypatch.setattr(HiSSCube, "_build_frame", counted)
    _reader._FRAMES.clear()
    return builds


def test_the_frame_is_built_once_per_file_and_handed_out_as_copies(written, monkeypatch):
    builds = _count_builds(monkeypatch)
    first = load_hisscube(written, image_zoom=3, spectrum_zoom=3, flag=None)
    expected = first.frame.copy()
    first.frame.loc[0, "AVG"] = 99.0  # a user's edit stays in the user's copy
    with HiSSCube(written) as cube:
        whole = cube.read_frame()
        whole.loc[1, "FLAG"] = 7.0
        part = cube.read_frame([3, 1])
    again = load_hisscube(written, image_zoom=2, spectrum_zoom=1, flag=None)
    assert len(builds) == 1
    pd.testing.assert_frame_equal(again.frame, expected)
    pd.testing.assert_frame_equal(part, expected.iloc[[3, 1]].reset_index(drop=True))
    # Another label policy is another frame.
    load_hisscube(written, image_zoom=3, spectrum_zoom=3, flag=None, label_policy="first")
    assert len(builds) == 2


def test_a_file_changed_in_place_is_read_anew(written, tmp_path, monkeypatch):
    builds = _count_builds(monkeypatch)
    path = tmp_path / "edited.h5"
    path.write_bytes(written.read_bytes())
    before = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=None)
    table = pd.read_hdf(path, MERGED_LABEL_KEY)
    table["AVG"] = table["AVG"] + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # bytes columns
        table.to_hdf(path, key=MERGED_LABEL_KEY, mode="a", format="fixed")
    after = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=None)
    assert len(builds) == 2
    np.testing.assert_allclose(after.y, before.y + 1.0)


def test_a_frame_that_warns_is_not_kept_and_warns_at_every_load(written, tmp_path, monkeypatch):
    builds = _count_builds(monkeypatch)
    path = tmp_path / "unlabelled.h5"
    path.write_bytes(written.read_bytes())
    with h5py.File(path, "a") as f:
        del f[MERGED_LABEL_KEY]
    for _ in range(2):
        with pytest.warns(UserWarning, match="labels are missing"):
            load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=None)
    assert len(builds) == 2
