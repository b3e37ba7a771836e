"""``sklearn-sfr study``: run the study's experiments on a cube and write the report folder.

The folder holds ``report.md`` and ``report.html`` (the same content: tables and figures
inline, and the conclusions drawn from the numbers), a CSV of every table, the PNG figures and
``config.json`` (versions, seeds and every setting), so that a report can be rerun exactly.
It is built under a temporary name beside ``out`` and renamed at the end: an interrupted run
never leaves a half-written report under the final name.
"""

from __future__ import annotations

import html
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

#: The studies ``run_study`` can run, in order.
STUDIES = ("baseline", "modality", "fusion", "resolution", "flag", "isolation")

#: What ``--quick`` changes: small networks, few epochs, the two coarsest resolutions.
QUICK_SETTINGS = {
    "neural_params": {"max_epochs": 3, "width": 8, "embed_dim": 16, "batch_size": 64},
    "contrastive_params": {"pretrain_epochs": 2},
    "image_zooms": (2, 3),
    "spectrum_zooms": (2, 3),
}

#: The full study's settings (every one can be overridden in ``run_study``).
FULL_SETTINGS = {
    "image_zoom": 2,
    "spectrum_zoom": 2,
    "neural_params": {"max_epochs": 60},
    "contrastive_params": {},
    "cv": None,
    "image_zooms": (0, 1, 2, 3),
    "spectrum_zooms": (0, 1, 2, 3),
    "resolution_model": "fusion",
    "resolution_params": {"fusion": "intermediate"},
    "flag_models": ("tree-lines", "tree-photometry", "fusion"),
    "isolation_models": ("tree-photometry", "image"),
    "test_size": 0.2,
}

_TABLE_COLUMNS = [
    "rmse", "rmse_over_floor", "mae", "r2", "bias", "nmad", "outlier_fraction",
    "fit_time", "predict_time", "peak_memory_mb",
]  # fmt: skip


# -- the report's content: blocks rendered to Markdown and to HTML ----------------------------
class _Report:
    def __init__(self, title):
        self.blocks = [("h1", title)]

    def heading(self, text):
        self.blocks.append(("h2", text))

    def text(self, text):
        self.blocks.append(("p", text))

    def bullets(self, items):
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, frame):
        self.blocks.append(("table", frame))

    def figure(self, path, caption):
        self.blocks.append(("img", (Path(path).name, caption)))

    def markdown(self):
        out = []
        for kind, value in self.blocks:
            if kind == "h1":
                out.append(f"# {value}\n")
            elif kind == "h2":
                out.append(f"\n## {value}\n")
            elif kind == "p":
                out.append(f"{value}\n")
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in value) + "\n")
            elif kind == "table":
                out.append(markdown_table(value) + "\n")
            else:
                name, caption = value
                out.append(f"![{caption}]({name})\n\n*{caption}*\n")
        return "\n".join(out)

    def html(self):
        body = []
        for kind, value in self.blocks:
            if kind in ("h1", "h2"):
                body.append(f"<{kind}>{html.escape(value)}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                body.append(_format(value).to_html(index=False, border=0, classes="scores"))
            else:
                name, caption = value
                body.append(
                    f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
            "table.scores{border-collapse:collapse;font-size:90%;margin:1em 0}"
            "table.scores td,table.scores th{padding:2px 8px;text-align:right;"
            "border-bottom:1px solid #ddd}img{max-width:100%}figcaption{font-style:italic}"
        )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sklearn-sfr study</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )


def _inline(text):
    """Markdown's **bold** and `code` in HTML, everything else escaped."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _digits(column):
    return 1 if str(column).endswith(("_time", "_mb")) else 3


def _format(frame):
    """Numbers rounded for reading (3 decimals, times and memory to 0.1)."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(_digits(column))
    return frame


def markdown_table(frame):
    """A DataFrame as a Markdown table (no extra dependency): floats to a fixed 3 decimals
    (times and memory to 1), missing values as a dash. The SFR and the Scene reports share it.
    """

    def cell(value, digits):
        if pd.isna(value):
            return "–"
        if isinstance(value, float | np.floating):
            return f"{value:.{digits}f}"
        return str(value)

    digits = [_digits(c) for c in frame.columns]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    lines += [
        "| " + " | ".join(cell(v, d) for v, d in zip(row, digits)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


# -- summaries and conclusions -----------------------------------------------------------------
def summary_table(scores, keys=("model",)):
    """The test-split rows, one per configuration, with the noise floor beside every RMSE;
    with cross-validation, the folds' mean and standard deviation of the RMSE too."""
    keys = list(keys)
    test = scores[scores["split"] == "test"]
    table = test[[*keys, "noise_floor", *_TABLE_COLUMNS]].reset_index(drop=True)
    cv = scores[scores["split"] == "cv"]
    if not cv.empty:
        folds = cv.groupby(keys, sort=False)["rmse"].agg(cv_rmse_mean="mean", cv_rmse_std="std")
        table = table.merge(folds.reset_index(), on=keys, how="left")
    return table.sort_values("rmse", kind="stable").reset_index(drop=True)


def _best(table):
    return table.loc[table["rmse"].idxmin()]


#: Differences of test RMSE below this fraction of the RMSE are not called a gain or a loss:
#: a test RMSE on n objects has a standard error of about RMSE / sqrt(2 n), 1.5 % for the
#: 2,200 test objects of the default cube.
NEGLIGIBLE = 0.01


def _verdict(gain, reference):
    """ "helps" / "does not help" for an RMSE ``gain`` (positive: better), or "makes no clear
    difference" when it is below :data:`NEGLIGIBLE` of ``reference``."""
    if abs(gain) < NEGLIGIBLE * reference:
        return "makes no clear difference"
    return "helps" if gain > 0 else "does not help"


def conclusions(tables):
    """Sentences answering the study's questions, computed from the summary tables."""
    out = []
    floor = next((t["noise_floor"].iloc[0] for t in tables.values() if len(t)), np.nan)

    def dex(row):
        if not np.isfinite(floor):  # real data: no truth, no floor to compare with
            return f"RMSE {row['rmse']:.3f} dex"
        return (
            f"RMSE {row['rmse']:.3f} dex ({row['rmse'] / floor:.2f} x the noise floor {floor:.3f})"
        )

    if "modality" in tables:
        t = tables["modality"]
        single = t[t["modality"] != "both"]
        both = t[t["modality"] == "both"]
        if "fusion" in tables:  # every fused model of the run competes, not only one strategy
            both = pd.concat([both, tables["fusion"]], ignore_index=True)
        if len(single) and len(both):
            s, b = _best(single), _best(both)
            verdict = _verdict(s["rmse"] - b["rmse"], s["rmse"])
            out.append(
                f"**Modalities**: the best single modality is {s['model']} ({dex(s)}); fusion "
                f"{verdict}: {b['model']} reaches {dex(b)}, {b['rmse'] - s['rmse']:+.3f} dex."
            )
            ranking = ", ".join(f"{r['model']} {r['rmse']:.3f}" for _, r in t.iterrows())
            out.append(f"Modality ranking (test RMSE, dex): {ranking}.")
    if "fusion" in tables and len(tables["fusion"]):
        t = tables["fusion"]
        b = _best(t)
        ranking = ", ".join(f"{r['fusion']} {r['rmse']:.3f}" for _, r in t.iterrows())
        out.append(f"**Fusion strategy**: {b['fusion']} wins with {dex(b)}; ranking {ranking}.")
    if "baseline" in tables and len(tables["baseline"]):
        b = _best(tables["baseline"])
        out.append(f"**Decision-tree baselines**: best is {b['model']} with {dex(b)}.")
    if "resolution" in tables and len(tables["resolution"]):
        t = tables["resolution"]
        b = _best(t)
        # The cheapest configuration whose RMSE is within 2 % of the best.
        good = t[t["rmse"] <= 1.02 * b["rmse"]].sort_values("fit_time")
        c = good.iloc[0]
        best = (
            f"**Resolution**: the most accurate pair is {b['image_size']} px images x "
            f"{b['spectrum_length']} px spectra ({dex(b)}, fit {b['fit_time']:.0f} s)"
        )
        if (c["image_size"], c["spectrum_length"]) == (b["image_size"], b["spectrum_length"]):
            out.append(f"{best}, and no pair within 2 % of it fits faster: it is the one worth "
                       "its cost.")  # fmt: skip
        else:
            out.append(
                f"{best}; the cheapest within 2 % of it is {c['image_size']} px x "
                f"{c['spectrum_length']} px (RMSE {c['rmse']:.3f}, fit {c['fit_time']:.0f} s, "
                f"{b['fit_time'] / max(c['fit_time'], 1e-9):.1f}x faster): that is the one "
                "worth its cost."
            )
        finest = t.sort_values(["image_size", "spectrum_length"]).iloc[-1]
        out.append(
            f"The finest pair ({finest['image_size']} px x {finest['spectrum_length']} px) "
            f"reaches RMSE {finest['rmse']:.3f} in {finest['fit_time']:.0f} s, "
            f"{finest['fit_time'] / max(c['fit_time'], 1e-9):.1f}x the fit time of the pair "
            "worth its cost."
        )
    if "flag" in tables and len(tables["flag"]):
        t = tables["flag"]
        for model, group in t.groupby("model", sort=False):
            rmse = group.set_index("trained_on")["rmse"]
            if {"FLAG=0", "all labelled"} <= set(rmse.index):
                diff = rmse["all labelled"] - rmse["FLAG=0"]
                verdict = _verdict(diff, rmse["FLAG=0"])
                out.append(
                    f"**FLAG filter** ({model}, scored on FLAG=0): trained on FLAG=0 "
                    f"{rmse['FLAG=0']:.3f}, on all labelled objects {rmse['all labelled']:.3f}: "
                    f"the filter {verdict} ({diff:+.3f} dex for training on everything)."
                )
    if "isolation" in tables and len(tables["isolation"]):
        t = tables["isolation"]
        sub = t[t["objects"] == "with neighbour"]
        for model, group in sub.groupby("model", sort=False):
            rmse = group.set_index("isolation")["rmse"]
            if {"none", "ObjectIsolator"} <= set(rmse.index):
                diff = rmse["ObjectIsolator"] - rmse["none"]
                verdict = _verdict(-diff, rmse["none"])
                out.append(
                    f"**Object isolation** ({model}, objects with a neighbour): "
                    f"{rmse['none']:.3f} without, {rmse['ObjectIsolator']:.3f} with "
                    f"ObjectIsolator: isolation {verdict} ({diff:+.3f} dex)."
                )
    return out


# -- figures ------------------------------------------------------------------------------------
def _eda_figures(cube, data, folder):
    """Cutouts, spectra and the SFR distribution by object type and FLAG."""
    from ..datasets import HiSSCube
    from ..datasets._loader import _to_sdss_units
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
    _to_sdss_units(arrays)
    figures = {}
    fig = plot_cutouts(arrays["image"], titles=titles)
    figures["cutouts"] = (save_figure(fig, folder / "cutouts.png"), "ugriz cutouts (64 px)")
    fig = plot_spectra(
        wavelength,
        arrays["spectrum"],
        labels=titles,
        redshift=data.frame["Z"].to_numpy()[picks],
        ylabel=r"$f_\lambda$ [$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\AA^{-1}$]",
    )
    figures["spectra"] = (
        save_figure(fig, folder / "spectra.png"),
        "spectra with the emission lines marked",
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
    """The rows of the comparison figure, and what they show (for the caption).

    The cross-validation folds where they were run (their mean and spread), else the test
    split: never both, whose average would be neither score. The FLAG and isolation studies
    label each model with its configuration; the isolation study shows the objects with a
    neighbour, or all objects when no test object has one."""
    frame = scores
    if name in ("flag", "isolation"):
        frame = frame.assign(model=frame["model"] + " / " + frame.iloc[:, 1].astype(str))
    which = ""
    if name == "isolation":
        if (frame["objects"] == "with neighbour").any():
            frame, which = (
                frame[frame["objects"] == "with neighbour"],
                ", objects with a neighbour",
            )
        else:
            frame, which = frame[frame["objects"] == "all"], ", all objects (none has a neighbour)"
    if (frame["split"] == "cv").any():
        return frame[frame["split"] == "cv"], f"cross-validated RMSE (mean ± std){which}"
    return frame[frame["split"] == "test"], f"test RMSE{which}"


def _result_figures(name, scores, predictions, data, folder):
    from ..plotting import (
        plot_model_comparison,
        plot_pareto,
        plot_predicted_vs_true,
        plot_residuals,
        plot_resolution_heatmap,
        save_figure,
    )

    figures = {}
    floor = data.noise_floor if data is not None else None
    if name == "resolution":
        fig = plot_resolution_heatmap(
            scores[scores["split"] == "test"], value=["rmse", "fit_time"], noise_floor=floor
        )
        figures["resolution_heatmap"] = (
            save_figure(fig, folder / "resolution_heatmap.png"),
            "test RMSE and fit time for each image size x spectrum length",
        )
        fig = plot_pareto(scores[scores["split"] == "test"], cost="fit_time", value="rmse",
                          noise_floor=floor)  # fmt: skip
        figures["resolution_pareto"] = (
            save_figure(fig, folder / "resolution_pareto.png"),
            "accuracy against fit time, with the Pareto front",
        )
    else:
        frame, what = _comparison_frame(name, scores)
        fig = plot_model_comparison(frame, value="rmse", noise_floor=floor)
        figures[f"{name}_comparison"] = (
            save_figure(fig, folder / f"{name}_comparison.png"),
            f"{name} study: {what}",
        )
    if name in ("modality", "fusion", "baseline") and len(predictions) and data is not None:
        best = scores[scores["split"] == "test"].sort_values("rmse").iloc[0]["model"]
        pred = predictions[predictions["model"] == best]
        fig = plot_predicted_vs_true(
            pred["y_true"], pred["y_pred"], noise_floor=floor, title=f"{best} (test)"
        )
        figures[f"{name}_predicted"] = (
            save_figure(fig, folder / f"{name}_predicted_vs_true.png"),
            f"predicted against true log SFR, best {name} model ({best})",
        )
        positions = pred["position"].to_numpy()
        covariates = {"redshift": data.frame["Z"].to_numpy()[positions]}
        if "true_log_mstar" in data.frame:
            covariates["log stellar mass (truth)"] = data.frame["true_log_mstar"].to_numpy()[
                positions
            ]
        fig = plot_residuals(pred["y_true"], pred["y_pred"], covariates)
        figures[f"{name}_residuals"] = (
            save_figure(fig, folder / f"{name}_residuals.png"),
            f"residuals of {best} against redshift and mass",
        )
    import matplotlib.pyplot as plt

    plt.close("all")
    return figures


# -- the report ---------------------------------------------------------------------------------
#: The columns that name a configuration in each study's summary table.
_KEYS = {
    "baseline": ["model"],
    "modality": ["model", "modality"],
    "fusion": ["model", "fusion"],
    "resolution": ["model", "image_size", "spectrum_length"],
    "flag": ["model", "trained_on"],
    "isolation": ["model", "isolation", "objects"],
}


def _write_report(folder, data, scores, predictions, record, cube):
    """Summary tables, figures, ``report.md`` and ``report.html`` into ``folder``, from the
    studies' scores and predictions and the run's ``config.json`` record (``cube`` is where
    the cube is now)."""
    config, studies = record["settings"], record["studies"]
    tables = {name: summary_table(scores[name], _KEYS[name]) for name in studies}
    for name in studies:
        write_csv_atomic(tables[name], folder / f"{name}_summary.csv", index=False)
    figures = _eda_figures(cube, data, folder)
    for name in studies:
        figures.update(_result_figures(name, scores[name], predictions[name], data, folder))
    found = conclusions(tables)

    report = _Report("sklearn-sfr study: star-formation rates from images and spectra")
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
    report.bullets(found)
    report.heading("The data")
    for key in ("cutouts", "spectra", "sfr_distribution"):
        report.figure(*figures[key])
    for name in studies:
        report.heading(f"{name.capitalize()} study")
        report.table(tables[name])
        for key, (path, caption) in figures.items():
            if key.startswith(name):
                report.figure(path, caption)
    write_text_atomic(folder / "report.md", report.markdown())
    write_text_atomic(folder / "report.html", report.html())
    return tables, found


def _study_data(cube, config):
    """The FLAG=0 objects at the study's main zooms: what a run trains on and what its report
    draws (a re-render must load exactly what the run did)."""
    from ..datasets import load_hisscube

    return load_hisscube(
        cube, image_zoom=config["image_zoom"], spectrum_zoom=config["spectrum_zoom"], flag=0
    )


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

    Returns
    -------
    dict
        ``tables``, ``conclusions`` and ``out``, as :func:`run_study` returns them.
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
    data = _study_data(cube, config)
    with folder as tmp:
        tables, found = _write_report(tmp, data, scores, predictions, record, cube)
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


def _settings_lines(config, studies, random_state):
    """What the numbers depend on, in words: the split, the networks' training, the grids."""
    neural = ", ".join(f"{k}={v}" for k, v in config["neural_params"].items()) or "defaults"
    lines = [
        f"Split: {1 - config['test_size']:.0%} training / {config['test_size']:.0%} test "
        f"(seed {random_state}); cross-validation: "
        + (f"{config['cv']} folds" if config["cv"] else "none (test split only)")
        + ".",
        f"Networks: {neural}; images {CUTOUT_SIZES[config['image_zoom']]} px, spectra "
        f"{n_wavelength(config['spectrum_zoom'])} px unless a study varies them.",
    ]
    if "resolution" in studies:
        params = ", ".join(f"{k}={v}" for k, v in config["resolution_params"].items())
        lines.append(
            f"Resolution study: {config['resolution_model']} ({params}) on images of "
            + ", ".join(str(CUTOUT_SIZES[z]) for z in config["image_zooms"])
            + " px x spectra of "
            + ", ".join(str(n_wavelength(z)) for z in config["spectrum_zooms"])
            + " px."
        )
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
        Small networks, few epochs, the coarsest resolutions (:data:`QUICK_SETTINGS`): a
        check that everything runs, not an answer.
    n_jobs : int, default=None
        Parallel cross-validation folds.
    random_state : int, default=0
        Seeds the split and every model.
    overwrite : bool, default=False
        Replace an existing report folder. Only a folder this library wrote (its marker
        file lists every file in it) is ever replaced; a folder holding anything else, or
        the cube, is refused before any work.
    verbose : bool, default=True
        Print progress.
    **settings
        Any of :data:`FULL_SETTINGS` (e.g. ``neural_params={"max_epochs": 20}``,
        ``image_zooms=(2, 3)``); a dict adds to the default dict.

    Returns
    -------
    dict
        ``tables`` (study name -> summary DataFrame), ``scores`` (study name -> full scores),
        ``conclusions`` (list of str), ``out`` (Path), ``seconds`` (float).
    """
    cube, out = Path(cube), Path(out)
    config = _check_study(cube, studies, quick, settings)
    # Before any work: an output we may not write or replace (a folder holding a user's
    # files, the cube's own folder) is refused now (utils._outputs).
    folder = OutputFolder(out, kind="study", overwrite=overwrite, inputs=[cube])
    with folder as tmp:
        result = _run_into(
            tmp, cube, str(cube.resolve()), studies=studies, quick=quick, n_jobs=n_jobs,
            random_state=random_state, verbose=verbose, config=config,
        )  # fmt: skip
    return {**result, "out": out}


def _check_study(cube, studies, quick, settings):
    """What ``run_study`` checks before any work; returns the run's settings."""
    from ..datasets import HiSSCube

    if not cube.is_file():
        raise FileNotFoundError(f"cube not found: {cube}")
    with HiSSCube(cube) as opened:
        opened.validate()  # a damaged zoom fails now, not after an hour of other studies
    unknown = [s for s in studies if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {list(STUDIES)}")
    return _settings(quick, settings)


def _run_into(tmp, cube, recorded_cube, *, studies, quick, n_jobs, random_state, verbose,
              config):  # fmt: skip
    """Run the studies on ``cube`` and write the report into the (temporary) folder ``tmp``;
    ``config.json`` names the cube as ``recorded_cube`` (relative: inside the folder)."""
    from ..datasets._fingerprint import cube_fingerprint
    from . import _studies

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
                  random_state=random_state, neural_params=neural, verbose=verbose)  # fmt: skip
    data = _study_data(cube, config)
    say(
        f"{cube}: {len(data.y)} FLAG=0 objects, images {data.X['image'].shape[-1]} px, "
        f"spectra {data.X['spectrum'].shape[-1]} px, noise floor "
        + (f"{data.noise_floor:.3f} dex" if data.noise_floor is not None else "unknown")
    )
    scores, predictions = {}, {}
    runs = {
        "baseline": lambda: _studies.baseline_study(data, **common),
        "modality": lambda: _studies.modality_study(data, **common),
        "fusion": lambda: _studies.fusion_study(
            data, contrastive_params=config["contrastive_params"], **common
        ),
        "resolution": lambda: _studies.resolution_study(
            cube,
            model=config["resolution_model"],
            model_params=config["resolution_params"],
            image_zooms=config["image_zooms"],
            spectrum_zooms=config["spectrum_zooms"],
            **common,
        ),
        "flag": lambda: _studies.flag_study(
            cube,
            models=config["flag_models"],
            image_zoom=config["image_zoom"],
            spectrum_zoom=config["spectrum_zoom"],
            **common,
        ),
        "isolation": lambda: _studies.isolation_study(
            data, models=config["isolation_models"], **common
        ),
    }
    for name in studies:
        say(f"{name} study")
        t0 = time.perf_counter()
        scores[name], predictions[name] = runs[name]()
        # Each study's raw results are kept as soon as they exist.
        write_csv_atomic(scores[name], tmp / f"{name}_scores.csv", index=False)
        write_csv_atomic(predictions[name], tmp / f"{name}_predictions.csv", index=False)
        say(f"{name} study done in {time.perf_counter() - t0:.0f} s")
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
    tables, found = _write_report(tmp, data, scores, predictions, record, cube)
    return {"tables": tables, "scores": scores, "conclusions": found, "seconds": seconds}
