"""OptunaSearchCV: finding parameters, scorers, failures, storage, resuming after SIGKILL."""

import datetime
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.metrics import make_scorer, mean_absolute_error
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import check_estimator

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.experiments import make_model
from sklearn_sfr.model_selection import OptunaSearchCV, storage_url

REPO = Path(__file__).resolve().parents[2]


def toy(n=240, seed=0):
    """A staircase of 8 steps along the first feature: a tree needs depth >= 3 to follow it."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    y = np.floor(X[:, 0] * 8) + 0.05 * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One SQLite file for the module: creating Optuna's tables costs a second per file.

    Studies without a name get unique names, so tests do not see each other's trials.
    """
    return tmp_path_factory.mktemp("optuna") / "studies.db"


def search(storage=None, estimator=None, space=None, **kwargs):
    """A search on a tree; in memory unless a storage is given (SQLite commits are slow)."""
    kwargs["storage"] = optuna.storages.InMemoryStorage() if storage is None else storage
    kwargs.setdefault("cv", 3)
    kwargs.setdefault("random_state", 0)
    return OptunaSearchCV(
        DecisionTreeRegressor(random_state=0) if estimator is None else estimator,
        {"max_depth": IntDistribution(1, 12)} if space is None else space,
        **kwargs,
    )


def test_finds_a_good_tree_depth():
    X, y = toy()
    s = search(None, n_trials=12).fit(X, y)
    assert s.best_params_["max_depth"] >= 3
    assert s.best_score_ > 0.95
    # Shallow trees were tried and scored clearly worse.
    shallow = [t.value for t in s.study_.trials if t.params["max_depth"] <= 2]
    assert shallow and max(shallow) < s.best_score_ - 0.02
    assert s.best_estimator_.get_depth() == min(s.best_params_["max_depth"], 12)
    assert s.score(X, y) > 0.9
    assert s.predict(X[:4]).shape == (4,)
    assert s.n_trials_ == 12 and s.n_splits_ == 3
    frame = s.trials_dataframe()
    assert len(frame) == 12
    assert {"params_max_depth", "user_attrs_split_test_scores"} <= set(frame.columns)
    best = frame.loc[frame["value"].idxmax()]
    assert best["value"] == pytest.approx(s.best_score_)


def test_tunes_a_pipeline_on_a_slicedict(synthetic_cube):
    data = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3)
    space = {
        "rebin__factor": CategoricalDistribution([1, 4]),
        "model__max_depth": IntDistribution(2, 6),
    }
    s = search(None, make_model("tree-spectrum"), space, n_trials=3).fit(data.X, data.y)
    assert set(s.best_params_) == set(space)
    assert np.isfinite(s.predict(data.X[:3])).all()
    assert s.best_estimator_.named_steps["rebin"].factor == s.best_params_["rebin__factor"]


@pytest.mark.parametrize(
    "scoring",
    [
        "neg_mean_absolute_error",
        make_scorer(mean_absolute_error, greater_is_better=False),
        lambda est, X, y: -np.mean(np.abs(est.predict(X) - y)),
    ],
    ids=["string", "make_scorer", "plain-callable"],
)
def test_scoring_string_or_callable(scoring):
    X, y = toy()
    s = search(None, scoring=scoring, n_trials=4).fit(X, y)
    assert s.best_score_ <= 0
    trial = s.best_trial_
    folds = trial.user_attrs["split_test_scores"]
    assert len(folds) == 3
    assert s.best_score_ == pytest.approx(np.mean(folds))
    assert s.score(X, y) == pytest.approx(-mean_absolute_error(y, s.predict(X)))


class Fragile(RegressorMixin, BaseEstimator):
    """A tree that raises for odd depths (a stand-in for a configuration that crashes)."""

    def __init__(self, depth=1):
        self.depth = depth

    def fit(self, X, y):
        if self.depth % 2:
            raise RuntimeError(f"odd depth {self.depth}")
        self.tree_ = DecisionTreeRegressor(max_depth=self.depth).fit(X, y)
        return self

    def predict(self, X):
        return self.tree_.predict(X)


def test_failing_trials_are_recorded_and_the_study_goes_on():
    X, y = toy()
    s = search(None, Fragile(), {"depth": IntDistribution(1, 8)}, n_trials=10).fit(X, y)
    states = [t.state for t in s.study_.trials]
    assert len(states) == 10
    assert TrialState.FAIL in states and TrialState.COMPLETE in states
    for t in s.study_.trials:
        if t.state == TrialState.FAIL:
            assert t.params["depth"] % 2 == 1
            assert t.user_attrs["error"] == f"RuntimeError: odd depth {t.params['depth']}"
    assert s.best_params_["depth"] % 2 == 0


def test_all_trials_failing_is_a_clear_error():
    X, y = toy()
    s = search(None, Fragile(), {"depth": CategoricalDistribution([1, 3])}, n_trials=3)
    with pytest.raises(RuntimeError, match="no trial .* completed.*RuntimeError: odd depth"):
        s.fit(X, y)


def test_same_study_name_continues_and_new_draws_differ(db):
    X, y = toy()
    first = search(db, study_name="go-on", n_trials=6).fit(X, y)
    first_trials = {t.number: t.params for t in first.study_.trials}
    second = search(db, study_name="go-on", n_trials=4).fit(X, y)
    trials = second.study_.trials
    assert len(trials) == 10 and second.n_trials_ == 4
    assert sorted(t.number for t in trials) == list(range(10))
    assert {t.number: t.params for t in trials[:6]} == first_trials
    assert second.best_score_ >= first.best_score_
    # A continued study does not replay the seeded start-up draws of the first run.
    seeded = [t.params["max_depth"] for t in trials[:4]]
    assert [t.params["max_depth"] for t in trials[6:]] != seeded


def test_load_if_exists_false_refuses_an_existing_study(db):
    X, y = toy()
    search(db, study_name="taken", n_trials=1).fit(X, y)
    with pytest.raises(ValueError, match="already has a study 'taken'.*load_if_exists"):
        search(db, study_name="taken", n_trials=1, load_if_exists=False).fit(X, y)


def test_default_storage_is_in_memory_and_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = toy(60)
    s = OptunaSearchCV(
        DecisionTreeRegressor(random_state=0),
        {"max_depth": IntDistribution(1, 3)},
        cv=2,
        n_trials=2,
        study_name="d",
    )
    assert s.storage is None
    s.fit(X, y)
    assert len(s.study_.trials) == 2 and s.study_.study_name == "d"
    assert isinstance(s.study_._storage, optuna.storages.InMemoryStorage)
    # A second fit starts afresh: nothing was kept, neither in memory nor on disk.
    s.fit(X, y)
    assert len(s.study_.trials) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["path", "url"])
def test_a_given_storage_persists_and_the_same_study_name_continues(tmp_path, monkeypatch, form):
    monkeypatch.chdir(tmp_path)
    storage = "studies.db" if form == "path" else f"sqlite:///{tmp_path / 'studies.db'}"
    X, y = toy(60)
    space = {"max_depth": IntDistribution(1, 6)}
    first = OptunaSearchCV(
        DecisionTreeRegressor(random_state=0),
        space,
        cv=2,
        n_trials=3,
        storage=storage,
        study_name="kept",
        random_state=0,
    ).fit(X, y)
    assert [p.name for p in tmp_path.iterdir()] == ["studies.db"]
    # A new search object (as in a new session) with the same storage and study name.
    second = clone(first).set_params(n_trials=2).fit(X, y)
    assert second.study_.study_name == "kept" and second.n_trials_ == 2
    assert [t.number for t in second.study_.trials] == [0, 1, 2, 3, 4]
    assert second.best_score_ >= first.best_score_
    assert optuna.get_all_study_names(storage_url(tmp_path / "studies.db")) == ["kept"]


class _Race(Exception):
    """Stands for the error a worker losing the race to create tables or a study gets."""


def _create_study_failing(times):
    """optuna.create_study that loses ``times`` races first; it records its calls."""
    real = optuna.create_study

    def create(**kwargs):
        create.calls += 1
        if create.calls <= times:
            raise _Race("duplicate key value violates unique constraint")
        return real(**kwargs)

    create.calls = 0
    return create


@pytest.mark.parametrize("lost", [2, 3])
def test_study_creation_retries_a_lost_race(monkeypatch, lost):
    from sklearn_sfr.model_selection import _search

    create, sleeps = _create_study_failing(lost), []
    monkeypatch.setattr(optuna, "create_study", create)
    monkeypatch.setattr(_search.time, "sleep", sleeps.append)
    if lost < 3:  # the third try wins
        study, shown = _search.open_study(None, "raced")
        assert study.study_name == "raced" and shown == "memory"
    else:  # three lost races in a row: a clear error
        with pytest.raises(ValueError, match="cannot open the Optuna storage memory: dup"):
            _search.open_study(None, "raced")
    assert create.calls == 3 and sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("storage", "error"),
    [
        (None, ImportError("No module named 'psycopg'")),  # a missing database driver
        ("nosuchdriver://u@h/db", None),  # an unknown dialect: SQLAlchemy's ArgumentError
    ],
)
def test_study_creation_does_not_retry_what_cannot_heal(monkeypatch, storage, error):
    from sklearn_sfr.model_selection import _search

    calls, sleeps = [], []
    real = optuna.create_study

    def create(**kwargs):
        calls.append(kwargs)
        if error is not None:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(optuna, "create_study", create)
    monkeypatch.setattr(_search.time, "sleep", sleeps.append)
    with pytest.raises(ValueError, match="cannot open the Optuna storage"):
        _search.open_study(storage, "s")
    assert sleeps == [] and len(calls) <= 1


def test_storage_forms(tmp_path, monkeypatch):
    assert storage_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert storage_url("mysql://u:p@h/db") == "mysql://u:p@h/db"
    monkeypatch.chdir(tmp_path)
    # storage_url's None (not OptunaSearchCV's default, which is in memory).
    assert storage_url(None) == f"sqlite:///{tmp_path / 'optuna.db'}"
    X, y = toy(60)
    # A URL string and a storage object work too.
    url = f"sqlite:///{tmp_path / 'u.db'}"
    search(storage=url, study_name="u", n_trials=1, cv=2).fit(X, y)
    memory = optuna.storages.InMemoryStorage()
    s = search(storage=memory, study_name="m", n_trials=2, cv=2).fit(X, y)
    assert len(memory.get_all_studies()) == 1 and len(s.study_.trials) == 2


def test_bad_storage_and_parameters_are_clear_errors(db, tmp_path):
    X, y = toy(60)
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        search(storage=tmp_path / "no-such-folder" / "s.db", n_trials=1).fit(X, y)
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database\n" * 100)
    with pytest.raises(ValueError, match="cannot open the Optuna storage.*notes.txt"):
        search(storage=not_db, n_trials=1).fit(X, y)
    assert not_db.read_text() == "not a database\n" * 100  # untouched
    with pytest.raises(ValueError, match="does not have"):
        search(db, space={"depth": IntDistribution(1, 3)}, n_trials=1).fit(X, y)
    with pytest.raises(TypeError, match=r"param_distributions\['max_depth'\]"):
        search(db, space={"max_depth": [1, 2, 3]}, n_trials=1).fit(X, y)
    with pytest.raises(ValueError, match="never end"):
        search(db, n_trials=None).fit(X, y)
    with pytest.raises(TypeError, match="storage must be"):
        search(storage=3, n_trials=1).fit(X, y)


def test_password_is_not_shown():
    X, y = toy(60)
    with pytest.raises(ValueError) as info:
        search(storage="nosuchdriver://user:secret@host/db", n_trials=1).fit(X, y)
    assert "secret" not in str(info.value) and "nosuchdriver" in str(info.value)


def test_neural_trials_report_to_the_pruner(synthetic_cube):
    """Neural steps get the pruning callback: the first fold reports every epoch."""
    data = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, modalities=("spectrum",))
    model = make_model("spectrum", max_epochs=3, width=4, embed_dim=8, batch_size=32, device="cpu")
    s = search(
        None,
        model,
        {"model__lr": FloatDistribution(1e-4, 1e-2, log=True)},
        n_trials=2,
        cv=2,
        pruner=optuna.pruners.NopPruner(),
    ).fit(data.X, data.y)
    for t in s.study_.trials:
        assert t.state == TrialState.COMPLETE
        # One series per trial (the first fold), an entry per epoch (early stopping may
        # stop sooner), negated losses.
        assert 1 <= len(t.intermediate_values) <= 3
        assert all(v < 0 for v in t.intermediate_values.values())
    # The refitted model carries no pruning callback (it outlives the trials).
    assert not (s.best_estimator_.named_steps["model"].net_kwargs or {}).get("callbacks")


def test_search_follows_estimator_conventions():
    # With a storage instance (tests/test_common.py checks the default, storage=None: a fresh
    # in-memory study per fit, which writes no file). In memory: the checks fit a few hundred
    # trials, which need no persistence.
    est = search(optuna.storages.InMemoryStorage(), n_trials=2, cv=2)
    check_estimator(
        est,
        expected_failed_checks={
            "check_estimators_overwrite_params": "the storage records the trials: by design",
        },
    )
    assert clone(est).storage is est.storage  # shared, not copied


_RESUME_SCRIPT = """
import sys, time
from sklearn.tree import DecisionTreeRegressor
from tests.model_selection.test_search import resume_search, toy


class Slow(DecisionTreeRegressor):
    def fit(self, X, y, sample_weight=None, check_input=True):
        time.sleep(0.8)  # trials (2 folds) long enough to be killed after a heartbeat
        return super().fit(X, y)


resume_search(sys.argv[1], Slow(random_state=0), n_trials=1000).fit(*toy(120))
"""


def resume_search(db, estimator, n_trials):
    """The tuning that the resume test kills and restarts (1-s heartbeats)."""
    space = {"max_depth": IntDistribution(1, 12)}
    return search(
        storage_url(db),
        estimator,
        space,
        cv=2,
        n_trials=n_trials,
        study_name="resume",
        heartbeat_interval=1,
    )


def _trials(db):
    study = optuna.load_study(study_name="resume", storage=storage_url(db))
    return study.get_trials(deepcopy=False)


def test_resume_after_sigkill_loses_no_trial(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(textwrap.dedent(_RESUME_SCRIPT))
    db = tmp_path / "resume.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(db)], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and not ready:
            time.sleep(0.05)
            assert proc.poll() is None, "the tuning process ended before it was killed"
            try:  # poll the storage, as a user watching the study would
                trials = _trials(db)
            except Exception:  # the file or the study is not created yet
                continue
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            # Kill in the middle of a trial, more than one heartbeat interval (1 s) after its
            # start, so that a heartbeat is recorded even on a loaded machine (a trial killed
            # before its first heartbeat has none, and Optuna cannot tell it from a live one:
            # it would stay RUNNING).
            now = datetime.datetime.now()
            ready = len(complete) >= 3 and any(
                t.state == TrialState.RUNNING and (now - t.datetime_start).total_seconds() > 1.1
                for t in trials
            )
        assert ready, "no trials completed in time"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    before = _trials(db)
    done_before = {t.number: t.params for t in before if t.state == TrialState.COMPLETE}
    running = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(done_before) >= 3 and len(running) == 1
    # Past the grace period of two 1-s heartbeats, plus a second: SQLite's CURRENT_TIMESTAMP,
    # which Optuna's staleness check compares, has a resolution of one second, so 2.5 s after
    # the last beat can still read as only 2 s (not yet stale).
    time.sleep(3.5)

    # The restart: the same study name and storage, 3 more trials.
    resume_search(db, DecisionTreeRegressor(random_state=0), n_trials=3).fit(*toy(120))
    after = _trials(db)
    numbers = [t.number for t in after]
    assert numbers == list(range(len(after)))  # unique, no gaps, no duplicates
    assert len(after) == len(before) + 3
    # Every trial that had completed is still there, unchanged.
    assert {n: after[n].params for n in done_before} == done_before
    assert all(after[n].state == TrialState.COMPLETE for n in done_before)
    assert not [t for t in after if t.state == TrialState.RUNNING]
    new = after[len(before) :]
    assert all(t.state == TrialState.COMPLETE for t in new)
    # The killed trial was marked FAIL and its parameters were run again.
    (killed,) = running
    assert after[killed].state == TrialState.FAIL
    retried = [t for t in new if t.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].params == after[killed].params


def test_workers_sharing_a_study_with_one_seed_draw_different_trials():
    # Two processes' samplers on one storage: each asks for a trial before either finishes,
    # as simultaneous workers do. The same seed must not mean the same draws.
    import optuna

    from sklearn_sfr.model_selection._sampler import TrialSeededTPESampler

    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="shared")
    workers = [
        optuna.load_study(study_name="shared", storage=storage, sampler=TrialSeededTPESampler(7))
        for _ in range(2)
    ]
    first, second = (w.ask() for w in workers)
    assert (first.number, second.number) == (0, 1)
    assert first.suggest_float("x", 0, 1) != second.suggest_float("x", 0, 1)
    # Rerun alone with the seed: trial 0 draws what it drew before.
    again = optuna.create_study(sampler=TrialSeededTPESampler(7)).ask()
    assert again.suggest_float("x", 0, 1) == first.params["x"]


def test_a_storage_is_never_someone_elses_sqlite_database(tmp_path):
    import sqlite3

    from sklearn_sfr.model_selection._search import check_sqlite_storage, storage_url

    own = tmp_path / "lab.db"
    with sqlite3.connect(own) as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    db.close()
    data = own.read_bytes()
    with pytest.raises(ValueError, match="Optuna did not write"):
        OptunaSearchCV(DecisionTreeRegressor(), {}, n_trials=1, storage=str(own)).fit(
            np.zeros((10, 2)), np.arange(10.0)
        )
    assert own.read_bytes() == data
    text = tmp_path / "notes.txt"
    text.write_text("not a database, and long enough to have a header" * 4)
    with pytest.raises(ValueError, match="not a SQLite database"):
        check_sqlite_storage(storage_url(text))
    assert text.read_text().startswith("not a database")
    # New, empty and Optuna's own files are storages.
    check_sqlite_storage(storage_url(tmp_path / "new.db"))
    (tmp_path / "empty.db").touch()
    check_sqlite_storage(storage_url(tmp_path / "empty.db"))
    optuna_db = tmp_path / "optuna.db"
    OptunaSearchCV(DecisionTreeRegressor(), {}, n_trials=1, storage=str(optuna_db)).fit(
        np.zeros((10, 2)), np.arange(10.0)
    )
    check_sqlite_storage(storage_url(optuna_db))


def test_a_storage_locked_throughout_the_wait_is_refused(tmp_path, monkeypatch):
    import sqlite3

    from sklearn_sfr.model_selection import _search

    monkeypatch.setattr(_search, "_LOCK_WAIT", 0.2)
    own = tmp_path / "busy.db"
    writer = sqlite3.connect(own, isolation_level=None)
    writer.execute("CREATE TABLE mine (a)")
    writer.execute("BEGIN EXCLUSIVE")  # another program is writing to it
    try:
        with pytest.raises(ValueError, match="stayed locked by another program"):
            _search.check_sqlite_storage(_search.storage_url(own))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
