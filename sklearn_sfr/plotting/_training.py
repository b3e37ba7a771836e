"""Training curves: the loss per epoch of each trained network, to see whether it converged,
overfitted or stopped early.

As in :mod:`._eda`, matplotlib is imported inside the function, which returns the
:class:`~matplotlib.figure.Figure` and never calls ``plt.show``.
"""

from __future__ import annotations

import math

import numpy as np

from ._eda import _group_label, _new_figure
from ._results import _check_frame

__all__ = ["plot_training_curves"]

#: The columns that tell one fit of a model from another (folds, repeats), where present.
_FIT_COLUMNS = ("split", "fold", "repeat")

#: The ratio of the largest to the smallest loss from which ``logy="auto"`` uses a log axis.
_LOG_RATIO = 10.0


def _panels(history, model):
    """``(title, rows)`` per panel: one per model and training stage, in order of appearance
    (a pretraining stage gets its own panel: its loss is on another scale)."""
    stage = history.get("stage")
    keys = [history[model].map(_group_label)] + ([stage] if stage is not None else [])
    panels = []
    for key, rows in history.groupby(keys, sort=False):
        name, *rest = key if isinstance(key, tuple) else (key,)
        suffix = f" ({rest[0]})" if rest and rest[0] != "regression" else ""
        panels.append((f"{name}{suffix}", rows))
    return panels


def _fits(rows):
    """The rows of each fit of a panel (each fold and repeat), sorted by epoch."""
    columns = [c for c in _FIT_COLUMNS if c in rows]
    groups = rows.groupby(columns, sort=False) if columns else [(None, rows)]
    return [fit.sort_values("epoch") for _, fit in groups]


def _kept_epoch(fit):
    """The row of the epoch whose weights the net kept: the ``best`` column where the
    history has one, else the lowest validation loss, else the last epoch."""
    if "best" in fit and fit["best"].astype(bool).any():
        return fit[fit["best"].astype(bool)].iloc[-1]
    valid = fit["valid_loss"].to_numpy(dtype=float) if "valid_loss" in fit else None
    if valid is not None and np.isfinite(valid).any():
        return fit.iloc[int(np.nanargmin(valid))]
    return fit.iloc[-1]


def _use_log(history, logy):
    if logy != "auto":
        return bool(logy)
    columns = [c for c in ("train_loss", "valid_loss") if c in history]
    losses = history[columns].to_numpy(dtype=float)
    losses = losses[np.isfinite(losses)]
    return bool(losses.size and losses.min() > 0 and losses.max() / losses.min() > _LOG_RATIO)


def plot_training_curves(history, *, model="model", ncols=4, logy="auto", title=None):
    """Training and validation loss per epoch of each network, one panel per model.

    Each panel draws every fit of its model (the training repeats and cross-validation
    folds, thin lines when there are several), marks the epoch whose weights were kept
    (early stopping restores the lowest validation loss) and, where the history gives the
    cap, draws it as a dotted line and says in the title when a fit reached it: a curve
    still falling at the cap means the network was stopped before it converged.

    Parameters
    ----------
    history : DataFrame
        One row per epoch of each fit, with the columns ``model`` (see ``model``),
        ``epoch`` and ``train_loss``, and optionally ``valid_loss``, ``stage`` (a panel per
        stage; ``"regression"`` is not named), ``best`` (the kept epoch), ``max_epochs``
        (the cap) and ``split``, ``fold``, ``repeat`` (which fit), as the studies'
        ``history`` (:func:`~sklearn_sfr.experiments.evaluate_models`) gives them.
    model : str, default="model"
        The column naming the model of each panel.
    ncols : int, default=4
        Panels per row.
    logy : bool or "auto", default="auto"
        A log loss axis; ``"auto"`` uses one when every loss is positive and the largest is
        more than ten times the smallest.
    title : str, optional
        The figure's title.

    Returns
    -------
    fig : Figure
        One axes per model and stage, with a shared legend.

    Raises
    ------
    ValueError
        If ``history`` is not a DataFrame, has no rows, lacks a column (the message names
        it), a loss or epoch column is not numeric, or ``ncols`` is not a positive integer.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.plotting import plot_training_curves
    >>> history = pd.DataFrame({
    ...     "model": ["image"] * 4 + ["fusion"] * 4,
    ...     "epoch": [1, 2, 3, 4] * 2,
    ...     "train_loss": [1.0, 0.7, 0.6, 0.55, 0.9, 0.6, 0.5, 0.45],
    ...     "valid_loss": [0.9, 0.8, 0.82, 0.85, 0.8, 0.6, 0.5, 0.48],
    ...     "max_epochs": [10] * 4 + [4] * 4})
    >>> fig = plot_training_curves(history)
    >>> [ax.get_title().splitlines() for ax in fig.axes]
    [['image', 'kept epoch 2 of 4'], ['fusion', 'kept epoch 4 of 4, reached the cap']]
    """
    numeric = ["epoch", "train_loss"] + (["valid_loss"] if "valid_loss" in history else [])
    _check_frame(history, [model, *numeric], numeric=numeric)
    if isinstance(ncols, bool) or not isinstance(ncols, int | np.integer) or ncols < 1:
        raise ValueError(f"`ncols` must be a positive integer; got {ncols!r}")
    panels = _panels(history, model)
    ncols = min(int(ncols), len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure((3.6 * ncols, 2.6 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    log = _use_log(history, logy)
    for ax, (name, rows) in zip(axes, panels):
        _draw_panel(ax, name, _fits(rows), log)
    for ax in axes[len(panels) :]:
        ax.remove()  # the grid's unused places: fig.axes holds one axes per panel
    legend = {}  # each kind of line once, whichever panel has it
    for ax in axes[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=len(legend),
               frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    return fig


def _draw_panel(ax, name, fits, log):
    from matplotlib.ticker import MaxNLocator

    alpha = 1.0 if len(fits) == 1 else 0.5
    width = 1.5 if len(fits) == 1 else 1.0
    for i, fit in enumerate(fits):
        first = i == 0  # one legend entry per kind of line
        epochs = fit["epoch"].to_numpy(dtype=float)
        ax.plot(epochs, fit["train_loss"].to_numpy(dtype=float), color="C0", lw=width,
                alpha=alpha, label="training loss" if first else None)  # fmt: skip
        if "valid_loss" in fit and np.isfinite(fit["valid_loss"].to_numpy(dtype=float)).any():
            ax.plot(epochs, fit["valid_loss"].to_numpy(dtype=float), color="C1", lw=width,
                    alpha=alpha, label="validation loss" if first else None)  # fmt: skip
        kept = _kept_epoch(fit)
        loss = kept["valid_loss"] if "valid_loss" in fit else np.nan
        loss = kept["train_loss"] if not np.isfinite(loss) else loss
        ax.plot([kept["epoch"]], [loss], marker="*", ms=11, color="C3", ls="none", zorder=3,
                label="kept epoch" if first else None)  # fmt: skip
    last = max(int(fit["epoch"].max()) for fit in fits)
    caps = {int(fit["max_epochs"].iloc[0]) for fit in fits if "max_epochs" in fit}
    at_cap = sum(
        "max_epochs" in fit and fit["epoch"].max() >= fit["max_epochs"].iloc[0] for fit in fits
    )
    if caps:
        ax.axvline(max(caps), color="0.5", ls=":", lw=1, label="cap on epochs")
    if len(fits) == 1:
        text = f"kept epoch {int(_kept_epoch(fits[0])['epoch'])} of {last}"
        text += ", reached the cap" if at_cap else ""
    else:
        text = f"{len(fits)} fits, up to {last} epochs"
        text += f", {at_cap} reached the cap" if at_cap else ""
    ax.set_title(f"{name}\n{text}", fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
