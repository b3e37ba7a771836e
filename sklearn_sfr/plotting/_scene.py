"""Confusion matrices of classifiers side by side (the Scene study's figures)."""

from __future__ import annotations

import numpy as np

from ._eda import _new_figure


def plot_confusion_matrices(
    predictions,
    *,
    labels=None,
    normalize="true",
    ncols=4,
    title=None,
    values_format=None,
):
    """One confusion-matrix panel per model, drawn with scikit-learn's ConfusionMatrixDisplay.

    Parameters
    ----------
    predictions : mapping of str to (y_true, y_pred)
        Panel title -> true and predicted labels (e.g. out-of-fold predictions of a model).
    labels : sequence, default=None
        Classes in display order; None: every label seen, sorted.
    normalize : {"true", "pred", "all"} or None, default="true"
        As in :func:`sklearn.metrics.confusion_matrix`; "true" gives each class's recall on
        the diagonal.
    ncols : int, default=4
        Panels per row.
    title : str, default=None
        Figure title.
    values_format : str, default=None
        Format of the cell values; None: percentages when normalised, else integers.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, one panel per model in the order of ``predictions``, row by row
        (``fig.axes`` also holds the grid's unused cells, hidden).

    Examples
    --------
    >>> from sklearn_sfr.plotting import plot_confusion_matrices
    >>> fig = plot_confusion_matrices(
    ...     {"tree": (["a", "b", "b"], ["a", "b", "a"]), "net": (["a", "b", "b"], ["a", "b", "b"])}
    ... )
    >>> len(fig.axes)
    2
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    if not predictions:
        raise ValueError("predictions is empty: nothing to plot")
    if labels is None:
        seen = [np.asarray(v) for pair in predictions.values() for v in pair]
        labels = np.unique(np.concatenate(seen))
    labels = list(labels)
    if values_format is None:
        values_format = ".0%" if normalize else "d"
    n = len(predictions)
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    side = 1.2 + 0.38 * len(labels)
    fig = _new_figure((side * ncols + 0.5, side * nrows + (0.4 if title else 0.0)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    # Long class names: short tick labels, the full names only once, on the first column.
    for k, (name, (y_true, y_pred)) in enumerate(predictions.items()):
        ax = axes[k]
        ConfusionMatrixDisplay.from_predictions(
            y_true,
            y_pred,
            labels=labels,
            normalize=normalize,
            values_format=values_format,
            ax=ax,
            colorbar=False,
            cmap="Blues",
            im_kw={"vmin": 0, "vmax": 1} if normalize else None,
            text_kw={"fontsize": 7 if len(labels) > 4 else 9},
        )
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        if k % ncols:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        if k < n - ncols:
            ax.set_xlabel("")
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig
