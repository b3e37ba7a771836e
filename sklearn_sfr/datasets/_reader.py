"""Lazy, read-only access to HiSS-Cube files.

Reads files written by the reference implementation and by :mod:`sklearn_sfr`. The reference's
traps (``hisscube-layout.md`` sections 5.3, 7, 9 and 11) are handled here: bands come back as
u, g, r, i, z whatever order they were stored in, wavelengths are recomputed, dense image errors
that are really ``|flux|`` are recovered through the cutout references or refused, and several
spectra (and label rows) per object are combined by an explicit label policy.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import OrderedDict
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ._layout import (
    BAND_NAMES,
    CUTOUT_SIZES,
    MERGED_LABEL_KEY,
    SFR_COLUMNS,
    SPECTRUM_REDSHIFT_KEY,
    TARGET_TABLE_KEY,
    ZOOMS,
    inverse_variance_stack,
    n_wavelength,
    wavelength_grid,
)

#: Label columns combined across an object's spectra.
_LABEL_COLUMNS = ("AVG", "MEDIAN", "P16", "P84")

#: Per-object columns taken from the object's first spectrum.
_FIRST_SPECTRUM_COLUMNS = ("PLATEID", "MJD", "FIBERID", "RA", "DEC", "Z")

LABEL_POLICIES = ("ivar", "first")

#: Fields of a cutout reference: the frame, its row and the window (layout doc section 4.3).
_REGION_FIELDS = ("ds_path", "ds_slice_idx", "x_min", "x_max", "y_min", "y_max")

#: The spectrum references that map objects to spectra (and so to label rows).
_SPECTRUM_REFS = "dense_cube/0/ml_spectrum/spec_metadata_refs"

#: MPA-JHU's "no estimate" sentinels: -99 in the DR7 files, -9999 in the CAS galSpec tables.
#: A value below them (-1e30, -inf) is damage, not a sentinel, and is left for the loader's
#: label check to refuse.
_SENTINEL_RANGE = (-9999.0, -99.0)


#: The per-object frames of the cubes read last, by file identity (see
#: ``HiSSCube._frame_key``): building one takes tens of milliseconds (the label tables, the
#: label policy), the whole cost of a small load, and a resolution grid or a repeated load
#: reads the same cube again and again. A file that is rewritten or edited gets
#: another key (its size, modification or change time, or inode changes), so it is built anew.
_FRAMES = OrderedDict()
_FRAMES_KEPT = 2  # about 0.6 kB an object each: 5 MB for 8,000 objects
_FRAMES_LOCK = threading.Lock()


class HiSSCubeFormatError(ValueError):
    """A file is not a readable HiSS-Cube: the message names the file and the HDF5 path.

    Examples
    --------
    >>> import os, tempfile, h5py
    >>> from sklearn_sfr.datasets import HiSSCube, HiSSCubeFormatError
    >>> path = os.path.join(tempfile.mkdtemp(), "empty.h5")
    >>> h5py.File(path, "w").close()
    >>> try:
    ...     HiSSCube(path)
    ... except HiSSCubeFormatError as error:
    ...     print(str(error).split(": ")[-1])
    not a HiSS-Cube ML cube
    """


def _first(mask):
    """Index (a tuple) of the first True of a boolean array, in C order."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _unique(values):
    """The distinct values of an array: usually one path, found without a sort."""
    values = values.ravel()
    if not values.size:
        return values
    if (values == values[0]).all():
        return values[:1]
    return np.unique(values)


def _rows_text(rows):
    """``"rows 3 to 9"`` for the sorted rows of a read (empty for no rows)."""
    if rows is None or not len(rows):
        return ""
    lo, hi = int(rows[0]), int(rows[-1])
    return f", row {lo}" if lo == hi else f", rows {lo} to {hi}"


def _index_rows(index, n):
    """Normalise an index selection to (sorted unique rows, inverse, output shape)."""
    if index is None:
        rows = np.arange(n)
        return rows, None, False
    if isinstance(index, slice):
        rows = np.arange(n)[index]
        if np.all(np.diff(rows) > 0):
            return rows, None, False
        uniq, inverse = np.unique(rows, return_inverse=True)
        return uniq, inverse, False
    arr = np.asarray(index)
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"boolean index has shape {arr.shape}, expected ({n},)")
        return np.flatnonzero(arr), None, False
    if arr.dtype.kind not in "iu":
        raise IndexError(f"index must be integers, a slice or a boolean mask, got {arr.dtype}")
    if arr.ndim != 1:
        raise IndexError(f"index must be 1-D, got shape {arr.shape}")
    arr = np.where(arr < 0, arr + n, arr)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise IndexError(f"index out of range for {n} objects")
    if not scalar and np.all(arr[1:] > arr[:-1]):  # sorted and distinct: read as it is
        return arr, None, False
    uniq, inverse = np.unique(arr, return_inverse=True)
    return uniq, inverse, scalar


#: The most a read holds besides its output: scattered rows (a FLAG selection), another stored
#: dtype than float32, or reference tables are read a window of whole chunks at a time into a
#: buffer of about this size, never as one slab of the whole run.
_WINDOW_BYTES = 4 << 20


def _window_rows(ds, chunk):
    """Rows per read window: whole chunks, about ``_WINDOW_BYTES`` (at least one chunk)."""
    row_bytes = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
    return max(chunk, _WINDOW_BYTES // row_bytes // chunk * chunk)


def _read_rows(ds, rows, gap=None, dest=None, dtype=None, convert=None, direct=False):
    """Read sorted unique ``rows`` of ``ds`` along axis 0 with contiguous reads.

    Runs of rows closer than one chunk are read as one slab and subselected, so a batch costs a
    few large reads rather than one read per row. ``dest`` (a permutation) puts the row read
    ``k``-th at output position ``dest[k]``: a shuffled batch lands in its order straight from
    the slab, without a second copy. Without ``dest`` a run of consecutive rows goes straight
    into the output, and other runs (scattered rows, or ``dtype`` not the stored one: cast as
    ``astype`` casts) go through one reused buffer of about ``_WINDOW_BYTES``, so that nothing
    but the output grows with the number of rows.

    ``convert`` (without ``dest``; see ``_selection.SDSS_UNITS``) changes the values while
    they are still in the CPU's cache, where a second pass over a large output would read and
    write all of it from memory again (a fifth more than the read): a run of consecutive rows
    is read chunk by chunk with :func:`_read_chunks` where ``direct`` (see
    :func:`_direct_chunks`), else whole and then converted (HDF5's partial reads, a window at a
    time, cost more per call than the second pass saves); other runs are converted a window at
    a time as they leave the buffer.
    """
    out = np.empty((rows.size, *ds.shape[1:]), dtype=ds.dtype if dtype is None else dtype)
    if rows.size == 0:
        return out
    chunk = ds.chunks[0] if ds.chunks else 64
    if gap is None:
        gap = chunk
    breaks = np.flatnonzero(np.diff(rows) > gap) + 1
    if dest is not None and breaks.size == 0:
        # One slab holds the whole batch (the usual case: a batch within a chunk block):
        # gather it in the batch's order with a single copy.
        lo = int(rows[0])
        source = np.empty(rows.size, dtype=np.intp)
        source[dest] = rows - lo
        # mode="clip": the indices are valid, and "raise" would buffer the output (a copy).
        return np.take(ds[lo : int(rows[-1]) + 1], source, axis=0, out=out, mode="clip")
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [rows.size]])
    step = _window_rows(ds, chunk)
    buffer = None  # one window buffer for every run that needs one
    for a, b in zip(starts, stops):
        lo, hi = int(rows[a]), int(rows[b - 1]) + 1
        consecutive = hi - lo == b - a
        if dest is not None:
            slab = ds[lo:hi]
            out[dest[a:b]] = slab if consecutive else slab[rows[a:b] - lo]
        elif consecutive and out.dtype == ds.dtype:
            # A run of consecutive rows: straight into the output, no intermediate copy.
            if convert is not None and direct:
                _read_chunks(ds, lo, hi, out[a:b], convert)
            else:
                ds.read_direct(out, np.s_[lo:hi], np.s_[a:b])
                if convert is not None:
                    convert(out[a:b])
        else:
            if buffer is None:
                span = int(rows[-1]) - int(rows[a]) + 1  # no later run's window is longer
                buffer = np.empty((min(step, span), *ds.shape[1:]), dtype=ds.dtype)
            _read_run(ds, rows[a:b], out[a:b], step, buffer, convert)
    return out


def _windows(lo, hi, step):
    """``(start, stop)`` of the windows of file rows ``lo:hi``, cut at multiples of ``step``
    (whole chunks: no chunk is read by two windows)."""
    return [(max(s, lo), min(s + step, hi)) for s in range(lo - lo % step, hi, step)]


def _direct_chunks(ds):
    """Whether ``ds`` can be read with :func:`_read_chunks`: chunked by whole rows, every
    chunk written, no filter, and stored as native float32, so that a chunk's bytes on disk
    are its rows as returned."""
    return (
        ds.chunks is not None
        and tuple(ds.chunks[1:]) == tuple(ds.shape[1:])
        and ds.dtype == np.dtype(np.float32)
        and ds.id.get_create_plist().get_nfilters() == 0
        and ds.id.get_num_chunks() == -(-ds.shape[0] // ds.chunks[0])
    )


def _read_chunks(ds, lo, hi, out, convert):
    """File rows ``lo:hi`` of ``ds`` (see :func:`_direct_chunks`) into ``out``, converted.

    Each chunk is read with HDF5's direct chunk read into one reused buffer, and ``convert``
    writes it from there into ``out``: the buffer stays in the CPU's cache, so the unit change
    reads nothing from memory and each value is written once, as a plain read writes it.
    Converting ``out`` in place instead would read every value back from memory (the kernel's
    large copies do not leave it in the cache) and cost about a fifth more than the read.
    """
    c = ds.chunks[0]
    buffer = np.empty((c, *ds.shape[1:]), dtype=np.float32)
    raw = buffer.reshape(-1).view(np.uint8)
    zeros = (0,) * (ds.ndim - 1)
    for w0, w1 in _windows(lo, hi, c):
        start = w0 - w0 % c
        ds.id.read_direct_chunk((start, *zeros), out=raw)  # whole chunk, the last one padded
        convert(buffer[w0 - start : w1 - start], out[w0 - lo : w1 - lo])


def _read_run(ds, rows, out, step, buffer, convert=None):
    """Sorted ``rows`` (one run) of ``ds`` into ``out``, one window of file rows (aligned on
    multiples of ``step``: whole chunks) at a time through ``buffer``; ``convert`` as in
    :func:`_read_rows`."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    i = 0
    for w0, w1 in _windows(lo, hi, step):
        j = int(np.searchsorted(rows, w1))
        if j == i:
            continue
        window = buffer[: w1 - w0]
        ds.read_direct(window, np.s_[w0:w1], np.s_[0 : w1 - w0])
        if j - i == w1 - w0:  # every row of the window
            out[i:j] = window
        elif window.dtype == out.dtype:
            np.take(window, rows[i:j] - w0, axis=0, out=out[i:j], mode="clip")
        else:
            out[i:j] = window[rows[i:j] - w0]
        if convert is not None:
            convert(out[i:j])
        i = j


def _shuffled_rows(index, n):
    """``(sorted rows, where each goes)`` for a 1-D integer array of distinct in-range rows in
    any order (a shuffled batch), else None (the general path handles the rest)."""
    if not isinstance(index, np.ndarray) or index.ndim != 1 or index.dtype.kind not in "iu":
        return None
    if np.all(index[1:] > index[:-1]):
        return None  # already in file order: the general path reads it without a copy
    order = np.argsort(index, kind="stable")
    rows = index[order]
    if rows.size and (rows[0] < 0 or rows[-1] >= n or not np.all(rows[1:] != rows[:-1])):
        return None
    return rows, order


def check_cube(path):
    """Refuse, before any work, a path that is not a readable HiSS-Cube.

    Every command and function that runs for long on a cube (a study, tuning, a fit) calls
    this first, so a missing file or a damaged zoom fails at once, not after an hour of work.

    Parameters
    ----------
    path : str or path-like
        The cube.

    Returns
    -------
    path : Path
        The same path.

    Raises
    ------
    FileNotFoundError
        If no file is there.
    IsADirectoryError
        If ``path`` is a folder.
    HiSSCubeFormatError
        If the file is not a HiSS-Cube or one of its datasets is damaged.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a cube: give the cube's .h5 file")
    if not path.is_file():
        raise FileNotFoundError(f"cube not found: {path}")
    with HiSSCube(path) as cube:
        cube.validate()
    return path


class HiSSCube:
    """A HiSS-Cube HDF5 file, opened read-only and read lazily.

    Nothing is read until asked; each ``read_*`` call reads only the selected objects, by
    contiguous chunk reads. Works on files written by the reference implementation
    (github.com/nadvornikjiri/HiSS-Cube) and by :func:`write_hisscube`.

    Parameters
    ----------
    path : str or path-like
        The cube file.
    label_policy : {"ivar", "first"}, default="ivar"
        How an object observed by several spectra (several label rows) gets one label:
        ``"ivar"`` is the inverse-variance mean of the AVG (and MEDIAN, P16, P84) values of its
        FLAG=0 spectra, with the variance from ``(P84 - P16) / 2`` (an object without a FLAG=0
        spectrum combines its least-flagged ones, and its FLAG says so); ``"first"`` takes the
        earliest spectrum, the reference's own order.

    Attributes
    ----------
    path : pathlib.Path
    n_objects : int
        Number of objects (dense rows).
    zooms : tuple of int
        Available zoom levels, ``(0, 1, 2, 3)``.
    band_names : tuple of str
        ``("u", "g", "r", "i", "z")``: the order every image is returned in.
    is_reference : bool
        True for files written by the reference implementation.
    noise_floor : float or None
        RMSE of the label against the true value, where the file knows it (synthetic cubes).

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn_sfr.datasets import HiSSCube, make_synthetic_cube
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"),
    ...                            n_objects=12, random_state=0)
    >>> with HiSSCube(path) as cube:
    ...     print(cube.n_objects, cube.band_names)
    ...     print(cube.read_images([0, 3], zoom=2).shape)
    ...     print(cube.read_spectra(slice(0, 2), level=1).shape)
    12 ('u', 'g', 'r', 'i', 'z')
    (2, 5, 16, 16)
    (2, 2310)
    """

    def __init__(self, path, *, label_policy="ivar"):
        import h5py

        if label_policy not in LABEL_POLICIES:
            raise ValueError(f"label_policy must be one of {LABEL_POLICIES}, got {label_policy!r}")
        self.label_policy = label_policy
        self.path = Path(os.fspath(path))
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise HiSSCubeFormatError(f"{self.path} is a folder, not a HiSS-Cube file")
        if not h5py.is_hdf5(self.path):
            raise HiSSCubeFormatError(f"{self.path} is not an HDF5 file")
        self._open = {}
        self._chunk_rows = {}  # h5py looks the layout up anew at every call
        self._checked = {}
        self._dtypes = {}
        self._direct = {}  # per dataset: whether _read_chunks can read it
        try:
            # A chunk cache of 4 MiB per dataset (HDF5's default: 1 MiB) holds a few of our
            # ~1 MiB chunks, so batches that end and start inside one chunk read it once.
            self._file = h5py.File(self.path, "r", rdcc_nbytes=4 << 20)
        except OSError as exc:
            raise HiSSCubeFormatError(
                f"{self.path} cannot be opened as HDF5 (truncated or damaged?): {exc}"
            ) from exc
        try:
            if not isinstance(self._file.get("dense_cube"), h5py.Group):
                raise HiSSCubeFormatError(
                    f"{self.path} has no /dense_cube group: not a HiSS-Cube ML cube"
                )
            self.n_objects = self._count_objects()
            self.is_reference = "written_by" not in self._file.attrs
            self.noise_floor = self._noise_floor(self._file.attrs.get("noise_floor"))
        except (OSError, RuntimeError) as exc:  # a damaged object header or attribute
            self._file.close()
            raise HiSSCubeFormatError(
                f"{self.path}: cannot read the file's layout: {exc}"
            ) from exc
        except Exception:
            self._file.close()
            raise
        self.zooms = ZOOMS
        self.band_names = BAND_NAMES
        self._band_perm = {}

    def _noise_floor(self, value):
        """The root attribute ``noise_floor`` as a float, or None (with a warning when it is
        there but not a non-negative number: it is informative, so it never stops a read)."""
        if value is None:
            return None
        try:
            number = float(np.asarray(value).item())
        except (TypeError, ValueError):
            number = np.nan
        if np.isfinite(number) and number >= 0:
            return number
        warnings.warn(
            f"{self.path}: the root attribute noise_floor is {value!r}, not a non-negative "
            "number; the noise floor is treated as unknown",
            stacklevel=3,
        )
        return None

    # -- plumbing ---------------------------------------------------------------------------
    def _read_error(self, name, exc, rows=None):
        """The error for an HDF5 read that failed (a damaged chunk: "filter returned
        failure", "Can't read data"): it names the file, the dataset and the rows."""
        return HiSSCubeFormatError(
            f"{self.path}: cannot read {name}{_rows_text(rows)} (damaged file?): {exc}"
        )

    def _read_whole(self, name, selection=Ellipsis, fields=None):
        """``dataset[selection]`` of ``name`` (a reference table when ``fields`` is given),
        with a read failure naming the file and the dataset."""
        ds = self._dataset(name) if fields is None else self._compound(name, fields)
        try:
            return ds[selection]
        except (OSError, RuntimeError) as exc:
            raise self._read_error(name, exc) from exc

    def _dataset(self, name):
        # Open each dataset once: a batch loop then reuses its handle and HDF5 chunk cache
        # (a chunk that two consecutive batches share is read from the file once).
        obj = self._open.get(name)
        if obj is not None:
            return obj
        try:
            obj = self._file[name]
        except KeyError:
            raise HiSSCubeFormatError(f"{self.path} has no dataset {name}") from None
        except (OSError, RuntimeError) as exc:
            raise HiSSCubeFormatError(f"{self.path}: cannot read {name}: {exc}") from exc
        self._open[name] = obj
        return obj

    def _compound(self, name, fields=("ds_path", "ds_slice_idx")):
        """A region-reference table, refused clearly when it lacks the reference fields."""
        ds = self._dataset(name)
        missing = [f for f in fields if f not in (ds.dtype.names or ())]
        if missing:
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has dtype {ds.dtype}, not a reference table with the "
                f"fields {list(fields)} (missing {missing})"
            )
        return ds

    def _count_objects(self):
        dense = self._file["dense_cube"]
        if "target_count" in dense.attrs:
            value = np.asarray(dense.attrs["target_count"])
            if value.shape != () or value.dtype.kind not in "iu" or value < 0:
                raise HiSSCubeFormatError(
                    f"{self.path}: /dense_cube@target_count must be a non-negative integer, "
                    f"got {dense.attrs['target_count']!r}"
                )
            n = int(value)
        else:
            # A reference file with no spectra has no target_count (section 6).
            name = "dense_cube/0/ml_spectrum/spectral_1d_cube_zoom_0"
            n = self._dataset(name).shape[0] if name in self._file else 0
        return n

    def _check_zoom(self, zoom, what="zoom"):
        if zoom not in ZOOMS:
            raise ValueError(f"{what} must be one of {ZOOMS}, got {zoom!r}")

    def _array(self, name, expected_tail):
        """The numeric dataset ``name`` of shape (>= n_objects, *expected_tail), or a clear
        error naming the file, the dataset and what is wrong."""
        import h5py

        ds = self._dataset(name)
        if not isinstance(ds, h5py.Dataset) or not ds.shape:
            raise HiSSCubeFormatError(
                f"{self.path}: {name} is not an array dataset (found {type(ds).__name__} "
                f"{getattr(ds, 'shape', '')})"
            )
        if ds.shape[0] < self.n_objects:
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has {ds.shape[0]} rows but the cube has "
                f"{self.n_objects} objects"
            )
        if tuple(ds.shape[1:]) != tuple(expected_tail):
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has shape {ds.shape}, expected (n, "
                f"{', '.join(map(str, expected_tail))})"
            )
        if ds.dtype.kind not in "iuf":
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has dtype {ds.dtype}, expected floating-point numbers"
            )
        return ds

    def _read(self, name, index, expected_tail, convert=None):
        """``(float32 values, sorted rows, inverse, scalar)`` of ``index`` (see
        :func:`_index_rows`), with ``convert`` applied as they are read (see
        :func:`_read_rows`)."""
        ds = self._checked.get(name)
        if ds is None:  # check the layout once, not at every batch
            ds = self._checked[name] = self._array(name, expected_tail)
            self._chunk_rows[name] = ds.chunks[0] if ds.chunks else 64
            self._dtypes[name] = ds.dtype
            self._direct[name] = _direct_chunks(ds)
        gap, dtype = self._chunk_rows[name], self._dtypes[name]
        # A batch of distinct rows in any order (not a reference cube, whose repairs need the
        # sorted rows): read in file order, each row written straight to its place.
        shuffled = None if self.is_reference else _shuffled_rows(index, self.n_objects)
        rows = None
        try:
            if shuffled is not None:
                rows = shuffled[0]
                out = _read_rows(ds, rows, gap, dest=shuffled[1], dtype=dtype)
                out = out.astype(np.float32, copy=False)
                if convert is not None:  # a batch: small, still in the cache
                    convert(out)
                return out, index, None, False
            rows, inverse, scalar = _index_rows(index, self.n_objects)
            # float32 from the start: another stored dtype is cast window by window.
            out = _read_rows(
                ds, rows, gap, dtype=np.float32, convert=convert, direct=self._direct[name]
            )
        except (OSError, RuntimeError) as exc:
            raise self._read_error(name, exc, rows) from exc
        if inverse is not None:
            out = out[inverse]
        return (out[0] if scalar else out), rows, inverse, scalar

    def close(self):
        """Close the file."""
        self._open.clear()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        kind = "reference" if self.is_reference else "sklearn-sfr"
        return f"HiSSCube({str(self.path)!r}, n_objects={self.n_objects}, written_by={kind})"

    # -- geometry ---------------------------------------------------------------------------
    def wavelength(self, level=0):
        """Return the wavelength grid of a spectral level (recomputed, never read).

        Parameters
        ----------
        level : {0, 1, 2, 3}, default=0
            Spectral level: 4620, 2310, 1155 or 577 pixels.

        Returns
        -------
        ndarray of float64, shape (L,)
            Observed-frame vacuum wavelengths in Angstrom, one per pixel of
            :meth:`read_spectra` at the same ``level``.
        """
        self._check_zoom(level, "level")
        return wavelength_grid(level)

    def image_size(self, zoom=0):
        """Return the side of the image cutouts at a zoom level.

        Parameters
        ----------
        zoom : {0, 1, 2, 3}, default=0
            Image zoom level.

        Returns
        -------
        int
            Cutout side in pixels: 64, 32, 16 or 8.
        """
        self._check_zoom(zoom)
        return CUTOUT_SIZES[zoom]

    def has_images(self):
        """Tell whether the file holds image cutouts.

        Returns
        -------
        bool
            True when the cube has image cutouts; False for a spectrum-only cube.
        """
        return "dense_cube/0/ml_image/cutout_3d_cube_zoom_0" in self._file

    def validate(self):
        """Check the layout without reading the arrays; return ``self``.

        Every zoom's image cutouts and errors (when the cube has images) and band order,
        every level's spectra and errors, their shapes, dtypes and row counts, the spectrum
        references (each row in range, no spectrum shared) and the label table are checked,
        so that a damaged cube fails here, with the file and the HDF5 path in the message,
        instead of in the middle of a long run. (The cutout references of reference builds
        are checked object by object when their errors are read.)

        Returns
        -------
        self : HiSSCube
            The cube itself, so that ``HiSSCube(path).validate()`` chains.

        Raises
        ------
        HiSSCubeFormatError
            If a dataset is missing, has the wrong shape or dtype, or a reference or the
            label table is damaged.
        """
        for z in ZOOMS:
            if self.has_images():
                s = CUTOUT_SIZES[z]
                self._array(self._image_name(z), (5, s, s))
                self._array(f"dense_cube/{z}/ml_image/errors", (5, s, s))
            for name in (f"spectral_1d_cube_zoom_{z}", "errors"):
                self._array(f"dense_cube/{z}/ml_spectrum/{name}", (n_wavelength(z),))
            if self.has_images():  # the band order (reference builds: through the refs)
                self._band_permutation(z, np.arange(0))
        self.read_frame(slice(0, 0))  # builds the frame: checks the references and labels
        return self

    # -- images -----------------------------------------------------------------------------
    def _image_name(self, zoom):
        return f"dense_cube/{zoom}/ml_image/cutout_3d_cube_zoom_{zoom}"

    def _band_permutation(self, zoom, rows):
        """Per-row index that puts the stored band slots in u, g, r, i, z order."""
        if zoom in self._band_perm and self._band_perm[zoom].ndim == 1:
            return np.broadcast_to(self._band_perm[zoom], (rows.size, 5))
        ml = self._dataset(f"dense_cube/{zoom}/ml_image")
        if "bands" in ml.attrs:
            bands = [b.decode() if isinstance(b, bytes) else str(b) for b in ml.attrs["bands"]]
            perm = self._perm_from_bands(bands, f"dense_cube/{zoom}/ml_image@bands")
            self._band_perm[zoom] = perm  # one order for every object
            return np.broadcast_to(perm, (rows.size, 5))
        if zoom not in self._band_perm:
            self._band_perm[zoom] = self._resolve_reference_bands(zoom)
        return self._band_perm[zoom][rows]

    def _perm_from_bands(self, bands, where):
        if sorted(bands) != sorted(BAND_NAMES):
            raise HiSSCubeFormatError(
                f"{self.path}: {where} holds bands {bands}, expected one each of {BAND_NAMES}"
            )
        return np.array([bands.index(b) for b in BAND_NAMES])

    def _resolve_reference_bands(self, zoom):
        # Section 5.3: slot b holds the b-th band to appear in the first spectrum's cutout row;
        # the FILTER of each slot is in the header its metadata reference points to.
        name = f"dense_cube/{zoom}/ml_image/image_metadata_refs"
        refs = self._read_whole(name, np.s_[: self.n_objects, :, 0], ("ds_path", "ds_slice_idx"))
        empty = refs["ds_path"] == b""
        if empty.any():
            t = _first(empty)[0]
            raise HiSSCubeFormatError(
                f"{self.path}: {name}[{t}] has an empty band slot, so the band "
                "order of that object cannot be resolved"
            )
        # Every row is checked at once against the table it points into, before any is read:
        # h5py, like numpy, reads row -1 as the last row (another frame's header).
        for path in _unique(refs["ds_path"]):
            self._check_rows(
                name,
                refs["ds_slice_idx"],
                refs["ds_path"] == path,
                path,
                lambda where: f"{where[0]}, {where[1]}, 0",
            )
        cache = {}
        perms = np.empty((self.n_objects, 5), dtype=np.int64)
        for t in range(self.n_objects):
            bands = []
            for b, r in enumerate(refs[t]):
                key = (r["ds_path"], int(r["ds_slice_idx"]))
                if key not in cache:
                    cache[key] = self._band_of(key, f"{name}[{t}, {b}, 0]")
                bands.append(cache[key])
            perms[t] = self._perm_from_bands(bands, f"{name}[{t}]")
        return perms

    def _band_of(self, key, where):
        """The FILTER in the header that an image metadata reference points to."""
        path, row = key[0].decode("utf-8", "replace"), key[1]
        try:
            header = self._dataset(path.lstrip("/"))[row]["header"]
            return json.loads(header)["FILTER"].strip()
        except (OSError, RuntimeError) as exc:
            raise self._read_error(path, exc, [row]) from exc
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise HiSSCubeFormatError(
                f"{self.path}: {where} points to {path}[{row}], which has no header with a "
                f"FILTER keyword ({type(exc).__name__}: {exc})"
            ) from exc

    def _check_rows(self, name, rows, selected, path, position):
        """Refuse the references ``rows[selected]`` (their ``ds_slice_idx``) that are outside
        the dataset ``path`` they point into (h5py, like numpy, reads row -1 as the last).

        Vectorised over the whole table; the error names the file, the reference (``name``
        and ``position(index of the first bad one)``) and the dataset it points into.
        """
        text = path.decode("utf-8", "replace")
        shape = getattr(self._dataset(text.lstrip("/")), "shape", None)
        if not shape:
            raise HiSSCubeFormatError(
                f"{self.path}: {name}[{position(_first(selected))}] points to {text}, which "
                "is not a table"
            )
        n = shape[0]
        bad = selected & ((rows < 0) | (rows >= n))
        if bad.any():
            where = _first(bad)
            raise HiSSCubeFormatError(
                f"{self.path}: {name}[{position(where)}] has ds_slice_idx {int(rows[where])}, "
                f"outside the {n} rows of {text}"
            )

    def _apply_bands(self, images, zoom, rows, inverse, scalar):
        if zoom not in self._band_perm:
            self._band_permutation(zoom, rows[:0])  # resolves and caches the order
        stored = self._band_perm[zoom]
        if stored.ndim == 1 and (stored == np.arange(5)).all():
            return images  # stored u, g, r, i, z for every object: no copy
        perm = self._band_permutation(zoom, rows)
        if inverse is not None:
            perm = perm[inverse]
        if scalar:
            return images[perm[0]]
        return np.take_along_axis(images, perm[:, :, None, None], axis=1)

    def read_images(self, index=None, zoom=0):
        """Image cutouts of the selected objects.

        Parameters
        ----------
        index : None, int, slice, array of int or array of bool, default=None
            Objects to read (None: all); a boolean mask has one entry per object.
        zoom : {0, 1, 2, 3}, default=0
            64, 32, 16 or 8 pixels.

        Returns
        -------
        ndarray of float32, shape (n, 5, S, S)
            Bands always in the order u, g, r, i, z; an int ``index`` drops the first axis.
        """
        return self._read_images(index, zoom)

    def _read_images(self, index, zoom, convert=None):
        """:meth:`read_images`, then ``convert`` (in place, see :func:`_read_rows`)."""
        self._check_zoom(zoom)
        return self._read_banded(self._image_name(zoom), index, zoom, convert, self.is_reference)

    def _read_banded(self, name, index, zoom, convert, restack=False):
        """Cutouts of dataset ``name`` (images or their errors) in u, g, r, i, z order, each
        object's multi-frame stack rebuilt where ``restack`` (a reference-built cube's
        images), then ``convert``: while they are read where :meth:`_fused` allows, else on
        the result, this read's own array (permuted or restacked: a new one)."""
        s = CUTOUT_SIZES[zoom]
        fused = self._fused(zoom, convert)
        out, rows, inverse, scalar = self._read(name, index, (5, s, s), fused)
        out = self._apply_bands(out, zoom, rows, inverse, scalar)
        if restack:
            out = self._restack_multi_frame(out, zoom, rows, inverse, scalar)
        if convert is not None and fused is None:
            convert(out)
        return out

    def _fused(self, zoom, convert):
        """``convert`` where it may run on cutouts as they are read: their stored bands are
        u, g, r, i, z for every object and nothing restacks them (a cube of ours), so what is
        read is what is returned; else None (``convert`` then runs on the result)."""
        if convert is None or self.is_reference:
            return None
        if zoom not in self._band_perm:
            self._band_permutation(zoom, np.arange(0))  # resolves and caches the order
        stored = self._band_perm[zoom]
        return convert if stored.ndim == 1 and (stored == np.arange(5)).all() else None

    def read_image_errors(self, index=None, zoom=0):
        """1-sigma errors of the image cutouts (same shape and band order as the images).

        Files written by sklearn-sfr store true errors. The reference stores ``|flux|`` in
        place of the dense errors (its bug: it stacks with sigma := flux); for those files the
        true errors are recovered through ``image_cutout_refs`` from the frames' errors and
        restacked. Where that is impossible (no frames in the file) the errors are NaN and a
        warning says why; ``|flux|`` is never returned as an error.

        Parameters
        ----------
        index : None, int, slice, array of int or array of bool, default=None
            Objects to read (None: all), as in :meth:`read_images`.
        zoom : {0, 1, 2, 3}, default=0
            64, 32, 16 or 8 pixels.

        Returns
        -------
        ndarray of float32, shape (n, 5, S, S)
            1-sigma errors in the units of :meth:`read_images`, bands in the order u, g, r,
            i, z; NaN where a reference-built cube's errors cannot be recovered.
        """
        return self._read_image_errors(index, zoom)

    def _read_image_errors(self, index, zoom, convert=None):
        """:meth:`read_image_errors`, then ``convert`` (in place, see :func:`_read_rows`)."""
        self._check_zoom(zoom)
        s = CUTOUT_SIZES[zoom]
        if not self.is_reference:
            return self._read_banded(f"dense_cube/{zoom}/ml_image/errors", index, zoom, convert)
        rows, inverse, scalar = _index_rows(index, self.n_objects)
        out = np.empty((rows.size, 5, s, s), dtype=np.float32)
        missing = 0
        for i, t in enumerate(rows):
            sigma = self._recover_from_refs(int(t), zoom)[1]
            if sigma is None:
                out[i] = np.nan
                missing += 1
            else:
                out[i] = sigma
        if missing:
            warnings.warn(
                f"{self.path}: this reference-built cube stores |flux| as its dense image "
                f"errors and {missing} of {rows.size} objects have no frame errors to recover "
                "them from; their image errors are returned as NaN",
                stacklevel=2,
            )
        if inverse is not None:
            out = out[inverse]
        out = out[0] if scalar else out
        if convert is not None:
            convert(out)
        return out

    def _recover_from_refs(self, t, zoom):
        """Restack object ``t``'s cutouts from the frames, in ugriz order.

        Returns ``(flux, sigma)``: both None when the referenced frames are not in the file;
        ``sigma`` None (and ``flux`` an unweighted mean) when only the frame errors are missing.
        """
        name = f"dense_cube/{zoom}/ml_image/image_cutout_refs"
        refs = self._read_whole(name, t, _REGION_FIELDS)  # (5, REF_SLOTS)
        s = CUTOUT_SIZES[zoom]
        self._check_windows(name, t, refs, s)
        flux = np.empty((5, s, s), dtype=np.float32)
        sigma = np.empty((5, s, s), dtype=np.float32)
        have_errors = True
        perm = self._band_permutation(zoom, np.array([t]))[0]
        for out_band, slot in enumerate(perm):
            fs, ss = [], []
            for r in refs[slot]:
                if not r["ds_path"]:
                    break  # readers stop at the first empty slot (section 4.3)
                data_path = r["ds_path"].decode()
                err_path = data_path.replace("/images/data", "/images/errors")
                window = (
                    int(r["ds_slice_idx"]),
                    slice(int(r["x_min"]), int(r["x_max"])),
                    slice(int(r["y_min"]), int(r["y_max"])),
                )
                cut = self._frame_window(data_path, window, s)
                if cut is None:
                    return None, None
                fs.append(cut)
                err = None if err_path == data_path else self._frame_window(err_path, window, s)
                if err is None:
                    have_errors = False
                else:
                    ss.append(err)
            if not fs:
                return None, None
            if have_errors:
                flux[out_band], sigma[out_band] = inverse_variance_stack(
                    np.stack(fs), np.stack(ss)
                )
            else:
                flux[out_band] = np.mean(fs, axis=0)
        return flux, (sigma if have_errors else None)

    def _check_windows(self, name, t, refs, size):
        """Refuse cutout references of object ``t`` that are not a ``size`` x ``size`` window
        inside the frame they name (a negative row or bound would wrap round in h5py).

        Frames that are not in the file are left to the caller (NaN and a warning).
        """
        filled = refs["ds_path"] != b""
        filled &= np.cumprod(filled, axis=1).astype(bool)  # readers stop at an empty slot
        for path in np.unique(refs["ds_path"][filled]):
            text = path.decode("utf-8", "replace")
            ds = self._file.get(text.lstrip("/"))
            if ds is None:
                continue
            where = filled & (refs["ds_path"] == path)
            shape = getattr(ds, "shape", ())
            if len(shape) != 3:
                b, k = _first(where)
                raise HiSSCubeFormatError(
                    f"{self.path}: {name}[{t}, {b}, {k}] points to {text} of shape "
                    f"{shape}, not to a stack of frames"
                )
            n, height, width = shape
            row = refs["ds_slice_idx"]
            x0, x1 = refs["x_min"].astype(np.int64), refs["x_max"].astype(np.int64)
            y0, y1 = refs["y_min"].astype(np.int64), refs["y_max"].astype(np.int64)
            bad = where & (
                (row < 0) | (row >= n)
                | (x0 < 0) | (x1 > height) | (x1 - x0 != size)
                | (y0 < 0) | (y1 > width) | (y1 - y0 != size)
            )  # fmt: skip
            if bad.any():
                b, k = _first(bad)
                raise HiSSCubeFormatError(
                    f"{self.path}: {name}[{t}, {b}, {k}] (ds_slice_idx {int(row[b, k])}, "
                    f"x {int(x0[b, k])}:{int(x1[b, k])}, y {int(y0[b, k])}:{int(y1[b, k])}) is "
                    f"not a {size}x{size} window inside {text} of shape {shape}"
                )

    def _frame_window(self, path, window, size):
        """A cutout window of a semi-sparse frame, or None when the frame is not in the file.

        The window was checked against the data frames (:meth:`_check_windows`); an errors
        dataset of another shape counts as absent.
        """
        ds = self._file.get(path.lstrip("/"))
        if ds is None or len(getattr(ds, "shape", ())) != 3 or window[0] >= ds.shape[0]:
            return None
        try:
            cut = ds[window]
        except (OSError, RuntimeError) as exc:
            raise self._read_error(path, exc, [window[0]]) from exc
        return cut if cut.shape == (size, size) else None

    def _restack_multi_frame(self, images, zoom, rows, inverse, scalar):
        # With several frames per band the reference's dense flux is distorted too
        # (sum(1/f) / sum(1/f**2), section 9 bug 1): restack those objects from the frames.
        name = f"dense_cube/{zoom}/ml_image/image_cutout_refs"
        if name not in self._file:
            return images
        ds = self._compound(name)
        # Whether slot 1 is filled, a few MiB of objects at a time: one object's references
        # are 5 x 200 x 88 bytes, so the whole table would weigh 88 kB an object.
        row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
        step = max(1, _WINDOW_BYTES // max(1, row_bytes))
        multi = [np.empty(0, dtype=np.intp)]
        try:
            for i in range(0, rows.size, step):
                second = _read_rows(ds, rows[i : i + step])[:, :, 1]["ds_path"]
                multi.append(i + np.flatnonzero((second != b"").any(axis=1)))
        except (OSError, RuntimeError) as exc:
            raise self._read_error(name, exc, rows) from exc
        multi = np.concatenate(multi)
        if multi.size == 0:
            return images
        images = np.array(images, copy=True)
        unweighted, lost = 0, 0
        for i in multi:
            flux, sigma = self._recover_from_refs(int(rows[i]), zoom)
            if flux is None:
                flux = np.full(images.shape[-3:], np.nan, dtype=np.float32)
                lost += 1
            elif sigma is None:
                unweighted += 1
            if scalar:
                images = flux
            elif inverse is None:
                images[i] = flux
            else:
                images[inverse == i] = flux
        if unweighted:
            warnings.warn(
                f"{self.path}: {unweighted} objects have several frames per band but the file "
                "has no frame errors to weight them; their cutouts are unweighted means of the "
                "frames (the reference's stored stack is distorted, layout doc section 9)",
                stacklevel=3,
            )
        if lost:
            warnings.warn(
                f"{self.path}: {lost} objects have several frames per band and the frames are "
                "not in the file, so their distorted stored stack cannot be repaired; their "
                "cutouts are returned as NaN",
                stacklevel=3,
            )
        return images

    # -- spectra ----------------------------------------------------------------------------
    def read_spectra(self, index=None, level=0):
        """Spectra of the selected objects on :meth:`wavelength` ``(level)``.

        Parameters
        ----------
        index : None, int, slice, array of int or array of bool, default=None
            Objects to read (None: all), as in :meth:`read_images`.
        level : {0, 1, 2, 3}, default=0
            Spectral level: 4620, 2310, 1155 or 577 pixels.

        Returns
        -------
        ndarray of float32, shape (n, L)
            The flux f_lambda in erg s^-1 cm^-2 A^-1 (observed frame); masked pixels are NaN.
        """
        return self._read_spectra(index, level)

    def _read_spectra(self, index, level, convert=None):
        """:meth:`read_spectra` with ``convert`` applied as they are read (see
        :func:`_read_rows`)."""
        self._check_zoom(level, "level")
        out, *_ = self._read(
            f"dense_cube/{level}/ml_spectrum/spectral_1d_cube_zoom_{level}",
            index,
            (n_wavelength(level),),
            convert,
        )
        return out

    def read_spectrum_errors(self, index=None, level=0):
        """1-sigma errors of the spectra; NaN where the pixel is masked.

        Parameters
        ----------
        index : None, int, slice, array of int or array of bool, default=None
            Objects to read (None: all), as in :meth:`read_images`.
        level : {0, 1, 2, 3}, default=0
            Spectral level: 4620, 2310, 1155 or 577 pixels.

        Returns
        -------
        ndarray of float32, shape (n, L)
            1-sigma errors in the units of :meth:`read_spectra`; NaN where the flux is
            masked and the file stores no error for it.
        """
        return self._read_spectrum_errors(index, level)

    def _read_spectrum_errors(self, index, level, flux=None, convert=None):
        """:meth:`read_spectrum_errors`; ``flux``, the spectra of the same ``index`` already
        read (in any unit), spares reading them again; ``convert`` as in :meth:`_read_spectra`
        (it keeps zeros and NaN, so the masking below sees the same pixels)."""
        self._check_zoom(level, "level")
        err, *_ = self._read(
            f"dense_cube/{level}/ml_spectrum/errors", index, (n_wavelength(level),), convert
        )
        if flux is None:
            flux = self.read_spectra(index, level)
        err = np.ascontiguousarray(err)  # already is: the reshapes below are views
        # The reference's stack gives error 0 where every input was masked (flux NaN):
        # that is "no measurement", not "no error". In place, a window of rows at a time
        # (the masks stay small); err is this call's own array.
        flat_err, flat_flux = err.reshape(-1, err.shape[-1]), flux.reshape(-1, flux.shape[-1])
        step = max(1, _WINDOW_BYTES // max(1, flat_err[:1].nbytes))
        for i in range(0, flat_err.shape[0], step):
            e = flat_err[i : i + step]
            masked = np.isnan(flat_flux[i : i + step])
            masked &= e == 0
            e[masked] = np.nan
        return err

    # -- batches ----------------------------------------------------------------------------
    def _batch_datasets(self, modalities, image_zoom, spectrum_level):
        """HDF5 names of the datasets a batch of ``modalities`` reads."""
        unknown = sorted(set(modalities) - {"image", "spectrum"})
        if unknown or not modalities:
            raise ValueError(
                f"modalities must be a non-empty subset of ('image', 'spectrum'), got "
                f"{tuple(modalities)!r}"
            )
        names = []
        if "image" in modalities:
            self._check_zoom(image_zoom, "image_zoom")
            names.append(self._image_name(image_zoom))
        if "spectrum" in modalities:
            self._check_zoom(spectrum_level, "spectrum_level")
            names.append(
                f"dense_cube/{spectrum_level}/ml_spectrum/spectral_1d_cube_zoom_{spectrum_level}"
            )
        return names

    def rows_per_chunk(self, modalities=("image", "spectrum"), image_zoom=0, spectrum_level=0):
        """Count the rows in one HDF5 chunk of the datasets a batch reads (the largest).

        Rows ``k * rows_per_chunk`` to ``(k + 1) * rows_per_chunk - 1`` are one contiguous
        read of that dataset and whole chunks of the others: the natural block to shuffle.
        A contiguous (unchunked) dataset counts as 64-row chunks.

        Parameters
        ----------
        modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
            The datasets a batch reads: the image cutouts, the spectra or both.
        image_zoom : {0, 1, 2, 3}, default=0
            Zoom level of the image cutouts (used when ``modalities`` has ``"image"``).
        spectrum_level : {0, 1, 2, 3}, default=0
            Level of the spectra (used when ``modalities`` has ``"spectrum"``).

        Returns
        -------
        int
            Rows per chunk of the most coarsely chunked of those datasets.
        """
        chunks = [
            (self._dataset(name).chunks or (64,))[0]
            for name in self._batch_datasets(modalities, image_zoom, spectrum_level)
        ]
        return int(max(chunks))

    def iter_batches(
        self,
        batch_size,
        *,
        modalities=("image", "spectrum"),
        image_zoom=0,
        spectrum_level=0,
        index=None,
        shuffle=False,
        block_rows=None,
        random_state=None,
        read_ahead=0,
    ):
        """Yield batches of objects, read chunk by chunk.

        Without ``shuffle`` the objects come in file order, each batch one contiguous read
        per dataset. With ``shuffle`` the objects are cut into blocks of ``block_rows`` cube
        rows (one HDF5 chunk by default), the blocks come in a random order and the rows of
        each block in a random order, so a batch still costs only a few contiguous reads.

        Parameters
        ----------
        batch_size : int
            Objects per batch (the last batch may be smaller).
        modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
            What each batch holds: the image cutouts, the spectra or both.
        image_zoom, spectrum_level : {0, 1, 2, 3}, default=0
            Zoom level of the images and level of the spectra.
        index : array-like of int or None, default=None
            Cube rows to read (None: all), e.g. the FLAG=0 rows.
        shuffle : bool, default=False
            Whether to shuffle by blocks; False keeps file order (the fastest reads).
        block_rows : int or None, default=None
            Rows per shuffled block; None is :meth:`rows_per_chunk`, 1 shuffles single rows.
        random_state : int, numpy Generator or None, default=None
            Seed or generator of the shuffle (None: a fresh one each call).
        read_ahead : int, default=0
            Batches read ahead in a background thread while the caller works on the current
            one.

        Yields
        ------
        rows : ndarray of int
            Cube rows of the batch.
        arrays : dict
            ``"image"`` (n, 5, S, S) and/or ``"spectrum"`` (n, L), float32, in cube units.

        Examples
        --------
        >>> import tempfile, os
        >>> from sklearn_sfr.datasets import HiSSCube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"),
        ...                            n_objects=12, random_state=0)
        >>> with HiSSCube(path) as cube:
        ...     for rows, arrays in cube.iter_batches(5, image_zoom=3, spectrum_level=3,
        ...                                           shuffle=True, random_state=0):
        ...         print(len(rows), arrays["image"].shape, arrays["spectrum"].shape)
        5 (5, 5, 8, 8) (5, 577)
        5 (5, 5, 8, 8) (5, 577)
        2 (2, 5, 8, 8) (2, 577)
        """
        from ._batches import batch_positions
        from ._batches import read_ahead as _read_ahead

        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        modalities = tuple(modalities)
        self._batch_datasets(modalities, image_zoom, spectrum_level)
        rows = np.arange(self.n_objects) if index is None else np.asarray(index, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= self.n_objects)):
            raise IndexError(f"index must be 1-D rows in [0, {self.n_objects}) of {self.path}")
        if block_rows is None:
            block_rows = self.rows_per_chunk(modalities, image_zoom, spectrum_level)
        batches = batch_positions(
            rows.size,
            int(batch_size),
            block_ids=rows // int(block_rows),
            shuffle=shuffle,
            random_state=random_state,
        )

        def read():
            for positions in batches:
                batch = rows[positions]
                arrays = {}
                if "image" in modalities:
                    arrays["image"] = self.read_images(batch, zoom=image_zoom)
                if "spectrum" in modalities:
                    arrays["spectrum"] = self.read_spectra(batch, level=spectrum_level)
                yield batch, arrays

        yield from _read_ahead(read(), read_ahead)

    # -- labels and metadata ----------------------------------------------------------------
    @cached_property
    def _spectrum_rows(self):
        """(object, spectrum row, order) triples from ``spec_metadata_refs`` at zoom 0.

        Every reference is checked once, vectorised: it points to the spectra's metadata, its
        row exists there, and no spectrum belongs to two objects (a negative row would wrap
        round in numpy and give the object another spectrum's label).
        """
        name = _SPECTRUM_REFS
        obj, slot, paths, spectrum = self._filled_references(name)

        def position(where):
            return f"{obj[where[0]]}, {slot[where[0]]}"

        for path in _unique(paths):
            where = paths == path
            text = path.decode("utf-8", "replace")
            if not text.rstrip("/").endswith("spectra/metadata"):
                raise HiSSCubeFormatError(
                    f"{self.path}: {name}[{position(_first(where))}] points to {text}, not to "
                    "the spectra's metadata (/semi_sparse_cube/{z}/spectra/metadata)"
                )
            if text.lstrip("/") in self._file:
                self._check_rows(name, spectrum, where, path, position)
            else:  # a file without its semi-sparse spectra: the label table bounds the rows
                negative = where & (spectrum < 0)
                if negative.any():
                    i = _first(negative)
                    raise HiSSCubeFormatError(
                        f"{self.path}: {name}[{position(i)}] has the negative ds_slice_idx "
                        f"{int(spectrum[i])}"
                    )
        order = np.argsort(spectrum, kind="stable")
        twice = np.flatnonzero(spectrum[order][1:] == spectrum[order][:-1])
        if twice.size:
            a, b = order[twice[0]], order[twice[0] + 1]
            raise HiSSCubeFormatError(
                f"{self.path}: {name}[{obj[a]}, {slot[a]}] and [{obj[b]}, {slot[b]}] both "
                f"point to spectrum {spectrum[a]}: a spectrum (and its label) belongs to one "
                "object"
            )
        return pd.DataFrame({"object": obj, "order": slot, "spectrum": spectrum})

    def _filled_references(self, name):
        """``(object, slot, ds_path, ds_slice_idx)`` of every filled slot of the reference
        table ``name`` (n, slots), up to each object's first empty slot; an object whose first
        slot is empty is an error.

        Read a block of objects at a time, and of each block only the slots up to the first
        slot that no object of the block fills (usually one or two of the 200): the table
        itself, 88 bytes a slot, is never held whole.
        """
        ds = self._compound(name, ("ds_path", "ds_slice_idx"))
        n = self.n_objects
        shape = (min(n, ds.shape[0]), *ds.shape[1:]) if ds.shape else ds.shape
        if len(shape) != 2:
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has shape {shape}, expected (n, slots)"
            )
        if shape[0] < n:  # objects without references: labels lost
            raise HiSSCubeFormatError(
                f"{self.path}: {name} has {shape[0]} rows but the cube has {n} objects"
            )
        n_slots = shape[1]
        if n and not n_slots:
            raise HiSSCubeFormatError(
                f"{self.path}: {name}[0] is empty, so that object has no spectrum"
            )
        chunks = ds.chunks or (64, n_slots)
        # A block is a few rows of chunks, up to 2 MiB of them, so that reading its slots
        # a few at a time finds them in the chunk cache (4 MiB); chunks larger than that are
        # read at once, all slots.
        chunk_bytes = ds.dtype.itemsize * int(np.prod(chunks))
        whole = chunk_bytes > 2 << 20
        block_rows = chunks[0] * max(1, (2 << 20) // chunk_bytes)
        parts = []
        for lo in range(0, n, block_rows):
            hi = min(lo + block_rows, n)
            k = n_slots if whole else min(n_slots, 2)
            while True:
                try:
                    block = ds[lo:hi, :k]
                except (OSError, RuntimeError) as exc:
                    raise self._read_error(name, exc) from exc
                filled = block["ds_path"] != b""
                # Readers stop at the first empty slot.
                filled &= np.cumprod(filled, axis=1).astype(bool)
                if k == n_slots or not filled[:, -1].any():
                    break
                k = min(n_slots, 4 * k)
            if not filled[:, 0].all():
                bad = lo + int(np.flatnonzero(~filled[:, 0])[0])
                raise HiSSCubeFormatError(
                    f"{self.path}: {name}[{bad}] is empty, so that object has no spectrum"
                )
            o, sl = np.nonzero(filled)
            parts.append((o + lo, sl, block["ds_path"][o, sl], block["ds_slice_idx"][o, sl]))
        if not parts:
            paths = np.empty(0, dtype=ds.dtype["ds_path"])
            return np.empty(0, np.intp), np.empty(0, np.intp), paths, np.empty(0, np.int64)
        return tuple(np.concatenate(p) for p in zip(*parts))

    def _read_table(self, key, what):
        """A pandas table stored in the cube, with errors that name the file and the key."""
        try:
            # PyTables caches 16 MiB of chunks per file by default; these tables are read once,
            # whole, so a cache only raises the peak memory of a first load.
            table = pd.read_hdf(self.path, key, mode="r", chunk_cache_size=0)
        except ImportError as exc:  # PyTables missing
            raise ImportError(
                f"reading {what} of {self.path} needs PyTables (pip install tables)"
            ) from exc
        except Exception as exc:
            raise HiSSCubeFormatError(f"{self.path}: cannot read {what} /{key}: {exc}") from exc
        if not isinstance(table, pd.DataFrame):
            raise HiSSCubeFormatError(
                f"{self.path}: {what} /{key} is a {type(table).__name__}, not a table"
            )
        return table.reset_index(drop=True)

    def _spectrum_table(self):
        """One row per spectrum: the merged label table, or the FITS headers without one."""
        if MERGED_LABEL_KEY in self._file:
            table = self._read_table(MERGED_LABEL_KEY, "the label table")
            self._check_label_columns(table)
            return table
        self._frame_warned = True
        warnings.warn(
            f"{self.path} has no label table /{MERGED_LABEL_KEY}: labels are missing",
            stacklevel=3,
        )
        meta = self._read_whole("fits_spectra_metadata")
        headers = []
        for i, header in enumerate(meta["header"]):
            try:
                value = json.loads(header)
            except ValueError as exc:
                value = exc
            if not isinstance(value, dict):
                raise HiSSCubeFormatError(
                    f"{self.path}: fits_spectra_metadata[{i}] has a header that is not a JSON "
                    f"object ({value}): {bytes(header[:60])!r}"
                )
            headers.append(value)
        return pd.DataFrame(headers)

    def _check_label_columns(self, table):
        """Refuse label values that are not numbers; warn when the labels are absent.

        Missing values (an unmatched spectrum) are fine, but a text such as ``"high"`` would
        silently become a missing label when coerced, so it is an error naming the column.
        """
        where = f"{self.path}: the label table /{MERGED_LABEL_KEY}"
        for col in (*_LABEL_COLUMNS, "FLAG"):
            if col not in table:
                continue
            values = table[col]
            if values.dtype.kind in "biuf":
                continue
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise HiSSCubeFormatError(
                    f"{where} has non-numeric values in column {col!r} (dtype {values.dtype}, "
                    f"e.g. row {row}: {values.iloc[row]!r})"
                )
        absent = [col for col in ("AVG", "FLAG") if col not in table]
        if absent:
            self._frame_warned = True
            warnings.warn(
                f"{where} has no column {', '.join(absent)}: those labels are missing",
                stacklevel=4,
            )

    def read_frame(self, index=None):
        """Per-object labels and metadata as a DataFrame aligned with the arrays.

        Columns use the MPA-JHU names where they exist: ``PLATEID, MJD, FIBERID, RA, DEC, Z,
        AVG, MEDIAN, P16, P84, FLAG``, plus ``object_type``, ``n_spectra`` and, for synthetic
        cubes, the true values (``true_*``) and neighbour information. MPA's -99 sentinels and
        unmatched spectra are missing values (NaN); FLAG keeps its value (1 for "no estimate").

        Parameters
        ----------
        index : None, int, slice, array of int or array of bool, default=None
            Objects to read (None: all), as in :meth:`read_images`.

        Returns
        -------
        pandas.DataFrame
            One row per selected object, in the order of ``index``, with a fresh
            ``RangeIndex``.
        """
        rows, inverse, _ = _index_rows(index, self.n_objects)
        # A take: a new table (the whole frame is shared with other loads), several times
        # faster than DataFrame.copy for its text columns; its index is set without a copy.
        frame = self._all_frame.iloc[rows if inverse is None else rows[inverse]]
        frame.index = pd.RangeIndex(len(frame))
        return frame

    def _frame_key(self):
        """What identifies this file's contents for the frame cache: its path, device, inode,
        size, modification and change times (nanoseconds), and the label policy."""
        st = os.stat(self.path)
        return (
            os.path.realpath(self.path),
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            self.label_policy,
        )

    @cached_property
    def _all_frame(self):
        """Every object's frame: shared through ``_FRAMES`` by every handle on the same file
        (read-only: :meth:`read_frame` returns copies); a build that warned (missing labels)
        is not kept, so that every load of such a file warns."""
        key = self._frame_key()
        with _FRAMES_LOCK:
            frame = _FRAMES.get(key)
            if frame is not None:
                _FRAMES.move_to_end(key)
                return frame
        self._frame_warned = False
        frame = self._build_frame()
        if not self._frame_warned:
            with _FRAMES_LOCK:
                _FRAMES[key] = frame
                while len(_FRAMES) > _FRAMES_KEPT:
                    _FRAMES.popitem(last=False)
        return frame

    def _build_frame(self):
        # The per-spectrum tables are gone (freed) once the spectra's columns are in the
        # frame, before the per-object table is read: a first load's peak holds one of them.
        frame = self._frame_of_spectra()
        if TARGET_TABLE_KEY in self._file:
            extra = self._read_table(TARGET_TABLE_KEY, "the per-object table")
            if len(extra) != self.n_objects:
                raise HiSSCubeFormatError(
                    f"{self.path}: /{TARGET_TABLE_KEY} has {len(extra)} rows for "
                    f"{self.n_objects} objects"
                )
            for col in extra.columns:
                values = extra[col]
                if values.dtype == object:
                    values = _per_distinct(values, _utf8)
                frame[col] = np.asarray(values)
        for col in ("PLATEID", "MJD", "FIBERID"):
            if col in frame:
                # Integers where every value is one; an inf or 1e300 stays a float, to be
                # seen, rather than stopping the read or wrapping round in the cast.
                values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
                with np.errstate(invalid="ignore"):
                    whole = np.isfinite(values) & (values == np.round(values))
                    whole &= np.abs(values) < 2.0**62
                if whole.all():
                    frame[col] = values.astype(np.int64)
        return frame

    def _frame_of_spectra(self):
        """The frame's columns that come from each object's spectra: positions, redshift,
        labels and FLAG (by the label policy), the number of spectra and the object type."""
        table = self._spectrum_table()
        links = self._spectrum_rows  # rows checked: none negative
        beyond = links["spectrum"].to_numpy() >= len(table)
        if beyond.any():
            i = int(np.argmax(beyond))
            what = "label table" if MERGED_LABEL_KEY in self._file else "fits_spectra_metadata"
            raise HiSSCubeFormatError(
                f"{self.path}: spec_metadata_refs point to spectrum {links['spectrum'].iloc[i]} "
                f"but the {what} has {len(table)} rows ({_SPECTRUM_REFS}"
                f"[{links['object'].iloc[i]}, {links['order'].iloc[i]}])"
            )
        spec = table.iloc[links["spectrum"].to_numpy()].reset_index(drop=True)
        del table  # its rows are taken: free it before the copies below
        spec = _normalise_spectrum_columns(spec)
        spec["object"] = links["object"].to_numpy()
        spec["order"] = links["order"].to_numpy()
        first = spec[spec["order"] == 0].set_index("object").sort_index()
        frame = pd.DataFrame(index=pd.RangeIndex(self.n_objects))
        for col in _FIRST_SPECTRUM_COLUMNS:
            if col in first:
                frame[col] = first[col].reindex(frame.index)
        if self.label_policy == "first":
            for col in (*_LABEL_COLUMNS, "FLAG"):
                frame[col] = first[col].reindex(frame.index) if col in first else np.nan
        else:
            frame = frame.join(_ivar_labels(spec, self.n_objects))
        frame["n_spectra"] = spec.groupby("object").size().reindex(frame.index).to_numpy()
        frame["object_type"] = (
            first["object_type"].reindex(frame.index) if "object_type" in first else "unknown"
        )
        return frame


def _per_distinct(values, fn):
    """``[fn(v) for v in values]`` as an object array, calling ``fn`` once per distinct text
    value: text columns repeat a few labels over every row (CLASS, object types), and a Python
    call per row was most of the time it took to build a frame.

    Only bytes and str are shared: factorize also merges values that compare equal across
    types (1, 1.0, True) and all missing values (None, NaN), whose results may differ, so those
    (and unhashable values) go through ``fn`` one by one.
    """
    values = np.asarray(values, dtype=object)
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:  # unhashable values
        codes, uniques = np.full(len(values), -1), np.empty(0, dtype=object)
    text = np.array([type(u) in (bytes, str) for u in uniques] + [False])  # [-1]: missing
    results = np.empty(len(uniques) + 1, dtype=object)
    results[:] = [fn(u) if shared else None for u, shared in zip(uniques, text)] + [None]
    out = results[codes]
    for i in np.flatnonzero(~text[codes]):
        out[i] = fn(values[i])
    return out


def _utf8(value):
    """Text of a per-object table's value (UTF-8 bytes); anything else as it is."""
    return value.decode() if isinstance(value, bytes) else value


def _object_type(value, kinds=("quasar", "galaxy", "star")):
    """The object type that a CLASS (or TARGETTYPE) value starts with: "QSO", "GALAXY" or
    "STAR" (bytes as stripped UTF-8, any case); "unknown" for anything else, missing too."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace").strip()
    text = str(value).upper() if isinstance(value, str) or not pd.isna(value) else ""
    for kind, prefix in zip(kinds, ("QSO", "GALAXY", "STAR")):
        if text.startswith(prefix):
            return kind
    return "unknown"


def _normalise_spectrum_columns(spec):
    """MPA names for the merged table's columns; sentinels to NaN; an object type. Changes
    ``spec`` (a table of the spectra's rows taken for this) and returns it."""
    # Left-merge suffixes: *_x is the FITS header (plate pointing), *_y the MPA object (sect. 8).
    for col in ("RA", "DEC", "Z"):
        if f"{col}_y" in spec:
            spec[col] = spec[f"{col}_y"]
    # Spectra the catalogue does not match have no MPA position: use the fibre's plug position.
    for col in ("RA", "DEC"):
        plug = f"PLUG_{col}"
        plug = (
            pd.to_numeric(spec[plug], errors="coerce").astype(np.float64)
            if plug in spec
            else pd.Series(np.nan, index=spec.index)
        )
        if col in spec:
            spec[col] = pd.to_numeric(spec[col], errors="coerce").astype(np.float64).fillna(plug)
        else:
            spec[col] = plug
    # Spectra the catalogue does not match (BOSS plates, quasars) still have the pipeline's
    # redshift in their header, as ingested cubes write it.
    if SPECTRUM_REDSHIFT_KEY in spec:
        pipeline_z = pd.to_numeric(spec[SPECTRUM_REDSHIFT_KEY], errors="coerce")
        mpa_z = pd.to_numeric(spec["Z"], errors="coerce") if "Z" in spec else np.nan
        spec["Z"] = pd.Series(mpa_z, index=spec.index, dtype=np.float64).fillna(pipeline_z)
    for col in SFR_COLUMNS:
        if col in spec:
            spec[col] = pd.to_numeric(spec[col], errors="coerce").astype(np.float64)
    low, high = _SENTINEL_RANGE
    sentinel = spec["AVG"].between(low, high) if "AVG" in spec else False
    for col in ("AVG", "MEDIAN", "MODE", "P16", "P84", "P2P5", "P97P5"):
        if col in spec:
            spec.loc[sentinel | spec[col].between(low, high), col] = np.nan
    for col in (*_LABEL_COLUMNS, "FLAG"):
        if col not in spec:
            spec[col] = np.nan
    if "CLASS" in spec:
        spec["object_type"] = _per_distinct(spec["CLASS"], _object_type).astype(str)
    elif "TARGETTYPE" in spec:  # no stars among the target types
        spec["object_type"] = _per_distinct(
            spec["TARGETTYPE"], lambda v: _object_type(v, ("quasar", "galaxy"))
        ).astype(str)
    return spec


def _ivar_labels(spec, n_objects):
    """Decision of hisscube-layout.md section 11: inverse-variance mean over FLAG=0 spectra."""
    # Use the spectra with the object's best (smallest) flag: its FLAG=0 spectra when it has
    # any, so flagged repeats never leak into a reliable label; otherwise the least-flagged.
    flag = spec.groupby("object")["FLAG"].min()  # 0 if any spectrum has FLAG 0, else smallest
    best = flag.reindex(spec["object"]).to_numpy()
    usable = (spec["FLAG"].to_numpy() == best) & spec["AVG"].notna().to_numpy()
    flag0 = spec.loc[usable, ["object", *_LABEL_COLUMNS]]  # only what the means read
    half = (flag0["P84"] - flag0["P16"]) / 2
    # A spectrum without a usable width (none, zero or infinite) counts with the median
    # weight of the others: an infinite P84 must not weigh its label to nothing.
    w = 1.0 / half.where((half > 0) & np.isfinite(half)) ** 2
    w = w.fillna(w.median() if w.notna().any() else 1.0)
    # Every column's sums in one groupby (the same summation per column as one at a time).
    parts = {}
    for col in _LABEL_COLUMNS:
        parts[f"num {col}"] = flag0[col] * w
        parts[f"den {col}"] = w.where(flag0[col].notna())
    sums = pd.DataFrame(parts).groupby(flag0["object"]).sum(min_count=1)
    index = pd.RangeIndex(n_objects)
    out = {col: (sums[f"num {col}"] / sums[f"den {col}"]).reindex(index) for col in _LABEL_COLUMNS}
    out["FLAG"] = flag.reindex(index)
    return pd.DataFrame(out, index=index)
