"""MPA-JHU labels: the DR7 ``gal_info`` + ``gal_totsfr`` pair, or any table with identifiers.

Two forms reach the ingest (``shared/docs/data-formats.md`` section 2):

* the official DR7 files, ``gal_info`` (with ``PLATEID, MJD, FIBERID``) and ``gal_totsfr`` /
  ``gal_fibsfr`` (no identifier): line-by-line aligned by definition, so the two are joined by
  row position. Should the SFR file carry the identifiers itself, it is joined on them instead;
* any table astropy reads (FITS, CSV, ECSV, VOTable, ...), such as a CasJobs query result,
  with the identifiers in one of SDSS's spellings and the SFR columns named as in the DR7 file
  (``AVG``, ``P16``, ...) or as in the CasJobs ``galSpecExtra`` table (``sfr_tot_p50``, ...).

Either way the catalogue is matched to the spectra on ``PLATEID, MJD, FIBERID``, never by
position. Values that are not numbers, or are infinite, are errors naming the file, column and
row; a missing value (an empty cell, NaN) is a missing label, and MPA's ``-99`` / ``-9999``
"no estimate" sentinels are kept as they are in the file (the reference keeps them, and
:class:`HiSSCube` reads anything at or below ``-99`` as a missing label).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._layout import GAL_INFO_COLUMNS, SFR_COLUMNS

_KEYS = ("PLATEID", "MJD", "FIBERID")

#: Spellings of the identifiers in SDSS tables (matched case-insensitively): ``PLATEID`` in the
#: MPA-JHU files and spAll, ``plate`` / ``fiberID`` in the CAS ``SpecObj`` tables.
KEY_SPELLINGS = {"PLATEID": ("PLATEID", "plate"), "MJD": ("MJD",), "FIBERID": ("FIBERID",)}

#: ``galSpecExtra`` (CasJobs) names of the SFR statistics: ``<prefix><suffix>`` with prefix
#: ``sfr_tot_`` (total SFR, preferred) or ``sfr_fib_`` (fibre SFR). ``p50`` is the median of
#: the PDF, i.e. the DR7 ``MEDIAN``, not its mean ``AVG``. galSpecExtra itself has no mean and
#: no flag; the ``avg``/``flag`` spellings are for tables that add them under that naming.
GALSPEC_SUFFIXES = {
    "AVG": ("avg", "mean"),
    "ENTROPY": ("entropy",),
    "FLAG": ("flag",),
    "MEDIAN": ("p50", "median"),
    "MODE": ("mode",),
    "P16": ("p16",),
    "P2P5": ("p2p5",),
    "P84": ("p84",),
    "P97P5": ("p97p5",),
}
GALSPEC_PREFIXES = ("sfr_tot_", "sfr_fib_")

#: What a label table must provide besides the identifiers: the label and its flag.
REQUIRED_SFR = ("AVG", "FLAG")

#: At or below this an MPA-JHU value is the "no estimate" sentinel (-99 in the DR7 files,
#: -9999 in the CAS galSpec tables).
SENTINEL_MAX = -99.0


# -- reading ---------------------------------------------------------------------------------
def _column(data, name, path):
    value = np.asarray(data[name])
    if value.ndim != 1:
        raise ValueError(f"{path}: column {name} is not scalar (shape {value.shape[1:]})")
    if value.dtype.kind == "S":
        return pd.Series([v.decode("utf-8", "replace").strip() for v in value], dtype=object)
    if value.dtype.kind == "U":
        return pd.Series([v.strip() for v in value], dtype=object)
    return pd.Series(value.astype(value.dtype.newbyteorder("=")))


def _table_column(table, name, path, rows=None):
    """One column of an astropy table as a Series: masked cells NaN (numbers) or None (text)."""
    col = table[name]
    if rows is not None:
        col = col[rows]
    mask = np.ma.getmaskarray(col) if getattr(col, "mask", None) is not None else None
    value = np.asarray(getattr(col, "data", col))
    if value.ndim != 1:
        raise ValueError(f"{path}: column {name} is not scalar (shape {value.shape[1:]})")
    if value.dtype.kind in "biuf":
        if mask is not None and mask.any():
            value = value.astype(np.float64)
            value[mask] = np.nan
        return pd.Series(value.astype(value.dtype.newbyteorder("=")))
    if value.dtype.kind == "S":
        text = [v.decode("utf-8", "replace").strip() for v in value]
    else:
        text = [v.strip() if isinstance(v, str) else v for v in value.tolist()]
    if mask is not None:
        text = [None if m else v for v, m in zip(text, mask)]
    return pd.Series(text, dtype=object)


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


def _fits_layout(path, what):
    """Column names and row count of the table in HDU1, from its header (no data read)."""
    from astropy.io import fits

    try:
        with fits.open(path, mode="readonly") as hdul:
            if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
                raise ValueError(f"{path}: expected the {what} in HDU1")
            return list(hdul[1].columns.names), int(hdul[1].header.get("NAXIS2", 0))
    except (OSError, TypeError) as exc:  # astropy: "Empty or corrupt FITS file", truncation
        raise ValueError(f"{path}: cannot be read as a FITS file ({what}): {exc}") from exc
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: cannot be read as a FITS file ({what}): {exc}") from exc


def _read_table(path):
    """Any table astropy reads; a text file of unknown extension is guessed as ASCII."""
    from astropy.io.registry import IORegistryError
    from astropy.table import Table
    from astropy.units import UnitsWarning

    def read(**kwargs):
        with warnings.catch_warnings():
            # Catalogue units such as "log(Msun/yr)" are not astropy units; they are not used.
            warnings.simplefilter("ignore", UnitsWarning)
            return Table.read(path, **kwargs)

    try:
        try:
            return read()
        except IORegistryError:
            return read(format="ascii")
    except Exception as exc:  # astropy raises many types for a file it cannot parse
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: cannot be read as a table by astropy (FITS, CSV, ECSV, VOTable, ...): "
            f"{first}"
        ) from exc


# -- column names ----------------------------------------------------------------------------
def _by_lower(names):
    out = {}
    for name in names:
        out.setdefault(name.lower(), []).append(name)
    return out


def _find(lower, spellings, path, canonical):
    """The one column spelled as any of ``spellings`` (case-insensitive), or None."""
    hits = [n for s in spellings for n in lower.get(s.lower(), [])]
    if len(hits) > 1:
        raise ValueError(
            f"{path}: columns {', '.join(hits)} would all be {canonical}; keep only one"
        )
    return hits[0] if hits else None


def _sfr_spellings(canonical, prefix):
    spellings = (canonical,)
    if prefix is not None:
        spellings += tuple(prefix + s for s in GALSPEC_SUFFIXES[canonical])
    return spellings


def _galspec_prefix(names):
    lower = [n.lower() for n in names]
    for prefix in GALSPEC_PREFIXES:
        if any(n.startswith(prefix) for n in lower):
            return prefix
    return None


def _expected(canonical, prefix):
    prefixes = GALSPEC_PREFIXES if prefix is None else (prefix,)
    spellings = [canonical]
    for p in prefixes:
        spellings += [p + s for s in GALSPEC_SUFFIXES[canonical]]
    return f"{canonical} <- {' | '.join(spellings)}"


def map_label_columns(names, path):
    """Which column of a label table is which identifier and SFR statistic.

    Parameters
    ----------
    names : sequence of str
        The table's column names.
    path : str or path-like
        The table, for messages.

    Returns
    -------
    mapping : dict
        Our name (``PLATEID, MJD, FIBERID``, the DR7 SFR names, gal_info names) to the table's.
    prefix : str or None
        The galSpecExtra prefix used (``"sfr_tot_"``, ``"sfr_fib_"``), None for DR7 naming.

    Raises
    ------
    ValueError
        An identifier, ``AVG`` or ``FLAG`` has no column, or two columns claim one name; the
        message names them, the spellings expected and the table's columns.

    Examples
    --------
    >>> from sklearn_sfr.datasets._mpa_jhu import map_label_columns
    >>> mapping, prefix = map_label_columns(
    ...     ["plate", "mjd", "fiberID", "sfr_tot_avg", "sfr_tot_p50", "sfr_tot_flag"], "t.csv")
    >>> mapping["PLATEID"], mapping["AVG"], mapping["MEDIAN"], prefix
    ('plate', 'sfr_tot_avg', 'sfr_tot_p50', 'sfr_tot_')
    """
    names = list(names)
    lower = _by_lower(names)
    prefix = _galspec_prefix(names)
    mapping, missing = {}, []
    for key, spellings in KEY_SPELLINGS.items():
        found = _find(lower, spellings, path, key)
        if found is None:
            missing.append(f"{key} <- {' | '.join(spellings)}")
        else:
            mapping[key] = found
    for canonical in SFR_COLUMNS:
        found = _find(lower, _sfr_spellings(canonical, prefix), path, canonical)
        if found is not None:
            mapping[canonical] = found
        elif canonical in REQUIRED_SFR:
            missing.append(_expected(canonical, prefix))
    if missing:
        shown = ", ".join(names[:40]) + (
            f", ... ({len(names)} columns)" if len(names) > 40 else ""
        )
        note = ""
        if "AVG" not in mapping and "MEDIAN" in mapping and prefix is not None:
            note = (
                f" ({mapping['MEDIAN']} is the median of the SFR PDF, mapped to MEDIAN; the "
                "label is the mean, AVG, which galSpecExtra does not have)"
            )
        raise ValueError(
            f"{path}: cannot map the label column(s) {', '.join(m.split(' ')[0] for m in missing)}"
            f"; expected (case-insensitive) {'; '.join(missing)}{note}; the table has: {shown}"
        )
    for name in GAL_INFO_COLUMNS:  # carried along when named exactly as in gal_info
        if name not in mapping and name in names:
            mapping[name] = name
    return mapping, prefix


# -- values ----------------------------------------------------------------------------------
def _shown(value):
    """A cell as a message shows it: text quoted, numbers plain (``inf``, ``0.5``)."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if hasattr(value, "item") else value)


def _where(path, column, row, keys):
    ids = ""
    if keys is not None:
        ids = " (" + ", ".join(f"{k} {int(keys[k])}" for k in _KEYS) + ")"
    return f"{path}: column {column!r}, row {row + 1}{ids}"


def _to_float(raw):
    """Float values of a column and which cells were blank (empty, ``nan``, masked)."""
    if raw.dtype.kind in "biuf":
        numbers = raw.astype(np.float64)
        return numbers, numbers.isna()
    text = raw.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    numbers = pd.to_numeric(text, errors="coerce").astype(np.float64)
    blank = text.map(
        lambda v: v is None or (isinstance(v, str) and v.strip().lower() in ("", "nan"))
    )
    return numbers, blank.astype(bool) | (numbers.isna() & text.isna())


def _as_numbers(values, path, column, rows, keys=None, canonical=None):
    """Float values of a catalogue column; text or infinite values are errors naming the row.

    ``rows`` are the 0-based table rows of ``values`` (messages count rows from 1, the first
    data row); ``keys`` (a DataFrame aligned with ``values``) names the object in messages.
    A blank cell is NaN, a missing value.
    """
    raw = values.reset_index(drop=True)
    numbers, blank = _to_float(raw)
    bad = (numbers.isna() & ~blank) | np.isinf(numbers)
    what = "a finite number"
    if canonical == "FLAG":
        bad |= np.isfinite(numbers) & ((numbers < 0) | (numbers % 1 != 0))
        what = "a non-negative whole number (MPA FLAG)"
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        key_row = None if keys is None else keys.iloc[i]
        more = int(bad.sum()) - 1
        raise ValueError(
            f"{_where(path, column, int(rows[i]), key_row)}: {_shown(raw.iloc[i])} is not {what}"
            f"{f' (and {more} more such rows)' if more else ''}"
        )
    return numbers


def _key_frame(columns, path, names, rows=None):
    """``PLATEID, MJD, FIBERID`` as int64; a value that is not a whole number is an error."""
    out = {}
    for key in _KEYS:
        values = columns[key].reset_index(drop=True)
        idx = np.arange(len(values)) if rows is None else rows
        numbers, _ = _to_float(values)
        bad = ~np.isfinite(numbers) | (numbers % 1 != 0) | (numbers < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{_where(path, names[key], int(idx[i]), None)}: {_shown(values.iloc[i])} is "
                f"not an SDSS {key} (a whole number)"
            )
        out[key] = numbers.astype(np.int64).to_numpy()
    return pd.DataFrame(out)


def _wanted_rows(key_frame, keys):
    if keys is None:
        return np.arange(len(key_frame))
    wanted = pd.MultiIndex.from_frame(pd.DataFrame(keys)[list(_KEYS)].astype(np.int64))
    return np.flatnonzero(pd.MultiIndex.from_frame(key_frame).isin(wanted))


def _unique_on_keys(table, rows, path):
    """One row per key: repeated rows that agree collapse, rows that disagree are an error."""
    dup = table.duplicated(list(_KEYS), keep=False)
    if not dup.any():
        return table
    values = [c for c in table.columns if c not in _KEYS]
    for _, group in table[dup].groupby(list(_KEYS), sort=False):
        first = group[values].iloc[0]
        for j in range(1, len(group)):
            other = group[values].iloc[j]
            same = all(
                (pd.isna(a) and pd.isna(b)) or a == b
                for a, b in zip(first.tolist(), other.tolist())
            )
            if not same:
                which = ", ".join(str(int(rows[i]) + 1) for i in group.index)
                key = ", ".join(f"{k} {int(group[k].iloc[0])}" for k in _KEYS)
                raise ValueError(
                    f"{path}: rows {which} are all {key} but their values differ: which one "
                    "labels the spectrum is ambiguous; keep one row per object"
                )
    return table[~table.duplicated(list(_KEYS))]


def _finish(table, rows, path):
    """Numbers checked, one row per key, FLAG as float (as the reference stores it)."""
    if "Z" in table:  # the catalogue's redshift is the objects' redshift where it has one
        table["Z"] = _as_numbers(table["Z"], path, "Z", rows, table[list(_KEYS)]).to_numpy()
    table = _unique_on_keys(table, rows, path)
    for k in _KEYS:
        table[k] = table[k].astype(np.int64)
    if "FLAG" in table:
        table["FLAG"] = table["FLAG"].astype(np.float64)
    return table.reset_index(drop=True)


# -- the two forms ---------------------------------------------------------------------------
class LabelTable:
    """A label table in any astropy format, matched to spectra on their identifiers.

    Reading and mapping the columns happen at construction (before any spectrum is read), so
    a table the ingest cannot use fails at once.

    Parameters
    ----------
    path : str or path-like
        FITS, CSV, ECSV, VOTable or any other table astropy reads.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._table = _read_table(path)
        self.mapping, self.prefix = map_label_columns(self._table.colnames, path)
        columns = {k: _table_column(self._table, self.mapping[k], path) for k in _KEYS}
        self._keys = _key_frame(columns, path, self.mapping)

    @property
    def sfr_source(self):
        """What the cube records as the label source (layout doc section 11)."""
        kind = {None: "", "sfr_tot_": " (sfr_tot_*)", "sfr_fib_": " (fibre SFR, sfr_fib_*)"}
        return f"{self.path.name}{kind[self.prefix]}"

    def select(self, keys=None):
        """The rows of the spectra with these keys (all rows if None), under our names."""
        rows = _wanted_rows(self._keys, keys)
        table = self._keys.iloc[rows].reset_index(drop=True)
        for canonical in SFR_COLUMNS:
            if canonical in self.mapping:
                name = self.mapping[canonical]
                table[canonical] = _as_numbers(
                    _table_column(self._table, name, self.path, rows),
                    self.path,
                    name,
                    rows,
                    table,
                    canonical,
                ).to_numpy()
        for name in GAL_INFO_COLUMNS:
            if name in self.mapping and name not in table:
                try:
                    table[name] = _table_column(self._table, name, self.path, rows).to_numpy()
                except ValueError:  # a vector column under a gal_info name: not carried
                    continue
        return _finish(table, rows, self.path)


class MpaPair:
    """The DR7 ``gal_info`` + ``gal_totsfr`` / ``gal_fibsfr`` files.

    The SFR file's row ``i`` describes gal_info's row ``i`` (the catalogue's definition),
    unless the SFR file carries ``PLATEID, MJD, FIBERID`` itself: then those are used.
    """

    def __init__(self, info_path, sfr_path):
        self.info_path, self.sfr_path = Path(info_path), Path(sfr_path)
        # Only the headers here: the data are read once, for the spectra's rows, in select.
        names, self._n_info = _fits_layout(info_path, "gal_info table")
        missing = [k for k in _KEYS if k not in names]
        if missing:
            raise ValueError(f"{info_path}: gal_info lacks column(s) {', '.join(missing)}")
        names, n_sfr = _fits_layout(sfr_path, "SFR table")
        lower = _by_lower(names)
        self._sfr_names = {}
        for c in SFR_COLUMNS:
            found = _find(lower, (c,), sfr_path, c)
            if found is not None:
                self._sfr_names[c] = found
        missing = [c for c in SFR_COLUMNS if c not in self._sfr_names]
        if missing:
            raise ValueError(f"{sfr_path}: SFR table lacks column(s) {', '.join(missing)}")
        self._sfr_keys = {}
        for k, spellings in KEY_SPELLINGS.items():
            found = _find(lower, spellings, sfr_path, k)
            if found is not None:
                self._sfr_keys[k] = found
        self.sfr_has_keys = len(self._sfr_keys) == len(_KEYS)
        if not self.sfr_has_keys and n_sfr != self._n_info:
            raise ValueError(
                f"{sfr_path} has {n_sfr} rows but {info_path} has {self._n_info}: the "
                "MPA-JHU files are joined row by row and must come from the same release"
            )

    @property
    def sfr_source(self):
        return self.sfr_path.name

    def select(self, keys=None):
        with _fits_table(self.info_path, "gal_info table") as info:
            names = info.columns.names
            key_cols = {k: _column(info, k, self.info_path) for k in _KEYS}
            info_keys = _key_frame(key_cols, self.info_path, {k: k for k in _KEYS})
            rows = _wanted_rows(info_keys, keys)
            cols = [
                c
                for c in GAL_INFO_COLUMNS
                if c in names and c not in _KEYS and np.ndim(info[c][:1]) == 1
            ]
            part = info[rows]
            table = info_keys.iloc[rows].reset_index(drop=True)
            for c in cols:
                table[c] = _column(part, c, self.info_path).to_numpy()
        with _fits_table(self.sfr_path, "SFR table") as sfr:
            if self.sfr_has_keys:
                key_cols = {k: _column(sfr, self._sfr_keys[k], self.sfr_path) for k in _KEYS}
                sfr_keys = _key_frame(key_cols, self.sfr_path, self._sfr_keys)
                sfr_rows = _wanted_rows(sfr_keys, keys)
                values = sfr_keys.iloc[sfr_rows].reset_index(drop=True)
            else:  # row-aligned with gal_info by definition
                sfr_rows = rows
                values = table[list(_KEYS)].copy()
            part = sfr[sfr_rows]
            for c in SFR_COLUMNS:
                name = self._sfr_names[c]
                values[c] = _as_numbers(
                    _column(part, name, self.sfr_path), self.sfr_path, name, sfr_rows, values, c
                ).to_numpy()
        if not self.sfr_has_keys:
            table = pd.concat([table, values.drop(columns=list(_KEYS))], axis=1)
            return _finish(table, rows, self.info_path)
        info_part = _finish(table, rows, self.info_path)
        values = _finish(values, sfr_rows, self.sfr_path)
        # The labels come from the SFR rows; gal_info adds what it knows about them.
        return values.merge(info_part, how="left", on=list(_KEYS))


def open_labels(labels=None, mpa_info=None, mpa_sfr=None):
    """The label source of an ingest: a :class:`LabelTable`, an :class:`MpaPair` or None."""
    if labels is not None:
        return LabelTable(labels)
    if mpa_info is not None:
        return MpaPair(mpa_info, mpa_sfr)
    return None


def read_mpa_jhu(info_path, sfr_path, keys=None):
    """The MPA-JHU rows of the given spectra: gal_info columns plus the SFR columns.

    Parameters
    ----------
    info_path : str or path-like
        ``gal_info_dr7_v5_2.fit(.gz)``: a binary table in HDU1 with ``PLATEID, MJD, FIBERID``
        and the gal_info columns (vector columns such as ``PLUG_MAG`` are ignored).
    sfr_path : str or path-like
        ``gal_totsfr_dr7_v5_2.fits`` or ``gal_fibsfr_dr7_v5_2.fits``: HDU1 with ``AVG, ENTROPY,
        FLAG, MEDIAN, MODE, P16, P2P5, P84, P97P5``, row ``i`` describing gal_info row ``i``
        (or, when it has ``PLATEID, MJD, FIBERID`` columns of its own, joined on those).
    keys : DataFrame with columns PLATEID, MJD, FIBERID, default=None
        Keep only catalogue rows with these keys (the whole catalogue is 927,552 rows); None
        keeps all.

    Returns
    -------
    DataFrame
        One row per kept catalogue row, unique on ``PLATEID, MJD, FIBERID`` (repeated rows
        that agree are kept once), ``FLAG`` as float as the reference stores it.

    Raises
    ------
    ValueError
        A file lacks a column, the two files differ in length, a used value is text or
        infinite, or repeated rows of one key disagree; the message names the file (and the
        column and row).
    """
    return MpaPair(info_path, sfr_path).select(keys)
