"""``sklearn-sfr demo``: the whole study, quickly, on a small synthetic cube.

Builds a synthetic cube of a few thousand objects inside the report folder (``cube.h5``, so
that ``sklearn-sfr report``, ``info`` and a rerun work on it) or uses the given one, and runs
the ``--quick`` study on it (:func:`sklearn_sfr.experiments.run_study`):
decision-tree baselines, image vs spectrum vs fusion, the fusion strategies, the resolution
trade-off, the FLAG filter and object isolation, with tiny networks and few epochs. The report
folder holds report.md/html, CSVs, figures and config.json, as ``sklearn-sfr study`` writes.
"""

from __future__ import annotations

import time
from pathlib import Path

#: Where the demo keeps the cube it builds, inside its report folder.
CUBE_NAME = "cube.h5"


def run_demo(
    out="sfr-demo", *, n_objects=1500, cv=None, random_state=0, cube=None, overwrite=False,
    verbose=True,
):  # fmt: skip
    """Build a small synthetic cube and run the quick study on it.

    Parameters
    ----------
    out : path-like, default="sfr-demo"
        Report folder; the cube it builds is kept there as ``cube.h5``.
    n_objects : int, default=1500
        Objects in the synthetic demo cube.
    cv : int, default=None
        Cross-validation folds on the training part (None: the test split only).
    random_state : int, default=0
        Seed of the cube, the split and the models.
    cube : path-like, default=None
        Use an existing cube instead of building one (opened read-only; it may not lie
        inside ``out``).
    overwrite : bool, default=False
        Replace an earlier demo or study folder at ``out``. Only a folder this library wrote
        (and holding nothing else) is ever replaced; any other existing folder is refused.
    verbose : bool, default=True
        Print progress and the conclusions.

    Returns
    -------
    dict
        What :func:`~sklearn_sfr.experiments.run_study` returns.
    """
    from .datasets import make_synthetic_cube
    from .experiments._report import STUDIES, check_study, conclusion_lines, run_into
    from .utils._outputs import OutputFolder

    out = Path(out)
    inputs = [] if cube is None else [cube]
    # A given cube is checked before anything is written; a built one is valid by making.
    config = check_study(Path(cube), STUDIES, True, {"cv": cv}) if cube is not None else None
    folder = OutputFolder(out, kind="demo", overwrite=overwrite, inputs=inputs)

    def say(msg):
        if verbose:
            print(msg, flush=True)

    t0 = time.perf_counter()
    with folder as tmp:
        if cube is None:
            used = tmp / CUBE_NAME
            say(f"building a synthetic cube of {n_objects} objects ({out / CUBE_NAME}) ...")
            make_synthetic_cube(used, n_objects=n_objects, random_state=random_state)
            recorded = CUBE_NAME  # relative: the folder can be moved with its cube
            config = check_study(used, STUDIES, True, {"cv": cv})
        else:
            used, recorded = Path(cube), str(Path(cube).resolve())
        result = run_into(
            tmp, used, recorded, studies=STUDIES, quick=True, n_jobs=None,
            random_state=random_state, verbose=verbose, config=config,
        )  # fmt: skip
    say("")
    for line in conclusion_lines(result["conclusions"]):
        say(line)
    say(f"\nreport written to {out.resolve()} in {time.perf_counter() - t0:.0f} s")
    return {**result, "out": out}
