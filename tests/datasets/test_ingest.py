"""ingest_sdss_fits on the real SDSS files in ../shared/data/sdss: spectra, a u frame, MPA rows."""

import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import HiSSCube, ingest_sdss_fits, load_hisscube, write_hisscube
from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY, inverse_variance_stack
from sklearn_sfr.datasets._sdss_frames import ccd_gain_dark_variance, read_frame_info
from sklearn_sfr.datasets._sdss_spectra import (
    read_sdss_spectrum,
    resample_flux_conserving,
    spectrum_on_grid,
)
from tests.conftest import file_state, make_arrays

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "sdss"
if not (DATA / "spectra").is_dir():
    pytest.skip(
        f"the real SDSS test files are not at {DATA} (CI checks ../shared out beside the repo)",
        allow_module_level=True,
    )

SPECTRA = DATA / "spectra"
U_FRAME = DATA / "frames" / "frame-u-004948-3-0199.fits.bz2"
SPECTRUM_FILES = sorted(SPECTRA.glob("spec-*.fits"))
LABELLED = {(411, 51817, 119), (411, 51873, 101), (412, 51931, 319), (412, 52235, 305)}
OFF_CORNER = (4238, 55455, 37)
QUASAR = (5290, 55862, 984)
SFR_COLUMNS = ["AVG", "ENTROPY", "FLAG", "MEDIAN", "MODE", "P16", "P2P5", "P84", "P97P5"]
CSV = DATA / "mpa_jhu_totsfr_rows.csv"


def _key(row):
    return (int(row["PLATEID"]), int(row["MJD"]), int(row["FIBERID"]))


def write_mpa_tables(folder, rows):
    """gal_info + gal_totsfr FITS tables in the catalogue's format (HDU1, row-aligned).

    ``rows`` is a DataFrame with the CSV's columns. A first, unrelated catalogue row makes the
    join depend on row alignment rather than on the row order of the spectra.
    """
    extra = pd.DataFrame(
        [[266, 51602, 1, -0.5, -4.5, 0, -0.5, -0.5, -0.9, -1.2, -0.1, 0.2]], columns=rows.columns
    )
    rows = pd.concat([extra, rows], ignore_index=True)
    n = len(rows)
    info = fits.BinTableHDU.from_columns(
        [
            fits.Column("PLATEID", "J", array=rows["PLATEID"].to_numpy(np.int32)),
            fits.Column("MJD", "J", array=rows["MJD"].to_numpy(np.int32)),
            fits.Column("FIBERID", "J", array=rows["FIBERID"].to_numpy(np.int32)),
            fits.Column("PHOTOID", "5J", array=np.zeros((n, 5), np.int32)),  # a vector column
            fits.Column("RA", "E", array=np.full(n, 46.557, np.float32)),
            fits.Column("DEC", "E", array=np.full(n, -0.3415, np.float32)),
            fits.Column("SUBCLASS", "16A", array=np.array(["STARFORMING"] * n)),
            fits.Column("Z", "E", array=np.full(n, 0.029, np.float32)),
        ]
    )
    sfr = fits.BinTableHDU.from_columns(
        [fits.Column(c, "E", array=rows[c].to_numpy(np.float32)) for c in SFR_COLUMNS]
    )
    info_path, sfr_path = folder / "gal_info_dr7_v5_2.fit", folder / "gal_totsfr_dr7_v5_2.fits"
    fits.HDUList([fits.PrimaryHDU(), info]).writeto(info_path)
    fits.HDUList([fits.PrimaryHDU(), sfr]).writeto(sfr_path)
    return info_path, sfr_path


@pytest.fixture(scope="module")
def mpa_rows():
    return pd.read_csv(CSV)


@pytest.fixture(scope="module")
def spectrum_cube(tmp_path_factory, mpa_rows):
    """All real spectra plus the MPA-JHU rows, no frames: a spectrum-only cube."""
    folder = tmp_path_factory.mktemp("ingest")
    info, sfr = write_mpa_tables(folder, mpa_rows)
    result = ingest_sdss_fits(folder / "cube.h5", SPECTRA, mpa_info=info, mpa_sfr=sfr)
    return result


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory):
    """Five band frames made from the real u frame (header copied, FILTER changed), plus
    copies of a real spectrum moved to positions inside the frame."""
    folder = tmp_path_factory.mktemp("frames")
    (folder / "frames").mkdir()
    (folder / "spectra").mkdir()
    with fits.open(U_FRAME) as hdul:
        # Decompress once: a lazily read bz2 HDU is decompressed again on every write.
        for hdu in hdul:
            hdu.data
        for band in "ugriz":
            hdul[0].header["FILTER"] = band
            # Uncompressed: decompressing the bz2 once is the slow part of the test.
            hdul.writeto(folder / "frames" / f"frame-{band}-004948-3-0199.fits")
    wcs = read_frame_info(folder / "frames" / "frame-u-004948-3-0199.fits").wcs
    # Inside the frame, a sub-pixel position, and one 8 px from the right edge.
    pixels = [(500.3, 700.7), (1500.0, 300.2), (2040.0, 1000.0)]
    with fits.open(SPECTRA / "spec-4500-55543-0331.fits") as hdul:
        for k, (x, y) in enumerate(pixels):
            ra, dec = wcs.pixel_to_world_values(x, y)
            hdul[0].header["PLUG_RA"] = float(ra)
            hdul[0].header["PLUG_DEC"] = float(dec)
            hdul[0].header["FIBERID"] = 900 + k
            hdul.writeto(folder / "spectra" / f"spec-4500-55543-{900 + k:04d}.fits")
    return folder, pixels


@pytest.fixture(scope="module")
def frame_cube(frame_folder):
    folder, pixels = frame_folder
    before = {p: file_state(p) for p in (folder / "frames").iterdir()}
    result = ingest_sdss_fits(
        folder / "cube.h5",
        [SPECTRA, folder / "spectra"],
        frames=folder / "frames" / "frame-*.fits",
        edge="pad",
    )
    after = {p: file_state(p) for p in (folder / "frames").iterdir()}
    return result, pixels, before == after


# -- spectra --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECTRUM_FILES, ids=lambda p: p.stem)
def test_every_spectrum_reads_like_astropy(path):
    header, wavelength, flux, ivar, and_mask = read_sdss_spectrum(path)
    coadd = fits.getdata(path, 1)
    specobj = fits.getdata(path, 2)
    primary = fits.getheader(path, 0)
    np.testing.assert_allclose(wavelength, 10.0 ** coadd["loglam"].astype(np.float64))
    np.testing.assert_array_equal(flux, coadd["flux"])
    np.testing.assert_array_equal(ivar, coadd["ivar"])
    assert header["SPEC_Z"] == pytest.approx(float(specobj["Z"][0]))
    assert header["CLASS"] == specobj["CLASS"][0].strip()
    assert (header["PLATEID"], header["MJD"], header["FIBERID"]) == (
        primary["PLATEID"],
        primary["MJD"],
        primary["FIBERID"],
    )
    # The object position, not the plate centre (RA/DEC in the header).
    assert header["PLUG_RA"] == pytest.approx(primary["PLUG_RA"])
    assert header["PLUG_DEC"] == pytest.approx(primary["PLUG_DEC"])
    grid_flux, grid_sigma = spectrum_on_grid(wavelength, flux, ivar, and_mask)
    assert grid_flux.shape == (4620,)
    # Masked and uncovered pixels: NaN in flux and error together.
    np.testing.assert_array_equal(np.isnan(grid_flux), np.isnan(grid_sigma))
    assert np.isfinite(grid_flux).mean() > 0.4


def test_resampling_conserves_flux():
    rng = np.random.default_rng(0)
    wavelength = 10 ** (3.58 + 1e-4 * np.arange(3900))
    flux = rng.normal(5.0, 1.0, wavelength.size)
    sigma = rng.uniform(0.5, 1.0, wavelength.size)
    new = np.linspace(4000.0, 8000.0, 3000)
    out, err = resample_flux_conserving(wavelength, flux, sigma, new)
    # Integral of the piecewise-constant input between the output edges, independently.
    loglam = np.log10(wavelength)
    mid = 0.5 * (loglam[1:] + loglam[:-1])
    in_edges = 10 ** np.concatenate([[2 * loglam[0] - mid[0]], mid, [2 * loglam[-1] - mid[-1]]])
    cumulative = np.concatenate([[0.0], np.cumsum(flux * np.diff(in_edges))])
    step = new[1] - new[0]
    out_edges = np.concatenate([new - step / 2, [new[-1] + step / 2]])
    expected = np.diff(np.interp(out_edges, in_edges, cumulative)) / step
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    assert np.all(err < sigma.max())
    # A masked input pixel makes exactly the output pixels it overlaps NaN.
    masked = flux.copy()
    masked[2000] = np.nan
    out_m, err_m = resample_flux_conserving(wavelength, masked, sigma, new)
    hit = (out_edges[1:] > in_edges[2000]) & (out_edges[:-1] < in_edges[2001])
    assert 1 <= hit.sum() <= 3
    np.testing.assert_array_equal(np.isnan(out_m), hit)
    np.testing.assert_array_equal(np.isnan(err_m), hit)
    # Outside the input's coverage: NaN.
    edge, _ = resample_flux_conserving(wavelength, flux, sigma, np.array([3000.0, 5000.0]))
    assert np.isnan(edge[0]) and np.isfinite(edge[1])


def test_repeat_observations_become_one_object(spectrum_cube):
    table = spectrum_cube.table
    assert (table["status"] == "kept").all()
    objects = table.groupby("object")["file"].apply(lambda f: sorted(Path(x).stem for x in f))
    assert len(objects) == 5
    groups = {tuple(v) for v in objects}
    assert tuple(sorted(p.stem for p in SPECTRA.glob("spec-0411-*"))) in groups
    assert tuple(sorted(p.stem for p in SPECTRA.glob("spec-0412-*"))) in groups
    data = load_hisscube(
        spectrum_cube.path, modalities=("spectrum",), flag=None, with_errors=True, units="cube"
    )
    assert "image" not in data.X
    assert sorted(data.frame["n_spectra"]) == [1, 1, 1, 3, 5]
    # The stacked spectrum of the five-epoch object is their inverse-variance mean.
    row = int(table.loc[table["PLATEID"] == 412, "cube_row"].iloc[0])
    files = sorted(SPECTRA.glob("spec-0412-*"))
    singles = [spectrum_on_grid(*read_sdss_spectrum(p)[1:]) for p in files]
    mean, _ = inverse_variance_stack([s[0] for s in singles], [s[1] for s in singles])
    got = data.X["spectrum"][row]
    both = np.isfinite(mean) & np.isfinite(got)
    assert both.mean() > 0.95
    # 1e-3: the semi-sparse spectra are float-compressed before stacking (layout doc sect. 7).
    np.testing.assert_allclose(got[both], mean[both], rtol=3e-3)
    single_err = np.nanmedian([s[1] for s in singles], axis=1)
    assert np.nanmedian(data.X["spectrum_error"][row]) < single_err.min()


def test_single_spectrum_round_trips_in_sdss_units(spectrum_cube):
    table = spectrum_cube.table
    row = int(table.loc[table["PLATEID"] == 4500, "cube_row"].iloc[0])
    header, wl, flux, ivar, mask = read_sdss_spectrum(SPECTRA / "spec-4500-55543-0331.fits")
    expected, _ = spectrum_on_grid(wl, flux, ivar, mask)
    data = load_hisscube(spectrum_cube.path, modalities=("spectrum",), flag=None)
    got = data.X["spectrum"][row]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    ok = np.isfinite(got)
    # Back in 1e-17 erg/s/cm2/A, the units of the FITS file.
    np.testing.assert_allclose(got[ok], expected[ok] * 1e17, rtol=2e-3, atol=1e-3)
    assert data.X["redshift"][row] == pytest.approx(header["SPEC_Z"])


# -- labels ---------------------------------------------------------------------------------
def test_mpa_labels_reach_exactly_the_four_labelled_spectra(spectrum_cube, mpa_rows):
    table = spectrum_cube.table
    labelled = table[table.apply(_key, axis=1).isin(LABELLED)]
    assert len(labelled) == 4
    expected = mpa_rows.set_index(["PLATEID", "MJD", "FIBERID"])
    for _, row in labelled.iterrows():
        assert row["AVG"] == pytest.approx(expected.loc[_key(row), "AVG"], abs=1e-5)
        assert row["FLAG"] == expected.loc[_key(row), "FLAG"]
    assert table.loc[~table.index.isin(labelled.index), "AVG"].isna().all()
    assert table.loc[~table.index.isin(labelled.index), "FLAG"].isna().all()
    # The cube's label table: one row per spectrum, four matched, P16/P84 kept.
    merged = pd.read_hdf(spectrum_cube.path, MERGED_LABEL_KEY)
    assert len(merged) == 11
    assert merged["AVG"].notna().sum() == 4
    assert merged["P16"].notna().sum() == 4
    # Per object: the 0411 galaxy combines its two FLAG=0 rows by inverse variance.
    with HiSSCube(spectrum_cube.path) as cube:
        frame = cube.read_frame()
    rows = expected.loc[[(411, 51817, 119), (411, 51873, 101)]]
    w = 1 / ((rows["P84"] - rows["P16"]) / 2) ** 2
    obj = frame[frame["PLATEID"] == 411].iloc[0]
    assert obj["AVG"] == pytest.approx(float((rows["AVG"] * w).sum() / w.sum()), abs=1e-5)
    assert obj["FLAG"] == 0
    assert frame.loc[frame["PLATEID"].isin([4238, 4500, 5290]), "AVG"].isna().all()


def test_mpa_sentinels_are_missing_labels_and_flag_is_kept(tmp_path, mpa_rows):
    sentinel = pd.DataFrame(
        [[4500, 55543, 331, -99, 0, 1, -99, -99, -99, -99, -99, -99]], columns=mpa_rows.columns
    )
    info, sfr = write_mpa_tables(tmp_path, sentinel)
    result = ingest_sdss_fits(
        tmp_path / "c.h5", SPECTRA / "spec-4500-55543-0331.fits", mpa_info=info, mpa_sfr=sfr
    )
    assert math.isnan(result.table.loc[0, "AVG"])
    assert result.table.loc[0, "FLAG"] == 1
    data = load_hisscube(result.path, modalities=("spectrum",), flag=None)
    assert np.isnan(data.y[0]) and data.frame.loc[0, "FLAG"] == 1
    # The reference keeps the sentinel in its table; so do we.
    assert pd.read_hdf(result.path, MERGED_LABEL_KEY)["AVG"].iloc[0] == -99


def test_real_casjobs_csv_labels_the_spectra_that_have_rows(tmp_path, mpa_rows, spectrum_cube):
    # The CSV a CasJobs query returns, used as it is: joined on PLATEID, MJD, FIBERID.
    before = file_state(CSV)
    result = ingest_sdss_fits(tmp_path / "csv.h5", SPECTRA, labels=CSV)
    assert file_state(CSV) == before
    table = result.table
    assert (table["status"] == "kept").all()
    labelled = table[table.apply(_key, axis=1).isin(LABELLED)]
    assert len(labelled) == 4
    expected = mpa_rows.set_index(["PLATEID", "MJD", "FIBERID"])
    for _, row in labelled.iterrows():
        assert row["AVG"] == pytest.approx(expected.loc[_key(row), "AVG"], abs=1e-12)
        assert row["FLAG"] == expected.loc[_key(row), "FLAG"]
    assert table.loc[~table.index.isin(labelled.index), ["AVG", "FLAG"]].isna().all().all()
    # Every SFR column of the cube's label table is the CSV's value for that spectrum.
    merged = pd.read_hdf(result.path, MERGED_LABEL_KEY)
    assert len(merged) == 11
    matched = merged[merged.apply(_key, axis=1).isin(LABELLED)].set_index(
        ["PLATEID", "MJD", "FIBERID"]
    )
    assert len(matched) == 4
    for c in SFR_COLUMNS:
        np.testing.assert_allclose(
            matched[c].to_numpy(np.float64),
            expected.loc[matched.index, c].to_numpy(np.float64),
            atol=1e-12,
        )
    assert merged.loc[~merged.apply(_key, axis=1).isin(LABELLED), SFR_COLUMNS].isna().all().all()
    with h5py.File(result.path, "r") as f:
        assert f[MERGED_LABEL_KEY].attrs["sfr_source"] == CSV.name
    # The same labels as the official gal_info + gal_totsfr pair route (float32 there).
    pair = spectrum_cube.table.set_index("file")
    np.testing.assert_allclose(
        table.set_index("file").loc[pair.index, "AVG"], pair["AVG"], atol=1e-5
    )


def test_cli_ingest_with_labels_table(tmp_path, capsys, mpa_rows):
    out = tmp_path / "cli.h5"
    args = ["ingest", str(out), "--spectra", str(SPECTRA / "spec-04*.fits"), "--labels", str(CSV)]
    assert main([*args, "--quiet"]) == 0
    report = pd.read_csv(tmp_path / "cli_ingest.csv")
    assert report["AVG"].notna().sum() == 4
    data = load_hisscube(out, modalities=("spectrum",))  # FLAG=0: both galaxies labelled
    assert len(data.y) == 2 and np.isfinite(data.y).all()
    assert main([*args, "--overwrite", "--mpa-info", str(CSV), "--mpa-sfr", str(CSV)]) == 2
    assert "either labels" in capsys.readouterr().err


def test_boss_quasar_is_kept_unlabelled_or_skipped_by_class(spectrum_cube, tmp_path):
    table = spectrum_cube.table
    qso = table[table.apply(_key, axis=1) == QUASAR].iloc[0]
    assert qso["status"] == "kept" and qso["CLASS"] == "QSO" and math.isnan(qso["AVG"])
    with HiSSCube(spectrum_cube.path) as cube:
        frame = cube.read_frame()
    row = frame.loc[int(qso["cube_row"])]
    assert row["object_type"] == "quasar"
    assert row["Z"] == pytest.approx(2.562, abs=1e-3)
    only = ingest_sdss_fits(
        tmp_path / "g.h5", SPECTRA / "spec-5290-*.fits", classes=["QSO"], overwrite=True
    )
    assert only.table["status"].tolist() == ["kept"]
    with pytest.raises(ValueError, match="no object could be kept"):
        ingest_sdss_fits(tmp_path / "q.h5", SPECTRA / "spec-5290-*.fits", classes=["GALAXY"])
    report = pd.read_csv(tmp_path / "q_ingest.csv")
    assert report.loc[0, "status"] == "skipped" and "QSO" in report.loc[0, "reason"]
    assert not (tmp_path / "q.h5").exists()


# -- frames ---------------------------------------------------------------------------------
def test_cutouts_inside_the_frame_match_its_pixels(frame_cube, frame_folder):
    result, pixels, untouched = frame_cube
    assert untouched, "the ingest modified an input frame"
    folder, _ = frame_folder
    frame = fits.getdata(folder / "frames" / "frame-u-004948-3-0199.fits").astype(np.float64)
    table = result.table
    data = load_hisscube(result.path, flag=None, with_errors=True)
    for k, (x, y) in enumerate(pixels[:2]):
        row = int(table.loc[table["FIBERID"] == 900 + k, "cube_row"].iloc[0])
        # Cutout2D's even-size rule: the first pixel is ceil(position - 32).
        x0, y0 = math.ceil(x - 32), math.ceil(y - 32)
        expected = frame[y0 : y0 + 64, x0 : x0 + 64]
        for b in range(5):  # every band frame is a copy of the u frame
            np.testing.assert_allclose(data.X["image"][row, b], expected, rtol=1e-5, atol=1e-7)
        assert not table.loc[table["cube_row"] == row, "edge_padded"].any()
        errors = data.X["image_error"][row]
        assert np.all(errors > 0)
        # Errors grow with the band's gain falling: u (gain 1.59) is the noisiest.
        assert np.median(errors[0]) > np.median(errors[2])
    with HiSSCube(result.path) as cube:
        assert cube.read_images(zoom=3).shape == (cube.n_objects, 5, 8, 8)


def test_frame_errors_follow_the_data_model_recipe(frame_cube, frame_folder):
    result, pixels, _ = frame_cube
    folder, _ = frame_folder
    x, y = pixels[0]
    x0, y0 = math.ceil(x - 32), math.ceil(y - 32)
    r, c = y0 + 10, x0 + 20  # a pixel of the cutout, in frame coordinates
    with fits.open(folder / "frames" / "frame-u-004948-3-0199.fits") as hdul:
        image = float(hdul[0].data[r, c])
        calib = float(hdul[1].data[c])
        allsky = hdul[2].data["ALLSKY"][0].astype(np.float64)
        sx = float(hdul[2].data["XINTERP"][0][c])
        sy = float(hdul[2].data["YINTERP"][0][r])
    # Bilinear interpolation of the sky grid by hand.
    ix, iy = int(np.floor(sx)), int(np.floor(sy))
    fx, fy = sx - ix, sy - iy
    sky = (
        allsky[iy, ix] * (1 - fx) * (1 - fy)
        + allsky[iy, ix + 1] * fx * (1 - fy)
        + allsky[iy + 1, ix] * (1 - fx) * fy
        + allsky[iy + 1, ix + 1] * fx * fy
    )
    gain, dark = ccd_gain_dark_variance("u", 3, 4948)
    expected = math.sqrt((image / calib + sky) / gain + dark) * calib
    table = result.table
    row = int(table.loc[table["FIBERID"] == 900, "cube_row"].iloc[0])
    data = load_hisscube(result.path, flag=None, with_errors=True)
    assert data.X["image_error"][row, 0, 10, 20] == pytest.approx(expected, rel=1e-5)


def test_off_corner_object_is_padded_and_flagged(frame_cube):
    result, _, _ = frame_cube
    table = result.table
    off = table[table.apply(_key, axis=1) == OFF_CORNER].iloc[0]
    assert off["status"] == "kept" and off["edge_padded"]
    assert 0.8 < off["padded_fraction"] < 1
    data = load_hisscube(result.path, flag=None)
    image = data.X["image"][int(off["cube_row"])]
    # The object lies about 9 px left of and 13 px below the frame corner: only the cutout's
    # top-right part is on the frame.
    assert np.isnan(image).mean() == pytest.approx(off["padded_fraction"])
    assert np.isfinite(image[:, -1, -1]).all() and np.isnan(image[:, 0, 0]).all()
    assert bool(data.frame.loc[int(off["cube_row"]), "edge_padded"])
    # Objects on no frame at all are skipped with the bands they lack.
    far = table[table["PLATEID"].isin([411, 412, 4500]) & (table["FIBERID"] < 900)]
    assert (far["status"] == "skipped").all()
    assert far["reason"].str.contains("band(s) u, g, r, i, z", regex=False).all()
    assert result.table_path.exists()


def test_edge_skip_skips_the_off_corner_object(frame_folder, tmp_path):
    folder, _ = frame_folder
    result = ingest_sdss_fits(
        tmp_path / "skip.h5",
        [SPECTRA / "spec-4238-55455-0037.fits", folder / "spectra" / "spec-4500-55543-0900.fits"],
        frames=folder / "frames",
        edge="skip",
    )
    by_plate = result.table.set_index("PLATEID")
    assert by_plate.loc[4238, "status"] == "skipped"
    assert "edge" in by_plate.loc[4238, "reason"]
    assert by_plate.loc[4500, "status"] == "kept"


def test_missing_bands_skip_every_object_with_a_reason(tmp_path):
    # Only the real u frame: the off-corner object lacks g, r, i, z; the others lack all.
    with pytest.raises(ValueError, match="no object could be kept"):
        ingest_sdss_fits(tmp_path / "u.h5", SPECTRA, frames=DATA / "frames")
    report = pd.read_csv(tmp_path / "u_ingest.csv")
    assert (report["status"] == "skipped").all()
    off = report[report.apply(_key, axis=1) == OFF_CORNER].iloc[0]
    assert off["reason"] == "no frame covers it in band(s) g, r, i, z"
    assert not (tmp_path / "u.h5").exists()


# -- end to end -----------------------------------------------------------------------------
def test_a_model_trains_on_the_ingested_cube(spectrum_cube):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeRegressor

    from sklearn_sfr.preprocessing import SpectrumRebin

    X, y = load_hisscube(spectrum_cube.path, modalities=("spectrum",), return_X_y=True)
    assert len(y) == 2 and np.isfinite(y).all()  # the two labelled FLAG=0 galaxies
    model = make_pipeline(
        SpectrumRebin(4),
        SimpleImputer(keep_empty_features=True),
        DecisionTreeRegressor(random_state=0),
    )
    model.fit(X["spectrum"], y)
    everything = load_hisscube(spectrum_cube.path, modalities=("spectrum",), flag=None)
    pred = model.predict(everything.X["spectrum"])
    assert pred.shape == (5,) and np.isfinite(pred).all()


# -- writer and reader support, bad input, CLI ----------------------------------------------
def test_spectrum_only_cube_written_and_read(tmp_path):
    arrays = make_arrays(n=4)
    path = write_hisscube(
        tmp_path / "s.h5",
        spectra=arrays["spectra"],
        spectrum_errors=arrays["spectrum_errors"],
        spectrum_table=arrays["spectrum_table"],
    )
    with HiSSCube(path) as cube:
        assert not cube.has_images() and cube.n_objects == 4
    data = load_hisscube(path, modalities=("spectrum",), flag=None)
    assert data.X["spectrum"].shape == (4, 4620)
    with pytest.raises(ValueError, match="no image cutouts"):
        load_hisscube(path)
    with pytest.raises(ValueError, match="both images and image_errors"):
        write_hisscube(tmp_path / "t.h5", images=arrays["images"], **{
            k: arrays[k] for k in ("spectra", "spectrum_errors", "spectrum_table")
        })  # fmt: skip


def test_bad_input_is_reported_not_fatal(tmp_path):
    (tmp_path / "in").mkdir()
    good = tmp_path / "in" / "spec-4500-55543-0331.fits"
    shutil.copy(SPECTRA / good.name, good)
    broken = tmp_path / "in" / "spec-0000-00000-0000.fits"
    broken.write_text("not a FITS file")
    before = file_state(good)
    result = ingest_sdss_fits(tmp_path / "c.h5", tmp_path / "in")
    assert file_state(good) == before
    status = result.table.set_index(result.table["file"].map(lambda f: Path(f).name))
    assert status.loc[broken.name, "status"] == "skipped"
    assert "unreadable spectrum" in status.loc[broken.name, "reason"]
    assert status.loc[good.name, "status"] == "kept"
    with pytest.raises(FileExistsError, match="c.h5 exists"):
        ingest_sdss_fits(tmp_path / "c.h5", tmp_path / "in")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ingest_sdss_fits(tmp_path / "d.h5", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        ingest_sdss_fits(tmp_path / "d.h5", tmp_path / "in" / "spec-9*.fits")
    with pytest.raises(ValueError, match="edge must be one of"):
        ingest_sdss_fits(tmp_path / "d.h5", good, edge="crop")
    with pytest.raises(ValueError, match="pass both mpa_info"):
        ingest_sdss_fits(tmp_path / "d.h5", good, mpa_info=good)
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5", "c_ingest.csv", "in"]


def test_cli_ingest_then_info(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["ingest", str(out), "--spectra", str(SPECTRA / "spec-04*.fits")]) == 0
    printed = capsys.readouterr().out
    assert "8 spectra: 8 kept as 2 objects, 0 skipped" in printed
    assert main(["info", str(out)]) == 0
    assert "images: none (spectrum-only cube)" in capsys.readouterr().out
    code = main(["ingest", str(tmp_path / "u.h5"), "--spectra", str(SPECTRA),
                 "--frames", str(U_FRAME), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: no object could be kept")
    assert len(err.strip().splitlines()) == 1


def test_an_unreadable_frame_is_named_and_the_failed_report_replaced(tmp_path):
    not_a_frame = tmp_path / "notes.txt"
    not_a_frame.write_text("observing notes")
    out = tmp_path / "c.h5"
    for _ in range(2):  # the second try replaces the first one's report, no overwrite needed
        with pytest.raises(ValueError) as info:
            ingest_sdss_fits(out, SPECTRA, frames=[not_a_frame], verbose=False)
        first_line = str(info.value).splitlines()[0]
        assert "1 frame file(s) could not be read" in first_line
        assert "notes.txt: unreadable frame header" in first_line
    assert not out.exists() and out.with_name("c_ingest.csv").exists()
    assert not_a_frame.read_text() == "observing notes"
    # A report of ours beside a cube that exists still needs overwrite.
    ingest_sdss_fits(out, SPECTRA, verbose=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        ingest_sdss_fits(out, SPECTRA, verbose=False)
