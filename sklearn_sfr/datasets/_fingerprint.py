"""A short content fingerprint of a cube: what a report or a saved model records so that it
can tell, later, whether a file at the same path still holds the same data."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

#: The columns that identify the objects and their labels: what scores depend on.
_COLUMNS = ("PLATEID", "MJD", "FIBERID", "RA", "DEC", "Z", "AVG", "P16", "P84", "FLAG")


def cube_fingerprint(path):
    """SHA-256 (hex, 16 characters) of a cube's objects, labels and array shapes.

    Cheap (the metadata table, not the pixels): two cubes with the same objects, labels,
    zooms and shapes share a fingerprint; a cube rebuilt with another seed or size, or with
    other labels, does not.

    Parameters
    ----------
    path : str or path-like
        A HiSS-Cube file (opened read-only).

    Returns
    -------
    str

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.datasets._fingerprint import cube_fingerprint
    >>> folder = tempfile.mkdtemp()
    >>> a = make_synthetic_cube(os.path.join(folder, "a.h5"), n_objects=10, random_state=0)
    >>> b = make_synthetic_cube(os.path.join(folder, "b.h5"), n_objects=10, random_state=1)
    >>> len(cube_fingerprint(a)), cube_fingerprint(a) == cube_fingerprint(b)
    (16, False)
    """
    from ._reader import HiSSCube

    digest = hashlib.sha256()
    with HiSSCube(path) as cube:
        frame = cube.read_frame()
        shapes = [cube.n_objects, cube.has_images()]
        for zoom in cube.zooms:
            shapes.append(len(cube.wavelength(zoom)))
            if cube.has_images():
                shapes.append(cube.image_size(zoom))
    digest.update(repr(shapes).encode())
    columns = [c for c in _COLUMNS if c in frame.columns]
    digest.update(repr(columns).encode())
    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    digest.update(np.ascontiguousarray(hashed).tobytes())
    return digest.hexdigest()[:16]
