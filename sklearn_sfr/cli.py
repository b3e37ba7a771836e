"""The ``sklearn-sfr`` command line.

``sklearn-sfr make-cube`` writes a synthetic HiSS-Cube, ``sklearn-sfr info`` describes any cube,
``sklearn-sfr demo`` runs a small end-to-end study and writes a report folder, and
``sklearn-sfr scene`` runs the Scene (images + MFCC audio) study. Errors in the
user's input are printed as one line (``error: ...``) with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import threading
import time
import warnings
from pathlib import Path

from ._version import __version__
from .utils._stop import Stopped, clear_stop, raise_if_stopped, request_stop


class _UserError(Exception):
    """An error caused by the command's input: printed as one line."""


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _seed(text):
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value


def _n_jobs(text):
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a positive number of jobs, or -1 for all cores")
    return value


def _device(text):
    """A torch device this machine has: a typo or a GPU that is not there is refused now,
    not when the first network starts."""
    import re

    name = text.strip().lower()
    if name in ("auto", "cpu"):
        return name
    if not re.fullmatch(r"cuda(:\d+)?|mps", name):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: this PyTorch build sees no CUDA GPU (torch {torch.__version__}); use "
                "cpu or auto"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}: there are {torch.cuda.device_count()} CUDA device(s)"
            )
    elif not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS (Apple GPU) is not available here")
    return name


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


# -- make-cube -------------------------------------------------------------------------------
def _cmd_make_cube(args):
    from .datasets import make_synthetic_cube

    t0 = time.perf_counter()
    path = make_synthetic_cube(
        args.path,
        n_objects=args.n_objects,
        flagged_fraction=args.flagged_fraction,
        random_state=args.seed,
        overwrite=args.overwrite,
        verbose=not args.quiet,
    )
    elapsed = time.perf_counter() - t0
    size = os.path.getsize(path) / 2**30
    print(f"wrote {path} ({size:.2f} GiB) in {elapsed:.0f} s")
    if not args.quiet:
        _print_info(path)


# -- info ------------------------------------------------------------------------------------
def _print_info(path):
    import numpy as np
    import pandas as pd

    from .datasets import HiSSCube

    with HiSSCube(path) as cube:
        cube.validate()  # a damaged cube is an error, not a partial description
        frame = cube.read_frame()
        kind = "reference build" if cube.is_reference else cube._file.attrs["written_by"]
        if isinstance(kind, bytes):
            kind = kind.decode("utf-8", "replace")
        print(f"{cube.path}  ({kind})")
        print(f"objects: {cube.n_objects}")
        if cube.has_images():
            sizes = ", ".join(f"{cube.image_size(z)}px" for z in cube.zooms)
            print(f"images: 5 bands (u, g, r, i, z), zooms {sizes}")
        else:
            print("images: none (spectrum-only cube)")
        levels = ", ".join(str(len(cube.wavelength(z))) for z in cube.zooms)
        grid = cube.wavelength(0)
        print(f"spectra: levels of {levels} pixels, {grid[0]:.1f}-{grid[-1]:.1f} A")
        if frame.empty:
            print("\nno objects: nothing more to describe")
            return
        # A damaged FLAG (inf, 1e300, 0.5) is described as it is, not cast to int (which
        # overflows on inf); "+ 0.0" prints -0.0 as 0.
        flag = frame["FLAG"].map(lambda v: "missing" if pd.isna(v) else f"FLAG={v + 0.0:g}")
        counts = pd.crosstab(flag, frame["object_type"], margins=True, margins_name="all")
        # The values already say "FLAG=...": the index name would print as an extra row.
        counts.index.name = None
        print("\nobjects by flag and type:")
        print(counts.to_string())
        with np.errstate(invalid="ignore", over="ignore"):  # an inf label: inf/NaN, no noise
            stats = frame.groupby(flag)["AVG"].describe()[
                ["count", "mean", "std", "min", "50%", "max"]
            ]
        stats.index.name = None
        print("\nlabel AVG (log SFR [M_sun/yr]) by flag:")
        print(stats.round(3).to_string())
        from .datasets._selection import LOG_SFR_LIMIT

        avg = frame["AVG"].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            unusable = np.flatnonzero(np.abs(avg) > LOG_SFR_LIMIT)  # inf, 1e300; not NaN
        if unusable.size:
            print(
                f"labels AVG that are not log SFRs (|AVG| > {LOG_SFR_LIMIT:g} or inf): "
                f"{unusable.size}, objects {', '.join(map(str, unusable[:5]))}"
                f"{', ...' if unusable.size > 5 else ''} (loading them is an error)"
            )
        if cube.noise_floor is not None:
            print(
                f"\nnoise floor (RMSE of AVG vs true log SFR, FLAG=0): {cube.noise_floor:.3f} dex"
            )
        n_multi = int(np.sum(frame["n_spectra"] > 1))
        if n_multi:
            print(f"objects with several spectra: {n_multi}")


def _cmd_info(args):
    _print_info(args.path)


# -- ingest ----------------------------------------------------------------------------------
def _cmd_ingest(args):
    from .datasets import ingest_sdss_fits

    try:
        result = ingest_sdss_fits(
            args.out,
            spectra=args.spectra,
            frames=args.frames,
            mpa_info=args.mpa_info,
            mpa_sfr=args.mpa_sfr,
            labels=args.labels,
            edge=args.edge,
            match_radius=args.match_radius,
            classes=args.classes,
            overwrite=args.overwrite,
            verbose=not args.quiet,
        )
    except ValueError as exc:
        # No object kept (the summary is already printed, the report is on disk), or a label
        # table it cannot use (the first line names the file, column and row).
        raise _UserError(str(exc).splitlines()[0]) from exc
    print(f"wrote {result.path} and {result.table_path}")


def _add_ingest_parser(sub):
    p = sub.add_parser(
        "ingest", help="build a HiSS-Cube from SDSS spec-*.fits, frame-*.fits and MPA-JHU files"
    )
    p.add_argument("out", help="output .h5 file (a <name>_ingest.csv report is written beside it)")
    p.add_argument(
        "--spectra", nargs="+", required=True,
        help="spec-PLATE-MJD-FIBER.fits files, folders or globs (quote globs)",
    )  # fmt: skip
    p.add_argument(
        "--frames", nargs="+", default=None,
        help="frame-[ugriz]-*.fits(.bz2) files, folders or globs; none: spectrum-only cube",
    )  # fmt: skip
    p.add_argument("--mpa-info", default=None, help="MPA-JHU gal_info FITS file")
    p.add_argument("--mpa-sfr", default=None, help="MPA-JHU gal_totsfr or gal_fibsfr FITS file")
    p.add_argument(
        "--labels", default=None, metavar="TABLE",
        help="instead of --mpa-info/--mpa-sfr: one table astropy reads (FITS, CSV, ECSV, "
        "VOTable) with PLATEID/plate, MJD, FIBERID and AVG, FLAG (DR7 names) or sfr_tot_* "
        "(galSpecExtra names), matched to the spectra on the identifiers",
    )  # fmt: skip
    p.add_argument(
        "--edge", choices=("pad", "skip"), default="pad",
        help="cutouts running off a frame: pad with NaN and flag (default) or skip",
    )  # fmt: skip
    p.add_argument(
        "--match-radius", type=float, default=1.5,
        help="arcsec within which spectra are one object (default 1.5)",
    )  # fmt: skip
    p.add_argument(
        "--classes", nargs="+", default=None, help="keep only these classes (GALAXY, QSO, STAR)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing cube and report")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=_cmd_ingest)


# -- demo ------------------------------------------------------------------------------------
def _cmd_demo(args):
    from ._demo import run_demo

    run_demo(
        out=Path(args.out),
        n_objects=args.n_objects,
        cv=args.cv,
        random_state=args.seed,
        cube=args.cube,
        overwrite=args.overwrite,
    )


# -- study -----------------------------------------------------------------------------------
def _cmd_study(args):
    import json

    from .experiments._report import conclusion_lines, run_study

    settings = {}
    if args.max_epochs is not None:
        settings["neural_params"] = {"max_epochs": args.max_epochs}
    if args.device is not None:
        settings.setdefault("neural_params", {})["device"] = args.device
    if args.cv is not None:
        settings["cv"] = args.cv
    if args.repeats is not None:
        settings["repeats"] = args.repeats
    if args.settings:
        try:
            extra = json.loads(args.settings)
        except json.JSONDecodeError as exc:
            raise _UserError(f"--settings is not valid JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise _UserError(
                f"--settings must be a JSON object such as '{{\"cv\": 3}}', got {args.settings}"
            )
        # A dict in --settings adds to the options' dict: --max-epochs is not lost.
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                value = {**settings[key], **value}
            settings[key] = value
    from .datasets._reader import check_cube

    check_cube(args.cube)  # a clear one-line error before any work
    with _dask_scheduler(args.scheduler):
        result = run_study(
            args.cube,
            args.out,
            studies=args.studies,
            quick=args.quick,
            # On a cluster every fold (or model) at once, unless --n-jobs says otherwise.
            n_jobs=-1 if args.scheduler and args.n_jobs is None else args.n_jobs,
            random_state=args.seed,
            overwrite=args.overwrite,
            verbose=not args.quiet,
            **settings,
        )
    if not args.quiet:
        for line in conclusion_lines(result["conclusions"]):
            print(line)
    print(f"report: {Path(args.out) / 'report.html'} ({result['seconds'] / 60:.1f} min)")


#: How long ``--scheduler`` waits for the dask scheduler to answer.
_SCHEDULER_TIMEOUT = "30s"


def _dask_scheduler(address):
    """Run joblib's parallel loops (the CV folds) on the dask.distributed cluster at
    ``address`` (``joblib.parallel_config(backend="dask")``); no address: a no-op."""
    import contextlib

    if not address:
        return contextlib.nullcontext()
    try:
        import joblib
        from distributed import Client
    except ImportError as exc:
        raise _UserError(
            f"--scheduler needs dask.distributed ({exc}): pip install 'sklearn-sfr[scale]'"
        ) from exc
    stack = contextlib.ExitStack()
    try:
        client = stack.enter_context(Client(address, timeout=_SCHEDULER_TIMEOUT))
    except OSError as exc:
        raise _UserError(f"cannot reach the dask scheduler {address}: {exc}") from exc
    stack.enter_context(joblib.parallel_config(backend="dask", wait_for_workers_timeout=60))
    del client  # the context keeps it; joblib finds it as the default client
    return stack


def _add_study_parser(sub):
    from .experiments._report import STUDIES

    p = sub.add_parser(
        "study",
        help="run the study (baselines, modalities, fusion, resolution, FLAG, isolation) "
        "and write a report",
    )
    p.add_argument("--cube", required=True, help="HiSS-Cube file (opened read-only)")
    p.add_argument("--out", default="sfr-study", help="report folder (default ./sfr-study)")
    p.add_argument(
        "--quick", action="store_true",
        help="tiny networks, few epochs, coarse resolutions: a smoke test, not an answer",
    )  # fmt: skip
    p.add_argument(
        "--studies", nargs="+", choices=STUDIES, default=list(STUDIES),
        help="which studies to run (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--n-jobs", type=_n_jobs, default=None,
        help="parallel jobs: the cross-validation folds with --cv, else the models and "
        "configurations (set OMP_NUM_THREADS=1)",
    )  # fmt: skip
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run the parallel jobs (folds, models) on this dask.distributed scheduler "
        "(tcp://host:8786; needs sklearn-sfr[scale])",
    )  # fmt: skip
    p.add_argument(
        "--cv", type=_positive_int, default=None,
        help="cross-validation folds on the training part (default: test split only)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=_positive_int, default=None,
        help="train every model K times with other seeds on the same split, so that the "
        "intervals hold the training spread too (default 1)",
    )  # fmt: skip
    p.add_argument(
        "--max-epochs", type=_positive_int, default=None,
        help="the cap on epochs of every net, which trains until early stopping "
        "(default: 100, or 3 with --quick)",
    )  # fmt: skip
    p.add_argument(
        "--device", type=_device, default=None,
        help="torch device of the nets: auto, cpu, cuda, cuda:N or mps (default auto)",
    )  # fmt: skip
    p.add_argument(
        "--settings", default=None,
        help='JSON of further settings, e.g. \'{"image_zooms": [2, 3]}\'',
    )  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_study)


# -- scene -----------------------------------------------------------------------------------
def _cmd_scene(args):
    from .datasets import load_scene, make_synthetic_scene
    from .datasets._scene import CSV_NAME
    from .experiments import scene_study, write_scene_report
    from .utils._outputs import check_output_folder

    data_dir, out = Path(args.data), Path(args.out)
    # Before any work: the report folder must be one we may write (never the data's).
    check_output_folder(out, overwrite=args.overwrite, inputs=[data_dir])
    if args.make_synthetic and not (data_dir / CSV_NAME).is_file():
        if data_dir.exists() and any(data_dir.iterdir()):
            raise _UserError(
                f"--make-synthetic: {data_dir} is not empty and holds no {CSV_NAME}; give an "
                "empty or new folder"
            )
        if data_dir.exists():
            data_dir.rmdir()
        print(f"writing a synthetic Scene set to {data_dir} ...", flush=True)
        make_synthetic_scene(data_dir, random_state=args.seed)
    if not (data_dir / CSV_NAME).is_file():
        raise _UserError(
            f"{data_dir} holds no {CSV_NAME}: give the folder of the Scene set (dataset.csv "
            "and images/), or add --make-synthetic to write a synthetic one there"
        )
    _check_scene_memory(data_dir, args.image_size)
    t0 = time.perf_counter()
    data = load_scene(data_dir, image_size=args.image_size)
    print(
        f"{len(data.frame)} frames, {len(data.classes2)} scene classes; cross-validating"
        f"{' (quick)' if args.quick else ''} ...",
        flush=True,
    )
    scores, predictions = scene_study(
        data,
        n_splits=args.cv,
        quick=args.quick,
        random_state=args.seed,
        return_predictions=True,
        verbose=True,
    )
    description = (
        f"Data: `{data_dir}`, {len(data.frame)} frames at {args.image_size}x{args.image_size} "
        f"px, {len(data.audio_columns)} MFCC values each; CLASS2: "
        f"{', '.join(map(str, data.classes2))}."
        + (
            " **Quick mode**: tiny networks and a subsample, a smoke test only."
            if args.quick
            else ""
        )
    )
    paths = write_scene_report(
        out,
        scores,
        predictions,
        description=description,
        data_dir=data_dir,
        quick=args.quick,
        overwrite=args.overwrite,
    )
    print(f"report written to {paths['report']} in {time.perf_counter() - t0:.0f} s")


#: Copies of the frames a Scene run holds at once (the loaded frames, the flattened and
#: scaled copies the models train on).
_SCENE_COPIES = 4


def _check_scene_memory(data_dir, image_size):
    """Refuse an ``--image-size`` whose frames cannot fit in memory, with the estimate."""
    import pandas as pd

    from .datasets._scene import CSV_NAME
    from .utils._memory import check_memory

    try:
        n_frames = len(pd.read_csv(Path(data_dir) / CSV_NAME, usecols=[0]))
    except (OSError, ValueError):
        return  # load_scene says what is wrong with the table
    needed = _SCENE_COPIES * n_frames * 3 * image_size**2 * 4  # float32 RGB
    check_memory(
        needed,
        what=f"--image-size {image_size} ({n_frames} frames of {image_size}x{image_size} px)",
        advice="choose a smaller --image-size",
    )


def _cmd_report(args):
    from .experiments._report import conclusion_lines, render_report

    result = render_report(args.folder, verbose=not args.quiet)
    if not args.quiet:
        for line in conclusion_lines(result["conclusions"]):
            print(line)
    print(f"report: {Path(args.folder) / 'report.html'}")


def _add_report_parser(sub):
    p = sub.add_parser(
        "report",
        help="rewrite a study folder's report and figures from its saved scores (no training)",
        description=(
            "Render the tables, figures, report.md and report.html of a folder written by "
            "'sklearn-sfr study' again from its *_scores.csv, *_predictions.csv and "
            "config.json, with this version's report code. The cube it names must exist."
        ),
    )
    p.add_argument("folder", help="a report folder written by 'sklearn-sfr study'")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the report's path")
    p.set_defaults(func=_cmd_report)


def _add_scene_parser(sub):
    p = sub.add_parser(
        "scene",
        help="the Scene study: trees and neural fusion on frames + MFCC audio, two splits",
    )
    p.add_argument("--data", required=True, help="Scene set folder (dataset.csv + images/)")
    p.add_argument("--out", default="scene-report", help="report folder (default ./scene-report)")
    p.add_argument("--quick", action="store_true", help="tiny models on a subsample (smoke test)")
    p.add_argument(
        "--make-synthetic", action="store_true",
        help="write the default synthetic Scene set to --data first if it holds no dataset.csv",
    )  # fmt: skip
    p.add_argument("--image-size", type=_positive_int, default=32, help="frame size (default 32)")
    p.add_argument("--cv", type=_positive_int, default=3, help="folds per split (default 3)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier Scene report at --out (never a folder holding other files)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_scene)


# -- tune ------------------------------------------------------------------------------------
def _deprecated_zoom_options(args):
    """``--image-size PX`` and ``--spectrum-level L`` (earlier releases) still work, with a
    warning naming the option that replaces them."""
    from .datasets._layout import CUTOUT_SIZES

    if args.image_size is not None:
        args.image_zoom = CUTOUT_SIZES.index(args.image_size)
        warnings.warn(
            f"--image-size is deprecated and will be removed in the next release; use "
            f"--image-zoom {args.image_zoom} ({args.image_size} px)",
            FutureWarning,
            stacklevel=2,
        )
    if args.spectrum_level is not None:
        args.spectrum_zoom = args.spectrum_level
        warnings.warn(
            f"--spectrum-level is deprecated and will be removed in the next release; use "
            f"--spectrum-zoom {args.spectrum_level}",
            FutureWarning,
            stacklevel=2,
        )


def _cmd_tune(args):
    from .experiments import tune

    _deprecated_zoom_options(args)
    try:
        result = tune(
            args.cube,
            args.estimator,
            n_trials=args.n_trials,
            out=args.out,
            storage=args.storage or None,
            study_name=args.study_name,
            image_zoom=args.image_zoom,
            spectrum_zoom=args.spectrum_zoom,
            cv=args.cv,
            timeout=args.timeout,
            random_state=args.seed,
            heartbeat_interval=args.heartbeat or None,
            verbose=0 if args.quiet else 1,
        )
    except Exception as exc:
        if not str(exc).startswith("no trial of the study"):
            raise
        raise _UserError(str(exc)) from exc  # every trial failed: say why, in one line

    search, trials, states = result.search, result.trials, result.summary["states"]
    print(
        f"study {result.study_name!r} in {result.storage}: {len(trials)} trials "
        f"({search.n_trials_} this run, {result.elapsed:.0f} s); "
        + ", ".join(f"{k.lower()} {v}" for k, v in sorted(states.items()))
    )
    floor = "" if result.noise_floor is None else f" (noise floor {result.noise_floor:.3f} dex)"
    print(f"best trial {search.best_trial_.number}: CV RMSE {-search.best_score_:.4f} dex{floor}")
    for key, value in search.best_params_.items():
        print(f"  {key} = {value:.4g}" if isinstance(value, float) else f"  {key} = {value}")
    done = trials[trials["state"] == "COMPLETE"].copy()
    done["rmse"] = -done["value"]
    params = [c for c in done.columns if c.startswith("params_")]
    table = done.sort_values("rmse")[["number", "rmse", *params]].head(5)
    table.columns = [c.removeprefix("params_").removeprefix("model__") for c in table.columns]
    print("\nbest trials:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {result.best_params_path} and {result.trials_path}")


def _add_tune_parser(sub):
    from .datasets._layout import CUTOUT_SIZES
    from .experiments import MODEL_NAMES

    p = sub.add_parser(
        "tune",
        help="tune a named model with Optuna (a resumable study in a SQLite or RDB storage)",
        description=(
            "Tune one of the study's models on the FLAG=0 sample of a cube with Optuna and "
            "cross-validated RMSE. Trials are stored as they finish: the same --study-name "
            "and --storage continue the study (--n-trials more trials), also after a crash, "
            "and several processes or hosts can share one study through a PostgreSQL URL."
        ),
    )
    p.add_argument("--cube", required=True, help="HiSS-Cube .h5 file (opened read-only)")
    p.add_argument("--estimator", required=True, choices=MODEL_NAMES, help="model to tune")
    p.add_argument(
        "--n-trials", type=_positive_int, required=True,
        help="trials to run now, on top of those the study already has",
    )  # fmt: skip
    p.add_argument(
        "--storage", default=None,
        help="Optuna storage: an RDB URL (sqlite:///f.db, postgresql://...) or a SQLite file "
        "path (default OUT/optuna.db)",
    )  # fmt: skip
    p.add_argument(
        "--study-name", default=None,
        help="study to create or continue (default ESTIMATOR-SIZEpx-levelLEVEL)",
    )  # fmt: skip
    p.add_argument(
        "--image-zoom", type=int, default=2, choices=(0, 1, 2, 3),
        help="cutout zoom, as load_hisscube(image_zoom=): 0..3 = 64, 32, 16, 8 px",
    )  # fmt: skip
    p.add_argument(
        "--spectrum-zoom", type=int, default=2, choices=(0, 1, 2, 3),
        help="spectral zoom, as load_hisscube(spectrum_zoom=): 0..3 = 4620, 2310, 1155, 577 px",
    )  # fmt: skip
    # The spellings of earlier releases, for one more release.
    p.add_argument(
        "--image-size", type=int, default=None, choices=CUTOUT_SIZES,
        help="deprecated: use --image-zoom",
    )  # fmt: skip
    p.add_argument(
        "--spectrum-level", type=int, default=None, choices=(0, 1, 2, 3),
        help="deprecated: use --spectrum-zoom",
    )  # fmt: skip
    p.add_argument(
        "--cv", type=_positive_int, default=3, help="cross-validation folds (default 3)"
    )
    p.add_argument(
        "--timeout", type=float, default=None, help="stop starting trials after S seconds"
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help="seed of the folds, sampler, models (default 0)"
    )
    p.add_argument(
        "--heartbeat", type=_non_negative_int, default=60, metavar="SECONDS",
        help="seconds between a running trial's heartbeats (default 60); a trial silent for "
        "two of them counts as killed and is retried by the next run (0: off)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--out", default="sfr-tune",
        help="folder for best_params.json and trials.csv (default ./sfr-tune)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_tune)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help shows its default, unless the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
        ):
            return text
        return super()._get_help_string(action)


def build_parser():
    """The argument parser of ``sklearn-sfr`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="sklearn-sfr",
        description="Multi-modal star-formation-rate learning on HiSS-Cube files.",
    )
    parser.add_argument("--version", action="version", version=f"sklearn-sfr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("make-cube", help="write a physics-based synthetic HiSS-Cube file")
    p.add_argument("path", help="output .h5 file")
    p.add_argument(
        "--n-objects", type=_positive_int, default=None,
        help="total number of objects (default: about 11,000 FLAG=0 objects plus flagged ones)",
    )  # fmt: skip
    p.add_argument(
        "--flagged-fraction", type=_fraction, default=0.2,
        help="fraction of objects with FLAG != 0 (default 0.2)",
    )  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="only the line naming the cube written"
    )
    p.set_defaults(func=_cmd_make_cube)

    p = sub.add_parser("info", help="describe a HiSS-Cube file")
    p.add_argument("path", help="a HiSS-Cube .h5 file (reference or sklearn-sfr)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "demo",
        help="build a small synthetic cube and run the quick study on it (a report with plots)",
    )
    p.add_argument("--out", default="sfr-demo", help="report folder (default ./sfr-demo)")
    p.add_argument(
        "--n-objects", type=_positive_int, default=1500,
        help="objects in the demo cube (default 1500)",
    )  # fmt: skip
    p.add_argument(
        "--cv", type=_positive_int, default=None,
        help="cross-validation folds on the training part (default: test split only)",
    )  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--cube", default=None,
        help="use this existing cube instead of building one (opened read-only)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier demo or study folder at --out (never a folder holding "
        "other files)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_demo)

    _add_ingest_parser(sub)
    _add_study_parser(sub)
    _add_report_parser(sub)
    _add_scene_parser(sub)

    _add_tune_parser(sub)
    from ._cli_models import add_parsers as _add_model_parsers

    _add_model_parsers(sub)  # fit and predict
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One line that says what is wrong, like the errors: not the source line of the library.
    print(f"warning: {message}", file=sys.stderr if file is None else file)


#: The standard library's modules whose weakref callbacks (WeakValueDictionary, finalize,
#: WeakSet) run where Python prints and drops an exception.
_CALLBACK_MODULES = (f"{os.sep}weakref.py", f"{os.sep}_weakrefset.py")


def _swallowed_here(frame):
    """Whether an exception raised in ``frame`` would be ignored: Python prints and drops
    exceptions from weakref callbacks and ``__del__`` methods ("Exception ignored in ...")."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename.endswith(_CALLBACK_MODULES):
            return True
        frame = frame.f_back
    return False


def _stop(signum, frame):
    # Recorded first: should the exception be lost all the same (a library that catches it),
    # the command still publishes nothing (``raise_if_stopped``).
    if not request_stop(signum):
        return  # an output is being moved into place: raised once it is there
    if _swallowed_here(frame):
        # Raised here the stop would be lost (the command would run on): deliver it again
        # in a moment, from ordinary code.
        threading.Timer(0.1, os.kill, (os.getpid(), signum)).start()
        return
    raise Stopped(signum)


@contextlib.contextmanager
def _cleanup_on_signals():
    """Ctrl-C, SIGTERM and SIGHUP all stop the command and clean up the same way; the
    previous handlers come back afterwards. A signal ignored when the command starts
    (``nohup``'s SIGHUP, SIGINT in a background job of a script) stays ignored."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be installed from the main thread
        return
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:  # SIGHUP: not on Windows
            continue
        if signal.getsignal(signum) == signal.SIG_IGN:
            # Ignored by whoever started us: ``nohup`` (SIGHUP), a shell's background job
            # (SIGINT). A run meant to outlive its terminal must not be stopped by it.
            continue
        previous[signum] = signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _message(exc):
    """One line for an error: without errno prefixes or the lists shutil's errors carry."""
    import shutil

    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        source, target, why = exc.args[0][0]
        return f"cannot copy {source} to {target}: {why}"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror:
        reason = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exhausted",
            errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
        }
        text = exc.strerror
        if exc.errno in reason and reason[exc.errno] not in text:
            text = f"{reason[exc.errno]} ({text})"
        return f"{text}: {exc.filename}" if exc.filename else text
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main(argv=None):
    """Entry point of the ``sklearn-sfr`` command."""
    clear_stop()
    try:
        with warnings.catch_warnings(), _cleanup_on_signals():
            # The parser imports the studies (scikit-learn, SciPy: about a second): a Ctrl-C
            # then is a stop like any other, not a KeyboardInterrupt traceback.
            args = build_parser().parse_args(argv)
            warnings.showwarning = _show_warning
            args.func(args)
            raise_if_stopped()  # a stop whose exception something swallowed
    except (Stopped, KeyboardInterrupt) as exc:
        import signal

        signum = getattr(exc, "signum", signal.SIGINT)
        word = "interrupted" if signum == signal.SIGINT else "terminated"
        print(f"{word}: nothing was left half-written", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:
        # The reader of our output went away (``info cube | head -1``): not an error of ours.
        # Python's own flush at exit would print "Broken pipe": point stdout at nothing.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (_UserError, OSError, ValueError, KeyError, TypeError, MemoryError) as exc:
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 2
    finally:
        clear_stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
