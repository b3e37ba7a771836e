"""SDSS calibrated frames ``frame-[ugriz]-RUN-CAMCOL-FIELD.fits``: footprints, errors, cutouts.

Format and noise recipe: ``shared/docs/data-formats.md`` section 3.3 (the SDSS ``frame`` data
model). A frame is opened only to cut the objects that fall on it, then released, so memory
never holds more than one frame.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_NAME = re.compile(r"^frame-([ugriz])-(\d{6})-([1-6])-(\d{4})\.fits(\.bz2|\.gz)?$")

#: CCD gain [e-/DN] by camcol (rows 1-6) and band (u, g, r, i, z), from the SDSS frame data
#: model (as tabulated in HiSS-Cube ``config/ccd_gain.tsv``). u camcol 2 changed at run 1100.
_GAIN = np.array(
    [
        [1.62, 3.32, 4.71, 5.165, 4.745],
        [1.595, 3.855, 4.6, 6.565, 5.155],
        [1.59, 3.845, 4.72, 4.86, 4.885],
        [1.6, 3.995, 4.76, 4.885, 4.775],
        [1.47, 4.05, 4.725, 4.64, 3.48],
        [2.17, 4.035, 4.895, 4.76, 4.69],
    ]
)
_GAIN_U2_AFTER_1100 = 1.825

#: Dark variance [DN^2] by camcol and band (``config/ccd_dark_variance.tsv``); some values
#: changed at run 1500.
_DARK_VARIANCE = np.array(
    [
        [9.61, 15.6025, 1.8225, 7.84, 0.81],
        [12.6025, 1.44, 1.00, 5.76, 1.0],
        [8.7025, 1.3225, 1.3225, 4.6225, 1.0],
        [12.6025, 1.96, 1.3225, 6.25, 9.61],
        [9.3025, 1.1025, 0.81, 7.84, 1.8225],
        [7.0225, 1.8225, 0.9025, 5.0625, 1.21],
    ]
)
_DARK_VARIANCE_AFTER_1500 = {(2, "i"): 6.25, (4, "i"): 7.5625, (4, "z"): 12.6025, (5, "z"): 2.1025}

_BANDS = "ugriz"


def ccd_gain_dark_variance(band, camcol, run):
    """Gain [e-/DN] and dark variance [DN^2] of one SDSS CCD (frame data model table).

    Examples
    --------
    >>> from sklearn_sfr.datasets._sdss_frames import ccd_gain_dark_variance
    >>> ccd_gain_dark_variance("u", 3, 4948)
    (1.59, 8.7025)
    """
    if band not in _BANDS or not 1 <= int(camcol) <= 6:
        raise ValueError(f"no CCD band {band!r} camcol {camcol!r}: need ugriz and 1-6")
    b, c = _BANDS.index(band), int(camcol)
    gain = float(_GAIN[c - 1, b])
    if (c, band) == (2, "u") and run > 1100:
        gain = _GAIN_U2_AFTER_1100
    dark = float(_DARK_VARIANCE[c - 1, b])
    if run > 1500:
        dark = _DARK_VARIANCE_AFTER_1500.get((c, band), dark)
    return gain, dark


@dataclass
class FrameInfo:
    """What a frame's primary header says: band, CCD, shape and WCS (no pixels).

    ``field`` is the field number of the SDSS name (the header has none), None for a frame
    named otherwise; ``(run, camcol, field)`` identifies the five frames taken together.
    """

    path: Path
    band: str
    run: int
    camcol: int
    shape: tuple
    wcs: object
    field: int | None = None

    @property
    def field_key(self):
        """The field this frame belongs to: its run, camcol and field number."""
        return (self.run, self.camcol, self.field)


def _quiet_wcs(header):
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        # SDSS headers use the deprecated RADECSYS and DATE-OBS without MJD-OBS; harmless.
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def read_frame_info(path):
    """Band, run, camcol, shape and WCS of a frame, from its primary header only.

    The band and camcol come from the header (``FILTER``, ``CAMCOL``, ``RUN``), which is what
    the pixels are; a file name that disagrees is an error naming both.
    """
    from astropy.io import fits

    path = Path(path)
    header = fits.getheader(path, 0)
    missing = [k for k in ("FILTER", "CAMCOL", "RUN", "NAXIS1", "NAXIS2") if k not in header]
    if missing:
        raise ValueError(f"{path}: primary header lacks {', '.join(missing)}")
    band = str(header["FILTER"]).strip()
    if band not in _BANDS:
        raise ValueError(f"{path}: FILTER {band!r} is not one of u, g, r, i, z")
    match = FRAME_NAME.match(path.name)
    if match and match.group(1) != band:
        raise ValueError(f"{path}: the name says band {match.group(1)} but FILTER is {band!r}")
    if match and (int(match.group(2)), int(match.group(3))) != (
        int(header["RUN"]),
        int(header["CAMCOL"]),
    ):
        raise ValueError(
            f"{path}: the name says run {int(match.group(2))} camcol {int(match.group(3))} but "
            f"the header says RUN {header['RUN']} CAMCOL {header['CAMCOL']}"
        )
    wcs = _quiet_wcs(header)
    if not wcs.has_celestial:
        raise ValueError(f"{path}: primary header has no celestial WCS")
    return FrameInfo(
        path=path,
        band=band,
        run=int(header["RUN"]),
        camcol=int(header["CAMCOL"]),
        shape=(int(header["NAXIS2"]), int(header["NAXIS1"])),
        wcs=wcs,
        field=int(match.group(4)) if match else None,
    )


def frame_errors(image, calibvec, allsky, xinterp, yinterp, gain, dark_variance):
    """Per-pixel 1-sigma errors of a calibrated frame, in nanomaggies (SDSS frame data model).

    ``dn = image / calibvec + sky`` with the sky grid ``allsky`` bilinearly interpolated at
    ``(yinterp, xinterp)``; ``dn_err = sqrt(dn / gain + dark_variance)``;
    ``error = dn_err * calibvec``.

    Parameters
    ----------
    image : ndarray of shape (ny, nx)
        HDU0, nanomaggies.
    calibvec : ndarray of shape (nx,)
        HDU1, nanomaggies per count for each column.
    allsky : ndarray of shape (192, 256)
        HDU2 ``ALLSKY`` (counts), rows along y.
    xinterp, yinterp : ndarray of shape (nx,) and (ny,)
        HDU2 positions of each frame column and row on the sky grid.
    gain, dark_variance : float

    Returns
    -------
    ndarray of shape (ny, nx), float64
    """
    # Separable bilinear interpolation (IDL ``interpolate(..., /grid)``, edges clamped):
    # first along x for every sky row, then along y.
    allsky = np.asarray(allsky, dtype=np.float64)
    ny_s, nx_s = allsky.shape

    def weights(pos, n):
        pos = np.clip(np.asarray(pos, dtype=np.float64), 0, n - 1)
        lo = np.minimum(np.floor(pos).astype(np.int64), n - 2)
        return lo, pos - lo

    ix, fx = weights(xinterp, nx_s)
    iy, fy = weights(yinterp, ny_s)
    along_x = allsky[:, ix] * (1 - fx) + allsky[:, ix + 1] * fx
    sky = along_x[iy] * (1 - fy)[:, None] + along_x[iy + 1] * fy[:, None]
    calib = np.asarray(calibvec, dtype=np.float64)[None, :]
    dn = np.asarray(image, dtype=np.float64) / calib + sky
    # Negative counts (noise on a faint sky) carry no Poisson term, only the dark variance.
    return np.sqrt(np.maximum(dn, 0.0) / gain + dark_variance) * calib


def read_frame(info):
    """Pixels (nanomaggies) and their errors of the frame ``info`` describes.

    Returns
    -------
    image, error : ndarray of shape (ny, nx), float64
    """
    from astropy.io import fits

    with fits.open(info.path, mode="readonly", memmap=False) as hdul:
        if len(hdul) < 3:
            raise ValueError(
                f"{info.path}: expected HDU1 calibration vector and HDU2 sky, "
                f"found {len(hdul)} HDUs"
            )
        image = np.asarray(hdul[0].data, dtype=np.float64)
        if image.shape != info.shape:
            raise ValueError(f"{info.path}: HDU0 has shape {image.shape}, expected {info.shape}")
        calibvec = np.asarray(hdul[1].data, dtype=np.float64)
        sky = hdul[2].data
        missing = [c for c in ("ALLSKY", "XINTERP", "YINTERP") if c not in sky.columns.names]
        if missing:
            raise ValueError(f"{info.path}: HDU2 lacks column(s) {', '.join(missing)}")
        allsky = np.asarray(sky["ALLSKY"][0], dtype=np.float64)
        xinterp = np.asarray(sky["XINTERP"][0], dtype=np.float64)
        yinterp = np.asarray(sky["YINTERP"][0], dtype=np.float64)
    if calibvec.shape != (image.shape[1],) or xinterp.size != image.shape[1]:
        raise ValueError(
            f"{info.path}: calibration vector / XINTERP length does not match "
            f"{image.shape[1]} columns"
        )
    if yinterp.size != image.shape[0]:
        raise ValueError(f"{info.path}: YINTERP length does not match {image.shape[0]} rows")
    gain, dark = ccd_gain_dark_variance(info.band, info.camcol, info.run)
    return image, frame_errors(image, calibvec, allsky, xinterp, yinterp, gain, dark)


def cutout_overlap(info, ra, dec, size=64):
    """Fraction of each object's ``size`` x ``size`` cutout that lies on the frame.

    1 for a cutout wholly inside, 0 for none; computed from the header alone with astropy's
    ``overlap_slices``, the rule ``Cutout2D`` applies.
    """
    from astropy.nddata.utils import NoOverlapError, overlap_slices

    x, y = info.wcs.world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    out = np.zeros(x.size)
    for k, (xk, yk) in enumerate(zip(x, y)):
        if not (np.isfinite(xk) and np.isfinite(yk)):
            continue
        try:
            large, _ = overlap_slices(info.shape, (size, size), (yk, xk), mode="partial")
        except NoOverlapError:
            continue
        out[k] = (large[0].stop - large[0].start) * (large[1].stop - large[1].start) / size**2
    return out


def cut_out(image, error, wcs, ra, dec, size=64):
    """One ``size`` x ``size`` cutout of a frame and its errors, NaN where off the frame.

    ``astropy.nddata.Cutout2D`` (``mode="partial"``, ``fill_value=nan``) centred on the sky
    position, in the frame's native pixel orientation (as the reference cuts).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.nddata import Cutout2D

    position = SkyCoord(ra * u.deg, dec * u.deg)
    kw = {"size": size, "wcs": wcs, "mode": "partial", "fill_value": np.nan, "copy": True}
    return Cutout2D(image, position, **kw).data, Cutout2D(error, position, **kw).data
