"""Five-band frames from a folder (issue #22): found, grouped by field, cut, edges handled.

The frames are made from the real u frame in ../shared/data/sdss (its header and WCS, its
calibration vector and sky), cropped to its first 400 rows and 600 columns (the WCS is
unchanged: the crop keeps pixel (0, 0)) to keep the test light, each band with its own pixel
values so that a cutout shows which band and which field it came from; some are
bz2-compressed, as the SDSS archive serves them, some not. Three copies of a real spectrum are
placed inside the frame, 8 px from its right edge, and off it.
"""

import bz2
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import HiSSCube, ingest_sdss_fits, load_hisscube
from sklearn_sfr.datasets._sdss_frames import read_frame_info

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "sdss"
U_FRAME = DATA / "frames" / "frame-u-004948-3-0199.fits.bz2"
SPECTRUM = DATA / "spectra" / "spec-4500-55543-0331.fits"
if not U_FRAME.is_file():
    pytest.skip(f"the real SDSS frame is not at {U_FRAME}", allow_module_level=True)

BANDS = "ugriz"
#: Bands written bz2-compressed (the others plain FITS): the folder mixes both.
COMPRESSED = "urz"
#: The frames' size: a corner of the real 1489 x 2048 frame.
NY, NX = 400, 600
#: Pixel positions (x, y; 0-based) of the three objects on field 199: inside, 8 px from the
#: right edge, off the frame.
INSIDE, EDGE, OUTSIDE = (300.3, 200.2), (NX - 8.0, 250.3), (-500.0, 200.0)
FIBERS = {"inside": 900, "edge": 901, "outside": 902}
#: Field 200 is field 199 moved 200 px to the left on the sky grid (CRPIX1 - 200).
SHIFT = 200


def _band_data(frame, band, field):
    """Pixel values that say which band and field they are: the real u pixels plus an offset."""
    return (frame + 10.0 * (BANDS.index(band) + 1) + 100.0 * (field - 199)).astype(np.float32)


def _write(path, hdus):
    if path.suffix == ".bz2":
        buffer = io.BytesIO()
        fits.HDUList(hdus).writeto(buffer)
        path.write_bytes(bz2.compress(buffer.getvalue(), compresslevel=1))
    else:
        fits.HDUList(hdus).writeto(path)


def _write_frame(folder, template, band, field):
    header = template[0].header.copy()
    header["FILTER"] = band
    if field != 199:
        header["CRPIX1"] = header["CRPIX1"] - SHIFT * (field - 199)
    data = _band_data(template[0].data, band, field)
    suffix = ".fits.bz2" if band in COMPRESSED else ".fits"
    path = folder / f"frame-{band}-004948-3-{field:04d}{suffix}"
    _write(path, [fits.PrimaryHDU(data, header), *template[1:]])
    return path


@pytest.fixture(scope="module")
def template():
    """The real u frame's HDUs, cropped to NY x NX (calibration vector and sky positions too)."""
    with fits.open(U_FRAME) as hdul:
        image = fits.PrimaryHDU(hdul[0].data[:NY, :NX].copy(), hdul[0].header.copy())
        calib = fits.ImageHDU(hdul[1].data[:NX].copy(), hdul[1].header.copy())
        sky = hdul[2].data
        columns = [
            fits.Column("ALLSKY", "49152E", dim="(256,192)", array=sky["ALLSKY"].copy()),
            fits.Column("XINTERP", f"{NX}E", array=sky["XINTERP"][:, :NX].copy()),
            fits.Column("YINTERP", f"{NY}E", array=sky["YINTERP"][:, :NY].copy()),
        ]
        astrometry = hdul[3].copy()
    return [image, calib, fits.BinTableHDU.from_columns(columns), astrometry]


@pytest.fixture(scope="module")
def frames(tmp_path_factory, template):
    """Field 199 in all five bands and field 200 in all five bands, in two folders."""
    root = tmp_path_factory.mktemp("frames")
    paths = {}
    for field in (199, 200):
        folder = root / f"field{field}"
        folder.mkdir()
        # Written in an order that is not u, g, r, i, z.
        for band in "zigur":
            paths[band, field] = _write_frame(folder, template, band, field)
    return root, paths


@pytest.fixture(scope="module")
def spectra(tmp_path_factory, frames):
    """Three copies of a real BOSS spectrum at the three positions on field 199."""
    _, paths = frames
    wcs = read_frame_info(paths["u", 199]).wcs
    folder = tmp_path_factory.mktemp("spectra")
    with fits.open(SPECTRUM) as hdul:
        for name, (x, y) in zip(FIBERS, (INSIDE, EDGE, OUTSIDE)):
            ra, dec = wcs.pixel_to_world_values(x, y)
            hdul[0].header["PLUG_RA"] = float(ra)
            hdul[0].header["PLUG_DEC"] = float(dec)
            hdul[0].header["FIBERID"] = FIBERS[name]
            hdul.writeto(folder / f"spec-4500-55543-{FIBERS[name]:04d}.fits")
    return folder


def _window(band, field, position, template):
    """The 64 x 64 frame pixels a cutout at ``position`` (on field 199) must hold.

    Cutout2D's even-size rule: the first pixel is ``ceil(position - 32)``; pixels off the
    frame are NaN.
    """
    x, y = position
    x -= SHIFT * (field - 199)
    data = _band_data(template[0].data, band, field).astype(np.float64)
    x0, y0 = math.ceil(x - 32), math.ceil(y - 32)
    out = np.full((64, 64), np.nan)
    rows = slice(max(y0, 0), min(y0 + 64, data.shape[0]))
    cols = slice(max(x0, 0), min(x0 + 64, data.shape[1]))
    out[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0] = data[rows, cols]
    return out


def _rows(table):
    by_fiber = table.set_index("FIBERID")
    return {name: by_fiber.loc[fiber] for name, fiber in FIBERS.items()}


def _check_cutouts(cube, rows, expected, template):
    """``expected``: object name -> the field of each band (u, g, r, i, z)."""
    data = load_hisscube(cube, flag=None, with_errors=True)
    with HiSSCube(cube) as opened:
        assert list(opened.band_names) == list(BANDS)
    for name, fields in expected.items():
        row = int(rows[name]["cube_row"])
        for b, band in enumerate(BANDS):
            np.testing.assert_allclose(
                data.X["image"][row, b],
                _window(band, fields[b], (INSIDE, EDGE)[name == "edge"], template),
                rtol=1e-6,
                equal_nan=True,
                err_msg=f"{name} object, band {band}",
            )
        on_frame = np.isfinite(data.X["image"][row])
        assert (data.X["image_error"][row][on_frame] > 0).all()
    return data


def test_a_folder_of_five_bands_is_cut_in_band_order(frames, spectra, template, tmp_path, capsys):
    root, _ = frames
    out = tmp_path / "cube.h5"
    argv = ["ingest", str(out), "--spectra", str(spectra), "--frames", str(root / "field199")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    # Progress over the frame headers and over the frames opened.
    assert "frame headers" in err and "frames" in err
    table = pd.read_csv(tmp_path / "cube_ingest.csv")
    rows = _rows(table)
    assert rows["inside"]["status"] == "kept" and not rows["inside"]["edge_padded"]
    assert rows["outside"]["status"] == "skipped"
    assert rows["outside"]["reason"] == "no frame covers it in band(s) u, g, r, i, z"
    # The edge object: columns NX-40 .. NX+23, 24 of its 64 columns off the frame.
    edge = rows["edge"]
    assert edge["status"] == "kept" and edge["edge_padded"]
    assert edge["padded_fraction"] == pytest.approx(24 / 64)
    data = _check_cutouts(out, rows, {"inside": [199] * 5, "edge": [199] * 5}, template)
    image = data.X["image"][int(edge["cube_row"])]
    assert np.isfinite(image[:, :, :40]).all() and np.isnan(image[:, :, 40:]).all()
    assert bool(data.frame.loc[int(edge["cube_row"]), "edge_padded"])
    with HiSSCube(out) as opened:  # every zoom is derived from the cut
        assert opened.read_images(zoom=3).shape == (2, 5, 8, 8)


def test_edge_skip_skips_the_object_on_the_edge(frames, spectra, tmp_path):
    root, _ = frames
    result = ingest_sdss_fits(tmp_path / "c.h5", spectra, frames=root / "field199", edge="skip")
    rows = _rows(result.table)
    assert rows["inside"]["status"] == "kept"
    assert rows["edge"]["status"] == "skipped"
    assert "runs off the edge" in rows["edge"]["reason"]
    assert f"({40 / 64:.0%} on the frame" in rows["edge"]["reason"]


def test_an_object_is_cut_from_the_field_that_holds_it_whole(frames, spectra, template, tmp_path):
    # Field 200 holds the edge object whole (200 px further from its right edge): all its
    # five cutouts come from field 200, unpadded. The inside object is whole on both: the
    # first field found (199) gives all five bands.
    root, _ = frames
    result = ingest_sdss_fits(tmp_path / "c.h5", spectra, frames=root)
    rows = _rows(result.table)
    assert rows["edge"]["status"] == "kept" and not rows["edge"]["edge_padded"]
    assert rows["edge"]["padded_fraction"] == 0
    _check_cutouts(result.path, rows, {"inside": [199] * 5, "edge": [200] * 5}, template)


def test_a_band_missing_from_a_field_comes_from_another(frames, spectra, template, tmp_path):
    # Field 199 without g, field 200 with g only: the inside object takes g from field 200
    # and the other bands from field 199; the edge object, padded on field 199, takes g
    # whole from field 200 and stays padded in the other bands.
    _, paths = frames
    given = [paths[b, 199] for b in "urzi"] + [paths["g", 200]]
    result = ingest_sdss_fits(tmp_path / "c.h5", spectra, frames=given)
    rows = _rows(result.table)
    assert rows["edge"]["edge_padded"]
    assert rows["edge"]["padded_fraction"] == pytest.approx(24 / 64)
    mixed = [199, 200, 199, 199, 199]
    _check_cutouts(result.path, rows, {"inside": mixed, "edge": mixed}, template)


def test_a_frame_whose_name_and_header_disagree_is_reported(frames, template, tmp_path):
    # A g frame saved under a u name: the name is not trusted over the header.
    _, paths = frames
    wrong = tmp_path / "frame-u-004948-3-0199.fits"
    wrong.write_bytes(paths["g", 199].read_bytes())
    with pytest.raises(ValueError, match=r"the name says band u but FILTER is 'g'"):
        read_frame_info(wrong)
