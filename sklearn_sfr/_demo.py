"""``sklearn-sfr demo``: the whole study, quickly, on a small synthetic cube.

Builds a synthetic cube of a few thousand objects in a temporary folder (or uses the given
one) and runs the ``--quick`` study on it (:func:`sklearn_sfr.experiments._report.run_study`):
decision-tree baselines, image vs spectrum vs fusion, the fusion strategies, the resolution
trade-off, the FLAG filter and object isolation, with tiny networks and few epochs. The report
folder holds report.md/html, CSVs, figures and config.json, as ``sklearn-sfr study`` writes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def run_demo(out="sfr-demo", *, n_objects=1500, cv=None, random_state=0, cube=None, verbose=True):
    """Build a small synthetic cube and run the quick study on it.

    Parameters
    ----------
    out : path-like, default="sfr-demo"
        Report folder. An earlier report there (a folder with ``config.json``) is replaced;
        any other existing folder is refused.
    n_objects : int, default=1500
        Objects in the synthetic demo cube.
    cv : int, default=None
        Cross-validation folds on the training part (None: the test split only).
    random_state : int, default=0
        Seed of the cube, the split and the models.
    cube : path-like, default=None
        Use an existing cube instead of building one (opened read-only).
    verbose : bool, default=True
        Print progress and the conclusions.

    Returns
    -------
    dict
        What :func:`~sklearn_sfr.experiments._report.run_study` returns.
    """
    from .datasets import make_synthetic_cube
    from .experiments._report import conclusion_lines, run_study

    out = Path(out)
    earlier_report = (out / "config.json").is_file()
    if out.exists() and not earlier_report and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a report folder; choose another --out")

    def say(msg):
        if verbose:
            print(msg, flush=True)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sfr-demo-") as tmp:
        if cube is None:
            cube = Path(tmp) / "demo-cube.h5"
            say(f"building a synthetic cube of {n_objects} objects ...")
            make_synthetic_cube(cube, n_objects=n_objects, random_state=random_state)
        if out.is_dir() and not earlier_report:
            out.rmdir()  # an empty folder: the report replaces it
        result = run_study(
            cube, out, quick=True, cv=cv, random_state=random_state, overwrite=True,
            verbose=verbose,
        )  # fmt: skip
    say("")
    for line in conclusion_lines(result["conclusions"]):
        say(line)
    say(f"\nreport written to {out.resolve()} in {time.perf_counter() - t0:.0f} s")
    return result
