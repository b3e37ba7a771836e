"""``OptunaSearchCV``: Optuna tuning of any estimator or pipeline, SliceDicts included.

A thin estimator in the shape of optuna-integration's ``OptunaSearchCV`` (same parameter
names where they overlap, same fitted attributes), written here because that one offers what
this project needs only partly: it takes a ready ``Study`` instead of a storage and study name,
prunes only estimators with ``partial_fit`` (not skorch nets), turns a ``ValueError`` in a fold
into a NaN score, and is an experimental API. Each trial here is one
:func:`sklearn.model_selection.cross_validate` of a clone of the estimator, so anything
``cross_validate`` takes (SliceDicts, pipelines, groups) is tuned as it is.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..utils._sklearn import HasMethods, Interval, StrOptions, fit_context

#: The SQLite file that :func:`storage_url` makes of ``None``, in the working directory: a
#: place to keep studies on disk without choosing one (``storage=DEFAULT_STORAGE``).
#: ``OptunaSearchCV`` itself keeps its study in memory unless it is given a storage.
DEFAULT_STORAGE = "optuna.db"

#: How often a running trial records that it is alive, and after how many missed beats it
#: counts as dead (a killed process): see ``heartbeat_interval``.
_GRACE_BEATS = 2

#: Tries at opening a storage and creating (or loading) the study in it: workers started
#: together on an empty database race to create Optuna's tables and the study (PostgreSQL
#: answers the losers with a duplicate key), and the losers try again.
_STUDY_ATTEMPTS = 3


def _estimator_has(attr):
    """``available_if`` check: the refitted best estimator (or the unfitted one) has ``attr``."""

    def check(self):
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
        else:
            getattr(self.estimator, attr)
        return True

    return check


def storage_url(storage):
    """The Optuna storage URL for a URL or a path (a path names a SQLite file).

    ``None`` is :data:`DEFAULT_STORAGE` in the working directory (an
    :class:`OptunaSearchCV` with ``storage=None`` does not call this: it stays in memory).

    Parameters
    ----------
    storage : str, path-like or None
        A database URL (``postgresql://...``, ``sqlite:///...``), or the path of a SQLite
        file whose folder exists.

    Returns
    -------
    url : str
        The URL; a path becomes ``sqlite:///`` and its absolute path.

    Examples
    --------
    >>> from sklearn_sfr.model_selection import storage_url
    >>> storage_url("postgresql://user@db.example/optuna")
    'postgresql://user@db.example/optuna'
    >>> storage_url("/tmp/studies.db")
    'sqlite:////tmp/studies.db'
    """
    text = os.fspath(DEFAULT_STORAGE if storage is None else storage)
    if "://" in text:
        return text
    path = os.path.abspath(text)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder {folder} of the Optuna storage {path} does not exist")
    return "sqlite:///" + path


def sqlite_file(url):
    """The file of a ``sqlite:///`` storage URL, or None for a server or in-memory database."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])


#: Seconds :func:`check_sqlite_storage` waits for a SQLite file another process has locked.
_LOCK_WAIT = 10.0

#: Tables that only Optuna's schema has: a SQLite file holding any of them is a storage.
_OPTUNA_TABLES = frozenset({"studies", "alembic_version", "version_info"})


def check_sqlite_storage(url):
    """Refuse a SQLite file that is someone else's database, before Optuna adds its tables.

    Opening an ``RDBStorage`` creates Optuna's tables in whatever database it is given, so a
    user's own SQLite file named as the storage would be changed. A file that does not exist
    yet, an empty one, or one that holds Optuna's tables (a storage, or one being created by
    a worker started beside this one) is fine; the file is opened read-only to look.
    """
    import sqlite3

    path = sqlite_file(url)
    if path is None or not path.exists():
        return
    if path.is_dir():
        raise IsADirectoryError(f"storage {path} is a folder, not a SQLite file")
    if path.stat().st_size == 0:
        return
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_WAIT)
        ) as db:
            tables = {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        ):
            # Optuna's workers hold their locks for milliseconds; this one was held through
            # the whole wait, so something else is writing to that file.
            raise ValueError(
                f"storage {path} stayed locked by another program for {_LOCK_WAIT:.0f} s: "
                "cannot check that it is an Optuna storage; try again or give another file"
            ) from exc
        raise ValueError(
            f"storage {path} is not a SQLite database ({exc}): give a new file"
        ) from exc
    if tables and not tables & _OPTUNA_TABLES:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ValueError(
            f"storage {path} is a SQLite database that Optuna did not write (tables: {shown}); "
            "Optuna would add its tables to it: give a new file or an Optuna storage"
        )


def shown_url(url):
    """A storage URL fit to print: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: it is refused elsewhere anyway
        return url


def _storage_name(storage):
    """A name for ``storage`` fit to print (a URL without its password); checks its type."""
    import optuna

    if storage is None:
        return "memory"
    if isinstance(storage, optuna.storages.BaseStorage):
        return type(storage).__name__
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(
            "storage must be an RDB URL, a path to a SQLite file, an "
            f"optuna.storages.BaseStorage or None, got {type(storage).__name__}"
        )
    return shown_url(storage_url(storage))


def _make_storage(storage, heartbeat_interval=None):
    """The Optuna storage for ``storage`` (checked by :func:`_storage_name` first).

    None is a new :class:`optuna.storages.InMemoryStorage`; a storage object is used as it is;
    a URL or a path is an ``RDBStorage``, with heartbeats every ``heartbeat_interval`` seconds
    (None: none). Opening an ``RDBStorage`` creates Optuna's tables in an empty database.
    """
    import optuna

    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    url = storage_url(storage)
    check_sqlite_storage(url)
    with warnings.catch_warnings():
        # Heartbeats are "experimental" in Optuna 4-5, and they are what resuming needs.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        beats = {}
        if heartbeat_interval is not None:
            # Optuna 4.9 renamed the callback; the old name still works before that.
            retry = getattr(
                optuna.storages,
                "RetryHeartbeatStaleTrialCallback",
                optuna.storages.RetryFailedTrialCallback,
            )
            beats = {
                "heartbeat_interval": heartbeat_interval,
                "grace_period": _GRACE_BEATS * heartbeat_interval,
                # A killed trial's parameters are tried again (once), not lost.
                "heartbeat_stale_trial_callback": retry(max_retry=1),
            }
        return optuna.storages.RDBStorage(url, **beats)


def open_study(
    storage=None, study_name=None, *, load_if_exists=True, pruner=None, heartbeat_interval=None
):
    """Create, or load, the maximising study ``study_name`` in ``storage``.

    Workers started together on an empty database race to create Optuna's tables and the
    study: a failed try is repeated, :data:`_STUDY_ATTEMPTS` tries in all, after 0.5 s, then
    1 s. What no retry can mend is raised at once: a missing database driver (ImportError), a
    malformed URL or unknown dialect, an existing study with ``load_if_exists=False``.

    Parameters
    ----------
    storage : str, path-like, optuna.storages.BaseStorage or None, default=None
        As ``OptunaSearchCV(storage=...)``: None is a new in-memory storage.
    study_name : str or None, default=None
        None creates a study with a unique name.
    load_if_exists : bool, default=True
        Load ``study_name`` when the storage has it (False raises instead).
    pruner : optuna.pruners.BasePruner or None, default=None
        The study's pruner (None: Optuna's default).
    heartbeat_interval : int or None, default=None
        Heartbeats of a URL or path storage (see ``OptunaSearchCV``); None: none.

    Returns
    -------
    study : optuna.study.Study
    shown : str
        The storage's name fit to print (a URL without its password).

    Raises
    ------
    ValueError
        The storage cannot be opened (after the retries), already has ``study_name`` and
        ``load_if_exists`` is False, or has a minimising study of that name.
    """
    import optuna

    try:
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # no SQLAlchemy: only in-memory and custom storages work anyway
        ArgumentError = ImportError

    shown = _storage_name(storage)  # a wrong type or a missing folder: raised at once
    for attempt in range(_STUDY_ATTEMPTS):
        try:
            study = optuna.create_study(
                storage=_make_storage(storage, heartbeat_interval),
                study_name=study_name,
                load_if_exists=load_if_exists,
                direction="maximize",
                pruner=pruner,
            )
            break
        except optuna.exceptions.DuplicatedStudyError as exc:
            raise ValueError(
                f"the storage {shown} already has a study {study_name!r}; pass "
                "load_if_exists=True to continue it or choose another study_name"
            ) from exc
        except Exception as exc:  # SQLAlchemy's errors: not a database, no driver, a race
            if attempt + 1 == _STUDY_ATTEMPTS or isinstance(exc, (ImportError, ArgumentError)):
                raise ValueError(f"cannot open the Optuna storage {shown}: {exc}") from exc
            time.sleep(0.5 * (attempt + 1))
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(
            f"the study {study.study_name!r} in {shown} minimises; OptunaSearchCV "
            "maximises scores: use another study_name"
        )
    return study, shown


def _suggest(trial, name, distribution):
    """Draw one parameter through the trial's public ``suggest_*`` API."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(distribution, FloatDistribution):
        d = distribution
        return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    if isinstance(distribution, IntDistribution):
        d = distribution
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise TypeError(
        f"param_distributions[{name!r}] must be an optuna.distributions Float-, Int- or "
        f"CategoricalDistribution, got {type(distribution).__name__}"
    )


def _attach_pruning(estimator, trial):
    """Give every neural step of ``estimator`` a pruning callback reporting to ``trial``.

    Neural estimators are recognised by their ``net_kwargs`` parameter, so trees and other
    estimators are left alone (and torch is imported only when a neural step is present).
    """
    keys = [
        k
        for k in estimator.get_params(deep=True)
        if k == "net_kwargs" or k.endswith("__net_kwargs")
    ]
    if not keys:
        return estimator
    from ..neural import SkorchPruningCallback

    callback = SkorchPruningCallback(trial)
    updates = {}
    for key in keys:
        kwargs = dict(estimator.get_params(deep=True)[key] or {})
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), ("optuna_pruning", callback)]
        updates[key] = kwargs
    return estimator.set_params(**updates)


class _TrialProgress:
    """A progress bar over the trials (stderr, with the time left) that shows the best score
    as the user thinks of it: ``neg_root_mean_squared_error`` is shown as an RMSE, not as
    Optuna's negative "Best value"."""

    def __init__(self, n_trials, scoring):
        from tqdm.auto import tqdm

        name = scoring if isinstance(scoring, str) else "score"
        self._negated = name.startswith("neg_")
        self._name = name.removeprefix("neg_").replace("root_mean_squared_error", "RMSE")
        self._bar = tqdm(total=n_trials, desc="tuning", unit=" trials")

    def __call__(self, study, trial):
        self._bar.update(1)
        try:
            best = study.best_value
        except ValueError:  # no trial completed yet
            return
        self._bar.set_postfix_str(f"best {self._name} {-best if self._negated else best:.4g}")

    def close(self):
        self._bar.close()


class OptunaSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Hyperparameter search with Optuna and cross-validation, resumable from a database.

    Every trial draws parameters from ``param_distributions``, cross-validates a clone of
    ``estimator`` with them (:func:`~sklearn.model_selection.cross_validate`, so SliceDicts,
    pipelines and ``groups`` work as there) and reports the mean test score, which the study
    maximises. By default the study lives in memory, as in Optuna: ``fit`` writes no file and
    each fit starts a new study. Give a ``storage`` (a SQLite file path or an RDB URL) and a
    ``study_name`` to keep the trials: fitting again with the same storage and study name
    continues that study, whose earlier trials count for ``best_params_``, also after a
    crash. Several processes, or hosts sharing a PostgreSQL or MySQL URL, can work on one
    study at once, the documented Optuna way.

    Parameters
    ----------
    estimator : estimator object
        Cloned for every fold of every trial.
    param_distributions : dict of str to optuna.distributions.BaseDistribution
        Parameter names of ``estimator`` (``model__max_depth`` for a pipeline step) and
        Optuna Float-, Int- or CategoricalDistributions;
        :func:`~sklearn_sfr.experiments.default_search_space` has one per named model.
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.check_cv` (an int is an unshuffled
        ``KFold``; pass ``KFold(k, shuffle=True, random_state=...)`` for shuffled folds).
    scoring : str, callable or None, default=None
        A scikit-learn scorer name (``"neg_root_mean_squared_error"``), a scorer callable
        ``scorer(estimator, X, y)``, or None for the estimator's ``score``. Greater is better.
    n_trials : int or None, default=10
        Trials **this call** runs, on top of those the study already has (Optuna's
        ``Study.optimize`` meaning): fitting twice with ``n_trials=10``, the same storage and
        study name leaves 20. None runs until ``timeout``.
    timeout : float or None, default=None
        Stop starting new trials after this many seconds.
    storage : str, path-like, optuna.storages.BaseStorage or None, default=None
        Where the study lives. None (the default) keeps it in memory: nothing is written,
        and every fit starts a new study (``study_`` still holds its trials). To persist
        it, pass a path (a SQLite file, created when missing, e.g. ``"optuna.db"``), an RDB
        URL (``sqlite:///path.db``, ``postgresql://user:password@host/db``, ...) or a storage
        object; an :class:`~optuna.storages.InMemoryStorage` object keeps studies across fits
        within one process. Clones of the search share a storage object (it is not copied).
    study_name : str or None, default=None
        Name of the study in the storage; None makes a new study with a unique name
        (``no-name-...``) at every fit: name the study to continue it.
    load_if_exists : bool, default=True
        Continue the study ``study_name`` when the storage has it (False raises instead).
    sampler : optuna.samplers.BaseSampler or None, default=None
        None is a :class:`~optuna.samplers.TPESampler` whose random draws are seeded from
        ``random_state`` and each trial's number: a continued study does not repeat the
        start-up draws of the first run, and workers sharing a study with one seed do not
        draw the same trials.
    pruner : optuna.pruners.BasePruner or None, default=None
        Stops unpromising neural trials early (see Notes); None is Optuna's default
        :class:`~optuna.pruners.MedianPruner`, :class:`~optuna.pruners.NopPruner` disables.
    refit : bool, default=True
        Refit the estimator with ``best_params_`` on all of ``X`` (``best_estimator_``), so
        that ``predict`` and ``score`` work.
    random_state : int, RandomState or None, default=None
        Seeds the default sampler.
    n_jobs : int, default=1
        Trials run at once in threads of this process (``Study.optimize(n_jobs=...)``); for
        real parallelism start several processes on one storage instead.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar over the trials with the best score (an RMSE for
        ``neg_root_mean_squared_error``, not its negative); 2 also logs every trial.
    heartbeat_interval : int or None, default=60
        For URL and path storages: seconds between a running trial's heartbeats. A trial
        whose process was killed misses them; after two missed beats the next trial started
        on the study marks it FAIL and queues its parameters again (Optuna's
        :class:`~optuna.storages.RetryFailedTrialCallback`), so no configuration is lost.
        None switches heartbeats off (a killed trial then stays RUNNING).

    Attributes
    ----------
    study_ : optuna.study.Study
        The study, with every trial of this and earlier fits.
    best_params_ : dict
        Parameters of the best COMPLETE trial of the study.
    best_score_ : float
        Its mean cross-validated score.
    best_trial_ : optuna.trial.FrozenTrial
    best_estimator_ : estimator
        Refitted on all data with ``best_params_`` (when ``refit=True``).
    refit_time_ : float
        Seconds the refit took.
    scorer_ : callable
    n_splits_ : int
    n_trials_ : int
        Trials this fit started (COMPLETE, PRUNED or FAIL).
    n_features_in_ : int
        Of ``best_estimator_``, where it has it.

    Notes
    -----
    Trial records. A trial's value is its mean test score; its user attributes hold
    ``split_test_scores`` (one per fold), ``std_test_score`` and ``mean_fit_time``; a trial
    that raised is FAIL (the study goes on) with the exception under the user attribute
    ``error``.

    Pruning. Every step of the estimator with a ``net_kwargs`` parameter (the neural
    estimators of :mod:`sklearn_sfr.neural`) gets a
    :class:`~sklearn_sfr.neural.SkorchPruningCallback`, which reports the negated validation
    loss of each epoch of the trial's **first fold** (the estimators' early-stopping
    hold-out) and stops the trial when the pruner says so. Later folds are not monitored:
    one series per trial is what Optuna's pruners compare. Other estimators are never
    pruned.

    Resuming. With a URL or path ``storage``, finished trials are written to it as they
    end, so a killed search loses only the trial that was running, and with heartbeats even
    that one is retried (unless it was killed within milliseconds of its start, before its
    first heartbeat: it then stays RUNNING and is not counted as finished).

    Examples
    --------
    In memory, as by default: the search writes no file.

    >>> import numpy as np, os, tempfile
    >>> from optuna.distributions import IntDistribution
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from sklearn_sfr.model_selection import OptunaSearchCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(200, 3))
    >>> y = np.sin(6 * X[:, 0])
    >>> space = {"max_depth": IntDistribution(1, 8)}
    >>> search = OptunaSearchCV(DecisionTreeRegressor(random_state=0), space, cv=3,
    ...                         n_trials=8, random_state=0).fit(X, y)
    >>> search.best_params_["max_depth"] >= 4
    True
    >>> len(search.study_.trials), search.predict(X[:2]).shape
    (8, (2,))

    Persisted in a SQLite file and continued by a second fit with the same study name:

    >>> db = os.path.join(tempfile.mkdtemp(), "studies.db")
    >>> search = OptunaSearchCV(DecisionTreeRegressor(random_state=0), space, cv=3,
    ...                         n_trials=8, storage=db, study_name="toy",
    ...                         random_state=0).fit(X, y)
    >>> _ = search.set_params(n_trials=2).fit(X, y)   # the same study goes on
    >>> len(search.study_.trials)
    10
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [dict],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "n_trials": [Interval(Integral, 1, None, closed="left"), None],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "storage": "no_validation",  # checked in fit (optuna is imported only there)
        "study_name": [str, None],
        "load_if_exists": ["boolean"],
        "sampler": [HasMethods(["sample_relative", "sample_independent"]), None],
        "pruner": [HasMethods(["prune"]), None],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral],
        "verbose": ["verbose"],
        "heartbeat_interval": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        cv=5,
        scoring=None,
        n_trials=10,
        timeout=None,
        storage=None,
        study_name=None,
        load_if_exists=True,
        sampler=None,
        pruner=None,
        refit=True,
        random_state=None,
        n_jobs=1,
        verbose=0,
        heartbeat_interval=60,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.cv = cv
        self.scoring = scoring
        self.n_trials = n_trials
        self.timeout = timeout
        self.storage = storage
        self.study_name = study_name
        self.load_if_exists = load_if_exists
        self.sampler = sampler
        self.pruner = pruner
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.heartbeat_interval = heartbeat_interval

    def __sklearn_clone__(self):
        # A storage object is shared by the clones, not deep-copied: clones of one search
        # belong in the same database (and Optuna's storages hold locks and connections that
        # cannot be copied). Everything else is cloned as scikit-learn does.
        params = self.get_params(deep=False)
        storage = params.pop("storage")
        if storage is None or isinstance(storage, (str, os.PathLike)):
            storage = clone(storage, safe=False)
        return type(self)(**{k: clone(v, safe=False) for k, v in params.items()}, storage=storage)

    # -- the study --------------------------------------------------------------------------
    def _create_study(self):
        import optuna

        study, _ = open_study(
            self.storage,
            self.study_name,
            load_if_exists=self.load_if_exists,
            pruner=self.pruner,
            heartbeat_interval=self.heartbeat_interval,
        )
        if self.sampler is not None:
            study.sampler = self.sampler
        else:
            # Draws seeded per trial number: a continued study draws new parameters, and
            # workers sharing the study with one seed draw different ones.
            from ._sampler import TrialSeededTPESampler

            seed = self.random_state
            if seed is None:
                study.sampler = optuna.samplers.TPESampler()
            else:
                seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
                study.sampler = TrialSeededTPESampler(seed)
        return study

    def _objective(self, X, y, groups, cv, fit_params, errors):
        from optuna import TrialPruned

        def objective(trial):
            params = {
                name: _suggest(trial, name, dist)
                for name, dist in self.param_distributions.items()
            }
            estimator = _attach_pruning(clone(self.estimator).set_params(**params), trial)
            try:
                scores = cross_validate(
                    estimator,
                    X,
                    y,
                    groups=groups,
                    cv=cv,
                    scoring=self.scorer_,
                    error_score="raise",  # so that a pruned or failed fold ends the trial
                    params=fit_params,
                )
            except TrialPruned:
                raise
            except Exception as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
                errors.append(exc)
                raise
            test = np.asarray(scores["test_score"], dtype=np.float64)
            # Few attributes: every one is a database commit. The mean is the trial's value.
            trial.set_user_attr("split_test_scores", test.tolist())
            trial.set_user_attr("std_test_score", float(test.std()))
            trial.set_user_attr("mean_fit_time", float(np.mean(scores["fit_time"])))
            return float(test.mean())

        return objective

    # -- fit --------------------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, groups=None, **fit_params):
        """Run ``n_trials`` more trials of the study, then refit the best parameters.

        Parameters
        ----------
        X : SliceDict, array-like or anything ``cross_validate`` takes
            Training samples, split by ``cv`` in every trial.
        y : array-like of shape (n_samples,), default=None
            Target.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv``.
        **fit_params
            Passed to the estimator's ``fit`` in every fold and in the refit.

        Returns
        -------
        self : OptunaSearchCV
            The fitted search.
        """
        import optuna

        if self.n_trials is None and self.timeout is None:
            raise ValueError("n_trials and timeout are both None: the search would never end")
        for name, dist in self.param_distributions.items():
            if not isinstance(dist, optuna.distributions.BaseDistribution):
                raise TypeError(
                    f"param_distributions[{name!r}] must be an optuna distribution, got "
                    f"{type(dist).__name__}"
                )
        unknown = sorted(set(self.param_distributions) - set(self.estimator.get_params()))
        if unknown:
            raise ValueError(
                f"param_distributions names parameter(s) {', '.join(unknown)} that "
                f"{type(self.estimator).__name__} does not have"
            )
        if y is None and get_tags(self.estimator).target_tags.required:
            # As scikit-learn's own estimators say it, before any trial is spent on it.
            raise ValueError(
                f"{type(self.estimator).__name__} requires y to be passed, but the target y "
                "is None"
            )
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.n_splits_ = cv.get_n_splits(X, y, groups)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(
            optuna.logging.INFO if self.verbose >= 2 else optuna.logging.WARNING
        )
        progress = _TrialProgress(self.n_trials, self.scoring) if self.verbose else None
        try:
            study = self._create_study()
            self.study_ = study
            before = {t.number for t in study.get_trials(deepcopy=False)}
            errors = []  # exceptions of this fit's failed trials
            study.optimize(
                self._objective(X, y, groups, cv, fit_params, errors),
                n_trials=self.n_trials,
                timeout=self.timeout,
                n_jobs=self.n_jobs,
                catch=(Exception,),
                callbacks=[progress] if progress is not None else None,
            )
        finally:
            optuna.logging.set_verbosity(verbosity)
            if progress is not None:
                progress.close()
        self.n_trials_ = len({t.number for t in study.get_trials(deepcopy=False)} - before)

        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            message = (
                f"no trial of the study {study.study_name!r} completed ({len(study.trials)} "
                "trials)"
            )
            if not errors:
                raise ValueError(message)
            # Every trial failed, most likely on the input itself: raise the same kind of
            # error as the estimator did (a TypeError stays a TypeError), naming the cause.
            last = errors[-1]
            try:
                error = type(last)(f"{message}; the last error: {type(last).__name__}: {last}")
            except Exception:  # an exception class with another signature
                error = ValueError(f"{message}; the last error: {type(last).__name__}: {last}")
            raise error from last
        self.best_trial_ = study.best_trial
        self.best_params_ = dict(self.best_trial_.params)
        self.best_score_ = float(self.best_trial_.value)
        if self.refit:
            t0 = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - t0
        return self

    # -- results ----------------------------------------------------------------------------
    def trials_dataframe(self, **kwargs):
        """The study's trials as a DataFrame (:meth:`optuna.study.Study.trials_dataframe`).

        Parameters
        ----------
        **kwargs
            Passed on (``attrs``, ``multi_index``).

        Returns
        -------
        pandas.DataFrame
            One row per trial of the study (this fit's and earlier ones).
        """
        check_is_fitted(self, "study_")
        return self.study_.trials_dataframe(**kwargs)

    def _check_refitted(self, method):
        check_is_fitted(self, "study_")
        if not self.refit:
            raise AttributeError(
                f"{method} is available only with refit=True; this search has refit=False"
            )

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_``."""
        self._check_refitted("predict")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from ``best_estimator_``."""
        self._check_refitted("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        self._check_refitted("decision_function")
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``."""
        self._check_refitted("transform")
        return self.best_estimator_.transform(X)

    def score(self, X, y=None):
        """Score ``best_estimator_`` with the search's scorer (``scoring``).

        Parameters
        ----------
        X : SliceDict or array-like
            Samples to score on.
        y : array-like of shape (n_samples,), default=None
            Their target.

        Returns
        -------
        float
            The score (greater is better).
        """
        self._check_refitted("score")
        return self.scorer_(self.best_estimator_, X, y)

    @property
    def n_features_in_(self):
        """Number of features seen by ``best_estimator_`` (where it has that attribute)."""
        try:
            check_is_fitted(self, "best_estimator_")
        except Exception as exc:
            raise AttributeError(
                f"{type(self).__name__} has no n_features_in_ before a refitting fit"
            ) from exc
        return self.best_estimator_.n_features_in_

    @property
    def classes_(self):
        """Class labels of ``best_estimator_`` (classifiers)."""
        self._check_refitted("classes_")
        return self.best_estimator_.classes_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = copy.deepcopy(sub.classifier_tags)
        tags.regressor_tags = copy.deepcopy(sub.regressor_tags)
        # The search takes whatever its estimator takes (SliceDicts, NaN, sparse, ...).
        tags.input_tags = copy.deepcopy(sub.input_tags)
        tags.target_tags = copy.deepcopy(sub.target_tags)
        return tags
