"""Write the Scene study's report folder: tables (CSV), confusion matrices (PNG), Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils._io import atomic_open
from ..utils._outputs import OutputFolder
from ._report import markdown_table
from ._scene import SPLITS, scene_summary


def _write_atomic(path, write):
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it."""
    with atomic_open(path, "w", newline="") as fh:
        write(fh)
    return Path(path)


def _findings(summary):
    """Sentences on leakage and on fusion, computed from the summary."""
    out = []
    if "leak" in summary:
        leak = summary["leak"]
        worst = leak.idxmax()
        out.append(
            f"- **Leakage**: the random split scores {leak.mean():+.3f} accuracy above the "
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
            f"- **Fusion, {fam}, {target}** ({col.split()[-1]} split): best single modality "
            f"{best_single['model']} {best_single[col]:.3f}, best fused {best_fused['model']} "
            f"{best_fused[col]:.3f} ({best_fused[col] - best_single[col]:+.3f})."
        )
    return out


def write_scene_report(out, scores, predictions=None, *, description=None, overwrite=False):
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
        paths = _write_files(tmp, scores, predictions, description)
    return {name: out / path.name for name, path in paths.items()}


def _write_files(out, scores, predictions, description):
    from ..plotting import plot_confusion_matrices, save_figure

    summary = scene_summary(scores)
    paths = {
        "scores": _write_atomic(
            out / "scene_scores.csv", lambda fh: scores.to_csv(fh, index=False)
        ),
        "summary": _write_atomic(out / "scene_summary.csv", lambda fh: summary.to_csv(fh)),
    }
    figures = []
    if predictions is not None:
        import matplotlib.pyplot as plt

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
    n_folds = scores.groupby(["model", "target", "split"])["fold"].nunique().max()
    accuracy = summary.drop(columns=[c for c in summary if c.startswith("sd ")])
    lines = [
        "# Scene study: images + MFCC audio",
        "",
        *([description, ""] if description else []),
        f"{n_folds}-fold cross-validation under each split. *random*: stratified, shuffled "
        "k-fold (frames of one video land on both sides). *blocked*: each class's frame "
        "sequence cut into contiguous blocks, one held out per fold (no block straddles "
        "training and test).",
        "",
        "## Accuracy beside the outline and the paper",
        "",
        "`outline`: thesis section 1.5 (decision trees CLASS1/CLASS2, neural CLASS2). "
        "`paper`: Bird et al. 2020 (image 89.27 %, audio 93.72 %, late fusion 96.81 %, 8 "
        "classes). Their splits are not stated, so they compare with either of ours.",
        "",
        markdown_table(accuracy.reset_index()),
        "",
        "## Findings",
        "",
        *_findings(summary),
        "",
        "## Files",
        "",
        "- `scene_scores.csv`: one row per model x target x split x fold (accuracy, balanced "
        "accuracy, macro F1, fit time)",
        "- `scene_summary.csv`: the table above with standard deviations over folds",
        *[f"- [{title}]({file}): confusion matrices" for title, file in figures],
        "",
    ]
    paths["report"] = _write_atomic(out / "scene_report.md", lambda fh: fh.write("\n".join(lines)))
    return paths
