"""Out-of-core training from a HiSSCubeDataset: same results as in memory, worker-safe."""

import pickle

import numpy as np
import pytest

from sklearn_sfr import ContrastiveRegressor, FusionRegressor, SpectrumRegressor
from sklearn_sfr.datasets import load_hisscube
from sklearn_sfr.neural import HiSSCubeDataset
from tests.conftest import file_state
from tests.robustness._cubes import copy_cube, set_labels

FAST = {"max_epochs": 3, "batch_size": 16, "width": 8, "embed_dim": 16, "random_state": 0}


def test_items_match_the_in_memory_loader(synthetic_cube):
    data = load_hisscube(synthetic_cube, image_zoom=2, spectrum_zoom=3)
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=2, spectrum_zoom=3)
    assert len(lazy) == len(data.y)
    np.testing.assert_array_equal(lazy.y, data.y)
    item, target = lazy[5]
    np.testing.assert_array_equal(item["image"], data.X["image"][5])
    np.testing.assert_array_equal(item["spectrum"], data.X["spectrum"][5])
    assert target == data.y[5]
    assert pickle.loads(pickle.dumps(lazy))._cube is None  # never ships an open handle


def test_fit_from_the_file_equals_fit_in_memory(synthetic_cube):
    before = file_state(synthetic_cube)
    data = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3)
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3)
    in_memory = FusionRegressor(**FAST).fit(data.X, data.y).predict(data.X)
    from_file = FusionRegressor(**FAST).fit(lazy)
    np.testing.assert_allclose(from_file.predict(lazy), in_memory, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(from_file.predict(data.X), in_memory, rtol=1e-4, atol=1e-5)
    assert file_state(synthetic_cube) == before


def test_contrastive_pretrains_on_unlabelled_objects_from_the_file(synthetic_cube):
    # flag=None keeps the flagged and unlabelled objects: they take part in pretraining.
    data = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    lazy = HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    assert np.isnan(lazy.y).any() and np.isfinite(lazy.y).any()
    params = {**FAST, "pretrain_epochs": 2, "projection_dim": 8}
    in_memory = ContrastiveRegressor(**params).fit(data.X, data.y)
    from_file = ContrastiveRegressor(**params).fit(lazy)
    # The head learns from the FLAG=0 labels only: the FLAG=2 ones are biased.
    trusted = (lazy.flags == 0) & np.isfinite(lazy.y)
    assert trusted.sum() < np.isfinite(lazy.y).sum()
    assert from_file.n_labelled_ == in_memory.n_labelled_ == trusted.sum()
    np.testing.assert_allclose(
        from_file.predict(lazy), in_memory.predict(data.X), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        from_file.transform(lazy), in_memory.transform(data.X), rtol=1e-4, atol=1e-5
    )


def test_flags_and_label_checks_match_the_in_memory_loader(synthetic_cube, tmp_path):
    zooms = {"image_zoom": 3, "spectrum_zoom": 3, "modalities": ("spectrum",)}
    for flag in (None, 0, (0, 2)):
        data = load_hisscube(synthetic_cube, flag=flag, **zooms)
        lazy = HiSSCubeDataset(synthetic_cube, flag=flag, **zooms)
        np.testing.assert_array_equal(lazy.flags, data.X["flag"])
        np.testing.assert_array_equal(lazy.y, data.y)
    full = HiSSCubeDataset(synthetic_cube, flag=None, **zooms)
    part = HiSSCubeDataset(synthetic_cube, index=[4, 0, 2], flag=None, **zooms)
    np.testing.assert_array_equal(part.flags, full.flags[[4, 0, 2]])
    np.testing.assert_array_equal(part.y, full.y[[4, 0, 2]])
    # The same errors and warnings as load_hisscube, naming the file and the objects.
    with pytest.raises(ValueError, match=r"no object of 80 has FLAG in \(5,\)"):
        HiSSCubeDataset(synthetic_cube, flag=5, **zooms)
    with pytest.warns(UserWarning, match=r"'AVG' is missing \(NaN\) for 6 of the 70 objects"):
        HiSSCubeDataset(synthetic_cube, flag=(0, 1), **zooms)
    path = copy_cube(synthetic_cube, tmp_path, "absurd")
    set_labels(path, "AVG", [0], 1e300)
    for load in (load_hisscube, HiSSCubeDataset):
        with pytest.raises(ValueError, match="'AVG' holds unusable values"):
            load(path, flag=None, **zooms)


def test_worker_processes_open_their_own_handles(synthetic_cube):
    lazy = HiSSCubeDataset(synthetic_cube, spectrum_zoom=3, modalities=("spectrum",))
    lazy.read([0])  # the parent holds a handle before the workers fork
    model = SpectrumRegressor(
        **FAST, net_kwargs={"iterator_train__num_workers": 2, "iterator_valid__num_workers": 2}
    ).fit(lazy)
    assert np.isfinite(model.predict(lazy)).all()


def test_errors(synthetic_cube):
    lazy = HiSSCubeDataset(synthetic_cube, spectrum_zoom=3, modalities=("spectrum",))
    with pytest.raises(ValueError, match="needs \\['image', 'spectrum'\\]"):
        FusionRegressor(**FAST).fit(lazy)
    with pytest.raises(ValueError, match="sample_weight"):
        SpectrumRegressor(**FAST).fit(lazy, sample_weight=np.ones(len(lazy)))
    with pytest.raises(ValueError, match="sample_weight"):
        ContrastiveRegressor(**FAST).fit(
            HiSSCubeDataset(synthetic_cube, image_zoom=3, spectrum_zoom=3),
            sample_weight=np.ones(len(lazy)),
        )
    with pytest.raises(KeyError, match="target 'SFR'"):
        HiSSCubeDataset(synthetic_cube, target="SFR")
