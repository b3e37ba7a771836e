"""The named model registry and its default search spaces."""

import subprocess
import sys

import numpy as np
import optuna
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.experiments import (
    MODEL_NAMES,
    default_search_space,
    make_model,
    model_modalities,
)

# Tiny networks and one or two epochs: these tests check the plumbing, not the learning.
TINY = {
    "image": dict(max_epochs=2, width=4, embed_dim=8, batch_size=32, device="cpu"),
    "spectrum": dict(max_epochs=2, width=4, embed_dim=8, batch_size=32, device="cpu"),
    "fusion": dict(fusion="late", max_epochs=2, width=4, embed_dim=8, batch_size=32, device="cpu"),
    "contrastive": dict(
        max_epochs=1,
        pretrain_epochs=1,
        width=4,
        embed_dim=8,
        projection_dim=4,
        batch_size=32,
        device="cpu",
    ),
}


@pytest.fixture(scope="module")
def small_data(synthetic_cube):
    # 8x8 cutouts and 577-pixel spectra: the smallest zoom and level.
    return load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3)


def test_model_names():
    assert MODEL_NAMES == (
        "image",
        "spectrum",
        "fusion",
        "contrastive",
        "tree-spectrum",
        "tree-lines",
        "tree-photometry",
        "tree-pixels",
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_and_predicts(name, small_data):
    model = make_model(name, random_state=0, **TINY.get(name, {}))
    assert isinstance(model, Pipeline)
    assert model.steps[-1][0] == "model"
    # Only the modalities the model reads need to be there.
    X = type(small_data.X)(
        **{k: v for k, v in small_data.X.items() if k not in {"image", "spectrum"}},
        **{m: small_data.X[m] for m in model_modalities(name)},
    )
    model.fit(X, small_data.y)
    pred = model.predict(X[:5])
    assert pred.shape == (5,)
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("zooms", [(2, 1), (3, 2)])
def test_registry_works_at_other_resolutions(synthetic_cube, zooms):
    data = load_hisscube(synthetic_cube, image_zoom=zooms[0], spectrum_zoom=zooms[1])
    for name in ("tree-spectrum", "tree-photometry", "image"):
        model = make_model(name, **TINY.get(name, {})).fit(data.X, data.y)
        assert np.isfinite(model.predict(data.X[:3])).all()


def test_params_route_to_the_model_step_or_the_named_step():
    pipe = make_model("fusion", fusion="early", model__max_epochs=3, random_state=7)
    params = pipe.get_params()
    assert params["model__fusion"] == "early"
    assert params["model__max_epochs"] == 3
    assert params["model__random_state"] == 7
    pipe = make_model("tree-spectrum", rebin__factor=8, max_depth=3)
    assert pipe.get_params()["rebin__factor"] == 8
    assert pipe.get_params()["model__max_depth"] == 3


def test_make_model_returns_fresh_pipelines():
    a, b = make_model("tree-lines"), make_model("tree-lines")
    assert a is not b and a.steps[-1][1] is not b.steps[-1][1]
    clone(a)  # clonable


def test_bad_names_and_params_are_refused():
    with pytest.raises(ValueError, match="unknown model name 'forest'.*tree-spectrum"):
        make_model("forest")
    with pytest.raises(ValueError, match="unknown model name"):
        default_search_space("forest")
    with pytest.raises(ValueError, match="no parameter.*model__n_estimators"):
        make_model("tree-pixels", n_estimators=10)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_search_space_names_real_parameters(name):
    space = default_search_space(name)
    assert space
    params = make_model(name).get_params()
    for key, dist in space.items():
        assert key in params, key
        assert isinstance(dist, optuna.distributions.BaseDistribution)
        # The estimator's default value lies inside the space where it is numeric.
        default = params[key]
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            assert default in dist.choices, key
        elif default is not None:  # max_depth=None (unlimited) is outside every range
            assert dist.low <= default <= dist.high, key
    if name == "fusion":
        assert set(space["model__fusion"].choices) == {
            "early",
            "intermediate",
            "late",
            "cross_attention",
        }
    if name.startswith("tree"):
        assert {"model__max_depth", "model__min_samples_leaf"} <= set(space)
    else:
        assert space["model__lr"].log and space["model__weight_decay"].log
    # A new dict every call.
    space.clear()
    assert default_search_space(name)


def test_sampled_neural_configuration_trains(small_data):
    # The corner of the space with the deepest encoders on the smallest cutouts still builds.
    model = make_model(
        "fusion",
        fusion="cross_attention",
        depth=4,
        width=8,
        embed_dim=32,
        max_epochs=1,
        batch_size=32,
        device="cpu",
    ).fit(small_data.X, small_data.y)
    assert model.predict(small_data.X[:2]).shape == (2,)


def test_importing_the_registry_and_cli_parser_stays_light():
    code = (
        "import sys, sklearn_sfr.model_selection, sklearn_sfr.cli;"
        "sklearn_sfr.cli.build_parser();"
        "bad = [m for m in ('torch', 'skorch', 'optuna') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
