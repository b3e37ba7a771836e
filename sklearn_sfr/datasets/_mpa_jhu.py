"""MPA-JHU DR7 catalogues: ``gal_info`` joined row by row with ``gal_totsfr`` / ``gal_fibsfr``.

The catalogue files are line-by-line aligned and the SFR files carry no identifier
(``shared/docs/data-formats.md`` section 2), so the join is by row position; the result is then
matched to spectra on ``PLATEID, MJD, FIBERID``. MPA's ``-99`` sentinels are kept as they are in
the file (the reference keeps them, and :class:`HiSSCube` reads them as missing labels).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd

from ._layout import GAL_INFO_COLUMNS, SFR_COLUMNS

_KEYS = ("PLATEID", "MJD", "FIBERID")


def _column(data, name, path):
    value = np.asarray(data[name])
    if value.ndim != 1:
        raise ValueError(f"{path}: column {name} is not scalar (shape {value.shape[1:]})")
    if value.dtype.kind == "S":
        return pd.Series([v.decode("utf-8", "replace").strip() for v in value], dtype=object)
    if value.dtype.kind == "U":
        return pd.Series([v.strip() for v in value], dtype=object)
    return pd.Series(value.astype(value.dtype.newbyteorder("=")))


@contextlib.contextmanager
def _fits_table(path, what):
    """The binary table in HDU1 of ``path``; unreadable files are errors naming the file."""
    from astropy.io import fits

    try:
        hdul = fits.open(path, mode="readonly")
    except (OSError, ValueError) as exc:  # astropy: "Empty or corrupt FITS file", truncation
        raise ValueError(f"{path}: cannot be read as a FITS file ({what}): {exc}") from exc
    with hdul:
        if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
            raise ValueError(f"{path}: expected the {what} in HDU1")
        try:
            data = hdul[1].data
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: the {what} in HDU1 cannot be read: {exc}") from exc
        yield data


def read_mpa_jhu(info_path, sfr_path, keys=None):
    """The MPA-JHU rows of the given spectra: gal_info columns plus the SFR columns.

    Parameters
    ----------
    info_path : str or path-like
        ``gal_info_dr7_v5_2.fit(.gz)``: a binary table in HDU1 with ``PLATEID, MJD, FIBERID``
        and the gal_info columns (vector columns such as ``PLUG_MAG`` are ignored).
    sfr_path : str or path-like
        ``gal_totsfr_dr7_v5_2.fits`` or ``gal_fibsfr_dr7_v5_2.fits``: HDU1 with ``AVG, ENTROPY,
        FLAG, MEDIAN, MODE, P16, P2P5, P84, P97P5``, row ``i`` describing gal_info row ``i``.
    keys : DataFrame with columns PLATEID, MJD, FIBERID, default=None
        Keep only catalogue rows with these keys (the whole catalogue is 927,552 rows); None
        keeps all.

    Returns
    -------
    DataFrame
        One row per kept catalogue row, unique on ``PLATEID, MJD, FIBERID`` (a repeated key
        keeps its first row, with a warning), ``FLAG`` as float as the reference stores it.

    Raises
    ------
    ValueError
        A file lacks a column or the two files differ in length; the message names the file.
    """
    with _fits_table(info_path, "gal_info table") as info:
        names = info.columns.names
        missing = [k for k in _KEYS if k not in names]
        if missing:
            raise ValueError(f"{info_path}: gal_info lacks column(s) {', '.join(missing)}")
        key_frame = pd.DataFrame({k: np.asarray(info[k]).astype(np.int64) for k in _KEYS})
        n_info = len(key_frame)
        if keys is None:
            rows = np.arange(n_info)
        else:
            wanted = pd.MultiIndex.from_frame(keys[list(_KEYS)].astype(np.int64))
            rows = np.flatnonzero(pd.MultiIndex.from_frame(key_frame).isin(wanted))
        cols = [c for c in GAL_INFO_COLUMNS if c in names and np.ndim(info[c][:1]) == 1]
        table = pd.DataFrame({c: _column(info[rows], c, info_path) for c in cols})
    with _fits_table(sfr_path, "SFR table") as sfr:
        missing = [c for c in SFR_COLUMNS if c not in sfr.columns.names]
        if missing:
            raise ValueError(f"{sfr_path}: SFR table lacks column(s) {', '.join(missing)}")
        if len(sfr) != n_info:
            raise ValueError(
                f"{sfr_path} has {len(sfr)} rows but {info_path} has {n_info}: the MPA-JHU "
                "files are joined row by row and must come from the same release"
            )
        for c in SFR_COLUMNS:
            table[c] = _column(sfr[rows], c, sfr_path).to_numpy()
    for k in _KEYS:
        table[k] = table[k].astype(np.int64)
    table["FLAG"] = table["FLAG"].astype(np.float64)
    dup = table.duplicated(list(_KEYS))
    if dup.any():
        warnings.warn(
            f"{info_path}: {int(dup.sum())} repeated (PLATEID, MJD, FIBERID) rows; the first "
            "row of each key is used",
            stacklevel=2,
        )
        table = table[~dup]
    return table.reset_index(drop=True)
