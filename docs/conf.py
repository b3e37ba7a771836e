"""Sphinx configuration of the sklearn-sfr documentation.

Intersphinx links scikit-learn, skorch, Optuna, astropy, NumPy, pandas, torch and Python
objects to their own documentation. Their inventories (``objects.inv``) are fetched when the
configuration is read and kept in ``_build/inventories``; the build must also work offline
(CI has no network), so an inventory that cannot be fetched is skipped, saying so in one line,
and nitpicky cross-reference checking ignores the third-party targets it would have resolved.
``SKLEARN_SFR_INTERSPHINX=0`` skips them without trying, ``SKLEARN_SFR_INTERSPHINX=1`` makes
a missing inventory an error (for a build that must have every link).
"""

import os
import sys
import warnings
from pathlib import Path

# Torch's OpenMP threads would fight sphinx-gallery's one process for the 2 CI cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The examples must render without a display.
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sklearn_sfr  # noqa: E402

project = "sklearn-sfr"
author = "sklearn-sfr developers"
copyright = "sklearn-sfr developers"
release = sklearn_sfr.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "sg_execution_times.rst"]
root_doc = "index"

# -- API reference --------------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Docstrings may name types in prose ("ndarray of shape (n, 5, S, S)"); do not turn every
# word of a type line into a cross-reference (that would make nitpicky unusable).
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# Cross-references that intersphinx resolves only when the inventories could be fetched
# (other projects' objects: offline, or missing from an inventory, they stay plain text) or
# that point at private helpers named in prose. Everything in sklearn_sfr's public API must
# resolve.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|np|scipy|pandas|pd|sklearn|skorch|torch|optuna|h5py|astropy|photutils"
        r"|matplotlib|imblearn|joblib|skimage|speclite)(\..*)?",
    ),
    (r"py:.*", r"sklearn_sfr\..*\._.*"),  # private modules named in docstrings
    (r"py:.*", r"(DataFrame|Bunch|SliceDict|Pipeline|Figure|Axes|ndarray|Study|Trial)"),
    (r"py:.*", r"(os|pathlib|typing|collections|tempfile)\..*"),  # the standard library
    (r"py:func", r"augment_images"),  # a private helper of sklearn_sfr.neural._modules
]

# -- Intersphinx: fetched when online, skipped (saying so) when offline ----------------------
#: Each project's documentation, whose ``objects.inv`` lists the objects to link to.
INTERSPHINX_URLS = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
    "sklearn": "https://scikit-learn.org/stable/",
    "skorch": "https://skorch.readthedocs.io/en/stable/",
    "optuna": "https://optuna.readthedocs.io/en/stable/",
    "astropy": "https://docs.astropy.org/en/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
}
#: Where fetched inventories are kept (``build.sh --clean`` removes them with the build).
INVENTORY_DIR = Path(__file__).resolve().parent / "_build" / "inventories"


def _fetch_inventory(name, url):
    """Download ``url``'s ``objects.inv`` into INVENTORY_DIR; return its path."""
    import requests
    import sphinx

    response = requests.get(
        url + "objects.inv",
        timeout=15,
        headers={"User-Agent": f"Sphinx/{sphinx.__version__} (sklearn-sfr docs; intersphinx)"},
    )
    response.raise_for_status()
    if not response.content.startswith(b"# Sphinx inventory version"):
        raise ValueError(f"{response.url} is not a Sphinx inventory")
    INVENTORY_DIR.mkdir(parents=True, exist_ok=True)
    path = INVENTORY_DIR / f"{name}.inv"
    partial = path.with_suffix(".inv.part")
    partial.write_bytes(response.content)
    partial.replace(path)
    return path


def _intersphinx_mapping(mode):
    """Intersphinx's mapping: each project's URL and a local copy of its inventory.

    The inventories are fetched here, in parallel, rather than by intersphinx, which would
    turn an unreachable one into a warning (an error under ``-W``). One that cannot be
    fetched is left out, or taken from an earlier build's copy, and one line says so.
    """
    if mode == "0":
        print(
            "intersphinx: SKLEARN_SFR_INTERSPHINX=0: links to "
            f"{', '.join(INTERSPHINX_URLS)} are skipped",
            flush=True,
        )
        return {}
    from concurrent.futures import ThreadPoolExecutor

    def attempt(item):
        try:
            return _fetch_inventory(*item)
        except Exception as exc:  # no network, a server down, a moved page
            return exc

    with ThreadPoolExecutor(len(INTERSPHINX_URLS)) as pool:
        results = dict(zip(INTERSPHINX_URLS, pool.map(attempt, INTERSPHINX_URLS.items())))
    errors = {name: r for name, r in results.items() if isinstance(r, Exception)}
    if errors and mode == "1":
        raise RuntimeError(
            "SKLEARN_SFR_INTERSPHINX=1 but intersphinx inventories could not be fetched: "
            + "; ".join(f"{n}: {e}" for n, e in errors.items())
        )
    mapping, saved, skipped = {}, [], []
    for name, url in INTERSPHINX_URLS.items():
        path = results[name]
        if name in errors:
            path = INVENTORY_DIR / f"{name}.inv"  # an earlier build's copy, if any
            if not path.is_file():
                skipped.append(name)
                continue
            saved.append(name)
        mapping[name] = (url, str(path))
    if errors:
        name, error = next(iter(errors.items()))
        status = getattr(getattr(error, "response", None), "status_code", None)
        reason = f"{INTERSPHINX_URLS[name]}objects.inv: {type(error).__name__}"
        reason += f" {status}" if status else ""
        if len(errors) == len(INTERSPHINX_URLS):
            what = f"offline ({reason})"
        else:
            what = f"cannot fetch the inventories of {', '.join(errors)} ({reason})"
        news = [f"links to {', '.join(skipped)} are skipped"] if skipped else []
        if saved:
            news.insert(0, f"an earlier build's copies of {', '.join(saved)} are used")
        print(f"intersphinx: {what}, {'; '.join(news)}", flush=True)
    return mapping


intersphinx_mapping = _intersphinx_mapping(os.environ.get("SKLEARN_SFR_INTERSPHINX", ""))

# -- Gallery --------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "abort_on_example_error": False,  # report every broken example, then fail the build
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib", "seaborn"),
    "show_memory": False,
    # "Gallery examples using X" on every API page.
    "doc_module": ("sklearn_sfr",),
    "backreferences_dir": "generated/backreferences",
    "plot_gallery": os.environ.get("SKLEARN_SFR_PLOT_GALLERY", "True"),
}

# Warnings from the examples' libraries are not documentation errors.
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-interactive.*")

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-sfr {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_show_sourcelink = False


# -- Module constants: their ``#:`` comments live in private modules -------------------------
def _constant_doc(app, what, name, obj, options, lines):
    """Give a re-exported constant the ``#:`` comment of the module that defines it.

    Autodoc looks for the comment in the public package's ``__init__``, which only imports
    the name, and would otherwise show the docstring of ``tuple`` or ``dict``.
    """
    if what != "data":
        return
    from sphinx.pycode import ModuleAnalyzer

    package, _, attr = name.rpartition(".")
    for modname in sorted(m for m in sys.modules if m.startswith(package + "._")):
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # compiled or source-less modules have no comments to read
            continue
        if ("", attr) in docs:
            lines[:] = [line for line in docs[("", attr)] if line is not None]
            return


def _skip_member(app, what, name, obj, skip, options):
    """Document a class's own and sklearn_sfr-inherited members, not those of its bases.

    The estimators inherit ``fit`` and ``predict`` from private sklearn_sfr base classes, so
    inherited members are on; what scikit-learn, skorch or torch define (``get_params``,
    ``set_output``, ``nn.Module.train``, the ``set_*_request`` methods) is theirs to document.
    """
    if what != "class":
        return None
    if name.startswith("set_") and name.endswith("_request"):
        return True
    target = getattr(obj, "fget", obj)  # a property's getter names its module
    module = getattr(target, "__module__", None) or ""
    if module and not module.startswith("sklearn_sfr"):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _constant_doc)
    app.connect("autodoc-skip-member", _skip_member)
