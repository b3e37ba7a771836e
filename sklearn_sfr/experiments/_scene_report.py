"""Write the Scene study's report folder: tables (CSV), confusion matrices (PNG), Markdown.

The report is a :class:`~sklearn_sfr.experiments._render.Page`, rendered by the same templates
as the SFR study's report. It says where its data come from (the synthetic generator or the
release), sets the outline's and the paper's accuracies on the real release beside ours, and
says why the release's 9 scene classes are compared with the 8 of those sources.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils._io import atomic_open
from ..utils._outputs import OutputFolder, read_marker
from ._render import Page
from ._report import SMOKE_TEST_LABEL
from ._scene import REFERENCE_ACCURACY, SPLITS, scene_summary


def _write_atomic(path, write):
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it."""
    with atomic_open(path, "w", newline="") as fh:
        write(fh)
    return Path(path)


def _findings(summary):
    """Sentences on leakage and on fusion, computed from the summary (Markdown)."""
    out = []
    if "leak" in summary:
        leak = summary["leak"]
        worst = leak.idxmax()
        out.append(
            f"**Leakage**: the random split scores {leak.mean():+.3f} accuracy above the "
            f"blocked split on average (from {leak.min():+.3f} to {leak.max():+.3f}; largest "
            f"for {worst[0]} on {worst[1]})."
        )
    col = "accuracy blocked" if "accuracy blocked" in summary else "accuracy random"
    frame = summary.reset_index()
    family = (
        frame["model"]
        .str.split(" ")
        .str[0]
        .map({"decision": "decision tree", "MLP": "neural", "CNN": "neural", "fusion": "neural"})
    )
    both = frame["model"].str.endswith("(both)")
    for (fam, target), group in frame.groupby([family, "target"]):
        single = group[~both.loc[group.index]]
        fused = group[both.loc[group.index]]
        if single.empty or fused.empty:
            continue
        best_single = single.loc[single[col].idxmax()]
        best_fused = fused.loc[fused[col].idxmax()]
        out.append(
            f"**Fusion, {fam}, {target}** ({col.split()[-1]} split): best single modality "
            f"{best_single['model']} {best_single[col]:.3f}, best fused {best_fused['model']} "
            f"{best_fused[col]:.3f} ({best_fused[col] - best_single[col]:+.3f})."
        )
    return out


# -- framing: where the data come from and what the published numbers were measured on ------------
def is_synthetic_scene(data_dir):
    """Whether the Scene set in ``data_dir`` was written by
    :func:`~sklearn_sfr.datasets.make_synthetic_scene` (its folder marker says so; the real
    release has none).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_scene
    >>> from sklearn_sfr.experiments._scene_report import is_synthetic_scene
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     is_synthetic_scene(make_synthetic_scene(tmp + "/s", n_per_class=4, image_size=8))
    True
    """
    from ..datasets._scene_synthetic import SYNTHETIC_SCENE_KIND

    record = read_marker(data_dir)
    return record is not None and record.get("kind") == SYNTHETIC_SCENE_KIND


def _data_origin(data_dir):
    """A paragraph: synthetic or the release, and what that means for the published numbers."""
    if data_dir is None:
        return (
            "**Data origin not recorded** (no data folder given): whether these frames are "
            "synthetic or the Kaggle release is not known to this report."
        )
    if is_synthetic_scene(data_dir):
        return (
            f"**Synthetic data**: `{data_dir}` was written by `make_synthetic_scene` (a "
            "simulated set in the release's layout), not taken from the Kaggle release. The "
            "accuracies below measure the pipeline on simulated frames and sounds; the "
            "outline's and the paper's were measured on the real release, so they sit beside "
            "ours for orientation, not as a comparison of methods."
        )
    return (
        f"**Data**: `{data_dir}` was not written by `make_synthetic_scene`: taken to be the "
        "Kaggle release, the set the outline's and the paper's accuracies were measured on."
    )


def _classes_note(predictions):
    """A paragraph on the release's 9 CLASS2 strings against the 8 environments of the
    outline and the paper (``shared/docs/data-formats.md``, section 1.1)."""
    from ..datasets import SCENE_CLASSES

    ours = ""
    if predictions is not None and (predictions["target"] == "CLASS2").any():
        classes = np.unique(predictions.loc[predictions["target"] == "CLASS2", "y_true"])
        classes = [str(c) for c in classes]
        names = "all of them" if set(classes) == set(SCENE_CLASSES) else ", ".join(classes)
        ours = f" This run's CLASS2 task has {len(classes)} classes ({names})."
    return (
        f"**{len(SCENE_CLASSES)} classes against 8**: the outline (section 1.5) and the "
        "paper describe 8 environments, but the release's `dataset.csv` labels CLASS2 with "
        f"{len(SCENE_CLASSES)} strings ({', '.join(SCENE_CLASSES)}), and which of them the "
        "paper leaves out is not documented: on the release, CLASS2 has one class more than "
        "in the published results." + ours
    )


def _references():
    """A paragraph naming the published numbers the table sets beside ours."""
    paper = ", ".join(
        f"{modality if modality != 'both' else fusion + ' fusion'} {value:.2%}"
        for (source, _, modality, fusion, _), value in REFERENCE_ACCURACY.items()
        if source == "paper"
    )
    return (
        "`outline`: thesis section 1.5 (decision trees CLASS1/CLASS2, neural CLASS2). "
        f"`paper`: Bird et al. 2020, arXiv 2007.10175 ({paper}, 8 classes). Both were measured "
        "on the real release; their splits are not stated, so they compare with either of ours."
    )


def _smoke_test_banner(scores):
    # The frames a fold's training and test sets hold together: the subsample's size.
    sizes = scores.reindex(columns=["n_train", "n_test"]).sum(axis=1, min_count=2)
    frames = f" on {int(sizes.max())} frames" if sizes.notna().any() else ""
    return (
        "**Quick mode: a smoke test of the pipeline, not the study's answer**: tiny networks "
        f"trained for a few epochs{frames} (a subsample) check that every step runs. Each "
        f"finding below is labelled {SMOKE_TEST_LABEL}; run without --quick for the study's "
        "answers."
    )


# -- the report ---------------------------------------------------------------------------------
def write_scene_report(
    out,
    scores,
    predictions=None,
    *,
    description=None,
    data_dir=None,
    quick=False,
    overwrite=False,
):
    """Write ``scene_report.md``, the score tables and the confusion matrices into ``out``.

    The folder is built under a temporary name beside ``out`` and renamed when complete;
    an existing ``out`` is replaced only with ``overwrite`` and only if this library wrote
    it (and it holds nothing else).

    Parameters
    ----------
    out : path-like
        Report folder (created).
    scores : DataFrame
        What :func:`scene_study` returns.
    predictions : DataFrame, default=None
        Its out-of-fold predictions (``return_predictions=True``); they give one confusion
        matrix figure per target and split.
    description : str, default=None
        A paragraph about the data, put at the top of the report.
    data_dir : path-like, default=None
        The Scene set's folder: the report says whether it is synthetic (written by
        :func:`~sklearn_sfr.datasets.make_synthetic_scene`) or the release. None: the
        report says that the data's origin is not recorded.
    quick : bool, default=False
        The scores come from a quick run (``scene_study(quick=True)``): the findings open
        with a smoke-test banner and each is labelled as a smoke test.
    overwrite : bool, default=False
        Replace an earlier report folder of ours at ``out``.

    Returns
    -------
    paths : dict of str to pathlib.Path
        The written files by name (``report``, ``scores``, ``summary``, ``confusion_...``).

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from sklearn_sfr.experiments import write_scene_report
    >>> scores = pd.DataFrame({"model": "MLP (audio)", "family": "neural", "modality": "audio",
    ...     "fusion": "", "target": "CLASS2", "split": ["random", "blocked"], "fold": 0,
    ...     "accuracy": [0.9, 0.7], "f1_macro": [0.9, 0.6]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sorted(write_scene_report(tmp, scores))
    ['report', 'scores', 'summary']
    """
    out = Path(out)
    with OutputFolder(out, kind="scene", overwrite=overwrite) as tmp:
        paths = _write_files(tmp, scores, predictions, description, data_dir, quick)
    return {name: out / path.name for name, path in paths.items()}


def _confusion_figures(out, predictions):
    """One figure of confusion matrices per target and split: name -> path, and the
    (title, file name) of each for the report."""
    import matplotlib.pyplot as plt

    from ..plotting import plot_confusion_matrices, save_figure

    paths, figures = {}, []
    for target, by_target in predictions.groupby("target", sort=False):
        labels = np.unique(by_target["y_true"])
        for split in [s for s in SPLITS if s in set(by_target["split"])]:
            part = by_target[by_target["split"] == split]
            panels = {
                model: (g["y_true"].to_numpy(), g["y_pred"].to_numpy())
                for model, g in part.groupby("model", sort=False)
            }
            fig = plot_confusion_matrices(
                panels,
                labels=labels,
                title=f"{target}, {split} split: out-of-fold predictions (row-normalised)",
            )
            name = f"confusion_{target.lower()}_{split}"
            paths[name] = save_figure(fig, out / f"{name}.png", dpi=110)
            plt.close(fig)
            figures.append((f"{target}, {split} split", paths[name].name))
    return paths, figures


def _write_files(out, scores, predictions, description, data_dir, quick):
    summary = scene_summary(scores)
    paths = {
        "scores": _write_atomic(
            out / "scene_scores.csv", lambda fh: scores.to_csv(fh, index=False)
        ),
        "summary": _write_atomic(out / "scene_summary.csv", lambda fh: summary.to_csv(fh)),
    }
    figures = []
    if predictions is not None:
        written, figures = _confusion_figures(out, predictions)
        paths.update(written)
    n_folds = scores.groupby(["model", "target", "split"])["fold"].nunique().max()
    accuracy = summary.drop(columns=[c for c in summary if c.startswith("sd ")])
    findings = _findings(summary)

    page = Page("Scene study: images + MFCC audio")
    if description:
        page.text(description)
    page.text(
        f"{n_folds}-fold cross-validation under each split. *random*: stratified, shuffled "
        "k-fold (frames of one video land on both sides). *blocked*: each class's frame "
        "sequence cut into contiguous blocks, one held out per fold (no block straddles "
        "training and test)."
    )
    page.text(_data_origin(data_dir))
    page.text(_classes_note(predictions))
    page.heading("Accuracy beside the outline and the paper")
    page.text(_references())
    page.table(accuracy.reset_index())
    page.heading("Findings")
    if quick:
        page.note(_smoke_test_banner(scores))
        findings = [f"{SMOKE_TEST_LABEL} {line}" for line in findings]
    page.bullets(findings)
    page.heading("Files")
    page.bullets(
        [
            "`scene_scores.csv`: one row per model x target x split x fold (accuracy, "
            "balanced accuracy, macro F1, fit time)",
            "`scene_summary.csv`: the table above with standard deviations over folds",
            *[f"[{title}]({file}): confusion matrices" for title, file in figures],
        ]
    )
    paths["report"] = _write_atomic(out / "scene_report.md", lambda fh: fh.write(page.markdown()))
    return paths
