"""Our reader on a file built in the exact layout of the HiSS-Cube reference implementation.

The file comes from ``tests/reference_cube.py`` (see its docstring for what each target
exercises); section numbers refer to ``shared/docs/hisscube-layout.md``. The first tests check
the fixture itself against the layout page, the rest check ``HiSSCube`` and ``load_hisscube``
against the fixture's ground truth.
"""

import json
import os
import shutil
import stat
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.datasets import HiSSCube, load_hisscube
from sklearn_sfr.datasets._layout import (
    BAND_NAMES,
    CUTOUT_SIZES,
    MERGED_LABEL_KEY,
    REF_DTYPE,
    SFR_TABLE_KEY,
    ZOOMS,
    n_wavelength,
    wavelength_grid,
)
from tests.conftest import file_state
from tests.reference_cube import healpix_nest, write_reference_cube

LABELS = ("AVG", "P16", "P84", "FLAG")


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "SDSS_cube.h5"
    return path, write_reference_cube(path)


@pytest.fixture(scope="module", params=["errors", "frames"])
def trimmed(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("trimmed") / f"no_{request.param}.h5"
    return path, write_reference_cube(path, omit_frames=request.param)


def _rows(truth, *names):
    return [truth["dense_names"].index(n) for n in names]


# --------------------------------------------------------------------------------------------
# The fixture is what the reference writes
# --------------------------------------------------------------------------------------------
def test_healpix_ids_match_the_published_dump():
    # /semi_sparse_cube/5/22/90/.../6084054576 of SDSS_cube_dataset_test_dump.txt is the TREE
    # path of spec-0412-51871-0308 (PLUG_RA, PLUG_DEC = 46.560472, -0.34435898).
    path = [5, 22, 90, 362, 1450, 5802, 23208, 92835, 371341, 1485364, 5941459, 23765838,
            95063352, 380253411, 1521013644, 6084054576]  # fmt: skip
    assert [healpix_nest(o, 46.560472, -0.34435898) for o in range(16)] == path


def test_fixture_has_the_reference_layout(ref):
    path, truth = ref
    with h5py.File(path, "r") as f:
        assert f.attrs["NX_class"] == "NXroot" and f.attrs["default"] == "/dense_cube"
        assert (f.attrs["image_count"], f.attrs["spectrum_count"]) == (10, 7)
        assert "written_by" not in f.attrs
        dense = f["dense_cube"]
        assert dense.attrs["target_count"] == truth["n_objects"] == 3
        assert dense.attrs["default"] == "/dense_cube/0"
        for z in ZOOMS:
            mi, ms = dense[f"{z}/ml_image"], dense[f"{z}/ml_spectrum"]
            assert "bands" not in mi.attrs and "image_errors" not in mi.attrs
            assert mi.attrs["signal"] == f"cutout_3d_cube_zoom_{z}"
            assert list(ms.attrs["axes"]) == [".", "wl"]
            cube = mi[f"cutout_3d_cube_zoom_{z}"]
            # created for the 4 candidates, resized to the 3 rows written
            assert cube.shape == (3, 5, CUTOUT_SIZES[z], CUTOUT_SIZES[z])
            assert cube.maxshape[0] == truth["n_candidates"] == 4
            assert f[cube.attrs["error_ds"]].name == f"/dense_cube/{z}/ml_image/errors"
            assert ms["wl"].id == f[f"semi_sparse_cube/{z}/spectra/wl"].id  # hard link
            assert mi["image_cutout_refs"].dtype.names == REF_DTYPE.names
            assert mi["image_cutout_refs"].dtype.itemsize == 88
            sidx = f[f"semi_sparse_cube/{z}/spectra/db_index"][:]
            assert np.array_equal(np.sort(sidx, order=["spatial", "time"]), sidx)
            assert not np.array_equal(sidx["ds_slice_idx"], np.arange(7))
            iidx = f[f"semi_sparse_cube/{z}/images/db_index"][:]
            assert np.array_equal(np.sort(iidx, order=["spatial", "time", "wl"]), iidx)
            assert not np.array_equal(iidx["ds_slice_idx"], np.arange(10))
        # the stored wl is quantised: 622 distinct values at zoom 0 (section 7)
        wl0 = f["semi_sparse_cube/0/spectra/wl"][:]
        assert np.unique(wl0).size == 622 and wl0[0] == 3840 and wl0[-1] == 8912
        # rows in ascending order-15 pixel id; empty slots after the last spectrum
        refs = dense["0/ml_spectrum/spec_metadata_refs"][:]
        first = refs[:, 0]["ds_slice_idx"]
        assert np.all(np.diff(truth["spectrum_pixels"][first]) > 0)
        for t, name in enumerate(truth["dense_names"]):
            n = len(truth["target_spectra"][name])
            assert list(refs[t, :n]["ds_slice_idx"]) == truth["target_spectra"][name]
            assert refs[t, n].tolist() == (b"", 0, 0, 0, 0, 0)
        # D's cutouts fall off the frames: empty image_cutouts row, no dense row
        d = truth["spectrum_names"].index("D")
        assert not f["semi_sparse_cube/0/spectra/image_cutouts_data"][d]["ds_path"].any()
        assert truth["dropped"] == ["D"]
        # the TREE leftover of section 2 is there
        assert set(f["semi_sparse_cube"]) == {"0", "1", "2", "3", "6"}
    merged = pd.read_hdf(path, MERGED_LABEL_KEY)
    sfr = pd.read_hdf(path, SFR_TABLE_KEY)
    assert sfr.shape == (8, 29)
    assert len(merged) == 7 and {"RA_x", "RA_y", "DEC_x", "DEC_y"} <= set(merged)
    assert merged["AVG"].isna().sum() == 1 and (merged["AVG"] == -99).sum() == 1
    assert merged["FLAG"].dtype.kind == "f"


def test_fixture_stores_bands_in_varying_order_and_errors_as_abs_flux(ref):
    path, truth = ref
    orders = {o for z in ZOOMS for o in truth["band_order"][z]}
    assert len(orders) >= 3 and tuple(BAND_NAMES) not in orders
    b = truth["dense_names"].index("B")
    assert truth["band_order"][0][b] != truth["band_order"][1][b]
    with h5py.File(path, "r") as f:
        for z in ZOOMS:
            meta = f[f"dense_cube/{z}/ml_image/image_metadata_refs"][:, :, 0]
            for t in range(truth["n_objects"]):
                bands = tuple(
                    json.loads(f[r["ds_path"].decode()][r["ds_slice_idx"], "header"])["FILTER"]
                    for r in meta[t]
                )
                assert bands == truth["band_order"][z][t]
    single = _rows(truth, "A", "C")  # one frame per band: errors are exactly |flux| (bug 1)
    stored = truth["images_stored"][0][single]
    assert np.array_equal(truth["image_errors_stored"][0][single], np.abs(stored))


def _deref(f, r):
    # section 4.3, as hisscube/utils/io_strategy.py::SerialDatasetIOStrategy does it
    ds = f[r["ds_path"].decode()]
    if r["x_max"] == 0 and r["y_max"] == 0:
        return ds[r["ds_slice_idx"]]
    return ds[r["ds_slice_idx"], r["x_min"] : r["x_max"], r["y_min"] : r["y_max"]]


def _reference_aggregate(flux, sigma):
    # metadata_strategy_cube_ml.py::aggregate_inverse_variance_weighting, restated
    flux, sigma = np.asarray(flux, "<f8"), np.asarray(sigma, "<f8")
    with np.errstate(all="ignore"):
        wf = np.divide(flux, sigma**2, np.zeros_like(flux), where=sigma != 0)
        ws = np.divide(1, sigma**2, np.zeros_like(sigma), where=sigma != 0)
        mean = np.nansum(wf, axis=0) / np.nansum(ws, axis=0)
        total = np.nansum(ws, axis=0)
        ratio = np.divide(1, total, np.zeros_like(total), where=total != 0)
    return mean.astype("<f4"), np.sqrt(ratio).astype("<f4")


def test_fixture_dense_cube_restacks_from_its_references(ref):
    # The dense cube is what the reference's ML step computes from the semi-sparse cube:
    # image stacks with sigma := flux (bug 1), spectra stacked over spec_metadata_refs.
    path, truth = ref
    with h5py.File(path, "r") as f:
        for z in ZOOMS:
            ml = f[f"dense_cube/{z}/ml_image"]
            cube, err = ml[f"cutout_3d_cube_zoom_{z}"][:], ml["errors"][:]
            refs = ml["image_cutout_refs"][:]
            for t in range(truth["n_objects"]):
                for b in range(5):
                    windows = [_deref(f, r) for r in refs[t, b] if r["ds_path"]]
                    mean, sig = _reference_aggregate(windows, windows)
                    np.testing.assert_allclose(cube[t, b], mean, rtol=1e-6)
                    np.testing.assert_allclose(err[t, b], sig, rtol=1e-6)
                    if z == 0:  # the object sits at the window centre in every frame
                        for w in windows:
                            noise = 1.4826 * np.median(np.abs(w - np.median(w))) / 5
                            assert w[30:35, 30:35].mean() > 4 * noise
            ms = f[f"dense_cube/{z}/ml_spectrum"]
            spec, spec_err = ms[f"spectral_1d_cube_zoom_{z}"][:], ms["errors"][:]
            sparse = f[f"semi_sparse_cube/{z}/spectra"]
            for t, srefs in enumerate(ms["spec_metadata_refs"][:]):
                ids = [int(r["ds_slice_idx"]) for r in srefs if r["ds_path"]]
                assert all(r["ds_path"].decode() == sparse["metadata"].name for r in srefs[:1])
                mean, sig = _reference_aggregate(sparse["data"][:][ids], sparse["errors"][:][ids])
                np.testing.assert_allclose(spec[t], mean, rtol=1e-6)
                np.testing.assert_allclose(spec_err[t], sig, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------
def test_reader_counts_objects_and_zooms(ref):
    path, truth = ref
    with HiSSCube(path) as cube:
        assert cube.n_objects == truth["n_objects"] == 3
        assert cube.is_reference
        assert tuple(cube.zooms) == ZOOMS  # not the numeric children of /semi_sparse_cube
        assert tuple(cube.band_names) == BAND_NAMES


@pytest.mark.parametrize("zoom", ZOOMS)
def test_images_come_back_ugriz(ref, zoom):
    path, truth = ref
    with HiSSCube(path) as cube:
        images = cube.read_images(zoom=zoom)
        picked = cube.read_images([2, 0], zoom=zoom)
        one = cube.read_images(1, zoom=zoom)
    s = CUTOUT_SIZES[zoom]
    expected = truth["images"][zoom]
    assert images.shape == (3, 5, s, s) and images.dtype == np.float32
    np.testing.assert_allclose(images, expected, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(picked, images[[2, 0]])
    np.testing.assert_array_equal(one, images[1])
    single = _rows(truth, "A", "C")  # one frame per band: the stored flux, reordered
    np.testing.assert_array_equal(images[single], truth["images_stored"][zoom][single])


@pytest.mark.parametrize("zoom", ZOOMS)
def test_image_errors_are_recovered_through_the_refs(ref, zoom):
    path, truth = ref
    with HiSSCube(path) as cube, warnings.catch_warnings():
        warnings.simplefilter("error")  # the frames are there: nothing to warn about
        errors = cube.read_image_errors(zoom=zoom)
        picked = cube.read_image_errors([2, 0], zoom=zoom)
        flux = cube.read_images(zoom=zoom)
    np.testing.assert_allclose(errors, truth["image_errors"][zoom], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(picked, errors[[2, 0]])
    assert np.all(errors > 0)
    # never |flux|, which is what the reference stored
    assert not np.allclose(errors, np.abs(flux), rtol=0.1, atol=0)
    assert not np.allclose(errors, truth["image_errors_stored"][zoom], rtol=0.1, atol=0)


def test_image_errors_are_nan_with_a_warning_without_frame_errors(trimmed):
    path, truth = trimmed
    with HiSSCube(path) as cube:
        with pytest.warns(UserWarning, match="NaN"):
            errors = cube.read_image_errors(zoom=1)
        single = _rows(truth, "A", "C")  # one frame per band: the dense cube is still right
        images = cube.read_images(single, zoom=1)
    assert errors.shape == (3, 5, 32, 32) and np.isnan(errors).all()
    np.testing.assert_array_equal(images, truth["images"][1][single])


def test_multi_frame_flux_is_not_silently_distorted_without_frame_errors(trimmed):
    # B has two frames per band: the reference's dense flux is sum(1/f) / sum(1/f**2) there
    # (section 9, bug 1). Without the frame errors it cannot be restacked; the reader must
    # then say so rather than hand back the distorted values as if they were fluxes.
    path, truth = trimmed
    b = truth["dense_names"].index("B")
    with HiSSCube(path) as cube, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = cube.read_images(b, zoom=1)
    if np.allclose(images, truth["images"][1][b], rtol=1e-6, atol=0):
        return  # restacked correctly after all
    assert caught, f"read_images returned wrong multi-frame fluxes of object {b} silently"
    distorted = truth["images_stored"][1][b]
    assert not np.allclose(images, distorted, rtol=1e-6, atol=0, equal_nan=True), (
        "read_images returned the reference's distorted sum(1/f) / sum(1/f**2) as fluxes"
    )


@pytest.mark.parametrize("level", ZOOMS)
def test_spectra_are_the_dense_stacks(ref, level):
    path, truth = ref
    with HiSSCube(path) as cube:
        flux = cube.read_spectra(level=level)
        err = cube.read_spectrum_errors(level=level)
    with h5py.File(path, "r") as f:
        dense = f[f"dense_cube/{level}/ml_spectrum/spectral_1d_cube_zoom_{level}"][:]
        dense_err = f[f"dense_cube/{level}/ml_spectrum/errors"][:]
    assert flux.shape == (3, n_wavelength(level)) and flux.dtype == np.float32
    np.testing.assert_array_equal(flux, dense)
    np.testing.assert_array_equal(flux, truth["spectra"][level])
    # A single spectrum (B) comes out unchanged where it is not masked
    b = truth["dense_names"].index("B")
    i = truth["target_spectra"]["B"][0]
    ok = np.isfinite(truth["semi_sparse_errors"][level][i])
    np.testing.assert_array_equal(flux[b, ok], truth["semi_sparse_spectra"][level][i, ok])
    # errors: as stored where there is a measurement; NaN where every input was masked
    # (the reference stores flux NaN with error 0 there, section 5.2)
    measured = np.isfinite(flux)
    np.testing.assert_array_equal(err[measured], dense_err[measured])
    assert np.isnan(err[~measured]).all()
    if level == 0:
        a = truth["dense_names"].index("A")
        assert np.isnan(flux[a, 2000:2003]).all() and (dense_err[a, 2000:2003] == 0).all()


@pytest.mark.parametrize("level", ZOOMS)
def test_wavelength_is_recomputed_not_the_quantised_wl(ref, level):
    path, truth = ref
    with HiSSCube(path) as cube:
        wl = np.asarray(cube.wavelength(level))
    with h5py.File(path, "r") as f:
        stored = f[f"semi_sparse_cube/{level}/spectra/wl"][:]
    np.testing.assert_allclose(wl, wavelength_grid(level), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(stored, truth["wl_stored"][level])
    assert np.abs(wl - stored).max() > 1.0  # steps of 4, 8, 16 A in the stored wl


@pytest.mark.parametrize("policy", ["ivar", "first"])
def test_labels_per_target(ref, policy):
    path, truth = ref
    with HiSSCube(path, label_policy=policy) as cube:
        frame = cube.read_frame()
        part = cube.read_frame([2, 0])
    expected = truth["labels"][policy]
    assert len(frame) == 3
    for col in LABELS:
        np.testing.assert_allclose(
            frame[col].to_numpy(np.float64), expected[col].to_numpy(np.float64), rtol=1e-6,
            err_msg=f"{policy}: {col}",
        )  # fmt: skip
    np.testing.assert_array_equal(frame["n_spectra"].to_numpy(), truth["n_spectra"])
    np.testing.assert_array_equal(frame["n_spectra"].to_numpy(), [3, 1, 2])
    # -99 sentinels and the unmatched spectrum are missing values, never -99
    assert not (frame[["AVG", "P16", "P84"]].to_numpy(np.float64) <= -99).any()
    c = truth["dense_names"].index("C")
    assert np.isnan(frame.loc[c, "AVG"])
    pd.testing.assert_frame_equal(part, frame.iloc[[2, 0]].reset_index(drop=True))
    for t, name in enumerate(truth["dense_names"]):
        key = tuple(int(frame.loc[t, k]) for k in ("PLATEID", "MJD", "FIBERID"))
        keys = [truth["spectrum_keys"][i] for i in truth["target_spectra"][name]]
        assert key in keys
        if policy == "first":  # the earliest in db_index order, not in data order
            assert key == keys[0]


def test_label_policies_differ_where_they_should(ref):
    _, truth = ref
    a, b, c = _rows(truth, "A", "B", "C")
    ivar, first = truth["labels"]["ivar"], truth["labels"]["first"]
    # A: FLAG 2 (earliest), 0, 0; ivar = weighted mean of the two FLAG=0 rows
    w = np.array([1 / 0.25**2, 1 / 0.4**2])
    assert ivar.loc[a, "AVG"] == pytest.approx(np.dot(w, [0.5, 0.8]) / w.sum(), rel=1e-6)
    assert (ivar.loc[a, "FLAG"], first.loc[a, "FLAG"]) == (0, 2)
    assert first.loc[a, "AVG"] == pytest.approx(-1.2, rel=1e-6)
    assert ivar.loc[b, "AVG"] == pytest.approx(first.loc[b, "AVG"])
    # C: the unmatched BOSS spectrum sorts first (MJD, no TAI), the other has -99 / FLAG 1
    assert ivar.loc[c, "FLAG"] == 1 and np.isnan(first.loc[c, "FLAG"])


def test_frame_positions_are_the_objects(ref):
    path, truth = ref
    with HiSSCube(path) as cube:
        frame = cube.read_frame()
    for t, name in enumerate(truth["dense_names"]):
        ra, dec = truth["target_radec"][name]
        assert frame.loc[t, "RA"] == pytest.approx(ra, abs=2 / 3600), name
        assert frame.loc[t, "DEC"] == pytest.approx(dec, abs=2 / 3600), name


def test_reading_leaves_the_file_untouched(ref, tmp_path):
    path, _ = ref
    copy = tmp_path / "readonly.h5"
    shutil.copyfile(path, copy)
    os.chmod(copy, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = file_state(copy)
    for policy in ("ivar", "first"):
        with HiSSCube(copy, label_policy=policy) as cube:
            for z in ZOOMS:
                cube.read_images(zoom=z)
                cube.read_image_errors(zoom=z)
                cube.read_spectra(level=z)
                cube.read_spectrum_errors(level=z)
            cube.read_frame()
    load_hisscube(copy, flag=None, with_errors=True)
    assert file_state(copy) == before


def test_load_hisscube_on_the_reference_file(ref):
    path, truth = ref
    data = load_hisscube(path, flag=None, units="cube")  # the stored values, to compare
    assert data.X["image"].shape == (3, 5, 64, 64) and data.X["spectrum"].shape == (3, 4620)
    np.testing.assert_allclose(data.X["image"], truth["images"][0], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(data.X["spectrum"], truth["spectra"][0])
    np.testing.assert_allclose(data.y, truth["labels"]["ivar"]["AVG"], rtol=1e-6)
    np.testing.assert_allclose(data.wavelength, wavelength_grid(0), rtol=0, atol=1e-9)
    assert list(data.band_names) == list(BAND_NAMES) and len(data.frame) == 3

    reliable = load_hisscube(path, image_zoom=1, spectrum_zoom=2, with_errors=True, units="cube")
    keep = _rows(truth, "A", "B")
    assert reliable.X["image"].shape == (2, 5, 32, 32)
    assert reliable.X["spectrum"].shape == (2, 1155)
    np.testing.assert_allclose(reliable.X["image"], truth["images"][1][keep], rtol=1e-6)
    np.testing.assert_allclose(
        reliable.X["image_error"], truth["image_errors"][1][keep], rtol=1e-6
    )
    np.testing.assert_allclose(
        reliable.y, truth["labels"]["ivar"]["AVG"].to_numpy()[keep], rtol=1e-6
    )
    np.testing.assert_allclose(reliable.wavelength, wavelength_grid(2), rtol=0, atol=1e-9)
