"""Per-object scalars (the redshift) read by the heads, and image augmentation by symmetry."""

import numpy as np
import pytest
import torch
from skorch.helper import SliceDict

from sklearn_sfr import ContrastiveRegressor, FusionRegressor, ImageRegressor
from sklearn_sfr.neural._modules import FusionNet, augment_images

FAST = {"max_epochs": 3, "batch_size": 32, "width": 8, "embed_dim": 16, "random_state": 0}


def _data(n=128, seed=0):
    """Images carry a, the redshift carries z; y needs both (as a luminosity needs a distance)."""
    rng = np.random.default_rng(seed)
    a, z = rng.normal(size=n), rng.uniform(0.02, 0.3, n)
    blob = np.exp(-((np.mgrid[:8, :8] - 3.5) ** 2).sum(0) / 6.0)
    images = (1.5 + a)[:, None, None, None] * blob + rng.normal(0, 0.05, (n, 5, 8, 8))
    spectra = 1e-17 * (1 + rng.normal(0, 0.05, (n, 64)))
    X = SliceDict(image=images.astype(np.float32), spectrum=spectra.astype(np.float32),
                  redshift=z)  # fmt: skip
    return X, a + 10 * z


def test_auto_reads_the_redshift_when_x_has_it():
    X, y = _data()
    with_z = ImageRegressor(**FAST).fit(X, y)
    assert with_z.scalar_keys_ == ("redshift",)
    assert with_z.net_.module_.n_scalars == 1
    without = ImageRegressor(**FAST, scalar_keys=None).fit(X, y)
    assert without.scalar_keys_ == () and without.net_.module_.n_scalars == 0
    # A bare array has no redshift: "auto" reads none.
    assert ImageRegressor(**FAST).fit(X["image"], y).scalar_keys_ == ()


def test_the_redshift_helps_when_the_target_needs_it():
    X, y = _data(n=400)
    params = {**FAST, "max_epochs": 30, "augment": None}
    rmse = {}
    for keys in ("auto", None):
        model = ImageRegressor(**params, scalar_keys=keys).fit(X[:300], y[:300])
        rmse[keys] = np.sqrt(np.mean((model.predict(X[300:]) - y[300:]) ** 2))
    assert rmse["auto"] < 0.8 * rmse[None], rmse


def test_missing_or_bad_scalars_are_named():
    X, y = _data()
    model = FusionRegressor(**FAST).fit(X, y)
    no_z = SliceDict(image=X["image"], spectrum=X["spectrum"])
    with pytest.raises(KeyError, match="redshift"):
        model.predict(no_z)
    with pytest.raises(TypeError, match="SliceDict"):
        ImageRegressor(**FAST, scalar_keys=["redshift"]).fit(X["image"], y)
    bad = SliceDict(image=X["image"], redshift=np.zeros((len(y), 2)))
    with pytest.raises(ValueError, match="one number per sample"):
        ImageRegressor(**FAST).fit(bad, y)


def test_nan_scalars_are_imputed_not_propagated():
    X, y = _data()
    z = X["redshift"].copy()
    z[::7] = np.nan
    X = SliceDict(image=X["image"], spectrum=X["spectrum"], redshift=z)
    pred = FusionRegressor(**FAST).fit(X, y).predict(X)
    assert np.isfinite(pred).all()


def test_contrastive_head_reads_the_scalars():
    X, y = _data()
    model = ContrastiveRegressor(**FAST, pretrain_epochs=1, projection_dim=8).fit(X, y)
    assert model.net_.module_.n_scalars == 1
    assert np.isfinite(model.predict(X)).all()


def test_fusion_net_refuses_missing_scalars():
    net = FusionNet("late", image_shape=(6, 8, 8), spectrum_shape=(2, 64), embed_dim=8,
                    n_scalars=1)  # fmt: skip
    image, spectrum = torch.zeros(3, 6, 8, 8), torch.zeros(3, 2, 64)
    assert net(image=image, spectrum=spectrum, scalars=torch.zeros(3, 1)).shape == (3, 1)
    with pytest.raises(ValueError, match="n_scalars=1"):
        net(image=image, spectrum=spectrum)
    with pytest.raises(ValueError, match=r"scalars must have shape \(n_samples, 1\)"):
        net(image=image, spectrum=spectrum, scalars=torch.zeros(3, 2))


def test_dihedral_augmentation_draws_all_eight_symmetries():
    torch.manual_seed(0)
    x = torch.arange(9.0).reshape(1, 1, 3, 3).repeat(400, 1, 1, 1)
    out = augment_images(x, "dihedral")
    # Every output is a symmetry of the square: the same pixel values, rearranged.
    assert torch.equal(out.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert torch.equal(out[:, 0, 1, 1], x[:, 0, 1, 1])  # the centre stays
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8
    flips = augment_images(x, "flip")
    assert len({tuple(o.flatten().tolist()) for o in flips}) == 2
    assert augment_images(x, None) is x
    with pytest.raises(ValueError, match="augment must be one of"):
        augment_images(x, "rotate")


def test_augmentation_only_while_training():
    X, y = _data()
    model = ImageRegressor(**FAST).fit(X, y)
    # Prediction never augments: the same input gives the same output every time.
    np.testing.assert_array_equal(model.predict(X), model.predict(X))
    assert model.net_.module_.image_encoder.augment == "dihedral"
