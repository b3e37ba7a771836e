"""Sphinx configuration of the sklearn-sfr documentation.

The build must work offline (CI has no network): intersphinx is only switched on when
``SKLEARN_SFR_INTERSPHINX=1`` is set, and nitpicky cross-reference checking ignores the
third-party targets it would have resolved.
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

# Cross-references that cannot resolve offline (other projects' objects) or that point at
# private helpers named in prose. Everything inside sklearn_sfr's public API must resolve.
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

# -- Intersphinx: opt-in only, CI builds offline --------------------------------------------
if os.environ.get("SKLEARN_SFR_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
        "optuna": ("https://optuna.readthedocs.io/en/stable/", None),
    }

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
