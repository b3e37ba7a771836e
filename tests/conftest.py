"""Shared fixtures: a seed for every test and small cubes built once per session."""

import os
import random

# pytest-xdist runs one worker per core: torch's OpenMP threads on top of that oversubscribe
# the cores and make tiny networks hundreds of times slower. One thread per worker. This must
# happen before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

SEED = 0


@pytest.fixture(autouse=True)
def seed():
    """Seed every global generator so a test run is reproducible (as skorch's tests do)."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch = __import__("sys").modules.get("torch")
    if torch is not None:  # only when a test already imported it: keep torch-free tests light
        torch.manual_seed(SEED)
    return SEED


def make_arrays(n=12, n_spectra=None, rng=None):
    """Random but well-formed inputs for ``write_hisscube`` (n objects)."""
    rng = np.random.default_rng(SEED) if rng is None else rng
    m = n if n_spectra is None else n_spectra
    images = rng.normal(1.0, 0.3, size=(n, 5, 64, 64)).astype(np.float32)
    image_errors = rng.uniform(0.05, 0.2, size=images.shape).astype(np.float32)
    spectra = (rng.normal(1.0, 0.2, size=(m, 4620)) * 1e-17).astype(np.float32)
    spectrum_errors = np.full((m, 4620), 1e-18, np.float32)
    spectrum_errors[:, 2000:2010] = np.nan  # a masked stretch
    avg = rng.normal(0, 1, size=m)
    table = pd.DataFrame(
        {
            "PLATEID": 300 + np.arange(m) // 640,
            "MJD": 51000 + np.arange(m),
            "FIBERID": np.arange(m) % 640 + 1,
            "PLUG_RA": rng.uniform(0, 360, m),
            "PLUG_DEC": rng.uniform(-10, 60, m),
            "CLASS": ["GALAXY"] * m,
            "Z": rng.uniform(0.02, 0.2, m),
            "AVG": avg,
            "MEDIAN": avg + 0.01,
            "P16": avg - 0.3,
            "P84": avg + 0.3,
            "FLAG": np.where(np.arange(m) % 4 == 3, 2.0, 0.0),
        }
    )
    return {
        "images": images,
        "image_errors": image_errors,
        "spectra": spectra,
        "spectrum_errors": spectrum_errors,
        "spectrum_table": table,
    }


@pytest.fixture(scope="session")
def synthetic_cube(tmp_path_factory):
    """A small synthetic cube (80 objects), built once; tests must not modify it."""
    from sklearn_sfr.datasets import make_synthetic_cube

    path = tmp_path_factory.mktemp("cube") / "synthetic.h5"
    make_synthetic_cube(path, n_objects=80, random_state=SEED)
    return path


def file_state(path):
    """Bytes and mtime of a file, to prove a read left it untouched."""
    with open(path, "rb") as fh:
        data = fh.read()
    return data, os.stat(path).st_mtime_ns
