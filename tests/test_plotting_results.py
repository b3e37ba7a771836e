"""Tests of the result figures in :mod:`sklearn_sfr.plotting`."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sklearn_sfr.metrics import rmse
from sklearn_sfr.plotting import (
    SFR_LABEL,
    plot_model_comparison,
    plot_optuna_history,
    plot_param_importances,
    plot_pareto,
    plot_predicted_vs_true,
    plot_residuals,
    plot_resolution_heatmap,
    save_figure,
)
from sklearn_sfr.plotting._results import _pareto_mask, _running_percentiles

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SIZES = (8, 16, 32, 64)
SPECTRUM_LENGTHS = (577, 1155, 2310, 4620)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _quiet_optuna():
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    n = 300
    y = np.where(rng.random(n) < 0.6, rng.normal(0.3, 0.5, n), rng.normal(-1.5, 0.6, n))
    pred = 0.8 * y + rng.normal(0.0, 0.25, n)
    pred[:10] += 1.5  # catastrophic failures
    covariates = {"redshift": rng.uniform(0.02, 0.3, n), "log stellar mass": rng.normal(10, 1, n)}
    return y, pred, covariates


@pytest.fixture
def resolution_frame():
    rows = []
    for i, size in enumerate(IMAGE_SIZES):
        for j, length in enumerate(SPECTRUM_LENGTHS):
            for fold in range(2):
                rows.append(
                    {
                        "image_size": size,
                        "spectrum_length": length,
                        "fold": fold,
                        "rmse": 0.6 - 0.04 * i - 0.03 * j + 0.01 * fold,
                        "fit_time": (1.0 + i) ** 2 + 0.5 * j + 0.1 * fold,
                        "predict_time": 0.01 * (1 + i + j),
                        "peak_memory_mb": 50.0 + 10 * i**2 + j,
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture
def model_frame():
    means = {"image": 0.5, "spectrum": 0.4, "fusion (late)": 0.35}
    rows = [
        {"model": m, "fold": f, "rmse": v + 0.01 * (f - 1), "r2": 1 - v}
        for m, v in means.items()
        for f in range(3)
    ]
    return pd.DataFrame(rows)


def _study(n_trials, name="test-study", direction="minimize"):
    study = optuna.create_study(
        study_name=name, direction=direction, sampler=optuna.samplers.RandomSampler(seed=0)
    )

    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        y = trial.suggest_float("y", 0.0, 0.1)
        trial.suggest_categorical("kind", ["a", "b"])
        return (x - 1.0) ** 2 + y

    if n_trials:
        study.optimize(objective, n_trials=n_trials)
    return study


# ------------------------------------------------------------------------------ every figure


def _builders(predictions, resolution_frame, model_frame, study):
    y, pred, covariates = predictions
    return {
        "predicted_vs_true": lambda: plot_predicted_vs_true(y, pred, noise_floor=0.25),
        "predicted_vs_true_hexbin": lambda: plot_predicted_vs_true(y, pred, kind="hexbin"),
        "residuals": lambda: plot_residuals(y, pred, covariates),
        "heatmap": lambda: plot_resolution_heatmap(resolution_frame, noise_floor=0.25),
        "heatmap_all": lambda: plot_resolution_heatmap(
            resolution_frame, value=["rmse", "fit_time", "predict_time", "peak_memory_mb"]
        ),
        "pareto": lambda: plot_pareto(resolution_frame, noise_floor=0.25),
        "model_comparison": lambda: plot_model_comparison(model_frame, noise_floor=0.25),
        "optuna_history": lambda: plot_optuna_history(study),
        "param_importances": lambda: plot_param_importances(study),
    }


def test_every_figure_saves_a_png(predictions, resolution_frame, model_frame, tmp_path):
    study = _study(8)
    builders = _builders(predictions, resolution_frame, model_frame, study)
    for name, build in builders.items():
        fig = build()
        assert isinstance(fig, Figure), name
        # low resolution keeps the test fast; the drawing code runs all the same
        path = save_figure(fig, tmp_path / f"{name}.png", dpi=40)
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 2000, name  # something was drawn, not an empty canvas
        plt.close(fig)


# ------------------------------------------------------------------------------ predicted vs true


def test_predicted_vs_true_content(predictions):
    y, pred, _ = predictions
    fig = plot_predicted_vs_true(y, pred, noise_floor=0.25, threshold=0.3, title="model")
    (ax,) = fig.axes
    assert ax.get_title() == "model"
    assert ax.get_xlabel() == f"true {SFR_LABEL}"
    assert ax.get_ylabel() == f"predicted {SFR_LABEL}"
    text = ax.texts[0].get_text()
    r = rmse(y, pred)
    assert f"RMSE = {r:.3f} dex" in text
    assert f"{r / 0.25:.2f} × noise floor (0.250)" in text
    # the outlier cut stated against the label noise: 0.3 dex = 1.20 x 0.25 dex
    for key in (
        "bias = ",
        "NMAD = ",
        "outliers (|Δ| > 0.3 dex = 1.20 × label noise) = ",
        "n = 300",
    ):
        assert key in text
    # the 1:1 line spans the (equal) axis limits; outliers are their own scatter
    assert ax.get_xlim() == ax.get_ylim()
    one_to_one = ax.lines[0]
    np.testing.assert_allclose(one_to_one.get_xdata(), one_to_one.get_ydata())
    n_outliers = int((np.abs(pred - y) > 0.3).sum())
    sizes = sorted(len(c.get_offsets()) for c in ax.collections[1:])
    assert sizes == sorted([y.size - n_outliers, n_outliers])
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["±0.3 dex", "objects", "outliers", "1:1"]


def test_predicted_vs_true_kinds_and_ax(predictions):
    y, pred, _ = predictions
    fig = plot_predicted_vs_true(y, pred, kind="hexbin")
    assert len(fig.axes) == 2  # the hexbin's colour bar
    fig, ax = plt.subplots()
    assert plot_predicted_vs_true(y, pred, ax=ax) is fig
    big = np.tile(y, 8)
    auto = plot_predicted_vs_true(big, big + 0.1)
    assert len(auto.axes) == 2  # more than 2000 points: binned


def _noisy_labels(n=400, noise=0.5, seed=0):
    """True values, labels with Gaussian noise, and a perfect model of the true values."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 1.0, n)
    return truth, truth + rng.normal(0.0, noise, n), truth.copy()


def test_predicted_vs_label_and_true_value_panels():
    truth, label, pred = _noisy_labels()
    fig = plot_predicted_vs_true(
        label,
        pred,
        noise_floor=0.5,
        reference="MPA-JHU label",
        y_noise_free=truth,
        title="model (test)",
    )
    assert len(fig.axes) == 2
    against_label, against_truth = fig.axes
    # each axis names what it is: the noisy label (and its noise) or the noise-free value
    assert against_label.get_xlabel() == f"MPA-JHU label {SFR_LABEL}\n(label noise 0.50 dex)"
    assert against_truth.get_xlabel() == f"true (noise-free) {SFR_LABEL}"
    assert [ax.get_ylabel() for ax in fig.axes] == [f"predicted {SFR_LABEL}"] * 2
    assert fig.get_suptitle() == "model (test)"
    assert against_label.get_xlim() == against_truth.get_xlim()  # comparable at a glance
    label_text, truth_text = (ax.texts[0].get_text() for ax in fig.axes)
    assert f"RMSE = {rmse(label, pred):.3f} dex" in label_text
    assert f"RMSE = {rmse(truth, pred):.3f} dex" in truth_text  # 0: a perfect model
    assert "noise floor" not in truth_text  # the label noise is no floor against the truth
    # against the labels, a perfect model has more outliers than not: the panel says why,
    # with the fraction Gaussian noise of that width gives, erfc(0.3 / (0.5 sqrt 2)) = 55 %
    fraction = np.mean(np.abs(label - pred) > 0.3)
    assert fraction > 0.5
    assert f"= 0.60 × label noise) = {fraction:.1%}" in label_text
    assert "more than half: the cut is below the label noise (0.50 dex)" in label_text
    assert "≈55% outliers" in label_text
    assert "more than half" not in truth_text


def test_predicted_vs_true_explains_many_outliers_without_a_noise_floor():
    truth, label, _ = _noisy_labels()
    text = plot_predicted_vs_true(truth, label).axes[0].texts[0].get_text()
    assert "outliers (|Δ| > 0.3 dex) = " in text
    assert f"the cut is small against the RMSE ({rmse(truth, label):.2f} dex)" in text
    # few outliers: nothing to explain
    text = plot_predicted_vs_true(truth, truth + 0.01).axes[0].texts[0].get_text()
    assert "more than half" not in text


def test_predicted_vs_true_two_panels_into_given_axes():
    truth, label, pred = _noisy_labels(n=50)
    fig, axes = plt.subplots(1, 2)
    assert plot_predicted_vs_true(label, pred, ax=list(axes), y_noise_free=truth) is fig
    assert axes[0].get_xlabel() == f"label {SFR_LABEL}"  # the default name with a truth
    with pytest.raises(ValueError, match="`ax` must be a pair of Axes"):
        plot_predicted_vs_true(label, pred, ax=axes[0], y_noise_free=truth)
    with pytest.raises(ValueError, match=r"`y_noise_free` .* \(50,\); got shape \(10,\)"):
        plot_predicted_vs_true(label, pred, y_noise_free=truth[:10])
    with pytest.raises(ValueError, match="`y_noise_free` contains NaN"):
        plot_predicted_vs_true(label, pred, y_noise_free=np.where(truth > 0, truth, np.nan))
    with pytest.raises(ValueError, match="`reference`"):
        plot_predicted_vs_true(label, pred, reference="")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_pred": np.zeros(3)}, r"`y_true` and `y_pred` .* got 5 and 3"),
        ({"y_true": [0, 1, np.nan, 3, 4]}, "y_true contains NaN"),
        ({"kind": "contour"}, "`kind`"),
        ({"threshold": -1}, "`threshold`"),
        ({"noise_floor": 0}, "`noise_floor`"),
    ],
)
def test_predicted_vs_true_invalid(kwargs, match):
    args = {"y_true": np.arange(5.0), "y_pred": np.arange(5.0)} | kwargs
    with pytest.raises(ValueError, match=match):
        plot_predicted_vs_true(args.pop("y_true"), args.pop("y_pred"), **args)


# ------------------------------------------------------------------------------ residuals


def test_running_percentiles():
    x = np.repeat(np.arange(4.0), 25)
    y = np.tile(np.linspace(-1.0, 1.0, 25), 4) + x
    centres, (p16, p50, p84) = _running_percentiles(x, y, n_bins=4)
    np.testing.assert_allclose(centres, [0, 1, 2, 3])
    np.testing.assert_allclose(p50, [0, 1, 2, 3], atol=1e-12)
    assert (p16 < p50).all() and (p50 < p84).all()
    # few points: fewer bins (at least 5 objects each)
    centres, _ = _running_percentiles(np.arange(12.0), np.zeros(12), n_bins=10)
    assert centres.size == 2


def test_residuals_panels(predictions):
    y, pred, covariates = predictions
    covariates = dict(covariates)
    covariates["log stellar mass"] = covariates["log stellar mass"].copy()
    covariates["log stellar mass"][:7] = np.nan
    fig = plot_residuals(y, pred, covariates, n_bins=6)
    assert len(fig.axes) == 2
    assert [ax.get_xlabel() for ax in fig.axes] == ["redshift", "log stellar mass"]
    assert fig.axes[0].get_ylabel() == "residual (predicted − true) [dex]"
    assert fig.axes[1].get_title() == "7 non-finite log stellar mass left out"
    median_line = next(line for line in fig.axes[0].lines if line.get_label() == "median")
    assert len(median_line.get_xdata()) == 6
    # the median of the medians is near the overall median residual
    assert np.median(median_line.get_ydata()) == pytest.approx(np.median(pred - y), abs=0.15)
    # a DataFrame works as the mapping
    fig = plot_residuals(y, pred, pd.DataFrame({"z": covariates["redshift"]}))
    assert [ax.get_xlabel() for ax in fig.axes] == ["z"]


def test_residuals_invalid(predictions):
    y, pred, covariates = predictions
    with pytest.raises(ValueError, match=r"covariate 'redshift' must be 1-D .* \(300\)"):
        plot_residuals(y, pred, {"redshift": covariates["redshift"][:10]})
    with pytest.raises(ValueError, match="`covariates` is empty"):
        plot_residuals(y, pred, {})
    with pytest.raises(ValueError, match="`covariates` must be a dict"):
        plot_residuals(y, pred, covariates["redshift"])
    with pytest.raises(ValueError, match=r"covariates\['type'\]"):
        plot_residuals(y, pred, {"type": ["star-forming"] * y.size})
    with pytest.raises(ValueError, match="`n_bins`"):
        plot_residuals(y, pred, covariates, n_bins=0)


# ------------------------------------------------------------------------------ heatmap


def test_heatmap_averages_folds_and_marks_the_best(resolution_frame):
    fig = plot_resolution_heatmap(resolution_frame, noise_floor=0.25)
    ax = fig.axes[0]
    assert ax.get_title() == "RMSE [dex] (noise floor 0.250)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["577", "1155", "2310", "4620"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["8", "16", "32", "64"]
    grid = ax.images[0].get_array()
    assert grid.shape == (4, 4)
    # row i = image size, column j = spectrum length, averaged over the two folds
    assert grid[0, 0] == pytest.approx(0.605)
    assert grid[3, 3] == pytest.approx(0.6 - 0.12 - 0.09 + 0.005)
    assert len(ax.texts) == 16
    assert "0.605" in {t.get_text() for t in ax.texts}
    (best,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert best.get_xy() == (2.5, 2.5)  # lowest RMSE: 64 px, 4620 pixels


def test_heatmap_several_values_and_missing_pairs(resolution_frame):
    values = ["rmse", "fit_time", "peak_memory_mb"]
    partial = resolution_frame[
        ~((resolution_frame.image_size == 8) & (resolution_frame.spectrum_length == 4620))
    ]
    fig = plot_resolution_heatmap(partial, value=values)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heatmaps] == [
        "RMSE [dex]",
        "fit time [s]",
        "peak memory [MB]",
    ]
    assert np.ma.getmaskarray(heatmaps[0].images[0].get_array())[0, 3]
    assert "–" in {t.get_text() for t in heatmaps[0].texts}
    # r2: greater is better, so the best cell is the highest
    frame = resolution_frame.assign(r2=1.0 - resolution_frame.rmse)
    ax = plot_resolution_heatmap(frame, value="r2").axes[0]
    (best,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert best.get_xy() == (2.5, 2.5)


@pytest.mark.parametrize(
    ("frame_change", "kwargs", "match"),
    [
        (lambda f: f.drop(columns="rmse"), {}, r"`frame` has no column 'rmse'"),
        (lambda f: f.drop(columns="image_size"), {}, r"no column 'image_size'"),
        (lambda f: f, {"value": "score"}, r"no column 'score'"),
        (lambda f: f.assign(rmse="low"), {}, r"column 'rmse' of `frame` must be numeric"),
        (lambda f: f.iloc[:0], {}, "no rows"),
        (lambda f: f.to_dict(), {}, "must be a pandas DataFrame"),
        (lambda f: f, {"value": []}, "names no column"),
    ],
)
def test_heatmap_invalid(resolution_frame, frame_change, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_resolution_heatmap(frame_change(resolution_frame), **kwargs)


def _tiny_spread(half_width=0.05):
    """A 2 x 2 grid whose RMSEs differ by 0.016 dex, each with a +/- half_width interval."""
    rmse_values = [0.600, 0.606, 0.611, 0.616]
    return pd.DataFrame(
        {
            "image_size": [8, 8, 64, 64],
            "spectrum_length": [577, 4620, 577, 4620],
            "rmse": rmse_values,
            "rmse_low": [v - half_width for v in rmse_values],
            "rmse_high": [v + half_width for v in rmse_values],
        }
    )


def test_heatmap_intervals_annotate_cells_and_widen_the_colour_scale():
    frame = _tiny_spread()
    fig = plot_resolution_heatmap(
        frame, noise_floor=0.5, intervals={"rmse": ("rmse_low", "rmse_high")}
    )
    ax, bar = fig.axes
    assert ax.get_title() == "RMSE [dex], 95 % interval (noise floor 0.500)"
    # row 0 = 8 px: each cell reads "RMSE [low, high]"
    assert [t.get_text() for t in ax.texts] == [
        "0.600\n[0.550, 0.650]",
        "0.606\n[0.556, 0.656]",
        "0.611\n[0.561, 0.661]",
        "0.616\n[0.566, 0.666]",
    ]
    # a 0.016 dex spread inside 0.1 dex intervals does not fill the colour map: the scale
    # starts at the best cell and is as wide as the widest interval
    vmin, vmax = ax.images[0].get_clim()
    assert vmin == pytest.approx(0.600)
    assert vmax - vmin == pytest.approx(0.1)
    assert ax.images[0].norm(0.616) < 0.2
    assert bar.get_ylabel() == "RMSE [dex]\ncolour range = widest 95 % interval (0.100)"


def test_heatmap_min_span():
    frame = _tiny_spread().drop(columns=["rmse_low", "rmse_high"])
    # without a span or intervals the colours span the values, as before
    ax = plot_resolution_heatmap(frame).axes[0]
    assert ax.images[0].get_clim() == pytest.approx((0.600, 0.616))
    assert ax.texts[0].get_text() == "0.600"
    fig = plot_resolution_heatmap(frame, min_span=0.05)
    vmin, vmax = fig.axes[0].images[0].get_clim()
    assert (vmin, vmax - vmin) == pytest.approx((0.600, 0.05))
    assert fig.axes[1].get_ylabel() == "RMSE [dex]\ncolour range = min_span, 0.050"
    # a wider spread than the span keeps the values' range; the span only ever widens
    wide = frame.assign(fit_time=[1.0, 2.0, 4.0, 9.0])
    fig = plot_resolution_heatmap(wide, value=["rmse", "fit_time"], min_span={"rmse": 0.05})
    assert fig.axes[1].images[0].get_clim() == pytest.approx((1.0, 9.0))
    # greater is better: the scale ends at the best (highest) cell
    r2 = frame.assign(r2=1.0 - frame["rmse"])
    vmin, vmax = plot_resolution_heatmap(r2, value="r2", min_span=0.1).axes[0].images[0].get_clim()
    assert (vmin, vmax) == pytest.approx((0.4 - 0.1, 0.4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"intervals": ("rmse_low", "rmse_high")}, "`intervals` must be a dict"),
        ({"intervals": {"mae": ("rmse_low", "rmse_high")}}, "names 'mae', which is not shown"),
        ({"intervals": {"rmse": "rmse_low"}}, r"`intervals\['rmse'\]` must be a pair"),
        ({"intervals": {"rmse": ("rmse_low", "rmse_top")}}, "no column 'rmse_top'"),
        ({"min_span": 0.0}, "`min_span` must be a positive number"),
        ({"min_span": {"rmse": "wide"}}, "`min_span` must be a positive number"),
        ({"min_span": {"r2": 0.1}}, "names 'r2', which is not shown"),
    ],
)
def test_heatmap_invalid_intervals_and_span(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_resolution_heatmap(_tiny_spread(), **kwargs)


# ------------------------------------------------------------------------------ the studies


@pytest.mark.parametrize(
    ("target", "caption"),
    [
        ("AVG", "the MPA-JHU label log SFR and the true (noise-free) value"),
        ("true_log_sfr", "the true log SFR,"),
    ],
)
def test_study_prediction_figures_name_the_label_and_pass_the_truth(tmp_path, target, caption):
    from sklearn.utils import Bunch

    from sklearn_sfr.experiments.studies._base import _prediction_figures

    truth, label, pred = _noisy_labels(n=60)
    frame = pd.DataFrame({"Z": np.linspace(0.02, 0.2, 60), "true_log_sfr": truth})
    data = Bunch(frame=frame, noise_floor=0.5, target_name=target)
    positions = np.arange(0, 60, 2)
    predictions = pd.DataFrame(
        {
            "model": "m",
            "position": positions,
            "y_true": label[positions],
            "y_pred": pred[positions],
        }
    )
    scores = pd.DataFrame({"model": ["m"], "split": ["test"], "rmse": [0.5]})
    figures = _prediction_figures("study", scores, predictions, data, tmp_path)
    path, text = figures["study_predicted"]
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert text.startswith(f"predicted against {caption}")


# ------------------------------------------------------------------------------ Pareto


def test_pareto_mask():
    cost = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 5.0])
    value = np.array([0.6, 0.5, 0.55, 0.4, 0.5, 0.4])
    # 3 (0.55 at cost 3) is beaten by 1; the second (2, 0.5) ties the first and is not new;
    # 5 (0.4 at cost 5) is beaten by 3 (0.4 at cost 4)
    assert _pareto_mask(cost, value).tolist() == [True, True, False, True, False, False]
    # the same ranking as a score to maximise
    assert _pareto_mask(cost, 1 - value, greater_is_better=True).tolist() == [
        True,
        True,
        False,
        True,
        False,
        False,
    ]


def test_pareto_plot(resolution_frame):
    fig = plot_pareto(resolution_frame, cost="fit_time", value="rmse")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "fit time [s]"
    assert ax.get_ylabel() == "RMSE [dex]"
    assert ax.get_xscale() == "linear"  # fit times span less than a factor of 20
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 16 and "8/577" in texts and "64/4620" in texts
    front, dominated = ax.collections[1], ax.collections[0]
    assert len(front.get_offsets()) + len(dominated.get_offsets()) == 16
    table = resolution_frame.groupby(["image_size", "spectrum_length"])[["fit_time", "rmse"]]
    expected = _pareto_mask(*table.mean().to_numpy().T)
    assert len(front.get_offsets()) == expected.sum()
    # labels do not overlap each other
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    overlapping = sum(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1 :])
    assert overlapping == 0
    wide = resolution_frame.assign(fit_time=10.0 ** resolution_frame.index.to_numpy() / 1e10 + 1)
    assert plot_pareto(wide).axes[0].get_xscale() == "log"


def test_pareto_options_and_invalid(resolution_frame):
    ax = plot_pareto(resolution_frame, cost="peak_memory_mb", label_columns=None).axes[0]
    assert len(ax.texts) == 0
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(resolution_frame)
    with pytest.raises(ValueError, match=r"no column 'model'"):
        plot_pareto(resolution_frame, label_columns=["model"])
    with pytest.raises(ValueError, match=r"no column 'memory'"):
        plot_pareto(resolution_frame, cost="memory")
    with pytest.raises(ValueError, match="finite"):
        plot_pareto(resolution_frame.assign(rmse=np.nan))


# ------------------------------------------------------------------------------ models


def test_model_comparison_sorted_with_error_bars(model_frame):
    fig = plot_model_comparison(model_frame, noise_floor=0.3)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fusion (late)", "spectrum", "image"]
    assert ax.get_xlabel() == "RMSE [dex]"
    # std over the folds -0.01, 0, +0.01 is 0.01
    assert {t.get_text() for t in ax.texts} == {
        "0.350 ± 0.010",
        "0.400 ± 0.010",
        "0.500 ± 0.010",
    }
    noise = [line for line in ax.lines if line.get_label().startswith("noise floor")]
    assert noise and noise[0].get_xdata()[0] == 0.3
    # r2: greater is better, best first
    ax = plot_model_comparison(model_frame, value="r2").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fusion (late)", "spectrum", "image"]


def test_model_comparison_single_fold_and_invalid(model_frame):
    one = model_frame[model_frame.fold == 0]
    ax = plot_model_comparison(one).axes[0]
    assert {t.get_text() for t in ax.texts} == {"0.340", "0.390", "0.490"}
    # One score per model: the legend does not promise folds it does not show.
    assert ax.get_legend_handles_labels()[1] == ["score"]
    folds = plot_model_comparison(model_frame).axes[0]
    assert folds.get_legend_handles_labels()[1] == ["mean ± std over folds"]
    with pytest.raises(ValueError, match=r"no column 'estimator'"):
        plot_model_comparison(model_frame, model="estimator")
    with pytest.raises(ValueError, match=r"no column 'nmad'"):
        plot_model_comparison(model_frame, value="nmad")
    with pytest.raises(ValueError, match=r"column 'model' of `frame` must be numeric"):
        plot_model_comparison(model_frame, value="model")


# ------------------------------------------------------------------------------ Optuna


def test_optuna_history():
    study = _study(12)
    fig = plot_optuna_history(study, target_name="RMSE [dex]")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "RMSE [dex]"
    assert len(ax.collections[0].get_offsets()) == 12
    best = ax.lines[0].get_ydata()
    assert (np.diff(best) <= 0).all()
    assert best[-1] == pytest.approx(study.best_value)
    assert ax.get_title() == "test-study: 12 complete"
    # maximisation: best so far rises
    up = _study(6, direction="maximize")
    best = plot_optuna_history(up).axes[0].lines[0].get_ydata()
    assert (np.diff(best) >= 0).all() and best[-1] == pytest.approx(up.best_value)


def test_param_importances():
    study = _study(12)
    fig = plot_param_importances(study)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == ["kind", "x", "y"]
    assert labels[0] == "x"  # the objective depends (almost) only on x
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths, reverse=True)
    assert sum(widths) == pytest.approx(1.0)
    assert "fANOVA" in ax.get_xlabel()
    # reproducible with the default (seeded) evaluator
    again = plot_param_importances(study).axes[0]
    assert [p.get_width() for p in again.patches] == widths


@pytest.mark.parametrize("n_trials", [0, 1])
@pytest.mark.parametrize("plot", [plot_optuna_history, plot_param_importances])
def test_optuna_too_few_trials_says_so(plot, n_trials):
    fig = plot(_study(n_trials, name="tiny"))
    assert isinstance(fig, Figure)
    text = fig.axes[0].texts[0].get_text()
    assert f"study 'tiny' has {n_trials} complete trial" in text
    assert "at least 2" in text


def test_optuna_invalid():
    for plot in (plot_optuna_history, plot_param_importances):
        with pytest.raises(ValueError, match="must be an optuna Study"):
            plot(pd.DataFrame())
        multi = optuna.create_study(directions=["minimize", "minimize"], study_name="multi")
        with pytest.raises(ValueError, match="study 'multi' has 2 objectives"):
            plot(multi)


def test_residuals_log_axis_for_a_wide_positive_covariate():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    z = np.concatenate([rng.uniform(0.02, 0.2, 270), rng.uniform(0.5, 2.5, 30)])
    mass = rng.normal(10.5, 0.5, 300)
    fig = plot_residuals(y, y + 0.1, {"redshift": z, "log mass": mass})
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "linear"]
    fig = plot_residuals(y, y + 0.1, {"redshift": z}, logx=False)
    assert fig.axes[0].get_xscale() == "linear"
    with pytest.raises(ValueError, match="positive values"):
        plot_residuals(y, y + 0.1, {"log mass": mass - 10.5}, logx=True)


def test_model_comparison_draws_the_intervals_as_error_bars():
    frame = pd.DataFrame({"model": ["a", "b"], "rmse": [0.40, 0.50],
                          "rmse_low": [0.35, 0.41], "rmse_high": [0.46, 0.60]})  # fmt: skip
    fig = plot_model_comparison(frame, interval=("rmse_low", "rmse_high"))
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.400 [0.350, 0.460]", "0.500 [0.410, 0.600]"]
    assert ax.get_legend().get_texts()[0].get_text() == "score and its 95 % interval"
    # The caps of the error bars sit at the bounds.
    caps = sorted(round(float(x), 3) for line in ax.lines for x in np.atleast_1d(line.get_xdata()))
    assert {0.35, 0.46, 0.41, 0.6} <= set(caps)


def test_model_comparison_of_a_single_model():
    # pandas 3 could not find the only group of a one-row frame (get_group raised KeyError).
    fig = plot_model_comparison(pd.DataFrame({"model": ["mean"], "rmse": [0.5]}))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["mean"]
