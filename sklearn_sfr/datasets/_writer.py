"""Write HiSS-Cube files in the reference implementation's layout.

The writer produces the "dense ML cube" the reference builds (``/dense_cube/{z}``), the
semi-sparse spectra it is derived from, the FITS-header tables and both pandas label tables, so
that one file serves the reference and sklearn-sfr alike. It writes *cutouts*, not frames: the
semi-sparse image datasets exist with zero frames (which the reference itself writes when it has
no frames) and lower zooms are derived from the 64-pixel cutout by the reference's bicubic rule
(``hisscube-layout.md`` section 10). Files written here say so in the ``written_by`` attribute.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils._io import StickyErrorFile, remove_stale_temporaries, temporary_path
from ..utils._outputs import check_free_space, check_output_file
from ..utils._stop import raise_if_stopped
from ._layout import (
    BAND_NAMES,
    CUTOUT_SIZES,
    GAL_INFO_COLUMNS,
    IMAGE_DB_INDEX_DTYPE,
    IMAGE_METADATA_DTYPE,
    MERGED_LABEL_KEY,
    N_WAVELENGTH,
    REF_DTYPE,
    REF_SLOTS,
    SFR_COLUMNS,
    SFR_TABLE_KEY,
    SPECTRUM_DB_INDEX_DTYPE,
    SPECTRUM_METADATA_DTYPE,
    TARGET_TABLE_KEY,
    WCS_DTYPE,
    ZOOMS,
    derive_image_level,
    derive_spectrum_level,
    float_compress,
    inverse_variance_stack,
    n_wavelength,
    wavelength_grid,
)

#: Frame shape per zoom the reference's default config declares (IMG_RES_Y, IMG_RES_X halved).
_FRAME_SHAPES = ((1489, 2048), (744, 1024), (372, 512), (186, 256))

#: Columns of a spectrum table that go into the MPA-JHU label tables rather than the header.
_MPA_COLUMNS = tuple(GAL_INFO_COLUMNS) + tuple(SFR_COLUMNS)
_KEY_COLUMNS = ("PLATEID", "MJD", "FIBERID")
_REQUIRED_HEADER = ("PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC")

#: HEALPix order of the reference's spectrum index (nside 32768, about 6.4 arcsec).
_SPECTRUM_HEALPIX_ORDER = 15

_TARGET_CHUNK_BYTES = 1 << 20


def _version():
    from .._version import __version__

    return __version__


def _rows_per_chunk(row_bytes, n_rows):
    # Dense datasets are read in batches of whole rows, so chunks hold many rows (about 1 MiB):
    # the reference's one-row chunks make batch reads slow and are not required by any reader.
    return int(max(1, min(n_rows, _TARGET_CHUNK_BYTES // max(row_bytes, 1))))


def _healpix_nested(ra, dec, order):
    from astropy import units as u
    from astropy_healpix import HEALPix

    hp = HEALPix(nside=2**order, order="nested")
    return np.asarray(hp.lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg))


def _json_value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace").rstrip()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _fits_name(plate, mjd, fiber):
    return f"spec-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}.fits"


def _text_to_bytes(df):
    # The reference stores text as fixed-width bytes (astype('|S')) and missing text as b'nan'.
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = [
                v if isinstance(v, bytes) else str("nan" if v is None else v).encode("utf-8")
                for v in out[col].astype(object)
            ]
            out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


class HiSSCubeWriter:
    """Write a HiSS-Cube file block by block, at bounded memory.

    The file is written under a temporary name in the destination folder and renamed to
    ``path`` only when the writer closes without error, so a crash never leaves a partial file
    under the final name.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    n_targets : int
        Number of dense rows (objects) the file will hold.
    n_spectra : int, default=None
        Number of spectra; defaults to ``n_targets`` (one spectrum per object).
    overwrite : bool, default=False
        Replace an existing ``path``; only a cube sklearn-sfr wrote is ever replaced.
    sfr_source : str, default="gal_totsfr"
        The MPA-JHU SFR file the labels come from; recorded on the label table.
    with_images : bool, default=True
        False writes a spectrum-only cube: no ``ml_image`` groups, ``write_block`` takes
        ``images=None``, and the root attribute ``image_source`` is ``"none"``. The reference
        would build no target without five bands: such files are our extension.
    inputs : sequence of path-like, default=()
        Files and folders the cube is made from: ``path`` may not equal, contain or lie
        inside any of them.
    size : int, default=None
        Estimated size of the cube in bytes: refused at once if the disk cannot take it.

    Attributes
    ----------
    attrs : dict
        Extra root attributes written on close (e.g. ``noise_floor``).

    See Also
    --------
    write_hisscube : One-shot convenience over in-memory arrays.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, os
    >>> from sklearn_sfr.datasets import HiSSCubeWriter
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.h5")
    >>> table = pd.DataFrame({"PLATEID": [1, 1], "MJD": [50000, 50000], "FIBERID": [1, 2],
    ...                       "PLUG_RA": [10.0, 10.1], "PLUG_DEC": [0.0, 0.1],
    ...                       "AVG": [0.1, -0.5], "P16": [-0.1, -0.9], "P84": [0.3, -0.1],
    ...                       "FLAG": [0.0, 0.0]})
    >>> img = np.ones((2, 5, 64, 64), np.float32)
    >>> spec = np.full((2, 4620), 1e-17, np.float32)
    >>> with HiSSCubeWriter(path, n_targets=2) as w:
    ...     w.write_block(img, 0.1 * img, spec, 0.1 * spec)
    ...     w.set_tables(table)
    >>> os.path.exists(path)
    True
    """

    def __init__(
        self,
        path,
        n_targets,
        n_spectra=None,
        *,
        overwrite=False,
        sfr_source="gal_totsfr",
        with_images=True,
        inputs=(),
        size=None,
    ):
        import h5py

        self.path = Path(path)
        self.n_targets = int(n_targets)
        self.n_spectra = self.n_targets if n_spectra is None else int(n_spectra)
        if self.n_targets < 1 or self.n_spectra < self.n_targets:
            raise ValueError(
                f"need n_targets >= 1 and n_spectra >= n_targets, got n_targets="
                f"{self.n_targets}, n_spectra={self.n_spectra}"
            )
        # Only a cube of ours is ever replaced, never an input, and an output that cannot be
        # written is refused now (utils._outputs).
        check_output_file(
            self.path, overwrite=overwrite, is_ours=is_sklearn_sfr_cube, inputs=inputs,
            size=size, kind="cube",
        )  # fmt: skip
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path.parent} is not a folder")
        self.sfr_source = sfr_source
        self.with_images = bool(with_images)
        self.attrs = {}
        # A fresh name beside the target (same file system: the final rename is atomic),
        # created with mode 0o666 so the umask gives the cube the usual permissions (mkstemp's
        # 0o600 would make it private to its writer).
        # A writer killed earlier (SIGKILL, power loss) could not clean up: remove its file.
        remove_stale_temporaries(self.path)
        self._tmp = temporary_path(self.path)
        os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        self._targets_written = 0
        self._spectra_written = 0
        self._spectrum_target = np.full(self.n_spectra, -1, dtype=np.int64)
        self._tables = None
        self._closed = False
        # Through a file that never fails a write (it remembers the first failure): HDF5
        # cannot close a file whose writes fail, and crashes the interpreter on a full disk.
        self._sink = StickyErrorFile(self._tmp, name=self.path)
        try:
            self._file = h5py.File(self._sink, "w", libver="latest", fs_strategy="page")
        except BaseException:
            self._sink.close()
            self._tmp.unlink(missing_ok=True)
            raise
        try:
            self._create_layout()
            self._sink.raise_error()
        except BaseException:
            self._abort()
            raise

    # -- layout -------------------------------------------------------------------------------
    def _create_layout(self):
        import h5py

        f = self._file
        T, S = self.n_targets, self.n_spectra
        f.attrs["image_count"] = np.int64(0)
        f.attrs["spectrum_count"] = np.int64(S)
        f.create_dataset("fits_images_metadata", (0,), IMAGE_METADATA_DTYPE, maxshape=(None,))
        f.create_dataset(
            "fits_spectra_metadata", (S,), SPECTRUM_METADATA_DTYPE, chunks=(min(S, 1000),),
            maxshape=(None,), compression="gzip",
        )  # fmt: skip
        sparse = f.create_group("semi_sparse_cube")
        sparse.attrs["NX_class"] = "NXentry"
        dense = f.create_group("dense_cube")
        dense.attrs["NX_class"] = "NXentry"
        dense.attrs["default"] = "/dense_cube/0"
        dense.attrs["target_count"] = np.int64(T)
        ref_chunks_s = (min(100, S), REF_SLOTS)
        # Each object's spectra fill its first slots (usually one of the 200), and readers read
        # those slots for every object to find the labels: chunks of one slot column (about
        # 1 MiB) let them decompress only those columns, where the reference's chunks of 100
        # objects x 200 slots make them decompress every slot (2,048 objects: 7 ms against
        # 157 ms). HDF5 readers do not depend on the chunk shape.
        ref_chunks_t = (_rows_per_chunk(REF_DTYPE.itemsize, T), 1)
        for z in ZOOMS:
            zs = sparse.create_group(str(z))
            # Frames: none (cutout-only writing), but the datasets exist as the reference
            # writes them without frames.
            images = zs.create_group("images")
            images.attrs["NX_class"] = "NXdata"
            images.attrs["signal"] = "data"
            h, w = _FRAME_SHAPES[z]
            idata = images.create_dataset("data", (0, h, w), "f4", maxshape=(None, h, w))
            ierr = images.create_dataset("errors", (0, h, w), "f4", maxshape=(None, h, w))
            imeta = images.create_dataset("metadata", (0,), IMAGE_METADATA_DTYPE, maxshape=(None,))
            iidx = images.create_dataset("db_index", (0,), IMAGE_DB_INDEX_DTYPE, maxshape=(None,))
            iwcs = images.create_dataset("wcs", (0,), WCS_DTYPE, maxshape=(None,))
            self._set_sparse_attrs(idata, "image", ierr, iidx, imeta)
            idata.attrs["wcs_ds_ref"] = iwcs.ref

            spectra = zs.create_group("spectra")
            spectra.attrs["NX_class"] = "NXdata"
            spectra.attrs["signal"] = "data"
            spectra.attrs["axes"] = np.array([".", "wl"], dtype=h5py.string_dtype())
            n = n_wavelength(z)
            sdata = spectra.create_dataset("data", (S, n), "f4")
            serr = spectra.create_dataset("errors", (S, n), "f4")
            spectra.create_dataset("wl", data=float_compress(wavelength_grid(z)))
            # Headers are fixed 8 kB strings, mostly padding: compressed chunks of up to 1000
            # rows (any HDF5 reader decompresses them transparently).
            smeta = spectra.create_dataset(
                "metadata", (S,), SPECTRUM_METADATA_DTYPE, chunks=(min(S, 1000),),
                compression="gzip",
            )  # fmt: skip
            sidx = spectra.create_dataset("db_index", (S,), SPECTRUM_DB_INDEX_DTYPE)
            self._set_sparse_attrs(sdata, "spectrum", serr, sidx, smeta)
            for name in ("image_cutouts_data", "image_cutouts_errors", "image_cutouts_metadata"):
                # Every slot is empty (no frames): compressed chunks keep that free on disk.
                spectra.create_dataset(
                    name, (S, REF_SLOTS), REF_DTYPE, chunks=ref_chunks_s, compression="gzip"
                )

            zd = dense.create_group(str(z))
            if self.with_images:
                self._create_ml_image(zd, z)
            ml_spec = zd.create_group("ml_spectrum")
            ml_spec.attrs["NX_class"] = "NXdata"
            ml_spec.attrs["signal"] = f"spectral_1d_cube_zoom_{z}"
            ml_spec.attrs["axes"] = np.array([".", "wl"], dtype=h5py.string_dtype())
            rows = _rows_per_chunk(n * 4, T)
            spec = ml_spec.create_dataset(
                f"spectral_1d_cube_zoom_{z}", (T, n), "f4", chunks=(rows, n)
            )
            serr_d = ml_spec.create_dataset("errors", (T, n), "f4", chunks=(rows, n))
            spec.attrs["interpretation"] = "spectrum"
            spec.attrs["error_ds"] = serr_d.ref
            ml_spec.create_dataset(
                "spec_metadata_refs", (T, REF_SLOTS), REF_DTYPE, chunks=ref_chunks_t,
                compression="gzip",
            )  # fmt: skip
            ml_spec["wl"] = spectra["wl"]  # a hard link, as the reference makes it
        if self.with_images:
            dense["0"].attrs["default"] = "/dense_cube/0/ml_image"
            dense["0/ml_image"].attrs["default"] = "/dense_cube/0/ml_image/cutout_3d_cube_zoom_0"
        else:
            dense["0"].attrs["default"] = "/dense_cube/0/ml_spectrum"
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = "/dense_cube"

    def _create_ml_image(self, zd, z):
        import h5py

        T = self.n_targets
        c = CUTOUT_SIZES[z]
        ml_image = zd.create_group("ml_image")
        ml_image.attrs["NX_class"] = "NXdata"
        ml_image.attrs["signal"] = f"cutout_3d_cube_zoom_{z}"
        # Our extensions (section 11): fixed band order, true errors.
        ml_image.attrs["bands"] = np.array(BAND_NAMES, dtype=h5py.string_dtype())
        ml_image.attrs["image_errors"] = "true"
        rows = _rows_per_chunk(5 * c * c * 4, T)
        cube = ml_image.create_dataset(
            f"cutout_3d_cube_zoom_{z}", (T, 5, c, c), "f4", chunks=(rows, 5, c, c)
        )
        cerr = ml_image.create_dataset("errors", (T, 5, c, c), "f4", chunks=(rows, 5, c, c))
        cube.attrs["interpretation"] = "image"
        cube.attrs["error_ds"] = cerr.ref
        for name in ("image_cutout_refs", "image_metadata_refs"):
            ml_image.create_dataset(
                name,
                (T, 5, REF_SLOTS),
                REF_DTYPE,
                chunks=(min(100, T), 5, REF_SLOTS),
                compression="gzip",
            )

    @staticmethod
    def _set_sparse_attrs(data, kind, errors, index, metadata):
        data.attrs["interpretation"] = kind
        data.attrs["mime-type"] = kind
        data.attrs["error_ds_ref"] = errors.ref
        data.attrs["index_ds_ref"] = index.ref
        data.attrs["metadata_ds_ref"] = metadata.ref

    # -- data ---------------------------------------------------------------------------------
    def write_block(self, images, image_errors, spectra, spectrum_errors, spectrum_target=None):
        """Append a block of objects (dense rows) and their spectra.

        Parameters
        ----------
        images, image_errors : array-like of shape (k, 5, 64, 64) or None
            Zoom-0 cutouts in band order u, g, r, i, z, and their 1-sigma errors; None (both)
            for a spectrum-only writer (``with_images=False``).
        spectra, spectrum_errors : array-like of shape (m, 4620)
            Level-0 spectra on the HiSS-Cube grid; NaN error marks a masked pixel.
        spectrum_target : array-like of shape (m,), default=None
            Row of each spectrum's object within this block; None means one spectrum per
            object (``m == k``). Several spectra of an object are stacked by inverse-variance
            weighting, as the reference stacks repeat observations.
        """
        spectra = self._check_array("spectra", spectra, (None, N_WAVELENGTH))
        m = spectra.shape[0]
        spectrum_errors = self._check_array("spectrum_errors", spectrum_errors, spectra.shape)
        if not self.with_images:
            if images is not None or image_errors is not None:
                raise ValueError("this writer is spectrum-only (with_images=False): pass None")
            # Without images the block's objects are those its spectra name.
            k = m if spectrum_target is None else int(np.max(spectrum_target, initial=-1)) + 1
        else:
            shape = (None, 5, CUTOUT_SIZES[0], CUTOUT_SIZES[0])
            images = self._check_array("images", images, shape)
            k = images.shape[0]
            image_errors = self._check_array("image_errors", image_errors, images.shape)
        if spectrum_target is None:
            if m != k:
                raise ValueError(
                    f"spectra has {m} rows but images has {k}; pass spectrum_target to say "
                    "which object each spectrum belongs to"
                )
            spectrum_target = np.arange(k)
        spectrum_target = np.asarray(spectrum_target, dtype=np.int64)
        if spectrum_target.shape != (m,) or np.any((spectrum_target < 0) | (spectrum_target >= k)):
            raise ValueError(
                f"spectrum_target must be {m} integers in [0, {k}), got {spectrum_target!r}"
            )
        if np.setdiff1d(np.arange(k), spectrum_target).size:
            raise ValueError("every object of a block needs at least one spectrum")
        t0, s0 = self._targets_written, self._spectra_written
        if t0 + k > self.n_targets or s0 + m > self.n_spectra:
            raise ValueError(
                f"block overflows the declared size: {t0 + k} > {self.n_targets} objects or "
                f"{s0 + m} > {self.n_spectra} spectra"
            )
        if self.with_images:
            self._write_images(t0, images, image_errors)
        self._write_spectra(t0, s0, spectra, spectrum_errors, spectrum_target)
        self._sink.raise_error()  # a full disk stops here, not at close
        self._spectrum_target[s0 : s0 + m] = t0 + spectrum_target
        self._targets_written += k
        self._spectra_written += m

    @staticmethod
    def _check_array(name, x, shape):
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
        if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {x.shape}")
        return x

    def _write_images(self, t0, images, errors):
        f = self._file
        flux = images.astype(np.float64)
        sigma = errors.astype(np.float64)
        for z in ZOOMS:
            if z > 0:
                flux, sigma = derive_image_level(flux, sigma)
            g = f[f"dense_cube/{z}/ml_image"]
            sl = slice(t0, t0 + flux.shape[0])
            g[f"cutout_3d_cube_zoom_{z}"][sl] = flux.astype(np.float32)
            g["errors"][sl] = sigma.astype(np.float32)

    def _write_spectra(self, t0, s0, spectra, errors, target):
        f = self._file
        k = int(target.max()) + 1
        # Stacking order: spectra of one object in the order given (the caller's time order).
        order = np.argsort(target, kind="stable")
        counts = np.bincount(target, minlength=k)
        flux = spectra.astype(np.float64)
        sigma = errors.astype(np.float64)
        grid = wavelength_grid(0)
        for z in ZOOMS:
            if z > 0:
                flux, sigma, grid = derive_spectrum_level(flux, sigma, grid)
            # Every level comes from the *uncompressed* previous one, then is compressed alone.
            cflux, csigma = float_compress(flux), float_compress(sigma)
            sp = f[f"semi_sparse_cube/{z}/spectra"]
            sp["data"][s0 : s0 + len(target)] = cflux
            sp["errors"][s0 : s0 + len(target)] = csigma
            if np.all(counts == 1):
                mean = np.empty_like(cflux)
                err = np.empty_like(csigma)
                mean[target] = cflux
                err[target] = csigma
                # The reference's stack of a single input: unchanged, except where sigma is NaN
                # (flux NaN, error 0) or zero (skipped, so NaN).
                mean, err = inverse_variance_stack(mean[None], err[None])
            else:
                mean = np.empty((k, cflux.shape[1]))
                err = np.empty_like(mean)
                start = 0
                for t in range(k):
                    rows = order[start : start + counts[t]]
                    start += counts[t]
                    mean[t], err[t] = inverse_variance_stack(cflux[rows], csigma[rows])
            ml = f[f"dense_cube/{z}/ml_spectrum"]
            ml[f"spectral_1d_cube_zoom_{z}"][t0 : t0 + k] = mean.astype(np.float32)
            ml["errors"][t0 : t0 + k] = err.astype(np.float32)

    # -- tables -------------------------------------------------------------------------------
    def set_tables(self, spectrum_table, target_table=None):
        """Give the per-spectrum header/label table and an optional per-object table.

        Parameters
        ----------
        spectrum_table : DataFrame of n_spectra rows
            ``PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC`` (required), ``TAI`` (optional), the
            MPA-JHU gal_info and SFR columns where known (``AVG``, ``P16``, ``P84``, ``FLAG``,
            ``Z``, ...; MPA's -99 sentinels allowed), anything else goes into the FITS header.
            Rows whose MPA columns are all missing are treated as unmatched in the catalogue.
        target_table : DataFrame of n_targets rows, default=None
            Extra per-object columns (object type, true values of synthetic cubes, ...),
            stored as the pandas table ``sklearn_sfr_targets``.
        """
        if not isinstance(spectrum_table, pd.DataFrame):
            raise TypeError(f"spectrum_table must be a DataFrame, got {type(spectrum_table)}")
        missing = [c for c in _REQUIRED_HEADER if c not in spectrum_table.columns]
        if missing:
            raise ValueError(f"spectrum_table lacks required columns {missing}")
        if len(spectrum_table) != self.n_spectra:
            raise ValueError(
                f"spectrum_table has {len(spectrum_table)} rows, expected {self.n_spectra}"
            )
        if target_table is not None:
            if not isinstance(target_table, pd.DataFrame):
                raise TypeError(f"target_table must be a DataFrame, got {type(target_table)}")
            if len(target_table) != self.n_targets:
                raise ValueError(
                    f"target_table has {len(target_table)} rows, expected {self.n_targets}"
                )
        self._tables = (spectrum_table.reset_index(drop=True), target_table)

    def _write_headers(self, table):
        f = self._file
        S = self.n_spectra
        header_cols = [c for c in table.columns if c not in _MPA_COLUMNS or c in _KEY_COLUMNS]
        # The reference's time: TAI where the header has it, else MJD (BOSS spectra have no
        # TAI), per spectrum (hisscube-layout.md section 4.4).
        time = table["MJD"].astype(np.float64)
        if "TAI" in table:
            time = pd.to_numeric(table["TAI"], errors="coerce").fillna(time)
        time = time.to_numpy(np.float64)
        spatial = _healpix_nested(table["PLUG_RA"], table["PLUG_DEC"], _SPECTRUM_HEALPIX_ORDER)
        headers, names = [], []
        for row in table[header_cols].itertuples(index=False):
            # A key a spectrum lacks (NaN in the table) is left out of its header, as FITS
            # headers differ in their keys.
            h = {c: _json_value(v) for c, v in zip(header_cols, row)}
            h = {c: v for c, v in h.items() if v is not None}
            for c in _KEY_COLUMNS:
                h[c] = int(h[c])
            headers.append(h)
            names.append(_fits_name(h["PLATEID"], h["MJD"], h["FIBERID"]))
        meta = np.zeros(S, SPECTRUM_METADATA_DTYPE)
        meta["path"] = [n.encode() for n in names]
        meta["header"] = [json.dumps(h).encode() for h in headers]
        f["fits_spectra_metadata"][...] = meta
        order = np.lexsort((time, spatial))  # sorted by (spatial, time), as the reference's index
        for z in ZOOMS:
            sp = f[f"semi_sparse_cube/{z}/spectra"]
            zmeta = np.zeros(S, SPECTRUM_METADATA_DTYPE)
            zmeta["path"] = meta["path"]
            zmeta["header"] = [
                json.dumps({**h, "NAXIS": 1, "NAXIS1": n_wavelength(z)}).encode() for h in headers
            ]
            sp["metadata"][...] = zmeta
            idx = np.zeros(S, SPECTRUM_DB_INDEX_DTYPE)
            idx["spatial"] = spatial[order]
            idx["time"] = time[order]
            idx["ds_slice_idx"] = order
            sp["db_index"][...] = idx
            # spec_metadata_refs of each object: its spectra in time order, from slot 0.
            refs = np.zeros((self.n_targets, REF_SLOTS), REF_DTYPE)
            path = f"/semi_sparse_cube/{z}/spectra/metadata".encode()
            by_target = np.lexsort((time, self._spectrum_target))
            slot = np.zeros(self.n_targets, dtype=np.int64)
            for i in by_target:
                t = self._spectrum_target[i]
                if slot[t] >= REF_SLOTS:
                    raise ValueError(f"object {t} has more than {REF_SLOTS} spectra")
                refs[t, slot[t]] = (path, i, 0, 0, 0, 0)
                slot[t] += 1
            f[f"dense_cube/{z}/ml_spectrum/spec_metadata_refs"][...] = refs
        return pd.DataFrame(headers)

    def _write_label_tables(self, table, headers, target_table):
        # pandas/PyTables write the label tables after the h5py handle is closed (section 10).
        mpa_cols = [c for c in _MPA_COLUMNS if c in table.columns]
        value_cols = [c for c in mpa_cols if c not in _KEY_COLUMNS]
        matched = table[value_cols].notna().any(axis=1) if value_cols else table.index < 0
        sfr = table.loc[matched, mpa_cols].reset_index(drop=True)
        if "FLAG" in sfr:
            sfr["FLAG"] = sfr["FLAG"].astype(np.float64)
        keys = list(_KEY_COLUMNS)
        merged = headers.merge(sfr, how="left", on=keys)
        if len(merged) != len(headers):
            raise ValueError(
                "spectrum_table has duplicate (PLATEID, MJD, FIBERID) keys among its matched "
                "rows: the label merge would no longer align with the spectra"
            )
        with warnings.catch_warnings():
            # PyTables warns that object (bytes) columns are pickled in "fixed" format.
            warnings.simplefilter("ignore")
            with pd.HDFStore(self._tmp, mode="a") as store:
                store.put(SFR_TABLE_KEY, _text_to_bytes(sfr), format="fixed")
                store.put(MERGED_LABEL_KEY, _text_to_bytes(merged), format="fixed")
                if target_table is not None:
                    store.put(
                        TARGET_TABLE_KEY,
                        _text_to_bytes(target_table.reset_index(drop=True)),
                        format="fixed",
                    )

    # -- closing ------------------------------------------------------------------------------
    def close(self):
        """Finish the file and move it to its final name."""
        if self._closed:
            return
        import h5py

        try:
            if self._targets_written != self.n_targets or self._spectra_written != self.n_spectra:
                raise ValueError(
                    f"only {self._targets_written}/{self.n_targets} objects and "
                    f"{self._spectra_written}/{self.n_spectra} spectra were written"
                )
            if self._tables is None:
                raise ValueError("set_tables() was not called")
            table, target_table = self._tables
            headers = self._write_headers(table)
            f = self._file
            f.attrs["written_by"] = f"sklearn-sfr {_version()}"
            # Lower zooms from the 64-px cutout (section 11), or no images at all.
            f.attrs["image_source"] = "cutouts" if self.with_images else "none"
            for key, value in self.attrs.items():
                f.attrs[key] = value
            f.close()
            self._sink.close()
            self._sink.raise_error()
            # PyTables cannot be guarded like h5py: make sure its tables fit first.
            tables_bytes = sum(
                int(t.memory_usage(deep=True).sum()) for t in (table, target_table)
                if t is not None
            )  # fmt: skip
            check_free_space(self._tmp.parent, 3 * tables_bytes + (1 << 20), what=str(self.path))
            self._write_label_tables(table, headers, target_table)
            self._sink = StickyErrorFile(self._tmp, "r+b", name=self.path)
            with h5py.File(self._sink, "a") as f:
                f[SFR_TABLE_KEY].attrs["sfr_source"] = self.sfr_source
                f[MERGED_LABEL_KEY].attrs["sfr_source"] = self.sfr_source
            self._sink.close()
            self._sink.raise_error()
            raise_if_stopped()  # a stopped command publishes nothing
            os.replace(self._tmp, self.path)
        except BaseException:
            self._abort()
            raise
        self._closed = True

    def _abort(self):
        self._closed = True
        # Already failing: the original error matters more than one from closing.
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(Exception):
            self._sink.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._abort()


def is_sklearn_sfr_cube(path):
    """Whether ``path`` is an HDF5 file this library wrote (its ``written_by`` attribute):
    the only kind of file ``overwrite=True`` replaces."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("written_by", "")).startswith("sklearn-sfr")
    except (OSError, ValueError):
        return False


def write_hisscube(
    path,
    *,
    images=None,
    image_errors=None,
    spectra,
    spectrum_errors,
    spectrum_table,
    target_table=None,
    spectrum_target=None,
    attrs=None,
    overwrite=False,
    sfr_source="gal_totsfr",
):
    """Write arrays and a label table as a HiSS-Cube file in the reference layout.

    All four image zooms and spectral levels are derived the way the reference derives them
    (bicubic halving of the cutouts, Gaussian smoothing and resampling of the spectra); the file
    is written to a temporary name and renamed at the end.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    images, image_errors : array-like of shape (n, 5, 64, 64), default=None
        Zoom-0 cutouts (bands u, g, r, i, z) and their 1-sigma errors. None (both) writes a
        spectrum-only cube, which ``load_hisscube(path, modalities=("spectrum",))`` reads.
    spectra, spectrum_errors : array-like of shape (m, 4620)
        Level-0 spectra on the HiSS-Cube wavelength grid and their errors.
    spectrum_table : DataFrame of m rows
        Per-spectrum headers and labels, see :meth:`HiSSCubeWriter.set_tables`.
    target_table : DataFrame of n rows, default=None
        Extra per-object columns.
    spectrum_target : array-like of shape (m,), default=None
        Object row of each spectrum; None means one spectrum per object.
    attrs : dict, default=None
        Extra root attributes.
    overwrite : bool, default=False
        Replace an existing file.
    sfr_source : str, default="gal_totsfr"
        Recorded on the label tables.

    Returns
    -------
    path : pathlib.Path
        The written cube, ``path`` as a :class:`~pathlib.Path`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, os
    >>> from sklearn_sfr.datasets import write_hisscube, HiSSCube
    >>> path = os.path.join(tempfile.mkdtemp(), "one.h5")
    >>> table = pd.DataFrame({"PLATEID": [1], "MJD": [50000], "FIBERID": [1],
    ...                       "PLUG_RA": [10.0], "PLUG_DEC": [0.0], "AVG": [0.2],
    ...                       "P16": [0.0], "P84": [0.4], "FLAG": [0.0]})
    >>> img = np.ones((1, 5, 64, 64), np.float32)
    >>> spec = np.full((1, 4620), 1e-17, np.float32)
    >>> _ = write_hisscube(path, images=img, image_errors=img, spectra=spec,
    ...                    spectrum_errors=spec, spectrum_table=table)
    >>> with HiSSCube(path) as cube:
    ...     cube.n_objects, cube.read_images(zoom=3).shape
    (1, (1, 5, 8, 8))
    """
    if (images is None) != (image_errors is None):
        raise ValueError("pass both images and image_errors, or neither (spectrum-only cube)")
    spectra = np.asarray(spectra)
    n_spectra = spectra.shape[0] if spectra.ndim else 0
    if images is not None:
        images = np.asarray(images)
        n_targets = images.shape[0] if images.ndim else 0
    elif spectrum_target is not None:
        n_targets = int(np.max(spectrum_target, initial=-1)) + 1
    else:
        n_targets = n_spectra
    with HiSSCubeWriter(
        path,
        n_targets=n_targets,
        n_spectra=n_spectra,
        overwrite=overwrite,
        sfr_source=sfr_source,
        with_images=images is not None,
    ) as w:
        w.write_block(images, image_errors, spectra, spectrum_errors, spectrum_target)
        w.set_tables(spectrum_table, target_table)
        w.attrs.update(attrs or {})
    return Path(path)
