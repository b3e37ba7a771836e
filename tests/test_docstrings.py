"""Every public class and function has a numpydoc docstring with an Examples section.

The examples themselves run as doctests (``--doctest-modules`` in pyproject.toml); this test
makes sure none is missing. Constants (tuples, dicts, strings) are documented by their ``#:``
comments instead, and names re-exported from other libraries (``r2_score``) are theirs.
"""

import importlib
import inspect
import itertools

import pytest

import sklearn_sfr

SUBPACKAGES = [name for name in sklearn_sfr.__all__ if name in sklearn_sfr._SUBMODULES]


def _public_objects():
    for subpackage in SUBPACKAGES:
        module = importlib.import_module(f"sklearn_sfr.{subpackage}")
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # a constant
            if not getattr(obj, "__module__", "").startswith("sklearn_sfr"):
                continue  # re-exported from another library
            yield f"sklearn_sfr.{subpackage}.{name}", obj


def _has_examples(obj):
    doc = inspect.getdoc(obj) or ""
    lines = [line.strip() for line in doc.splitlines()]
    return any(
        line == "Examples" and nxt.startswith("---") and ">>>" in doc
        for line, nxt in itertools.pairwise(lines)
    )


def test_every_public_docstring_has_examples():
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
