import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_sfr


def test_version():
    assert isinstance(sklearn_sfr.__version__, str)
    assert sklearn_sfr.__version__[0].isdigit()


def test_import_does_not_import_torch():
    code = (
        "import sys, sklearn_sfr, sklearn_sfr.datasets, sklearn_sfr.plotting, sklearn_sfr.cli;"
        "bad = [m for m in ('torch', 'skorch', 'matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lazy_subpackages():
    assert sklearn_sfr.datasets.load_hisscube is not None
    assert "datasets" in dir(sklearn_sfr)


# ----------------------------------------------------------------------------- layering

#: What the bottom layer (sklearn_sfr/utils, survey knowledge included) may import of the package.
_UTILS_MAY_IMPORT = ("sklearn_sfr.utils", "sklearn_sfr._version")


def _package_imports(path, package):
    """Absolute names of the ``sklearn_sfr`` modules that the file at ``path`` imports.

    ``package`` is the package the file belongs to, against which relative imports resolve.
    Imports inside functions count too.
    """
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "sklearn_sfr":  # from .. import neural: the subpackages themselves
                names += [f"sklearn_sfr.{alias.name}" for alias in node.names]
            else:
                names.append(module)
    return [name for name in names if name.split(".")[0] == "sklearn_sfr"]


def test_utils_imports_no_higher_layer():
    root = Path(sklearn_sfr.__file__).parent
    bad = []
    for path in sorted((root / "utils").rglob("*.py")):
        package = ".".join(path.relative_to(root.parent).parts[:-1])
        for name in _package_imports(path, package):
            if not any(name == ok or name.startswith(ok + ".") for ok in _UTILS_MAY_IMPORT):
                bad.append(f"{path.relative_to(root.parent)} imports {name}")
    assert not bad, "utils must import only utils:\n" + "\n".join(bad)


def test_the_import_check_resolves_relative_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from ..datasets._layout import x\nfrom . import _io\nimport numpy\n")
    assert _package_imports(module, "sklearn_sfr.utils") == [
        "sklearn_sfr.datasets._layout",
        "sklearn_sfr.utils",
    ]


#: The package's layers, bottom first: a module imports only its own layer and lower ones.
#: Top-level modules (the CLI) sit above everything.
_LAYERS = (
    ("utils", "_version"),
    ("datasets",),
    ("metrics",),
    ("preprocessing",),
    ("features",),
    ("neural",),
    ("model_selection",),
    ("plotting",),
    ("experiments",),
)

#: The one deliberate upward import: model_selection's deprecated aliases of names that moved
#: to experiments (a lazy ``__getattr__``).
_UPWARD_ALLOWED = {("sklearn_sfr/model_selection/__init__.py", "sklearn_sfr.experiments")}


def _layer(module):
    parts = module.split(".")
    if len(parts) < 2:
        return len(_LAYERS)
    for level, names in enumerate(_LAYERS):
        if parts[1] in names:
            return level
    return len(_LAYERS)  # cli, _demo, _cli_models: the top


def _modules():
    root = Path(sklearn_sfr.__file__).parent
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        package = ".".join(rel.parts[:-1])
        module = ".".join((*rel.parts[:-1], path.stem))
        yield path, rel, package, module


def test_no_module_imports_a_higher_layer():
    bad = []
    for path, rel, package, module in _modules():
        for name in _package_imports(path, package):
            if (str(rel), ".".join(name.split(".")[:2])) in _UPWARD_ALLOWED:
                continue
            if _layer(name) > _layer(module):
                bad.append(f"{rel} imports {name}")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


def _imported_names(path, package):
    """(module, name) of every ``from X import name`` in the file, X resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [(module, alias.name) for alias in node.names]
    return found


def _top_package(module):
    """The subpackage a module belongs to; "" for the top-level modules (cli, _demo, ...)."""
    parts = module.split(".")
    root = Path(sklearn_sfr.__file__).parent
    return parts[1] if len(parts) > 1 and (root / parts[1]).is_dir() else ""


def test_no_private_name_crosses_packages():
    bad = []
    for path, rel, package, module in _modules():
        here = _top_package(module)
        for source, name in _imported_names(path, package):
            if source.split(".")[0] != "sklearn_sfr" or not name.startswith("_"):
                continue
            if name.startswith("__") or _top_package(source) == here:
                continue
            bad.append(f"{rel} imports {name} from {source}")
    assert not bad, "private names used across packages:\n" + "\n".join(bad)


def test_only_one_module_reaches_into_scikit_learn_internals():
    """scikit-learn's private modules move between releases: one module imports them."""
    bad = []
    for path, rel, package, _ in _modules():
        if rel.as_posix() == "sklearn_sfr/utils/_sklearn.py":
            continue
        for source, name in _imported_names(path, package):
            private_module = any(p.startswith("_") for p in source.split(".")[1:])
            if source.split(".")[0] == "sklearn" and (private_module or name.startswith("_")):
                bad.append(f"{rel} imports {name} from {source}")
    assert not bad, "import these through sklearn_sfr.utils._sklearn:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- one line table


def _in_line_table(wavelengths):
    from sklearn_sfr.utils._survey import SPECTRAL_LINES

    values = set(SPECTRAL_LINES.values())
    return all(w in values for w in wavelengths)


def test_every_line_user_takes_its_wavelengths_from_the_one_table():
    from sklearn_sfr.datasets._synthetic import _constants, _templates
    from sklearn_sfr.features._lines import LINES
    from sklearn_sfr.plotting import EMISSION_LINES
    from sklearn_sfr.utils._survey import SPECTRAL_LINES

    assert all(_in_line_table(centres) for centres, *_ in LINES.values())
    assert all(_in_line_table(waves) for waves in EMISSION_LINES.values())
    for name, wavelength in _constants.LINE_WAVELENGTHS.items():
        assert SPECTRAL_LINES[name] == wavelength
    assert _in_line_table(lam for _, lam, _ in _constants.QSO_BROAD_LINES)
    assert _in_line_table(lam for lam, _ in _templates._BALMER_ABS)
    # the same line means the same number everywhere
    assert LINES["halpha"][0] == EMISSION_LINES[r"H$\alpha$"] == (SPECTRAL_LINES["Halpha"],)
    assert LINES["sii_6717_6731"][0] == EMISSION_LINES["[SII]"]


def test_line_table_is_in_vacuum():
    from sklearn_sfr.utils._survey import SPECTRAL_LINES, air_to_vacuum, line_wavelengths

    # SDSS spectra are in vacuum: H-alpha is 6564.61, not the air 6562.80
    assert SPECTRAL_LINES["Halpha"] == pytest.approx(float(air_to_vacuum(6562.80)), abs=0.01)
    assert line_wavelengths("OII_3727", "OII_3730") == (3727.092, 3729.875)
    with pytest.raises(KeyError, match="Hzeta"):
        line_wavelengths("Hzeta")
