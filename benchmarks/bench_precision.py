"""Training-step time in float32 against bfloat16 mixed precision (``precision="bfloat16"``).

For each resolution pair, a default ``FusionRegressor`` is fitted for one epoch on random
inputs of that shape (so that its network, input scaling and shapes are the library's), then
one training step of its network (forward pass, MSE loss, backward pass, AdamW step) on a
batch of ``--batch-size`` is timed with and without ``torch.autocast(dtype=bfloat16)``, the
two alternating, the best of ``--repeats`` rounds of ``--steps`` steps each kept. The ratio
float32 / bfloat16 above 1 means bfloat16 is faster. It pays only where the hardware
computes in bfloat16 (x86 CPUs with AVX-512 BF16 or AMX, NVIDIA GPUs from Ampere on); the
machine line says what this one has. Whole fits (epochs, accuracy) are
``bench_time_to_quality.py --params '{"precision": "bfloat16"}'``'s job.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_precision.py [--threads 1] [--device cpu]
[--pairs 3,3 2,2] [--batch-size 128] [--steps 10] [--repeats 2]``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch
from skorch.helper import SliceDict

from sklearn_sfr.datasets._layout import CUTOUT_SIZES, n_wavelength
from sklearn_sfr.neural import FusionRegressor


def _pair(text):
    image_zoom, spectrum_zoom = (int(v) for v in text.split(","))
    return image_zoom, spectrum_zoom


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) or "no bfloat16 instructions"


def _step_seconds(module, inputs, target, optimizer, bf16, device, steps):
    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = module(**inputs)
        loss = ((out.float() - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up: the first call of each kind pays one-time set-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", nargs="+", type=_pair, default=[(3, 3), (2, 2)],
                        help="image_zoom,spectrum_zoom pairs")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'} "
        f"({_cpu_flags()}); torch {torch.__version__}, {args.threads} threads, device {device}"
    )
    rng = np.random.default_rng(0)
    header = f"{'image x spectrum':<20}{'float32 ms':>12}{'bfloat16 ms':>13}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for image_zoom, spectrum_zoom in args.pairs:
        size, length = CUTOUT_SIZES[image_zoom], n_wavelength(spectrum_zoom)
        n = 2 * args.batch_size
        X = SliceDict(
            image=rng.lognormal(size=(n, 5, size, size)).astype(np.float32),
            spectrum=rng.lognormal(size=(n, length)).astype(np.float32),
        )
        y = rng.normal(size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FusionRegressor(max_epochs=1, device=args.device, random_state=0).fit(X, y)
        module = model.net_.module_.train()
        inputs = model._net_inputs(model._arrays(X))
        batch = {
            k: torch.as_tensor(inputs[k][: args.batch_size], device=device)
            for k in ("image", "spectrum")
        }
        target = torch.as_tensor(y[: args.batch_size, None], dtype=torch.float32, device=device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
        best = {False: np.inf, True: np.inf}
        for _ in range(args.repeats):
            for bf16 in (False, True):
                seconds = _step_seconds(module, batch, target, optimizer, bf16, device, args.steps)
                best[bf16] = min(best[bf16], seconds)
        print(
            f"{f'{size} px x {length}':<20}{best[False] * 1e3:>12.1f}{best[True] * 1e3:>13.1f}"
            f"{best[False] / best[True]:>8.2f}",
            flush=True,
        )
    print("ratio: float32 time / bfloat16 time of one training step (above 1: bfloat16 faster)")


if __name__ == "__main__":
    main()
