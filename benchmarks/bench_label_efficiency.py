"""What contrastive pretraining buys with few labels, and which of its choices make it pay.

On one cube and one fixed split (FLAG=0 test objects held out, as in the studies), every
candidate is trained on the same random subsets of the FLAG=0 training labels (``--fractions``
of them) and scored on the same test objects:

* ``tree-lines``: the decision tree on emission-line features (the baseline to beat);
* ``scratch``: ``FusionRegressor(fusion="intermediate")`` with the same width, depth and
  embedding size, trained from scratch: the same two encoders and the same MLP head on the
  concatenated encoder embeddings as a ``ContrastiveRegressor`` whose head reads the encoders
  (``head_input="encoder"``), without the pretraining;
* ``contrastive`` variants: the pretraining (InfoNCE on every non-test object, FLAG 0, 1, 2
  and unlabelled alike) runs once per pretraining setting (``--temperatures`` x
  ``--pretrain-batch-sizes``) and each head setting reuses it
  (``ContrastiveRegressor(pretrained=FrozenEstimator(...))``): the head reading the
  normalised projections or the encoder embeddings, a frozen probe or full fine-tuning with
  the encoders' learning rate ``--encoder-lr-ratios`` times the head's.

Printed: test RMSE of each candidate at each fraction, and the paired difference (with its 95 %
bootstrap interval, :func:`sklearn_sfr.metrics.paired_difference`) of each contrastive
candidate against ``scratch`` and ``tree-lines`` on the same objects. The machine, the cube,
the zooms and the epochs are printed first: every number belongs to them.

Run: ``python benchmarks/bench_label_efficiency.py --cube /tmp/cube.h5 --n-objects 3000
[--fractions 0.03 0.1 1] [--pretrain-epochs 30] [--max-epochs 60] [--width 16]
[--embed-dim 32] [--heads probe-projection,probe-encoder,full-encoder]``.
``--cube`` that does not exist is built there with ``--n-objects`` objects. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
from sklearn_sfr.experiments import make_model, study_split
from sklearn_sfr.metrics import paired_difference
from sklearn_sfr.neural import ContrastiveRegressor, FusionRegressor

#: Head settings: name -> ContrastiveRegressor parameters of stage 2 (``-lr<r>`` sets the
#: encoder learning-rate ratio, e.g. ``full-encoder-lr0.1``; without it, the estimator's
#: default).
HEADS = {
    "probe-projection": {"finetune": "probe", "head_input": "projection"},
    "probe-encoder": {"finetune": "probe", "head_input": "encoder"},
    "full-projection": {"finetune": "full", "head_input": "projection"},
    "full-encoder": {"finetune": "full", "head_input": "encoder"},
}


def _head_params(name):
    base, _, ratio = name.partition("-lr")
    if base not in HEADS:
        raise SystemExit(f"unknown head {name!r}; choose from {sorted(HEADS)} (+ -lr<ratio>)")
    return {**HEADS[base], **({"encoder_lr_ratio": float(ratio)} if ratio else {})}


def _data(args):
    cube = Path(args.cube)
    if not cube.exists():
        make_synthetic_cube(cube, n_objects=args.n_objects, random_state=args.seed)
    data = load_hisscube(
        cube, image_zoom=args.image_zoom, spectrum_zoom=args.spectrum_zoom, flag=None
    )
    flag = data.frame["FLAG"].to_numpy()
    trusted = (flag == 0) & np.isfinite(data.y)
    train, test = study_split(len(data.y), test_size=0.2, random_state=args.seed,
                              eligible=trusted)  # fmt: skip
    return data, trusted, train, test


def _subsets(trusted, train, fractions, seed):
    """The same random subset of the FLAG=0 training rows for every model, per fraction."""
    pool = train[trusted[train]]
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)  # nested subsets: a larger fraction adds labels
    return {f: np.sort(order[: max(2, round(f * len(pool)))]) for f in fractions}


def _neural(args):
    return dict(width=args.width, depth=args.depth, embed_dim=args.embed_dim,
                max_epochs=args.max_epochs, random_state=args.seed, device="cpu")  # fmt: skip


def _pretrain(data, trusted, train, args, temperature, batch_size):
    """One pretraining on every non-test object (labels of FLAG=0 training rows only, for a
    one-epoch head that is thrown away), read from ``--pretrained-dir`` when an earlier run
    with the same settings left it there."""
    path = None
    if args.pretrained_dir:
        name = (f"{Path(args.cube).stem}-i{args.image_zoom}s{args.spectrum_zoom}-w{args.width}"
                f"d{args.depth}e{args.embed_dim}-p{args.pretrain_epochs}-T{temperature:g}"
                f"-b{batch_size}-s{args.seed}.pkl")  # fmt: skip
        path = Path(args.pretrained_dir) / name
        if path.exists():
            print(f"  pretraining T0={temperature} batch={batch_size}: reused {path}")
            with open(path, "rb") as f:
                return pickle.load(f)
    y = np.where(trusted, data.y, np.nan)
    model = ContrastiveRegressor(
        **{**_neural(args), "max_epochs": 1}, temperature=temperature, batch_size=batch_size,
        pretrain_epochs=args.pretrain_epochs, projection_dim=args.embed_dim,
    )  # fmt: skip
    start = time.perf_counter()
    model.fit(data.X[train], y[train])
    history = model.pretrain_net_.history
    print(
        f"  pretraining T0={temperature} batch={batch_size}: {len(history)} epochs, "
        f"{time.perf_counter() - start:.0f} s, valid InfoNCE {history[-1, 'valid_loss']:.3f}, "
        f"learnt T={model.temperature_:.3f}",
        flush=True,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(model, f)
        tmp.replace(path)  # whole or not at all
    return model


def _score(model, data, rows, test):
    start = time.perf_counter()
    model.fit(data.X[rows], data.y[rows])
    pred = np.asarray(model.predict(data.X[test]), dtype=np.float64)
    return pred, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cube", required=True)
    parser.add_argument("--n-objects", type=int, default=3000)
    parser.add_argument("--image-zoom", type=int, default=2)
    parser.add_argument("--spectrum-zoom", type=int, default=2)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.03, 0.1, 1.0])
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.07])
    parser.add_argument("--pretrain-batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--heads", default="probe-projection,probe-encoder,full-encoder")
    parser.add_argument(
        "--scratch-fusions",
        default="intermediate",
        help="FusionRegressor strategies trained from scratch; 'intermediate' (the "
        "contrastive architecture) is named 'scratch'",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip scratch and tree-lines (e.g. a second run)",
    )
    parser.add_argument(
        "--pretrained-dir",
        default=None,
        help="keep each pretraining here and reuse it in later runs",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    heads = [h for h in args.heads.split(",") if h]
    for h in heads:
        _head_params(h)

    data, trusted, train, test = _data(args)
    subsets = _subsets(trusted, train, args.fractions, args.seed)
    print(
        f"machine: {platform.node()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({args.threads} threads), CPU"
    )
    print(
        f"cube: {args.cube}, image zoom {args.image_zoom} "
        f"({data.X['image'].shape[-1]} px), spectrum zoom {args.spectrum_zoom} "
        f"({data.X['spectrum'].shape[-1]} px); {len(data.y)} objects, {int(trusted.sum())} "
        f"FLAG=0 labelled; test {len(test)} FLAG=0, pretraining on {len(train)} "
        f"(flagged and unlabelled included); noise floor {data.noise_floor:.3f} dex"
    )
    print(f"labels per fraction: { {f: len(r) for f, r in subsets.items()} }")
    print(
        f"networks: width {args.width}, depth {args.depth}, embed {args.embed_dim}, "
        f"pretrain epochs <= {args.pretrain_epochs}, head/scratch epochs <= "
        f"{args.max_epochs} (early stopping, patience 10), seed {args.seed}",
        flush=True,
    )

    preds, seconds = {}, {}
    if not args.no_baselines:
        baselines = {"tree-lines": lambda: make_model("tree-lines", random_state=args.seed)}
        for fusion in args.scratch_fusions.split(","):
            name = "scratch" if fusion == "intermediate" else f"scratch ({fusion})"
            baselines[name] = lambda f=fusion: FusionRegressor(fusion=f, **_neural(args))
        for name, build in baselines.items():
            for f, rows in subsets.items():
                preds[name, f], seconds[name, f] = _score(build(), data, rows, test)
                print(
                    f"  {name} @ {f:g}: {_rmse(data.y[test], preds[name, f]):.4f} "
                    f"({seconds[name, f]:.0f} s)",
                    flush=True,
                )
    for temperature in args.temperatures if heads else ():
        for batch in args.pretrain_batch_sizes:
            base = _pretrain(data, trusted, train, args, temperature, batch)
            tag = f"T{temperature:g}-b{batch}"
            for head in heads:
                for f, rows in subsets.items():
                    model = ContrastiveRegressor(
                        **_neural(args), **_head_params(head),
                        pretrained=FrozenEstimator(base),
                    )  # fmt: skip
                    key = (f"{head} {tag}", f)
                    preds[key], seconds[key] = _score(model, data, rows, test)
                    print(
                        f"  {key[0]} @ {f:g}: {_rmse(data.y[test], preds[key]):.4f} "
                        f"({seconds[key]:.0f} s)",
                        flush=True,
                    )
    _print_table(preds, data.y[test], args.fractions)


def _rmse(y, pred):
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def _print_table(preds, y, fractions):
    names = list(dict.fromkeys(name for name, _ in preds))
    print("\ntest RMSE [dex] by fraction of the FLAG=0 training labels")
    print(f"{'model':34s}" + "".join(f"{f:>10g}" for f in fractions))
    for name in names:
        cells = [f"{_rmse(y, preds[name, f]):10.4f}" if (name, f) in preds else " " * 10
                 for f in fractions]  # fmt: skip
        print(f"{name:34s}" + "".join(cells))
    print("\npaired difference of RMSE, candidate minus reference [dex], 95 % interval")
    for name in names:
        if name == "tree-lines" or name.startswith("scratch"):
            continue
        for ref in ("scratch", "tree-lines"):
            for f in fractions:
                if (ref, f) not in preds or (name, f) not in preds:
                    continue
                d = paired_difference(y, preds[name, f], preds[ref, f], "rmse",
                                      n_resamples=2000, random_state=0)  # fmt: skip
                rel = d.difference / _rmse(y, preds[ref, f])
                print(
                    f"{name:34s} vs {ref:10s} @ {f:<5g} {d.difference:+.4f} "
                    f"[{d.low:+.4f}, {d.high:+.4f}] ({rel:+.1%})"
                )


if __name__ == "__main__":
    main()
