"""``sklearn-sfr study``: run the study's experiments on a cube and write the report folder.

The folder holds ``report.md`` and ``report.html`` (the same content: tables and figures
inline, and the conclusions drawn from the numbers), a CSV of every table, the PNG figures and
``config.json`` (versions, seeds and every setting), so that a report can be rerun exactly.
It is built under a temporary name beside ``out`` and renamed at the end: an interrupted run
never leaves a half-written report under the final name.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets._layout import CUTOUT_SIZES, n_wavelength
from ..utils._io import write_csv_atomic, write_text_atomic
from ..utils._outputs import OutputFolder
from ._render import Page
from ._render import markdown_table as markdown_table  # re-exported: imported from here
from .studies import REGISTRY, StudyRun
from .studies._base import (
    CV_METHOD,
    INTERVAL_METRICS,
    N_RESAMPLES,
    Comparisons,
    with_intervals,
)

#: The studies ``run_study`` can run, in order (``studies.REGISTRY``).
STUDIES = tuple(REGISTRY)

#: The settings every study shares (each study adds its own, see ``studies.Study``).
_COMMON_SETTINGS = {
    "image_zoom": 2,
    "spectrum_zoom": 2,
    # Every network trains until early stopping (its validation loss not better for
    # `patience` epochs) under one cap shared by every study. Measured: the study's fusion
    # network (16 px x 1155 px, 1,920 training objects) stopped at epoch 31, its best at 21,
    # where the earlier caps of 20 (and 8 for the resolution pairs) cut it while improving;
    # the cap leaves three times that.
    "neural_params": {"max_epochs": 100, "patience": 10},
    "cv": None,
    "test_size": 0.2,
    # Trainings of every model on the split, with other seeds: the training spread.
    "repeats": 1,
}

#: What ``--quick`` changes: small networks, few epochs, and each study's own quick settings
#: (the two coarsest resolutions, short pretraining).
QUICK_SETTINGS = {
    "neural_params": {"max_epochs": 3, "width": 8, "embed_dim": 16, "batch_size": 64},
    **{k: v for study in REGISTRY.values() for k, v in study.quick_settings.items()},
}

#: The full study's settings (every one can be overridden in ``run_study``).
FULL_SETTINGS = {
    **_COMMON_SETTINGS,
    **{k: v for study in REGISTRY.values() for k, v in study.settings.items()},
}

_TABLE_COLUMNS = [
    "rmse", "rmse_over_floor", "mae", "r2", "bias", "nmad", "outlier_fraction",
    "fit_time", "predict_time", "peak_memory_mb",
]  # fmt: skip


# The report's content is a Page (``_render``), rendered from jinja2 templates; ``_Report`` is
# the name this module's tests and callers know it by.
_Report = Page


# -- summaries and conclusions -----------------------------------------------------------------
def summary_table(scores, keys=("model",), predictions=None):
    """The test-split rows, one per configuration, with the noise floor beside every RMSE;
    with cross-validation, the folds' mean and standard deviation of the RMSE too; with the
    study's test ``predictions``, a 95 % interval (``<metric>_low``, ``<metric>_high``) of
    the RMSE, MAE, NMAD, bias and outlier fraction from a paired bootstrap over the test
    objects (seed repeats included, :func:`~sklearn_sfr.metrics.score_intervals`)."""
    keys = list(keys)
    test = scores[scores["split"] == "test"]
    table = test[[*keys, "noise_floor", *_TABLE_COLUMNS]].reset_index(drop=True)
    if "repeat" in test and test["repeat"].nunique() > 1:
        # Training repeats: their mean, and the RMSE's spread between them (the training
        # spread, apart from the test sample's).
        group = table.groupby(keys, sort=False)
        spread = group["rmse"].std(ddof=1).rename("rmse_training_std")
        # Each configuration's own count: a study may repeat some more than others (the
        # label subsets of a small fraction, one subset of the whole pool).
        repeats = group.size()
        table = group.mean(numeric_only=True).join(spread).reset_index()
        table.insert(len(keys), "repeats", repeats.to_numpy())
    cv = scores[scores["split"] == "cv"]
    if not cv.empty:
        folds = cv.groupby(keys, sort=False)["rmse"].agg(cv_rmse_mean="mean", cv_rmse_std="std")
        table = table.merge(folds.reset_index(), on=keys, how="left")
    if predictions is not None and len(predictions):
        table = with_intervals(table, keys, predictions)
    return table.sort_values("rmse", kind="stable").reset_index(drop=True)


def _display(table):
    """A summary table for reading: each metric with its interval in one cell, "0.631
    [0.612, 0.650]" (the CSV keeps the bounds in their own columns)."""
    table = table.copy()
    for m in INTERVAL_METRICS:
        low, high = f"{m}_low", f"{m}_high"
        if low in table and m in table:
            table[m] = [
                f"{v:.3f}" if np.isnan(lo) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                for v, lo, hi in zip(table[m], table[low], table[high])
            ]
            table = table.drop(columns=[low, high])
    return table


def conclusions(tables, predictions=None, scores=None):
    """Sentences answering the study's questions, computed from the summary tables (each
    study words its own, ``Study.conclusions``); a verdict ("helps", "wins")
    only where the paired 95 % interval of the difference, from the studies' test
    ``predictions`` (name -> DataFrame), excludes zero. With the studies' ``scores`` (name ->
    DataFrame) holding cross-validation folds, each difference also gets the folds'
    corrected resampled t-test (``studies._base.CV_METHOD``)."""
    compare = Comparisons(predictions, scores=scores)
    floor = next((t["noise_floor"].iloc[0] for t in tables.values() if len(t)), np.nan)

    def dex(row):
        if not np.isfinite(floor):  # real data: no truth, no floor to compare with
            return f"RMSE {row['rmse']:.3f} dex"
        return (
            f"RMSE {row['rmse']:.3f} dex ({row['rmse'] / floor:.2f} x the noise floor {floor:.3f})"
        )

    return [
        line for study in REGISTRY.values() for line in study.conclusions(tables, dex, compare)
    ]


# -- figures ------------------------------------------------------------------------------------
def _eda_figures(cube, data, folder):
    """Cutouts, spectra and the SFR distribution by object type and FLAG."""
    from ..datasets import HiSSCube
    from ..datasets._selection import to_sdss_units
    from ..plotting import plot_cutouts, plot_spectra, plot_target_distribution, save_figure

    # A spread of SFRs: the objects nearest to evenly spaced quantiles of the label.
    quantiles = np.quantile(data.y, [0.05, 0.35, 0.65, 0.95])
    picks = [int(np.argmin(np.abs(data.y - q))) for q in quantiles]
    titles = [
        f"{data.frame['object_type'][i]}, log SFR {data.y[i]:.2f}, z {data.frame['Z'][i]:.3f}"
        for i in picks
    ]
    with HiSSCube(cube) as handle:
        everything = handle.read_frame()
        rows = np.flatnonzero(everything["FLAG"] == 0)[picks]
        arrays = {"image": handle.read_images(rows, zoom=0), "spectrum": handle.read_spectra(rows)}
        wavelength = handle.wavelength(0)
    to_sdss_units(arrays)
    figures = {}
    fig = plot_cutouts(arrays["image"], titles=titles)
    figures["cutouts"] = (save_figure(fig, folder / "cutouts.png"), "ugriz cutouts (64 px)")
    fig = plot_spectra(
        wavelength,
        arrays["spectrum"],
        labels=titles,
        redshift=data.frame["Z"].to_numpy()[picks],
        object_type=data.frame["object_type"].to_numpy()[picks],  # a quasar's broad lines
        ylabel=r"$f_\lambda$ [$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$]",
    )
    figures["spectra"] = (
        save_figure(fig, folder / "spectra.png"),
        "spectra with their emission lines named (a quasar's broad lines)",
    )
    flag = everything["FLAG"].map(lambda v: "no label" if pd.isna(v) else f"FLAG={int(v)}")
    kind = everything["object_type"].astype(str) if "object_type" in everything else ""
    fig = plot_target_distribution(
        everything["AVG"].to_numpy(),
        groups=(kind + ", " + flag).to_numpy(),
        noise_floor=data.noise_floor,
    )
    figures["sfr_distribution"] = (
        save_figure(fig, folder / "sfr_distribution.png"),
        "log SFR by object type and FLAG",
    )
    import matplotlib.pyplot as plt

    plt.close("all")
    return figures


def _comparison_frame(name, scores):
    """The rows of study ``name``'s comparison figure and its caption."""
    return REGISTRY[name].comparison_frame(scores)


def _result_figures(name, scores, predictions, data, folder, table=None):
    """Study ``name``'s figures in ``folder``: name -> (path, caption)."""
    import matplotlib.pyplot as plt

    figures = REGISTRY[name].figures(scores, predictions, data, folder, table)
    plt.close("all")
    return figures


# -- the report ---------------------------------------------------------------------------------
def _write_report(folder, data, scores, predictions, record, cube, history=None):
    """Summary tables, figures, ``report.md`` and ``report.html`` into ``folder``, from the
    studies' scores and predictions and the run's ``config.json`` record (``cube`` is where
    the cube is now); ``history`` (name -> DataFrame, where a study trained networks) adds
    each study's epochs and training curves."""
    config, studies = record["settings"], record["studies"]
    history = history or {}
    training = {
        name: REGISTRY[name].training_report(history[name], folder)
        for name in studies
        if name in history and len(history[name])
    }
    tables = {
        name: summary_table(scores[name], REGISTRY[name].keys, predictions[name])
        for name in studies
    }
    for name in studies:
        write_csv_atomic(tables[name], folder / f"{name}_summary.csv", index=False)
    figures = _eda_figures(cube, data, folder)
    for name in studies:
        figures.update(
            _result_figures(name, scores[name], predictions[name], data, folder, tables[name])
        )
    found = conclusions(tables, predictions, scores)
    banner = None
    if record["quick"]:
        banner, found = smoke_test(found, record["settings"], len(data.y))

    report = Page("sklearn-sfr study: star-formation rates from images and spectra")
    floor = data.noise_floor
    report.text(
        f"Cube `{record['cube']}`: {len(data.y)} FLAG=0 objects; noise floor (RMSE of the labels "
        "against the true log SFR, the limit no model can beat on average): "
        + (f"**{floor:.3f} dex**." if floor is not None else "unknown (real data).")
        + f" {'Quick mode (a smoke test, not an answer). ' if record['quick'] else ''}"
        f"Ran in {record['seconds'] / 60:.1f} min"
        + (f" on {record['cpus']} CPU(s)." if record.get("cpus") else ".")
    )
    report.bullets(_settings_lines(config, studies, record["random_state"]))
    report.heading("Conclusions")
    if banner:
        report.note(banner)
    report.bullets(found)
    report.heading("The data")
    for key in ("cutouts", "spectra", "sfr_distribution"):
        report.figure(*figures[key])
    for name in studies:
        report.heading(f"{name.capitalize()} study")
        report.table(_display(tables[name]))
        for key, (path, caption) in figures.items():
            if key.startswith(name):
                report.figure(path, caption)
        if name in training:  # the epochs each network used, and its training curves
            sentence, epochs, curves = training[name]
            report.text(sentence)
            report.table(epochs)
            for path, caption in curves.values():
                report.figure(path, caption)
    write_text_atomic(folder / "report.md", report.markdown())
    write_text_atomic(folder / "report.html", report.html())
    # What the terminal prints: the same lines, the banner first.
    return tables, [banner, *found] if banner else found


def _study_data(cube, config):
    """The FLAG=0 objects at the study's main zooms: what a run trains on and what its report
    draws (a re-render must load exactly what the run did)."""
    from ..datasets import load_hisscube

    return load_hisscube(
        cube, image_zoom=config["image_zoom"], spectrum_zoom=config["spectrum_zoom"], flag=0
    )


#: The label of every conclusion of a quick run (in report.md, report.html and the terminal).
SMOKE_TEST_LABEL = "[smoke test]"


def smoke_test(found, settings, n_objects):
    """A quick run's framing: a banner saying what the run is, and the conclusions ``found``
    each labelled :data:`SMOKE_TEST_LABEL` (their intervals stay: they are this run's).

    Returns
    -------
    banner : str
    lines : list of str
    """
    neural = ", ".join(f"{k}={v}" for k, v in settings["neural_params"].items())
    banner = (
        "**Smoke test of the pipeline, not the study's answer**: this quick run (--quick: "
        f"small networks, {neural}) on {n_objects} objects checks "
        f"that every step runs. Each line below is labelled {SMOKE_TEST_LABEL} and keeps its "
        "95 % interval, which describes this small run only; run without --quick for the "
        "study's answers."
    )
    return banner, [f"{SMOKE_TEST_LABEL} {line}" for line in found]


def conclusion_lines(found):
    """The conclusions as plain-text list items, for a terminal (Markdown bold removed)."""
    return ["- " + line.replace("**", "") for line in found]


def _record_cube(record, folder):
    """The cube a study folder's ``config.json`` names: a relative path is inside the folder
    (the demo keeps its cube there), so the folder can be moved."""
    cube = Path(record["cube"])
    return cube if cube.is_absolute() else Path(folder) / cube


def render_report(out, *, verbose=True):
    """Rewrite a finished study folder's tables, figures and report from its saved scores.

    Nothing is trained: the scores and predictions (``*_scores.csv``, ``*_predictions.csv``)
    and ``config.json`` that :func:`run_study` wrote are read back and rendered with this
    version's report code, e.g. after an upgrade that words the conclusions better. The cube
    named in ``config.json`` must still exist and hold the same data (its fingerprint is
    compared): a report describes the data its scores came from, or is refused. The folder is
    rebuilt beside ``out`` and swapped in at the end, so a failure leaves it as it was; files
    a user added to it are kept.

    Parameters
    ----------
    out : str or path-like
        A folder written by :func:`run_study`.
    verbose : bool, default=True
        Print the path of the rewritten report (on standard error) when done.

    Returns
    -------
    dict
        ``tables``, ``conclusions`` and ``out``, as :func:`run_study` returns them.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.experiments import render_report, run_study
    >>> folder = tempfile.mkdtemp()
    >>> cube = make_synthetic_cube(os.path.join(folder, "c.h5"), n_objects=60)
    >>> out = os.path.join(folder, "report")
    >>> _ = run_study(cube, out, studies=["baseline"], quick=True, verbose=False)
    >>> sorted(render_report(out, verbose=False))
    ['conclusions', 'out', 'tables']
    """
    from ..datasets._fingerprint import cube_fingerprint

    out = Path(out)
    try:
        record = json.loads((out / "config.json").read_text(encoding="utf-8"))
        studies = record["studies"]
        config = record["settings"]
        cube = _record_cube(record, out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileNotFoundError(
            f"{out} is not a study folder (config.json missing or unreadable: {exc})"
        ) from exc
    missing = [f"{name}_{kind}.csv" for name in studies for kind in ("scores", "predictions")
               if not (out / f"{name}_{kind}.csv").is_file()]  # fmt: skip
    if missing:
        raise FileNotFoundError(f"{out} lacks {', '.join(missing)}")
    if not cube.is_file():
        raise FileNotFoundError(f"the study's cube {cube} (config.json) is not there")
    folder = OutputFolder(out, kind="study", update=True)  # ours, or refused
    expected = record.get("cube_fingerprint")
    if expected is None:
        raise ValueError(
            f"{out}/config.json records no fingerprint of its cube (written by an older "
            "version): it cannot be checked against {cube}; run the study again"
        )
    if cube_fingerprint(cube) != expected:
        raise ValueError(
            f"{cube} no longer holds the data {out} was computed on (its content fingerprint "
            "differs from config.json's): the report would mix two cubes; run the study again"
        )
    scores = {name: pd.read_csv(out / f"{name}_scores.csv") for name in studies}
    predictions = {name: pd.read_csv(out / f"{name}_predictions.csv") for name in studies}
    # The networks' training histories: folders of older versions have none.
    history = {
        name: pd.read_csv(out / f"{name}_history.csv")
        for name in studies
        if (out / f"{name}_history.csv").is_file()
    }
    data = _study_data(cube, config)
    with folder as tmp:
        tables, found = _write_report(tmp, data, scores, predictions, record, cube, history)
    if verbose:
        print(f"rewrote {out / 'report.html'}", file=sys.stderr, flush=True)
    return {"tables": tables, "conclusions": found, "out": out}


# -- the run --------------------------------------------------------------------------------------
def _versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("sklearn-sfr", "scikit-learn", "numpy", "torch", "skorch", "optuna", "h5py"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def _settings(quick, overrides):
    settings = {**FULL_SETTINGS, **(QUICK_SETTINGS if quick else {})}
    unknown = set(overrides) - set(settings)
    if unknown:
        raise TypeError(f"unknown study settings {sorted(unknown)}; known: {sorted(settings)}")
    for key, value in overrides.items():
        if value is None:
            continue
        # A dict of parameters adds to the defaults (max_epochs=5 keeps quick's width).
        if isinstance(value, dict) and isinstance(settings[key], dict):
            value = {**settings[key], **value}
        settings[key] = value
    return settings


def _training_line(neural_params):
    """How long every network trains: until early stopping, under one shared cap."""
    import inspect

    from ..neural._base import BaseNeuralEstimator

    defaults = inspect.signature(BaseNeuralEstimator.__init__).parameters
    value = {k: neural_params.get(k, defaults[k].default) for k in ("max_epochs", "patience")}
    return (
        "Training: every network (in every study, each resolution pair included) trains until "
        f"its validation loss has not improved for {value['patience']} epochs (early "
        "stopping, the best epoch's weights kept) or until the shared cap of "
        f"{value['max_epochs']} epochs (the contrastive model's pretraining stops the same "
        "way under its own cap, pretrain_epochs); each study lists the epochs its networks "
        "used and which reached the cap."
    )


def _settings_lines(config, studies, random_state):
    """What the numbers depend on, in words: the split, the networks' training, the grids."""
    neural = ", ".join(f"{k}={v}" for k, v in config["neural_params"].items()) or "defaults"
    lines = [
        f"Split: {1 - config['test_size']:.0%} training / {config['test_size']:.0%} test "
        f"(seed {random_state}); cross-validation: "
        + (
            f"{config['cv']} folds; each difference the conclusions state also gets the "
            f"folds' {CV_METHOD}, whose variance allows for the folds' overlapping training "
            "sets"
            if config["cv"]
            else "none (test split only)"
        )
        + ".",
        f"Networks: {neural}; images {CUTOUT_SIZES[config['image_zoom']]} px, spectra "
        f"{n_wavelength(config['spectrum_zoom'])} px unless a study varies them.",
        _training_line(config["neural_params"]),
    ]
    repeats = config.get("repeats", 1)  # older config.json files have none: one training
    lines.append(
        f"Training repeats: {repeats} per model (seeds {random_state} to "
        f"{random_state + repeats - 1}); intervals include the training spread."
        if repeats > 1
        else "Training repeats: 1 per model (--repeats K adds the training spread to the "
        "intervals)."
    )
    lines.append(
        f"Intervals: 95 %, from a paired percentile bootstrap over the test objects "
        f"(scipy.stats.bootstrap, {N_RESAMPLES} resamples, every model scored on the same "
        "objects); a verdict (helps, hurts, wins) only where the interval of a difference "
        "excludes zero."
    )
    for name in studies:
        lines += REGISTRY[name].settings_lines(config)
    return lines


def run_study(
    cube,
    out,
    *,
    studies=STUDIES,
    quick=False,
    n_jobs=None,
    random_state=0,
    overwrite=False,
    verbose=True,
    **settings,
):
    """Run the study's experiments on ``cube`` and write the report folder ``out``.

    Parameters
    ----------
    cube : str or path-like
        A HiSS-Cube file (opened read-only).
    out : str or path-like
        The report folder to write (``report.md``, ``report.html``, CSVs, PNGs,
        ``config.json``).
    studies : sequence of str, default=STUDIES
        Which of :data:`STUDIES` to run.
    quick : bool, default=False
        Small networks, few epochs, the coarsest resolutions (``QUICK_SETTINGS``): a
        check that everything runs, not an answer.
    n_jobs : int, default=None
        Parallel jobs: the cross-validation folds with ``cv``, else the models and
        configurations.
    random_state : int, default=0
        Seeds the split and every model.
    overwrite : bool, default=False
        Replace an existing report folder. Only a folder this library wrote (its marker
        file lists every file in it) is ever replaced; a folder holding anything else, or
        the cube, is refused before any work.
    verbose : bool, default=True
        Print progress.
    **settings
        Any of ``FULL_SETTINGS`` (e.g. ``neural_params={"max_epochs": 20}``,
        ``image_zooms=(2, 3)``); a dict adds to the default dict.

    Returns
    -------
    dict
        ``tables`` (study name -> summary DataFrame), ``scores`` (study name -> full scores),
        ``conclusions`` (list of str, Markdown; with ``quick``, a smoke-test banner first
        and every line labelled as a smoke test), ``out`` (Path), ``seconds`` (float).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.experiments import run_study
    >>> folder = tempfile.mkdtemp()
    >>> cube = make_synthetic_cube(os.path.join(folder, "c.h5"), n_objects=60)
    >>> result = run_study(cube, os.path.join(folder, "report"), studies=["baseline"],
    ...                    quick=True, verbose=False)
    >>> list(result["tables"]), result["conclusions"][0].startswith("**Smoke test")
    (['baseline'], True)
    >>> result["conclusions"][1].startswith("[smoke test] **Decision-tree")
    True
    >>> sorted(os.listdir(result["out"]))[:3]
    ['.sklearn-sfr.json', 'baseline_comparison.png', 'baseline_predicted_vs_true.png']
    """
    cube, out = Path(cube), Path(out)
    config = check_study(cube, studies, quick, settings)
    # Before any work: an output we may not write or replace (a folder holding a user's
    # files, the cube's own folder) is refused now (utils._outputs).
    folder = OutputFolder(out, kind="study", overwrite=overwrite, inputs=[cube])
    with folder as tmp:
        result = run_into(
            tmp, cube, str(cube.resolve()), studies=studies, quick=quick, n_jobs=n_jobs,
            random_state=random_state, verbose=verbose, config=config,
        )  # fmt: skip
    return {**result, "out": out}


def check_study(cube, studies, quick, settings):
    """What ``run_study`` checks before any work; returns the run's settings."""
    from ..datasets._reader import check_cube

    check_cube(cube)  # a damaged zoom fails now, not after an hour of other studies
    unknown = [s for s in studies if s not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {list(REGISTRY)}")
    return _settings(quick, settings)


def run_into(tmp, cube, recorded_cube, *, studies, quick, n_jobs, random_state, verbose,
             config):  # fmt: skip
    """Run the studies on ``cube`` and write the report into the (temporary) folder ``tmp``;
    ``config.json`` names the cube as ``recorded_cube`` (relative: inside the folder)."""
    from dataclasses import replace

    from ..datasets._fingerprint import cube_fingerprint

    for name in studies:  # settings a study cannot answer with are refused before training
        REGISTRY[name].check_settings(config)
    start = time.perf_counter()

    def say(message):
        if verbose:
            print(message, file=sys.stderr, flush=True)

    neural = dict(config["neural_params"])
    if verbose and n_jobs in (None, 1):
        # Each network's epochs as a bar (stderr); not with parallel jobs, whose bars would
        # overwrite each other. Not recorded in config.json: it changes no number.
        neural.setdefault("verbose", 1)
    common = dict(test_size=config["test_size"], cv=config["cv"], n_jobs=n_jobs,
                  random_state=random_state, neural_params=neural, verbose=verbose,
                  repeats=config["repeats"],
                  # One run trains a model on the same data once, whichever studies share it.
                  cache={})  # fmt: skip
    data = _study_data(cube, config)
    say(
        f"{cube}: {len(data.y)} FLAG=0 objects, images {data.X['image'].shape[-1]} px, "
        f"spectra {data.X['spectrum'].shape[-1]} px, noise floor "
        + (f"{data.noise_floor:.3f} dex" if data.noise_floor is not None else "unknown")
    )
    scores, predictions, history = {}, {}, {}
    run = StudyRun(cube=cube, data=data, config=config, common=common)
    from tqdm.auto import tqdm

    # A bar over the studies (stderr, with the time left), beside each model's lines.
    bar = tqdm(list(studies), desc="studies", unit=" studies", disable=not verbose)
    for name in bar:
        bar.set_description(f"{name} study")
        t0 = time.perf_counter()
        trained = []  # the study's networks' training histories (Study.run appends them)
        scores[name], predictions[name] = REGISTRY[name].run(replace(run, history=trained))
        # Each study's raw results are kept as soon as they exist.
        write_csv_atomic(scores[name], tmp / f"{name}_scores.csv", index=False)
        write_csv_atomic(predictions[name], tmp / f"{name}_predictions.csv", index=False)
        trained = [frame for frame in trained if len(frame)]
        if trained:
            history[name] = pd.concat(trained, ignore_index=True)
            write_csv_atomic(history[name], tmp / f"{name}_history.csv", index=False)
        if verbose:  # above the bars, not through them
            bar.write(f"{name} study done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - start
    record = {
        "cube": recorded_cube,
        # What render_report checks: a cube rebuilt at the same path is not this one.
        "cube_fingerprint": cube_fingerprint(cube),
        "studies": list(studies),
        "quick": quick,
        "random_state": random_state,
        "n_jobs": n_jobs,
        "settings": config,
        "versions": _versions(),
        "seconds": seconds,
        "cpus": os.cpu_count(),
    }
    write_text_atomic(tmp / "config.json", json.dumps(record, indent=2, default=str))
    tables, found = _write_report(tmp, data, scores, predictions, record, cube, history)
    return {"tables": tables, "scores": scores, "conclusions": found, "seconds": seconds}
