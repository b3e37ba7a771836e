"""Result figures: predictions against truth, residuals, resolution trade-off, model
comparison and Optuna studies.

As in :mod:`._eda`, matplotlib (and scikit-learn, optuna) are imported inside the functions,
every function returns the :class:`~matplotlib.figure.Figure` and none calls ``plt.show``.
The tables these functions read are the tidy DataFrames of :mod:`sklearn_sfr.experiments`:
one row per model x fold or per configuration; rows repeated for one model or configuration
(folds) are averaged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from ._eda import _as_float_array, _group_label, _new_figure

__all__ = [
    "SFR_LABEL",
    "plot_model_comparison",
    "plot_optuna_history",
    "plot_param_importances",
    "plot_pareto",
    "plot_predicted_vs_true",
    "plot_residuals",
    "plot_resolution_heatmap",
]

#: Axis label of the target.
SFR_LABEL = r"log SFR [M$_\odot$/yr]"

#: Axis labels (with units) of the columns the experiments write.
_COLUMN_LABELS = {
    "rmse": "RMSE [dex]",
    "mae": "MAE [dex]",
    "bias": "bias [dex]",
    "nmad": "NMAD [dex]",
    "r2": "R$^2$",
    "outlier_fraction": "outlier fraction",
    "fit_time": "fit time [s]",
    "predict_time": "predict time [s]",
    "score_time": "score time [s]",
    "peak_memory_mb": "peak memory [MB]",
    "image_size": "image size [px]",
    "spectrum_length": "spectrum length [pixels]",
}

#: Scores for which a greater value is better; every other column is a loss or a cost.
_GREATER_IS_BETTER = ("r2", "test_r2", "train_r2")


def _column_label(column):
    return _COLUMN_LABELS.get(str(column), str(column))


def _greater_is_better(column):
    column = str(column)
    return column in _GREATER_IS_BETTER or column.startswith(("neg_", "test_neg_", "train_neg_"))


def _check_noise_floor(noise_floor):
    if noise_floor is None:
        return None
    try:
        value = float(noise_floor)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`noise_floor` must be a number; got {noise_floor!r}") from exc
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`noise_floor` must be positive and finite; got {noise_floor!r}")
    return value


def _draw_noise_floor(ax, noise_floor, vertical=False):
    """The noise floor as every results plot draws it: a dashed line labelled with its value
    (horizontal over an RMSE axis, ``vertical`` over a horizontal one); nothing for None."""
    if noise_floor is None:
        return
    line = ax.axvline if vertical else ax.axhline
    line(noise_floor, color="black", ls="--", lw=1.0, label=f"noise floor ({noise_floor:.3f})")


def _check_frame(frame, columns, numeric=()):
    """``frame`` as a DataFrame holding ``columns``; those in ``numeric`` must be numeric."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`frame` must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"`frame` has no column {', '.join(map(repr, missing))}; "
            f"its columns are {list(map(str, frame.columns))}"
        )
    if frame.empty:
        raise ValueError("`frame` has no rows")
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(
                f"column {column!r} of `frame` must be numeric; got dtype {frame[column].dtype}"
            )
    return frame


def _axes(ax, figsize):
    """``(fig, ax)``: the given axes and its figure, or a new figure with one axes."""
    if ax is None:
        fig = _new_figure(figsize)
        return fig, fig.add_subplot()
    return ax.figure, ax


def _format_value(value):
    """Few significant digits, fixed point: 0.312, 4.21, 38.5, 1204."""
    if not np.isfinite(value):
        return "–"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _message_figure(ax, message, figsize=(6.0, 3.0)):
    """A figure that says why there is nothing to draw, instead of an empty plot or a crash."""
    fig, ax = _axes(ax, figsize)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()
    return fig.figure


# --------------------------------------------------------------------------------------------
# predicted vs true, residuals


def _check_predictions(y_true, y_pred):
    # the metrics' own checks: 1-D, same length, NaN or infinity named
    from ..metrics._regression import check_targets

    y_true, y_pred, _ = check_targets(y_true, y_pred)
    return y_true, y_pred


def _gaussian_outside(threshold, sigma):
    """Fraction of a zero-mean Gaussian of width ``sigma`` beyond ``±threshold``."""
    return math.erfc(threshold / (sigma * math.sqrt(2.0)))


def _outlier_lines(y_true, y_pred, threshold, label_noise):
    """The outlier fraction, its cut stated against the label noise (when known), and, when
    more than half the points are outliers, why."""
    from ..metrics import outlier_fraction, rmse

    fraction = outlier_fraction(y_true, y_pred, threshold=threshold)
    cut = f"|Δ| > {threshold:g} dex"
    if label_noise is not None:
        cut += f" = {threshold / label_noise:.2f} × label noise"
    lines = [f"outliers ({cut}) = {fraction:.1%}"]
    if fraction > 0.5:
        if label_noise is not None and threshold < label_noise:
            # a perfect model of the true value still misses a noisy label by the noise
            lines.append(
                f"more than half: the cut is below the label noise ({label_noise:.2f} dex):\n"
                "even a perfect model would have "
                f"≈{_gaussian_outside(threshold, label_noise):.0%} outliers (Gaussian noise)"
            )
        else:
            scatter = rmse(y_true, y_pred)
            lines.append(
                f"more than half: the cut is small against the RMSE ({scatter:.2f} dex):\n"
                "Gaussian residuals of that RMSE give "
                f"≈{_gaussian_outside(threshold, scatter):.0%}"
            )
    return lines


def _metrics_text(y_true, y_pred, noise_floor, threshold):
    """The metrics box: ``noise_floor`` (the label noise) is the floor of the RMSE against
    the labels; None for a panel against the noise-free values, which has no floor."""
    from ..metrics import bias, nmad, rmse

    rmse_value = rmse(y_true, y_pred)
    lines = [f"n = {y_true.size}", f"RMSE = {rmse_value:.3f} dex"]
    if noise_floor is not None:
        lines.append(f"  = {rmse_value / noise_floor:.2f} × noise floor ({noise_floor:.3f})")
    lines += [
        f"bias = {bias(y_true, y_pred):+.3f} dex",
        f"NMAD = {nmad(y_true, y_pred):.3f} dex",
        *_outlier_lines(y_true, y_pred, threshold, noise_floor),
    ]
    return "\n".join(lines)


def _prediction_panel(ax, x, y_pred, *, limits, threshold, kind, text, xlabel, ylabel):
    """One predicted-against-reference panel: the outlier band, the points (or hexagonal
    bins), the 1:1 line, the axis labels and the metrics ``text``."""
    lo, hi = limits
    line = np.array([lo, hi])
    ax.fill_between(
        line,
        line - threshold,
        line + threshold,
        color="0.5",
        alpha=0.18,
        lw=0,
        label=f"±{threshold:g} dex",
    )
    if kind == "hexbin":
        cells = ax.hexbin(
            x, y_pred, gridsize=50, mincnt=1, bins="log", cmap="viridis", extent=(lo, hi, lo, hi)
        )
        ax.figure.colorbar(cells, ax=ax, label="objects per cell", shrink=0.8)
    else:
        outlier = np.abs(y_pred - x) > threshold
        size = float(np.clip(2000.0 / x.size, 3.0, 20.0))
        ax.scatter(
            x[~outlier], y_pred[~outlier], s=size, alpha=0.6, color="C0", lw=0, label="objects"
        )
        if outlier.any():
            ax.scatter(
                x[outlier], y_pred[outlier], s=size, alpha=0.8, color="C3", lw=0, label="outliers"
            )
    ax.plot(line, line, color="black", lw=1.0, ls="--", label="1:1")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.text(
        0.03,
        0.97,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )
    ax.legend(loc="lower right", fontsize="small")


def _prediction_axes(ax, n_panels):
    """The axes to draw into: a new figure, or the caller's axes (a pair for two panels)."""
    if ax is None:
        fig = _new_figure((5.6 * n_panels, 5.4))
        return list(fig.subplots(1, n_panels, squeeze=False)[0])
    axes = [ax] if n_panels == 1 else list(ax) if isinstance(ax, (list, tuple)) else None
    if axes is None or len(axes) != n_panels:
        raise ValueError(
            f"`ax` must be {'an Axes' if n_panels == 1 else 'a pair of Axes'} for "
            f"{n_panels} panel(s) (y_noise_free adds the second); got {ax!r}"
        )
    return axes


def plot_predicted_vs_true(
    y_true,
    y_pred,
    *,
    ax=None,
    noise_floor=None,
    threshold=0.3,
    title=None,
    kind="auto",
    label=SFR_LABEL,
    reference=None,
    y_noise_free=None,
):
    """Predicted against true values with the 1:1 line, the outlier band and the metrics.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        The values the model was trained and scored on: noise-free truths, or catalogue
        labels (the MPA-JHU log SFR, noisy by about the noise floor).
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    ax : Axes, or a pair of Axes with ``y_noise_free``, optional
        Draw into these axes; default a new figure.
    noise_floor : float, optional
        The label noise [dex], the RMSE no model can beat against the labels (a cube's
        ``noise_floor``). The annotation then gives the RMSE as a multiple of it and the
        outlier cut relative to it, and the reference axis says how noisy the labels are.
    threshold : float, default=0.3
        Half width of the shaded band around the 1:1 line; points outside it are the
        outliers of :func:`sklearn_sfr.metrics.outlier_fraction` (drawn in red with
        ``kind="scatter"``). When more than half the points are outliers the annotation
        says why (a cut below the label noise or the scatter).
    title : str, optional
        Axes title (the figure's title with two panels).
    kind : {"auto", "scatter", "hexbin"}, default="auto"
        Points, or hexagonal bins of counts (readable for many objects); ``"auto"`` bins
        above 2000 samples.
    label : str, default=SFR_LABEL
        Quantity and unit of the axes, prefixed with ``reference`` and "predicted".
    reference : str, optional
        What ``y_true`` is, named on its axis, e.g. ``"MPA-JHU label"``; default ``"true"``,
        or ``"label"`` when ``y_noise_free`` is given.
    y_noise_free : array-like of shape (n_samples,), optional
        The noise-free values behind the labels (a synthetic cube's ``true_log_sfr``): adds
        a second panel of the predictions against them, where the label noise no longer
        limits the RMSE.

    Returns
    -------
    fig : Figure
        The figure of the axes.

    Raises
    ------
    ValueError
        If the inputs are not 1-D of one length, contain NaN, or a parameter is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_predicted_vs_true
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(0.0, 1.0, size=300)
    >>> fig = plot_predicted_vs_true(y, y + rng.normal(0.0, 0.2, size=300), noise_floor=0.15)
    >>> len(fig.axes)
    1
    >>> label = y + rng.normal(0.0, 0.4, size=300)
    >>> fig = plot_predicted_vs_true(label, y, noise_floor=0.4, reference="MPA-JHU label",
    ...                              y_noise_free=y)
    >>> [ax.get_xlabel().split(" log")[0] for ax in fig.axes]
    ['MPA-JHU label', 'true (noise-free)']
    """
    from ..metrics._regression import check_threshold

    y_true, y_pred = _check_predictions(y_true, y_pred)
    if y_noise_free is not None:
        y_noise_free = _as_float_array(y_noise_free, "y_noise_free")
        if y_noise_free.shape != y_pred.shape:
            raise ValueError(
                f"`y_noise_free` must have one value per prediction, shape {y_pred.shape}; "
                f"got shape {y_noise_free.shape}"
            )
        if not np.isfinite(y_noise_free).all():
            raise ValueError("`y_noise_free` contains NaN or infinity")
    threshold = check_threshold(threshold)
    noise_floor = _check_noise_floor(noise_floor)
    if kind not in ("auto", "scatter", "hexbin"):
        raise ValueError(f"`kind` must be 'auto', 'scatter' or 'hexbin'; got {kind!r}")
    if kind == "auto":
        kind = "hexbin" if y_true.size > 2000 else "scatter"
    if reference is None:
        reference = "true" if y_noise_free is None else "label"
    elif not isinstance(reference, str) or not reference:
        raise ValueError(f"`reference` must be a non-empty string; got {reference!r}")

    references = [y_true] if y_noise_free is None else [y_true, y_noise_free]
    axes = _prediction_axes(ax, len(references))
    both = np.concatenate([*references, y_pred])
    lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    limits = (lo - pad, hi + pad)  # shared, so the panels compare at a glance

    xlabel = f"{reference} {label}"
    if noise_floor is not None and reference != "true":
        xlabel += f"\n(label noise {noise_floor:.2f} dex)"
    _prediction_panel(
        axes[0],
        y_true,
        y_pred,
        limits=limits,
        threshold=threshold,
        kind=kind,
        text=_metrics_text(y_true, y_pred, noise_floor, threshold),
        xlabel=xlabel,
        ylabel=f"predicted {label}",
    )
    if y_noise_free is None:
        if title is not None:
            axes[0].set_title(title)
        return axes[0].figure.figure
    _prediction_panel(
        axes[1],
        y_noise_free,
        y_pred,
        limits=limits,
        threshold=threshold,
        kind=kind,
        text=_metrics_text(y_noise_free, y_pred, None, threshold),
        xlabel=f"true (noise-free) {label}",
        ylabel=f"predicted {label}",
    )
    axes[0].set_title(f"against the {reference}", fontsize="medium")
    axes[1].set_title("against the true value", fontsize="medium")
    if title is not None:
        axes[0].figure.suptitle(title)
    return axes[0].figure.figure


def _running_percentiles(x, y, n_bins, min_count=5):
    """Per bin of ``x`` (equal counts): median x, and the 16th, 50th, 84th percentiles of y."""
    n_bins = max(1, min(int(n_bins), x.size // min_count))
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:  # one distinct value
        return np.array([np.median(x)]), np.percentile(y, [16, 50, 84])[:, None]
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    centres, stats = [], []
    for b in range(edges.size - 1):
        members = which == b
        if members.sum() >= min(min_count, x.size):
            centres.append(np.median(x[members]))
            stats.append(np.percentile(y[members], [16, 50, 84]))
    return np.array(centres), np.array(stats).T


def plot_residuals(
    y_true,
    y_pred,
    covariates,
    *,
    n_bins=10,
    threshold=0.3,
    logx="auto",
    fig=None,
):
    """Plot the residuals ``y_pred - y_true`` against each covariate, with running percentiles.

    One panel per covariate, sharing the residual axis: the points, their running median and
    16th to 84th percentile band in bins of equal counts, the zero line and the ``threshold``
    lines of the outlier fraction.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True values.
    y_pred : array-like of shape (n_samples,)
        Predicted values.
    covariates : dict of str to array-like of shape (n_samples,), or DataFrame
        Name (with unit, it becomes the axis label) -> values, e.g.
        ``{"redshift": z, "log stellar mass [M$_\\odot$]": mass}``. Non-finite values are
        left out of their panel (its title says how many).
    n_bins : int, default=10
        Number of bins of the running percentiles (fewer when a bin would hold fewer than 5
        objects).
    threshold : float, default=0.3
        Outlier threshold, drawn as dotted lines at ``±threshold``.
    logx : bool or "auto", default="auto"
        Logarithmic covariate axes; ``"auto"`` for a covariate whose values are positive and
        span more than a factor of 30 (redshifts of galaxies and quasars together, where a
        linear axis squeezes the galaxies into a sliver).
    fig : Figure or SubFigure, optional
        Draw into this (empty) figure; default a new one.

    Returns
    -------
    fig : Figure
        The figure; ``fig.axes`` holds one axes per covariate.

    Raises
    ------
    ValueError
        If the targets are invalid, ``covariates`` is empty, or a covariate is not numeric
        or has another length (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_residuals
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=200)
    >>> z = rng.uniform(0.02, 0.2, size=200)
    >>> fig = plot_residuals(y, y + rng.normal(0, 0.2, 200), {"redshift": z})
    >>> len(fig.axes)
    1
    """
    from ..metrics._regression import check_threshold

    y_true, y_pred = _check_predictions(y_true, y_pred)
    threshold = check_threshold(threshold)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive integer; got {n_bins!r}")
    if not isinstance(covariates, Mapping) and not hasattr(covariates, "items"):
        raise ValueError(
            "`covariates` must be a dict (or DataFrame) of name -> values; "
            f"got {type(covariates).__name__}"
        )
    checked = {}
    for name, values in covariates.items():
        values = _as_float_array(values, f"covariates[{name!r}]")
        if values.ndim != 1 or values.shape[0] != y_true.shape[0]:
            raise ValueError(
                f"covariate {name!r} must be 1-D with one value per sample ({y_true.shape[0]}); "
                f"got shape {values.shape}"
            )
        checked[str(name)] = values
    if not checked:
        raise ValueError("`covariates` is empty: give at least one, e.g. {'redshift': z}")
    if logx not in (True, False, "auto"):
        raise ValueError(f"`logx` must be True, False or 'auto'; got {logx!r}")

    residual = y_pred - y_true
    if fig is None:
        fig = _new_figure((0.4 + 4.2 * len(checked), 3.8))
    axes = fig.subplots(1, len(checked), sharey=True, squeeze=False)[0]
    size = float(np.clip(2000.0 / residual.size, 2.0, 12.0))
    for ax, (name, x) in zip(axes, checked.items()):
        keep = np.isfinite(x)
        xs, rs = x[keep], residual[keep]
        ax.axhline(0.0, color="black", lw=0.8)
        for sign in (-1, 1):
            ax.axhline(sign * threshold, color="0.4", lw=0.8, ls=":")
        ax.scatter(xs, rs, s=size, color="0.55", alpha=0.35, lw=0, rasterized=True)
        if xs.size:
            centres, (p16, p50, p84) = _running_percentiles(xs, rs, n_bins)
            ax.fill_between(centres, p16, p84, color="C0", alpha=0.3, lw=0, label="16–84%")
            ax.plot(centres, p50, color="C0", lw=2.0, marker="o", ms=3, label="median")
        ax.set_xlabel(name)
        positive = xs.size > 0 and xs.min() > 0
        if logx is True or (logx == "auto" and positive and xs.max() > 30 * xs.min()):
            if not positive:
                raise ValueError(f"logx=True needs positive values of covariate {name!r}")
            ax.set_xscale("log")
        dropped = int((~keep).sum())
        if dropped:
            ax.set_title(f"{dropped} non-finite {name} left out", fontsize="small")
    axes[0].set_ylabel("residual (predicted − true) [dex]")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="upper right", fontsize="small")
    # outliers can stretch the axis far beyond the bulk: show the bulk and the threshold lines
    if residual.size:
        lo, hi = np.percentile(residual, [0.5, 99.5])
        lo, hi = min(lo, -threshold), max(hi, threshold)
        pad = 0.1 * (hi - lo)
        axes[0].set_ylim(lo - pad, hi + pad)
    return fig.figure


# --------------------------------------------------------------------------------------------
# resolution trade-off


def _mean_by(frame, keys, values):
    """Mean of ``values`` per combination of ``keys`` (e.g. over folds), keys as columns."""
    return frame.groupby(list(keys), sort=True, dropna=False)[list(values)].mean().reset_index()


def _check_intervals(intervals, values):
    """``intervals`` as a dict value column -> (low column, high column), for those shown."""
    if intervals is None:
        return {}
    if not isinstance(intervals, Mapping):
        raise ValueError(
            "`intervals` must be a dict of value column -> (low column, high column), e.g. "
            f"{{'rmse': ('rmse_low', 'rmse_high')}}; got {type(intervals).__name__}"
        )
    checked = {}
    for column, bounds in intervals.items():
        if column not in values:
            raise ValueError(f"`intervals` names {column!r}, which is not shown ({values})")
        if isinstance(bounds, str) or len(bounds) != 2:
            raise ValueError(
                f"`intervals[{column!r}]` must be a pair (low column, high column); got {bounds!r}"
            )
        checked[column] = tuple(bounds)
    return checked


def _check_min_span(min_span, values):
    """``min_span`` as a dict value column -> span (columns without one: none)."""
    if min_span is None:
        return {}
    spans = min_span if isinstance(min_span, Mapping) else dict.fromkeys(values, min_span)
    for column, span in spans.items():
        if column not in values:
            raise ValueError(f"`min_span` names {column!r}, which is not shown ({values})")
        if (
            isinstance(span, bool)
            or not isinstance(span, (int, float, np.integer, np.floating))
            or not (np.isfinite(span) and span > 0)
        ):
            raise ValueError(
                f"`min_span` must be a positive number (or a dict of them); got {span!r} "
                f"for {column!r}"
            )
    return {column: float(span) for column, span in spans.items()}


def _colour_limits(grid, greater_is_better, widest=None, min_span=None):
    """``(vmin, vmax, why)``: colour limits starting at the best cell, at least as wide as the
    widest interval and ``min_span``, so that a spread smaller than the uncertainty does not
    take the whole colour range; ``why`` says what set the width (None: the values' range)."""
    finite = grid[np.isfinite(grid)]
    if finite.size == 0:
        return None, None, None
    spread = float(finite.max() - finite.min())
    span, why = spread, None
    if widest is not None and np.isfinite(widest) and widest > span:
        span, why = float(widest), f"widest 95 % interval ({_format_value(widest)})"
    if min_span is not None and min_span > span:
        span, why = float(min_span), f"min_span, {_format_value(min_span)}"
    if span == 0:
        return None, None, None  # one value: matplotlib's own limits
    if greater_is_better:
        return float(finite.max()) - span, float(finite.max()), why
    return float(finite.min()), float(finite.min()) + span, why


def _pivot(table, image_size, spectrum_length, column, rows, cols):
    return (
        table.pivot(index=image_size, columns=spectrum_length, values=column)
        .reindex(index=rows, columns=cols)
        .to_numpy(dtype=float)
    )


def _cell_text(value, bounds):
    if bounds is None or not np.isfinite(bounds).all():
        return _format_value(value)
    return f"{_format_value(value)}\n[{_format_value(bounds[0])}, {_format_value(bounds[1])}]"


def plot_resolution_heatmap(
    frame,
    *,
    value="rmse",
    image_size="image_size",
    spectrum_length="spectrum_length",
    noise_floor=None,
    cmap="viridis",
    intervals=None,
    min_span=None,
    fig=None,
):
    """Annotated heatmap of a metric over image size x spectrum length.

    Parameters
    ----------
    frame : DataFrame
        One row per (image size, spectrum length) pair, or several (folds), which are
        averaged; e.g. the table of :func:`sklearn_sfr.experiments.resolution_study`.
    value : str or sequence of str, default="rmse"
        Column(s) to show, one panel each (e.g. ``["rmse", "fit_time", "peak_memory_mb"]``).
        The best cell of each panel (lowest; highest for ``r2`` and ``neg_`` scores) is
        outlined.
    image_size, spectrum_length : str
        Columns of the rows and columns of the heatmap.
    noise_floor : float, optional
        Noted in the title of an ``rmse`` panel.
    cmap : str or Colormap, default="viridis"
        Colour map; missing pairs are left grey.
    intervals : dict of str to (str, str), optional
        Value column -> columns of the lower and upper bounds of each cell's 95 % interval,
        e.g. ``{"rmse": ("rmse_low", "rmse_high")}`` for a study's summary table. Each cell
        of that panel then reads ``value [low, high]``, and its colour scale is at least as
        wide as the widest interval: cells whose difference is within the uncertainty look
        alike instead of spanning the whole colour map.
    min_span : float or dict of str to float, optional
        Smallest width of the colour scale, in the value's units (one for every panel, or
        per value column), e.g. a fraction of the label noise for ``rmse``.
    fig : Figure or SubFigure, optional
        Draw into this (empty) figure; default a new one.

    Returns
    -------
    fig : Figure
        The figure; ``fig.axes`` starts with one heatmap axes per value (colour bars follow).
        Each colour scale starts at the best cell; its bar's label says when it was widened
        beyond the values' range (by ``intervals`` or ``min_span``).

    Raises
    ------
    ValueError
        If ``frame`` is not a DataFrame, has no rows, lacks a column (the message names it),
        a value or bound column is not numeric, or ``intervals`` or ``min_span`` is invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.plotting import plot_resolution_heatmap
    >>> frame = pd.DataFrame({"image_size": [8, 8, 64, 64], "spectrum_length": [577, 4620] * 2,
    ...                       "rmse": [0.6, 0.5, 0.45, 0.4]})
    >>> fig = plot_resolution_heatmap(frame)
    >>> fig.axes[0].get_title()
    'RMSE [dex]'
    >>> frame["rmse_low"], frame["rmse_high"] = frame["rmse"] - 0.1, frame["rmse"] + 0.12
    >>> fig = plot_resolution_heatmap(frame, intervals={"rmse": ("rmse_low", "rmse_high")})
    >>> fig.axes[0].texts[0].get_text()
    '0.600\\n[0.500, 0.720]'
    >>> [round(v, 2) for v in fig.axes[0].images[0].get_clim()]
    [0.4, 0.62]
    """
    values = [value] if isinstance(value, str) else list(value)
    if not values:
        raise ValueError("`value` names no column")
    intervals = _check_intervals(intervals, values)
    min_span = _check_min_span(min_span, values)
    bound_columns = [c for bounds in intervals.values() for c in bounds]
    _check_frame(
        frame,
        [image_size, spectrum_length, *values, *bound_columns],
        numeric=[*values, *bound_columns],
    )
    noise_floor = _check_noise_floor(noise_floor)
    table = _mean_by(
        frame, [image_size, spectrum_length], list(dict.fromkeys(values + bound_columns))
    )
    rows = np.sort(table[image_size].unique())
    cols = np.sort(table[spectrum_length].unique())

    import matplotlib as mpl

    cmap = (mpl.colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(bad="0.85")
    if fig is None:
        height = 1.6 + (1.0 if intervals else 0.75) * rows.size
        fig = _new_figure((0.8 + 4.6 * len(values), height))
    axes = fig.subplots(1, len(values), squeeze=False)[0]
    for ax, column in zip(axes, values):
        grid = _pivot(table, image_size, spectrum_length, column, rows, cols)
        bounds, widest = None, None
        if column in intervals:
            bounds = np.stack(
                [
                    _pivot(table, image_size, spectrum_length, c, rows, cols)
                    for c in intervals[column]
                ],
                axis=-1,
            )
            widths = bounds[..., 1] - bounds[..., 0]
            widest = float(np.nanmax(widths)) if np.isfinite(widths).any() else None
        vmin, vmax, why = _colour_limits(
            grid, _greater_is_better(column), widest, min_span.get(column)
        )
        image = ax.imshow(grid, origin="lower", cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
        bar = fig.colorbar(image, ax=ax, shrink=0.9)
        if why is None:
            bar.set_label(_column_label(column))
        else:  # widened beyond the values' range: say by what
            bar.set_label(f"{_column_label(column)}\ncolour range = {why}", fontsize="small")
        norm, colours = image.norm, image.cmap
        for i, j in np.ndindex(grid.shape):
            v = grid[i, j]
            if np.isfinite(v):
                r, g, b, _ = colours(norm(v))
                ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            else:
                ink = "0.3"
            text = _cell_text(v, None if bounds is None else bounds[i, j])
            ax.text(j, i, text, ha="center", va="center", color=ink, fontsize="small")
        if np.isfinite(grid).any():
            flat = np.nanargmax(grid) if _greater_is_better(column) else np.nanargmin(grid)
            i, j = np.unravel_index(flat, grid.shape)
            ax.add_patch(
                mpl.patches.Rectangle(
                    (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C3", lw=2.5, clip_on=False
                )
            )
        ax.set_xticks(np.arange(cols.size), [_group_label(c) for c in cols])
        ax.set_yticks(np.arange(rows.size), [_group_label(r) for r in rows])
        ax.set_xlabel(_column_label(spectrum_length))
        ax.set_ylabel(_column_label(image_size))
        title = _column_label(column)
        if column in intervals:
            title += ", 95 % interval"
        if noise_floor is not None and column == "rmse":
            title += f" (noise floor {noise_floor:.3f})"
        ax.set_title(title)
    return fig.figure


def _pareto_mask(cost, value, greater_is_better=False):
    """True for the points no other point beats on both ``cost`` (lower) and ``value``."""
    score = -value if greater_is_better else value
    order = np.lexsort((score, cost))  # by cost, ties by score
    on_front = np.zeros(cost.size, dtype=bool)
    best = np.inf
    for k in order:
        if score[k] < best:
            on_front[k] = True
            best = score[k]
    return on_front


def _densify(path, step):
    """Points every ``step`` (display units) along a polyline given by its vertices."""
    out = [path[:1]]
    for a, b in pairwise(path):
        n = max(1, int(np.hypot(*(b - a)) / step))
        out.append(a + (b - a) * np.linspace(0.0, 1.0, n + 1)[1:, None])
    return np.concatenate(out)


#: Where a point's label may go: direction of the offset, and the matching alignment.
_LABEL_SLOTS = (
    (1, 1, "left", "bottom"),
    (1, -1, "left", "top"),
    (-1, 1, "right", "bottom"),
    (-1, -1, "right", "top"),
    (1, 0, "left", "center"),
    (-1, 0, "right", "center"),
    (0, 1, "center", "bottom"),
    (0, -1, "center", "top"),
)


def _place_labels(ax, annotations, points, line, pad_pt=4.0, marker_pt=4.0):
    """Move each point's label to the slot around it that collides least.

    Greedy: every label, in turn, takes the slot whose box overlaps the fewest labels
    already placed, other points, the legend, the drawn ``line`` and the axes edge.
    Positions are measured after a layout pass, so labels of near points do not overlap.
    """
    fig = ax.figure.figure
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pad, radius = pad_pt * px_per_pt, marker_pt * px_per_pt
    centres = ax.transData.transform(points)
    line_px = _densify(ax.transData.transform(line), 2.0) if len(line) else np.empty((0, 2))
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    legend_box = None if legend is None else legend.get_window_extent(renderer)

    def inside(xy, box, margin=0.0):
        x0, y0, x1, y1 = box
        return (
            (xy[:, 0] > x0 - margin)
            & (xy[:, 0] < x1 + margin)
            & (xy[:, 1] > y0 - margin)
            & (xy[:, 1] < y1 + margin)
        )

    def overlaps(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    placed = []
    for k, (annotation, (px, py)) in enumerate(zip(annotations, centres)):
        extent = annotation.get_window_extent(renderer)
        w, h = extent.width, extent.height
        others = np.delete(centres, k, axis=0)
        best = None
        for dx, dy, ha, va in _LABEL_SLOTS:
            x0 = px + dx * pad - {"left": 0.0, "center": w / 2, "right": w}[ha]
            y0 = py + dy * pad - {"bottom": 0.0, "center": h / 2, "top": h}[va]
            box = (x0, y0, x0 + w, y0 + h)
            cost = 10 * sum(overlaps(box, other) for other in placed)
            cost += 5 * int(inside(others, box, radius).sum())
            cost += 3 * bool(inside(line_px, box).any())
            if legend_box is not None:
                cost += 10 * overlaps(box, legend_box.extents)
            cost += 20 * (
                not (
                    x0 >= frame.x0 and y0 >= frame.y0 and x0 + w <= frame.x1 and y0 + h <= frame.y1
                )
            )
            if best is None or cost < best[0]:
                best = (cost, dx, dy, ha, va, box)
        _, dx, dy, ha, va, box = best
        annotation.xyann = (dx * pad_pt, dy * pad_pt)
        annotation.set_horizontalalignment(ha)
        annotation.set_verticalalignment(va)
        placed.append(box)


def plot_pareto(
    frame,
    *,
    cost="fit_time",
    value="rmse",
    label_columns=("image_size", "spectrum_length"),
    noise_floor=None,
    logx="auto",
    ax=None,
):
    """Accuracy against cost, one point per configuration, with the Pareto front drawn.

    A configuration is on the front when no other one is both cheaper and more accurate:
    those are the only ones worth their cost.

    Parameters
    ----------
    frame : DataFrame
        One row per configuration, or several (folds), which are averaged per combination of
        ``label_columns``.
    cost : str, default="fit_time"
        Column of the cost (lower is better), e.g. ``fit_time``, ``predict_time``,
        ``peak_memory_mb``.
    value : str, default="rmse"
        Column of the accuracy (lower is better; higher for ``r2`` and ``neg_`` scores).
    label_columns : sequence of str, default=("image_size", "spectrum_length")
        Columns that identify a configuration; each point is labelled with their values
        joined by "/". Empty: every row is a point, unlabelled.
    noise_floor : float, optional
        Drawn as a dashed horizontal line.
    logx : bool or "auto", default="auto"
        Logarithmic cost axis; ``"auto"`` when the costs are positive and span more than a
        factor of 20.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes.

    Raises
    ------
    ValueError
        If ``frame`` is not a DataFrame, has no rows, lacks a column (the message names it)
        or ``cost`` or ``value`` is not numeric.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.plotting import plot_pareto
    >>> frame = pd.DataFrame({"image_size": [8, 16, 32], "spectrum_length": [577] * 3,
    ...                       "rmse": [0.5, 0.42, 0.45], "fit_time": [1.0, 3.0, 9.0]})
    >>> fig = plot_pareto(frame)
    >>> fig.axes[0].get_xlabel()
    'fit time [s]'
    """
    if label_columns is None:
        label_columns = []
    elif isinstance(label_columns, str):
        label_columns = [label_columns]
    else:
        label_columns = list(label_columns)
    _check_frame(frame, [cost, value, *label_columns], numeric=[cost, value])
    noise_floor = _check_noise_floor(noise_floor)
    if label_columns:
        table = _mean_by(frame, label_columns, [cost, value])
        labels = [
            "/".join(_group_label(v) for v in row)
            for row in table[label_columns].itertuples(index=False)
        ]
    else:
        table = frame[[cost, value]].reset_index(drop=True)
        labels = None
    costs = table[cost].to_numpy(dtype=float)
    values = table[value].to_numpy(dtype=float)
    keep = np.isfinite(costs) & np.isfinite(values)
    if not keep.any():
        raise ValueError(f"no row of `frame` has finite {cost!r} and {value!r}")
    costs, values = costs[keep], values[keep]
    if labels is not None:
        labels = [label for label, k in zip(labels, keep) if k]
    front = _pareto_mask(costs, values, _greater_is_better(value))

    fig, ax = _axes(ax, (7.0, 5.0))
    if logx == "auto":
        logx = bool(costs.min() > 0 and costs.max() / costs.min() > 20)
    if logx:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        # 2, 5, 10, 20, 50 rather than 2x10^0: readable for costs spanning a decade or two
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.scatter(costs[~front], values[~front], color="0.55", s=30, zorder=2, label="dominated")
    ax.scatter(costs[front], values[front], color="C3", s=45, zorder=3, label="Pareto front")
    order = np.argsort(costs[front])
    ax.plot(
        costs[front][order],
        values[front][order],
        color="C3",
        lw=1.2,
        drawstyle="steps-post",
        zorder=1,
    )
    _draw_noise_floor(ax, noise_floor)
    ax.set_xlabel(_column_label(cost))
    ax.set_ylabel(_column_label(value))
    ax.margins(x=0.08, y=0.1)
    ax.legend(fontsize="small", loc="best")
    if labels is not None:
        ax.set_title(
            f"labels: {' / '.join(_column_label(c) for c in label_columns)}", fontsize="small"
        )
        annotations = [
            ax.annotate(
                text,
                (x, y),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize="x-small",
                color="C3" if best else "0.3",
            )
            for x, y, text, best in zip(costs, values, labels, front)
        ]
        step_x = np.repeat(costs[front][order], 2)[1:]
        step_y = np.repeat(values[front][order], 2)[:-1]
        _place_labels(
            ax, annotations, np.column_stack([costs, values]), np.column_stack([step_x, step_y])
        )
    return fig.figure


# --------------------------------------------------------------------------------------------
# model comparison


def plot_model_comparison(
    frame, *, model="model", value="rmse", noise_floor=None, interval=None, ax=None
):
    """A metric of each model with its spread or interval, one row per model, best first.

    The error bar is the standard deviation across folds or, with ``interval``, each
    model's confidence interval.

    Parameters
    ----------
    frame : DataFrame
        One row per model x fold (e.g. the tables of :mod:`sklearn_sfr.experiments`).
    model : str, default="model"
        Column naming the model.
    value : str, default="rmse"
        Column of the metric; models are sorted by its mean, best (lowest; highest for ``r2``
        and ``neg_`` scores) at the top.
    noise_floor : float, optional
        Drawn as a dashed vertical line.
    interval : tuple of (str, str), optional
        Columns of the lower and upper bounds of each model's 95 % interval (e.g.
        ``("rmse_low", "rmse_high")`` of a study's summary): drawn as the error bars, and
        written ``value [low, high]``, instead of the spread across folds.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes. Each model shows its folds (small grey dots), its mean and
        error bar (the sample standard deviation across folds, none for a single fold; or
        its ``interval``) and the text ``mean ± std`` (or ``mean [low, high]``).

    Raises
    ------
    ValueError
        If ``frame`` is not a DataFrame, has no rows, lacks a column (the message names it)
        or ``value`` is not numeric.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.plotting import plot_model_comparison
    >>> frame = pd.DataFrame({"model": ["image", "image", "fusion", "fusion"],
    ...                       "fold": [0, 1, 0, 1], "rmse": [0.52, 0.55, 0.41, 0.44]})
    >>> fig = plot_model_comparison(frame, noise_floor=0.3)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['fusion', 'image']
    """
    _check_frame(frame, [model, value], numeric=[value])
    noise_floor = _check_noise_floor(noise_floor)
    names = frame[model].map(_group_label)
    grouped = frame[value].astype(float).groupby(names, sort=False)
    stats = grouped.agg(["mean", "std", "count"])
    stats = stats.sort_values("mean", ascending=not _greater_is_better(value))

    fig, ax = _axes(ax, (7.0, 1.3 + 0.5 * len(stats)))
    positions = np.arange(len(stats))
    # Not grouped.get_group: pandas 3 cannot find the group of a one-row frame.
    by_name = {name: group.to_numpy() for name, group in grouped}
    for y, name in zip(positions, stats.index):
        folds = by_name[name]
        jitter = np.linspace(-0.12, 0.12, folds.size) if folds.size > 1 else np.zeros(1)
        ax.scatter(folds, y + jitter, s=12, color="0.6", zorder=2, lw=0)
    bounds = None
    if interval is not None:
        _check_frame(frame, list(interval), numeric=list(interval))
        bounds = frame[list(interval)].astype(float).groupby(names, sort=False).mean()
        bounds = bounds.loc[stats.index].to_numpy()
        if not np.isfinite(bounds).all():
            bounds = None  # an interval could not be computed: fall back to the spread
    if bounds is not None:
        xerr = np.vstack([stats["mean"] - bounds[:, 0], bounds[:, 1] - stats["mean"]])
        label = "score and its 95 % interval"
    else:
        xerr = stats["std"].fillna(0.0)
        # One score per model (a test split) has no spread to show: say what the dot is.
        label = "mean ± std over folds" if (stats["count"] > 1).any() else "score"
    ax.errorbar(
        stats["mean"],
        positions,
        xerr=np.clip(xerr, 0.0, None),
        fmt="o",
        color="C0",
        ecolor="C0",
        capsize=4,
        ms=7,
        zorder=3,
        label=label,
    )
    for k, (y, (mean, std)) in enumerate(zip(positions, stats[["mean", "std"]].to_numpy())):
        if bounds is not None:
            text = f"{mean:.3f} [{bounds[k, 0]:.3f}, {bounds[k, 1]:.3f}]"
        else:
            text = _format_value(mean) if not np.isfinite(std) else f"{mean:.3f} ± {std:.3f}"
        ax.annotate(
            text,
            (mean, y),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize="x-small",
        )
    _draw_noise_floor(ax, noise_floor, vertical=True)
    ax.set_yticks(positions, list(stats.index))
    ax.set_ylim(len(stats) - 0.4, -0.6)  # best at the top
    ax.set_xlabel(_column_label(value))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig.figure


# --------------------------------------------------------------------------------------------
# Optuna


def _complete_trials(study):
    try:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        directions = study.directions
    except AttributeError as exc:
        raise ValueError(f"`study` must be an optuna Study; got {type(study).__name__}") from exc
    if len(directions) != 1:
        raise ValueError(
            f"study {study.study_name!r} has {len(directions)} objectives; these plots need a "
            "single-objective study"
        )
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials"
    return complete, summary


def _too_few(study, complete, what, ax):
    n = len(complete)
    return _message_figure(
        ax,
        f"study {study.study_name!r} has {n} complete trial{'s' * (n != 1)}:\n{what} at least 2",
    )


#: Readable names of optuna's importance evaluators.
_EVALUATOR_NAMES = {
    "FanovaImportanceEvaluator": "fANOVA",
    "MeanDecreaseImpurityImportanceEvaluator": "mean decrease in impurity",
    "PedAnovaImportanceEvaluator": "PED-ANOVA",
}


def plot_optuna_history(study, *, target_name="objective value", ax=None):
    """Objective value of every complete trial and the best value so far.

    Parameters
    ----------
    study : optuna.study.Study
        A single-objective study (running, finished or loaded from storage).
    target_name : str, default="objective value"
        Label of the value axis, e.g. ``"RMSE [dex]"``.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes. A study with fewer than 2 complete trials gives a figure that
        says so instead of a plot.

    Raises
    ------
    ValueError
        If ``study`` is not an optuna Study or has several objectives.

    Examples
    --------
    >>> import optuna
    >>> from sklearn_sfr.plotting import plot_optuna_history
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=10)
    >>> fig = plot_optuna_history(study)
    >>> fig.axes[0].get_xlabel()
    'trial'
    """
    complete, summary = _complete_trials(study)
    if len(complete) < 2:
        return _too_few(study, complete, "an optimisation history needs", ax)
    from optuna.study import StudyDirection

    numbers = np.array([t.number for t in complete])
    values = np.array([t.value for t in complete], dtype=float)
    maximize = study.direction == StudyDirection.MAXIMIZE
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)

    fig, ax = _axes(ax, (7.0, 4.2))
    ax.scatter(numbers, values, s=18, color="C0", alpha=0.7, label="complete trial", zorder=2)
    ax.plot(
        numbers,
        best,
        color="C3",
        lw=1.8,
        drawstyle="steps-post",
        label=f"best so far ({'max' if maximize else 'min'}imize)",
        zorder=3,
    )
    ax.set_xlabel("trial")
    ax.set_ylabel(target_name)
    ax.set_title(f"{study.study_name}: {summary}", fontsize="medium")
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return fig.figure


def plot_param_importances(study, *, evaluator=None, target_name="objective value", ax=None):
    """Hyperparameter importances of a study, most important at the top.

    Parameters
    ----------
    study : optuna.study.Study
        A single-objective study.
    evaluator : optuna.importance.BaseImportanceEvaluator, optional
        Default :class:`optuna.importance.FanovaImportanceEvaluator` with ``seed=0``, so that
        the figure is reproducible.
    target_name : str, default="objective value"
        What the importances explain, for the axis label.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes. A study with fewer than 2 complete trials, or one whose
        importances optuna cannot compute (e.g. no parameter varies), gives a figure that
        says so instead of a plot.

    Raises
    ------
    ValueError
        If ``study`` is not an optuna Study or has several objectives.

    Examples
    --------
    >>> import optuna
    >>> from sklearn_sfr.plotting import plot_param_importances
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.optimize(lambda t: 3 * t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 0.1),
    ...                n_trials=10)
    >>> fig = plot_param_importances(study)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['x', 'y']
    """
    complete, summary = _complete_trials(study)
    if len(complete) < 2:
        return _too_few(study, complete, "parameter importances need", ax)
    import optuna

    if evaluator is None:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return _message_figure(ax, f"study {study.study_name!r}: no importances ({exc})")
    if not importances:
        return _message_figure(ax, f"study {study.study_name!r}: no parameter to rank")

    names = list(importances)  # most important first
    scores = np.array([importances[n] for n in names])
    fig, ax = _axes(ax, (7.0, 1.4 + 0.45 * len(names)))
    positions = np.arange(len(names))
    ax.barh(positions, scores, color="C0", height=0.6)
    for y, s in zip(positions, scores):
        ax.annotate(
            f"{s:.2f}",
            (s, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    ax.set_yticks(positions, names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0.0, max(1.0, float(scores.max())) * 1.1)
    method = _EVALUATOR_NAMES.get(type(evaluator).__name__, type(evaluator).__name__)
    ax.set_xlabel(f"importance for {target_name} ({method})")
    ax.set_title(f"{study.study_name}: {summary}", fontsize="medium")
    return fig.figure
