"""One fixed, seeded train/test split, cross-validation on its training part, and the scores
of any set of models on it as a tidy DataFrame: the machinery every study shares."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_validate, train_test_split

from ..metrics import get_scorers, regression_report
from ._measure import Measure

#: Columns of every score table, in order (a study inserts its own right after ``model``).
SCORE_COLUMNS = (
    "model",
    "split",
    "fold",
    "repeat",
    "n_train",
    "n_test",
    "rmse",
    "mae",
    "r2",
    "bias",
    "nmad",
    "outlier_fraction",
    "noise_floor",
    "rmse_over_floor",
    "fit_time",
    "predict_time",
    "peak_memory_mb",
    "epochs",
    "hit_cap",
)

#: Columns of a training history (:func:`evaluate_models`' ``history``): one row per epoch of
#: every network a model trained (a study inserts its own columns right after ``model``).
#: ``stage`` is ``"regression"`` (``net_``) or ``"pretraining"`` (a ContrastiveRegressor's
#: ``pretrain_net_``), ``max_epochs`` the net's cap on epochs and ``best`` marks the epoch
#: whose weights the net kept (early stopping restores its lowest validation loss).
HISTORY_COLUMNS = (
    "model",
    "split",
    "fold",
    "repeat",
    "stage",
    "max_epochs",
    "epoch",
    "train_loss",
    "valid_loss",
    "best",
)

#: The attributes of a fitted neural estimator that hold a trained skorch net, by stage.
_NETS = {"pretraining": "pretrain_net_", "regression": "net_"}

#: The scorers' names (``sklearn_sfr.metrics.SCORING``) -> our column and its sign.
_SCORER_COLUMNS = {
    "neg_rmse": ("rmse", -1.0),
    "neg_mae": ("mae", -1.0),
    "r2": ("r2", 1.0),
    "bias": ("bias", 1.0),
    "neg_nmad": ("nmad", -1.0),
    "neg_outlier_fraction": ("outlier_fraction", -1.0),
}


def parallel_map(func, tasks, *, cv, n_jobs):
    """``func(**task)`` for each task, yielded in order as each finishes in turn.

    Without folds to spread (``cv`` None) the tasks themselves share the ``n_jobs`` joblib
    workers; with folds the tasks run one after the other and each gets ``n_jobs`` for its
    folds. One rule for every study: the models, the resolution pairs,
    the FLAG study's trainings and the isolation variants.
    """
    if cv is None and n_jobs not in (None, 1) and len(tasks) > 1:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
        return parallel(delayed(func)(**task, n_jobs=None) for task in tasks)
    return (func(**task, n_jobs=n_jobs) for task in tasks)


def study_split(n_samples, *, test_size=0.2, random_state=0, eligible=None):
    """Split positions into the study's fixed training and test objects.

    Parameters
    ----------
    n_samples : int
        Number of objects: the positions split are ``0`` to ``n_samples - 1``.
    test_size : float, default=0.2
        Fraction of the objects (of the ``eligible`` ones, when given) held out for the test,
        as in :func:`~sklearn.model_selection.train_test_split`.
    random_state : int, default=0
        Seeds the shuffle, so that every study of a run holds out the same objects.
    eligible : array-like of bool, default=None
        Only these rows may be test objects (e.g. FLAG=0 when training also sees flagged
        objects); all others are training objects.

    Returns
    -------
    train, test : ndarray of int
        Sorted positions of the training and of the test objects; together they hold every
        position once.

    Examples
    --------
    >>> from sklearn_sfr.experiments import study_split
    >>> train, test = study_split(10, test_size=0.2, random_state=0)
    >>> len(train), len(test), sorted(set(train) | set(test)) == list(range(10))
    (8, 2, True)
    """
    positions = np.arange(n_samples)
    if eligible is None:
        train, test = train_test_split(positions, test_size=test_size, random_state=random_state)
        return np.sort(train), np.sort(test)
    eligible = np.asarray(eligible, dtype=bool)
    if eligible.shape != (n_samples,):
        raise ValueError(f"eligible must have shape ({n_samples},), got {eligible.shape}")
    pool = positions[eligible]
    other, test = train_test_split(pool, test_size=test_size, random_state=random_state)
    train = np.sort(np.concatenate([other, positions[~eligible]]))
    return train, np.sort(test)


def _cv_rows(name, model, X, y, cv, n_jobs, noise_floor):
    """The rows of the cross-validation folds, and the training histories of their fits."""
    result = cross_validate(
        model, X, y, cv=cv, scoring=get_scorers(), n_jobs=n_jobs, return_estimator=True
    )
    rows, histories = [], []
    for k, (fit_s, score_s) in enumerate(zip(result["fit_time"], result["score_time"])):
        row = {"model": name, "split": "cv", "fold": k}
        for scorer, (column, sign) in _SCORER_COLUMNS.items():
            row[column] = sign * float(result[f"test_{scorer}"][k])
        row.update(fit_time=float(fit_s), predict_time=float(score_s))
        training, frames = training_history(
            result["estimator"][k], model=name, split="cv", fold=k, repeat=0
        )
        rows.append({**row, **training})
        histories.extend(frames)
    return rows, histories


def _renamed(result, name):
    """A cached ``(rows, predictions, seconds, history)`` under another model name."""
    rows, frame, seconds, history = result
    return (
        [{**row, "model": name} for row in rows],
        frame.assign(model=name),
        seconds,
        history.assign(model=name),
    )


def _reseeded(model, seed):
    """``model`` (cloned) with every ``random_state`` among its parameters set to ``seed``:
    one training repeat. Models without one are deterministic, and repeat identically."""
    model = clone(model)
    seeds = {key: seed for key in model.get_params() if key.split("__")[-1] == "random_state"}
    return model.set_params(**seeds) if seeds else model


def _nets(model):
    """The trained skorch nets of a fitted model (the final step of a pipeline), by stage:
    none for a model that is not a network."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    nets = {stage: getattr(final, attribute, None) for stage, attribute in _NETS.items()}
    if getattr(final, "pretrained", None) is not None:
        # Its pretraining is another model's, trained once and shared by every fit that is
        # given it: whoever trained it records its history, not each fit that reuses it.
        nets.pop("pretraining")
    return {stage: net for stage, net in nets.items() if hasattr(net, "history")}


def _best_epoch(net):
    """The epoch whose weights ``net`` kept: the one its early stopping restored (the lowest
    validation loss), else the last."""
    stopping = dict(getattr(net, "callbacks_", None) or []).get("early_stopping")
    best = getattr(stopping, "best_epoch_", 0) if getattr(stopping, "load_best", False) else 0
    return best or len(net.history)


def training_history(fitted, **fit):
    """What training the ``fitted`` model took: ``epochs`` and ``hit_cap`` of its regression
    net (NaN for a model without one), and the per-epoch history of each of its nets (columns
    :data:`HISTORY_COLUMNS`, ``fit`` giving ``model``, ``split``, ``fold`` and ``repeat``)."""
    nets = _nets(fitted)
    frames = []
    for stage, net in nets.items():
        epochs = [row["epoch"] for row in net.history]
        frames.append(
            pd.DataFrame({
                **fit, "stage": stage, "max_epochs": net.max_epochs, "epoch": epochs,
                "train_loss": [row.get("train_loss", np.nan) for row in net.history],
                "valid_loss": [row.get("valid_loss", np.nan) for row in net.history],
                "best": [epoch == _best_epoch(net) for epoch in epochs],
            })
        )  # fmt: skip
    regression = nets.get("regression")
    if regression is None:
        return {"epochs": np.nan, "hit_cap": np.nan}, frames
    epochs = len(regression.history)
    return {"epochs": epochs, "hit_cap": bool(epochs >= regression.max_epochs)}, frames


def _test_row(name, model, X, y, train, test, noise_floor):
    model = clone(model)
    with Measure() as fitting:
        model.fit(X[train], y[train])
    start = time.perf_counter()
    pred = np.asarray(model.predict(X[test]), dtype=np.float64)
    predict_s = time.perf_counter() - start
    report = regression_report(y[test], pred).iloc[0].to_dict()
    row = {"model": name, "split": "test", "fold": 0, **report}
    row.pop("n", None)
    row.update(
        fit_time=fitting.seconds,
        predict_time=predict_s,
        peak_memory_mb=fitting.peak_memory_mb,
    )
    return row, pred, model


def evaluate_models(
    models,
    X,
    y,
    *,
    train,
    test,
    cv=None,
    n_jobs=None,
    noise_floor=None,
    random_state=0,
    repeats=1,
    cache=None,
    history=None,
    verbose=False,
):
    """Score every model on the fixed split, and by cross-validation on its training part.

    Parameters
    ----------
    models : dict of str to estimator
        Unfitted models (cloned before fitting).
    X : SliceDict or ndarray
        Inputs of every object, as the models read them (e.g. ``load_hisscube(...).X``).
    y : ndarray of shape (n_samples,)
        Target of every object (log SFR in the studies).
    train, test : array-like of int
        Positions of the training and test objects (:func:`study_split`).
    cv : int, cross-validation generator or None, default=None
        Folds of the cross-validation on the training objects (an int is a shuffled,
        seeded ``KFold``); None skips it.
    n_jobs : int, default=None
        Parallel jobs (joblib; ``joblib.parallel_config`` chooses the backend): the folds of
        each model with ``cv``, else the models themselves.
    noise_floor : float, default=None
        RMSE of the labels against the truth: ``rmse_over_floor`` is ``rmse`` over it.
    random_state : int, default=0
        Seeds the cross-validation folds.
    repeats : int, default=1
        Trainings of each model on the same split, repeat ``r`` with every ``random_state``
        of the model set to ``random_state + r`` (repeat 0 is the model as given): the spread
        due to training, apart from the spread due to the test sample.
    cache : dict, default=None
        Results of earlier calls of the run, keyed by the model and the data: a model that
        was already trained on the same data, split and seeds (the same network in the
        modality, fusion and resolution studies) is not trained again, and its rows (fit
        time included) are reused under this call's name. None: no reuse.
    history : list, default=None
        Where the networks' training histories go: one DataFrame (columns
        :data:`HISTORY_COLUMNS`, one row per epoch of every network trained, the folds' and
        the repeats' included) is appended to it. None: not kept.
    verbose : bool, default=False
        Print a line per model.

    Returns
    -------
    scores : DataFrame
        One row per model, fold and repeat, columns :data:`SCORE_COLUMNS` (``split`` is
        ``"cv"`` for the cross-validation folds and ``"test"`` for the held-out test
        objects, ``repeat`` the training repeat of a test row; ``epochs`` the epochs a
        network trained and ``hit_cap`` whether that was its ``max_epochs``, NaN for a model
        that is not a network).
    predictions : DataFrame
        Test predictions: ``model``, ``position`` (row of X), ``y_true``, ``y_pred``,
        ``repeat``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyRegressor
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from sklearn_sfr.experiments import evaluate_models, study_split
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = X[:, 0] + 0.1 * rng.normal(size=100)
    >>> train, test = study_split(100, test_size=0.2, random_state=0)
    >>> models = {"mean": DummyRegressor(), "tree": DecisionTreeRegressor(max_depth=3)}
    >>> scores, predictions = evaluate_models(models, X, y, train=train, test=test, cv=2)
    >>> scores[["model", "split", "fold"]].values.tolist()[:3]
    [['mean', 'cv', 0], ['mean', 'cv', 1], ['mean', 'test', 0]]
    >>> bool(scores.query("split == 'test'").set_index("model").rmse.idxmin() == "tree")
    True
    >>> len(predictions)
    40
    >>> bool(scores["epochs"].isna().all())  # no network: no epochs
    True
    """
    scores, predictions, trained = _evaluate_models(
        models, X, y, train=train, test=test, cv=cv, n_jobs=n_jobs, noise_floor=noise_floor,
        random_state=random_state, repeats=repeats, cache=cache, verbose=verbose,
    )  # fmt: skip
    if history is not None:
        history.append(trained)
    return scores, predictions


def _evaluate_models(
    models, X, y, *, train, test, cv, n_jobs, noise_floor, random_state, repeats, cache, verbose
):
    """:func:`evaluate_models`, returning the training history (a DataFrame, see
    :data:`HISTORY_COLUMNS`) as a third result: the studies run it in worker processes,
    which return what they computed rather than append to a list of the caller's."""
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    repeats = int(repeats)
    y = np.asarray(y, dtype=np.float64)
    train, test = np.asarray(train), np.asarray(test)
    if isinstance(cv, int | np.integer):
        cv = KFold(int(cv), shuffle=True, random_state=random_state)

    def score(name, model, n_jobs):  # n_jobs: this model's folds
        start = time.perf_counter()
        rows, histories = [], []
        if cv is not None:
            sizes = [(len(a), len(b)) for a, b in cv.split(train)]
            cv_rows, histories = _cv_rows(name, model, X[train], y[train], cv, n_jobs, noise_floor)
            for row in cv_rows:
                n_train, n_test = sizes[row["fold"]]
                rows.append({**row, "repeat": 0, "n_train": n_train, "n_test": n_test})
        frames = []
        for r in range(repeats):
            trained = model if r == 0 else _reseeded(model, random_state + r)
            row, pred, fitted = _test_row(name, trained, X, y, train, test, noise_floor)
            training, fit_history = training_history(
                fitted, model=name, split="test", fold=0, repeat=r
            )
            row.update(repeat=r, n_train=len(train), n_test=len(test), **training)
            rows.append(row)
            histories.extend(fit_history)
            frames.append(
                pd.DataFrame({"model": name, "position": test, "y_true": y[test],
                              "y_pred": pred, "repeat": r})
            )  # fmt: skip
        history = pd.concat(histories, ignore_index=True) if histories else _no_history()
        return (rows, pd.concat(frames, ignore_index=True), time.perf_counter() - start, history)

    # A model trained on the same data and split by another study of the run is not trained
    # again: its rows and predictions are reused under this study's name.
    keys, found = {}, {}
    if cache is not None:
        data_key = joblib.hash((X, y, train, test, cv, repeats, random_state))
        for name, model in models.items():
            keys[name] = (joblib.hash(model), data_key)
            if keys[name] in cache:
                found[name] = _renamed(cache[keys[name]], name)
    # Each fit on one worker when there are no folds, so several networks keep every core busy.
    tasks = [{"name": n, "model": m} for n, m in models.items() if n not in found]
    fresh = dict(zip([t["name"] for t in tasks], parallel_map(score, tasks, cv=cv, n_jobs=n_jobs)))
    if cache is not None:
        cache.update({keys[name]: result for name, result in fresh.items()})
    results = [found[name] if name in found else fresh[name] for name in models]
    rows, predictions, histories = [], [], []
    for name, (model_rows, frame, seconds, trained) in zip(models, results, strict=True):
        rows.extend(model_rows)
        predictions.append(frame)
        histories.append(trained)
        if verbose:
            test_rmse = float(np.mean([r["rmse"] for r in model_rows if r["split"] == "test"]))
            print(
                f"  {name}: test RMSE {test_rmse:.3f}"
                + (f" ({test_rmse / noise_floor:.2f} x floor)" if noise_floor else "")
                + f", {seconds:.0f} s",
                flush=True,
            )
    scores = pd.DataFrame(rows)
    scores["noise_floor"] = np.nan if noise_floor is None else float(noise_floor)
    scores["rmse_over_floor"] = scores["rmse"] / scores["noise_floor"]
    scores = scores.reindex(columns=list(SCORE_COLUMNS))
    histories = [frame for frame in histories if len(frame)]
    history = pd.concat(histories, ignore_index=True) if histories else _no_history()
    return scores, pd.concat(predictions, ignore_index=True), history


def _no_history():
    """The training history of models without a network: no rows."""
    return pd.DataFrame(columns=list(HISTORY_COLUMNS))
