"""What object isolation buys the decision-tree baselines, and how well it finds neighbours.

Builds (or reuses) a synthetic cube, then on its FLAG=0 objects:

1. neighbour detection precision/recall of ``ObjectIsolator`` against the cube's truth;
2. 5-fold cross-validated predictions of the seed baselines (a tree on photometry features and
   a tree on spectral-line + photometry features), each with and without ``ObjectIsolator``
   in front, scored separately on the objects that have a neighbour and on those that do not.

Run: ``python benchmarks/bench_isolation.py [--n-objects 4000] [--cube PATH]``.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.tree import DecisionTreeRegressor

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
from sklearn_sfr.features import PhotometryFeatures, SpectralLineFeatures
from sklearn_sfr.preprocessing import ObjectIsolator, neighbour_detection_scores


def _models(isolate, seed):
    def front():
        return [ObjectIsolator(mode="noise", random_state=seed)] if isolate else []

    def tree():
        return DecisionTreeRegressor(min_samples_leaf=20, random_state=seed)

    both = FeatureUnion([("photometry", PhotometryFeatures()), ("lines", SpectralLineFeatures())])
    return {
        "tree on photometry features": make_pipeline(*front(), PhotometryFeatures(), tree()),
        "tree on line + photometry features": make_pipeline(*front(), both, tree()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-objects", type=int, default=4000)
    parser.add_argument("--cube", default=None, help="an existing cube to use")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        cube = args.cube
        if cube is None:
            cube = Path(tmp) / "bench.h5"
            t0 = time.perf_counter()
            make_synthetic_cube(cube, n_objects=args.n_objects, random_state=args.seed)
            print(f"built a {args.n_objects}-object cube in {time.perf_counter() - t0:.0f} s")
        data = load_hisscube(cube, image_zoom=0, spectrum_zoom=1, flag=0)
    X, y, frame = data.X, data.y, data.frame
    has_neighbour = frame["n_neighbours"].to_numpy() > 0
    print(f"FLAG=0 objects: {len(y)}, with a neighbour: {int(has_neighbour.sum())}")

    t0 = time.perf_counter()
    _, stats = ObjectIsolator(random_state=args.seed).fit(X).isolate(X)
    seconds = time.perf_counter() - t0
    scores = neighbour_detection_scores(stats, frame, zoom=0)
    print(
        f"\nneighbour detection at 64 px: precision {scores['precision']:.3f}, "
        f"recall {scores['recall']:.3f} ({scores['n_matched']} matched / "
        f"{scores['n_detected']} detected / {scores['n_true']} true); "
        f"{1000 * seconds / len(y):.2f} s per 1000 cutouts"
    )

    folds = KFold(5, shuffle=True, random_state=args.seed)
    rows = []
    for isolate in (False, True):
        for name, model in _models(isolate, args.seed).items():
            pred = cross_val_predict(model, X, y, cv=folds)
            for subset, mask in (("with neighbour", has_neighbour),
                                 ("without neighbour", ~has_neighbour)):  # fmt: skip
                rows.append(
                    {
                        "model": name,
                        "isolation": "ObjectIsolator" if isolate else "none",
                        "objects": subset,
                        "n": int(mask.sum()),
                        "rmse": mean_squared_error(y[mask], pred[mask]) ** 0.5,
                    }
                )
    table = pd.DataFrame(rows).pivot_table(
        index=["model", "objects"], columns="isolation", values="rmse"
    )
    table["ratio (isolated / none)"] = table["ObjectIsolator"] / table["none"]
    print("\n5-fold CV RMSE (dex) of log SFR, FLAG=0; noise floor", f"{data.noise_floor:.3f}")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
