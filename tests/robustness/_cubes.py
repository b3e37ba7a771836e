"""Damaged cubes for the attack catalogue: each built from a good cube by one change.

``DAMAGE`` maps a name to ``(change, expected)``: ``change`` turns a copy of a good cube into
the damaged file, ``expected`` is a regular expression the error must match besides the file
name (the HDF5 path inside the file, or what is wrong).
"""

import shutil
import warnings

import h5py
import numpy as np
import pandas as pd

from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY


def _delete(name):
    def change(path):
        with h5py.File(path, "a") as f:
            del f[name]

    return change


def _replace(name, value):
    def change(path):
        with h5py.File(path, "a") as f:
            del f[name]
            f[name] = value

    return change


def _attr(name, key, value):
    def change(path):
        with h5py.File(path, "a") as f:
            f[name].attrs[key] = value

    return change


def _labels(edit):
    def change(path):
        table = pd.read_hdf(path, MERGED_LABEL_KEY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # bytes columns
            edit(table).to_hdf(path, key=MERGED_LABEL_KEY, mode="a", format="fixed")

    return change


def _rewrite(content):
    def change(path):
        path.write_bytes(content)

    return change


def _other_layout(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 5, 8, 8), "f4")


def _dense_cube_not_a_group(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f["dense_cube"] = np.arange(3)


def _with_string_avg(table):
    return table.assign(AVG="high")


N = 6  # objects of the good cube

DAMAGE = {
    "empty file": (_rewrite(b""), r"not an HDF5 file"),
    "not HDF5": (_rewrite(b"PLATEID,MJD\n266,51602\n"), r"not an HDF5 file"),
    "HDF5 of another layout": (_other_layout, r"no /dense_cube group"),
    "dense_cube is a dataset": (_dense_cube_not_a_group, r"no /dense_cube group"),
    "missing zoom": (_delete("dense_cube/2"), r"no dataset dense_cube/2/"),
    "missing spectrum level": (
        _delete("dense_cube/1/ml_spectrum/spectral_1d_cube_zoom_1"),
        r"no dataset dense_cube/1/ml_spectrum/spectral_1d_cube_zoom_1",
    ),
    "missing image errors": (
        _delete("dense_cube/3/ml_image/errors"),
        r"no dataset dense_cube/3/ml_image/errors",
    ),
    "missing spectrum references": (
        _delete("dense_cube/0/ml_spectrum/spec_metadata_refs"),
        r"no dataset dense_cube/0/ml_spectrum/spec_metadata_refs",
    ),
    "label table shorter than the spectra": (
        _labels(lambda t: t.iloc[:3]),
        r"spec_metadata_refs point to spectrum \d+ but the label table has 3 rows",
    ),
    "label table not a table": (
        _replace(MERGED_LABEL_KEY, np.arange(4)),
        rf"cannot read the label table /{MERGED_LABEL_KEY}",
    ),
    "non-numeric labels": (
        _labels(_with_string_avg),
        rf"/{MERGED_LABEL_KEY} has non-numeric values in column 'AVG'",
    ),
    "more objects than rows": (
        _attr("dense_cube", "target_count", 50),
        r"dense_cube/\d/\w+/\w+ has 6 rows but the cube has 50 objects",
    ),
    "object count not an integer": (
        _attr("dense_cube", "target_count", "six"),
        r"/dense_cube@target_count must be a non-negative integer",
    ),
    "spectra of strings": (
        _replace(
            "dense_cube/1/ml_spectrum/spectral_1d_cube_zoom_1", np.full((N, 2310), b"x", "S1")
        ),
        r"dense_cube/1/ml_spectrum/spectral_1d_cube_zoom_1 has dtype \|S1",
    ),
    "images of the wrong shape": (
        _replace("dense_cube/2/ml_image/cutout_3d_cube_zoom_2", np.zeros((N, 3, 16, 16), "f4")),
        r"dense_cube/2/ml_image/cutout_3d_cube_zoom_2 has shape \(6, 3, 16, 16\)",
    ),
    "references of the wrong dtype": (
        _replace("dense_cube/0/ml_spectrum/spec_metadata_refs", np.zeros((N, 200), "i4")),
        r"dense_cube/0/ml_spectrum/spec_metadata_refs has dtype int32, not a reference table",
    ),
}


def damaged_copy(good, folder, name):
    """A copy of the cube ``good`` in ``folder`` with the damage ``name``; returns the path."""
    path = folder / (name.replace(" ", "_") + ".h5")
    shutil.copy(good, path)
    change, _ = DAMAGE[name]
    change(path)
    return path


# -- helpers for the reference attacks (tests/robustness/test_references.py) -----------------
def copy_cube(good, folder, name):
    """A copy of the cube ``good`` in ``folder`` named ``name``.h5; returns the path."""
    path = folder / (name.replace(" ", "_") + ".h5")
    shutil.copy(good, path)
    return path


def set_reference(path, name, where, **fields):
    """Set the fields (``ds_slice_idx=-3``, ``x_min=...``) of the REF ``name[where]``."""
    with h5py.File(path, "a") as f:
        ds = f[name]
        ref = ds[where]
        for key, value in fields.items():
            ref[key] = value
        ds[where] = ref


def set_labels(path, column, rows, value):
    """Put ``value`` in ``column`` of the merged label table at ``rows`` (None: every row)."""

    def edit(table):
        table = table.copy()
        table[column] = table[column].astype(np.float64)
        table.loc[table.index if rows is None else rows, column] = value
        return table

    _labels(edit)(path)


def empty_labels(path):
    """Keep the merged label table's columns but none of its rows."""
    _labels(lambda table: table.iloc[:0])(path)


def recompress(path, name, chunks):
    """Rewrite the dataset ``name`` gzip-compressed in ``chunks`` (same values and attrs)."""
    with h5py.File(path, "a") as f:
        old = f[name]
        data, attrs = old[...], dict(old.attrs)
        del f[name]
        new = f.create_dataset(name, data=data, chunks=chunks, compression="gzip")
        for key, value in attrs.items():
            new.attrs[key] = value


def corrupt_chunk(path, name, coord):
    """Overwrite the stored bytes of the chunk at ``coord`` (its first element's index) of the
    compressed dataset ``name``, as a bad disk sector would: reading that chunk then fails in
    HDF5's filter pipeline ("filter returned failure")."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        assert ds.compression is not None, f"{name} is not compressed"
        info = ds.id.get_chunk_info_by_coord(tuple(coord))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
