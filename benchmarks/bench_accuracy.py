"""Test RMSE of every estimator on one synthetic cube, in units of the cube's noise floor.

Builds (or reuses) a synthetic cube, loads its FLAG=0 objects at one image and spectrum
resolution, makes one seeded 80/20 train/test split, and fits on the training part:

* the neural estimators ``ImageRegressor``, ``SpectrumRegressor``, ``FusionRegressor`` with
  each of the four fusions, and ``ContrastiveRegressor`` when ``sklearn_sfr.neural`` exports
  it (its pretraining gets ``--pretrain-epochs``, by default as many as ``--max-epochs``);
  all with their own early stopping on 10 % of the training part, as by default;
* the decision-tree baselines: a tree on the flattened cutouts (``FlattenBands``), a tree on
  rebinned spectra (``SpectrumRebin``), and a tree on ``SpectralLineFeatures`` +
  ``PhotometryFeatures``.

For each it prints the test RMSE (dex of log SFR) and that RMSE divided by the noise floor
(``data.noise_floor``, the RMSE of the labels against the true log SFR, which no model can
beat on average), R2, the RMSE against the true log SFR where the cube has it, and the fit
time; sorted by RMSE. A last line says whether the best fusion is within 1.15 times the
floor and below the best single-modality model (neural or tree on images or spectra alone).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py [--cube PATH] [--n-objects N]
[--image-zoom 2] [--spectrum-zoom 2] [--max-epochs 100] [--models image,spectrum,late]
[--n-jobs 2]`` (``--n-jobs`` trains that many models at once, in separate processes).
Without ``--cube`` or ``--n-objects`` it builds the default cube (about 14,000 objects,
4.6 GB, a few minutes) in a temporary folder; ``--cube PATH`` reuses that cube, or builds it
there when it does not exist. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.tree import DecisionTreeRegressor

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
from sklearn_sfr.features import PhotometryFeatures, SpectralLineFeatures
from sklearn_sfr.neural import FUSIONS, FusionRegressor, ImageRegressor, SpectrumRegressor
from sklearn_sfr.preprocessing import FlattenBands, ModalitySelector, SpectrumRebin

try:  # another part of the package, which may not exist yet
    from sklearn_sfr.neural import ContrastiveRegressor
except ImportError:
    ContrastiveRegressor = None

#: HiSS-Cube image zoom level -> cutout side in pixels.
ZOOM_PIXELS = {0: 64, 1: 32, 2: 16, 3: 8}

#: What each model sees, for the "best single modality" comparison.
SINGLE_MODALITY = ("image", "spectrum", "tree-image", "tree-spectrum")


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _neural(cls, args, **extra):
    """``cls`` with the benchmark's settings, passing only the parameters it has."""
    settings = {
        "max_epochs": args.max_epochs,
        "pretrain_epochs": (
            args.max_epochs if args.pretrain_epochs is None else args.pretrain_epochs
        ),
        "batch_size": args.batch_size,
        "random_state": args.seed,
        "device": args.device,
        **extra,
    }
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in settings.items() if k in accepted})


def _tree(args):
    return DecisionTreeRegressor(min_samples_leaf=args.min_samples_leaf, random_state=args.seed)


def model_factories(args):
    """name -> (description, modality, factory), in the order they run."""
    models = {
        "image": ("ImageRegressor", "image", lambda: _neural(ImageRegressor, args)),
        "spectrum": ("SpectrumRegressor", "spectrum", lambda: _neural(SpectrumRegressor, args)),
    }
    for fusion in FUSIONS:
        models[fusion] = (
            f"FusionRegressor({fusion})",
            "both",
            lambda fusion=fusion: _neural(FusionRegressor, args, fusion=fusion),
        )
    if ContrastiveRegressor is not None:
        models["contrastive"] = (
            "ContrastiveRegressor",
            "both",
            lambda: _neural(ContrastiveRegressor, args),
        )
    models["tree-image"] = (
        "tree on flattened cutouts",
        "image",
        lambda: make_pipeline(ModalitySelector("image"), FlattenBands(), _tree(args)),
    )
    models["tree-spectrum"] = (
        f"tree on spectra rebinned x{args.rebin}",
        "spectrum",
        lambda: make_pipeline(
            ModalitySelector("spectrum"), SpectrumRebin(args.rebin), _tree(args)
        ),
    )
    models["tree-features"] = (
        "tree on line + photometry features",
        "both",
        lambda: make_pipeline(
            FeatureUnion(
                [("lines", SpectralLineFeatures()), ("photometry", PhotometryFeatures())]
            ),
            _tree(args),
        ),
    )
    return models


def _rmse(a, b):
    return float(mean_squared_error(a, b) ** 0.5)


def _epochs(model):
    """Epochs run (pretraining too) and the best validation epoch of a skorch-backed
    estimator, else ''."""
    net = getattr(model, "net_", None)
    if net is None:
        return ""
    text = ""
    pretrain = getattr(model, "pretrain_net_", None)
    if pretrain is not None and len(pretrain.history):
        text = f"pretrain {len(pretrain.history)}, "
    history = net.history
    if "valid_loss" in history[-1]:
        best = int(np.argmin(history[:, "valid_loss"])) + 1
        return f"{text}{len(history)} (best {best})"
    return f"{text}{len(history)}"


def evaluate(name, description, modality, make, data, train, test, floor):
    X, y, frame = data.X, data.y, data.frame
    model = make()
    start = time.perf_counter()
    model.fit(X[train], y[train])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(X[test])
    predict_s = time.perf_counter() - start
    rmse = _rmse(y[test], pred)
    row = {
        "model": description,
        "key": name,
        "inputs": modality,
        "rmse": rmse,
        "rmse / floor": rmse / floor if floor else np.nan,
        "r2": float(r2_score(y[test], pred)),
        "rmse vs truth": (
            _rmse(frame["true_log_sfr"].to_numpy()[test], pred)
            if "true_log_sfr" in frame
            else np.nan
        ),
        "fit s": fit_s,
        "predict s": predict_s,
        "epochs": _epochs(model),
    }
    print(
        f"  {description}: RMSE {rmse:.3f} ({row['rmse / floor']:.2f} x floor), "
        f"R2 {row['r2']:.3f}, fit {fit_s:.0f} s, epochs {row['epochs'] or '-'}",
        flush=True,
    )
    return row


def _evaluate_in_worker(key, description, modality, args, data, train, test, floor, threads):
    """``evaluate`` in a worker process: the factories are rebuilt there (lambdas do not
    pickle)."""
    torch.set_num_threads(threads)
    make = model_factories(args)[key][2]
    return evaluate(key, description, modality, make, data, train, test, floor)


def verdict(table):
    fusions = table[table["key"].isin(FUSIONS)]
    singles = table[table["key"].isin(SINGLE_MODALITY)]
    if fusions.empty:
        return "no fusion model ran"
    best = fusions.loc[fusions["rmse"].idxmin()]
    text = (
        f"best fusion {best['model']}: RMSE {best['rmse']:.3f} = "
        f"{best['rmse / floor']:.2f} x the noise floor "
        f"({'<=' if best['rmse / floor'] <= 1.15 else '>'} 1.15: "
        f"{'PASS' if best['rmse / floor'] <= 1.15 else 'FAIL'})"
    )
    if singles.empty:
        return text + "; no single-modality model ran"
    single = singles.loc[singles["rmse"].idxmin()]
    below = best["rmse"] < single["rmse"]
    return text + (
        f"; best single modality {single['model']}: RMSE {single['rmse']:.3f} "
        f"({single['rmse / floor']:.2f} x floor); best fusion minus best single modality "
        f"{best['rmse'] - single['rmse']:+.4f} dex: fusion {'below' if below else 'NOT below'} "
        f"({'PASS' if below else 'FAIL'})"
    )


def _machine(device):
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    print(
        f"CPUs: {os.cpu_count()} (usable {affinity}); torch {torch.__version__}, threads "
        f"{torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"device: {device} ({name})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cube", default=None, help="cube to use (built if missing)")
    parser.add_argument(
        "--n-objects", type=int, default=None, help="objects of a new cube (default: default cube)"
    )
    parser.add_argument("--image-zoom", type=int, default=2, choices=[0, 1, 2, 3])
    parser.add_argument("--spectrum-zoom", type=int, default=2, choices=[0, 1, 2, 3])
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument(
        "--pretrain-epochs",
        type=int,
        default=None,
        help="ContrastiveRegressor's pretraining epochs (default: --max-epochs)",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rebin", type=int, default=4, help="SpectrumRebin factor of the tree")
    parser.add_argument("--min-samples-leaf", type=int, default=20)
    parser.add_argument("--models", default=None, help="comma-separated keys (default: all)")
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="models trained at the same time (processes)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    args.device = _resolve_device(args.device)
    models = model_factories(args)
    if args.models:
        keys = [k for k in args.models.split(",") if k]
        unknown = [k for k in keys if k not in models]
        if unknown:
            parser.error(f"unknown models {unknown}; choose from {list(models)}")
        models = {k: models[k] for k in keys}
    _machine(args.device)
    if ContrastiveRegressor is None:
        print("ContrastiveRegressor: not exported by sklearn_sfr.neural yet, skipped")

    with tempfile.TemporaryDirectory() as tmp:
        cube = Path(args.cube) if args.cube else Path(tmp) / "bench.h5"
        if not cube.exists():
            start = time.perf_counter()
            make_synthetic_cube(cube, n_objects=args.n_objects, random_state=args.seed)
            print(f"built {cube} in {time.perf_counter() - start:.0f} s")
        data = load_hisscube(
            cube, image_zoom=args.image_zoom, spectrum_zoom=args.spectrum_zoom, flag=0
        )
    n = len(data.y)
    train, test = train_test_split(np.arange(n), test_size=args.test_size, random_state=args.seed)
    floor = data.noise_floor
    test_floor = (
        _rmse(data.y[test], data.frame["true_log_sfr"].to_numpy()[test])
        if "true_log_sfr" in data.frame
        else None
    )
    print(
        f"cube {cube}: {n} FLAG=0 objects, train {len(train)} / test {len(test)} (seed "
        f"{args.seed}); images {ZOOM_PIXELS[args.image_zoom]} px, spectra "
        f"{data.X['spectrum'].shape[1]} px; max_epochs {args.max_epochs}"
    )
    print(
        "noise floor (cube, FLAG=0): "
        + ("unknown" if floor is None else f"{floor:.3f} dex")
        + ("" if test_floor is None else f"; on this test split {test_floor:.3f} dex")
        + f"; target std on the test split {data.y[test].std():.3f} dex",
        flush=True,
    )

    if args.n_jobs == 1:
        rows = [
            evaluate(key, description, modality, make, data, train, test, floor)
            for key, (description, modality, make) in models.items()
        ]
    else:
        # One process per model, one torch thread each: two models on two cores take about
        # the time of one. The fit times below are then measured side by side, as run.
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=args.n_jobs, backend="loky")(
            delayed(_evaluate_in_worker)(
                key, description, modality, args, data, train, test, floor, args.threads
            )
            for key, (description, modality, _) in models.items()
        )
    table = pd.DataFrame(rows).sort_values("rmse").reset_index(drop=True)
    print(f"\ntest RMSE (dex of log SFR), {len(test)} FLAG=0 objects, sorted")
    print(table.drop(columns="key").round(3).to_string(index=False))
    print("\n" + verdict(table))


if __name__ == "__main__":
    main()
