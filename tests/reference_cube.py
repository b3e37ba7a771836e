"""A small HiSS-Cube file built by hand in the exact layout the reference implementation writes.

The reference (github.com/nadvornikjiri/HiSS-Cube, commit c8b796a, ``METADATA_STRATEGY =
DATASET``, 4 zooms) cannot run here (MPI, healpy, fitsio, real FITS files), so this module
replays what its builders do, step by step, on synthetic frames and spectra:
``metadata_strategy_{image,spectrum,dataset}.py`` for the semi-sparse cube,
``metadata_strategy_cube_ml.py`` for the dense cube, ``utils/nexus.py`` for the attributes and
``processors/sfr.py`` for the two pandas label tables. Section numbers refer to
``shared/docs/hisscube-layout.md``.

What the file contains (``write_reference_cube``):

* 2 SDSS-like fields x 5 bands = 10 frames of 160 x 200 pixels at zoom 0 (the reference takes
  the frame shape from its config), stored in file-system order, not in ``db_index`` order.
  Every band frame has its own astrometric offset (CRPIX), the two fields overlap, and their
  TAIs round in float32 so that their ``db_index`` order is ``r | u g i z`` (field 1) and
  ``u r i | g z`` (field 2) (section 5.3).
* 7 spectra (section 3: row ``i`` of ``fits_spectra_metadata`` is spectrum ``i``) of 4 targets
  (HEALPix order-15 pixels of PLUG_RA/PLUG_DEC):

  ======  =========  =====================================================================
  target  spectra    what it exercises
  ======  =========  =====================================================================
  A       3 (MJD)    repeat observations; label FLAGs 2, 0, 0 in time order; field 1 only
  B       1          in the overlap of both fields: two frames per band at zooms 1-3, but
                     at zoom 0 its field-1 r window is not whole, so the band order differs
                     between zoom 0 and zooms 1-3; the reference's dense flux is distorted
                     (``sum(1/f) / sum(1/f**2)``, section 9 bug 1)
  C       2          one unmatched BOSS spectrum (no TAI: time = MJD, so it sorts first
                     although it was observed last, section 4.4) and one with TAI whose MPA
                     row has the -99 sentinels and FLAG 1; field 2 only
  D       1          its window falls off field 2 in every band and zoom: not a dense row
  ======  =========  =====================================================================

* the dense cube of A, B, C in ascending pixel order (datasets created for the 4 candidates
  and resized to 3 rows, so maxshape is 4), image errors that are really ``|flux|``, spectra
  stacked in ``db_index`` order, the hard-linked ``wl``;
* the label tables ``star_formation_rates`` and ``fits_spectra_metadata_star_formation_rates``
  written by pandas after h5py closed the file;
* a leftover TREE-strategy subtree ``/semi_sparse_cube/5/22/...`` (section 2).

Pixel ids are real HEALPix NESTED ids, computed with astropy-healpix by ``healpix_nest`` below;
a test checks it reproduces the order 0..15 path of the published dump.

Deliberate differences from a real reference build, none visible to a reader: no 4 MiB data
alignment, and the two header tables have an unlimited maxshape instead of (1500000,) and
(5000000,): with early allocation, HDF5 reserves every chunk up to a fixed maxshape, which made
this tiny file 48 GB long (sparse, but every byte-wise comparison would read it all). The real
reference files show the same effect (offsets of 9.8e10 B in the published dump).
"""

from __future__ import annotations

import json
import os
import warnings
from bisect import bisect_left, bisect_right

import h5py
import numpy as np
import pandas as pd
from astropy.wcs import WCS

from sklearn_sfr.datasets._layout import (
    BAND_MIDPOINTS,
    BAND_NAMES,
    CUTOUT_SIZES,
    GAL_INFO_COLUMNS,
    IMAGE_UNIT_PER_NMGY,
    MERGED_LABEL_KEY,
    REF_SLOTS,
    SFR_COLUMNS,
    SFR_TABLE_KEY,
    ZOOMS,
    derive_image_level,
    derive_spectrum_level,
    float_compress,
    inverse_variance_stack,
    n_wavelength,
    wavelength_grid,
)

#: Frame shape at zoom 0, (rows, columns) = (NAXIS2, NAXIS1); the reference's is (1489, 2048).
FRAME_SHAPE = (160, 200)
#: HEALPix orders of the spectral and image indexes (SPEC/IMG_SPAT_INDEX_ORDER - 1).
SPEC_ORDER = 15
IMG_ORDER = 10
#: IMG_DIAMETER_ANG_MIN, used by the reference as the candidate search radius.
CANDIDATE_RADIUS_ARCMIN = 8.0
#: Object names of the dense rows (A, B, C) and the dropped candidate (D).
TARGET_NAMES = ("A", "B", "C", "D")
OMIT_CHOICES = (None, "errors", "frames")

SCALE = 0.396 / 3600.0  # deg per pixel
_ROT = 0.004  # rad: frames are rotated by about 90 degrees, as SDSS frames are
CD = SCALE * np.array([[-np.sin(_ROT), np.cos(_ROT)], [np.cos(_ROT), np.sin(_ROT)]])
CRPIX0 = np.array([100.5, 80.5])  # 1-based frame centre
FIELD1_CRVAL = (150.1, 2.2)
#: Field 2 is shifted by this many field-1 pixels (its pixel = field-1 pixel - shift).
FIELD2_SHIFT = np.array([100.0, 6.0])
#: Per-band CRPIX offsets [px]: a sky point at base pixel p lies at p + offset in that frame.
BAND_OFFSETS = (
    {"u": (0, 0), "g": (1, -1), "r": (7, 2), "i": (-1, 1), "z": (2, 0)},
    {"u": (0, 0), "g": (-3, 1), "r": (2, -2), "i": (4, 0), "z": (-1, 3)},
)
#: Observation order of the five frames of an SDSS field and their spacing [s].
DRIFT_ORDER = ("r", "i", "u", "z", "g")
DRIFT_STEP = 71.64
#: First TAI of each field [s]: k * 512 + 226 (r rounds down in float32, the others up) and
#: m * 512 + 106 (r, i, u round down, z, g up). float32 has a 512 s resolution here.
FIELD_TAI0 = (8928469 * 512 + 226.0, 8928519 * 512 + 106.0)
FIELD_IDS = ((4136, 3, 129), (4263, 3, 130))
#: Target positions in field-1 base pixels (0-based x, y).
TARGET_PIXELS = {"A": (60.3, 70.6), "B": (162.6, 80.4), "C": (240.2, 60.7), "D": (296.0, 75.2)}
#: Data order of the frames (file-system order): (field, band).
FRAME_FILE_ORDER = (
    (1, "g"), (0, "z"), (0, "r"), (1, "u"), (0, "i"),
    (1, "z"), (0, "u"), (1, "r"), (0, "g"), (1, "i"),
)  # fmt: skip

#: Spectra in data order: name, target, PLATEID, MJD, FIBERID, TAI or None, plate centre.
SPECTRA = (
    ("C_boss", "C", 4500, 55543, 331, None, (150.3, 2.0)),
    ("A_t2", "A", 300, 52300, 12, None, (151.0, 2.5)),
    ("D", "D", 302, 51700, 300, 51700 * 86400.0 + 18250.3, (149.6, 1.8)),
    ("B", "B", 301, 51900, 77, None, (150.8, 1.5)),
    ("A_t0", "A", 300, 51600, 12, None, (151.0, 2.5)),
    ("C_legacy", "C", 302, 51700, 5, 51700 * 86400.0 + 17500.7, (149.6, 1.8)),
    ("A_t1", "A", 301, 51900, 40, None, (150.8, 1.5)),
)
#: MPA-JHU rows by spectrum name: AVG, P16, P84, FLAG (None: the -99 sentinel, FLAG 1).
#: C_boss has no MPA row (BOSS plates never match DR7).
MPA_SFR = {
    "A_t0": (-1.20, -1.80, -0.60, 2.0),
    "A_t1": (0.50, 0.25, 0.75, 0.0),
    "A_t2": (0.80, 0.40, 1.20, 0.0),
    "B": (-0.30, -0.70, 0.10, 0.0),
    "C_legacy": None,
    "D": (1.10, 0.90, 1.30, 0.0),
}
#: Catalogue order of the MPA rows (two extra catalogue objects, ``x1``, ``x2``, match nothing).
MPA_ORDER = ("x1", "A_t1", "B", "A_t0", "C_legacy", "D", "A_t2", "x2")

_F4 = np.dtype("<f4")


# --------------------------------------------------------------------------------------------
# HEALPix and WCS
# --------------------------------------------------------------------------------------------
def healpix_nest(order, ra, dec):
    """HEALPix NESTED pixel of (ra, dec) in degrees, as the reference's ``healpy`` call gives it.

    Checked against the order 0..15 path of the published reference dump
    (``/semi_sparse_cube/5/22/90/.../6084054576`` for PLUG_RA, PLUG_DEC = 46.560472, -0.34435898).
    """
    from astropy import units as u
    from astropy_healpix import HEALPix

    pix = HEALPix(nside=2**order, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg)
    return int(pix)


def _wcs(crpix, cd, crval, ctype=("RA---TAN", "DEC--TAN")):
    w = WCS(naxis=2)
    w.wcs.crpix = [float(crpix[0]), float(crpix[1])]
    w.wcs.cd = np.asarray(cd, dtype=np.float64)
    w.wcs.crval = [float(crval[0]), float(crval[1])]
    w.wcs.ctype = list(ctype)
    return w


def _wcs_from_row(row):
    # hisscube/utils/astrometry.py::get_optimized_wcs on a (float32) ``wcs`` row.
    return _wcs(
        (row["CRPIX1"], row["CRPIX2"]),
        [[row["CD1_1"], row["CD1_2"]], [row["CD2_1"], row["CD2_2"]]],
        (row["CRVAL1"], row["CRVAL2"]),
        (row["CTYPE1"].decode(), row["CTYPE2"].decode()),
    )


def _sky_separation_deg(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def _window(wcs_row, ra, dec, zoom):
    """Cutout window at ``zoom`` (``process_cutout_bounds`` + ``is_cutout_whole``), or None."""
    px, py = _wcs_from_row(wcs_row).wcs_world2pix([[ra, dec]], 0)[0]
    width, height = int(wcs_row["NAXIS1"]), int(wcs_row["NAXIS2"])
    if not (0 <= px <= width and 0 <= py <= height):
        return None  # NoCoverageFoundError
    size = int(64 / 2**zoom)
    x0, y0 = int(int(px) - size / 2), int(int(py) - size / 2)
    if not (0 <= x0 <= x0 + size <= width and 0 <= y0 <= y0 + size <= height):
        return None  # "Cutout not whole."
    return y0, y0 + size, x0, x0 + size  # REF order: x_min, x_max (rows), y_min, y_max (cols)


# --------------------------------------------------------------------------------------------
# HDF5 helpers reproducing hisscube/utils/io.py::create_dataset and the compound types
# --------------------------------------------------------------------------------------------
def _utf8(n):
    return h5py.string_dtype(encoding="utf-8", length=n)


REF_H5 = np.dtype(
    [("ds_path", _utf8(64)), ("ds_slice_idx", "<i8"), ("x_min", "<i4"), ("x_max", "<i4"),
     ("y_min", "<i4"), ("y_max", "<i4")]
)  # fmt: skip
IMG_META_H5 = np.dtype([("path", _utf8(256)), ("header", _utf8(4096))])
SPEC_META_H5 = np.dtype([("path", _utf8(256)), ("header", _utf8(8192))])
WCS_H5 = np.dtype(
    [("NAXIS1", "<i2"), ("NAXIS2", "<i2")]
    + [(k, "<f4") for k in ("CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")]
    + [("CRVAL1", "<f4"), ("CRVAL2", "<f4"), ("CTYPE1", _utf8(8)), ("CTYPE2", _utf8(8))]
)
IMG_INDEX = np.dtype([("spatial", "<i8"), ("time", "<f4"), ("wl", "<i4"), ("ds_slice_idx", "<i8")])
SPEC_INDEX = np.dtype([("spatial", "<i8"), ("time", "<f4"), ("ds_slice_idx", "<i8")])


def _create(group, name, shape, dtype=_F4, chunks=None, maxshape=None, data=None):
    """``H5Connector.create_dataset``: early allocation, fill never, no filters."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    if chunks is not None and all(shape):
        dcpl.set_chunk(tuple(chunks))
    maxshape = tuple(h5py.h5s.UNLIMITED if m is None else m for m in (maxshape or shape))
    space = h5py.h5s.create_simple(tuple(shape), maxshape)
    tid = h5py.h5t.py_create(np.dtype(dtype), logical=True)
    ds = h5py.Dataset(h5py.h5d.create(group.id, name.encode(), tid, space, dcpl=dcpl))
    if data is not None and ds.size:
        ds[...] = data
    return ds


def _json(header):
    # ujson.dumps as the reference calls it: compact, forward slashes escaped.
    return json.dumps(header, separators=(",", ":")).replace("/", "\\/")


def _to_bytes(df):
    """``processors/sfr.py::convert_str_cols`` (object and pandas str columns -> bytes)."""
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col].dtype):
            df[col] = df[col].astype("|S")
    return df


def _ref(path, row, window=None):
    if window is None:
        return (path.encode(), row, 0, 0, 0, 0)
    return (path.encode(), row, *window)


# --------------------------------------------------------------------------------------------
# Synthetic content
# --------------------------------------------------------------------------------------------
def _design():
    """Frames (WCS, headers, TAI) and targets (positions) of the fixture."""
    base1 = _wcs(CRPIX0, CD, FIELD1_CRVAL)
    centre2 = CRPIX0 - 1 + FIELD2_SHIFT
    crval2 = tuple(base1.wcs_pix2world([centre2], 0)[0])
    crvals = (FIELD1_CRVAL, crval2)
    targets = {}
    for name, pix in TARGET_PIXELS.items():
        ra, dec = base1.wcs_pix2world([pix], 0)[0]
        targets[name] = (float(ra), float(dec))
    frames = []
    for field, band in FRAME_FILE_ORDER:
        run, camcol, fld = FIELD_IDS[field]
        crpix = CRPIX0 + np.array(BAND_OFFSETS[field][band], dtype=float)
        tai = FIELD_TAI0[field] + DRIFT_STEP * DRIFT_ORDER.index(band)
        name = f"frame-{band}-{run:06d}-{camcol}-{fld:04d}.fits"
        header = {
            "SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": FRAME_SHAPE[1],
            "NAXIS2": FRAME_SHAPE[0], "EXTEND": True, "BZERO": 0, "BSCALE": 1,
            "TAI": tai, "DATE-OBS": "2003-10-01", "TAIHMS": "05:12:41.71", "RUN": run,
            "CAMCOL": camcol, "FIELD": fld, "RERUN": "301", "FILTER": band, "CAMROW": 3,
            "EXPTIME": 53.907456, "NMGY": 0.00917, "NMGYIVAR": 1.2e4, "BUNIT": "nanomaggy",
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": float(crpix[0]),
            "CRPIX2": float(crpix[1]), "CRVAL1": float(crvals[field][0]),
            "CRVAL2": float(crvals[field][1]), "CUNIT1": "deg", "CUNIT2": "deg",
            "CD1_1": float(CD[0, 0]), "CD1_2": float(CD[0, 1]), "CD2_1": float(CD[1, 0]),
            "CD2_2": float(CD[1, 1]), "RADESYS": "ICRS",
            "COMMENT": "Calibrated frame, synthetic (sklearn-sfr reference fixture)",
            "HISTORY": "sklearn-sfr tests/reference_cube.py",
        }  # fmt: skip
        frames.append(
            {"field": field, "band": band, "file": name, "path": f"data/raw/images/{name}",
             "header": header, "tai": tai}
        )  # fmt: skip
    return frames, targets


def _frame_pixels(frames, targets, seed):
    """Flux and errors of every frame at zoom 0, in cube units (float64)."""
    rng = np.random.default_rng([seed, 1])
    amplitude = {"A": (0.4, 1.6, 3.0, 4.2, 5.0), "B": (0.2, 0.7, 1.5, 2.1, 2.6),
                 "C": (0.9, 2.2, 2.7, 3.0, 3.3), "D": (0.3, 0.8, 1.2, 1.4, 1.5)}  # fmt: skip
    sky = {"u": 0.09, "g": 0.03, "r": 0.04, "i": 0.06, "z": 0.18}  # nMgy per pixel
    yy, xx = np.mgrid[0 : FRAME_SHAPE[0], 0 : FRAME_SHAPE[1]]
    stars = rng.uniform((-100, -20), (300, 180), size=(12, 2))  # field-1 base pixels
    base1 = _wcs(CRPIX0, CD, FIELD1_CRVAL)
    flux = np.empty((len(frames), *FRAME_SHAPE))
    sigma = np.empty_like(flux)
    for k, fr in enumerate(frames):
        h = fr["header"]
        w = _wcs((h["CRPIX1"], h["CRPIX2"]), CD, (h["CRVAL1"], h["CRVAL2"]))
        b = BAND_NAMES.index(fr["band"])
        img = np.zeros(FRAME_SHAPE)
        sources = [(targets[n], amplitude[n][b], 2.2) for n in TARGET_NAMES]
        sources += [(tuple(base1.wcs_pix2world([s], 0)[0]), 1.5 + b, 1.3) for s in stars]
        for (ra, dec), amp, width in sources:
            px, py = w.wcs_world2pix([[ra, dec]], 0)[0]
            img += amp * np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * width**2))
        err = np.sqrt(sky[fr["band"]] ** 2 + 0.02 * np.clip(img, 0, None))
        noisy = img + err * rng.standard_normal(FRAME_SHAPE)
        unit = IMAGE_UNIT_PER_NMGY[fr["band"]]
        flux[k], sigma[k] = noisy * unit, err * unit
    return flux, sigma


def _spectra_pixels(seed):
    """Level-0 flux and 1-sigma errors of the 7 spectra (float64, erg/s/cm2/A)."""
    rng = np.random.default_rng(seed)
    grid = wavelength_grid(0)
    z = {"A": 0.031, "B": 0.074, "C": 0.052, "D": 0.11}
    flux = np.empty((len(SPECTRA), grid.size))
    sigma = np.empty_like(flux)
    for i, (name, target, *_rest) in enumerate(SPECTRA):
        zt = z[target]
        cont = 2.0 + 0.5 * (grid / 5000.0) ** -1.5 + 0.8 * (grid > 4000 * (1 + zt))
        lines = sum(
            a * np.exp(-0.5 * ((grid - lam * (1 + zt)) / 3.0) ** 2)
            for lam, a in ((3727.1, 6.0), (4862.7, 3.0), (5008.2, 4.0), (6564.6, 12.0))
        )
        err = 0.25 + 0.1 * rng.random(grid.size)
        flux[i] = (cont + lines + err * rng.standard_normal(grid.size)) * 1e-17
        sigma[i] = err * 1e-17
        masked = rng.choice(grid.size, size=6, replace=False)
        sigma[i, masked] = np.nan  # ivar = 0: error NaN, flux kept
        if target == "A":
            sigma[i, 2000:2003] = np.nan  # masked in every spectrum of A: stack is NaN / 0
        if name == "A_t1":
            flux[i, :12] = sigma[i, :12] = np.nan  # outside this spectrum's coverage
    return flux, sigma


def _spectrum_header(spec):
    _name, _target, plate, mjd, fiber, tai, (pra, pdec) = spec
    header = {
        "SIMPLE": True, "BITPIX": 8, "NAXIS": 0, "EXTEND": True, "TELESCOP": "SDSS 2.5-M",
        "PLATEID": plate, "MJD": mjd, "FIBERID": fiber, "RA": pra, "DEC": pdec,
        "RADEG": pra, "DECDEG": pdec, "PLUG_RA": None, "PLUG_DEC": None,
        "SPEC_ID": f"{plate:04d}{mjd:05d}{fiber:04d}", "EXPTIME": 2701.0, "NEXP": 3,
        "BUNIT": "1E-17 erg/cm^2/s/Ang", "VACUUM": True,
    }  # fmt: skip
    if tai is not None:
        header["TAI"] = tai
    return header


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------
def write_reference_cube(path, *, seed=0, omit_frames=None):
    """Write a small HiSS-Cube file exactly as the reference would, and return its truth.

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    seed : int, default=0
        Seed of the noise and of the field stars; the layout (positions, band orders, which
        target is dropped) does not depend on it.
    omit_frames : {None, "errors", "frames"}, default=None
        Trim the semi-sparse frames after the build, as a distributor might: ``"errors"``
        deletes ``/semi_sparse_cube/{z}/images/errors``, ``"frames"`` deletes ``images/data``
        and ``images/errors``. The references and the dense cube are kept, so the true image
        errors can no longer be recovered (section 11: NaN with a warning).

    Returns
    -------
    dict
        Ground truth. Per-zoom entries are dicts ``{zoom: array}``; arrays over dense rows are
        in file row order (ascending HEALPix pixel). The main keys:

        - ``n_objects``, ``n_candidates``, ``dense_names`` (target of each row), ``dropped``,
          ``dense_pixels``, ``target_spectra`` (name -> spectrum rows in db_index order),
          ``n_spectra``, ``spectrum_names``/``spectrum_keys`` (per data row), ``target_radec``;
        - ``band_order`` (stored slot order per row), ``frames_per_band`` (ugriz);
        - ``images``: ugriz cutouts, the inverse-variance stack of the frames' windows with
          their true errors (equal to the stored flux where a band has one frame);
          ``image_errors``: the true errors so stacked; ``images_stored`` and
          ``image_errors_stored``: what the reference wrote, reordered to ugriz (flux distorted
          where a band has several frames, errors ``|flux|``);
        - ``spectra``, ``spectrum_errors``: the dense stacks as stored (flux NaN with error 0
          where every input is masked); ``semi_sparse_spectra``/``_errors`` (compressed),
          ``uncompressed_spectra``; ``wavelength`` (recomputed grid), ``wl_stored``;
        - ``labels``: ``{"ivar": DataFrame, "first": DataFrame}`` with AVG, P16, P84, FLAG,
          n_spectra and the first spectrum's PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC;
          ``merged_table``, ``sfr_table``: the two pandas tables as written.
    """
    if omit_frames not in OMIT_CHOICES:
        raise ValueError(f"omit_frames must be one of {OMIT_CHOICES}, got {omit_frames!r}")
    path = os.fspath(path)
    if os.path.exists(path):
        os.remove(path)
    frames, targets = _design()
    n_img, n_spec = len(frames), len(SPECTRA)
    spec_names = [s[0] for s in SPECTRA]
    spec_target = [s[1] for s in SPECTRA]

    # ---- spectra: positions, headers, levels ---------------------------------------------
    spec_headers = []
    for spec in SPECTRA:
        header = _spectrum_header(spec)
        header["PLUG_RA"], header["PLUG_DEC"] = targets[spec[1]]
        spec_headers.append(header)
    for name, (ra, dec) in targets.items():
        for fr in frames:
            sep = _sky_separation_deg(ra, dec, fr["header"]["CRVAL1"], fr["header"]["CRVAL2"])
            # Every frame centre is well inside the 8' query disc: all frames are candidates.
            assert sep * 60 < CANDIDATE_RADIUS_ARCMIN - 5.0, (name, sep)
    flux0, sigma0 = _spectra_pixels(seed)
    spec_raw = {0: (flux0, sigma0)}
    grid = wavelength_grid(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's NaN-interpolation notices
        for z in ZOOMS[1:]:
            f, s, grid = derive_spectrum_level(*spec_raw[z - 1], grid)
            spec_raw[z] = (f, s)
    spec_data = {z: float_compress(spec_raw[z][0]) for z in ZOOMS}
    spec_err = {z: float_compress(spec_raw[z][1]) for z in ZOOMS}
    spec_time = np.array(
        [h["TAI"] if "TAI" in h else h["MJD"] for h in spec_headers], dtype=np.float32
    )
    spec_pix = np.array(
        [healpix_nest(SPEC_ORDER, h["PLUG_RA"], h["PLUG_DEC"]) for h in spec_headers]
    )
    spec_index = np.zeros(n_spec, SPEC_INDEX)
    spec_index["spatial"], spec_index["time"] = spec_pix, spec_time
    spec_index["ds_slice_idx"] = np.arange(n_spec)
    spec_index = np.sort(spec_index, order=["spatial", "time"])
    assert not np.array_equal(spec_index["ds_slice_idx"], np.arange(n_spec))

    # ---- frames: levels, WCS rows, headers, index ----------------------------------------
    img_raw = {0: _frame_pixels(frames, targets, seed)}
    for z in ZOOMS[1:]:
        img_raw[z] = derive_image_level(*img_raw[z - 1])
    img_data = {z: float_compress(img_raw[z][0]) for z in ZOOMS}
    img_err = {z: float_compress(img_raw[z][1]) for z in ZOOMS}
    img_meta = {z: np.zeros(n_img, IMG_META_H5) for z in ZOOMS}
    img_wcs = {z: np.zeros(n_img, WCS_H5) for z in ZOOMS}
    for k, fr in enumerate(frames):
        orig = fr["header"]
        header = dict(orig)
        for z in ZOOMS:
            h_z, w_z = img_data[z].shape[1:]
            crpix = np.array([orig["CRPIX1"], orig["CRPIX2"]]) / 2**z
            cd = np.array([[orig["CD1_1"], orig["CD1_2"]], [orig["CD2_1"], orig["CD2_2"]]])
            cd = cd * 2**z
            if z > 0:  # get_image_lower_res_wcs, written into the (shared) header dict
                header["CRPIX1"], header["CRPIX2"] = crpix
                header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = cd.ravel()
                header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
            header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, w_z, h_z
            img_meta[z][k] = (fr["file"].encode(), _json(header).encode())
            img_wcs[z][k] = (
                w_z, h_z, *crpix, *cd.ravel(), orig["CRVAL1"], orig["CRVAL2"],
                b"RA---TAN", b"DEC--TAN",
            )  # fmt: skip
    img_index = np.zeros(n_img, IMG_INDEX)
    img_index["spatial"] = [
        healpix_nest(IMG_ORDER, fr["header"]["CRVAL1"], fr["header"]["CRVAL2"]) for fr in frames
    ]
    img_index["time"] = [fr["tai"] for fr in frames]
    img_index["wl"] = [BAND_MIDPOINTS[fr["band"]] for fr in frames]
    img_index["ds_slice_idx"] = np.arange(n_img)
    img_index = np.sort(img_index, order=["spatial", "time", "wl"])
    frame_db_order = [int(i) for i in img_index["ds_slice_idx"]]
    assert frame_db_order != list(range(n_img))

    # ---- linking: image_cutouts_{data,errors,metadata} per spectrum and zoom --------------
    cut_rows = {z: [[] for _ in range(n_spec)] for z in ZOOMS}  # (frame row, window)
    for i, h in enumerate(spec_headers):
        for k in frame_db_order:  # pixel order, then db_index order (all frames qualify)
            for z in ZOOMS:
                win = _window(img_wcs[z][k], h["PLUG_RA"], h["PLUG_DEC"], z)
                if win is not None:
                    cut_rows[z][i].append((k, win))
    cut_refs = {}
    for z in ZOOMS:
        arrs = [np.zeros((n_spec, REF_SLOTS), REF_H5) for _ in range(3)]
        for i in range(n_spec):
            for slot, (k, win) in enumerate(cut_rows[z][i][:REF_SLOTS]):
                arrs[0][i, slot] = _ref(f"/semi_sparse_cube/{z}/images/data", k, win)
                arrs[1][i, slot] = _ref(f"/semi_sparse_cube/{z}/images/errors", k, win)
                arrs[2][i, slot] = _ref(f"/semi_sparse_cube/{z}/images/metadata", k)
        cut_refs[z] = arrs

    # ---- dense cube (DatasetMLProcessorStrategy) -----------------------------------------
    spatial = spec_index["spatial"]
    candidates = np.unique(spatial)
    pix_of = {t: healpix_nest(SPEC_ORDER, *targets[t]) for t in TARGET_NAMES}
    name_of_pix = {p: t for t, p in pix_of.items()}
    assert len(candidates) == len(TARGET_NAMES)
    rows = []  # dense rows: dict per target
    for pix in candidates:
        lo, hi = bisect_left(spatial, pix), bisect_right(spatial, pix)
        spec_ids = [int(i) for i in spec_index["ds_slice_idx"][lo:hi]]
        first = spec_ids[0]
        per_zoom = {}
        for z in ZOOMS:
            slots = {}
            for k, win in cut_rows[z][first]:
                slots.setdefault(frames[k]["band"], []).append((k, win))
            per_zoom[z] = slots
        complete = [len(per_zoom[z]) == len(BAND_NAMES) for z in ZOOMS]
        # Bug 8 (stale per-zoom counters) needs a target complete at some zooms only.
        assert all(complete) or not any(complete), name_of_pix[pix]
        if all(complete):
            rows.append({"name": name_of_pix[pix], "pixel": int(pix), "spectra": spec_ids,
                         "slots": per_zoom})  # fmt: skip
    n_rows = len(rows)
    assert [r["name"] for r in rows] != [] and "D" not in [r["name"] for r in rows]

    dense = {}
    for z in ZOOMS:
        c = CUTOUT_SIZES[z]
        img = np.zeros((n_rows, 5, c, c), _F4)
        img_e = np.zeros_like(img)
        true_img = np.zeros((n_rows, 5, c, c))
        true_err = np.zeros_like(true_img)
        stored_ugriz = np.zeros_like(img)
        stored_e_ugriz = np.zeros_like(img)
        cref = np.zeros((n_rows, 5, REF_SLOTS), REF_H5)
        mref = np.zeros_like(cref)
        sref = np.zeros((n_rows, REF_SLOTS), REF_H5)
        spec = np.zeros((n_rows, n_wavelength(z)), _F4)
        spec_e = np.zeros_like(spec)
        orders, n_frames = [], np.zeros((n_rows, 5), int)
        for t, row in enumerate(rows):
            order = tuple(row["slots"][z])
            orders.append(order)
            for b, band in enumerate(order):
                items = row["slots"][z][band]
                f = np.stack([img_data[z][k, a:bb, cc:d] for k, (a, bb, cc, d) in items])
                s = np.stack([img_err[z][k, a:bb, cc:d] for k, (a, bb, cc, d) in items])
                with np.errstate(all="ignore"):
                    mean, sig = inverse_variance_stack(f, f)  # bug 1: sigma := flux
                    tmean, tsig = inverse_variance_stack(f, s)
                img[t, b], img_e[t, b] = mean, sig
                u = BAND_NAMES.index(band)
                true_img[t, u], true_err[t, u] = tmean, tsig
                stored_ugriz[t, u], stored_e_ugriz[t, u] = mean, sig
                n_frames[t, u] = len(items)
                for slot, (k, win) in enumerate(items):
                    cref[t, b, slot] = _ref(f"/semi_sparse_cube/{z}/images/data", k, win)
                    mref[t, b, slot] = _ref(f"/semi_sparse_cube/{z}/images/metadata", k)
            ids = row["spectra"]
            with np.errstate(all="ignore"):
                mean, sig = inverse_variance_stack(spec_data[z][ids], spec_err[z][ids])
            spec[t], spec_e[t] = mean, sig
            for slot, i in enumerate(ids):
                sref[t, slot] = _ref(f"/semi_sparse_cube/{z}/spectra/metadata", i)
        dense[z] = dict(img=img, img_e=img_e, cref=cref, mref=mref, sref=sref, spec=spec,
                        spec_e=spec_e, orders=orders, true_img=true_img.astype(_F4),
                        true_err=true_err, stored_ugriz=stored_ugriz,
                        stored_e_ugriz=stored_e_ugriz, n_frames=n_frames)  # fmt: skip
    by_name = {r["name"]: t for t, r in enumerate(rows)}
    # The design: band order r,u,g,i,z (field 1), u,r,i,g,z (field 2); B's differs by zoom.
    assert dense[0]["orders"][by_name["A"]] == ("r", "u", "g", "i", "z")
    assert dense[0]["orders"][by_name["C"]] == ("u", "r", "i", "g", "z")
    assert dense[0]["orders"][by_name["B"]] != dense[1]["orders"][by_name["B"]]
    assert (dense[1]["n_frames"][by_name["B"]] == 2).all()

    # ---- write the HDF5 file -------------------------------------------------------------
    with h5py.File(path, "w", libver="latest", fs_strategy="page", fs_page_size=4096) as f:
        f.attrs["image_count"] = n_img
        f.attrs["spectrum_count"] = n_spec
        fim = np.zeros(n_img, IMG_META_H5)
        for k, fr in enumerate(frames):
            fim[k] = (fr["path"].encode(), _json(fr["header"]).encode())
        _create(f, "fits_images_metadata", (n_img,), IMG_META_H5, chunks=(1000,),
                maxshape=(None,), data=fim)  # fmt: skip
        fsm = np.zeros(n_spec, SPEC_META_H5)
        for i, h in enumerate(spec_headers):
            p, m, fib = h["PLATEID"], h["MJD"], h["FIBERID"]
            path_i = f"data/raw/spectra/{p:04d}/spec-{p:04d}-{m:05d}-{fib:04d}.fits"
            fsm[i] = (path_i.encode(), _json(h).encode())
        _create(f, "fits_spectra_metadata", (n_spec,), SPEC_META_H5, chunks=(1000,),
                maxshape=(None,), data=fsm)  # fmt: skip

        sparse = f.create_group("semi_sparse_cube")
        sparse.attrs["NX_class"] = "NXentry"
        wl_ds = {}
        for z in ZOOMS:
            zg = sparse.create_group(str(z))
            # images (DatasetImageStrategy.create_datasets + add_metadata + write_dataset)
            ig = zg.create_group("images")
            ig.attrs["NX_class"], ig.attrs["signal"] = "NXdata", "data"
            shape = img_data[z].shape
            d = _create(ig, "data", shape, data=img_data[z])
            e = _create(ig, "errors", shape, data=img_err[z])
            idx = _create(ig, "db_index", (n_img,), IMG_INDEX, data=img_index)
            meta = _create(ig, "metadata", (n_img,), IMG_META_H5, chunks=(1,), data=img_meta[z])
            wcs = _create(ig, "wcs", (n_img,), WCS_H5, data=img_wcs[z])
            d.attrs["interpretation"], d.attrs["mime-type"] = "image", "image"
            d.attrs["error_ds_ref"], d.attrs["metadata_ds_ref"] = e.ref, meta.ref
            d.attrs["index_ds_ref"], d.attrs["wcs_ds_ref"] = idx.ref, wcs.ref
            # spectra (DatasetSpectrumStrategy)
            sg = zg.create_group("spectra")
            sg.attrs["NX_class"], sg.attrs["signal"] = "NXdata", "data"
            sg.attrs["axes"] = [".", "wl"]
            shape = spec_data[z].shape
            d = _create(sg, "data", shape, data=spec_data[z])
            e = _create(sg, "errors", shape, data=spec_err[z])
            wl_ds[z] = _create(sg, "wl", (shape[1],), data=float_compress(wavelength_grid(z)))
            idx = _create(sg, "db_index", (n_spec,), SPEC_INDEX, data=spec_index)
            smeta = np.zeros(n_spec, SPEC_META_H5)
            for i, h in enumerate(spec_headers):
                hz = dict(h)
                hz["NAXIS"], hz["NAXIS1"] = 1, shape[1]
                smeta[i] = (os.path.basename(fsm[i]["path"]), _json(hz).encode())
            meta = _create(sg, "metadata", (n_spec,), SPEC_META_H5, chunks=(1,), data=smeta)
            d.attrs["mime-type"], d.attrs["interpretation"] = "spectrum", "spectrum"
            d.attrs["error_ds_ref"], d.attrs["metadata_ds_ref"] = e.ref, meta.ref
            d.attrs["index_ds_ref"] = idx.ref
            chunk = (min(100, n_spec), REF_SLOTS)
            for name, arr in zip(("data", "errors", "metadata"), cut_refs[z]):
                _create(sg, f"image_cutouts_{name}", (n_spec, REF_SLOTS), REF_H5, chunks=chunk,
                        data=arr)  # fmt: skip
        _write_tree_leftover(sparse, spec_headers, spec_names.index("A_t0"), spec_data,
                             spec_err)  # fmt: skip

        dense_grp = f.create_group("dense_cube")
        dense_grp.attrs["NX_class"] = "NXentry"
        n_cand = len(candidates)
        dense_grp.attrs["target_count"] = n_cand  # recreate_datasets, then shrink_datasets
        for z in ZOOMS:
            c, n_wl = CUTOUT_SIZES[z], n_wavelength(z)
            zg = dense_grp.create_group(str(z))
            mi = zg.create_group("ml_image")
            mi.attrs["NX_class"] = "NXdata"
            ms = zg.create_group("ml_spectrum")
            ms.attrs["NX_class"] = "NXdata"
            ms["wl"] = wl_ds[z]  # add_wl_ds: a hard link
            ms.attrs["axes"] = [".", "wl"]
            cube = _create(mi, f"cutout_3d_cube_zoom_{z}", (n_cand, 5, c, c), chunks=(1, 5, c, c))
            cube.attrs["interpretation"] = "image"
            mi.attrs["signal"] = cube.name.rsplit("/", 1)[1]
            err = _create(mi, "errors", (n_cand, 5, c, c), chunks=(1, 5, c, c))
            cube.attrs["error_ds"] = err.ref
            scube = _create(ms, f"spectral_1d_cube_zoom_{z}", (n_cand, n_wl), chunks=(1, n_wl))
            scube.attrs["interpretation"] = "spectrum"
            ms.attrs["signal"] = scube.name.rsplit("/", 1)[1]
            serr = _create(ms, "errors", (n_cand, n_wl), chunks=(1, n_wl))
            scube.attrs["error_ds"] = serr.ref
            ref_chunk = min(100, n_cand)
            cref = _create(mi, "image_cutout_refs", (n_cand, 5, REF_SLOTS), REF_H5,
                           chunks=(ref_chunk, 5, REF_SLOTS))  # fmt: skip
            mref = _create(mi, "image_metadata_refs", (n_cand, 5, REF_SLOTS), REF_H5,
                           chunks=(ref_chunk, 5, REF_SLOTS))  # fmt: skip
            sref = _create(ms, "spec_metadata_refs", (n_cand, REF_SLOTS), REF_H5,
                           chunks=(ref_chunk, REF_SLOTS))  # fmt: skip
            dz = dense[z]
            cube[:n_rows], err[:n_rows] = dz["img"], dz["img_e"]
            scube[:n_rows], serr[:n_rows] = dz["spec"], dz["spec_e"]
            cref[:n_rows], mref[:n_rows], sref[:n_rows] = dz["cref"], dz["mref"], dz["sref"]
            for ds in (cube, err, scube, serr, cref, mref, sref):
                ds.resize(n_rows, axis=0)
        # add_nexus_navigation_metadata
        f.attrs["NX_class"], f.attrs["default"] = "NXroot", "/dense_cube"
        dense_grp.attrs["default"] = "/dense_cube/0"
        dense_grp["0"].attrs["default"] = "/dense_cube/0/ml_image"
        dense_grp["0/ml_image"].attrs["default"] = "/dense_cube/0/ml_image/cutout_3d_cube_zoom_0"
        dense_grp.attrs["target_count"] = n_rows
        if omit_frames is not None:
            for z in ZOOMS:
                del sparse[f"{z}/images/errors"]
                if omit_frames == "frames":
                    del sparse[f"{z}/images/data"]

    # ---- label tables (SFRProcessor), written by pandas after h5py closed the file --------
    sfr_table = _sfr_table(spec_headers, spec_names)
    headers_df = _to_bytes(pd.DataFrame([dict(h) for h in spec_headers]))
    merged = pd.merge(headers_df, sfr_table, on=["PLATEID", "MJD", "FIBERID"], how="left")
    merged = _to_bytes(merged)
    assert len(merged) == n_spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PerformanceWarning: object (bytes) blocks pickled
        with pd.HDFStore(path) as store:
            store.put(SFR_TABLE_KEY, sfr_table, format="fixed")
            store.put(MERGED_LABEL_KEY, merged, format="fixed")

    # ---- truth -----------------------------------------------------------------------------
    labels = {p: _expected_labels(rows, merged, spec_headers, p) for p in ("ivar", "first")}
    dense_names = [r["name"] for r in rows]
    return {
        "path": path,
        "omit_frames": omit_frames,
        "n_objects": n_rows,
        "n_candidates": n_cand,
        "dense_names": dense_names,  # target name of each dense row
        "dense_pixels": np.array([r["pixel"] for r in rows]),  # HEALPix order 15, ascending
        "dropped": [t for t in TARGET_NAMES if t not in dense_names],
        "target_spectra": {r["name"]: r["spectra"] for r in rows},  # db_index (time) order
        "n_spectra": np.array([len(r["spectra"]) for r in rows]),
        "spectrum_names": spec_names,  # data row -> name
        "spectrum_target": spec_target,
        "spectrum_keys": [(h["PLATEID"], h["MJD"], h["FIBERID"]) for h in spec_headers],
        "spectrum_pixels": spec_pix,
        "spectrum_index": spec_index,
        "target_radec": {t: targets[t] for t in TARGET_NAMES},
        "frame_bands": [fr["band"] for fr in frames],
        "frame_fields": [fr["field"] for fr in frames],
        "frame_db_order": frame_db_order,
        "band_order": {z: dense[z]["orders"] for z in ZOOMS},  # stored slot order per row
        "frames_per_band": {z: dense[z]["n_frames"] for z in ZOOMS},  # ugriz
        # images, ugriz: the inverse-variance stack of the frames' windows with true errors
        # (== the stored flux where a band has one frame), the true errors, and what the
        # reference stored (flux distorted where several frames, errors |flux|).
        "images": {z: dense[z]["true_img"] for z in ZOOMS},
        "image_errors": {z: dense[z]["true_err"] for z in ZOOMS},
        "images_stored": {z: dense[z]["stored_ugriz"] for z in ZOOMS},
        "image_errors_stored": {z: dense[z]["stored_e_ugriz"] for z in ZOOMS},
        "spectra": {z: dense[z]["spec"] for z in ZOOMS},
        "spectrum_errors": {z: dense[z]["spec_e"] for z in ZOOMS},  # as stored (0 where NaN)
        "semi_sparse_spectra": spec_data,
        "semi_sparse_errors": spec_err,
        "uncompressed_spectra": {z: spec_raw[z][0] for z in ZOOMS},
        "wavelength": {z: wavelength_grid(z) for z in ZOOMS},
        "wl_stored": {z: float_compress(wavelength_grid(z)) for z in ZOOMS},
        "labels": labels,  # {"ivar": DataFrame, "first": DataFrame}, one row per dense row
        "merged_table": merged,
        "sfr_table": sfr_table,
    }


def _write_tree_leftover(sparse, spec_headers, i, spec_data, spec_err):
    """A TREE-strategy subtree like the one left in the published dump (section 2)."""
    h = spec_headers[i]
    grp = sparse
    for order in range(SPEC_ORDER + 1):
        grp = grp.require_group(str(healpix_nest(order, h["PLUG_RA"], h["PLUG_DEC"])))
        grp.attrs["type"] = "spatial"
    for z in ZOOMS:
        _create(grp, f"image_cutouts_{z}", (REF_SLOTS,), h5py.regionref_dtype)
    tgrp = grp.create_group(str(h.get("TAI", h["MJD"])))  # get_spectrum_time
    tgrp.attrs["type"] = "time"
    name = f"spec-{h['PLATEID']:04d}-{h['MJD']:05d}-{h['FIBERID']:04d}.fits"
    for z in ZOOMS:
        rgrp = tgrp.create_group(str(n_wavelength(z)))
        rgrp.attrs["type"], rgrp.attrs["res_zoom"] = "resolution", z
        data = np.column_stack(
            [float_compress(wavelength_grid(z)), spec_data[z][i], spec_err[z][i]]
        )
        ds = _create(rgrp, name, data.shape, data=data)
        ds.attrs["mime-type"] = "spectrum"
        ds.attrs["serialized_header"] = _json(h)


def _sfr_table(spec_headers, spec_names):
    """gal_info (scalar columns) concatenated with gal_totsfr, in catalogue order."""
    by_name = dict(zip(spec_names, spec_headers))
    rec = []
    for j, name in enumerate(MPA_ORDER):
        if name in by_name:
            h = by_name[name]
            plate, mjd, fiber = h["PLATEID"], h["MJD"], h["FIBERID"]
            ra, dec = h["PLUG_RA"] + 1e-5, h["PLUG_DEC"] - 1e-5  # drilled fibre position
        else:
            plate, mjd, fiber, ra, dec = 299, 51500 + j, 100 + j, 150.5 + j, 2.0
        sfr = MPA_SFR.get(name, (0.1 * j, 0.1 * j - 0.3, 0.1 * j + 0.3, 0.0))
        if sfr is None:
            values = dict(AVG=-99.0, ENTROPY=0.0, FLAG=1.0, MEDIAN=-99.0, MODE=-99.0, P16=-99.0,
                          P2P5=-99.0, P84=-99.0, P97P5=-99.0)  # fmt: skip
        else:
            avg, p16, p84, flag = sfr
            values = dict(AVG=avg, ENTROPY=-5.1, FLAG=flag, MEDIAN=avg + 0.01,
                          MODE=round(avg / 0.05) * 0.05, P16=p16, P2P5=p16 - 0.4, P84=p84,
                          P97P5=p84 + 0.4)  # fmt: skip
        rec.append(
            dict(PLATEID=plate, MJD=mjd, FIBERID=fiber, RA=ra, DEC=dec, PRIMTARGET=64,
                 SECTARGET=0, TARGETTYPE="GALAXY             ", SPECTROTYPE="GALAXY",
                 SUBCLASS="STARFORMING" if j % 2 else "", Z=0.03 + 0.01 * j, Z_ERR=1e-5,
                 Z_WARNING=0, V_DISP=80.0 + j, V_DISP_ERR=9.0, SN_MEDIAN=8.0 + j,
                 E_BV_SFD=0.03, ZTWEAK=0.0, ZTWEAK_ERR=0.0, RELEASE="dr7.2", **values)
        )  # fmt: skip
    df = pd.DataFrame.from_records(rec)
    dtypes = {"PLATEID": "<i2", "MJD": "<i4", "FIBERID": "<i2", "PRIMTARGET": "<i4",
              "SECTARGET": "<i4", "Z_WARNING": "<i4"}  # fmt: skip
    for col in df.columns:
        if col in dtypes:
            df[col] = df[col].astype(dtypes[col])
        elif df[col].dtype == np.float64:
            df[col] = df[col].astype(np.float32)
    df = df[list(GAL_INFO_COLUMNS) + list(SFR_COLUMNS)]
    return _to_bytes(df)


def _expected_labels(rows, merged, spec_headers, policy):
    """Per-target labels by the decisions of section 11 (computed independently of the reader)."""
    out = []
    for row in rows:
        ids = row["spectra"]
        lab = merged.iloc[ids]
        avg = lab["AVG"].to_numpy(np.float64)
        p16 = lab["P16"].to_numpy(np.float64)
        p84 = lab["P84"].to_numpy(np.float64)
        flag = lab["FLAG"].to_numpy(np.float64)
        valid = np.isfinite(avg) & (avg > -99)
        avg, p16, p84 = (np.where(valid, a, np.nan) for a in (avg, p16, p84))
        first = spec_headers[ids[0]]
        rec = {
            "name": row["name"],
            "PLATEID": first["PLATEID"],
            "MJD": first["MJD"],
            "FIBERID": first["FIBERID"],
            "PLUG_RA": first["PLUG_RA"],
            "PLUG_DEC": first["PLUG_DEC"],
            "n_spectra": len(ids),
        }
        if policy == "first":
            rec.update(AVG=avg[0], P16=p16[0], P84=p84[0], FLAG=flag[0])
        else:
            use = (flag == 0) & valid
            if use.any():
                w = 1.0 / ((p84[use] - p16[use]) / 2) ** 2
                rec.update(
                    AVG=np.sum(w * avg[use]) / w.sum(),
                    P16=np.sum(w * p16[use]) / w.sum(),
                    P84=np.sum(w * p84[use]) / w.sum(),
                )
            else:
                rec.update(AVG=np.nan, P16=np.nan, P84=np.nan)
            present = flag[np.isfinite(flag)]
            rec["FLAG"] = (
                0.0 if (present == 0).any() else (present.min() if present.size else np.nan)
            )
        out.append(rec)
    return pd.DataFrame(out)
