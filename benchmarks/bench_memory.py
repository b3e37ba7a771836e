"""Out-of-core training at bounded memory: one FusionRegressor epoch on a cube >> the budget.

1. Builds (or reuses) a synthetic cube at least ``--ratio`` times the memory budget
   (``--budget-gb``, 1.5 GB by default): ``make_synthetic_cube`` writes it block by block.
   Free disk is checked first.
2. Trains ``FusionRegressor`` for one epoch on every FLAG=0 object straight from the file
   (``HiSSCubeDataset``: chunk-block shuffled batches read as the data loader asks for them)
   while a thread samples the resident memory (RSS) of this process **and of its data-loader
   worker processes** every 20 ms (psutil); prints the cube size, the bytes the epoch read,
   the peak RSS and the ratio cube size / peak RSS.
3. On a subset (``--subset`` objects) compares the training throughput (objects/s of one
   epoch) out of core with the in-memory path (the same objects as a SliceDict in memory).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_memory.py [--cube PATH] [--n-objects 32768]
[--image-zoom 0] [--spectrum-zoom 0] [--workers 0] [--read-ahead 2]``. The full-size cube
(about 0.36 MB per object with every zoom and the errors: 11.7 GB for 32,768 objects) takes
about 15 minutes to build on two cores. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from skorch.helper import SliceDict

from sklearn_sfr.datasets import make_synthetic_cube
from sklearn_sfr.neural import FusionRegressor, HiSSCubeDataset

#: Bytes per object of a synthetic cube with every zoom, level and error (measured).
_BYTES_PER_OBJECT = 0.358e6  # 11.73 GB for 32,768 objects, 8.60 GB for 24,000


class PeakRSS:
    """Samples the RSS of this process plus all its children in a thread; ``peak`` in bytes."""

    def __init__(self, interval=0.02):
        self.interval = interval
        self.peak = 0
        self.samples = []  # (seconds since start, bytes)
        self._stop = threading.Event()
        self._me = psutil.Process()

    def _rss(self):
        total = self._me.memory_info().rss
        for child in self._me.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a worker that just ended
                total += child.memory_info().rss
        return total

    def _run(self):
        t0 = time.perf_counter()
        while not self._stop.is_set():
            rss = self._rss()
            self.samples.append((time.perf_counter() - t0, rss))
            self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _model(args, **extra):
    return FusionRegressor(
        width=args.width,
        embed_dim=2 * args.width,
        max_epochs=1,
        batch_size=args.batch_size,
        validation_fraction=0.0,
        device="cpu",
        random_state=0,
        **extra,
    )


def _loader_kwargs(args):
    kwargs = {"iterator_train__read_ahead": args.read_ahead}
    if args.workers:
        kwargs["iterator_train__num_workers"] = args.workers
    return kwargs


def _epoch_rate(model, X, y=None):
    """Objects per second of one training epoch (``fit`` with ``max_epochs=1``)."""
    t0 = time.perf_counter()
    model.fit(X, y)
    return (len(X) if y is None else len(y)) / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cube", default=None, help="cube (built there if missing)")
    parser.add_argument("--n-objects", type=int, default=32768, help="objects of a new cube")
    parser.add_argument("--budget-gb", type=float, default=1.5, help="memory budget (GB)")
    parser.add_argument("--ratio", type=float, default=6.0, help="cube size / budget, at least")
    parser.add_argument("--image-zoom", type=int, default=0)
    parser.add_argument("--spectrum-zoom", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=8, help="network width (small: fast)")
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes")
    parser.add_argument("--read-ahead", type=int, default=2, help="batches read ahead")
    parser.add_argument("--subset", type=int, default=2000, help="objects of the comparison")
    args = parser.parse_args(argv)

    budget = args.budget_gb * 1e9
    path = Path(args.cube or os.path.join(tempfile.gettempdir(), "sfr_bench_memory.h5"))
    if not path.exists():
        need = args.n_objects * _BYTES_PER_OBJECT
        if need < args.ratio * budget:
            raise SystemExit(
                f"{args.n_objects} objects make about {need / 1e9:.1f} GB, less than "
                f"{args.ratio} x the {args.budget_gb} GB budget: raise --n-objects"
            )
        free = shutil.disk_usage(path.parent).free
        if free < 1.2 * need:
            raise SystemExit(
                f"{path.parent} has {free / 1e9:.1f} GB free; the cube needs about "
                f"{need / 1e9:.1f} GB"
            )
        print(f"building {path} ({args.n_objects} objects, ~{need / 1e9:.1f} GB) ...", flush=True)
        make_synthetic_cube(path, n_objects=args.n_objects, random_state=0, verbose=True)
    size = path.stat().st_size

    with PeakRSS() as rss:
        data = HiSSCubeDataset(path, image_zoom=args.image_zoom, spectrum_zoom=args.spectrum_zoom)
        sample = data.read([0])
        row_bytes = sum(v[0].nbytes for k, v in sample.items() if k != "redshift")
        start_rss = rss._rss()
        t0 = time.perf_counter()
        model = _model(args, net_kwargs=_loader_kwargs(args)).fit(data)
        seconds = time.perf_counter() - t0
    assert np.isfinite(model.net_.history[-1]["train_loss"])
    n = len(data)
    read = n * row_bytes
    print(f"cube: {path}")
    print(f"cube size on disk: {size / 1e9:.2f} GB = {size / budget:.1f} x the budget")
    print(
        f"one epoch out of core: {n} FLAG=0 objects, image zoom {args.image_zoom}, spectrum "
        f"level {args.spectrum_zoom}: {read / 1e9:.2f} GB of arrays read "
        f"({read / budget:.1f} x the budget), {seconds:.0f} s, {n / seconds:.0f} objects/s"
    )
    print(
        f"data-loader workers: {args.workers}, read-ahead: {args.read_ahead} batches, batch "
        f"size {args.batch_size}, width {args.width}"
    )
    print(
        f"peak RSS (process + workers, sampled every 20 ms): {rss.peak / 1e9:.2f} GB "
        f"(after opening the dataset: {start_rss / 1e9:.2f} GB); budget {args.budget_gb} GB: "
        f"{'OK' if rss.peak < budget else 'EXCEEDED'}"
    )
    print(f"cube size / peak RSS: {size / rss.peak:.1f}")
    # No growth while training: the peak of each quarter of the run.
    t, mem = np.array(rss.samples).T
    quarters = [mem[(t >= q * t[-1] / 4) & (t <= (q + 1) * t[-1] / 4)].max() for q in range(4)]
    print("peak RSS by quarter of the run: " + ", ".join(f"{m / 1e9:.2f}" for m in quarters))

    # Throughput on a subset: the same objects from the file and from memory.
    rng = np.random.default_rng(0)
    index = np.sort(rng.choice(n, size=min(args.subset, n), replace=False))
    lazy = HiSSCubeDataset(
        path, index, image_zoom=args.image_zoom, spectrum_zoom=args.spectrum_zoom
    )
    arrays = lazy.read(np.arange(len(lazy)))
    X = SliceDict(**arrays)
    rates = {"out of core": [], "in memory": []}
    for _ in range(2):  # alternate, keep the best: the machine is shared
        rates["out of core"].append(
            _epoch_rate(_model(args, net_kwargs=_loader_kwargs(args)), lazy)
        )
        rates["in memory"].append(_epoch_rate(_model(args), X, lazy.y))
    ooc, mem = max(rates["out of core"]), max(rates["in memory"])
    print(
        f"throughput on {len(lazy)} objects (one epoch, best of 2): out of core {ooc:.0f} "
        f"objects/s, in memory {mem:.0f} objects/s, ratio {ooc / mem:.2f}"
    )


if __name__ == "__main__":
    main()
