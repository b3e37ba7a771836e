"""The named models of the study: one fresh scikit-learn Pipeline per name, on the SliceDict X.

Every pipeline reads the SliceDict that :func:`~sklearn_sfr.datasets.load_hisscube` returns,
at any image zoom and spectral level (image size and spectrum length are learnt in ``fit``), and
ends in a step called ``"model"``, so that ``model__max_depth`` or ``model__lr`` address the
regressor of any of them. The search spaces of :func:`default_search_space` use those names.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Decision trees stop at leaves of this many objects unless told otherwise: smaller leaves
#: memorise the label noise (see the cube's noise floor).
_TREE_MIN_SAMPLES_LEAF = 20


@dataclass(frozen=True)
class _Spec:
    build: object  # callable() -> list of (name, estimator) steps
    modalities: tuple  # the SliceDict keys (load_hisscube modalities) the model reads
    kind: str  # "tree" or "neural": which search space family applies
    description: str


def _tree():
    from sklearn.tree import DecisionTreeRegressor

    return ("model", DecisionTreeRegressor(min_samples_leaf=_TREE_MIN_SAMPLES_LEAF))


def _neural(cls_name):
    def build():
        from .. import neural as neural_estimators  # imports torch: only when built

        return [("model", getattr(neural_estimators, cls_name)())]

    return build


def _tree_spectrum():
    from ..preprocessing import ModalitySelector, SpectrumRebin

    return [("select", ModalitySelector("spectrum")), ("rebin", SpectrumRebin(2)), _tree()]


def _tree_lines():
    from ..features import SpectralLineFeatures

    return [("lines", SpectralLineFeatures()), _tree()]


def _tree_photometry():
    from ..features import PhotometryFeatures

    return [("photometry", PhotometryFeatures()), _tree()]


def _tree_pixels():
    from ..preprocessing import FlattenBands

    return [("flatten", FlattenBands()), _tree()]


_SPECS = {
    "image": _Spec(_neural("ImageRegressor"), ("image",), "neural", "CNN on the ugriz cutouts"),
    "spectrum": _Spec(_neural("SpectrumRegressor"), ("spectrum",), "neural", "1-D CNN on spectra"),
    "fusion": _Spec(
        _neural("FusionRegressor"),
        ("image", "spectrum"),
        "neural",
        "image and spectrum CNNs fused (fusion= early, intermediate, late, cross_attention)",
    ),
    "contrastive": _Spec(
        _neural("ContrastiveRegressor"),
        ("image", "spectrum"),
        "neural",
        "CLIP-style contrastive pretraining of both encoders, then a regression head",
    ),
    "tree-spectrum": _Spec(
        _tree_spectrum, ("spectrum",), "tree", "decision tree on the rebinned spectra"
    ),
    "tree-lines": _Spec(
        _tree_lines, ("spectrum",), "tree", "decision tree on emission-line features"
    ),
    "tree-photometry": _Spec(
        _tree_photometry, ("image",), "tree", "decision tree on photometry features"
    ),
    "tree-pixels": _Spec(
        _tree_pixels, ("image",), "tree", "decision tree on the flattened cutout pixels"
    ),
}

#: Names accepted by :func:`make_model` and :func:`default_search_space`.
MODEL_NAMES = tuple(_SPECS)


def model_spec(name):
    if name not in _SPECS:
        raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _SPECS[name]


def model_modalities(name):
    """The modalities (``load_hisscube`` ``modalities=``) that the model ``name`` reads.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.

    Returns
    -------
    tuple of str
        ``("image",)``, ``("spectrum",)`` or ``("image", "spectrum")``: what to load for
        the model, e.g. ``load_hisscube(path, modalities=model_modalities(name))``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`MODEL_NAMES`.

    Examples
    --------
    >>> from sklearn_sfr.experiments import model_modalities
    >>> model_modalities("tree-lines"), model_modalities("fusion")
    (('spectrum',), ('image', 'spectrum'))
    """
    return model_spec(name).modalities


def make_model(name, *, random_state=0, **params):
    """A fresh, unfitted Pipeline for one of the study's named models.

    ===================  ==========================================================
    name                 steps
    ===================  ==========================================================
    ``image``            ``model``: :class:`~sklearn_sfr.neural.ImageRegressor`
    ``spectrum``         ``model``: :class:`~sklearn_sfr.neural.SpectrumRegressor`
    ``fusion``           ``model``: :class:`~sklearn_sfr.neural.FusionRegressor`
    ``contrastive``      ``model``: :class:`~sklearn_sfr.neural.ContrastiveRegressor`
    ``tree-spectrum``    ``select`` (ModalitySelector("spectrum")), ``rebin``
                         (SpectrumRebin(2)), ``model`` (DecisionTreeRegressor)
    ``tree-lines``       ``lines`` (SpectralLineFeatures), ``model``
    ``tree-photometry``  ``photometry`` (PhotometryFeatures), ``model``
    ``tree-pixels``      ``flatten`` (FlattenBands), ``model``
    ===================  ==========================================================

    The trees start with ``min_samples_leaf=20``; every other parameter is the estimator's
    default. The pipelines take ``load_hisscube(...).X`` at any zoom and level (the neural
    networks learn the input shapes in ``fit``).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    random_state : int, RandomState or None, default=0
        Set on every step that has a ``random_state``.
    **params
        Parameters of the pipeline. A name with ``__`` is a pipeline parameter as it stands
        (``rebin__factor=4``); a plain name is a parameter of the final ``model`` step
        (``fusion="late"``, ``max_epochs=5``, ``max_depth=8``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        The model's steps as in the table above, with ``random_state`` and ``params`` set.

    Raises
    ------
    ValueError
        If ``name`` is unknown or the pipeline has no parameter named in ``params``.

    Examples
    --------
    >>> from sklearn_sfr.experiments import make_model
    >>> pipe = make_model("tree-spectrum", rebin__factor=4, max_depth=6)
    >>> [name for name, _ in pipe.steps]
    ['select', 'rebin', 'model']
    >>> pipe.get_params()["model__max_depth"], pipe.get_params()["rebin__factor"]
    (6, 4)
    """
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(model_spec(name).build())
    seeds = {k: random_state for k in pipeline.get_params() if k.endswith("__random_state")}
    updates = {(k if "__" in k else f"model__{k}"): v for k, v in params.items()}
    unknown = sorted(set(updates) - set(pipeline.get_params()))
    if unknown:
        raise ValueError(
            f"model {name!r} has no parameter(s) {', '.join(unknown)}; its parameters: "
            f"{', '.join(sorted(k for k in pipeline.get_params() if '__' in k))}"
        )
    return pipeline.set_params(**seeds, **updates)


def default_search_space(name):
    """Optuna distributions to tune the model ``name`` over, keyed by pipeline parameter.

    Trees: ``model__max_depth`` (2-20), ``model__min_samples_leaf`` (1-100, log) and, for
    ``tree-spectrum``, ``rebin__factor`` (1, 2, 4, 8). Neural networks: ``model__lr``
    (1e-4 to 1e-2, log), ``model__weight_decay`` (1e-6 to 1e-2, log), ``model__width``,
    ``model__depth`` (2-4), ``model__embed_dim``, ``model__dropout`` (0-0.5) and
    ``model__batch_size``; ``fusion`` adds ``model__fusion`` (the four strategies) and
    ``contrastive`` adds ``model__projection_dim`` and ``model__finetune``.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.

    Returns
    -------
    dict of str to optuna.distributions.BaseDistribution
        A new dict on every call (safe to edit).

    Examples
    --------
    >>> from sklearn_sfr.experiments import default_search_space
    >>> sorted(default_search_space("tree-spectrum"))
    ['model__max_depth', 'model__min_samples_leaf', 'rebin__factor']
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    spec = model_spec(name)
    if spec.kind == "tree":
        space = {
            "model__max_depth": IntDistribution(2, 20),
            "model__min_samples_leaf": IntDistribution(1, 100, log=True),
        }
        if name == "tree-spectrum":
            space["rebin__factor"] = CategoricalDistribution([1, 2, 4, 8])
        return space
    space = {
        "model__lr": FloatDistribution(1e-4, 1e-2, log=True),
        "model__weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
        "model__width": CategoricalDistribution([8, 16, 32, 64]),
        # Encoders stop pooling once a map is 2 px wide, so any depth fits any cutout size.
        "model__depth": IntDistribution(2, 4),
        "model__embed_dim": CategoricalDistribution([32, 64, 128]),
        "model__dropout": FloatDistribution(0.0, 0.5),
        "model__batch_size": CategoricalDistribution([32, 64, 128, 256]),
    }
    if name == "fusion":
        from ..neural import FUSIONS  # imports torch: only when this space is asked for

        space["model__fusion"] = CategoricalDistribution(list(FUSIONS))
    if name == "contrastive":
        space["model__projection_dim"] = CategoricalDistribution([32, 64, 128])
        space["model__finetune"] = CategoricalDistribution(["probe", "full"])
    return space


# TEMPORARY alias while callers move to model_spec.
_spec = model_spec
