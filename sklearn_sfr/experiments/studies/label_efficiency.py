"""What pretraining on every object buys when labels are few: test RMSE against the fraction of
labelled FLAG=0 training objects, for a network from scratch, the contrastive model (probe and
fine-tuned) and the line-feature tree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...datasets import load_hisscube
from .._evaluate import evaluate_models, parallel_map, study_split, training_history
from ._base import Study, _doc, _keep, _model, said

#: The study's models: name -> (registry name, parameters); the contrastive ones also get
#: the shared pretraining (``pretrained``).
MODELS = {
    "fusion (scratch)": ("fusion", {"fusion": "intermediate"}),
    "contrastive (probe)": ("contrastive", {"finetune": "probe"}),
    "contrastive (fine-tuned)": ("contrastive", {"finetune": "full"}),
    "tree-lines": ("tree-lines", {}),
}

#: The name under which the training history keeps the shared pretraining (one panel).
PRETRAINING = "shared contrastive"

#: The models trained from the labels alone, that pretraining should beat.
REFERENCES = ("fusion (scratch)", "tree-lines")


#: ``n_subsets="auto"``: this many label subsets at fractions of :data:`AUTO_FROM` and above,
#: and more below it, in proportion to 1 / fraction, up to :data:`AUTO_MAX_SUBSETS`. Small
#: fractions need them: on the default cube the probe's test RMSE varied by 0.055 dex between
#: subsets of 1 % of the labels (0.006 dex at 10 %), and three subsets left every 1 % verdict
#: undecided where ten decided them; their fits are also the cheapest.
AUTO_SUBSETS = 3
AUTO_FROM = 0.1
AUTO_MAX_SUBSETS = 10


def subsets_per_fraction(fractions, n_subsets="auto"):
    """How many random label subsets each fraction gets.

    Parameters
    ----------
    fractions : sequence of float
        Fractions of the labelled training objects, each in (0, 1].
    n_subsets : int or "auto", default="auto"
        The same number for every fraction, or ``"auto"``: ``AUTO_SUBSETS`` (3) at
        fractions of 10 % and above, ``round(3 * 0.1 / fraction)`` below, up to
        ``AUTO_MAX_SUBSETS`` (10). All the labels (fraction 1) have one subset, whatever
        ``n_subsets`` says.

    Returns
    -------
    dict of float to int
        The number of subsets of each fraction, in the order given.

    Examples
    --------
    >>> from sklearn_sfr.experiments import subsets_per_fraction
    >>> subsets_per_fraction([0.01, 0.03, 0.05, 0.1, 0.3, 1.0])
    {0.01: 10, 0.03: 10, 0.05: 6, 0.1: 3, 0.3: 3, 1.0: 1}
    >>> subsets_per_fraction([0.01, 0.5, 1.0], n_subsets=2)
    {0.01: 2, 0.5: 2, 1.0: 1}
    """
    fractions = [float(f) for f in fractions]
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"fractions must be in (0, 1], got {bad}")
    if isinstance(n_subsets, str) and n_subsets == "auto":
        counts = {
            f: min(AUTO_MAX_SUBSETS, max(AUTO_SUBSETS, round(AUTO_SUBSETS * AUTO_FROM / f)))
            for f in fractions
        }
    elif (
        isinstance(n_subsets, bool) or not isinstance(n_subsets, int | np.integer) or n_subsets < 1
    ):
        raise ValueError(f"n_subsets must be a positive integer or 'auto', got {n_subsets!r}")
    else:
        counts = dict.fromkeys(fractions, int(n_subsets))
    # Every subset of all the labels is the same objects: one.
    return {f: 1 if f == 1.0 else n for f, n in counts.items()}


def label_subsets(pool, fractions, n_subsets="auto", random_state=0):
    """Random subsets of the labelled training objects, the same for every model.

    Subset ``s`` draws one random order of ``pool`` and takes its first
    ``max(2, round(fraction * len(pool)))`` objects for each fraction that has an ``s``-th
    subset (see :func:`~sklearn_sfr.experiments.subsets_per_fraction`), so a larger fraction
    adds labels to a smaller one's. A fraction that takes the whole pool has one subset only
    (the others would be the same objects).

    Parameters
    ----------
    pool : array-like of int
        Positions of the labelled training objects.
    fractions : sequence of float
        Fractions of ``pool``, each in (0, 1].
    n_subsets : int or "auto", default="auto"
        Random subsets per fraction (see :func:`~sklearn_sfr.experiments.subsets_per_fraction`).
    random_state : int, default=0

    Returns
    -------
    subsets : dict of (fraction, subset) to ndarray of int
        The sorted positions of each subset.

    Examples
    --------
    >>> from sklearn_sfr.experiments.studies.label_efficiency import label_subsets
    >>> subsets = label_subsets(range(100), [0.1, 1.0], n_subsets=2)
    >>> [(key, len(rows)) for key, rows in subsets.items()]
    [((0.1, 0), 10), ((1.0, 0), 100), ((0.1, 1), 10)]
    >>> set(subsets[0.1, 0]) <= set(subsets[1.0, 0])
    True
    >>> sorted({key[0]: key[1] + 1 for key in label_subsets(range(1000), [0.01, 0.1])}.items())
    [(0.01, 10), (0.1, 3)]
    """
    pool = np.asarray(pool)
    counts = subsets_per_fraction(fractions, n_subsets)
    if len(pool) < 2:
        raise ValueError(f"need at least 2 labelled training objects, got {len(pool)}")
    out = {}
    for s in range(max(counts.values(), default=0)):
        order = np.random.default_rng([random_state, s]).permutation(pool)
        for f, count in counts.items():
            size = max(2, round(f * len(pool)))
            if s < count and (s == 0 or size < len(pool)):
                out[f, s] = np.sort(order[:size])
    return out


def pretrain(X, y, rows, *, random_state=0, neural_params=None, contrastive_params=None):
    """The contrastive pretraining every contrastive model of the study shares.

    A :class:`~sklearn_sfr.neural.ContrastiveRegressor` fitted on ``rows`` (every non-test
    object: FLAG 0, 1, 2 and unlabelled): its pretraining reads them all; its own head, one
    epoch on the FLAG=0 labels of those rows, is not used (each model of the study trains its
    own head on its subset's labels).

    Returns
    -------
    model : ContrastiveRegressor
        Fitted; pass it as ``pretrained`` (in a :class:`~sklearn.frozen.FrozenEstimator`).
    """
    params = {**(neural_params or {}), **(contrastive_params or {}), "max_epochs": 1}
    model = _model("contrastive", random_state, None, **params)[-1]
    return model.fit(X[rows], np.asarray(y, dtype=np.float64)[rows])


def _built(names, seed, neural_params, contrastive_params, pretrained):
    from sklearn.frozen import FrozenEstimator

    built = {}
    for name in names:
        registry, params = MODELS[name]
        if registry == "contrastive":
            params = {**(contrastive_params or {}), **params,
                      "pretrained": FrozenEstimator(pretrained)}  # fmt: skip
        built[name] = _model(registry, seed, neural_params, **params)
    return built


def _evaluate(*, models, fraction, subset, repeat, n_repeats, n_pretrain, n_jobs, **kwargs):
    # The history list is this task's own (it may run in a worker): returned, not shared.
    history = []
    scores, predictions = evaluate_models(models, n_jobs=n_jobs, history=history, **kwargs)
    (trained,) = history
    # The subsets are training repeats of one configuration (model, fraction): the report
    # averages them and their spread widens the intervals.
    number = subset * n_repeats + repeat
    for frame in (scores, predictions, trained):
        frame.insert(1, "fraction", fraction)
        frame.insert(2, "subset", subset)
        frame["repeat"] = number
    scores.insert(3, "n_labels", len(kwargs["train"]))
    scores.insert(4, "n_pretrain", [n_pretrain if MODELS[m][0] == "contrastive" else 0
                                    for m in scores["model"]])  # fmt: skip
    return scores, predictions, trained


@_doc(
    extra=", plus ``fraction``, ``subset``, ``n_labels`` (labelled objects the model was "
    "trained on) and ``n_pretrain`` (objects the contrastive pretraining read, 0 for the "
    "others); ``repeat`` numbers subset and seed repeat together",
    pred_extra=", ``fraction``, ``subset``",
)
def label_efficiency_study(
    cube,
    *,
    fractions=(0.01, 0.03, 0.1, 0.3, 1.0),
    n_subsets="auto",
    models=tuple(MODELS),
    contrastive_params=None,
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
    """Test RMSE against the fraction of labelled training objects, pretrained or not.

        Pretraining reads every object. The test objects are FLAG=0 objects held out
        (``test_size`` of them, the same for every model). The FLAG=0 training objects are
        the label pool: for each fraction, ``n_subsets`` random subsets of it (the same for
        every model) train each model. The
        contrastive pretraining runs once, on every object that is not a test object (FLAG 0,
        1, 2 and unlabelled), and both contrastive models train their
        heads on each subset from it. The predictions' ``position`` counts the rows of
        ``load_hisscube(cube, flag=None)``. ``cv`` is not used (the subsets measure the
        spread); ``cache`` is not used either (no other study trains on these subsets).

        Parameters
        ----------
        cube : str or path-like
            A HiSS-Cube file.
        fractions : sequence of float, default=(0.01, 0.03, 0.1, 0.3, 1.0)
            Fractions of the FLAG=0 training objects whose labels are used, each in (0, 1].
        n_subsets : int or "auto", default="auto"
            Random label subsets per fraction: the same number for each, or ``"auto"``,
            three at 10 % and above and more below, up to ten at 3 % and less (see
            :func:`~sklearn_sfr.experiments.subsets_per_fraction`): small fractions vary most
            from subset to subset.
        models : sequence of str, default=all of the study's models
            Which of the study's models to run.
        contrastive_params : dict, default=None
            Parameters of the contrastive models (e.g. ``{{"pretrain_epochs": 30}}``).
        image_zoom, spectrum_zoom : {0, 1, 2, 3}, default=2
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments.studies.label_efficiency import (
        ...     label_efficiency_study)
        >>> scores, _ = label_efficiency_study(path, fractions=[0.5, 1.0], n_subsets=1,
        ...                                    models=["tree-lines"], image_zoom=3,
        ...                                    spectrum_zoom=3)
        >>> scores[["model", "fraction", "n_labels"]].values.tolist()
        [['tree-lines', 0.5, 19], ['tree-lines', 1.0, 38]]
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
    data = load_hisscube(cube, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, flag=None)
    trusted = (data.frame["FLAG"].to_numpy() == 0) & np.isfinite(data.y)
    train, test = study_split(
        len(data.y), test_size=test_size, random_state=random_state, eligible=trusted
    )
    subsets = label_subsets(train[trusted[train]], fractions, n_subsets, random_state)
    base = None
    if any(MODELS[m][0] == "contrastive" for m in models):
        # Labels for pretrain's throwaway head: the FLAG=0 training ones (the estimator also
        # drops flagged labels itself).
        y = np.where(trusted, data.y, np.nan)
        base = pretrain(
            data.X, y, train, random_state=random_state,
            neural_params=neural_params, contrastive_params=contrastive_params,
        )  # fmt: skip
    tasks = [
        dict(models=_built(models, random_state + r, neural_params, contrastive_params, base),
             fraction=fraction, subset=subset, repeat=r, n_repeats=repeats,
             n_pretrain=len(train), X=data.X, y=data.y, train=rows, test=test,
             noise_floor=data.noise_floor, random_state=random_state + r, verbose=verbose)
        for (fraction, subset), rows in subsets.items()
        for r in range(repeats)
    ]  # fmt: skip
    results = list(parallel_map(_evaluate, tasks, cv=None, n_jobs=n_jobs))
    scores = pd.concat([s for s, _, _ in results], ignore_index=True)
    predictions = pd.concat([p for _, p, _ in results], ignore_index=True)
    histories = [h for _, _, h in results]
    if base is not None:  # the one pretraining every contrastive model shares, recorded once
        _, frames = training_history(base, model=PRETRAINING, split="test", fold=0, repeat=0)
        shared = pd.concat(frames, ignore_index=True)
        shared = shared[shared["stage"] == "pretraining"]  # not its throwaway one-epoch head
        histories.append(shared.assign(fraction=np.nan, subset=0)[histories[0].columns])
    _keep(history, histories)
    order = {name: i for i, name in enumerate(models)}
    scores = scores.sort_values(
        ["model", "fraction", "repeat"], key=lambda c: c.map(order) if c.name == "model" else c
    )
    return scores.reset_index(drop=True), predictions


class LabelEfficiencyStudy(Study):
    """Test RMSE against the labelled fraction, pretrained against from scratch."""

    name = "label_efficiency"
    keys = ("model", "fraction")
    settings = {
        "label_fractions": (0.01, 0.03, 0.1, 0.3, 1.0),
        "label_subsets": "auto",
        "label_contrastive_params": {},
    }
    # The demo runs every quick study: two fractions, one subset, a short pretraining.
    quick_settings = {
        "label_fractions": (0.1, 1.0),
        "label_subsets": 1,
        "label_contrastive_params": {"pretrain_epochs": 2},
    }

    def run(self, run):
        return label_efficiency_study(
            run.cube,
            fractions=run.config["label_fractions"],
            n_subsets=run.config["label_subsets"],
            contrastive_params=run.config["label_contrastive_params"],
            image_zoom=run.config["image_zoom"],
            spectrum_zoom=run.config["spectrum_zoom"],
            history=run.history,
            **run.common,
        )

    def settings_lines(self, config):
        counts = subsets_per_fraction(config["label_fractions"], config["label_subsets"])
        if len(set(counts.values())) == 1:
            fractions = ", ".join(f"{100 * f:g} %" for f in counts)
            each = f"{next(iter(counts.values()))} random subset(s) each"
        else:
            fractions = ", ".join(
                f"{100 * f:g} % ({n} subset{'s' if n > 1 else ''})" for f, n in counts.items()
            )
            each = "random subsets"
        return [
            f"label efficiency: {fractions} of the FLAG=0 training labels, "
            f"{each} (the same for every model); "
            "contrastive pretraining on every non-test object, FLAG 0, 1, 2 and unlabelled"
        ]

    def conclusions(self, tables, dex, compare):
        table = tables.get(self.name)
        if table is None or not len(table):
            return []
        return [
            line
            for fraction, group in table.groupby("fraction", sort=True)
            if (line := self._fraction_line(fraction, group, dex, compare))
        ]

    def _fraction_line(self, fraction, group, dex, compare):
        """One fraction's verdicts: the better contrastive model against each reference."""
        rows = group.set_index("model")
        pretrained = [m for m in rows.index if MODELS.get(m, ("",))[0] == "contrastive"]
        if not pretrained:
            return None
        best = min(pretrained, key=lambda m: rows.loc[m, "rmse"])
        parts = []
        for reference in REFERENCES:
            if reference not in rows.index:
                continue
            d = compare.difference(
                (self.name, {"model": best, "fraction": fraction}),
                (self.name, {"model": reference, "fraction": fraction}),
            )
            parts.append(
                f"against {reference} ({rows.loc[reference, 'rmse']:.3f}) it "
                + said(d, "wins", "loses")
            )
        if not parts:
            return None
        return (
            f"**Label efficiency at {100 * fraction:g} % of the labels**: {best}, "
            f"{dex(rows.loc[best])}; " + "; ".join(parts) + "."
        )

    def figures(self, scores, predictions, data, folder, table=None):
        from ...plotting import plot_label_efficiency, save_figure

        if table is None:
            test = scores[scores["split"] == "test"]
            table = test.groupby(list(self.keys), sort=False)["rmse"].mean().reset_index()
        floor = data.noise_floor if data is not None else None
        fig = plot_label_efficiency(table, noise_floor=floor)
        path = save_figure(fig, folder / f"{self.name}.png")
        caption = (
            "label efficiency: test RMSE against the labelled fraction of the FLAG=0 training "
            "objects (mean over the label subsets; bars: 95 % intervals over test objects and "
            "subsets)"
        )
        return {self.name: (path, caption)}


STUDY = LabelEfficiencyStudy()
