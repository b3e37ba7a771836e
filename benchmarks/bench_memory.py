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

A second section (``--section fit``) measures **in-memory fits** (issue #21: the peak RSS of
a ``FusionRegressor`` fit at most 2x the arrays it trains on, at every resolution pair). For
each (image zoom, spectrum zoom) pair, a fresh subprocess loads a small synthetic cube's FLAG=0
objects with ``load_hisscube`` (``--fit-cube``, built there with ``--fit-n-objects`` objects
if missing: 2,000 objects take about 40 s and 0.75 GB), resets the kernel's high-water mark
(``/proc/self/clear_refs``; without it ``ru_maxrss``, an upper bound) and fits
``FusionRegressor`` (default widths and validation split, ``--fit-epochs`` epochs, CPU, one
thread). It prints the bytes of the arrays the fit trains on (X's arrays and y), the peak RSS
above the RSS before ``fit`` and their ratio beside the goal. That peak includes the RSS of
``import torch._dynamo``, which every torch optimizer does when the process builds its first
one (55 to 67 MB here with torch 2.13): measured on its own before the fit ("import MB"), it is
paid once per process, so the ratio without it ("w/o") is what every later fit costs. A
second fresh process fits the first ``2 * batch_size`` objects only: its peak (without the
import) is the part that does not grow with the data (torch's set-up, the network, one
batch's activations and gradients, which a batch above ``_base.STEP_ACTIVATION_BUDGET`` keeps
chunk by chunk), shown as "fixed"; the rest, over the arrays, is the "per-data" ratio (the
copies of the data). Beside it, the same two processes train the plain PyTorch fusion of
``bench_time_to_quality.py`` (what a practitioner writes without this library: standardised
copies of the arrays, two small CNNs, Adam) for the same epochs on the same arrays: its first
fit's peak ("plain MB", import included as for ours), over the arrays ("plain"), and its part
that does not grow with the data ("p fixed"). Where our ratio misses the goal on small
arrays, that column says what any PyTorch fit of such a network costs there. ``--fit-pairs all``
measures all 16 pairs, ``--fit-pairs 0:0,3:0`` those named; by default a representative six
(the diagonal and both extremes). Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_memory.py
--section fit [--fit-cube PATH] [--fit-n-objects 2000] [--fit-epochs 1] [--fit-pairs
{default,all,I:S,...}]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import shutil
import subprocess
import sys
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


#: Image size (pixels) and spectrum length at each zoom of the synthetic cube.
_IMAGE_PX = {0: 64, 1: 32, 2: 16, 3: 8}
_SPECTRUM_PX = {0: 4620, 1: 2310, 2: 1155, 3: 577}
#: The resolution pairs ``--section fit`` measures by default: the diagonal and both extremes.
_DEFAULT_PAIRS = [(0, 0), (1, 1), (2, 2), (3, 3), (0, 3), (3, 0)]
#: Goal of issue #21: the peak RSS of an in-memory fit at most this times its arrays.
_FIT_GOAL = 2.0


def _status_bytes(field):
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak():
    """Reset the kernel's high-water mark to the current RSS (Linux >= 4.0); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _plain_pytorch_fit(X, y, epochs):
    """``bench_time_to_quality``'s practitioner's reference (standardised copies of the
    arrays, two small CNNs, Adam, batches of 128), trained ``epochs`` epochs on X."""
    import bench_time_to_quality  # beside this file: on sys.path when run as a script

    args = argparse.Namespace(max_epochs=epochs, seed=0)
    few = slice(0, 2)  # its per-epoch test score, on two rows: not part of the comparison
    bench_time_to_quality.run_reference(X, y, X[few], y[few], args, "cpu")


def _fit_child(side, path, image_zoom, spectrum_zoom, epochs, rows):
    """In this fresh process: load, then one measured fit (``side``: "ours", the default
    ``FusionRegressor``, or "plain", :func:`_plain_pytorch_fit`); prints JSON."""
    import resource

    from sklearn_sfr.datasets import load_hisscube

    X, y = load_hisscube(path, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, return_X_y=True)
    if rows:
        X, y = X[:rows], np.ascontiguousarray(y[:rows])
        X = SliceDict(**{k: np.ascontiguousarray(v) for k, v in X.items()})
    if side == "ours":
        model = FusionRegressor(max_epochs=epochs, device="cpu", random_state=0)
        fit = functools.partial(model.fit, X, y)
    else:
        fit = functools.partial(_plain_pytorch_fit, X, y, epochs)
    nbytes = sum(np.asarray(v).nbytes for v in X.values()) + y.nbytes
    gc.collect()
    # Every torch optimizer imports torch._dynamo when it is first built (torch >= 2.0): a
    # cost of the process's first fit, not of this one's data. Measured on its own, then
    # added back to the fit's peak below.
    before = _status_bytes("VmRSS")
    import torch._dynamo  # noqa: F401

    torch_import = _status_bytes("VmRSS") - before
    reset = _reset_peak()
    base = _status_bytes("VmRSS")
    t0 = time.perf_counter()
    fit()
    seconds = time.perf_counter() - t0
    # Without the reset, ru_maxrss (KiB on Linux) is the process's peak: an upper bound.
    peak = (
        _status_bytes("VmHWM")
        if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    result = {"bytes": nbytes, "n": len(y), "base": base, "peak": peak, "reset": reset}
    result["torch_import"] = torch_import
    print(json.dumps({**result, "seconds": seconds}))


def _run_fit_child(path, pair, epochs, rows=0, side="ours"):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--fit-child", side, str(path), *map(str, pair)]
    command += [str(epochs), str(rows)]
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _fit_section(args):
    """Peak RSS of in-memory FusionRegressor fits per resolution pair, over their arrays."""
    default = os.path.join(tempfile.gettempdir(), f"sfr_bench_fit_{args.fit_n_objects}.h5")
    path = Path(args.fit_cube or default)
    if not path.exists():
        print(f"building {path} ({args.fit_n_objects} objects) ...", flush=True)
        make_synthetic_cube(path, n_objects=args.fit_n_objects, random_state=0)
    if args.fit_pairs == "all":
        pairs = [(i, s) for i in range(4) for s in range(4)]
    elif args.fit_pairs == "default":
        pairs = _DEFAULT_PAIRS
    else:
        pairs = [tuple(int(z) for z in pair.split(":")) for pair in args.fit_pairs.split(",")]
    small = 2 * 128  # two batches of the default batch size: the part that does not scale
    print(
        f"in-memory FusionRegressor fits on {path} (FLAG=0 objects, {args.fit_epochs} "
        f"epoch(s), default widths and validation split, CPU, 1 thread); peak RSS above the "
        f"RSS before fit; goal <= {_FIT_GOAL:g}x the arrays"
    )
    header = (
        f"{'image':>6} {'spectrum':>8} {'objects':>7} {'arrays MB':>9} {'peak MB':>8} "
        f"{'ratio':>6} {'goal':>5} {'import MB':>9} {'w/o':>6} {'fixed MB':>8} {'per-data':>8} "
        f"{'fit s':>6} {'plain MB':>8} {'plain':>6} {'p fixed':>7}"
    )
    print(header)
    for pair in pairs:
        sides = {}
        for side in ("ours", "plain"):
            fit = _run_fit_child(path, pair, args.fit_epochs, side=side)
            fixed = _run_fit_child(path, pair, args.fit_epochs, rows=small, side=side)
            # The fit's own peak (without torch's one-time import), and with it: the first
            # fit's.
            own, fixed_own = fit["peak"] - fit["base"], fixed["peak"] - fixed["base"]
            sides[side] = (fit, fixed, own, fixed_own, own + fit["torch_import"])
        fit, fixed, own, fixed_own, extra = sides["ours"]
        ratio = extra / fit["bytes"]
        per_data = (own - fixed_own) / (fit["bytes"] - fixed["bytes"])
        ok = "OK" if ratio <= _FIT_GOAL else "over"
        *_, plain_fixed, plain_extra = sides["plain"]
        print(
            f"{_IMAGE_PX[pair[0]]:>4}px {_SPECTRUM_PX[pair[1]]:>6}px {fit['n']:>7} "
            f"{fit['bytes'] / 1e6:>9.1f} {extra / 1e6:>8.1f} {ratio:>5.2f}x {ok:>5} "
            f"{fit['torch_import'] / 1e6:>9.1f} {own / fit['bytes']:>5.2f}x "
            f"{fixed_own / 1e6:>8.1f} {per_data:>7.2f}x {fit['seconds']:>6.1f} "
            f"{plain_extra / 1e6:>8.1f} {plain_extra / fit['bytes']:>5.2f}x "
            f"{plain_fixed / 1e6:>7.1f}" + ("" if fit["reset"] else "  (ru_maxrss: upper bound)"),
            flush=True,
        )
    print(
        "plain MB, plain: the first-fit peak (import included) of the plain PyTorch fusion of "
        "bench_time_to_quality.py\non the same arrays, and over them; p fixed: its peak on "
        f"{small} objects (import excluded), its part that does not grow with the data"
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--fit-child"]:
        side, path, image_zoom, spectrum_zoom, epochs, rows = argv[1:7]
        return _fit_child(side, path, int(image_zoom), int(spectrum_zoom), int(epochs), int(rows))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--section",
        choices=("all", "out-of-core", "fit"),
        default="all",
        help="out-of-core: the one-epoch run on a large cube; fit: in-memory fits per pair",
    )
    parser.add_argument("--fit-cube", default=None, help="small cube of --section fit")
    parser.add_argument("--fit-n-objects", type=int, default=2000, help="objects of a new one")
    parser.add_argument("--fit-epochs", type=int, default=1, help="epochs of each fit")
    parser.add_argument(
        "--fit-pairs",
        default="default",
        help="resolution pairs: 'default' (a representative six), 'all' (16), or a list of "
        "IMAGE_ZOOM:SPECTRUM_ZOOM pairs, e.g. 0:0,3:0",
    )
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
    if args.section in ("all", "out-of-core"):
        _out_of_core_section(args)
    if args.section in ("all", "fit"):
        _fit_section(args)


def _out_of_core_section(args):
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
