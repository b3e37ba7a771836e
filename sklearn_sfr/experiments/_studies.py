"""The study's questions, each a function returning tidy DataFrames (one row per model and
fold, or per configuration), all on one fixed, seeded train/test split."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from ..datasets import load_hisscube
from ..model_selection import make_model
from ._evaluate import evaluate_models, parallel_map, study_split

#: Registry names of the models that train a network (they get ``neural_params``).
NEURAL_MODELS = ("image", "spectrum", "fusion", "contrastive")

#: The decision-tree baselines: trees on spectra (rebinned, line features) and on photometry
#: (flattened cutouts, photometry features).
BASELINE_MODELS = ("tree-spectrum", "tree-lines", "tree-pixels", "tree-photometry")


def _model(name, random_state, neural_params, **params):
    if name in NEURAL_MODELS:
        params = {**(neural_params or {}), **params}
    return make_model(name, random_state=random_state, **params)


def _run(models, data, *, test_size, cv, n_jobs, random_state, verbose):
    train, test = study_split(len(data.y), test_size=test_size, random_state=random_state)
    return evaluate_models(
        models,
        data.X,
        data.y,
        train=train,
        test=test,
        cv=cv,
        n_jobs=n_jobs,
        noise_floor=data.noise_floor,
        random_state=random_state,
        verbose=verbose,
    )


_COMMON_DOC = """
    test_size : float, default=0.2
        Fraction of the objects held out as the fixed test set.
    cv : int, cross-validation generator or None, default=None
        Cross-validation folds on the training objects, in addition to the test score;
        None scores on the test set only.
    n_jobs : int, default=None
        Parallel jobs (joblib): the cross-validation folds, or without ``cv`` the models
        and configurations themselves.
    random_state : int, default=0
        Seeds the split, the folds and every model.
    neural_params : dict, default=None
        Parameters of every neural model (e.g. ``{{"max_epochs": 30, "device": "cuda"}}``).
    verbose : bool, default=False
        Print a line per model.

    Returns
    -------
    scores : DataFrame
        One row per model and fold (``split`` is ``"test"`` or ``"cv"``), with the columns
        of :data:`~sklearn_sfr.experiments.SCORE_COLUMNS`{extra} (a study's own columns come
        right after ``model``).
    predictions : DataFrame
        The test predictions: ``model``{pred_extra}, ``position`` (row of the study's X),
        ``y_true``, ``y_pred``.
"""


def _doc(extra="", pred_extra=""):
    def decorate(func):
        # The docstrings and the shared block are indented differently: dedent both, so that
        # numpydoc and doctest see one consistent docstring.
        first, _, body = func.__doc__.partition("\n")
        lines = body.splitlines()
        indent = min(
            len(line) - len(line.lstrip())
            for line in lines
            if line.strip() and line.strip() != "{common}"
        )
        common = textwrap.dedent(_COMMON_DOC.format(extra=extra, pred_extra=pred_extra))
        func.__doc__ = "\n".join(
            [first]
            + [
                common.strip("\n") if line.strip() == "{common}" else line[indent:]
                for line in lines
            ]
        )
        return func

    return decorate


@_doc()
def baseline_study(
    data,
    *,
    models=BASELINE_MODELS,
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    verbose=False,
):
    """Decision trees on spectra (rebinned pixels, line features) and on photometry
        (flattened cutouts, photometry features).

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` (``X``, ``y``, ``noise_floor``).
        models : sequence of str, default=BASELINE_MODELS
            Names of :func:`~sklearn_sfr.model_selection.make_model`.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> from sklearn_sfr.experiments import baseline_study
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=120,
        ...                            random_state=0)
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> scores, _ = baseline_study(data, models=["tree-pixels", "tree-spectrum"])
        >>> scores[["model", "split"]].values.tolist()
        [['tree-pixels', 'test'], ['tree-spectrum', 'test']]
    """
    built = {name: _model(name, random_state, neural_params) for name in models}
    return _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, verbose=verbose,
    )  # fmt: skip


@_doc(extra=", plus ``modality`` (image, spectrum or both)")
def modality_study(
    data,
    *,
    fusion="intermediate",
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    verbose=False,
):
    """Image only, spectrum only, and both fused: how much each modality tells.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` with both modalities.
        fusion : str, default="intermediate"
            The fusion strategy of the multi-modal model.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import modality_study
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = modality_study(data, neural_params=tiny)
        >>> scores[["model", "modality"]].values.tolist()
        [['image', 'image'], ['spectrum', 'spectrum'], ['fusion (intermediate)', 'both']]
    """
    built = {
        "image": _model("image", random_state, neural_params),
        "spectrum": _model("spectrum", random_state, neural_params),
        f"fusion ({fusion})": _model("fusion", random_state, neural_params, fusion=fusion),
    }
    scores, predictions = _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, verbose=verbose,
    )  # fmt: skip
    modality = {"image": "image", "spectrum": "spectrum"}
    scores.insert(1, "modality", scores["model"].map(modality).fillna("both"))
    return scores, predictions


@_doc(extra=", plus ``fusion``")
def fusion_study(
    data,
    *,
    fusions=("early", "intermediate", "late", "cross_attention"),
    contrastive=True,
    contrastive_params=None,
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    verbose=False,
):
    """The fusion strategies compared: early, intermediate, late, cross-attention and
        contrastive pretraining.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` with both modalities.
        fusions : sequence of str
            ``FusionRegressor`` strategies to compare.
        contrastive : bool, default=True
            Also run :class:`~sklearn_sfr.neural.ContrastiveRegressor`.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import fusion_study
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = fusion_study(data, fusions=["early", "late"], contrastive=False,
        ...                          neural_params=tiny)
        >>> scores[["model", "fusion"]].values.tolist()
        [['fusion (early)', 'early'], ['fusion (late)', 'late']]
    """
    built = {
        f"fusion ({f})": _model("fusion", random_state, neural_params, fusion=f) for f in fusions
    }
    if contrastive:
        built["contrastive"] = _model(
            "contrastive", random_state, neural_params, **(contrastive_params or {})
        )
    scores, predictions = _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, verbose=verbose,
    )  # fmt: skip
    strategy = {name: name[len("fusion (") : -1] for name in built if name.startswith("fusion")}
    scores.insert(1, "fusion", scores["model"].map(strategy).fillna("contrastive"))
    return scores, predictions


@_doc(
    extra=(", plus ``image_zoom``, ``spectrum_zoom``, ``image_size`` (px) and "
           "``spectrum_length`` (px)"),
    pred_extra=", ``image_zoom``, ``spectrum_zoom``, ``image_size``, ``spectrum_length``",
)  # fmt: skip
def resolution_study(
    cube,
    *,
    model="fusion",
    image_zooms=(0, 1, 2, 3),
    spectrum_zooms=(0, 1, 2, 3),
    flag=0,
    model_params=None,
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    verbose=False,
):
    """Every image zoom x spectral level pair: accuracy against fit time, predict time and
        the memory the fit needed.

        Parameters
        ----------
        cube : str or path-like
            A HiSS-Cube file (each pair is loaded from it in turn).
        model : str, default="fusion"
            Name of :func:`~sklearn_sfr.model_selection.make_model` that reads both modalities.
        image_zooms, spectrum_zooms : sequence of {0, 1, 2, 3}
            Zoom 0 is the full resolution (64 px, 4620 px), each next zoom halves it.
        flag : int, sequence of int or None, default=0
            The objects to use, as in :func:`~sklearn_sfr.datasets.load_hisscube`.
        model_params : dict, default=None
            Parameters of the model (e.g. ``{"fusion": "late"}``).
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import resolution_study
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = resolution_study(path, image_zooms=[3], spectrum_zooms=[2, 3],
        ...                              neural_params=tiny)
        >>> scores[["image_size", "spectrum_length"]].values.tolist()
        [[8, 1155], [8, 577]]
    """
    tasks = [
        dict(cube=cube, image_zoom=i, spectrum_zoom=s, flag=flag, model=model,
             model_params=model_params, test_size=test_size, cv=cv, random_state=random_state,
             neural_params=neural_params, verbose=verbose)
        for i in image_zooms for s in spectrum_zooms
    ]  # fmt: skip
    results = list(parallel_map(_resolution_pair, tasks, cv=cv, n_jobs=n_jobs))
    return (
        pd.concat([scores for scores, _ in results], ignore_index=True),
        pd.concat([predictions for _, predictions in results], ignore_index=True),
    )


def _resolution_pair(cube, image_zoom, spectrum_zoom, *, flag, model, model_params, **common):
    data = load_hisscube(cube, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, flag=flag)
    size, length = data.X["image"].shape[-1], data.X["spectrum"].shape[-1]
    neural_params = common.pop("neural_params")
    random_state = common["random_state"]
    built = {
        f"{size} px x {length} px": _model(
            model, random_state, neural_params, **(model_params or {})
        )
    }
    scores, predictions = _run(built, data, **common)
    for frame in (scores, predictions):
        frame.insert(1, "image_zoom", image_zoom)
        frame.insert(2, "spectrum_zoom", spectrum_zoom)
        frame.insert(3, "image_size", size)
        frame.insert(4, "spectrum_length", length)
    return scores, predictions


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
            Names of :func:`~sklearn_sfr.model_selection.make_model`.
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
             random_state=random_state, verbose=verbose)
        for subset in (train[clean[train]], train)
    ]  # fmt: skip
    results = list(parallel_map(evaluate_models, tasks, cv=cv, n_jobs=n_jobs))
    for trained_on, (scores, predictions) in zip(("FLAG=0", "all labelled"), results):
        scores.insert(1, "trained_on", trained_on)
        predictions.insert(1, "trained_on", trained_on)
    return (
        pd.concat([scores for scores, _ in results], ignore_index=True),
        pd.concat([predictions for _, predictions in results], ignore_index=True),
    )


def _with_isolator(model, random_state):
    """``model`` (a Pipeline) with an ObjectIsolator as its first step."""
    from sklearn.pipeline import Pipeline

    from ..preprocessing import ObjectIsolator

    steps = [("isolate", ObjectIsolator(random_state=random_state)), *model.steps]
    return Pipeline(steps)


def has_neighbour(data, *, random_state=0):
    """Whether each cutout of ``data`` holds another object than the central one.

    The cube's truth (``n_neighbours`` of a synthetic cube) where it has it, else what
    :class:`~sklearn_sfr.preprocessing.ObjectIsolator` detects (another source found).

    Parameters
    ----------
    data : Bunch
        From :func:`~sklearn_sfr.datasets.load_hisscube` with images.
    random_state : int, default=0
        Seeds the detection's noise replacement (used only without the truth).

    Returns
    -------
    mask : ndarray of bool
    source : str
        ``"truth"`` or ``"detected"``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
    >>> from sklearn_sfr.experiments import has_neighbour
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=40,
    ...                            neighbour_fraction=0.5, random_state=0)
    >>> mask, source = has_neighbour(load_hisscube(path, image_zoom=3, spectrum_zoom=3))
    >>> source, mask.dtype, bool(mask.any())
    ('truth', dtype('bool'), True)
    """
    if "n_neighbours" in data.frame:
        return data.frame["n_neighbours"].to_numpy() > 0, "truth"
    from ..preprocessing import ObjectIsolator

    _, stats = ObjectIsolator(random_state=random_state).fit(data.X).isolate(data.X)
    return (stats["n_sources"].to_numpy() > 1), "detected"


@_doc(
    extra=(", plus ``isolation`` (``none`` or ``ObjectIsolator``) and ``objects`` (``all``, "
           "``with neighbour``, ``without neighbour``)"),
    pred_extra=", ``isolation``",
)  # fmt: skip
def isolation_study(
    data,
    *,
    models=("tree-photometry",),
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    verbose=False,
):
    """With vs without :class:`~sklearn_sfr.preprocessing.ObjectIsolator` in front of each
        model, scored on all test objects and separately on those whose cutout has a neighbour.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` with images.
        models : sequence of str, default=("tree-photometry",)
            Names of :func:`~sklearn_sfr.model_selection.make_model` that read images.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import isolation_study
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> scores, _ = isolation_study(data)
        >>> scores[["isolation", "objects"]].values.tolist()[::3]
        [['none', 'all'], ['ObjectIsolator', 'all']]
    """
    from ..metrics import regression_report

    neighbour, source = has_neighbour(data, random_state=random_state)
    tasks = []
    for isolation in ("none", "ObjectIsolator"):
        built = {}
        for name in models:
            model = _model(name, random_state, neural_params)
            built[name] = model if isolation == "none" else _with_isolator(model, random_state)
        tasks.append(dict(models=built, data=data, test_size=test_size, cv=cv,
                          random_state=random_state, verbose=verbose))  # fmt: skip
    results = list(parallel_map(_run, tasks, cv=cv, n_jobs=n_jobs))
    all_scores, all_predictions = [], []
    for isolation, (scores, predictions) in zip(("none", "ObjectIsolator"), results):
        scores.insert(1, "isolation", isolation)
        scores.insert(2, "objects", "all")
        predictions.insert(1, "isolation", isolation)
        # The same test predictions, scored on the objects with and without a neighbour.
        subsets = []
        for name, group in predictions.groupby("model", sort=False):
            mask = neighbour[group["position"].to_numpy()]
            base = scores[(scores["model"] == name) & (scores["split"] == "test")].iloc[0]
            for label, keep in (("with neighbour", mask), ("without neighbour", ~mask)):
                if not keep.any():
                    continue
                row = base.copy()
                report = regression_report(group["y_true"][keep], group["y_pred"][keep])
                for column, value in report.iloc[0].items():
                    if column in row.index:
                        row[column] = value
                row["objects"], row["n_test"] = label, int(keep.sum())
                row["rmse_over_floor"] = row["rmse"] / row["noise_floor"]
                subsets.append(row)
        all_scores.append(pd.concat([scores, pd.DataFrame(subsets)], ignore_index=True))
        all_predictions.append(predictions)
    scores = pd.concat(all_scores, ignore_index=True)
    scores.attrs["neighbours_from"] = source
    return scores, pd.concat(all_predictions, ignore_index=True)
