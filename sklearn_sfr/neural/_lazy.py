"""Out-of-core training: a torch Dataset over an open HiSS-Cube file.

A cube larger than memory is read row by row while training; each worker process opens its
own read-only handle (HDF5 handles must not cross a fork), and only the selected objects'
labels are held in memory.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..datasets._loader import _flag_rows, _to_sdss_units
from ..datasets._reader import HiSSCube
from ._inputs import network_arrays


class HiSSCubeDataset(torch.utils.data.Dataset):
    """Objects of a HiSS-Cube file, read lazily; pass it to a neural estimator's ``fit``.

    ``model.fit(HiSSCubeDataset(path))`` trains without loading the arrays into memory: items
    are read from the file when the data loader asks for them, through one file handle per
    worker process (set ``net_kwargs={"iterator_train__num_workers": 4}`` to read in
    parallel).

    Parameters
    ----------
    path : str or path-like
        The cube (opened read-only).
    index : array-like of int, default=None
        Rows of the cube to use (after the flag selection); None uses all.
    image_zoom, spectrum_zoom : {0, 1, 2, 3}, default=0
        Resolution of each modality.
    target : str, default="AVG"
        Column of the metadata table to predict (NaN labels are allowed for
        :class:`ContrastiveRegressor`).
    flag : int, sequence of int or None, default=0
        MPA-JHU flags to keep, as in :func:`~sklearn_sfr.datasets.load_hisscube`.
    modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
    units : {"sdss", "cube"}, default="sdss"
        As in :func:`~sklearn_sfr.datasets.load_hisscube`.

    Attributes
    ----------
    rows : ndarray of int
        Cube rows of the dataset's items.
    y : ndarray of float
        Targets of the items.
    frame : DataFrame
        Metadata of the items.

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.neural import HiSSCubeDataset, SpectrumRegressor
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"),
    ...                            n_objects=40, random_state=0)
    >>> data = HiSSCubeDataset(path, spectrum_zoom=3, modalities=("spectrum",))
    >>> model = SpectrumRegressor(max_epochs=2, random_state=0).fit(data)
    >>> model.predict(data).shape == data.y.shape
    True
    """

    def __init__(
        self,
        path,
        index=None,
        *,
        image_zoom=0,
        spectrum_zoom=0,
        target="AVG",
        flag=0,
        modalities=("image", "spectrum"),
        units="sdss",
    ):
        self.path = path
        self.image_zoom = image_zoom
        self.spectrum_zoom = spectrum_zoom
        self.modalities = tuple(modalities)
        self.units = units
        with HiSSCube(path) as cube:
            cube._check_zoom(image_zoom, "image_zoom")
            cube._check_zoom(spectrum_zoom, "spectrum_zoom")
            frame = cube.read_frame()
        if target not in frame.columns:
            raise KeyError(f"target {target!r} is not a column of {path}")
        rows = _flag_rows(frame, flag)
        if index is not None:
            rows = rows[np.asarray(index)]
        self.rows = rows
        self.frame = frame.iloc[rows].reset_index(drop=True)
        self.y = self.frame[target].to_numpy(dtype=np.float64)
        # As load_hisscube's X["redshift"]: the models may read it as a per-object scalar.
        self.redshift = (
            self.frame["Z"].to_numpy(dtype=np.float64)
            if "Z" in self.frame
            else np.full(len(self.frame), np.nan)
        )
        self._cube = None
        self._pid = None

    def __len__(self):
        return len(self.rows)

    def _handle(self):
        # One handle per process: a handle inherited through fork is not safe to use.
        if self._cube is None or self._pid != os.getpid():
            self._cube = HiSSCube(self.path)
            self._pid = os.getpid()
        return self._cube

    def read(self, positions):
        """Arrays of the items at ``positions`` (a batch read), keyed by modality, plus their
        ``redshift``."""
        cube = self._handle()
        positions = np.asarray(positions)
        rows = self.rows[positions]
        arrays = {"redshift": self.redshift[positions]}
        if "image" in self.modalities:
            arrays["image"] = cube.read_images(rows, zoom=self.image_zoom)
        if "spectrum" in self.modalities:
            arrays["spectrum"] = cube.read_spectra(rows, level=self.spectrum_zoom)
        if self.units == "sdss":
            _to_sdss_units(arrays)
        return arrays

    def __getitem__(self, i):
        arrays = self.read([i])
        return {k: v[0] for k, v in arrays.items()}, self.y[i]

    def __getstate__(self):
        # Pickled into worker processes or with a model: never carry an open handle.
        state = self.__dict__.copy()
        state["_cube"] = None
        state["_pid"] = None
        return state


class ScaledDataset(torch.utils.data.Dataset):
    """Items of a :class:`HiSSCubeDataset` as network inputs (scaled, NaN masked).

    ``roles`` maps each network input to the dataset's key holding it (by default each
    modality to itself) and ``scalar_keys`` names the per-object scalars (e.g. ``redshift``)
    the network reads, as in :func:`~sklearn_sfr.neural._inputs.network_arrays`.
    """

    def __init__(self, dataset, scaler, y=None, roles=None, scalar_keys=()):
        self.dataset = dataset
        self.scaler = scaler
        self.y = y
        self.roles = {m: m for m in dataset.modalities} if roles is None else dict(roles)
        self.scalar_keys = tuple(scalar_keys)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        arrays = network_arrays(self.dataset.read([i]), self.roles, self.scalar_keys)
        inputs = {k: v[0] for k, v in self.scaler.transform(arrays).items()}
        target = np.float32(0.0) if self.y is None else self.y[i]
        return inputs, target


def scaler_sample(dataset, max_rows=4096, random_state=0):
    """A batch read of up to ``max_rows`` items, enough to learn the input scaling."""
    n = len(dataset)
    rng = np.random.default_rng(random_state)
    positions = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    return dataset.read(positions)
