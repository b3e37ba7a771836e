"""``tune``: one of the study's named models tuned on a cube, in a resumable Optuna study.

The library side of ``sklearn-sfr tune``: the command parses its options, calls :func:`tune`
and prints the result. Everything that can be refused (the arguments, the cube, the output
folder, the storage) is refused before any file is created.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from numbers import Integral, Real
from pathlib import Path

#: The ``kind`` of the folders :func:`tune` writes (their marker says so).
_KIND = "tune"

#: The study's user attribute that records the configuration it is tuned with.
_CONFIG_ATTR = "sklearn_sfr_tune"

#: The scorer of every trial: the study's values are negated RMSEs (dex).
_SCORING = "neg_root_mean_squared_error"


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
    return int(value)


def _inside(path, folder):
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def _tune_study(url, study_name, config):
    """Create or open the study; refuse to continue one tuned on another configuration."""
    import optuna

    from ..model_selection._search import open_study

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" log line
    try:
        # The library's one study opener (with the retry for workers racing to create it).
        study, _ = open_study(url, study_name)
    finally:
        optuna.logging.set_verbosity(verbosity)
    before = study.user_attrs.get(_CONFIG_ATTR)
    if before is not None and study.trials:
        changed = {k: (before.get(k), v) for k, v in config.items() if before.get(k) != v}
        if changed:
            diff = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"the study {study_name!r} was tuned with another configuration ({diff}); "
                "its scores would not compare: use another study_name (--study-name)"
            )
    study.set_user_attr(_CONFIG_ATTR, config)
    return study


def tune(
    cube,
    estimator,
    *,
    n_trials,
    out="sfr-tune",
    storage=None,
    study_name=None,
    image_zoom=2,
    spectrum_zoom=2,
    cv=3,
    timeout=None,
    random_state=0,
    heartbeat_interval=60,
    verbose=1,
):
    """Tune one of the study's named models on a cube's FLAG=0 objects with Optuna.

    Every trial draws parameters from :func:`default_search_space` and scores them by the
    cross-validated RMSE (shuffled ``KFold``) of :func:`make_model`'s pipeline, with an
    :class:`~sklearn_sfr.model_selection.OptunaSearchCV`. The study is always stored, by
    default in ``optuna.db`` inside
    ``out``: calling again with the same ``storage`` and ``study_name`` continues it with
    ``n_trials`` more trials, also after a crash, and several processes or hosts can share one
    study through a PostgreSQL URL. ``sklearn-sfr tune`` is this function. The folder ``out``
    then holds

    - ``best_params.json``: the study's name and storage, the best trial, its RMSE and
      parameters (what :func:`~sklearn_sfr.experiments.fit_model` takes as ``params``), the
      cube's noise floor, the trial count by state and the configuration;
    - ``trials.csv``: every trial of the study
      (:meth:`~sklearn_sfr.model_selection.OptunaSearchCV.trials_dataframe`);
    - ``optuna.db``, the study, unless ``storage`` names another place.

    A study remembers the configuration it was tuned with (model, zooms, folds, seed, number
    of objects): continuing it with another one is refused, since the scores would not
    compare.

    Parameters
    ----------
    cube : str or path-like
        A HiSS-Cube file (opened read-only).
    estimator : str
        One of :data:`MODEL_NAMES` (``"tree-lines"``, ``"fusion"``, ...).
    n_trials : int
        Trials to run now, on top of those the study already has.
    out : str or path-like, default="sfr-tune"
        Folder for the results: new, empty, or one this function wrote before (files the
        library did not write are never replaced). It must not be, contain or lie inside the
        cube or the storage file.
    storage : str, path-like or None, default=None
        The Optuna storage: an RDB URL (``sqlite:///f.db``, ``postgresql://...``) or the path
        of a SQLite file (:func:`~sklearn_sfr.model_selection.storage_url`). None is
        ``optuna.db`` in ``out``.
    study_name : str or None, default=None
        The study to create or continue; None is ``"ESTIMATOR-SIZEpx-levelLEVEL"``
        (``"tree-lines-16px-level2"``).
    image_zoom : {0, 1, 2, 3}, default=2
        Cutout zoom, as :func:`~sklearn_sfr.datasets.load_hisscube`: 64, 32, 16 or 8 px.
    spectrum_zoom : {0, 1, 2, 3}, default=2
        Spectral zoom, as :func:`~sklearn_sfr.datasets.load_hisscube`: 4620, 2310, 1155 or
        577 pixels.
    cv : int, default=3
        Cross-validation folds (at least 2); the cube needs at least ``2 * cv`` FLAG=0
        objects.
    timeout : float or None, default=None
        Stop starting trials after this many seconds.
    random_state : int, default=0
        Seeds the folds, the sampler and the models.
    heartbeat_interval : int or None, default=60
        Seconds between a running trial's heartbeats: a trial silent for two of them counts as
        killed and is run again by the next call (see
        :class:`~sklearn_sfr.model_selection.OptunaSearchCV`); None: off.
    verbose : int, default=1
        0 is silent; 1 prints a line naming the objects and the study before the search and
        shows a progress bar (stderr); 2 also logs every trial.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``search`` (the fitted :class:`~sklearn_sfr.model_selection.OptunaSearchCV`, not
        refitted: its ``best_params_``,
        ``best_score_``, ``best_trial_``, ``n_trials_`` and ``study_``), ``trials`` (the
        DataFrame written to ``trials.csv``), ``summary`` (the dict written to
        ``best_params.json``), ``study_name``, ``storage`` (the storage's URL without its
        password), ``out``, ``best_params_path`` and ``trials_path`` (paths),
        ``n_objects`` (the FLAG=0 objects tuned on), ``noise_floor`` (the cube's, in dex, or
        None), ``n_earlier_trials`` (the study's trials before this call) and ``elapsed``
        (seconds the search took).

    Raises
    ------
    FileNotFoundError
        The cube, or the folder of a storage file, does not exist.
    FileExistsError
        ``out`` holds files the library did not write.
    ValueError
        A bad argument, a cube that is damaged or has too few FLAG=0 objects, an output that
        is refused (see :doc:`/user_guide/robustness`), a storage that cannot be opened, a
        study tuned with another configuration, or a search in which no trial completed.

    See Also
    --------
    sklearn_sfr.model_selection.OptunaSearchCV : The search itself, on any estimator and data.
    sklearn_sfr.experiments.fit_model : Train a named model with the parameters found.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.experiments import tune
    >>> folder = tempfile.mkdtemp()
    >>> cube = make_synthetic_cube(os.path.join(folder, "c.h5"), n_objects=80,
    ...                            random_state=0)
    >>> out = os.path.join(folder, "tuned")
    >>> result = tune(cube, "tree-spectrum", n_trials=2, out=out, spectrum_zoom=3, cv=2,
    ...               verbose=0)
    >>> result.study_name, len(result.trials)
    ('tree-spectrum-16px-level3', 2)
    >>> sorted(result.search.best_params_)
    ['model__max_depth', 'model__min_samples_leaf', 'rebin__factor']
    >>> sorted(p.name for p in result.out.iterdir() if not p.name.startswith("."))
    ['best_params.json', 'optuna.db', 'trials.csv']

    The same call again continues the study:

    >>> result = tune(cube, "tree-spectrum", n_trials=1, out=out, spectrum_zoom=3, cv=2,
    ...               verbose=0)
    >>> result.n_earlier_trials, result.summary["n_trials"]
    (2, 3)
    """
    from sklearn.model_selection import KFold
    from sklearn.utils import Bunch

    from ..datasets import load_hisscube
    from ..datasets._reader import check_cube
    from ..model_selection._search import (
        OptunaSearchCV,
        check_sqlite_storage,
        shown_url,
        sqlite_file,
        storage_url,
    )
    from ..utils._io import write_csv_atomic, write_text_atomic
    from ..utils._outputs import (
        add_to_manifest,
        check_not_overlapping,
        check_own_file,
        ensure_output_folder,
        read_marker,
    )
    from ..utils._survey import CUTOUT_SIZES, ZOOMS
    from ._models import default_search_space, make_model, model_modalities

    # -- the arguments --------------------------------------------------------------------
    if not isinstance(estimator, str):
        raise TypeError(f"estimator must be a model name (str), got {type(estimator).__name__}")
    modalities = model_modalities(estimator)  # an unknown name
    n_trials = _check_int(n_trials, "n_trials", 1)
    cv = _check_int(cv, "cv", 2)
    random_state = _check_int(random_state, "random_state", 0)
    if heartbeat_interval is not None:
        heartbeat_interval = _check_int(heartbeat_interval, "heartbeat_interval", 1)
    for value, what in ((image_zoom, "image_zoom"), (spectrum_zoom, "spectrum_zoom")):
        if isinstance(value, bool) or not isinstance(value, Integral) or value not in ZOOMS:
            raise ValueError(f"{what} must be one of {ZOOMS}, got {value!r}")
    image_zoom, spectrum_zoom = int(image_zoom), int(spectrum_zoom)
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, Real) or not timeout > 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if study_name is not None and not isinstance(study_name, str):
        raise TypeError(f"study_name must be a str or None, got {type(study_name).__name__}")
    if storage is not None and not isinstance(storage, (str, os.PathLike)):
        raise TypeError(
            "storage must be an RDB URL, a path to a SQLite file or None, got "
            f"{type(storage).__name__}"
        )

    # -- the inputs and the output, before anything is created ---------------------------
    check_cube(cube)  # a bad cube leaves no empty folder
    out = Path(out)
    inputs = [cube]
    storage_file = None
    if storage is not None:
        url = storage_url(storage)
        storage_file = sqlite_file(url)
        if storage_file is not None:
            # Trials are written there: never into the cube, nor a storage inside ``out``.
            check_not_overlapping(storage_file, [cube], what="storage (--storage)")
            check_sqlite_storage(url)  # nor into a user's own database
            if not _inside(storage_file, out):
                inputs.append(storage_file)
    check_not_overlapping(out, inputs, what="output folder (--out)")
    for name in ("best_params.json", "trials.csv"):
        if out.is_dir() and read_marker(out) is not None:
            check_own_file(out, name)  # a user's file of that name in our folder
    created = not out.exists()
    size = CUTOUT_SIZES[image_zoom]
    study_name = study_name or f"{estimator}-{size}px-level{spectrum_zoom}"
    data = load_hisscube(
        cube,
        image_zoom=image_zoom,
        spectrum_zoom=spectrum_zoom,
        flag=0,
        modalities=modalities,
    )
    n = len(data.y)
    if n < 2 * cv:
        raise ValueError(f"{cube} has {n} FLAG=0 objects: too few for {cv}-fold CV")
    config = {
        "estimator": estimator,
        # The keys earlier releases stored: their studies continue.
        "image_size": size if "image" in modalities else None,
        "spectrum_level": spectrum_zoom if "spectrum" in modalities else None,
        "cv": cv,
        "seed": random_state,
        "n_objects": n,
        "scoring": _SCORING,
    }

    # -- the folder and the study ---------------------------------------------------------
    # The folder must be new, empty or ours before anything is written; if the storage
    # cannot be opened, a folder this call created is removed again.
    ensure_output_folder(out, kind=_KIND, inputs=inputs)
    if storage is None:
        url = storage_url(out / "optuna.db")
        storage_file = out / "optuna.db"
    new_storage = storage_file is not None and not storage_file.exists()
    try:
        study = _tune_study(url, study_name, config)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if new_storage and _inside(storage_file, out):
        add_to_manifest(out, [storage_file.resolve().relative_to(out.resolve())], kind=_KIND)
    shown = shown_url(url)
    n_before = len(study.trials)
    if verbose:
        print(
            f"{n} FLAG=0 objects from {cube}; tuning {estimator!r} with {cv}-fold CV, "
            f"study {study_name!r} in {shown} ({n_before} earlier trials)",
            flush=True,
        )

    # -- the search -----------------------------------------------------------------------
    search = OptunaSearchCV(
        make_model(estimator, random_state=random_state),
        default_search_space(estimator),
        # Shuffled folds: cube rows are in plate order, not random.
        cv=KFold(cv, shuffle=True, random_state=random_state),
        scoring=_SCORING,
        n_trials=n_trials,
        timeout=timeout,
        storage=url,
        study_name=study_name,
        refit=False,
        random_state=random_state,
        heartbeat_interval=heartbeat_interval,
        verbose=verbose,
    )
    t0 = time.perf_counter()
    search.fit(data.X, data.y)
    elapsed = time.perf_counter() - t0

    # -- the results ----------------------------------------------------------------------
    trials = search.trials_dataframe()
    states = trials["state"].value_counts().to_dict()
    summary = {
        "study_name": study_name,
        "storage": shown,
        "estimator": estimator,
        "best_trial": search.best_trial_.number,
        "best_rmse": -search.best_score_,
        "best_params": search.best_params_,
        "noise_floor": data.noise_floor,
        "n_trials": len(trials),
        "states": states,
        "config": config,
    }
    best_params_path, trials_path = out / "best_params.json", out / "trials.csv"
    add_to_manifest(out, [best_params_path.name, trials_path.name], kind=_KIND)
    write_text_atomic(best_params_path, json.dumps(summary, indent=2) + "\n")
    write_csv_atomic(trials, trials_path, index=False)
    return Bunch(
        search=search,
        trials=trials,
        summary=summary,
        study_name=study_name,
        storage=shown,
        out=out,
        best_params_path=best_params_path,
        trials_path=trials_path,
        n_objects=n,
        noise_floor=data.noise_floor,
        n_earlier_trials=n_before,
        elapsed=elapsed,
    )
