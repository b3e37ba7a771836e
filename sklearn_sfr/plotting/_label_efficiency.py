"""The label-efficiency figure: test RMSE against the fraction of labelled training objects."""

from __future__ import annotations

import numpy as np

from ._results import _axes, _check_frame, _check_noise_floor, _draw_noise_floor

#: The factor between neighbouring models' positions at one fraction.
_DODGE = 1.04


def plot_label_efficiency(
    table,
    *,
    model="model",
    fraction="fraction",
    value="rmse",
    interval=("rmse_low", "rmse_high"),
    noise_floor=None,
    ax=None,
):
    """Test RMSE of each model against the fraction of labelled training objects.

    One line per model, the fractions on a logarithmic axis, each point with its 95 %
    interval as an error bar: the figure of
    :func:`~sklearn_sfr.experiments.label_efficiency_study`, where a pretrained model should
    stay low while models trained from scratch climb as the labels run out.

    Parameters
    ----------
    table : DataFrame
        One row per model and fraction (e.g. the study's summary table).
    model : str, default="model"
        Column naming the model.
    fraction : str, default="fraction"
        Column of the labelled fraction, in (0, 1].
    value : str, default="rmse"
        Column of the metric.
    interval : tuple of (str, str) or None, default=("rmse_low", "rmse_high")
        Columns of each point's lower and upper bound, drawn as error bars; None (or
        columns the table lacks) draws none.
    noise_floor : float, optional
        Drawn as a dashed horizontal line.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes.

    Raises
    ------
    ValueError
        If ``table`` is not a DataFrame, has no rows, lacks a column (the message names it),
        or a fraction is not in (0, 1].

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.plotting import plot_label_efficiency
    >>> table = pd.DataFrame({"model": ["fusion", "fusion", "tree", "tree"],
    ...                       "fraction": [0.1, 1.0, 0.1, 1.0], "rmse": [0.9, 0.6, 0.8, 0.7],
    ...                       "rmse_low": [0.85, 0.57, 0.76, 0.66],
    ...                       "rmse_high": [0.95, 0.63, 0.84, 0.74]})
    >>> fig = plot_label_efficiency(table, noise_floor=0.3)
    >>> [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    ['fusion', 'tree', 'noise floor (0.300)']
    """
    bounds = list(interval) if interval is not None else []
    _check_frame(table, [model, fraction, value], numeric=[fraction, value])
    noise_floor = _check_noise_floor(noise_floor)
    fractions = table[fraction].astype(float)
    if not ((fractions > 0) & (fractions <= 1)).all():
        raise ValueError(f"`{fraction}` must be in (0, 1]; got {sorted(set(fractions))}")
    with_bars = bool(bounds) and set(bounds) <= set(table.columns)

    fig, ax = _axes(ax, (6.5, 4.2))
    groups = list(table.groupby(model, sort=False))
    for i, (name, group) in enumerate(groups):
        group = group.sort_values(fraction)
        # Each model a little to the side (a factor on the log axis), so bars do not overlap.
        dodge = _DODGE ** (i - (len(groups) - 1) / 2)
        x, y = dodge * group[fraction].to_numpy(float), group[value].to_numpy(float)
        (line,) = ax.plot(x, y, marker="o", label=str(name))
        if with_bars:
            low, high = (group[b].to_numpy(float) for b in bounds)
            # NaN bounds (no predictions to bootstrap) draw no bar, not a broken one.
            err = np.vstack([y - low, high - y])
            ax.errorbar(x, y, yerr=np.where(np.isfinite(err), err, 0.0), fmt="none",
                        ecolor=line.get_color(), capsize=3)  # fmt: skip
    _draw_noise_floor(ax, noise_floor)
    ax.set_xscale("log")
    ticks = sorted(set(fractions))
    ax.set_xticks(ticks, [f"{100 * t:g} %" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled fraction of the FLAG=0 training objects")
    ax.set_ylabel(f"test {value.upper() if value == 'rmse' else value} [dex]")
    ax.legend(fontsize="small", loc="best")  # framed: the noise floor may run behind it
    return fig
