"""Throughput of HiSSCube's chunk-aligned batch reader against raw h5py reading the same rows.

For every zoom (images) and level (spectra), one epoch of shuffled batches is read twice:

* **ours**: ``HiSSCube.iter_batches(batch_size, shuffle=True)``: blocks of whole HDF5 chunks
  in a random order, rows within a block in a random order, each batch returned in that order
  and in u, g, r, i, z band order (everything a training loop gets);
* **raw h5py**: the same batches (the same rows in the same order), each read with plain
  ``h5py`` slicing of the contiguous runs of rows it covers (``ds[lo:hi]``) on one open
  dataset (file opened with the same 4 MiB chunk cache), the least a reader of these chunks
  can do.

The ratio ours / raw (MB/s) is the overhead of our reader; the goal is >= 0.9. A warm-up
pass reads each dataset once first so that both sides read from the operating system's page
cache (a shared machine's disk is noise), the two sides alternate, and the best of
``--repeats`` passes (each of whole epochs, at least half a second) is kept. A row-shuffled
epoch (``block_rows=1``: every batch scattered over the file) is shown for comparison: it
is what chunk-block shuffling avoids.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_io.py [--cube PATH] [--n-objects 2048]
[--batch-size 256] [--repeats 3]``. ``--cube`` reuses that cube or builds it there.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from sklearn_sfr.datasets import HiSSCube, make_synthetic_cube
from sklearn_sfr.datasets._batches import batch_positions


def _raw_epoch(ds, batches):
    """The rows of every batch with plain h5py slicing of their contiguous runs."""
    chunk = ds.chunks[0] if ds.chunks else 64
    total = 0
    for rows in batches:
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = np.flatnonzero(np.diff(ordered) > chunk) + 1
        parts = []
        for run in np.split(ordered, breaks):
            lo, hi = int(run[0]), int(run[-1]) + 1
            parts.append(ds[lo:hi][run - lo])
        batch = np.empty_like(np.concatenate(parts))
        batch[order] = np.concatenate(parts)  # back in the batch's (shuffled) order
        total += batch.nbytes
    return total


def _our_epoch(cube, modality, zoom, batch_size, block_rows):
    total = 0
    for _, arrays in cube.iter_batches(
        batch_size,
        modalities=(modality,),
        image_zoom=zoom,
        spectrum_level=zoom,
        shuffle=True,
        block_rows=block_rows,
        random_state=0,
    ):
        total += arrays[modality].nbytes
    return total


def _timed(fn, min_seconds=0.5):
    """MB/s of ``fn`` (which returns the bytes it read), repeated for at least min_seconds."""
    nbytes, t0 = 0, time.perf_counter()
    while True:
        nbytes += fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return nbytes / 2**20 / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cube", default=None, help="cube to read (built there if missing)")
    parser.add_argument("--n-objects", type=int, default=2048, help="objects of a new cube")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    path = Path(args.cube or os.path.join(tempfile.mkdtemp(), "bench_io.h5"))
    if not path.exists():
        print(f"building {path} ({args.n_objects} objects) ...", flush=True)
        make_synthetic_cube(path, n_objects=args.n_objects, random_state=0)
    print(f"cube: {path} ({path.stat().st_size / 2**30:.2f} GiB), batch size {args.batch_size}")
    print(f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}\n")

    header = (
        f"{'data':<22}{'chunk rows':>11}{'ours MB/s':>11}{'raw MB/s':>10}{'ratio':>7}"
        f"{'row-shuffled MB/s':>19}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    with HiSSCube(path) as cube, h5py.File(path, "r", rdcc_nbytes=4 << 20) as raw:
        n = cube.n_objects
        for modality in ("image", "spectrum"):
            for zoom in cube.zooms:
                if modality == "image":
                    name = cube._image_name(zoom)
                    what = f"image {cube.image_size(zoom)}px (zoom {zoom})"
                else:
                    name = f"dense_cube/{zoom}/ml_spectrum/spectral_1d_cube_zoom_{zoom}"
                    what = f"spectrum level {zoom}"
                ds = raw[name]
                block = cube.rows_per_chunk((modality,), zoom, zoom)
                # The very batches iter_batches reads (same blocks, same seed).
                batches = batch_positions(
                    n, args.batch_size, block_ids=np.arange(n) // block, shuffle=True,
                    random_state=0,
                )  # fmt: skip
                ds[:]  # warm-up: the page cache holds the dataset for both sides
                ours, theirs = [], []
                for _ in range(args.repeats):
                    ours.append(
                        _timed(
                            lambda m=modality, z=zoom: _our_epoch(
                                cube, m, z, args.batch_size, None
                            )
                        )
                    )
                    theirs.append(_timed(lambda ds=ds, b=batches: _raw_epoch(ds, b)))
                scattered = _timed(
                    lambda m=modality, z=zoom: _our_epoch(cube, m, z, args.batch_size, 1)
                )
                ratio = max(ours) / max(theirs)
                ratios.append(ratio)
                print(
                    f"{what:<22}{block:>11}{max(ours):>11.0f}{max(theirs):>10.0f}"
                    f"{ratio:>7.2f}{scattered:>19.0f}",
                    flush=True,
                )
    print(
        f"\nratio ours / raw h5py: min {min(ratios):.2f}, median {np.median(ratios):.2f} "
        f"(goal >= 0.9)"
    )


if __name__ == "__main__":
    main()
