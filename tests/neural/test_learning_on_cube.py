"""Learning, not just running: every regressor beats the mean on a small synthetic cube."""

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_sfr import ContrastiveRegressor, FusionRegressor, ImageRegressor, SpectrumRegressor
from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube

SMALL = {"max_epochs": 40, "width": 8, "embed_dim": 16, "random_state": 0}


@pytest.fixture(scope="module")
def cube_split(tmp_path_factory):
    path = tmp_path_factory.mktemp("learn") / "cube.h5"
    make_synthetic_cube(path, n_objects=800, random_state=0)
    data = load_hisscube(path, image_zoom=3, spectrum_zoom=3)  # 8 px, 577 px, FLAG=0
    order = np.random.default_rng(0).permutation(len(data.y))
    cut = int(0.8 * len(order))
    return data, order[:cut], order[cut:]


@pytest.mark.parametrize(
    "model",
    [
        ImageRegressor(**SMALL),
        SpectrumRegressor(**SMALL),
        FusionRegressor("intermediate", **SMALL),
        ContrastiveRegressor(pretrain_epochs=20, finetune="full", **SMALL),
    ],
    ids=["image", "spectrum", "fusion", "contrastive"],
)
def test_regressor_beats_the_mean(cube_split, model):
    data, train, test = cube_split
    y = data.y
    dummy = np.sqrt(np.mean((y[test] - y[train].mean()) ** 2))
    fitted = clone(model).fit(data.X[train], y[train])
    rmse = np.sqrt(np.mean((fitted.predict(data.X[test]) - y[test]) ** 2))
    assert rmse < 0.95 * dummy, f"RMSE {rmse:.3f} vs mean-prediction {dummy:.3f}"
