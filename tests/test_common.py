"""One contract for every public estimator, found from the subpackages' ``__all__``.

Nothing here lists estimators: a class exported by a subpackage that derives from
:class:`sklearn.base.BaseEstimator` is found by :func:`all_estimators` and gets

1. scikit-learn's common checks (``parametrize_with_checks``). They feed 2-D tables, so they
   run on the estimators whose tags declare ``two_d_array`` (scikit-learn would skip the
   others); the others get the checks that need no data (:data:`DATA_FREE_CHECKS`);
2. the multi-modal contract (:func:`check_contract`): parameters, fit returns self, the same
   ``random_state`` gives the same output, predicting leaves the estimator unchanged, pickle
   and skops round trips, a Pipeline in ``cross_validate`` and ``GridSearchCV``, and
   ``set_output(transform="pandas")`` on tabular output, on the input the estimator's tags
   declare (a SliceDict of images, spectra and metadata, else a 2-D table);
3. numpydoc validation of its docstring and of its public methods, as every public class and
   function of every subpackage gets (with an Examples section, run by the doctests).

Tests of what one estimator does (a crop keeps the centre, a fusion learns) stay next to it;
they can reuse :func:`check_contract` for a variant of an estimator (a fusion strategy).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import pickle
from numbers import Integral

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import get_tags
from sklearn.utils._param_validation import Hidden, StrOptions
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)
from skorch.helper import SliceDict

import sklearn_sfr

SUBPACKAGES = [name for name in sklearn_sfr.__all__ if name in sklearn_sfr._SUBMODULES]


# -- discovery ------------------------------------------------------------------------------
def _public_objects():
    """``(dotted name, object)`` of every public class and function of every subpackage.

    Constants (tuples, dicts, strings) are documented by their ``#:`` comments instead, and
    names re-exported from other libraries (``r2_score``) are theirs.
    """
    for subpackage in SUBPACKAGES:
        module = importlib.import_module(f"sklearn_sfr.{subpackage}")
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # a constant
            if not getattr(obj, "__module__", "").startswith("sklearn_sfr"):
                continue  # re-exported from another library
            yield f"sklearn_sfr.{subpackage}.{name}", obj


def all_estimators():
    """``(name, class)`` of every public estimator, sorted by name."""
    found = {
        obj.__name__: obj
        for _, obj in _public_objects()
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator)
    }
    return sorted(found.items())


def _required_values():
    """Values for the parameters an estimator cannot do without, by parameter name.

    Only meta-estimators have such parameters (scikit-learn's convention exempts them from
    defaults): OptunaSearchCV tunes a small tree. A new estimator with another required
    parameter fails in :func:`make_instance` until it gets a default.
    """
    from optuna.distributions import IntDistribution

    return {
        "estimator": DecisionTreeRegressor(random_state=0),
        "param_distributions": {"max_depth": IntDistribution(1, 12)},
    }


#: Small settings, by parameter name, that keep every fit of the tests short: one-epoch
#: networks a few channels wide, on the CPU; a two-trial search. Other parameters keep their
#: defaults (a validation split with early stopping, for instance).
FAST = {
    "max_epochs": 1,
    "pretrain_epochs": 1,
    "width": 4,
    "depth": 1,
    "embed_dim": 8,
    "projection_dim": 4,
    "batch_size": 16,
    "device": "cpu",
    "n_trials": 2,
    "cv": 2,
    "random_state": 0,
}


def make_instance(cls):
    """An instance of ``cls`` with its defaults, made fast by :data:`FAST`."""
    signature = inspect.signature(cls.__init__)
    required = [
        name
        for name, p in signature.parameters.items()
        if name != "self"
        and p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    known = _required_values()
    unknown = [name for name in required if name not in known]
    assert not unknown, (
        f"{cls.__name__} cannot be built without {unknown}: give every parameter a default "
        "(scikit-learn's convention), or, for a meta-estimator, a value in _required_values"
    )
    estimator = cls(**{name: known[name] for name in required})
    params = estimator.get_params(deep=False)
    return estimator.set_params(**{k: v for k, v in FAST.items() if k in params})


ESTIMATORS = [make_instance(cls) for _, cls in all_estimators()]
ESTIMATOR_IDS = [type(est).__name__ for est in ESTIMATORS]


def _two_d(estimator):
    return get_tags(estimator).input_tags.two_d_array


def _variants(estimator):
    """The estimator, and one copy per other choice of each of its string options.

    A choice can change which code runs (``SpectrumNormalizer(method="continuum")``), so each
    gets scikit-learn's checks. Meta-estimators are left out (their ``scoring`` options are
    every scorer name).
    """
    yield estimator
    if isinstance(estimator, MetaEstimatorMixin):
        return
    params = estimator.get_params(deep=False)
    for name, constraints in getattr(estimator, "_parameter_constraints", {}).items():
        if not isinstance(constraints, list):
            continue  # "no_validation"
        for constraint in constraints:
            if isinstance(constraint, StrOptions) and not isinstance(constraint, Hidden):
                for option in sorted(constraint.options - {params[name]}):
                    yield clone(estimator).set_params(**{name: option})


def test_discovery_finds_the_estimators_of_every_kind():
    names = {name for name, _ in all_estimators()}
    # One of each family, so that a broken walk cannot pass by finding nothing.
    assert {"CentralCrop", "SpectralLineFeatures", "FusionRegressor", "OptunaSearchCV"} <= names
    assert all(isinstance(est, BaseEstimator) for est in ESTIMATORS)


def test_every_estimator_declares_its_input():
    # scikit-learn's checks feed 2-D tables; an estimator that cannot take one must say that
    # it takes a SliceDict, so that the checks skip it knowingly (DESIGN.md).
    undeclared = [
        type(est).__name__
        for est in ESTIMATORS
        if not (get_tags(est).input_tags.two_d_array or get_tags(est).input_tags.dict)
    ]
    assert not undeclared


# -- 1. scikit-learn's common checks --------------------------------------------------------
#: Checks that cannot apply to an estimator, with the reason, by estimator class name. An
#: estimator that takes no 2-D table (images, SliceDicts) is not given to
#: parametrize_with_checks at all, so only estimators that take both would need an entry.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [variant for est in ESTIMATORS if _two_d(est) for variant in _variants(est)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check, tmp_path, monkeypatch):
    # No estimator writes into the working directory (OptunaSearchCV's default storage is in
    # memory, skorch writes no checkpoint unless asked).
    monkeypatch.chdir(tmp_path)
    check(estimator)
    assert list(tmp_path.iterdir()) == []


#: scikit-learn's checks of the estimator API that fit nothing, run on the estimators whose
#: other checks scikit-learn skips (the others get them from parametrize_with_checks).
DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_get_params_invariance,
    check_set_params,
    check_do_not_raise_errors_in_init_or_set_params,
    check_mixin_order,
    check_valid_tag_types,
    check_estimator_tags_renamed,
]


@pytest.mark.parametrize(
    ("estimator", "check"),
    [(est, check) for est in ESTIMATORS if not _two_d(est) for check in DATA_FREE_CHECKS],
    ids=lambda x: type(x).__name__ if isinstance(x, BaseEstimator) else x.__name__,
)
def test_data_free_sklearn_checks(estimator, check):
    check(type(estimator).__name__, clone(estimator))


# -- 2. the multi-modal contract ------------------------------------------------------------
def make_data(estimator, n=40, seed=0):
    """``(X, y)`` of the kind ``estimator`` takes (its tags): a SliceDict of 16-pixel ugriz
    images, 577-pixel spectra and the ``flag`` and ``redshift`` metadata, or a 2-D table (the
    spectra); with masked (NaN) pixels where the tags allow them, and class labels for a
    classifier."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 5, 16, 16)).astype(np.float32)
    spectra = rng.normal(1.0, 0.1, size=(n, 577)).astype(np.float32)
    y = images[:, 2, 8, 8] + spectra[:, 100]
    tags = get_tags(estimator).input_tags
    if tags.allow_nan:
        spectra[:, 10:20] = np.nan  # a masked stretch, as real spectra have
        images[::7, :, 0, :3] = np.nan  # a few missing pixels at the edge
    if is_classifier(estimator):
        y = np.where(y > np.median(y), "high", "low")
    if not tags.dict:
        return spectra, y
    flag = np.where(np.arange(n) % 4 == 3, 2.0, 0.0)  # a FlagFilter has rows to drop
    redshift = rng.uniform(0.02, 0.2, n)
    return SliceDict(image=images, spectrum=spectra, flag=flag, redshift=redshift), y


#: The methods whose output the contract compares.
OUTPUT_METHODS = ("predict", "predict_proba", "transform")


def _outputs(estimator, X, y):
    """What a fitted estimator gives for X, by method (a sampler resamples X and y)."""
    if hasattr(estimator, "fit_resample"):
        return {"fit_resample": estimator.fit_resample(X, y)}
    return {m: getattr(estimator, m)(X) for m in OUTPUT_METHODS if hasattr(estimator, m)}


def _assert_same(a, b, what):
    if isinstance(a, dict):
        assert set(a) == set(b), what
        for key in a:
            _assert_same(a[key], b[key], f"{what}[{key!r}]")
    elif isinstance(a, tuple):
        assert len(a) == len(b), what
        for i, (x, z) in enumerate(zip(a, b)):
            _assert_same(x, z, f"{what}[{i}]")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def _same_params(a, b):
    """Parameters equal, estimators among them compared by their own parameters."""
    if set(a) != set(b):
        return False
    for key in a:
        x, z = a[key], b[key]
        if isinstance(x, BaseEstimator):
            if type(x) is not type(z) or not _same_params(
                x.get_params(deep=False), z.get_params(deep=False)
            ):
                return False
        elif x is not z and not np.array_equal(np.asarray(x, dtype=object), z):
            return False
    return True


def _plain_state(estimator):
    """The fitted estimator's attributes that can be compared by value."""
    out = {}
    for key, value in vars(estimator).items():
        if isinstance(value, (np.ndarray, Integral, float, str, tuple, type(None))):
            out[key] = copy.deepcopy(value)
    return out


def _table(X):
    """Every array of X (a SliceDict, images, a table) flattened into one table for a tree."""
    arrays = [X[key] for key in sorted(X)] if isinstance(X, dict) else [X]
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    return np.hstack([a.reshape(len(a), -1) for a in arrays])


def _is_table(out):
    return isinstance(out, np.ndarray) and out.ndim == 2


def make_model(estimator, X, y):
    """A Pipeline around ``estimator`` whose last step predicts: a transformer is followed by
    a tree (after :func:`_table` unless its output is a table already), a sampler by both in
    imbalanced-learn's Pipeline (which resamples in fit only)."""
    tree = DecisionTreeRegressor(max_depth=3, random_state=0)
    if hasattr(estimator, "fit_resample"):
        from imblearn.pipeline import make_pipeline as make_sampler_pipeline

        return make_sampler_pipeline(estimator, FunctionTransformer(_table), tree)
    if hasattr(estimator, "predict"):
        return Pipeline([(type(estimator).__name__.lower(), estimator)])
    out = clone(estimator).fit(X, y).transform(X)
    return make_pipeline(estimator, *([] if _is_table(out) else [FunctionTransformer(_table)]),
                         tree)  # fmt: skip


def check_contract(estimator, X=None, y=None):
    """The contract every estimator keeps, on the input its tags declare (or ``X, y``)."""
    if X is None:
        X, y = make_data(estimator)
    name = type(estimator).__name__

    # Parameters: cloned equal (estimators among them by their own parameters), settable back.
    params = estimator.get_params()
    twin = clone(estimator)
    assert twin is not estimator and _same_params(twin.get_params(deep=False),
                                                  estimator.get_params(deep=False))  # fmt: skip
    twin.set_params(**params)

    # fit returns the estimator; the same random_state gives the same output.
    fitted = clone(estimator)
    assert fitted.fit(X, y) is fitted
    expected = _outputs(fitted, X, y)
    for method, out in expected.items():
        if method in ("predict", "predict_proba"):
            assert len(out) == len(y), f"{name}.{method}"
            if method == "predict_proba" or not is_classifier(fitted):
                assert np.isfinite(out).all(), f"{name}.{method} is not finite"
    _assert_same(_outputs(clone(estimator).fit(X, y), X, y), expected, f"{name} refitted")
    if hasattr(fitted, "net_"):  # skorch keeps a history of the training
        assert len(fitted.net_.history) >= 1

    # Predicting and transforming change nothing in the estimator (check_dict_unchanged).
    if not hasattr(fitted, "fit_resample"):  # resampling is fitting
        state = _plain_state(fitted)
        _outputs(fitted, X, y)
        np.testing.assert_equal(_plain_state(fitted), state)

    # Saved and loaded, by pickle and by skops (trusting the types listed as untrusted).
    restored = pickle.loads(pickle.dumps(fitted))
    _assert_same(_outputs(restored, X, y), expected, f"{name} after pickle")
    sio = pytest.importorskip("skops.io")
    blob = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=blob)
    assert f"{type(fitted).__module__}.{type(fitted).__qualname__}" in untrusted
    _assert_same(_outputs(sio.loads(blob, trusted=untrusted), X, y), expected,
                 f"{name} after skops")  # fmt: skip

    # Tabular output: set_output("pandas") names the columns, also for the next step.
    if "transform" in expected and _is_table(expected["transform"]):
        frame = clone(estimator).set_output(transform="pandas").fit(X, y).transform(X)
        names = list(fitted.get_feature_names_out())
        assert isinstance(frame, pd.DataFrame) and list(frame.columns) == names
        if not hasattr(estimator, "predict"):
            # (A scaler, not a tree: scikit-learn 1.9's trees refuse the read-only float32
            # arrays pandas hands out when they hold NaN, "buffer source array is read-only".)
            model = make_pipeline(clone(estimator), StandardScaler())
            model.set_output(transform="pandas").fit(X, y)
            assert list(model[-1].feature_names_in_) == names

    # In a Pipeline: cross-validated, and grid-searched over one of its own parameters.
    model = make_model(clone(estimator), X, y)
    res = cross_validate(model, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert np.isfinite(res["test_score"]).all(), f"{name}: {res['test_score']}"
    first = model.steps[0][0]
    key, value = next(iter(estimator.get_params(deep=False).items()))
    search = GridSearchCV(model, {f"{first}__{key}": [value]}, cv=2).fit(X, y)
    assert search.best_estimator_.predict(X[:3]).shape == (3,)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_contract(estimator):
    check_contract(estimator)


def test_attack_catalogues_name_every_estimator():
    # tests/robustness attacks each estimator with malformed inputs on the keys it reads, which
    # only a hand-kept catalogue can say; this makes forgetting a new estimator there fail.
    from tests.robustness import test_arrays, test_neural_guards

    names = {name for name, _ in all_estimators()}
    neural = {name for name, cls in all_estimators() if cls.__module__.startswith(
        "sklearn_sfr.neural")}  # fmt: skip
    assert set(test_neural_guards.NEURAL) == neural
    # The selectors have their own attacks there (test_plain_dict_is_refused_by_selectors);
    # OptunaSearchCV leaves its input to the estimator it tunes.
    assert names - set(test_arrays.ALL) == {"FlagFilter", "ModalitySelector", "OptunaSearchCV"}


# -- 3. docstrings --------------------------------------------------------------------------
def _has_examples(obj):
    doc = inspect.getdoc(obj) or ""
    lines = [line.strip() for line in doc.splitlines()]
    return any(
        line == "Examples" and nxt.startswith("---") and ">>>" in doc
        for line, nxt in itertools.pairwise(lines)
    )


def test_every_public_docstring_has_examples():
    # The examples themselves run as doctests (--doctest-modules in pyproject.toml).
    missing = [name for name, obj in _public_objects() if not _has_examples(obj)]
    assert not missing, "public names without an Examples section: " + ", ".join(missing)


def test_top_level_estimators_have_examples():
    missing = [name for name in sklearn_sfr._ESTIMATORS if not _has_examples(
        getattr(sklearn_sfr, name))]  # fmt: skip
    assert not missing, "top-level estimators without Examples: " + ", ".join(missing)


def test_walk_covers_every_subpackage():
    walked = {name.split(".")[1] for name, _ in _public_objects()}
    assert walked == set(SUBPACKAGES), (
        f"no public class or function found in {set(SUBPACKAGES) - walked}"
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Summary.\n\nExamples\n--------\n>>> 1 + 1\n2\n", True),
        ("Summary.\n\nParameters\n----------\nx : int\n", False),
        ("Summary mentioning Examples but with no section.\n", False),
    ],
)
def test_examples_detection(doc, expected):
    def f():
        pass

    f.__doc__ = doc
    assert _has_examples(f) is expected


def _documented():
    """``(import path, method name or None, is a property)`` of every public class and
    function and of every public method or property defined in this library (not inherited
    from scikit-learn, skorch or torch)."""
    for _, obj in _public_objects():
        path = f"{obj.__module__}.{obj.__qualname__}"
        yield path, None, False
        if not inspect.isclass(obj):
            continue
        for name in sorted(dir(obj)):
            if name.startswith("_"):
                continue
            owner = next((c for c in obj.__mro__ if name in vars(c)), None)
            if owner is None or not owner.__module__.startswith("sklearn_sfr"):
                continue
            attr = vars(owner)[name]
            if isinstance(attr, property):
                yield f"{path}.{name}", name, True
            elif inspect.isfunction(attr) or isinstance(attr, (classmethod, staticmethod)):
                yield f"{path}.{name}", name, False


#: numpydoc codes not enforced, and why (scikit-learn's docstring test ignores the same ones
#: but SA01 and ES01, which it requires of classes).
IGNORED_CODES = {
    "GL01": "the summary may start on the line of the opening quotes",
    "GL02": "a closing blank line is allowed",
    "RT02": "a Returns entry may name the value it returns (``self : CentralCrop``)",
    "SA01": "a See Also section is welcome, not required",
    "ES01": "an extended summary is welcome, not required (short functions need none)",
}
#: Codes not enforced for methods: their examples live in the class docstring.
IGNORED_METHOD_CODES = {"EX01"}
#: Codes not enforced for properties, whose signature numpydoc cannot read.
IGNORED_PROPERTY_CODES = {"PR02", "GL08"}


def _errors(path, method, is_property):
    from numpydoc.validate import validate

    ignored = set(IGNORED_CODES)
    ignored |= IGNORED_METHOD_CODES if method is not None else set()
    ignored |= IGNORED_PROPERTY_CODES if is_property else set()
    return [f"{code}: {msg}" for code, msg in validate(path)["errors"] if code not in ignored]


@pytest.mark.parametrize(
    ("path", "method", "is_property"),
    [
        pytest.param(path, method, is_property, id=path.removeprefix("sklearn_sfr."))
        for path, method, is_property in _documented()
    ],
)
def test_numpydoc(path, method, is_property):
    pytest.importorskip("numpydoc.validate")
    errors = _errors(path, method, is_property)
    assert not errors, f"{path}:\n  " + "\n  ".join(errors)
