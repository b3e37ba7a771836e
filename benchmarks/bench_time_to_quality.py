"""Wall time until a good model: the default FusionRegressor against a plain PyTorch fusion.

On a fixed synthetic cube (``make_synthetic_cube``, ``--n-objects`` FLAG=0 objects, seed
``--seed``), loaded at the study's default zooms (``_report``'s ``image_zoom`` and
``spectrum_zoom``, 16 px images and 1155 px spectra) with ``load_hisscube(..., flag=0)``, and
one fixed split (``train_test_split``, 20 % test as the study), two models train on the same
in-memory arrays with the same torch threads:

* **library**: ``FusionRegressor()`` with its defaults (validation split, early stopping,
  scaling, augmentation, redshift read by the head), ``random_state`` and ``device`` set;
* **reference**: what a practitioner writes without this library, defined in this file: each
  input standardised per channel with the training set's mean and standard deviation (NaN
  set to 0), a small 2-D CNN for the images and a small 1-D CNN for the spectra (conv-ReLU
  and max-pool blocks, global average pooling), their embeddings concatenated with the
  redshift, an MLP head, Adam with a cosine learning-rate schedule over ``--max-epochs``,
  batches of 128, MSE on the standardised target, every epoch run.

After every epoch each model's RMSE on the test set (against the labels, as the study scores)
is computed; the time that takes is excluded from the training time. The clock starts before
``fit`` (the library's input checks and scaling count) and before the reference's
standardisation. The target is ``--target`` (1.15) times the cube's noise floor (the RMSE of
the labels against the truth, ``load_hisscube(...).noise_floor``): the time to target is the
training time at the end of the first epoch whose test RMSE is at or below it. The final RMSE
is the library's after ``fit`` (best validation epoch restored) and the reference's after its
last epoch. The goal: the library reaches the target in <= 0.5x the reference's time, at no
worse final RMSE. When either misses the target within ``--max-epochs``, the ratio of the
times to the best RMSE both reached (the larger of their lowest epoch RMSEs) is shown too.
Wall and process CPU time are both printed; on a shared CPU the CPU time is what other jobs
disturb least (and one thread per process wastes least there).

Run: ``python benchmarks/bench_time_to_quality.py [--n-objects 3000] [--max-epochs 30]
[--threads 2] [--device auto] [--cube PATH] [--zooms 2,2] [--models library,reference]
[--params JSON]``. ``--cube`` reuses that cube or
builds it there. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
from sklearn_sfr.experiments._report import FULL_SETTINGS
from sklearn_sfr.neural import FusionRegressor


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class _Clock:
    """Training time: (wall, CPU) seconds since :meth:`start`, without the evaluations."""

    def __init__(self, device):
        self.device = device

    def _now(self):
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()
        return np.array([time.perf_counter(), time.process_time()])

    def start(self):
        self.start_ = self._now()
        self.excluded_ = np.zeros(2)

    def elapsed(self):
        return self._now() - self.start_ - self.excluded_

    def evaluate(self, predict, X, y):
        """Test RMSE of ``predict(X)``; its time is excluded from the training time."""
        begin = self._now()
        rmse = float(np.sqrt(np.mean((predict(X) - y) ** 2)))
        self.excluded_ += self._now() - begin
        return rmse


class _Curve:
    """Test RMSE and training time at the end of every epoch (each shown as it comes)."""

    def __init__(self, name):
        self.name, self.rows = name, []

    def add(self, seconds, rmse):
        self.rows.append((*seconds, rmse))
        print(
            f"  {self.name} epoch {len(self.rows)}: test RMSE {rmse:.4f} after "
            f"{seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU",
            flush=True,
        )

    def time_to(self, target):
        """(wall, CPU, epoch) at the first epoch at or below ``target``; None if never."""
        for epoch, (wall, cpu, rmse) in enumerate(self.rows, start=1):
            if rmse <= target:
                return wall, cpu, epoch
        return None


class _EpochEvaluation(Callback):
    """After every epoch: the library model's test RMSE, from the net being trained (the
    estimator's fitted scaling and target standardisation exist before skorch's loop)."""

    def __init__(self, estimator, X, y, clock, curve):
        self.estimator, self.X, self.y = estimator, X, y
        self.clock, self.curve = clock, curve

    def on_epoch_end(self, net, **kwargs):
        est = self.estimator

        def predict(X):
            if not hasattr(self, "inputs_"):  # scaled once, excluded with the evaluation
                self.inputs_ = est._net_inputs(est._arrays(X))
            out = net.predict(self.inputs_)[:, 0]
            return out * est.y_scale_ + est.y_mean_

        seconds = self.clock.elapsed()
        self.curve.add(seconds, self.clock.evaluate(predict, self.X, self.y))


def run_library(X_train, y_train, X_test, y_test, args, device):
    clock, curve = _Clock(device), _Curve("library")
    est = FusionRegressor(random_state=args.seed, device=device, max_epochs=args.max_epochs)
    est.set_params(**args.params)
    callback = _EpochEvaluation(est, X_test, y_test, clock, curve)
    est.set_params(net_kwargs={"callbacks": [("test_rmse", callback)]})
    clock.start()
    est.fit(X_train, y_train)
    seconds = clock.elapsed()
    final = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    return curve, final, seconds, len(est.net_.history)


# -- the practitioner's reference ---------------------------------------------------------------
def _conv_block(conv, pool, in_channels, out_channels, kernel_size):
    return [
        conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.ReLU(),
        pool(2),
    ]


class ReferenceFusion(nn.Module):
    """Two small CNNs, their embeddings concatenated with the redshift, an MLP head."""

    def __init__(self, n_bands, widths=(32, 64, 128), hidden=64):
        super().__init__()
        image, spectrum, channels = [], [], (n_bands, *widths)
        for c_in, c_out in itertools.pairwise(channels):
            image += _conv_block(nn.Conv2d, nn.MaxPool2d, c_in, c_out, 3)
        channels = (1, *widths)
        for c_in, c_out in itertools.pairwise(channels):
            spectrum += _conv_block(nn.Conv1d, nn.MaxPool1d, c_in, c_out, 7)
        self.image = nn.Sequential(*image, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.spectrum = nn.Sequential(*spectrum, nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(2 * widths[-1] + 1, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, image, spectrum, redshift):
        joint = [self.image(image), self.spectrum(spectrum[:, None]), redshift[:, None]]
        return self.head(torch.cat(joint, dim=1))[:, 0]


def _standardiser(train, axes):
    """Per-channel mean and standard deviation of the training set (NaN ignored)."""
    mean = np.nanmean(train, axis=axes, keepdims=True, dtype=np.float64)
    std = np.nanstd(train, axis=axes, keepdims=True, dtype=np.float64)
    std[~(std > 0)] = 1.0

    def apply(x):
        return torch.from_numpy(np.nan_to_num((x - mean) / std).astype(np.float32))

    return apply


def run_reference(X_train, y_train, X_test, y_test, args, device):
    clock, curve = _Clock(device), _Curve("reference")
    torch.manual_seed(args.seed)
    clock.start()
    scalers = {
        "image": _standardiser(X_train["image"], (0, 2, 3)),
        "spectrum": _standardiser(X_train["spectrum"], None),
        "redshift": _standardiser(X_train["redshift"], None),
    }

    def tensors(X):
        return {k: scale(X[k]).to(device) for k, scale in scalers.items()}

    train = tensors(X_train)
    y_mean, y_std = float(y_train.mean()), float(y_train.std())
    target = torch.as_tensor((y_train - y_mean) / y_std, dtype=torch.float32, device=device)
    model = ReferenceFusion(X_train["image"].shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.max_epochs)
    generator = torch.Generator().manual_seed(args.seed)
    test = None

    def predict(X):
        nonlocal test
        test = tensors(X) if test is None else test
        model.eval()
        with torch.no_grad():
            out = torch.cat(
                [
                    model(**{k: v[i : i + 1024] for k, v in test.items()})
                    for i in range(0, len(test["image"]), 1024)
                ]
            )
        model.train()
        return out.cpu().numpy().astype(np.float64) * y_std + y_mean

    for _ in range(args.max_epochs):
        for idx in torch.randperm(len(target), generator=generator).split(128):
            idx = idx.to(device)
            optimizer.zero_grad()
            batch = {k: v[idx] for k, v in train.items()}
            loss = nn.functional.mse_loss(model(**batch), target[idx])
            loss.backward()
            optimizer.step()
        schedule.step()
        curve.add(clock.elapsed(), clock.evaluate(predict, X_test, y_test))
    seconds = clock.elapsed()
    return curve, curve.rows[-1][2], seconds, args.max_epochs


# -- the run ------------------------------------------------------------------------------------
def _machine(device):
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {load}")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, device {device} ({name})")


def _print_curves(curves):
    names = list(curves)
    print("\ntest RMSE after each epoch (training wall s, CPU s)")
    print("epoch " + "".join(f"{n:>32}" for n in names))
    for e in range(max(len(c.rows) for c in curves.values())):
        cells = []
        for c in curves.values():
            if e < len(c.rows):
                wall, cpu, rmse = c.rows[e]
                cells.append(f"{rmse:10.4f} ({wall:7.1f}, {cpu:7.1f})")
            else:
                cells.append("")
        print(f"{e + 1:>5} " + "".join(f"{cell:>32}" for cell in cells))


def _zoom_pair(text):
    image, spectrum = (int(v) for v in text.split(","))
    return image, spectrum


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-objects", type=int, default=3000, help="FLAG=0 objects")
    parser.add_argument("--cube", default=None, help="cube to use (built if missing)")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    default_zooms = f"{FULL_SETTINGS['image_zoom']},{FULL_SETTINGS['spectrum_zoom']}"
    parser.add_argument(
        "--zooms", type=_zoom_pair, default=_zoom_pair(default_zooms),
        help=f"image_zoom,spectrum_zoom (default: the study's, {default_zooms})",
    )  # fmt: skip
    parser.add_argument("--target", type=float, default=1.15, help="x the noise floor")
    parser.add_argument("--models", default="library,reference")
    parser.add_argument(
        "--params", type=json.loads, default={},
        help="FusionRegressor parameters to change, as JSON (to compare variants)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(args.models) - {"library", "reference"})
    if unknown or not args.models:
        parser.error(f"--models takes library and/or reference, got {unknown or 'none'}")
    torch.set_num_threads(args.threads)
    device = _resolve_device(args.device)
    _machine(device)

    from sklearn.model_selection import train_test_split

    with tempfile.TemporaryDirectory() as tmp:
        cube = Path(args.cube) if args.cube else Path(tmp) / "time_to_quality.h5"
        if not cube.exists():
            make_synthetic_cube(cube, n_flag0=args.n_objects, random_state=args.seed)
        image_zoom, spectrum_zoom = args.zooms
        data = load_hisscube(cube, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, flag=0)
    n = min(args.n_objects, len(data.y))
    train, test = train_test_split(np.arange(n), test_size=0.2, random_state=args.seed)
    X, y = data.X, np.asarray(data.y, dtype=np.float64)
    X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    target = args.target * data.noise_floor
    print(
        f"{n} FLAG=0 objects ({len(train)} train, {len(test)} test), images "
        f"{X['image'].shape[1:]}, spectra {X['spectrum'].shape[1:]} (zooms {image_zoom}, "
        f"{spectrum_zoom}); noise floor {data.noise_floor:.4f} dex, target RMSE {target:.4f} "
        f"({args.target} x floor); at most {args.max_epochs} epochs"
    )

    runners = {"library": run_library, "reference": run_reference}
    results = {}
    for name in args.models:
        results[name] = runners[name](X_train, y_train, X_test, y_test, args, device)
        curve, final, seconds, epochs = results[name]
        reached = curve.time_to(target)
        when = (
            f"target at epoch {reached[2]} after {reached[0]:.1f} s wall, {reached[1]:.1f} s CPU"
            if reached
            else "target NOT reached"
        )
        print(
            f"{name}: {epochs} epochs in {seconds[0]:.1f} s wall ({seconds[1]:.1f} s CPU), "
            f"{when}; final test RMSE {final:.4f} ({final / data.noise_floor:.3f} x floor)",
            flush=True,
        )
    _print_curves({name: r[0] for name, r in results.items()})
    if set(results) == {"library", "reference"}:
        _print_ratios(results, target)


def _ratio_text(lib, ref, reference, clock):
    """The ratio of the times to a level; where only the library reached it, a bound: the
    reference would have needed more than its whole run."""
    if lib and ref:
        return f"{lib[clock] / ref[clock]:.3f}"
    if lib:
        whole = reference[2][clock]
        return (
            f"< {lib[clock] / whole:.3f} (the reference did not reach it in its "
            f"{reference[3]} epochs, {whole:.1f} s)"
        )
    return "the library did not reach it" + ("" if ref else ", nor the reference")


def _print_ratios(results, target):
    """The goal's ratios; when a model misses the target, also the times to the best RMSE
    that both reached (the larger of their lowest epoch RMSEs), so that their speeds can
    still be compared."""
    curves = {k: results[k][0] for k in ("library", "reference")}
    levels = [(target, "the target", " (goal <= 0.5)")]
    if not all(c.time_to(target) for c in curves.values()):
        common = max(min(row[2] for row in c.rows) for c in curves.values())
        levels.append((common, f"RMSE {common:.4f}, the best both reach", ""))
    print()
    for level, what, goal in levels:
        lib, ref = (c.time_to(level) for c in curves.values())
        epochs = f"epochs {lib[2] if lib else '-'} / {ref[2] if ref else '-'}"
        for kind, clock in (("wall", 0), ("CPU", 1)):
            print(
                f"time to {what}, library / reference ({kind}): "
                f"{_ratio_text(lib, ref, results['reference'], clock)}{goal} ({epochs})"
            )
    final_lib, final_ref = results["library"][1], results["reference"][1]
    print(f"final RMSE library / reference: {final_lib / final_ref:.3f} (goal <= 1.0)")


if __name__ == "__main__":
    main()
