"""The Scene study: does a second modality help, and how much do correlated frames flatter it?

Decision trees and neural networks classify Scene frames (indoors/outdoors, CLASS1, and the
scene, CLASS2) from MFCC audio, from the image, and from both, under two cross-validations:
a shuffled, stratified k-fold (``"random"``, the usual choice and the one that leaks, since a
test frame's neighbours in its video are in the training set) and a blocked k-fold
(``"blocked"``, every class's frame sequence cut into contiguous blocks held out whole, see
:class:`~sklearn_sfr.model_selection.BlockedFrameSplit`). Scores sit beside the study outline's
and the original paper's (Bird et al. 2020).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

#: Targets of the study and the Bunch attribute holding each.
TARGETS = {"CLASS1": "target_class1", "CLASS2": "target_class2"}

#: Cross-validation schemes.
SPLITS = ("random", "blocked")

#: Columns of the table :func:`scene_study` returns, in order.
SCENE_SCORE_COLUMNS = (
    "model",
    "family",
    "modality",
    "fusion",
    "target",
    "split",
    "fold",
    "n_train",
    "n_test",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "fit_time",
)

#: Published accuracies to compare with: (source, family, modality, fusion, target) -> value.
#: The outline (thesis section 1.5) gives no fusion strategy for its neural "combined" model,
#: so its 0.99 is set beside each of ours; the paper's fusion is late fusion of two networks.
REFERENCE_ACCURACY = {
    ("outline", "decision tree", "audio", "", "CLASS1"): 0.81,
    ("outline", "decision tree", "audio", "", "CLASS2"): 0.66,
    ("outline", "decision tree", "both", "", "CLASS1"): 0.97,
    ("outline", "decision tree", "both", "", "CLASS2"): 0.92,
    ("outline", "neural", "audio", "", "CLASS2"): 0.94,
    ("outline", "neural", "image", "", "CLASS2"): 0.99,
    ("outline", "neural", "both", "early", "CLASS2"): 0.99,
    ("outline", "neural", "both", "intermediate", "CLASS2"): 0.99,
    ("outline", "neural", "both", "late", "CLASS2"): 0.99,
    ("paper", "neural", "image", "", "CLASS2"): 0.8927,
    ("paper", "neural", "audio", "", "CLASS2"): 0.9372,
    ("paper", "neural", "both", "late", "CLASS2"): 0.9681,
}


def _neural_settings(quick):
    # Sized for two CPU cores: a full study of 8 models x 2 targets x 2 splits x 3 folds in
    # minutes. quick only checks that everything runs.
    if quick:
        return {"width": 4, "depth": 1, "embed_dim": 8, "max_epochs": 2, "patience": 2}
    return {"width": 8, "depth": 2, "embed_dim": 32, "max_epochs": 10, "patience": 3}


def scene_models(*, quick=False, random_state=0, device="auto"):
    """The study's classifiers, each a scikit-learn estimator taking the Scene SliceDict.

    Parameters
    ----------
    quick : bool, default=False
        Tiny networks trained for two epochs (a smoke test, not a result).
    random_state : int, default=0
        Seeds every model: the trees, the MLP and the neural networks.
    device : str, default="auto"
        Torch device of the neural networks.

    Returns
    -------
    models : dict of str to Bunch
        Model name -> ``Bunch(estimator, family, modality, fusion)``.

    Examples
    --------
    >>> from sklearn_sfr.experiments import scene_models
    >>> list(scene_models())[:3]
    ['decision tree (audio)', 'decision tree (image)', 'decision tree (both)']
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from ..features import ColourFeatures
    from ..neural import FusionClassifier
    from ..preprocessing import ModalitySelector

    def tree():
        return DecisionTreeClassifier(random_state=random_state)

    def audio():
        return make_pipeline(ModalitySelector("audio"), StandardScaler())

    def image():
        return make_pipeline(ModalitySelector("image"), ColourFeatures())

    net = {
        **_neural_settings(quick),
        "batch_size": 64,
        "random_state": random_state,
        "device": device,
    }
    mlp = MLPClassifier(
        hidden_layer_sizes=(16,) if quick else (128, 64),
        alpha=1e-3,
        early_stopping=True,
        max_iter=300,
        random_state=random_state,
    )
    models = {
        "decision tree (audio)": ("decision tree", "audio", "", make_pipeline(audio(), tree())),
        "decision tree (image)": ("decision tree", "image", "", make_pipeline(image(), tree())),
        "decision tree (both)": (
            "decision tree",
            "both",
            "",
            make_pipeline(FeatureUnion([("audio", audio()), ("image", image())]), tree()),
        ),
        "MLP (audio)": ("neural", "audio", "", make_pipeline(audio(), mlp)),
        "CNN (image)": ("neural", "image", "", FusionClassifier(sequence_key=None, **net)),
    }
    for fusion in ("early", "intermediate", "late"):
        models[f"fusion {fusion} (both)"] = (
            "neural",
            "both",
            fusion,
            FusionClassifier(fusion, sequence_key="audio", **net),
        )
    return {
        name: Bunch(family=family, modality=modality, fusion=fusion, estimator=estimator)
        for name, (family, modality, fusion, estimator) in models.items()
    }


def scene_splitter(split, n_splits=3, random_state=0):
    """The cross-validator of a split scheme (``"random"`` or ``"blocked"``).

    ``"random"``: :class:`~sklearn.model_selection.StratifiedKFold` with shuffling.
    ``"blocked"``: :class:`~sklearn_sfr.model_selection.BlockedFrameSplit`, to be given the
    CLASS2 labels as ``groups`` (each class's frames are one sequence, in video order).

    Parameters
    ----------
    split : {"random", "blocked"}
        The split scheme.
    n_splits : int, default=3
        Number of folds.
    random_state : int, default=0
        Seeds the shuffle of the ``"random"`` scheme; the ``"blocked"`` one has no
        randomness.

    Returns
    -------
    cv : StratifiedKFold or BlockedFrameSplit
        A new cross-validator with ``n_splits`` folds.

    Raises
    ------
    ValueError
        If ``split`` is not ``"random"`` or ``"blocked"``.

    Examples
    --------
    >>> from sklearn_sfr.experiments import scene_splitter
    >>> scene_splitter("random", n_splits=3)
    StratifiedKFold(n_splits=3, random_state=0, shuffle=True)
    >>> scene_splitter("blocked", n_splits=3)
    BlockedFrameSplit(gap=0, n_splits=3)
    """
    from sklearn.model_selection import StratifiedKFold

    from ..model_selection import BlockedFrameSplit

    if split == "random":
        return StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
    if split == "blocked":
        return BlockedFrameSplit(n_splits)
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _subsample(data, max_per_class):
    """Every k-th frame of each class, at most ``max_per_class``: videos kept in order."""
    classes = data.target_class2
    keep = []
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        step = max(1, int(np.ceil(len(rows) / max_per_class)))
        keep.append(rows[::step][:max_per_class])
    keep = np.sort(np.concatenate(keep))
    out = Bunch(**data)
    out.X = data.X[keep]
    for attr in TARGETS.values():
        out[attr] = data[attr][keep]
    out.frame = data.frame.iloc[keep].reset_index(drop=True)
    return out


def _check_choice(values, allowed, name):
    values = [values] if isinstance(values, str) else list(values)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {values}")
    return values


def scene_study(
    data,
    *,
    targets=("CLASS1", "CLASS2"),
    splits=SPLITS,
    models=None,
    n_splits=3,
    quick=False,
    max_per_class=None,
    image_size=32,
    random_state=0,
    device="auto",
    return_predictions=False,
    verbose=False,
):
    """Cross-validate every Scene classifier on each target under each split.

    Parameters
    ----------
    data : Bunch or path-like
        What :func:`~sklearn_sfr.datasets.load_scene` returns, or a dataset folder to load
        with ``image_size``.
    targets : sequence of {"CLASS1", "CLASS2"}, default=("CLASS1", "CLASS2")
        Labels to classify: indoors or outdoors (``CLASS1``), the scene (``CLASS2``); a
        single string is one target.
    splits : sequence of {"random", "blocked"}, default=("random", "blocked")
        Cross-validation schemes, see :func:`scene_splitter`; a single string is one scheme.
    models : sequence of str, default=None
        Names from :func:`scene_models`; None: all.
    n_splits : int, default=3
        Folds of each cross-validation.
    quick : bool, default=False
        Smoke-test settings: tiny networks, two epochs, at most 24 frames per class (unless
        ``max_per_class`` says otherwise).
    max_per_class : int, default=None
        Keep at most this many frames per class (every k-th frame, so all videos stay).
    image_size : int, default=32
        Frame size when ``data`` is a folder.
    random_state : int, default=0
        Seeds the models (:func:`scene_models`) and the shuffle of the ``"random"`` split.
    device : str, default="auto"
        Torch device of the neural networks.
    return_predictions : bool, default=False
        Also return the out-of-fold predictions.
    verbose : bool, default=False
        Print one line per model, target and split.

    Returns
    -------
    scores : DataFrame
        One row per model x target x split x fold, columns :data:`SCENE_SCORE_COLUMNS`: ``model``,
        ``family`` ("decision tree" / "neural"), ``modality`` ("audio" / "image" / "both"),
        ``fusion`` ("" or early / intermediate / late), ``target``, ``split``, ``fold``,
        ``n_train``, ``n_test``, ``accuracy``, ``balanced_accuracy``, ``f1_macro`` and
        ``fit_time`` (seconds).
    predictions : DataFrame
        If ``return_predictions``: ``model``, ``target``, ``split``, ``row`` (index into the
        data), ``y_true``, ``y_pred``, one row per test prediction.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_sfr.datasets import load_scene, make_synthetic_scene
    >>> from sklearn_sfr.experiments import scene_study
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     data = load_scene(make_synthetic_scene(tmp + "/s", n_per_class=6, image_size=16), 8)
    >>> scores = scene_study(data, models=["decision tree (audio)"], targets="CLASS2",
    ...                      n_splits=2, quick=True)
    >>> scores[["model", "split", "fold"]].values.tolist()[:2]
    [['decision tree (audio)', 'random', 0], ['decision tree (audio)', 'random', 1]]
    """
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from ..datasets import load_scene

    targets = _check_choice(targets, TARGETS, "targets")
    splits = _check_choice(splits, SPLITS, "splits")
    available = scene_models(quick=quick, random_state=random_state, device=device)
    names = _check_choice(list(available) if models is None else models, available, "models")
    if not isinstance(data, Bunch):
        data = load_scene(data, image_size=image_size)
    if max_per_class is None and quick:
        max_per_class = 24
    if max_per_class is not None:
        data = _subsample(data, int(max_per_class))
    # Each class's frames, in video order, are one sequence for the blocked split.
    sequences = data.target_class2
    rows, predicted = [], []
    for split in splits:
        for target in targets:
            y = np.asarray(data[TARGETS[target]])
            cv = scene_splitter(split, n_splits, random_state)
            groups = sequences if split == "blocked" else None
            folds = list(cv.split(np.zeros(len(y)), y, groups=groups))
            for name in names:
                spec = available[name]
                t_model = time.perf_counter()
                for k, (train, test) in enumerate(folds):
                    t0 = time.perf_counter()
                    model = clone(spec.estimator).fit(data.X[train], y[train])
                    fit_time = time.perf_counter() - t0
                    y_pred = model.predict(data.X[test])
                    rows.append(
                        {
                            "model": name,
                            "family": spec.family,
                            "modality": spec.modality,
                            "fusion": spec.fusion,
                            "target": target,
                            "split": split,
                            "fold": k,
                            "n_train": len(train),
                            "n_test": len(test),
                            "accuracy": accuracy_score(y[test], y_pred),
                            "balanced_accuracy": balanced_accuracy_score(y[test], y_pred),
                            "f1_macro": f1_score(y[test], y_pred, average="macro"),
                            "fit_time": fit_time,
                        }
                    )
                    if return_predictions:
                        predicted.append(
                            pd.DataFrame(
                                {
                                    "model": name,
                                    "target": target,
                                    "split": split,
                                    "row": test,
                                    "y_true": y[test],
                                    "y_pred": y_pred,
                                }
                            )
                        )
                if verbose:
                    acc = np.mean([r["accuracy"] for r in rows[-len(folds) :]])
                    print(
                        f"{split:8s} {target}  {name:28s} accuracy {acc:.3f}  "
                        f"({time.perf_counter() - t_model:.0f} s)",
                        flush=True,
                    )
    scores = pd.DataFrame(rows, columns=list(SCENE_SCORE_COLUMNS))
    if return_predictions:
        return scores, pd.concat(predicted, ignore_index=True)
    return scores


def scene_summary(scores):
    """Mean accuracy per model and target under each split, beside the published numbers.

    Parameters
    ----------
    scores : DataFrame
        What :func:`scene_study` returns.

    Returns
    -------
    summary : DataFrame
        One row per model x target: ``accuracy random`` and ``accuracy blocked`` (mean over
        folds, with ``sd``), ``leak`` (random minus blocked), ``f1_macro blocked`` where the
        blocked split was run, then ``outline`` and ``paper`` (NaN where they report
        nothing).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.experiments import scene_summary
    >>> scores = pd.DataFrame({"model": "MLP (audio)", "family": "neural", "modality": "audio",
    ...     "fusion": "", "target": "CLASS2", "split": ["random", "blocked"], "fold": 0,
    ...     "accuracy": [0.9, 0.7], "f1_macro": [0.9, 0.6]})
    >>> scene_summary(scores)[["accuracy random", "accuracy blocked", "leak", "paper"]]
    ...     # doctest: +NORMALIZE_WHITESPACE
                        accuracy random  accuracy blocked  leak   paper
    model       target
    MLP (audio) CLASS2              0.9               0.7   0.2  0.9372
    """
    keys = ["model", "target"]
    grouped = scores.groupby([*keys, "split"], sort=False)
    mean = grouped[["accuracy", "f1_macro"]].mean().unstack("split")
    sd = grouped["accuracy"].std().unstack("split")
    table = pd.DataFrame(index=mean.index)
    for split in [s for s in SPLITS if s in scores["split"].unique()]:
        table[f"accuracy {split}"] = mean[("accuracy", split)]
        table[f"sd {split}"] = sd[split]
    if {"random", "blocked"} <= set(scores["split"]):
        table["leak"] = table["accuracy random"] - table["accuracy blocked"]
    if "blocked" in set(scores["split"]):
        table["f1_macro blocked"] = mean[("f1_macro", "blocked")]
    specs = scores.drop_duplicates(keys).set_index(keys)[["family", "modality", "fusion"]]
    for source in ("outline", "paper"):
        table[source] = [
            REFERENCE_ACCURACY.get((source, *specs.loc[(m, t)].tolist(), t), np.nan)
            for m, t in table.index
        ]
    return table
