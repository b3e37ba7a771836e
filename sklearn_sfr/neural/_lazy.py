"""Out-of-core training: a torch Dataset over an open HiSS-Cube file.

A cube larger than memory is read batch by batch while training: the data loader asks for a
whole batch at once (``__getitems__``), the batch is read with a few contiguous chunk reads,
and ``CubeDataLoader`` shuffles blocks of whole HDF5 chunks rather than single rows, so
that a batch touches few chunks. Each worker process opens its own read-only handle (HDF5
handles must not cross a fork), and only the selected objects' labels are held in memory.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..datasets._batches import block_order, count_blocks, read_ahead
from ..datasets._reader import HiSSCube
from ..datasets._selection import select_objects, to_sdss_units
from ..utils._memory import release_free_memory
from ._inputs import network_arrays


class HiSSCubeDataset(torch.utils.data.Dataset):
    """Objects of a HiSS-Cube file, read lazily; pass it to a neural estimator's ``fit``.

    ``model.fit(HiSSCubeDataset(path))`` trains without loading the arrays into memory: each
    batch is read from the file when the data loader asks for it (one batch read, not one
    read per object), through one file handle per worker process. Training batches are
    shuffled by blocks of ``block_rows`` cube rows (see ``CubeDataLoader``). Set
    ``net_kwargs={"iterator_train__num_workers": 4}`` to read in parallel processes, or
    ``{"iterator_train__read_ahead": 2}`` to read the next batches in a background thread.

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
        :class:`ContrastiveRegressor`). Its values are checked as
        :func:`~sklearn_sfr.datasets.load_hisscube` checks them: an infinite label, or a log
        SFR beyond +-20 dex, is an error naming the object.
    flag : int, sequence of int or None, default=0
        MPA-JHU flags to keep, as in :func:`~sklearn_sfr.datasets.load_hisscube` (a selection
        that keeps no object is an error). :class:`ContrastiveRegressor` pretrains on every
        kept object but trains its head on the FLAG=0 labels only (see ``flags``), so
        ``flag=None`` adds the flagged and unlabelled objects to its pretraining without
        letting their labels in.
    modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
    units : {"sdss", "cube"}, default="sdss"
        As in :func:`~sklearn_sfr.datasets.load_hisscube`.
    block_rows : int or None, default=None
        Cube rows per shuffled block: None is one HDF5 chunk of the datasets read
        (:meth:`~sklearn_sfr.datasets.HiSSCube.rows_per_chunk`, the fastest reads); 1
        shuffles single objects (the most random batches, the slowest reads).

    Attributes
    ----------
    rows : ndarray of int
        Cube rows of the dataset's items.
    block_rows_ : int
        The resolved ``block_rows``.
    y : ndarray of float
        Targets of the items (NaN: missing).
    flags : ndarray of float
        MPA-JHU FLAG of the items (NaN: missing), as ``X["flag"]`` of
        :func:`~sklearn_sfr.datasets.load_hisscube`.
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
        block_rows=None,
    ):
        self.path = path
        self.image_zoom = image_zoom
        self.spectrum_zoom = spectrum_zoom
        self.modalities = tuple(modalities)
        self.units = units
        self.block_rows = block_rows
        if block_rows is not None and (not isinstance(block_rows, int) or block_rows < 1):
            raise ValueError(f"block_rows must be None or a positive integer, got {block_rows!r}")
        with HiSSCube(path) as cube:
            # The selection of load_hisscube, with the file open so that errors name its rows.
            chosen = select_objects(
                cube,
                target=target,
                flag=flag,
                image_zoom=image_zoom,
                spectrum_zoom=spectrum_zoom,
                modalities=self.modalities,
                index=index,
            )
            self.block_rows_ = block_rows or cube.rows_per_chunk(
                self.modalities, image_zoom, spectrum_zoom
            )
        self.rows, self.frame, self.y = chosen.rows, chosen.frame, chosen.y
        self.flags = chosen.flags
        # As load_hisscube's X["redshift"]: the models may read it as a per-object scalar.
        self.redshift = chosen.redshift
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
        """Read the items at ``positions`` in one batch read.

        Parameters
        ----------
        positions : array-like of int
            Positions of the items in this dataset (not cube rows).

        Returns
        -------
        arrays : dict of str to ndarray
            The items' arrays keyed by modality, plus their ``redshift``.
        """
        cube = self._handle()
        positions = np.asarray(positions)
        rows = self.rows[positions]
        arrays = {"redshift": self.redshift[positions]}
        if "image" in self.modalities:
            arrays["image"] = cube.read_images(rows, zoom=self.image_zoom)
        if "spectrum" in self.modalities:
            arrays["spectrum"] = cube.read_spectra(rows, level=self.spectrum_zoom)
        if self.units == "sdss":
            to_sdss_units(arrays)
        return arrays

    def block_ids(self):
        """Get the shuffle block of each item: its cube row // ``block_rows_``.

        Returns
        -------
        blocks : ndarray of int of shape (n_items,)
            The block of each item, in the order of the items.
        """
        return self.rows // self.block_rows_

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, positions):
        # torch's DataLoader calls this with a batch's positions: one read for the batch.
        arrays = self.read(positions)
        return [({k: v[j] for k, v in arrays.items()}, self.y[p]) for j, p in enumerate(positions)]

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

    def block_ids(self):
        """The shuffle blocks of the underlying dataset's items."""
        return self.dataset.block_ids()

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, positions):
        arrays = network_arrays(self.dataset.read(positions), self.roles, self.scalar_keys)
        inputs = self.scaler.transform(arrays)
        return [
            (
                {k: v[j] for k, v in inputs.items()},
                np.float32(0.0) if self.y is None else self.y[p],
            )
            for j, p in enumerate(positions)
        ]


def _block_ids(dataset):
    """Shuffle blocks of a dataset's items (also behind a ``Subset``), or None if none."""
    if isinstance(dataset, torch.utils.data.Subset):
        inner = _block_ids(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    getter = getattr(dataset, "block_ids", None)
    return None if getter is None else np.asarray(getter())


class ChunkShuffleSampler(torch.utils.data.Sampler):
    """Positions in a random order that keeps each block's items together.

    Every epoch the items are shuffled as torch's ``RandomSampler`` shuffles them (its seed
    is drawn from torch's global generator, so ``torch.manual_seed`` fixes the order), then
    grouped by block, the blocks in a random order
    (:func:`~sklearn_sfr.datasets._batches.block_order`). With one block the order is
    ``RandomSampler``'s.

    Parameters
    ----------
    block_ids : array-like of int
        The block of each item.
    """

    def __init__(self, block_ids):
        self.block_ids = np.asarray(block_ids)
        self._n_blocks = count_blocks(self.block_ids)  # fixed: not recounted every epoch

    def __len__(self):
        return len(self.block_ids)

    def __iter__(self):
        n = len(self.block_ids)
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator()
        generator.manual_seed(seed)
        order = torch.randperm(n, generator=generator).numpy()
        blocks = torch.randperm(self._n_blocks, generator=generator).numpy()
        yield from block_order(order, self.block_ids, blocks).tolist()


class CubeDataLoader(torch.utils.data.DataLoader):
    """torch's ``DataLoader`` with chunk-block shuffling and an optional read-ahead thread.

    The neural estimators use it for :class:`HiSSCubeDataset` inputs. With ``shuffle=True``
    and a dataset that knows its blocks (a :class:`HiSSCubeDataset`, also behind a
    ``Subset``), the order comes from :class:`ChunkShuffleSampler`; any other dataset is
    shuffled as by ``DataLoader``. Batches are fetched with the dataset's ``__getitems__``
    (one read per batch).

    Parameters
    ----------
    dataset : torch Dataset
    batch_size : int, default=1
    shuffle : bool, default=False
    read_ahead : int, default=0
        Batches prepared ahead in a background thread (useful with ``num_workers=0``, where
        nothing else overlaps reading the file with training).
    release_memory : bool, default=True
        Before each next batch, hand the memory the last one freed back to the operating
        system (glibc ``malloc_trim``): the resident memory then stays that of one batch
        instead of the allocator's high-water mark (1.48 -> 1.29 GB peak in
        ``benchmarks/bench_memory.py`` on the default cube).
    **kwargs
        Passed to ``DataLoader`` (``num_workers``, ``collate_fn``, ...).
    """

    def __init__(
        self, dataset, batch_size=1, shuffle=False, *, read_ahead=0, release_memory=True, **kwargs
    ):
        if shuffle and kwargs.get("sampler") is None and kwargs.get("batch_sampler") is None:
            blocks = _block_ids(dataset)
            if blocks is not None:
                kwargs["sampler"] = ChunkShuffleSampler(blocks)
                shuffle = False
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)
        self.read_ahead = int(read_ahead)
        self.release_memory = bool(release_memory)

    def __iter__(self):
        batches = super().__iter__()
        if self.read_ahead > 0:
            batches = read_ahead(batches, self.read_ahead)
        return _releasing(batches) if self.release_memory else batches


def _releasing(batches):
    for batch in batches:
        yield batch
        release_free_memory()  # runs when the training loop asks for the next batch


#: skorch parameters that make a net read a HiSSCubeDataset through ``CubeDataLoader``.
LAZY_LOADERS = {"iterator_train": CubeDataLoader, "iterator_valid": CubeDataLoader}


def scaler_sample(dataset, max_rows=4096, max_bytes=128 << 20, random_state=0):
    """A batch read of up to ``max_rows`` items, enough to learn the input scaling.

    At most ``max_bytes`` of arrays (but at least 256 items): at 64-pixel cutouts 4096 items
    would be 400 MB and several times that while the scaler works through them, more than
    an out-of-core fit should need; a thousand objects' pixels pin the scaling down as well.
    """
    n = len(dataset)
    first = dataset.read([0]) if n else {}
    row_bytes = sum(v[0].nbytes for v in first.values())
    max_rows = min(max_rows, max(256, max_bytes // max(row_bytes, 1)))
    rng = np.random.default_rng(random_state)
    positions = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    return dataset.read(positions)
