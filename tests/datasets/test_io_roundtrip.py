"""write_hisscube -> HiSSCube round trips, the reference's derivation rules, and the layout."""

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_sfr.datasets import HiSSCube, HiSSCubeWriter, _reader, load_hisscube, write_hisscube
from sklearn_sfr.datasets._layout import (
    BAND_NAMES,
    CUTOUT_SIZES,
    IMAGE_UNIT_PER_NMGY,
    derive_image_level,
    derive_spectrum_level,
    float_compress,
    inverse_variance_stack,
    n_wavelength,
    wavelength_grid,
)
from sklearn_sfr.datasets._selection import to_sdss_units
from tests.conftest import file_state, make_arrays


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    arrays = make_arrays(n=12)
    path = tmp_path_factory.mktemp("rt") / "cube.h5"
    target_table = pd.DataFrame(
        {"object_type": ["galaxy"] * 11 + ["quasar"], "true_x": np.arange(12.0)}
    )
    write_hisscube(path, target_table=target_table, attrs={"noise_floor": 0.25}, **arrays)
    return path, arrays


def _expected_levels(arrays):
    """Every level by the reference's rules, computed independently of the writer."""
    import cv2
    from astropy.convolution import Gaussian1DKernel, convolve

    images = {0: arrays["images"].astype(np.float64)}
    for z in (1, 2, 3):
        prev = images[z - 1]
        s = prev.shape[-1] // 2
        images[z] = np.array(
            [[cv2.resize(b, (s, s), interpolation=cv2.INTER_CUBIC) for b in obj] for obj in prev]
        )
    spectra = {0: arrays["spectra"].astype(np.float64)}
    grid = wavelength_grid(0)
    for z in (1, 2, 3):
        new = np.linspace(grid[0], grid[-1], int(grid.size / 2))
        kernel = Gaussian1DKernel(stddev=2)
        spectra[z] = np.array([np.interp(new, grid, convolve(r, kernel)) for r in spectra[z - 1]])
        grid = new
    return images, spectra


def test_level0_exact(written):
    path, arrays = written
    with HiSSCube(path) as cube:
        assert cube.n_objects == 12 and not cube.is_reference
        np.testing.assert_array_equal(cube.read_images(zoom=0), arrays["images"])
        np.testing.assert_array_equal(cube.read_image_errors(zoom=0), arrays["image_errors"])
        # Spectra go through the reference's float_compress (relative error < 1e-3).
        spec = cube.read_spectra(level=0)
        good = ~np.isnan(arrays["spectrum_errors"][0])
        np.testing.assert_array_equal(spec[:, good], float_compress(arrays["spectra"])[:, good])
        # Masked pixels (error NaN): flux NaN and error NaN, as the reference's stack leaves them.
        assert np.isnan(spec[:, ~good]).all()
        assert np.isnan(cube.read_spectrum_errors(level=0)[:, ~good]).all()


@pytest.mark.parametrize("zoom", [1, 2, 3])
def test_derived_levels_follow_reference_rule(written, zoom):
    path, arrays = written
    images, spectra = _expected_levels(arrays)
    with HiSSCube(path) as cube:
        got = cube.read_images(zoom=zoom)
        assert got.shape == (12, 5, CUTOUT_SIZES[zoom], CUTOUT_SIZES[zoom])
        np.testing.assert_allclose(got, images[zoom], rtol=1e-5, atol=1e-5)
        err = cube.read_image_errors(zoom=zoom)
        assert np.all(err > 0)
        spec = cube.read_spectra(level=zoom)
        assert spec.shape == (12, n_wavelength(zoom))
        ok = np.isfinite(spec)
        # The writer derives each level from the uncompressed previous level, then compresses.
        np.testing.assert_allclose(spec[ok], spectra[zoom][ok], rtol=2e-3)
        assert ok.mean() > 0.95
        np.testing.assert_array_equal(cube.wavelength(zoom), wavelength_grid(zoom))


def test_image_rule_matches_opencv_on_odd_frames():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    frame = rng.normal(size=(149, 204)).astype(np.float32)
    flux, sigma = derive_image_level(frame, np.abs(frame))
    np.testing.assert_allclose(
        flux, cv2.resize(frame, (102, 74), interpolation=cv2.INTER_CUBIC), atol=1e-5
    )
    np.testing.assert_allclose(
        sigma, cv2.resize(np.abs(frame), (102, 74), interpolation=cv2.INTER_CUBIC) / 4, atol=1e-5
    )


def test_spectrum_rule_edges_attenuated_like_reference():
    # On a flat spectrum the reference's zero-filled convolution attenuates the edge pixels
    # (0.60, 0.78, 0.90, 0.96 of the true value at full resolution); the new grid samples
    # about every second of them.
    flux = np.ones((1, 4620))
    out, sigma, grid = derive_spectrum_level(flux, flux, wavelength_grid(0))
    assert grid.size == 2310
    np.testing.assert_allclose(out[0, :2], [0.60, 0.90], atol=0.01)
    np.testing.assert_allclose(out[0, 10:-10], 1.0)
    np.testing.assert_allclose(sigma, 0.5)


def test_inverse_variance_stack_rules():
    f = np.array([[1.0, 2.0, 5.0], [3.0, np.nan, 7.0]])
    s = np.array([[1.0, np.nan, 0.0], [1.0, np.nan, 1.0]])
    mean, err = inverse_variance_stack(f, s)
    assert mean[0] == 2.0 and err[0] == pytest.approx(np.sqrt(0.5))
    assert np.isnan(mean[1]) and err[1] == 0  # every sigma NaN: flux NaN, error 0
    assert mean[2] == 7.0  # sigma == 0 is skipped


def test_float_compress_keeps_ten_bits():
    x = np.array([1.2345678e-17, -3.3e5, 0.0, np.nan, np.inf], dtype=np.float32)
    y = float_compress(x)
    np.testing.assert_allclose(y[:2], x[:2], rtol=1e-3)
    assert y[2] == 0 and np.isnan(y[3]) and np.isnan(y[4])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 11), min_size=1, max_size=20),
    st.sampled_from([0, 1, 2, 3]),
)
def test_any_index_selection_matches_full_read(written, index, zoom):
    path, _ = written
    with HiSSCube(path) as cube:
        full_img = cube.read_images(zoom=zoom)
        full_spec = cube.read_spectra(level=zoom)
        frame = cube.read_frame()
        np.testing.assert_array_equal(cube.read_images(index, zoom=zoom), full_img[index])
        np.testing.assert_array_equal(cube.read_spectra(index, level=zoom), full_spec[index])
        pd.testing.assert_frame_equal(
            cube.read_frame(index), frame.iloc[index].reset_index(drop=True)
        )


def test_scalar_slice_and_mask_selection(written):
    path, arrays = written
    with HiSSCube(path) as cube:
        assert cube.read_images(3).shape == (5, 64, 64)
        np.testing.assert_array_equal(cube.read_images(3), arrays["images"][3])
        np.testing.assert_array_equal(
            cube.read_images(slice(10, 2, -3)), arrays["images"][10:2:-3]
        )
        mask = np.arange(12) % 3 == 0
        np.testing.assert_array_equal(cube.read_images(mask), arrays["images"][mask])
        with pytest.raises(IndexError):
            cube.read_images([12])
        with pytest.raises(IndexError):
            cube.read_images(np.ones(5, bool))


def test_frame_columns_and_labels(written):
    path, arrays = written
    table = arrays["spectrum_table"]
    with HiSSCube(path) as cube:
        frame = cube.read_frame()
        assert cube.noise_floor == 0.25
    for col in ("PLATEID", "MJD", "FIBERID", "RA", "DEC", "Z", "AVG", "MEDIAN", "P16", "P84",
                "FLAG", "object_type", "n_spectra", "true_x"):  # fmt: skip
        assert col in frame, col
    np.testing.assert_allclose(frame["AVG"], table["AVG"])
    np.testing.assert_array_equal(frame["PLATEID"], table["PLATEID"])
    np.testing.assert_allclose(frame["RA"], table["PLUG_RA"])
    assert list(frame["object_type"][-2:]) == ["galaxy", "quasar"]


def test_several_spectra_per_object_are_stacked_and_labelled(tmp_path):
    arrays = make_arrays(n=3, n_spectra=5)
    table = arrays["spectrum_table"]
    table["FLAG"] = [0.0, 0.0, 2.0, 0.0, 1.0]
    table["AVG"] = [0.0, 1.0, 5.0, -1.0, -99.0]
    table["P16"] = [-0.1, 0.8, 4.0, -1.5, -99.0]
    table["P84"] = [0.1, 1.2, 6.0, -0.5, -99.0]
    target = np.array([0, 0, 0, 1, 2])
    arrays["spectra"][1] *= 3
    path = tmp_path / "multi.h5"
    write_hisscube(path, spectrum_target=target, **arrays)
    with HiSSCube(path) as cube:
        frame = cube.read_frame()
        assert list(frame["n_spectra"]) == [3, 1, 1]
        # FLAG=0 spectra only, weights 1/0.1**2 and 1/0.2**2: (100*0 + 25*1) / 125 = 0.2
        assert frame["AVG"][0] == pytest.approx(0.2)
        assert frame["FLAG"][0] == 0 and frame["FLAG"][2] == 1
        assert np.isnan(frame["AVG"][2])  # the -99 sentinel is a missing label
        spec = cube.read_spectra(0)
        good = np.isfinite(arrays["spectrum_errors"][0])
        expected = float_compress(arrays["spectra"][:3]).astype(np.float64)[:, good].mean(axis=0)
        np.testing.assert_allclose(spec[good], expected, rtol=1e-5)
    with HiSSCube(path, label_policy="first") as cube:
        assert cube.read_frame()["AVG"][0] == 0.0


def test_layout_matches_reference_contract(written):
    """The paths, dtypes, links and attributes the reference's readers rely on (section 10)."""
    path, _ = written
    with h5py.File(path, "r") as f:
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "/dense_cube"
        assert f.attrs["spectrum_count"] == 12 and f.attrs["image_count"] == 0
        assert f["dense_cube"].attrs["target_count"] == 12
        for z in range(4):
            ml = f[f"dense_cube/{z}/ml_spectrum"]
            assert ml["wl"].id == f[f"semi_sparse_cube/{z}/spectra/wl"].id  # a hard link
            refs = ml["spec_metadata_refs"][:, 0]
            assert refs["ds_path"][0] == f"/semi_sparse_cube/{z}/spectra/metadata".encode()
            assert sorted(refs["ds_slice_idx"]) == list(range(12))
            assert ml["spec_metadata_refs"].dtype.itemsize == 88
            idx = f[f"semi_sparse_cube/{z}/spectra/db_index"][:]
            keys = list(zip(idx["spatial"], idx["time"]))
            assert keys == sorted(keys)
            assert (
                f[f"dense_cube/{z}/ml_image/cutout_3d_cube_zoom_{z}"].attrs["interpretation"]
                == "image"
            )
            assert list(f[f"dense_cube/{z}/ml_image"].attrs["bands"]) == list("ugriz")
        # The stored wl is quantised by float_compress; the reader recomputes it.
        wl = f["semi_sparse_cube/0/spectra/wl"][:]
        assert len(np.unique(wl)) < 700
    labels = pd.read_hdf(path, "fits_spectra_metadata_star_formation_rates")
    assert len(labels) == 12 and labels["FLAG"].dtype == np.float64
    assert pd.read_hdf(path, "star_formation_rates").shape[0] == 12


def test_reading_never_changes_the_file(written):
    path, _ = written
    before = file_state(path)
    with HiSSCube(path) as cube:
        cube.read_images(zoom=1)
        cube.read_image_errors([1, 2])
        cube.read_spectrum_errors(level=2)
        cube.read_frame()
    load_hisscube(path, flag=None, with_errors=True)
    assert file_state(path) == before


def test_writer_is_atomic_and_refuses_to_overwrite(tmp_path):
    arrays = make_arrays(n=2)
    path = tmp_path / "c.h5"
    with pytest.raises(ValueError, match="images must have shape"):
        write_hisscube(path, **{**arrays, "images": arrays["images"][:, :3]})
    assert list(tmp_path.iterdir()) == []  # no partial file, no leftover temporary
    write_hisscube(path, **arrays)
    before = file_state(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_hisscube(path, **arrays)
    assert file_state(path) == before
    three = make_arrays(n=3)["spectrum_table"]
    with (
        pytest.raises(ValueError, match="only 2/3 objects"),
        HiSSCubeWriter(tmp_path / "d.h5", n_targets=3) as w,
    ):
        w.write_block(
            arrays["images"], arrays["image_errors"], arrays["spectra"], arrays["spectrum_errors"]
        )
        w.set_tables(three)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]


def test_writer_rejects_bad_tables(tmp_path):
    arrays = make_arrays(n=2)
    with pytest.raises(ValueError, match="lacks required columns"):
        write_hisscube(
            tmp_path / "a.h5",
            **{**arrays, "spectrum_table": arrays["spectrum_table"].drop(columns="PLUG_RA")},
        )
    with pytest.raises(TypeError, match="numeric"):
        write_hisscube(
            tmp_path / "b.h5", **{**arrays, "spectra": arrays["spectra"].astype(object)}
        )
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(12)), st.integers(0, 12), st.sampled_from([0, 1, 2, 3]))
def test_shuffled_batches_of_distinct_rows_match_full_read(written, order, size, zoom):
    # The batch reader's path: an integer array of distinct rows in any order.
    path, _ = written
    index = np.array(order[:size], dtype=np.int64)
    with HiSSCube(path) as cube:
        for read in (cube.read_images, cube.read_image_errors):
            np.testing.assert_array_equal(read(index, zoom=zoom), read(zoom=zoom)[index])
        for read in (cube.read_spectra, cube.read_spectrum_errors):
            np.testing.assert_array_equal(read(index, level=zoom), read(level=zoom)[index])


# -- load_hisscube's in-memory path: no copies, the same values ---------------------------------
def _old_sdss_units(arrays):
    """The float64 conversion that ``to_sdss_units`` replaced, kept as the reference."""
    per_nmgy = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float64)
    out = {}
    for key in ("image", "image_error"):
        if key in arrays:
            out[key] = (arrays[key] / per_nmgy[None, :, None, None]).astype(np.float32)
    for key in ("spectrum", "spectrum_error"):
        if key in arrays:
            out[key] = (arrays[key] * 1e17).astype(np.float32)
    return out


_FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(_FLOAT32, min_size=5 * 2 * 2, max_size=5 * 2 * 2),
    st.lists(_FLOAT32, min_size=1, max_size=40),
    st.sampled_from([1e-40, 1e-17, 1.0]),
)
def test_sdss_units_in_place_equal_the_float64_conversion(image, spectrum, scale):
    """In place, float32 only, and within one unit in the last place of the old float64
    division (NaN and infinities where they were)."""
    arrays = {
        "image": (np.array(image, dtype=np.float32).reshape(1, 5, 2, 2) * np.float32(scale)),
        "spectrum": np.array(spectrum, dtype=np.float32)[None, :] * np.float32(scale),
    }
    arrays["image_error"] = np.abs(arrays["image"][::-1]).copy()
    arrays["spectrum_error"] = np.abs(arrays["spectrum"]).copy()
    with np.errstate(all="ignore"):
        expected = _old_sdss_units(arrays)
        before = {key: a for key, a in arrays.items()}
        to_sdss_units(arrays)
    for key, got in arrays.items():
        assert got is before[key] and got.dtype == np.float32  # the same array, changed in place
        want = expected[key]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        finite = np.isfinite(want) & np.isfinite(got)
        np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=1)
        # inf only where the old result overflowed too, or one rounding from it
        edge = np.isinf(got) != np.isinf(want)
        finite_one = np.where(np.isinf(got), want, got)[edge]
        assert np.all(np.abs(finite_one) > 3.4e38)


def test_load_hisscube_arrays_match_the_reader(written):
    path, _ = written
    cube_units = load_hisscube(path, flag=None, with_errors=True, units="cube")
    sdss = load_hisscube(path, flag=None, with_errors=True)
    with HiSSCube(path) as cube:
        np.testing.assert_array_equal(cube_units.X["image"], cube.read_images())
        np.testing.assert_array_equal(cube_units.X["image_error"], cube.read_image_errors())
        np.testing.assert_array_equal(cube_units.X["spectrum"], cube.read_spectra())
        # The spectrum errors are masked with the spectra already read, not read twice.
        np.testing.assert_array_equal(cube_units.X["spectrum_error"], cube.read_spectrum_errors())
    expected = _old_sdss_units(cube_units.X)
    for key, want in expected.items():
        got = sdss.X[key]
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.flags.owndata
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = np.isfinite(want)
        np.testing.assert_array_max_ulp(got[ok], want[ok], maxulp=1)


@pytest.fixture(scope="module")
def small_chunks(tmp_path_factory):
    """Datasets of 3-row chunks in three dtypes, to read through many windows."""
    path = tmp_path_factory.mktemp("chunks") / "chunks.h5"
    rng = np.random.default_rng(0)
    data = {
        "f4": rng.normal(size=(50, 2, 3)).astype(np.float32),
        "f8": rng.normal(0, 1e39, size=(50, 2, 3)),  # beyond float32: inf after the cast
        "i2": rng.integers(-1000, 1000, size=(50, 2, 3)).astype(np.int16),
    }
    with h5py.File(path, "w") as f:
        for name, values in data.items():
            f.create_dataset(name, data=values, chunks=(3, 2, 3))
    return path, data


@settings(max_examples=40, deadline=None)
@given(
    st.sets(st.integers(0, 49), max_size=50),
    st.sampled_from(["f4", "f8", "i2"]),
    st.sampled_from([1, 30, 100, 4 << 20]),
)
def test_windowed_reads_equal_numpy_indexing(small_chunks, rows, name, window):
    """Scattered rows, and stored dtypes other than float32, go through a window buffer of
    about _WINDOW_BYTES (here down to one chunk): the values are numpy's ``astype``."""
    path, data = small_chunks
    rows = np.array(sorted(rows), dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_reader, "_WINDOW_BYTES", window)
        with h5py.File(path, "r") as f, np.errstate(over="ignore"):
            got = _reader._read_rows(f[name], rows, dtype=np.float32)
            want = data[name][rows].astype(np.float32)
    assert got.dtype == np.float32 and got.shape == (rows.size, 2, 3)
    np.testing.assert_array_equal(got, want)


def test_many_spectra_per_object_are_all_found(tmp_path):
    # Reference slots are read a few at a time (2, then 8, then 32): nine spectra need three.
    arrays = make_arrays(n=3, n_spectra=11)
    target = np.array([0] * 9 + [1, 2])
    path = tmp_path / "many.h5"
    write_hisscube(path, spectrum_target=target, **arrays)
    with HiSSCube(path) as cube:
        links = cube._spectrum_rows
        assert list(cube.read_frame()["n_spectra"]) == [9, 1, 1]
    assert sorted(links.loc[links["object"] == 0, "spectrum"]) == list(range(9))
    assert list(links.loc[links["object"] == 0, "order"]) == list(range(9))


def test_spectrum_references_are_chunked_by_slot_column(written):
    # Readers find every object's labels in the first slots of spec_metadata_refs: chunks of
    # one slot column let them decompress those columns only, not all 200 slots.
    path, _ = written
    with h5py.File(path, "r") as f:
        for z in range(4):
            ds = f[f"dense_cube/{z}/ml_spectrum/spec_metadata_refs"]
            assert ds.shape == (12, 200) and ds.chunks == (12, 1)
            assert ds.compression == "gzip"  # the 199 empty slots take almost no space
            assert (ds[:, 1:]["ds_path"] == b"").all()
