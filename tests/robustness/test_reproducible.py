"""Attack catalogue, reproducibility: the same seed gives byte-identical cubes, identical CV
scores and predictions, and a saved model (pickle, skops) predicts identically in a fresh
process."""

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline

from sklearn_sfr.cli import main
from sklearn_sfr.neural import FusionRegressor
from sklearn_sfr.preprocessing import CentralCrop, SpectrumRebin
from tests.robustness.test_arrays import TINY_NET, make_X

REPO = Path(__file__).parents[2]


def _raw_datasets(path):
    """Every dataset's raw bytes, and every object's attributes, by HDF5 path."""
    out = {}

    def attr(f, value):
        if isinstance(value, h5py.Reference):
            return f[value].name  # where it points, not the address
        value = np.asarray(value)
        return value.tolist() if value.dtype == object else value.tobytes()

    with h5py.File(path, "r") as f:

        def visit(name, obj):
            out[f"{name}@attrs"] = {k: attr(f, v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                # Variable-length items (pandas' object blocks): their bytes, not pointers.
                out[name] = (
                    [np.asarray(v).tobytes() for v in data.ravel()]
                    if data.dtype == object
                    else data.tobytes()
                )

        f.visititems(visit)
    return out


def test_same_seed_same_cube_bytes(tmp_path, capsys):
    paths = [tmp_path / f"{name}.h5" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("5", "5", "6")):
        assert main(["make-cube", str(path), "--n-objects", "10", "--seed", seed, "--quiet"]) == 0
    capsys.readouterr()
    a, b, c = map(_raw_datasets, paths)
    assert a.keys() == b.keys() and len(a) > 20
    assert [k for k in a if a[k] != b[k]] == []
    # A different seed gives a different cube (the check above can fail).
    assert any(a[k] != c[k] for k in a if "spectral_1d_cube" in k)


def _model():
    return make_pipeline(CentralCrop(8), SpectrumRebin(2), FusionRegressor(**TINY_NET))


def test_same_seed_same_cv_scores_and_predictions():
    X, y = make_X(24), np.random.default_rng(3).normal(size=24)
    cv = KFold(3, shuffle=True, random_state=0)
    runs = [cross_validate(_model(), X, y, cv=cv, scoring="r2") for _ in range(2)]
    np.testing.assert_array_equal(runs[0]["test_score"], runs[1]["test_score"])
    assert np.isfinite(runs[0]["test_score"]).all()
    a, b = (_model().fit(X, y).predict(X) for _ in range(2))
    np.testing.assert_array_equal(a, b)


_LOAD = """
import pickle, sys
import numpy as np
import skops.io as sio

folder = sys.argv[1]
X = pickle.load(open(f"{folder}/X.pkl", "rb"))
model = pickle.load(open(f"{folder}/model.pkl", "rb"))
np.save(f"{folder}/pickle.npy", model.predict(X))
blob = open(f"{folder}/model.skops", "rb").read()
model = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
np.save(f"{folder}/skops.npy", model.predict(X))
"""


def test_saved_model_predicts_identically_in_a_fresh_process(tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y = make_X(16), np.random.default_rng(4).normal(size=16)
    model = _model().fit(X, y)
    expected = model.predict(X)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    (tmp_path / "model.skops").write_bytes(sio.dumps(model))
    (tmp_path / "X.pkl").write_bytes(pickle.dumps(X))
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(_LOAD))
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr
    for name in ("pickle", "skops"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), expected, err_msg=name)
