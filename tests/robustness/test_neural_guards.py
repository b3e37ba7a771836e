"""Attack catalogue, neural estimators: inputs the network's float32 cannot hold, diverging
fits, saving and loading, use before fit and nonsensical ``net_kwargs``.

A neural estimator never returns a non-finite prediction silently: a target or weight that
float32 cannot represent, or a training loss that becomes non-finite, stops ``fit`` with an
error naming the input (or the epoch); a prediction that would be non-finite raises, naming
the model. Every fitted estimator saves and loads with pickle and skops, trusting as few types
as possible, and predicts the same after loading.
"""

import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.helper import SliceDict

from sklearn_sfr.neural import (
    ContrastiveRegressor,
    FusionClassifier,
    FusionRegressor,
    ImageRegressor,
    SpectrumRegressor,
)

N = 12
TINY = dict(
    width=4, depth=1, embed_dim=8, max_epochs=2, batch_size=8, validation_fraction=0,
    device="cpu", random_state=0,
)  # fmt: skip
NEURAL = {
    "ImageRegressor": ImageRegressor(**TINY),
    "SpectrumRegressor": SpectrumRegressor(**TINY),
    "FusionRegressor": FusionRegressor(**TINY),
    "ContrastiveRegressor": ContrastiveRegressor(projection_dim=4, pretrain_epochs=1, **TINY),
    "FusionClassifier": FusionClassifier(**TINY),
}
REGRESSORS = [name for name in NEURAL if name != "FusionClassifier"]


def make_X(n=N, seed=0, redshift=True):
    rng = np.random.default_rng(seed)
    X = dict(
        image=rng.normal(1.0, 0.3, size=(n, 5, 8, 8)).astype(np.float32),
        spectrum=rng.normal(1.0, 0.1, size=(n, 64)).astype(np.float32),
    )
    if redshift:
        X["redshift"] = rng.uniform(0.02, 0.2, n)
    return SliceDict(**X)


def target(name, n=N):
    if name == "FusionClassifier":
        return (np.arange(n) % 2).astype(int)
    return np.random.default_rng(1).normal(size=n)


def fitted(name, **params):
    return clone(NEURAL[name]).set_params(**params).fit(make_X(), target(name))


# -- 1. what float32 cannot hold ------------------------------------------------------------
@pytest.mark.parametrize("factor", [1e200, 1e39])
@pytest.mark.parametrize("name", REGRESSORS)
def test_target_beyond_float32_is_refused(name, factor):
    y = target(name)
    y[3] *= factor
    with pytest.raises(ValueError, match=r"^y .*float32"):
        clone(NEURAL[name]).fit(make_X(), y)


@pytest.mark.parametrize("value", [1e39, 1e308, np.inf, np.nan])
@pytest.mark.parametrize("name", NEURAL)
def test_sample_weight_beyond_float32_is_refused(name, value):
    w = np.ones(N)
    w[2] = value
    with pytest.raises(ValueError, match=r"^sample_weight"):
        clone(NEURAL[name]).fit(make_X(), target(name), sample_weight=w)


@pytest.mark.parametrize("name", NEURAL)
def test_sample_weight_with_zero_sum_is_refused(name):
    with pytest.raises(ValueError, match=r"^sample_weight .*positive sum"):
        clone(NEURAL[name]).fit(make_X(), target(name), sample_weight=np.zeros(N))


@pytest.mark.parametrize("scale", [1e38, 1e-50])
@pytest.mark.parametrize("name", NEURAL)
def test_extreme_but_representable_weights_fit_as_their_ratios(name, scale):
    # Only the ratios of the weights matter: huge (float32 sums overflow) or tiny (float32
    # rounds them to zero) uniform weights train like any other uniform weights.
    X, y = make_X(), target(name)
    reference = clone(NEURAL[name]).fit(X, y, sample_weight=np.full(N, 1.0))
    model = clone(NEURAL[name]).fit(X, y, sample_weight=np.full(N, scale))
    method = "predict_proba" if name == "FusionClassifier" else "predict"
    out = getattr(model, method)(X)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, getattr(reference, method)(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NEURAL)
def test_batches_of_zero_weight_do_not_poison_the_fit(name):
    # One weighted object among twelve, batches of four: two batches weigh nothing at all.
    w = np.zeros(N)
    w[0] = 1.0
    X = make_X()
    model = clone(NEURAL[name]).set_params(batch_size=4).fit(X, target(name), sample_weight=w)
    out = model.predict_proba(X) if name == "FusionClassifier" else model.predict(X)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", NEURAL)
def test_diverging_fit_stops_with_the_epoch(name):
    est = clone(NEURAL[name]).fit(make_X(), target(name))  # a good fit first
    with pytest.raises(ValueError, match=r"loss became non-finite .*at epoch \d+.*lower lr"):
        est.set_params(lr=1e30).fit(make_X(), target(name))
    # A failed refit leaves no half-trained network (nor the previous fit's) behind.
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    with pytest.raises(NotFittedError):
        est.predict(make_X())


@pytest.mark.parametrize("name", NEURAL)
def test_a_broken_network_never_predicts_non_finite_values_silently(name):
    model = fitted(name)
    with torch.no_grad():
        for p in model.net_.module_.parameters():
            p.fill_(np.nan)
    methods = ["predict", "score"]
    methods += ["predict_proba"] if name == "FusionClassifier" else []
    methods += ["transform", "embed"] if name == "ContrastiveRegressor" else []
    for method in methods:
        args = (make_X(), target(name)) if method == "score" else (make_X(),)
        with pytest.raises(ValueError, match=f"^{name} .*non-finite"):
            getattr(model, method)(*args)


@pytest.mark.parametrize("value", [np.inf, 1e300])
@pytest.mark.parametrize("name", NEURAL)
def test_infinite_per_object_scalars_are_refused(name, value):
    X = make_X()
    X["redshift"][4] = value
    with pytest.raises(ValueError, match=r"X\['redshift'\] .*infinit"):
        clone(NEURAL[name]).fit(X, target(name))
    model = fitted(name)
    with pytest.raises(ValueError, match=r"X\['redshift'\] .*infinit"):
        model.predict(X)


# -- 2. saving and loading ------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [{}, {"validation_fraction": 0.25}, {"validation_fraction": 0.25, "verbose": 1}],
    ids=["plain", "early-stopping", "verbose"],
)
@pytest.mark.parametrize("name", NEURAL)
def test_pickle_and_skops_round_trip_with_few_trusted_types(name, params, capsys):
    sio = pytest.importorskip("skops.io")
    X = make_X()
    model = fitted(name, **params)
    capsys.readouterr()  # the verbose epoch table
    methods = ["predict"] + (["predict_proba"] if name == "FusionClassifier" else [])
    methods += ["transform"] if name == "ContrastiveRegressor" else []
    expected = {m: getattr(model, m)(X) for m in methods}
    blob = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=blob)
    # Nothing from builtins (skorch's callbacks print through builtins.print by default).
    assert "builtins.print" not in untrusted
    assert {u.split(".")[0] for u in untrusted} <= {"sklearn_sfr", "skorch", "torch", "functools"}
    assert f"sklearn_sfr.neural.{type(model).__name__}" in {
        re.sub(r"\._\w+\.", ".", u) for u in untrusted
    }
    for restored in (sio.loads(blob, trusted=untrusted), pickle.loads(pickle.dumps(model))):
        for m in methods:
            np.testing.assert_array_equal(getattr(restored, m)(X), expected[m])


# -- 3. use before fit ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NEURAL)
def test_use_before_fit_raises_not_fitted(name):
    est = clone(NEURAL[name])
    X, y = make_X(), target(name)
    calls = {
        "predict": (X,),
        "predict_proba": (X,),
        "score": (X, y),
        "transform": (X,),
        "embed": (X,),
        "get_feature_names_out": (),
    }
    for method, args in calls.items():
        if hasattr(est, method):
            with pytest.raises(NotFittedError):
                getattr(est, method)(*args)
    with pytest.raises(NotFittedError):
        est.predict(X["image"] if name == "ImageRegressor" else X)


# -- 4. nonsensical net_kwargs --------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_epochs", -3),
        ("max_epochs", 0),
        ("max_epochs", 2.5),
        ("batch_size", 0),
        ("batch_size", -5),
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", np.nan),
        ("optimizer__lr", -1.0),
        ("optimizer__weight_decay", -0.1),
        ("iterator_train__batch_size", 0),
        ("iterator_valid__batch_size", -2),
    ],
)
@pytest.mark.parametrize("name", ["FusionRegressor", "ContrastiveRegressor", "FusionClassifier"])
def test_nonsensical_net_kwargs_are_refused(name, key, value):
    est = clone(NEURAL[name]).set_params(net_kwargs={key: value})
    with pytest.raises(ValueError, match=re.escape(f"net_kwargs[{key!r}]")):
        est.fit(make_X(), target(name))


def test_whole_dataset_batches_stay_allowed():
    # skorch's batch_size=-1 (one batch of all the data) is meaningful, not nonsensical.
    model = clone(NEURAL["SpectrumRegressor"]).set_params(net_kwargs={"batch_size": -1})
    assert np.isfinite(model.fit(make_X(), target("SpectrumRegressor")).predict(make_X())).all()
