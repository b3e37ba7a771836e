"""SDSS DR8+ ``spec-PLATE-MJD-FIBER.fits`` spectra: reading, resampling, grouping by object.

Formats: ``shared/docs/data-formats.md`` section 3.2. The HiSS-Cube grid and the repeat stacking
rule are in :mod:`._layout`.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ._layout import SPECTRUM_REDSHIFT_KEY, wavelength_grid

#: SDSS spectra are stored in units of 1e-17 erg s^-1 cm^-2 A^-1; the cube stores erg s^-1
#: cm^-2 A^-1 (the reference's ``flux * 1e-17``, hisscube-layout.md section 7).
SDSS_FLUX_UNIT = 1e-17

#: Primary-header keys copied into the cube's spectrum header (the reference copies the whole
#: primary header; these are the ones anything downstream reads).
_HEADER_KEYS = ("PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC", "TAI", "EXPTIME", "NEXP")

#: HDU2 (SPECOBJ / SPALL) columns kept, renamed where the MPA-JHU catalogue uses the same name
#: (a ``Z`` or ``SUBCLASS`` in the spectrum table would count as a catalogue match).
_HDU2_COLUMNS = {
    "Z": SPECTRUM_REDSHIFT_KEY,
    "Z_ERR": "SPEC_Z_ERR",
    "ZWARNING": "ZWARNING",
    "CLASS": "CLASS",
    "SUBCLASS": "SPEC_SUBCLASS",
}

_COADD_COLUMNS = ("loglam", "flux", "ivar", "and_mask")


class SpectrumHeaderError(ValueError):
    """A spectrum whose primary header cannot place or identify it (``reason`` says why).

    ``values`` holds those of ``PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC`` that are finite
    numbers, as read, for a report to show.
    """

    def __init__(self, path, reason, values=None):
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.values = dict(values or {})


def _number(header, key, path):
    value = header[key]
    if isinstance(value, bool):
        raise SpectrumHeaderError(path, f"{key} = {value!r} is not a number")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise SpectrumHeaderError(path, f"{key} = {value!r} is not a number") from None
    if not np.isfinite(number):
        raise SpectrumHeaderError(path, f"{key} = {value!r} is not a finite number")
    return number


def check_spectrum_header(header, path):
    """The identifiers and position of a spectrum, checked: what the ingest joins and cuts on.

    ``PLATEID, MJD, FIBERID`` must be positive whole numbers (a truncated ``51817.5`` would
    match another catalogue row), ``PLUG_RA`` in [0, 360) and ``PLUG_DEC`` in [-90, 90] deg.

    Returns
    -------
    dict
        The five keys as int and float.

    Raises
    ------
    SpectrumHeaderError
        Naming the key, its value and the range expected.

    Examples
    --------
    >>> from sklearn_sfr.datasets._sdss_spectra import check_spectrum_header
    >>> h = {"PLATEID": 411, "MJD": 51817, "FIBERID": 119, "PLUG_RA": 46.56, "PLUG_DEC": -500.0}
    >>> check_spectrum_header(h, "spec.fits")
    Traceback (most recent call last):
    ...
    sklearn_sfr.datasets._sdss_spectra.SpectrumHeaderError: spec.fits: PLUG_DEC = -500.0 is \
outside [-90, 90] deg
    """
    try:
        return _check_header(header, path)
    except SpectrumHeaderError as exc:
        for key in ("PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC"):
            try:
                exc.values[key] = _number(header, key, path)
            except SpectrumHeaderError:
                continue
        raise


def _check_header(header, path):
    out = {}
    for key in ("PLATEID", "MJD", "FIBERID"):
        number = _number(header, key, path)
        if number <= 0 or number % 1:
            raise SpectrumHeaderError(
                path, f"{key} = {header[key]!r} is not a positive whole number"
            )
        out[key] = int(number)
    ra = _number(header, "PLUG_RA", path)
    if not 0 <= ra < 360:
        raise SpectrumHeaderError(path, f"PLUG_RA = {header['PLUG_RA']!r} is outside [0, 360) deg")
    dec = _number(header, "PLUG_DEC", path)
    if not -90 <= dec <= 90:
        raise SpectrumHeaderError(
            path, f"PLUG_DEC = {header['PLUG_DEC']!r} is outside [-90, 90] deg"
        )
    out["PLUG_RA"], out["PLUG_DEC"] = ra, dec
    return out


def read_sdss_spectrum(path):
    """Read one ``spec-PLATE-MJD-FIBER.fits`` file with astropy.

    Parameters
    ----------
    path : str or path-like
        The file (opened read-only).

    Returns
    -------
    header : dict
        ``PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC`` (the object position; ``RA``/``DEC`` are
        the plate centre), ``TAI`` where present, and from HDU2 the redshift ``SPEC_Z``,
        ``SPEC_Z_ERR``, ``ZWARNING``, ``CLASS`` and ``SPEC_SUBCLASS``.
    wavelength : ndarray of float64
        ``10**loglam``, vacuum Angstrom.
    flux : ndarray of float64
        1e-17 erg s^-1 cm^-2 A^-1.
    ivar : ndarray of float64
        Inverse variance of ``flux``.
    and_mask : ndarray of int64

    Raises
    ------
    SpectrumHeaderError
        The identifiers or the position in the primary header are unusable (see
        :func:`check_spectrum_header`).
    ValueError
        The file lacks an HDU, column or header key, or its wavelengths do not increase; the
        message names the file and what.
    """
    from astropy.io import fits

    with fits.open(path, mode="readonly", memmap=False) as hdul:
        if len(hdul) < 3:
            raise ValueError(
                f"{path}: expected HDU1 COADD and HDU2 SPECOBJ/SPALL, found {len(hdul)} HDUs"
            )
        primary = hdul[0].header
        missing = [k for k in _HEADER_KEYS[:5] if k not in primary]
        if missing:
            raise ValueError(f"{path}: primary header lacks {', '.join(missing)}")
        header = {k: primary[k] for k in _HEADER_KEYS if k in primary}
        header.update(check_spectrum_header(header, path))
        coadd = hdul[1].data
        names = [] if coadd is None else [n.lower() for n in coadd.columns.names]
        missing = [c for c in _COADD_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path}: HDU1 (COADD) lacks column(s) {', '.join(missing)}")
        loglam = np.asarray(coadd["loglam"], dtype=np.float64)
        if loglam.size < 2 or not (np.isfinite(loglam).all() and (np.diff(loglam) > 0).all()):
            raise ValueError(f"{path}: HDU1 (COADD) loglam is not finite and increasing")
        flux = np.asarray(coadd["flux"], dtype=np.float64)
        ivar = np.asarray(coadd["ivar"], dtype=np.float64)
        and_mask = np.asarray(coadd["and_mask"], dtype=np.int64)
        values = _first_row(hdul[2], path, tuple(_HDU2_COLUMNS))
        if "Z" not in values:
            raise ValueError(f"{path}: HDU2 has no redshift column Z")
        for src, dst in _HDU2_COLUMNS.items():
            if src in values:
                header[dst] = values[src]
    return header, 10.0**loglam, flux, ivar, and_mask


#: Bytes per element of the FITS binary-table formats (``X`` is bits, handled apart).
_TFORM_BYTES = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8,
                "M": 16, "P": 8, "Q": 16}  # fmt: skip
_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")
_NUMPY_TYPE = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def _first_row(hdu, path, names):
    """Scalar ``names`` of a binary table's first row, read from the header's byte layout.

    BOSS SPALL tables have 236 columns, and astropy builds all of them to give one row (a
    large share of the time per spectrum); only the few wanted fields are decoded here.
    Compressed files, or anything unusual, take astropy's own path.
    """
    header = hdu.header
    offsets, offset = {}, 0
    try:
        for k in range(1, int(header["TFIELDS"]) + 1):
            match = _TFORM.match(str(header[f"TFORM{k}"]))
            repeat = int(match.group(1) or 1)
            code = match.group(2)
            size = -(-repeat // 8) if code == "X" else repeat * _TFORM_BYTES[code]
            name = str(header.get(f"TTYPE{k}", "")).strip()
            if name in names and (code == "A" or (repeat == 1 and code in _NUMPY_TYPE)):
                offsets[name] = (offset, size, code)
            offset += size
        if offset != int(header["NAXIS1"]) or int(header["NAXIS2"]) < 1:
            raise ValueError("layout mismatch")
        start = hdu.fileinfo()["datLoc"]
        if str(path).endswith((".gz", ".bz2", ".zip")):
            raise ValueError("compressed file")
        with open(path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(offset)
    except (KeyError, AttributeError, TypeError, ValueError, OSError):
        data = hdu.data
        if data is None or len(data) == 0:
            return {}
        return {
            n: (data[n][0].strip() if isinstance(data[n][0], str) else data[n][0].item())
            for n in names
            if n in data.columns.names
        }
    out = {}
    for name, (at, size, code) in offsets.items():
        chunk = raw[at : at + size]
        if code == "A":
            out[name] = chunk.decode("ascii", "replace").rstrip("\x00 ").strip()
        else:
            out[name] = np.frombuffer(chunk, dtype=_NUMPY_TYPE[code])[0].item()
    return out


def _log_bin_edges(wavelength):
    """Pixel edges of a log-linear spectrum: midpoints in log, half a step beyond the ends."""
    loglam = np.log10(wavelength)
    mid = 0.5 * (loglam[1:] + loglam[:-1])
    edges = np.concatenate([[2 * loglam[0] - mid[0]], mid, [2 * loglam[-1] - mid[-1]]])
    return 10.0**edges


def _linear_bin_edges(grid):
    mid = 0.5 * (grid[1:] + grid[:-1])
    return np.concatenate([[2 * grid[0] - mid[0]], mid, [2 * grid[-1] - mid[-1]]])


def resample_flux_conserving(wavelength, flux, sigma, new_wavelength):
    """Rebin a spectrum onto new pixels, conserving flux (the ``spectres`` rule).

    Each output pixel is the overlap-weighted mean of the input pixels it covers,
    ``sum(w_i f_i) / sum(w_i)`` with ``w_i`` the overlap width, and its error
    ``sqrt(sum(w_i**2 s_i**2)) / sum(w_i)``. An output pixel is NaN (flux and error) when the
    input does not cover it wholly or any input pixel it overlaps is masked (NaN flux or
    error), so masks never leak into neighbouring values.

    Parameters
    ----------
    wavelength : ndarray of shape (n,)
        Input pixel centres (increasing); edges are placed midway in log wavelength, as the
        SDSS log-linear pixels are.
    flux, sigma : ndarray of shape (n,)
        Flux density and 1-sigma error; NaN marks masked pixels.
    new_wavelength : ndarray of shape (m,)
        Output pixel centres (increasing, linear spacing: edges midway).

    Returns
    -------
    flux, sigma : ndarray of shape (m,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.datasets._sdss_spectra import resample_flux_conserving
    >>> wl = 10 ** (3.6 + 1e-4 * np.arange(3000))
    >>> f, s = resample_flux_conserving(wl, np.ones(3000), np.ones(3000), np.arange(4100, 4110))
    >>> bool(np.allclose(f, 1.0)), bool((s < 1).all())
    (True, True)
    """
    in_edges = _log_bin_edges(np.asarray(wavelength, dtype=np.float64))
    out_edges = _linear_bin_edges(np.asarray(new_wavelength, dtype=np.float64))
    flux = np.asarray(flux, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    # Cut the axis at every input and output edge: each piece lies in one input pixel and at
    # most one output pixel, so sums over pieces are exact overlaps.
    cuts = np.union1d(in_edges, out_edges)
    mid = 0.5 * (cuts[1:] + cuts[:-1])
    width = np.diff(cuts)
    i = np.searchsorted(in_edges, mid) - 1
    j = np.searchsorted(out_edges, mid) - 1
    n_out = out_edges.size - 1
    inside = (i >= 0) & (i < flux.size) & (j >= 0) & (j < n_out)
    i, j, width = i[inside], j[inside], width[inside]
    bad = ~(np.isfinite(flux[i]) & np.isfinite(sigma[i]))
    covered = np.bincount(j, width, n_out)
    n_bad = np.bincount(j, bad.astype(np.float64), n_out)
    f_i = np.where(bad, 0.0, flux[i])
    s_i = np.where(bad, 0.0, sigma[i])
    out_width = np.diff(out_edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        new_flux = np.bincount(j, width * f_i, n_out) / covered
        new_sigma = np.sqrt(np.bincount(j, (width * s_i) ** 2, n_out)) / covered
    # Relative tolerance for float rounding of the edge arithmetic.
    whole = covered >= out_width * (1 - 1e-9)
    ok = whole & (n_bad == 0)
    return np.where(ok, new_flux, np.nan), np.where(ok, new_sigma, np.nan)


def spectrum_on_grid(wavelength, flux, ivar, and_mask, mask_bits=-1):
    """An SDSS spectrum on the HiSS-Cube level-0 grid, in the cube's units.

    Parameters
    ----------
    wavelength, flux, ivar, and_mask : ndarray
        As returned by :func:`read_sdss_spectrum`.
    mask_bits : int, default=-1
        ``and_mask`` bits that mask a pixel; -1 (every bit) masks ``and_mask != 0``. Pixels
        with ``ivar == 0`` are always masked.

    Returns
    -------
    flux, sigma : ndarray of shape (4620,), float64
        erg s^-1 cm^-2 A^-1; NaN where masked or not covered.
    """
    masked = (ivar <= 0) | ((and_mask & mask_bits) != 0)
    with np.errstate(divide="ignore"):
        sigma = np.where(masked, np.nan, 1.0 / np.sqrt(ivar))
    flux = np.where(masked, np.nan, flux)
    new_flux, new_sigma = resample_flux_conserving(wavelength, flux, sigma, wavelength_grid(0))
    return new_flux * SDSS_FLUX_UNIT, new_sigma * SDSS_FLUX_UNIT


def group_by_position(ra, dec, radius_arcsec=1.5):
    """Object id of each spectrum: spectra within ``radius_arcsec`` of each other are one object.

    Pairs closer than the radius are linked (astropy's ``search_around_sky``) and each
    connected group is one object, so a chain of repeat observations is one object even if
    its ends are slightly farther apart. Ids number the objects in order of first appearance.

    Examples
    --------
    >>> from sklearn_sfr.datasets._sdss_spectra import group_by_position
    >>> group_by_position([10.0, 10.0001, 20.0], [0.0, 0.0, 0.0]).tolist()
    [0, 0, 1]
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ra = np.asarray(ra, dtype=np.float64)
    n = ra.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    coords = SkyCoord(ra * u.deg, np.asarray(dec, dtype=np.float64) * u.deg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns about self-matching; intended here
        a, b, _, _ = coords.search_around_sky(coords, radius_arcsec * u.arcsec)
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber in order of first appearance.
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    renumber = np.empty_like(order)
    renumber[order] = np.arange(order.size)
    return renumber[labels].astype(np.int64)
