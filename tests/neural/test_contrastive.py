"""ContrastiveRegressor: embeddings, unlabelled rows, the FLAG rule, retrieval, probe/full (its
scikit-learn contract is checked in tests/test_common.py)."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import KFold, cross_validate
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from skorch.helper import SliceDict

from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY
from sklearn_sfr.neural import HiSSCubeDataset
from sklearn_sfr.neural._contrastive import (
    ContrastiveNet,
    ContrastiveRegressor,
    SymmetricInfoNCELoss,
)
from sklearn_sfr.neural._modules import LinearPlusMLPHead
from tests.robustness._cubes import copy_cube, set_labels

FAST = {
    "projection_dim": 8,
    "pretrain_epochs": 2,
    "max_epochs": 2,
    "batch_size": 32,
    "width": 8,
    "embed_dim": 16,
    "random_state": 0,
}


def _paired(n=96, size=8, length=128, seed=0, noise=0.05):
    """Image-spectrum pairs that share three per-object latents a, b, c, in physical units.

    a sets the image's brightness and one emission line, b the image's size and another line,
    c the image's colour (band ratios) and the spectrum's continuum slope. y = a + b + c / 2.
    """
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    width = 2.0 * np.exp(0.3 * b)
    blob = np.exp(-(xx**2 + yy**2)[None] / (2 * width[:, None, None] ** 2))
    colour = np.exp(0.4 * c[:, None] * np.linspace(-1, 1, 5)[None])
    images = (2 + a)[:, None, None, None] * colour[:, :, None, None] * blob[:, None]
    images = images + rng.normal(0, noise, images.shape)
    wl = np.linspace(0, 1, length)
    line1, line2 = (np.exp(-((wl - mu) ** 2) / 2e-4) for mu in (0.3, 0.6))
    spectra = (
        1
        + 0.5 * c[:, None] * (wl - 0.5)
        + (1.5 + a)[:, None] * line1
        + (1.5 + b)[:, None] * line2
        + rng.normal(0, noise, (n, length))
    )
    spectra = 1e-17 * spectra
    spectra[:, 5:10] = np.nan  # masked pixels, as real spectra have
    X = SliceDict(image=images.astype(np.float32), spectrum=spectra.astype(np.float32))
    return X, a + b + 0.5 * c


def test_fit_predict_transform_and_embed():
    # Clone, reproducible fits, pickle, skops and set_output("pandas") are checked for every
    # estimator in tests/test_common.py.
    X, y = _paired()
    est = ContrastiveRegressor(**FAST)
    model = clone(est).fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (96,) and np.isfinite(pred).all()
    emb = model.transform(X)  # the encoders' embeddings (head_input="encoder")
    assert emb.shape == (96, 32) and emb.dtype == np.float64
    z = model.embed(X)
    assert set(z) == {"image", "spectrum"} and z["image"].shape == (96, 8)
    np.testing.assert_allclose(np.linalg.norm(z["spectrum"], axis=1), 1.0, rtol=1e-5)
    names = model.get_feature_names_out()
    assert names[0] == "contrastive0" and names[-1] == "contrastive31" and len(names) == 32
    assert len(model.pretrain_net_.history) == 2 and len(model.net_.history) == 2
    assert 0.01 <= model.temperature_ <= 1.0

    params = est.get_params()
    assert params["finetune"] == "full" and params["temperature"] == 0.07
    assert params["head_input"] == "encoder" and params["encoder_lr_ratio"] == 0.3
    assert params["pretrained"] is None
    assert clone(est).set_params(finetune="probe").get_params()["finetune"] == "probe"


def test_unlabelled_rows_are_used_for_pretraining_only():
    X, y = _paired()
    y_half = np.where(np.arange(96) % 2 == 0, y, np.nan)
    params = dict(FAST, validation_fraction=0.0)
    model = ContrastiveRegressor(**params).fit(X, y_half)
    assert model.n_labelled_ == 48
    # Every row reached pretraining, only the labelled ones the head.
    assert sum(model.pretrain_net_.history[0, "batches", :, "train_batch_size"]) == 96
    assert sum(model.net_.history[0, "batches", :, "train_batch_size"]) == 48
    assert np.isfinite(model.predict(X)).all()
    # The unlabelled rows change the encoders: not the same as fitting the labelled rows alone.
    alone = ContrastiveRegressor(**params).fit(X[::2], y[::2])
    assert alone.n_labelled_ == 48
    assert not np.allclose(alone.transform(X), model.transform(X))
    # A single labelled row still fits (no room for a validation split: none is made).
    one = np.full(96, np.nan)
    one[0] = 1.0
    assert ContrastiveRegressor(**FAST).fit(X, one).net_.history[0, "train_loss"] >= 0
    with pytest.raises(ValueError, match="NaN for every row"):
        ContrastiveRegressor(**FAST).fit(X, np.full(96, np.nan))


def _flagged(X, y):
    """X with an MPA-JHU ``flag`` key: FLAG=2 (biased label), FLAG=1 (no label), a missing
    FLAG (with a label) and FLAG=0; the labels the FLAG rule allows (NaN elsewhere), and the
    same with the FLAG=2 labels poisoned by +100 dex."""
    i = np.arange(len(y))
    flag = np.select([i % 6 == 5, i % 6 == 4], [2.0, 1.0], 0.0)
    flag[3] = np.nan
    X = SliceDict(**X, flag=flag)
    clean = np.where(flag == 0, y, np.nan)
    poisoned = np.where(flag == 2, y + 100.0, clean)
    poisoned[3] = y[3] - 100.0  # a missing FLAG is not FLAG=0 either
    return X, clean, poisoned


def test_flagged_labels_never_reach_the_head():
    X, y = _paired()
    X, clean, poisoned = _flagged(X, y)
    flag0 = X["flag"] == 0
    assert flag0.sum() == 63
    params = dict(FAST, validation_fraction=0.0)
    model = ContrastiveRegressor(**params).fit(X, poisoned)
    reference = ContrastiveRegressor(**params).fit(X, clean)
    assert model.n_labelled_ == reference.n_labelled_ == 63
    # Every object, whatever its FLAG, was pretrained on; only the FLAG=0 labels trained the head.
    assert sum(model.pretrain_net_.history[0, "batches", :, "train_batch_size"]) == 96
    assert sum(model.net_.history[0, "batches", :, "train_batch_size"]) == 63
    np.testing.assert_allclose(model.predict(X[flag0]), reference.predict(X[flag0]), rtol=1e-6)
    np.testing.assert_allclose(model.transform(X), reference.transform(X), rtol=1e-6)
    assert model.y_mean_ == reference.y_mean_
    # The poison is there to be seen: a model that does not know the flags learns from it.
    no_flags = SliceDict(image=X["image"], spectrum=X["spectrum"])
    blind = ContrastiveRegressor(**params).fit(no_flags, poisoned)
    assert blind.n_labelled_ == 96 - 16
    assert np.abs(blind.predict(X[flag0]) - reference.predict(X[flag0])).max() > 5
    # A flagged row's sample_weight is ignored too (as an unlabelled row's is).
    weights = np.where(flag0, 1.0, 1e6)
    weighted = ContrastiveRegressor(**params).fit(X, poisoned, sample_weight=weights)
    np.testing.assert_allclose(weighted.predict(X[flag0]), reference.predict(X[flag0]), rtol=1e-6)


def test_only_flag0_rows_give_the_same_model_as_before():
    # A user who passes FLAG=0 objects only, with or without their flags, gets the model the
    # estimator gave before it read X["flag"]: same rows, same seed, same predictions.
    X, y = _paired()
    y = np.where(np.arange(96) % 3 == 0, np.nan, y)  # and some unlabelled objects
    plain = ContrastiveRegressor(**FAST).fit(X, y)
    with_flags = ContrastiveRegressor(**FAST).fit(SliceDict(**X, flag=np.zeros(96)), y)
    assert plain.n_labelled_ == with_flags.n_labelled_ == 64
    np.testing.assert_array_equal(plain.predict(X), with_flags.predict(X))
    np.testing.assert_array_equal(plain.transform(X), with_flags.transform(X))


def test_flag_key_errors():
    X, y = _paired()
    flag = np.zeros(96)
    with pytest.raises(ValueError, match=r"X\['flag'\] must hold one MPA-JHU FLAG per sample"):
        ContrastiveRegressor(**FAST).fit(SliceDict(**X, flag=np.zeros((96, 2))), y)
    with pytest.raises(TypeError, match=r"X\['flag'\] must hold one numeric"):
        ContrastiveRegressor(**FAST).fit(SliceDict(**X, flag=flag.astype(str)), y)
    with pytest.raises(ValueError, match="no row has both a finite y and FLAG=0"):
        ContrastiveRegressor(**FAST).fit(SliceDict(**X, flag=flag + 2), y)
    with pytest.raises(ValueError, match="NaN for every row"):
        ContrastiveRegressor(**FAST).fit(SliceDict(**X, flag=flag), np.full(96, np.nan))


def _poison_cube(cube, folder, shift):
    """A copy of ``cube`` whose FLAG=2 labels (AVG) are ``shift`` dex too high."""
    path = copy_cube(cube, folder, "poisoned")
    table = pd.read_hdf(path, MERGED_LABEL_KEY)
    flagged = table.index[table["FLAG"] == 2]
    set_labels(path, "AVG", flagged, table.loc[flagged, "AVG"] + shift)
    return path


def test_flagged_labels_never_reach_the_head_out_of_core(synthetic_cube, tmp_path):
    from sklearn.frozen import FrozenEstimator

    # The loader refuses a log SFR beyond +-20 dex, so the file's FLAG=2 labels are +15 dex;
    # labels passed as y may be anything (+100 dex below).
    path = _poison_cube(synthetic_cube, tmp_path, 15.0)
    zooms = {"image_zoom": 3, "spectrum_zoom": 3}
    lazy = HiSSCubeDataset(path, flag=None, **zooms)  # FLAG 0, 1, 2: all pretrained on
    flag0, flag2 = lazy.flags == 0, lazy.flags == 2
    trusted = flag0 & np.isfinite(lazy.y)
    assert flag2.any() and np.isfinite(lazy.y[flag2]).all() and (lazy.y[flag2] > 10).all()
    assert (lazy.flags == 1).any() and trusted.sum() < np.isfinite(lazy.y).sum()
    params = dict(FAST, batch_size=16)
    model = ContrastiveRegressor(**params).fit(lazy)
    reference = ContrastiveRegressor(**params).fit(lazy, np.where(trusted, lazy.y, np.nan))
    assert model.n_labelled_ == reference.n_labelled_ == trusted.sum() == 64
    expected = reference.predict(lazy)[flag0]
    np.testing.assert_allclose(model.predict(lazy)[flag0], expected, rtol=1e-6, atol=1e-7)
    # Labels given as y follow the dataset's FLAGs too, however absurd the flagged ones.
    worse = ContrastiveRegressor(**params).fit(lazy, np.where(flag2, lazy.y + 100.0, lazy.y))
    assert worse.n_labelled_ == 64
    np.testing.assert_allclose(worse.predict(lazy)[flag0], expected, rtol=1e-6, atol=1e-7)
    # A dataset opened with flag=0 holds the same trusted labels but pretrains on fewer objects.
    only0 = HiSSCubeDataset(path, flag=0, **zooms)
    assert ContrastiveRegressor(**params).fit(only0).n_labelled_ == 64
    # In memory, X["flag"] does what the dataset's flags do: the same model.
    data = load_hisscube(path, flag=None, **zooms)
    in_memory = ContrastiveRegressor(**params).fit(data.X, data.y)
    assert in_memory.n_labelled_ == 64
    np.testing.assert_allclose(in_memory.predict(data.X)[flag0], expected, rtol=1e-4, atol=1e-5)
    # The ridge probe's least squares read the same FLAG=0 rows out of core and in memory.
    probe = dict(params, finetune="probe", pretrained=FrozenEstimator(model))
    out_of_core = ContrastiveRegressor(**probe).fit(lazy, np.where(flag2, lazy.y + 100.0, lazy.y))
    assert out_of_core.n_labelled_ == 64 and len(out_of_core.net_.history) == 0
    np.testing.assert_allclose(out_of_core.predict(lazy)[flag0],
                               ContrastiveRegressor(**probe).fit(data.X, data.y)
                               .predict(data.X)[flag0], rtol=1e-4, atol=1e-5)  # fmt: skip


def test_two_d_target_never_broadcasts():
    X, y = _paired()
    a = ContrastiveRegressor(**FAST).fit(X, y).predict(X)
    b = ContrastiveRegressor(**FAST).fit(X, y[:, None]).predict(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="y must be 1-D"):
        ContrastiveRegressor(**FAST).fit(X, np.c_[y, y])


@pytest.fixture(scope="module")
def knn_pipeline():
    """A contrastive embedding + k-NN pipeline, pretrained on 400 objects, 100 held out (a
    probe: the embeddings are the pretrained ones, not changed by fine-tuning)."""
    X, y = _paired(n=500)
    contrastive = ContrastiveRegressor(
        projection_dim=16, pretrain_epochs=30, max_epochs=1, batch_size=32, width=8,
        embed_dim=16, finetune="probe", random_state=0,
    )  # fmt: skip
    model = make_pipeline(contrastive, KNeighborsRegressor())
    model.fit(X[:400], y[:400])  # the pipeline calls contrastive.fit_transform(X, y)
    return model, X[400:], y[:400], y[400:]


def test_top1_retrieval_far_above_chance(knn_pipeline):
    model, X_test, *_ = knn_pipeline
    z = model[0].embed(X_test)
    similarity = z["image"] @ z["spectrum"].T  # cosine: the projections have unit length
    top1 = np.mean(similarity.argmax(axis=1) == np.arange(len(X_test)))
    chance = 1 / len(X_test)
    assert top1 > 5 * chance, top1  # 0.38 (image to spectrum) when written
    assert len(model[0].pretrain_net_.history) == 30


def test_knn_on_the_embedding_beats_the_mean(knn_pipeline):
    model, X_test, y_train, y_test = knn_pipeline
    assert model[0].transform(X_test).shape == (100, 32)
    rmse = mean_squared_error(y_test, model.predict(X_test)) ** 0.5
    dummy = DummyRegressor().fit(np.zeros((400, 1)), y_train).predict(np.zeros((100, 1)))
    base = mean_squared_error(y_test, dummy) ** 0.5
    assert rmse < 0.7 * base, (rmse, base)


def test_probe_freezes_the_encoders_full_fine_tunes_them():
    X, y = _paired()
    encoders = ("image_encoder", "spectrum_encoder", "image_projection", "spectrum_projection")

    def parts(module):
        state = module.state_dict()
        enc = {k: v for k, v in state.items() if k.split(".")[0] in encoders}
        return enc, {k: v for k, v in state.items() if k.startswith("head.")}

    probe = ContrastiveRegressor(**dict(FAST, finetune="probe", head="mlp")).fit(X, y)
    pre_enc, _ = parts(probe.pretrain_net_.module_)
    enc, _ = parts(probe.net_.module_)
    assert all(torch.equal(pre_enc[k], enc[k]) for k in pre_enc)
    # The MLP head learnt (AdamW took steps on it); the encoders never reached the optimizer.
    state = probe.net_.optimizer_.state
    assert all(state[p]["step"] > 0 for p in probe.net_.module_.head.parameters())
    assert not any(p in state for p in probe.net_.module_.image_encoder.parameters())
    module = probe.net_.module_.train()
    assert module.training and module.head.training and not module.image_encoder.training

    full = ContrastiveRegressor(**dict(FAST, finetune="full")).fit(X, y)
    pre_enc, _ = parts(full.pretrain_net_.module_)
    enc, _ = parts(full.net_.module_)
    assert not all(torch.equal(pre_enc[k], enc[k]) for k in pre_enc)
    # The two modes share the pretraining (same seed), so they differ only in stage 2.
    np.testing.assert_array_equal(
        probe.pretrain_net_.module_.logit_scale.detach(),
        full.pretrain_net_.module_.logit_scale.detach(),
    )


def test_pretraining_can_be_skipped_and_gaussian_nll_gives_a_std():
    X, y = _paired()
    model = ContrastiveRegressor(**dict(FAST, pretrain_epochs=0, loss="gaussian_nll")).fit(X, y)
    assert len(model.pretrain_net_.history) == 0
    assert model.temperature_ == pytest.approx(0.07)
    mean, std = model.predict(X, return_std=True)
    assert mean.shape == std.shape == (96,) and (std > 0).all()
    with pytest.raises(ValueError, match="gaussian_nll"):
        ContrastiveRegressor(**FAST).fit(X, y).predict(X, return_std=True)


def test_cross_validate():
    X, y = _paired()
    res = cross_validate(ContrastiveRegressor(**FAST), X, y, cv=KFold(2))
    assert np.isfinite(res["test_score"]).all()


def test_infonce_prefers_matched_pairs():
    generator = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 4, generator=generator))
    scale = torch.full((8,), 3.0)
    loss = SymmetricInfoNCELoss()
    assert loss((z, z, scale), None) < loss((z, z.roll(1, dims=0), scale), None)
    net = ContrastiveNet((6, 8, 8), (2, 32), width=4, embed_dim=8, projection_dim=4)
    with torch.no_grad():
        net.logit_scale.fill_(10.0)  # beyond the clamp
    assert float(net.temperature()) == pytest.approx(0.01)


def test_guards():
    X, y = _paired()
    with pytest.raises(TypeError, match="SliceDict with keys"):
        ContrastiveRegressor(**FAST).fit(X["image"], y)
    with pytest.raises(KeyError, match="no key 'spectrum'"):
        ContrastiveRegressor(**FAST).fit(SliceDict(image=X["image"]), y)
    with pytest.raises(ValueError, match="finetune"):
        ContrastiveRegressor(finetune="partly").fit(X, y)
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveRegressor(temperature=0.001).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        ContrastiveRegressor(**FAST).fit(X, y, sample_weight=np.zeros(96))
    model = ContrastiveRegressor(**FAST).fit(X, y, sample_weight=np.linspace(0.5, 1.5, 96))
    short = SliceDict(image=X["image"], spectrum=X["spectrum"][:, :64])
    with pytest.raises(ValueError, match="fitted on"):
        model.transform(short)


def test_the_head_reads_the_encoders_or_the_projections():
    X, y = _paired()
    by_input = {}
    for head_input in ("encoder", "projection"):
        model = ContrastiveRegressor(**dict(FAST, head_input=head_input, finetune="probe")).fit(
            X, y
        )
        module = model.net_.module_.eval()
        with torch.no_grad():
            inputs = model.scaler_.transform(model._arrays(X))
            encoded = module._encoded(
                torch.as_tensor(inputs["image"]), torch.as_tensor(inputs["spectrum"])
            )
            parts = encoded if head_input == "encoder" else module._projected(encoded)
            expected = torch.cat([parts["image"], parts["spectrum"]], dim=1).numpy()
        by_input[head_input] = model.transform(X)
        np.testing.assert_allclose(by_input[head_input], expected, rtol=1e-5, atol=1e-6)
        assert len(model.get_feature_names_out()) == by_input[head_input].shape[1]
        assert np.isfinite(model.predict(X)).all()
    assert by_input["encoder"].shape == (96, 2 * FAST["embed_dim"])
    assert by_input["projection"].shape == (96, 2 * FAST["projection_dim"])
    # The same pretraining: only what the head reads differs, so the embeddings agree.
    z = ContrastiveRegressor(**dict(FAST, finetune="probe")).fit(X, y).embed(X)
    np.testing.assert_allclose(np.hstack([z["image"], z["spectrum"]]), by_input["projection"],
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_encoder_lr_ratio_slows_the_pretrained_encoders_only_when_fine_tuning():
    X, y = _paired()
    full = ContrastiveRegressor(**dict(FAST, finetune="full", encoder_lr_ratio=0.1)).fit(X, y)
    module = full.net_.module_
    encoder_ids = {
        id(p)
        for part in (
            "image_encoder",
            "spectrum_encoder",
            "image_projection",
            "spectrum_projection",
        )
        for p in getattr(module, part).parameters()
    }
    rates = {}
    for group in full.net_.optimizer_.param_groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    np.testing.assert_allclose([rates[i] for i in encoder_ids if i in rates], 1e-4)
    np.testing.assert_allclose([rates[id(p)] for p in module.head.parameters()], 1e-3)
    # A probe trains the head only: one learning rate.
    probe = ContrastiveRegressor(**dict(FAST, finetune="probe", encoder_lr_ratio=0.1))
    probe.fit(X, y)
    np.testing.assert_allclose([g["lr"] for g in probe.net_.optimizer_.param_groups], 1e-3)
    with pytest.raises(ValueError, match="encoder_lr_ratio"):
        ContrastiveRegressor(**dict(FAST, encoder_lr_ratio=0.0)).fit(X, y)


def test_pretraining_has_its_own_learning_rate():
    """pretrain_lr drives stage 1 only; lr stays the head's (InfoNCE needs the lower rate)."""
    X, y = _paired()
    params = dict(FAST, lr=2e-3, pretrain_lr=5e-4, encoder_lr_ratio=1.0)
    model = ContrastiveRegressor(**params).fit(X, y)
    pretrain_rates = {g["lr"] for g in model.pretrain_net_.optimizer_.param_groups}
    head_rates = {g["lr"] for g in model.net_.optimizer_.param_groups}
    assert pretrain_rates == {5e-4}
    assert head_rates == {2e-3}
    assert ContrastiveRegressor().pretrain_lr < ContrastiveRegressor().lr
    with pytest.raises(ValueError, match="pretrain_lr"):
        ContrastiveRegressor(**dict(FAST, pretrain_lr=0.0)).fit(X, y)


def test_a_pretrained_model_stands_for_the_pretraining():
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator

    X, y = _paired()
    X, clean, poisoned = _flagged(X, y)
    params = dict(FAST, validation_fraction=0.0)
    base = ContrastiveRegressor(**params).fit(X, clean)
    # The head of a model given the pretraining is the head the one-go fit trains.
    reused = ContrastiveRegressor(**params, pretrained=FrozenEstimator(base))
    fitted = clone(reused).fit(X, clean)  # clone keeps the frozen, fitted model
    assert fitted.pretrain_net_ is base.pretrain_net_ and fitted.scaler_ is base.scaler_
    np.testing.assert_allclose(fitted.predict(X), base.predict(X), rtol=1e-6)
    # The FLAG rule holds for the head as before, and any rows may train it: here only 20
    # labels, the pretraining having read all 96 objects.
    assert clone(reused).fit(X, poisoned).n_labelled_ == 63
    few = np.flatnonzero(X["flag"] == 0)[:20]
    small = clone(reused).set_params(finetune="full").fit(X[few], clean[few])
    assert small.n_labelled_ == 20 and np.isfinite(small.predict(X)).all()
    assert sum(small.net_.history[0, "batches", :, "train_batch_size"]) == 20
    with pytest.raises(NotFittedError):
        ContrastiveRegressor(**params, pretrained=ContrastiveRegressor()).fit(X, clean)
    with pytest.raises(TypeError, match="pretrained must be a fitted ContrastiveRegressor"):
        ContrastiveRegressor(**params, pretrained=DummyRegressor()).fit(X, clean)
    short = SliceDict(image=X["image"], spectrum=X["spectrum"][:, :64])
    with pytest.raises(ValueError, match="fitted on"):
        clone(reused).fit(short, y)
    with pytest.raises(ValueError, match="outputs"):
        clone(reused).set_params(loss="gaussian_nll").fit(X, clean)


def test_a_ridge_probe_is_least_squares_on_the_embedding():
    """head="ridge" with a probe: no epochs, a prediction linear in transform(X) (and the
    scalars), the ridge fit of the labelled rows on it; flagged labels never reach it."""
    X, y = _paired()
    X, clean, poisoned = _flagged(X, y)
    model = ContrastiveRegressor(**dict(FAST, finetune="probe", head="ridge")).fit(X, poisoned)
    assert len(model.net_.history) == 0 and model.n_labelled_ == 63
    assert isinstance(model.net_.module_.head, LinearPlusMLPHead)
    # The head is the ridge fit of the FLAG=0 labels on the standardised embedding.
    trusted = (X["flag"] == 0) & np.isfinite(clean)
    embedding = model.transform(X)
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit(embedding[trusted]).transform(embedding)
    target = (clean - model.y_mean_) / model.y_scale_
    ridge = RidgeCV(alphas=np.logspace(-3, 5, 33)).fit(scaled[trusted], target[trusted])
    np.testing.assert_allclose(model.predict(X), model.y_mean_ + model.y_scale_ *
                               ridge.predict(scaled), rtol=1e-4, atol=1e-4)  # fmt: skip
    linear = LinearRegression().fit(embedding, model.predict(X))
    assert linear.score(embedding, model.predict(X)) > 1 - 1e-9
    # Poisoned flagged labels: the same model as clean ones.
    same = ContrastiveRegressor(**dict(FAST, finetune="probe", head="ridge")).fit(X, clean)
    np.testing.assert_allclose(same.predict(X), model.predict(X), rtol=1e-6)
    # One or two labels leave nothing to choose the penalty by: a fixed one, still finite.
    two = np.full(96, np.nan)
    two[[0, 1]] = [0.5, 1.5]
    assert np.isfinite(ContrastiveRegressor(**dict(FAST, finetune="probe")).fit(X, two)
                       .predict(X)).all()  # fmt: skip
    with pytest.raises(ValueError, match="least squares"):
        ContrastiveRegressor(**dict(FAST, finetune="probe", loss="huber")).fit(X, clean)
    # A Gaussian probe: the ridge mean and one spread, the fit's residual scatter.
    gauss = dict(FAST, finetune="probe", loss="gaussian_nll")
    mean, std = ContrastiveRegressor(**gauss).fit(X, clean).predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.ptp(std) == 0 and std[0] > 0


def test_fine_tuning_starts_from_the_linear_probe(monkeypatch):
    """LP-FT: with head="ridge", fine-tuning starts from the least-squares head, so a
    vanishing learning rate leaves the probe's model."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_sfr.neural import _contrastive

    rows = []
    fit_head = _contrastive._fit_linear_head

    def counted(net, features, scalars, target, weight=None):
        rows.append(len(target))
        return fit_head(net, features, scalars, target, weight)

    monkeypatch.setattr(_contrastive, "_fit_linear_head", counted)

    X, y = _paired()
    base = ContrastiveRegressor(**FAST).fit(X, y)
    assert rows == [86]  # its own LP-FT: the 86 training rows, 10 held out to validate
    rows.clear()
    params = dict(FAST, pretrained=FrozenEstimator(base), validation_fraction=0.0)
    probe = ContrastiveRegressor(**params, finetune="probe").fit(X, y)
    still = ContrastiveRegressor(**params, finetune="full", lr=1e-12, weight_decay=0.0)
    np.testing.assert_allclose(still.fit(X, y).predict(X), probe.predict(X), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    moved = ContrastiveRegressor(**params, finetune="full").fit(X, y)
    assert len(moved.net_.history) == FAST["max_epochs"]
    assert not np.allclose(moved.predict(X), probe.predict(X))
    # With validation rows, least squares reads the training rows only; a probe reads all.
    assert rows == [96, 96, 96]
    held = ContrastiveRegressor(**dict(params, validation_fraction=0.25), finetune="full")
    assert sum(held.fit(X, y).net_.history[0, "batches", :, "train_batch_size"]) == 72
    ContrastiveRegressor(**dict(params, validation_fraction=0.25), finetune="probe").fit(X, y)
    assert rows[3:] == [72, 96]


def test_a_ridge_head_encodes_the_labelled_rows_once(monkeypatch):
    """The head's standardisation and its least squares share one pass of the encoders over
    the labelled rows (out of core, one read of those objects)."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_sfr.neural._contrastive import ContrastiveNet

    X, y = _paired()
    base = ContrastiveRegressor(**FAST).fit(X, y)
    seen = []
    features = ContrastiveNet.features

    def counted(self, image=None, spectrum=None, **kwargs):
        seen.append(len(image))
        return features(self, image, spectrum, **kwargs)

    monkeypatch.setattr(ContrastiveNet, "features", counted)
    params = dict(FAST, pretrained=FrozenEstimator(base), finetune="probe")
    y_half = y.copy()
    y_half[::2] = np.nan  # 48 labelled rows
    ContrastiveRegressor(**params).fit(X, y_half)
    assert sum(seen) == 48


def test_fine_tuning_with_a_split_that_does_not_name_its_rows():
    """A custom ``train_split`` (in ``net_kwargs``) whose training part is not a Subset: the
    ridge start reads exactly its training rows, and the model fits."""
    import torch

    X, y = _paired()

    class Wrapped(torch.utils.data.Dataset):
        def __init__(self, dataset):
            self.dataset = dataset

        def __len__(self):
            return len(self.dataset)

        def __getitem__(self, i):
            return self.dataset[i]

    def split(dataset, y=None):
        n = len(dataset)
        return (Wrapped(torch.utils.data.Subset(dataset, range(n - 16))),
                torch.utils.data.Subset(dataset, range(n - 16, n)))  # fmt: skip

    from sklearn_sfr.neural import _contrastive

    rows = []
    fit_head = _contrastive._fit_linear_head

    def counted(net, features, scalars, target, weight=None):
        rows.append(len(target))
        assert len(features) == len(target)
        return fit_head(net, features, scalars, target, weight)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_contrastive, "_fit_linear_head", counted)
        model = ContrastiveRegressor(**FAST, net_kwargs={"train_split": split}).fit(X, y)
    assert rows == [80]
    assert np.isfinite(model.predict(X)).all()
