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
import pandas as pd

from .._evaluate import HISTORY_COLUMNS, _evaluate_models, study_split
from .._models import make_model

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
    """The models scored on the study split of ``data``: ``(scores, predictions, history)``
    (see :func:`~sklearn_sfr.experiments.evaluate_models`, whose ``history`` list gets this
    one frame)."""
    train, test = study_split(len(data.y), test_size=test_size, random_state=random_state)
    return _evaluate_models(
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


def _keep(history, frames):
    """Append the training histories ``frames`` (the study's columns inserted) to the
    caller's ``history`` list as one frame, if the caller keeps them."""
    if history is not None:
        frames = [frame for frame in frames if len(frame)]
        history.append(
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=list(HISTORY_COLUMNS))
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
    history : list, default=None
        Where the networks' training histories go: one DataFrame is appended to it, one row
        per epoch of every network trained: ``model`` and the scores' columns that name
        what was trained, then ``split``, ``fold``, ``repeat``, ``stage``, ``max_epochs``,
        ``epoch``, ``train_loss``, ``valid_loss`` and ``best`` (see
        :func:`~sklearn_sfr.experiments.evaluate_models`). None: not kept.
    verbose : bool, default=False
        Print a line per model.

    Returns
    -------
    scores : DataFrame
        One row per model and fold (``split`` is ``"test"`` or ``"cv"``), with the columns
        of :data:`~sklearn_sfr.experiments.SCORE_COLUMNS`{extra} (a study's own columns come
        right after ``model``; ``epochs`` and ``hit_cap`` say how long a network trained and
        whether it stopped at its ``max_epochs`` rather than by early stopping).
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
    the run's settings, the arguments every study function takes, and ``history``, the list
    the study's function appends its networks' training histories to (its ``history``
    argument; the report saves them as ``<name>_history.csv`` and plots them)."""

    cube: object
    data: object
    config: dict
    common: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


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
        """Run the study on a :class:`StudyRun`; returns ``(scores, predictions)`` (and
        appends the networks' training histories to ``run.history``)."""
        raise NotImplementedError

    def check_settings(self, config):
        """Refuse, before any training, settings the study cannot answer its question with
        (``ValueError`` naming the setting)."""

    def training_report(self, history, folder):
        """What the report says of the networks' training (``history``, see
        :func:`~sklearn_sfr.experiments.evaluate_models`): a sentence naming the
        configurations that reached the cap on epochs, the table of :func:`training_summary`
        and :meth:`training_figures`."""
        table = training_summary(history, self.keys)
        return cap_sentence(table), table, self.training_figures(history, folder)

    def training_figures(self, history, folder):
        """The training curves of the study's networks in ``folder``: name -> (path,
        caption); none when no network trained."""
        import matplotlib.pyplot as plt

        from ...plotting import plot_training_curves, save_figure

        history = _fits_shown(history)
        if not len(history):
            return {}
        keys = [k for k in self.keys if k in history.columns]
        fig = plot_training_curves(history.assign(model=_labels(history, keys)))
        path = save_figure(fig, folder / f"{self.name}_training.png")
        plt.close(fig)
        caption = (
            f"{self.name} study: training and validation loss per epoch of each network "
            "(test-split fits; the star is the epoch whose weights were kept, the dotted line "
            "the cap on epochs)"
        )
        return {f"{self.name}_training": (path, caption)}

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


# -- training ---------------------------------------------------------------------------------
def _fits_shown(history):
    """The test-split fits of a training history: the curves the report draws (the folds'
    are in the CSV and the epochs table)."""
    return history[history["split"] == "test"] if "split" in history else history


def _labels(history, keys):
    """Each row's configuration in words: the model, and each other key column whose value
    differs between rows of one model (the FLAG study trains each model twice)."""
    label = history["model"].astype(str)
    for key in keys:
        if key != "model" and (history.groupby("model")[key].nunique() > 1).any():
            # A row without a value (the label-efficiency study's shared pretraining belongs
            # to no fraction) keeps the model's name alone.
            values = history[key]
            label = label.where(values.isna(), label + " / " + values.astype(str))
    return label


def _span(values):
    """``"12"``, or ``"9–14"`` for the smallest and largest of several fits (``"–"``
    where none says)."""
    values = values.dropna()
    if values.empty:
        return "–"
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def training_summary(history, keys=("model",)):
    """The epochs each configuration trained, from a study's training history.

    Parameters
    ----------
    history : DataFrame
        One row per epoch of each fit (:func:`~sklearn_sfr.experiments.evaluate_models`'
        ``history``, with a study's columns).
    keys : sequence of str, default=("model",)
        The columns that name a configuration (those ``history`` lacks are skipped).

    Returns
    -------
    DataFrame
        One row per configuration and training stage, for reading: ``fits`` (test repeats
        and cross-validation folds), ``epochs`` trained and the ``kept epoch`` (the one
        whose weights were kept), each as a single number or the range over the fits,
        ``cap`` (``max_epochs``) and ``reached cap`` (how many fits stopped at the cap
        instead of by early stopping). ``stage`` only where a model has a pretraining.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.experiments.studies._base import training_summary
    >>> history = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 2, "split": "test", "fold": 0,
    ...                         "repeat": 0, "stage": "regression", "max_epochs": 3,
    ...                         "epoch": [1, 2, 3, 1, 2], "best": [0, 0, 1, 1, 0]})
    >>> training_summary(history).to_dict("records")[0]
    {'model': 'a', 'fits': 1, 'epochs': '3', 'kept epoch': '3', 'cap': 3, 'reached cap': 'yes'}
    """
    keys = [k for k in keys if k in history.columns]
    stages = ["stage"] if "stage" in history else []
    fit = [*keys, *stages, *[c for c in ("split", "fold", "repeat") if c in history]]
    kept = history["epoch"].where(history["best"].astype(bool))
    fits = (
        history.assign(kept=kept)
        .groupby(fit, sort=False)
        .agg(epochs=("epoch", "max"), kept=("kept", "max"), cap=("max_epochs", "first"))
        .reset_index()
    )
    fits["at_cap"] = fits["epochs"] >= fits["cap"]
    rows = []
    for key, group in fits.groupby([*keys, *stages], sort=False):
        at_cap = int(group["at_cap"].sum())
        rows.append({
            **dict(zip([*keys, *stages], key)), "fits": len(group),
            "epochs": _span(group["epochs"]), "kept epoch": _span(group["kept"]),
            "cap": int(group["cap"].max()),
            "reached cap": "no" if not at_cap else "yes" if len(group) == 1
            else f"{at_cap} of {len(group)}",
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if stages and (table["stage"] == "regression").all():
        table = table.drop(columns="stage")  # no pretraining: one stage, not worth a column
    return table


def cap_sentence(table):
    """Which configurations of a :func:`training_summary` reached their cap on epochs, in
    words (the ones that did may not have converged)."""
    keys = list(table.columns[: table.columns.get_loc("fits")])
    names = _labels(table, [k for k in keys if k != "stage"])
    if "stage" in table:  # a pretraining is named, the regression stage is the network
        names = names.where(table["stage"] == "regression", names + " (" + table["stage"] + ")")
    caps = sorted(set(table["cap"]))
    cap = f"{caps[0]} epochs" if len(caps) == 1 else "epochs (each network's is in the table)"
    reached = table["reached cap"] != "no"
    if not reached.any():
        return (
            "**Training**: every network stopped early on its validation loss, before the cap "
            f"of {cap}."
        )
    if reached.all():
        return (
            f"**Training**: every network reached the cap of {cap} (so each may have stopped "
            f"before converging): {', '.join(names)}."
        )
    listed = ", ".join(
        f"{names[i]} ({table['reached cap'][i]} fits)" if table["fits"][i] > 1 else names[i]
        for i in table.index[reached]
    )
    return (
        f"**Training**: reached the cap of {cap}, so possibly stopped before converging: "
        f"{listed}; the others stopped early on their validation loss."
    )


def _prediction_figures(name, scores, predictions, data, folder):
    """Predicted against true, and the residuals, of the study's best model on the test."""
    from ...plotting import plot_predicted_vs_true, plot_residuals, save_figure

    floor = data.noise_floor
    top = scores[scores["split"] == "test"].sort_values("rmse").iloc[0]["model"]
    pred = predictions[predictions["model"] == top]
    positions = pred["position"].to_numpy()
    # Name what the model was scored against: the catalogue label carries the label noise;
    # a synthetic cube also knows the noise-free value, the second panel.
    target = str(getattr(data, "target_name", None) or "AVG")
    truth = None
    if target.startswith("true_log_sfr"):
        reference = "true"
    else:
        reference = "MPA-JHU label" if target == "AVG" else f"MPA-JHU {target}"
        if "true_log_sfr" in data.frame:
            truth = data.frame["true_log_sfr"].to_numpy(dtype=float)[positions]
            truth = truth if np.isfinite(truth).all() else None
    fig = plot_predicted_vs_true(
        pred["y_true"],
        pred["y_pred"],
        noise_floor=floor,
        title=f"{top} (test)",
        reference=reference,
        y_noise_free=truth,
    )
    against = f"the {reference} log SFR" if reference != "true" else "the true log SFR"
    if truth is not None:
        against += " and the true (noise-free) value"
    figures = {
        f"{name}_predicted": (
            save_figure(fig, folder / f"{name}_predicted_vs_true.png"),
            f"predicted against {against}, best {name} model ({top})",
        )
    }
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
    older version, or tables given without them). With cross-validation,
    ``cv_difference`` is the same difference over the folds by the corrected resampled
    t-test (:data:`CV_METHOD`), and :meth:`said` words both.
    """

    def __init__(self, predictions=None, metric="rmse", scores=None):
        self.predictions = predictions or {}
        self.metric = metric
        self.scores = scores or {}

    def cv_difference(self, a, b):
        """The fold scores of A minus B by :func:`~sklearn_sfr.metrics.corrected_resampled_ttest`
        (a :class:`~sklearn_sfr.metrics.CorrectedTTestResult`), or None without paired folds:
        no cross-validation, or folds of other training sets (the FLAG study's two trainings
        split different objects into folds)."""
        from ...metrics import corrected_resampled_ttest

        sides = []
        for study, where in (a, b):
            rows = self.scores.get(study)
            if rows is None or "split" not in rows:
                return None
            rows = rows[rows["split"] == "cv"]
            for column, value in where.items():
                if column in rows:
                    rows = rows[rows[column] == value]
            sides.append(rows.sort_values("fold"))
        rows_a, rows_b = sides
        folds = ["fold", "n_train", "n_test"]
        if len(rows_a) < 2 or not np.array_equal(rows_a[folds], rows_b[folds]):
            return None
        return corrected_resampled_ttest(
            rows_a[self.metric].to_numpy(), rows_b[self.metric].to_numpy(),
            n_train=float(rows_a["n_train"].mean()), n_test=float(rows_a["n_test"].mean()),
        )  # fmt: skip

    def said(self, a, b, gain_word, loss_word, *, subset=None):
        """:func:`said` on :meth:`difference` (the verdict), with :meth:`cv_difference` after
        it where the folds allow (not on a ``subset`` of the objects, which the folds' scores
        do not single out)."""
        cv = None if subset is not None else self.cv_difference(a, b)
        return said(self.difference(a, b, subset=subset), gain_word, loss_word, cv=cv)

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


#: The fold-level test of the report's differences with cross-validation, as it names it.
CV_METHOD = "corrected resampled t-test (Nadeau and Bengio 2003)"


def said(result, gain_word, loss_word, cv=None):
    """The verdict on "A minus B" in words, from its interval only: ``gain_word`` when A is
    detectably lower (better), ``loss_word`` when detectably higher, else no detectable
    difference with the smallest difference this run could have detected; followed by the
    cross-validation folds' corrected resampled t-test ``cv``
    (:func:`~sklearn_sfr.metrics.corrected_resampled_ttest`) where there is one."""
    from ...metrics import verdict as metric_verdict

    folds = "" if cv is None else f"; {cv_words(cv)}"
    if result is None:
        return f"cannot be decided (no predictions to compute an interval from{folds})"
    interval = (
        f"{result.difference:+.3f} dex, 95 % interval [{result.low:+.3f}, {result.high:+.3f}]"
    )
    word = metric_verdict(result)
    if word == "better":
        return f"{gain_word} ({interval}{folds})"
    if word == "worse":
        return f"{loss_word} ({interval}{folds})"
    return (
        f"makes no detectable difference at this sample size ({interval}; the smallest "
        f"difference this run could detect is {result.detectable:.3f} dex{folds})"
    )


def cv_words(cv):
    """A :class:`~sklearn_sfr.metrics.CorrectedTTestResult` in words, naming the test."""
    return (
        f"over the {cv.n_folds} cross-validation folds, {CV_METHOD}: {cv.difference:+.3f} dex, "
        f"95 % interval [{cv.low:+.3f}, {cv.high:+.3f}], p = {cv.pvalue:.2g}"
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
