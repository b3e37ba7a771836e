"""What every study shares: the model registry lookup, the fixed split, the docstring block of
the study functions, and :class:`Study`, the object that holds one study in one file.

A study (``studies/<name>.py``) says how it runs, the columns that name a configuration in its
summary table, its settings (full and ``--quick``), its conclusions and its figures. The report
(:mod:`sklearn_sfr.experiments._report`) is generic: it learns nothing new when a study is
added; the registry (:mod:`sklearn_sfr.experiments.studies`) gets one line.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

from ...model_selection import make_model
from .._evaluate import evaluate_models, study_split

#: Registry names of the models that train a network (they get ``neural_params``).
NEURAL_MODELS = ("image", "spectrum", "fusion", "contrastive")

#: The decision-tree baselines: trees on spectra (rebinned, line features) and on photometry
#: (flattened cutouts, photometry features).
BASELINE_MODELS = ("tree-spectrum", "tree-lines", "tree-pixels", "tree-photometry")


def _model(name, random_state, neural_params, **params):
    if name in NEURAL_MODELS:
        params = {**(neural_params or {}), **params}
    return make_model(name, random_state=random_state, **params)


def _run(models, data, *, test_size, cv, n_jobs, random_state, verbose, repeats=1, cache=None):
    train, test = study_split(len(data.y), test_size=test_size, random_state=random_state)
    return evaluate_models(
        models,
        data.X,
        data.y,
        train=train,
        test=test,
        cv=cv,
        n_jobs=n_jobs,
        noise_floor=data.noise_floor,
        random_state=random_state,
        repeats=repeats,
        cache=cache,
        verbose=verbose,
    )


_COMMON_DOC = """
    test_size : float, default=0.2
        Fraction of the objects held out as the fixed test set.
    cv : int, cross-validation generator or None, default=None
        Cross-validation folds on the training objects, in addition to the test score;
        None scores on the test set only.
    n_jobs : int, default=None
        Parallel jobs (joblib): the cross-validation folds, or without ``cv`` the models
        and configurations themselves.
    random_state : int, default=0
        Seeds the split, the folds and every model.
    neural_params : dict, default=None
        Parameters of every neural model (e.g. ``{{"max_epochs": 30, "device": "cuda"}}``).
    repeats : int, default=1
        Trainings of each model on the same split with different seeds (see
        :func:`~sklearn_sfr.experiments.evaluate_models`).
    cache : dict, default=None
        Results shared by the studies of one run: a model already trained on the same data
        and split is reused, not trained again (see
        :func:`~sklearn_sfr.experiments.evaluate_models`).
    verbose : bool, default=False
        Print a line per model.

    Returns
    -------
    scores : DataFrame
        One row per model and fold (``split`` is ``"test"`` or ``"cv"``), with the columns
        of :data:`~sklearn_sfr.experiments.SCORE_COLUMNS`{extra} (a study's own columns come
        right after ``model``).
    predictions : DataFrame
        The test predictions: ``model``{pred_extra}, ``position`` (row of the study's X),
        ``y_true``, ``y_pred``.
"""


def _doc(extra="", pred_extra=""):
    def decorate(func):
        # The docstrings and the shared block are indented differently: dedent both, so that
        # numpydoc and doctest see one consistent docstring.
        first, _, body = func.__doc__.partition("\n")
        lines = body.splitlines()
        indent = min(
            len(line) - len(line.lstrip())
            for line in lines
            if line.strip() and line.strip() != "{common}"
        )
        common = textwrap.dedent(_COMMON_DOC.format(extra=extra, pred_extra=pred_extra))
        func.__doc__ = "\n".join(
            [first]
            + [
                common.strip("\n") if line.strip() == "{common}" else line[indent:]
                for line in lines
            ]
        )
        return func

    return decorate


#: Differences of test RMSE below this fraction of the RMSE are not called a gain or a loss:
#: a test RMSE on n objects has a standard error of about RMSE / sqrt(2 n), 1.5 % for the
#: 2,200 test objects of the default cube.
NEGLIGIBLE = 0.01


def verdict(gain, reference):
    """ "helps" / "does not help" for an RMSE ``gain`` (positive: better), or "makes no clear
    difference" when it is below :data:`NEGLIGIBLE` of ``reference``."""
    if abs(gain) < NEGLIGIBLE * reference:
        return "makes no clear difference"
    return "helps" if gain > 0 else "does not help"


def best(table):
    """The row of the lowest RMSE."""
    return table.loc[table["rmse"].idxmin()]


@dataclass
class StudyRun:
    """What a study's :meth:`Study.run` gets: the cube, the FLAG=0 objects at the main zooms,
    the run's settings and the arguments every study function takes."""

    cube: object
    data: object
    config: dict
    common: dict = field(default_factory=dict)


class Study:
    """One question of the study: how it runs, its table, its conclusions and its figures.

    Subclasses set the class attributes and :meth:`run`; the defaults of the other methods
    fit most studies (a comparison figure of the models' RMSE).

    Attributes
    ----------
    name : str
        Registry key; also names the files (``<name>_scores.csv``, ...).
    keys : tuple of str
        The columns that name a configuration in the summary table.
    settings : dict
        The study's own settings for the full run (they join ``FULL_SETTINGS``).
    quick_settings : dict
        What ``--quick`` changes of them.
    show_predictions : bool
        Draw predicted against true and the residuals of the best model.
    """

    name = ""
    keys = ("model",)
    settings = {}
    quick_settings = {}
    show_predictions = False

    def run(self, run):
        """Run the study on a :class:`StudyRun`; returns ``(scores, predictions)``."""
        raise NotImplementedError

    def conclusions(self, tables, dex, compare):
        """Sentences answering the study's question from the summary ``tables`` of the run
        (name -> table; a study may weigh another's, as fusion weighs every fused model);
        ``dex(row)`` formats a row's RMSE with the noise floor; ``compare`` (a
        :class:`Comparisons`) gives the paired difference of two configurations, whose
        interval alone decides a verdict (:func:`said`)."""
        return []

    def settings_lines(self, config):
        """What the study's numbers depend on, in words, for the report's settings list."""
        return []

    def comparison_frame(self, scores):
        """The rows of the comparison figure and what they show (for the caption): the
        cross-validation folds where they were run (their mean and spread), else the test
        split, never both, whose average would be neither score."""
        if (scores["split"] == "cv").any():
            return scores[scores["split"] == "cv"], "cross-validated RMSE (mean ± std)"
        return scores[scores["split"] == "test"], "test RMSE"

    def figures(self, scores, predictions, data, folder, table=None):
        """The study's figures in ``folder``: name -> (path, caption); ``table`` is the
        study's summary, whose RMSE intervals (if any) become the error bars of a test
        split's comparison."""
        from ...plotting import plot_model_comparison, save_figure

        floor = data.noise_floor if data is not None else None
        interval = None
        bounds = ["rmse_low", "rmse_high"]
        if (
            table is not None
            and set(bounds) <= set(table.columns)
            and not (scores["split"] == "cv").any()
        ):
            # The test split: each model's interval, computed once for the summary table.
            keys = list(self.keys)
            scores = scores.merge(table[[*keys, *bounds]], on=keys, how="left")
            interval = tuple(bounds)
        frame, what = self.comparison_frame(scores)
        fig = plot_model_comparison(frame, value="rmse", noise_floor=floor, interval=interval)
        figures = {
            f"{self.name}_comparison": (
                save_figure(fig, folder / f"{self.name}_comparison.png"),
                f"{self.name} study: {what}",
            )
        }
        if self.show_predictions and len(predictions) and data is not None:
            figures.update(_prediction_figures(self.name, scores, predictions, data, folder))
        return figures


def _prediction_figures(name, scores, predictions, data, folder):
    """Predicted against true, and the residuals, of the study's best model on the test."""
    from ...plotting import plot_predicted_vs_true, plot_residuals, save_figure

    floor = data.noise_floor
    top = scores[scores["split"] == "test"].sort_values("rmse").iloc[0]["model"]
    pred = predictions[predictions["model"] == top]
    fig = plot_predicted_vs_true(
        pred["y_true"], pred["y_pred"], noise_floor=floor, title=f"{top} (test)"
    )
    figures = {
        f"{name}_predicted": (
            save_figure(fig, folder / f"{name}_predicted_vs_true.png"),
            f"predicted against true log SFR, best {name} model ({top})",
        )
    }
    positions = pred["position"].to_numpy()
    covariates = {"redshift": data.frame["Z"].to_numpy()[positions]}
    if "true_log_mstar" in data.frame:
        covariates["log stellar mass (truth)"] = data.frame["true_log_mstar"].to_numpy()[positions]
    fig = plot_residuals(pred["y_true"], pred["y_pred"], covariates)
    figures[f"{name}_residuals"] = (
        save_figure(fig, folder / f"{name}_residuals.png"),
        f"residuals of {top} against redshift and mass",
    )
    return figures


# -- intervals ------------------------------------------------------------------------------
#: Bootstrap resamples of every interval of a report, and their seed (reproducible reports).
N_RESAMPLES = 2000
INTERVAL_SEED = 0

#: The metrics of a summary table that get an interval.
INTERVAL_METRICS = ("rmse", "mae", "nmad", "bias", "outlier_fraction")


def prediction_matrix(predictions, where):
    """The test labels and the predictions of one configuration, one row per repeat.

    Parameters
    ----------
    predictions : DataFrame
        A study's predictions (``position``, ``y_true``, ``y_pred``, ``repeat``, and the
        columns that name a configuration).
    where : dict
        Column -> value selecting the configuration (columns the frame lacks are ignored).

    Returns
    -------
    positions : ndarray of int
    y_true : ndarray of shape (n,)
    y_pred : ndarray of shape (n_repeats, n)
        None for all three when nothing matches.
    """
    rows = predictions
    for column, value in where.items():
        if column in rows:
            rows = rows[rows[column] == value]
    if rows.empty:
        return None, None, None
    repeat = rows.get("repeat", 0)  # reports of older versions have no repeats
    wide = rows.assign(repeat=repeat).pivot_table(
        index="position", columns="repeat", values="y_pred", aggfunc="first"
    )
    truth = rows.groupby("position")["y_true"].first().loc[wide.index]
    return wide.index.to_numpy(), truth.to_numpy(), wide.to_numpy().T


class Comparisons:
    """Paired differences between configurations of the run, for the conclusions.

    ``difference((study_a, where_a), (study_b, where_b))`` is a
    :class:`~sklearn_sfr.metrics.PairedDifference` of the RMSE, A minus B, on the test
    objects both were scored on, or None where the predictions are not there (a report of an
    older version, or tables given without them).
    """

    def __init__(self, predictions=None, metric="rmse"):
        self.predictions = predictions or {}
        self.metric = metric

    def difference(self, a, b, *, subset=None):
        from ...metrics import paired_difference

        sides = []
        for study, where in (a, b):
            frame = self.predictions.get(study)
            if frame is None or not len(frame):
                return None
            sides.append(prediction_matrix(frame, where))
        (pos_a, y_a, pred_a), (pos_b, _, pred_b) = sides
        if pos_a is None or pos_b is None:
            return None
        common, ia, ib = np.intersect1d(pos_a, pos_b, return_indices=True)
        if subset is not None:
            keep = np.isin(common, subset)
            common, ia, ib = common[keep], ia[keep], ib[keep]
        if len(common) < 2:
            return None
        return paired_difference(
            y_a[ia], pred_a[:, ia], pred_b[:, ib], self.metric,
            n_resamples=N_RESAMPLES, random_state=INTERVAL_SEED,
        )  # fmt: skip


def said(result, gain_word, loss_word):
    """The verdict on "A minus B" in words, from its interval only: ``gain_word`` when A is
    detectably lower (better), ``loss_word`` when detectably higher, else no detectable
    difference with the smallest difference this run could have detected."""
    from ...metrics import verdict as metric_verdict

    if result is None:
        return "cannot be decided (no predictions to compute an interval from)"
    interval = (
        f"{result.difference:+.3f} dex, 95 % interval [{result.low:+.3f}, {result.high:+.3f}]"
    )
    word = metric_verdict(result)
    if word == "better":
        return f"{gain_word} ({interval})"
    if word == "worse":
        return f"{loss_word} ({interval})"
    return (
        f"makes no detectable difference at this sample size ({interval}; the smallest "
        f"difference this run could detect is {result.detectable:.3f} dex)"
    )


def with_intervals(table, keys, predictions, metrics=INTERVAL_METRICS):
    """``table`` with ``<metric>_low`` and ``<metric>_high`` columns: each configuration's
    95 % interval from a paired bootstrap over its test objects (seed repeats included),
    computed once per configuration (NaN where its predictions are missing)."""
    from ...metrics import score_intervals

    bounds = {f"{m}_{side}": [] for m in metrics for side in ("low", "high")}
    done = {}
    for _, row in table.iterrows():
        key = tuple(row[k] for k in keys)
        if key not in done:
            frame = predictions
            objects = row.get("objects", "all")
            if objects != "all" and "neighbour" in frame:  # a subset of the test objects
                frame = frame[frame["neighbour"].astype(bool) == (objects == "with neighbour")]
            where = {k: row[k] for k in keys if k != "objects"}
            _, y_true, y_pred = prediction_matrix(frame, where)
            done[key] = None
            if y_true is not None and len(y_true) >= 2:
                done[key] = score_intervals(
                    y_true, y_pred, metrics, n_resamples=N_RESAMPLES, random_state=INTERVAL_SEED
                )
        for m in metrics:
            bounds[f"{m}_low"].append(np.nan if done[key] is None else done[key][m].low)
            bounds[f"{m}_high"].append(np.nan if done[key] is None else done[key][m].high)
    return table.assign(**bounds)
