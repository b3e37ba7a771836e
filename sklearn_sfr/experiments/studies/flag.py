"""Does the FLAG filter help: each model trained on the FLAG=0 objects and on every labelled
object, always scored on the same FLAG=0 test objects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...datasets import load_hisscube
from .._evaluate import _evaluate_models, parallel_map, study_split
from ._base import (
    Study,
    _doc,
    _keep,
    _model,
)


@_doc(
    extra=", plus ``trained_on`` (``FLAG=0`` or ``all labelled``)",
    pred_extra=", ``trained_on``",
)
def flag_study(
    cube,
    *,
    models=("tree-lines", "tree-photometry"),
    image_zoom=2,
    spectrum_zoom=2,
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    repeats=1,
    cache=None,
    history=None,
    verbose=False,
):
    """Trained on FLAG=0 objects only, or on every labelled object: always scored on FLAG=0.

        Both trainings share the same FLAG=0 test objects, held out of both; the second adds the
        flagged objects (whose labels come from fallback estimates, biased) to the training set.
        The predictions' ``position`` counts the cube's labelled objects (the rows of
        ``load_hisscube(cube, flag=None)`` with a finite label).

        Parameters
        ----------
        cube : str or path-like
            A HiSS-Cube file.
        models : sequence of str
            Names of :func:`~sklearn_sfr.experiments.make_model`.
        image_zoom, spectrum_zoom : {0, 1, 2, 3}, default=2
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import flag_study
        >>> scores, _ = flag_study(path, models=["tree-lines"])
        >>> scores[["model", "trained_on"]].values.tolist()
        [['tree-lines', 'FLAG=0'], ['tree-lines', 'all labelled']]
    """
    data = load_hisscube(cube, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, flag=None)
    labelled = np.isfinite(data.y)
    rows = np.flatnonzero(labelled)
    clean = data.frame["FLAG"].to_numpy()[rows] == 0
    X, y = data.X[rows], data.y[rows]
    train, test = study_split(
        len(rows), test_size=test_size, random_state=random_state, eligible=clean
    )
    tasks = [
        dict(models={name: _model(name, random_state, neural_params) for name in models},
             X=X, y=y, train=subset, test=test, cv=cv, noise_floor=data.noise_floor,
             random_state=random_state, repeats=repeats, cache=cache, verbose=verbose)
        for subset in (train[clean[train]], train)
    ]  # fmt: skip
    results = list(parallel_map(_evaluate_models, tasks, cv=cv, n_jobs=n_jobs))
    for trained_on, frames in zip(("FLAG=0", "all labelled"), results):
        for frame in frames:
            frame.insert(1, "trained_on", trained_on)
    _keep(history, [trained for _, _, trained in results])
    return (
        pd.concat([scores for scores, _, _ in results], ignore_index=True),
        pd.concat([predictions for _, predictions, _ in results], ignore_index=True),
    )


class FlagStudy(Study):
    """Trained on FLAG=0 against trained on every labelled object, per model."""

    name = "flag"
    keys = ("model", "trained_on")
    settings = {"flag_models": ("tree-lines", "tree-photometry", "fusion")}

    def run(self, run):
        return flag_study(
            run.cube,
            models=run.config["flag_models"],
            image_zoom=run.config["image_zoom"],
            spectrum_zoom=run.config["spectrum_zoom"],
            history=run.history,
            **run.common,
        )

    def comparison_frame(self, scores):
        # Each model labelled with what it was trained on.
        return super().comparison_frame(
            scores.assign(model=scores["model"] + " / " + scores["trained_on"].astype(str))
        )

    def conclusions(self, tables, dex, compare):
        t = tables.get(self.name)
        if t is None or not len(t):
            return []
        out = []
        for model, group in t.groupby("model", sort=False):
            rmse = group.set_index("trained_on")["rmse"]
            if {"FLAG=0", "all labelled"} <= set(rmse.index):
                # Training on everything minus training on FLAG=0: positive, the filter helps.
                words = compare.said(
                    (self.name, {"model": model, "trained_on": "all labelled"}),
                    (self.name, {"model": model, "trained_on": "FLAG=0"}),
                    "does not help (training on everything is better)",
                    "helps",
                )
                out.append(
                    f"**FLAG filter** ({model}, scored on FLAG=0): trained on FLAG=0 "
                    f"{rmse['FLAG=0']:.3f}, on all labelled objects {rmse['all labelled']:.3f}: "
                    f"the filter {words} (the difference is training on everything minus "
                    "training on FLAG=0)."
                )
        return out


STUDY = FlagStudy()
