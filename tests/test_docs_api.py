"""The API reference (docs/api.rst) lists every public name of every subpackage."""

import importlib
import re
from pathlib import Path

import pytest

import sklearn_sfr

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"
SUBPACKAGES = [name for name in sklearn_sfr.__all__ if name in sklearn_sfr._SUBMODULES]


def _api_text():
    return API.read_text(encoding="utf-8")


def _listed(name, text):
    """Whether ``name`` appears in the reference as a whole word (not inside a longer name)."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_every_public_name_is_in_the_api_reference(subpackage):
    module = importlib.import_module(f"sklearn_sfr.{subpackage}")
    text = _api_text()
    assert f"sklearn_sfr.{subpackage}" in text, f"docs/api.rst has no section for {subpackage}"
    missing = [name for name in module.__all__ if not _listed(name, text)]
    assert not missing, f"docs/api.rst lacks sklearn_sfr.{subpackage}: {', '.join(missing)}"


def test_top_level_estimators_are_in_the_api_reference():
    text = _api_text()
    missing = [name for name in sklearn_sfr._ESTIMATORS if f"sklearn_sfr.{name}" not in text]
    assert not missing, f"docs/api.rst lacks the top-level names {', '.join(missing)}"


def test_the_check_would_catch_a_missing_name():
    # _listed must not be satisfied by a longer name that contains the one sought.
    assert _listed("rmse", "   rmse\n")
    assert not _listed("rmse", "   rmse_over_noise_floor\n")
    assert not _listed("plot_pareto", "   plot_pareto_front\n")
