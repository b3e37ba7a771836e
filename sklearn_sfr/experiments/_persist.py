"""Fit once, keep, apply: a named model trained on a cube, saved with skops beside a model
card, and applied later to any cube with the same layout.

:func:`fit_model` trains one of the study's named models
(:data:`~sklearn_sfr.experiments.MODEL_NAMES`) on the FLAG=0 objects of a cube, scores it
on held-out validation and test objects (with bootstrap intervals) and writes a model folder:
``model.skops``, ``model_card.json`` and ``model_card.md``. :func:`load_model` reads it back,
trusting only an explicit allow-list of types, and :func:`predict_cube` applies it to every
object of a cube, refusing one whose images or spectra are not what the model was trained on.

Every output follows the library's rule (:doc:`/user_guide/robustness`): the model folder is
built under a temporary name and published with our marker, the predictions file is written
atomically and replaces only an earlier predictions file, and no output may equal, contain or
lie inside an input.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import json
import math
import pickletools
import platform
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

#: Files of a model folder.
MODEL_FILE = "model.skops"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "model_card.md"
#: The marker kind of a model folder.
_KIND = "model"
#: Version of the card's layout; a card of another version is refused by :func:`load_model`.
_CARD_VERSION = 1

#: Columns of a predictions file, in order (``log_sfr_std`` only where the model has one).
PREDICTION_COLUMNS = ("PLATEID", "MJD", "FIBERID", "cube_row", "log_sfr_pred", "log_sfr_std")
_OUR_HEADER = list(PREDICTION_COLUMNS[:5])

#: The metrics of the card and their bootstrap statistic (functions of the residuals).
_METRICS = ("rmse", "mae", "nmad", "bias", "outlier_fraction")
_OUTLIER_THRESHOLD = 0.3
_CONFIDENCE = 0.95
_INTERVAL_METHOD = "percentile"

#: The packages whose versions a card records (distribution names).
_PACKAGES = (
    "numpy", "scipy", "pandas", "scikit-learn", "skorch", "torch", "skops", "h5py", "joblib",
)  # fmt: skip
#: Packages whose version, when it differs from the card's, can change a loaded model.
_MODEL_PACKAGES = ("scikit-learn", "skorch", "torch", "numpy")

# -- the skops allow-list --------------------------------------------------------------------
#: skops types trusted on load: classes (never functions) of these packages ...
_TRUSTED_CLASS_PREFIXES = (
    "sklearn_sfr.", "sklearn.", "skorch.", "numpy.", "scipy.",
    "torch.nn.", "torch.optim.", "torch.utils.data.",
)  # fmt: skip
#: ... and these callables by name (functools.partial wraps skorch's optimizer setter).
_TRUSTED_NAMES = frozenset({"functools.partial", "skorch.setter.optimizer_setter"})
#: A skorch net stores its module and optimizer as a pickle inside the skops file, which
#: skorch unpickles without restriction when the net is loaded. The globals that pickle may
#: name: classes of these packages ...
_PICKLE_CLASS_PREFIXES = ("sklearn_sfr.neural.", "skorch.", "torch.nn.", "torch.optim.")
#: ... and these objects (containers, and torch's tensor rebuilders; skorch reads the tensor
#: bytes behind ``torch.storage._load_from_bytes`` with ``torch.load(weights_only=True)``).
_PICKLE_NAMES = frozenset(
    {
        "builtins.dict", "builtins.list", "builtins.set", "builtins.frozenset",
        "builtins.tuple", "builtins.slice", "builtins.complex",
        "collections.OrderedDict", "collections.defaultdict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch.storage._load_from_bytes",
        "torch.device", "torch.Size",
    }
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# small helpers
def _library_version():
    from .._version import __version__

    return __version__


def _versions():
    from importlib import metadata

    versions = {"sklearn-sfr": _library_version(), "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_value(value):
    """A parameter value as JSON: numbers, strings, None and lists as they are, numpy scalars
    as numbers, anything else (an estimator, a class, a callable) as its repr."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, list | tuple) and all(
        v is None or isinstance(v, bool | int | float | str) for v in value
    ):
        return [_json_value(v) for v in value]
    return repr(value)


def _import_skops():
    try:
        import skops.io as sio
    except ImportError as exc:
        raise ModuleNotFoundError(
            "saving and loading models needs the package skops, which is not installed: "
            "pip install skops"
        ) from exc
    return sio


# --------------------------------------------------------------------------------------------
# scores with bootstrap intervals
#: Fewer objects get scores without intervals: a bootstrap of a handful of objects resamples
#: the same few values (the interval of 2 objects' NMAD was [0.000, 0.548]) and its
#: percentile interval covers far less than it claims.
_MIN_INTERVAL_OBJECTS = 10


def _score_predictions(y_true, y_pred, *, n_resamples=2000, random_state=0):
    """RMSE, MAE, NMAD, bias and outlier fraction with 95 % bootstrap intervals.

    The point values are :mod:`sklearn_sfr.metrics`'; the intervals are percentile
    intervals of :func:`scipy.stats.bootstrap` over the objects (pairs of label and
    prediction resampled together).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Labels and predictions (log SFR), finite.
    n_resamples : int, default=2000
        Bootstrap resamples.
    random_state : int, default=0
        Seeds the resampling.

    Returns
    -------
    dict
        ``{"n": n, "rmse": {"value", "low", "high"}, ...}``; ``low`` and ``high`` are None
        for fewer than ``_MIN_INTERVAL_OBJECTS`` objects.
    """
    from ..metrics import score_intervals

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    scores = {"n": len(y_true)}
    if len(y_true) < _MIN_INTERVAL_OBJECTS:
        from ..metrics import bias, mean_absolute_error, nmad, outlier_fraction, rmse

        values = {
            "rmse": rmse, "mae": mean_absolute_error, "nmad": nmad, "bias": bias,
            "outlier_fraction": lambda t, p: outlier_fraction(t, p, threshold=_OUTLIER_THRESHOLD),
        }  # fmt: skip
        for name in _METRICS:
            value = float(values[name](y_true, y_pred)) if len(y_true) else float("nan")
            scores[name] = {"value": value, "low": None, "high": None}
        return scores
    with warnings.catch_warnings():
        # Identical resamples (a handful of objects) make an interval of width zero.
        warnings.simplefilter("ignore", RuntimeWarning)
        found = score_intervals(
            y_true, y_pred, _METRICS, confidence_level=_CONFIDENCE, n_resamples=n_resamples,
            method=_INTERVAL_METHOD, threshold=_OUTLIER_THRESHOLD, random_state=random_state,
        )  # fmt: skip
    for name in _METRICS:
        result = found[name]
        scores[name] = {"value": result.value, "low": result.low, "high": result.high}
    return scores


def _interval_text(score, *, digits=3, percent=False):
    def fmt(v):
        return f"{100 * v:.0f} %" if percent else f"{v:.{digits}f}"

    if score["low"] is None:
        return fmt(score["value"])
    return f"{fmt(score['value'])} [{fmt(score['low'])}, {fmt(score['high'])}]"


def _scores_line(scores, metrics=_METRICS):
    """One line of scores with their intervals, as ``fit`` and ``predict`` print it."""
    names = {"rmse": "RMSE", "mae": "MAE", "nmad": "NMAD", "bias": "bias"}
    parts = []
    for m in metrics:
        if m == "outlier_fraction":
            parts.append(f"outliers (>{_OUTLIER_THRESHOLD} dex) {_interval_text(scores[m])}")
        else:
            parts.append(f"{names[m]} {_interval_text(scores[m])} dex")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# parameters from tune
def _read_one(params):
    """``(params, source, tune config, file)`` of a dict or a JSON file."""
    if isinstance(params, dict):
        return dict(params), None, None, None
    path = Path(params)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"parameter file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON file of parameters: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(record).__name__}")
    if "best_params" in record:
        best = record["best_params"]
        if not isinstance(best, dict):
            raise ValueError(f"{path}: 'best_params' must be a JSON object of parameters")
        source = {
            "file": str(path),
            "estimator": record.get("estimator"),
            "study_name": record.get("study_name"),
            "best_trial": record.get("best_trial"),
            "best_cv_rmse": record.get("best_rmse"),
        }
        return dict(best), source, record.get("config") or {}, path
    return dict(record), {"file": str(path)}, None, path


def _read_params(params):
    """``(params dict, sources, tune config or None, files)`` from None, a dict, a JSON file
    (``best_params.json`` of ``tune``, or a flat JSON object of parameters) or a list of
    them, merged in order (a later one wins)."""
    if params is None:
        return {}, [], None, []
    items = list(params) if isinstance(params, list | tuple) else [params]
    merged, sources, config, files = {}, [], None, []
    for item in items:
        values, source, tuned, path = _read_one(item)
        merged.update(values)
        if source is not None:
            sources.append(source)
        if tuned is not None:
            config = tuned
        if path is not None:
            files.append(path)
    return merged, sources, config, files


def _resolve_zooms(image_zoom, spectrum_zoom, config, name):
    """The zooms to load: given, else the tune study's, else 16 px / level 2 (tune's)."""
    from ..datasets._layout import CUTOUT_SIZES

    tuned_zoom = tuned_level = None
    if config:
        if config.get("image_size") in CUTOUT_SIZES:
            tuned_zoom = CUTOUT_SIZES.index(config["image_size"])
        if config.get("spectrum_level") in (0, 1, 2, 3):
            tuned_level = config["spectrum_level"]
    for given, tuned, what in (
        (image_zoom, tuned_zoom, "image_zoom"),
        (spectrum_zoom, tuned_level, "spectrum_zoom"),
    ):
        if given is not None and tuned is not None and given != tuned:
            warnings.warn(
                f"the parameters of {name!r} were tuned with {what}={tuned}; fitting with "
                f"{what}={given}",
                stacklevel=3,
            )
    if image_zoom is None:
        image_zoom = 2 if tuned_zoom is None else tuned_zoom
    if spectrum_zoom is None:
        spectrum_zoom = 2 if tuned_level is None else tuned_level
    return image_zoom, spectrum_zoom


# --------------------------------------------------------------------------------------------
# the card
def _geometry(cube, modalities, image_zoom, spectrum_zoom):
    """What a model reads from a cube: the shapes and band order it must find again."""
    from ..datasets import HiSSCube

    with HiSSCube(cube) as opened:
        geometry = {"modalities": list(modalities)}
        if "image" in modalities:
            geometry.update(
                image_zoom=int(image_zoom),
                image_size=int(opened.image_size(image_zoom)) if opened.has_images() else None,
                bands=list(opened.band_names),
            )
        if "spectrum" in modalities:
            grid = opened.wavelength(spectrum_zoom)
            geometry.update(
                spectrum_zoom=int(spectrum_zoom),
                spectrum_length=len(grid),
                wavelength_range=[round(float(grid[0]), 4), round(float(grid[-1]), 4)],
            )
    return geometry


def _history(model):
    """The skorch history of the final step, per epoch (train/valid loss, lr, seconds)."""
    step = model[-1]

    def epochs(net):
        rows = []
        for entry in net.history:
            row = {"epoch": int(entry["epoch"])}
            for key, column in (
                ("train_loss", "train_loss"),
                ("valid_loss", "valid_loss"),
                ("event_lr", "lr"),
                ("dur", "seconds"),
            ):
                if key in entry:
                    row[column] = _json_value(float(entry[key]))
            rows.append(row)
        return rows

    if not hasattr(step, "net_"):
        return None
    history = {"regression": epochs(step.net_)}
    if hasattr(step, "pretrain_net_"):
        history["pretraining"] = epochs(step.pretrain_net_)
    return history


def _params_record(model):
    """Every parameter of the pipeline's steps, as JSON."""
    params = model.get_params(deep=True)
    return {k: _json_value(v) for k, v in sorted(params.items()) if "__" in k}


def _predicts_std(model):
    return getattr(model[-1], "loss", None) == "gaussian_nll"


def _markdown(card):
    """The human-readable model card."""
    geo, sel, data = card["inputs"], card["selection"], card["cube"]
    reads = []
    if "image" in geo["modalities"]:
        reads.append(
            f"ugriz images of {geo['image_size']}x{geo['image_size']} px (zoom "
            f"{geo['image_zoom']}; bands in the order {', '.join(geo['bands'])})"
        )
    if "spectrum" in geo["modalities"]:
        lo, hi = geo["wavelength_range"]
        reads.append(
            f"spectra of {geo['spectrum_length']} pixels (level {geo['spectrum_zoom']}, "
            f"{lo:.1f}-{hi:.1f} A)"
        )
    split = sel["split"]
    floor = "unknown" if data["noise_floor"] is None else f"{data['noise_floor']:.3f} dex"
    lines = [
        f"# Model card: {card['model']['name']}",
        "",
        f"Predicts log SFR [log10 M_sun/yr] (the MPA-JHU DR7 `{card['target']}` value) of SDSS "
        f"objects: {card['model']['description']}. Reads {' and '.join(reads)}.",
        "",
        f"Written by sklearn-sfr {card['versions']['sklearn-sfr']} on {card['created']}. "
        f"Apply it with `sklearn-sfr predict --model DIR --cube CUBE --out predictions.csv` "
        "or `sklearn_sfr.experiments.predict_cube(DIR, CUBE)`.",
        "",
        "## Data",
        "",
        "| | |",
        "|---|---|",
        f"| cube | `{data['path']}` |",
        f"| content fingerprint | `{data['fingerprint']}` |",
        f"| selection | {sel['flag_rule']}: {sel['n_selected']} of {sel['n_objects']} objects"
        + (f" ({sel['n_unlabelled']} without a label left out)" if sel["n_unlabelled"] else "")
        + " |",
        f"| split | {len(sel['rows']['train'])} training, {len(sel['rows']['validation'])} "
        f"validation, {len(sel['rows']['test'])} test objects (seed {split['random_state']}; "
        f"{split['rule']}) |",
        f"| noise floor | {floor} |",
        "",
        "The cube rows of every training, validation and test object are in `model_card.json`.",
        "",
        "## Scores",
        "",
        f"95 % intervals: {card['scores']['interval']}.",
        "",
    ]
    parts = [p for p in ("validation", "test") if card["scores"].get(p)]
    header = "| metric | " + " | ".join(f"{p} ({card['scores'][p]['n']})" for p in parts) + " |"
    lines += [header, "|---|" + "---|" * len(parts)]
    labels = {
        "rmse": "RMSE [dex]",
        "mae": "MAE [dex]",
        "nmad": "NMAD [dex]",
        "bias": "bias [dex]",
        "outlier_fraction": f"outlier fraction (>{_OUTLIER_THRESHOLD} dex)",
    }
    for m in _METRICS:
        cells = [_interval_text(card["scores"][p][m]) for p in parts]
        lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
    lines += ["", "## Parameters", ""]
    for source in card["parameters"]["sources"]:
        if source.get("estimator") is not None:
            rmse = source.get("best_cv_rmse")
            lines += [
                f"Tuned by `sklearn-sfr tune` (`{source['file']}`, study "
                f"{source.get('study_name')!r}, trial {source.get('best_trial')}"
                + (f", CV RMSE {rmse:.4f} dex" if isinstance(rmse, int | float) else "")
                + "). If that study ran on this cube, the test objects took part in its "
                "cross-validation and the test score above is optimistic.",
                "",
            ]
        else:
            lines += [f"Parameters read from `{source['file']}`.", ""]
    given = card["parameters"]["given"]
    if given:
        lines += ["| given | value |", "|---|---|"]
        lines += [f"| `{k}` | `{v}` |" for k, v in sorted(given.items())]
        lines.append("")
    lines.append("Every parameter of the pipeline is in `model_card.json` (`parameters.all`).")
    history = card["training"]["history"]
    if history:
        for stage, rows in history.items():
            lines += ["", f"## Training history ({stage})", ""]
            lines += [
                "Losses in standardised target units; `valid loss` is the network's own "
                "early-stopping hold-out, a part of the training objects.",
                "",
                "| epoch | train loss | valid loss | lr | seconds |",
                "|---|---|---|---|---|",
            ]
            shown = rows if len(rows) <= 20 else [*rows[:10], None, *rows[-10:]]
            for row in shown:
                if row is None:
                    lines.append("| ... | | | | |")
                    continue
                cells = [
                    str(row["epoch"]),
                    *(
                        f"{row[k]:.4g}" if isinstance(row.get(k), float) else "-"
                        for k in ("train_loss", "valid_loss", "lr", "seconds")
                    ),
                ]
                lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
    lines += [f"| {k} | {v or 'not installed'} |" for k, v in card["versions"].items()]
    lines += [
        "",
        f"`{MODEL_FILE}` SHA-256: `{card['model']['sha256']}`. Loading trusts only the types "
        "listed in `model_card.json` (`model.trusted_types`).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# fit
def fit_model(
    cube,
    name,
    out,
    *,
    params=None,
    image_zoom=None,
    spectrum_zoom=None,
    test_size=0.2,
    validation_size=0.2,
    random_state=0,
    n_resamples=2000,
    overwrite=False,
    verbose=True,
):
    """Train a named model on a cube's FLAG=0 objects and save it with its model card.

    The FLAG=0 objects with a label are split into training, validation and test objects:
    the test objects are those of :func:`study_split` (the same as ``sklearn-sfr study``'s
    with the same seed), and the validation objects are drawn from the rest. The model is
    fitted on the training objects only and scored on the other two, with 95 % percentile
    bootstrap intervals over the objects. The folder ``out`` then holds

    - ``model.skops``: the fitted pipeline, saved with skops;
    - ``model_card.json``: library and dependency versions, the cube's path, content
      fingerprint and selection (zooms, FLAG rule, the cube rows of every training,
      validation and test object), what the model reads (image size, band order, spectrum
      length), the parameters, the training history of a neural model (skorch's train and
      valid loss per epoch) and the validation and test scores with their intervals;
    - ``model_card.md``: the same for people.

    Parameters
    ----------
    cube : str or path-like
        A HiSS-Cube file (opened read-only).
    name : str
        One of :data:`~sklearn_sfr.experiments.MODEL_NAMES`.
    out : str or path-like
        The model folder to write: new, empty, or (with ``overwrite``) an earlier model
        folder of ours. It must not be, contain or lie inside an input.
    params : dict, str, path-like, list of them or None, default=None
        Pipeline parameters (``{"model__lr": 3e-3}``; a plain name is a parameter of the
        ``model`` step, see :func:`~sklearn_sfr.experiments.make_model`), or a JSON file:
        the ``best_params.json`` that ``sklearn-sfr tune`` writes (its ``best_params``), or a
        JSON object of parameters. A list is merged in order, a later entry winning
        (``["best_params.json", {"model__max_epochs": 50}]``).
    image_zoom, spectrum_zoom : {0, 1, 2, 3} or None, default=None
        Cutout size (64, 32, 16, 8 px) and spectral level (4620, 2310, 1155, 577 pixels).
        None: those ``best_params.json`` was tuned at, else 2 and 2 (``tune``'s defaults).
    test_size, validation_size : float, default=0.2
        Fractions of the selected objects held out for testing and for validation
        (``validation_size=0``: no validation objects).
    random_state : int, default=0
        Seeds the split, the model and the bootstrap.
    n_resamples : int, default=2000
        Bootstrap resamples of each interval.
    overwrite : bool, default=False
        Replace an earlier model folder of ours at ``out``.
    verbose : bool, default=True
        Print what is trained and the scores.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``model`` (the fitted Pipeline), ``card`` (the card as a dict), ``path`` (the model
        folder) and ``predictions`` (a DataFrame of the validation and test objects' labels
        and predictions).

    Raises
    ------
    ValueError
        An unknown name or parameter, a cube with too few labelled FLAG=0 objects, an
        output that is refused (see :doc:`/user_guide/robustness`).
    FileExistsError
        ``out`` exists and is not an earlier model folder of ours, or ``overwrite`` is False.

    See Also
    --------
    load_model : Read the model folder back.
    predict_cube : Apply the model to a cube.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.experiments import fit_model, predict_cube
    >>> folder = tempfile.mkdtemp()
    >>> cube = make_synthetic_cube(os.path.join(folder, "c.h5"), n_objects=80,
    ...                            random_state=0)
    >>> result = fit_model(cube, "tree-spectrum", os.path.join(folder, "model"), verbose=False)
    >>> sorted(p.name for p in result.path.iterdir() if not p.name.startswith("."))
    ['model.skops', 'model_card.json', 'model_card.md']
    >>> sorted(result.card["scores"]["test"])
    ['bias', 'mae', 'n', 'nmad', 'outlier_fraction', 'rmse']
    >>> predictions = predict_cube(result.path, cube, verbose=False)
    >>> list(predictions.columns)
    ['PLATEID', 'MJD', 'FIBERID', 'cube_row', 'log_sfr_pred']
    """
    from sklearn.model_selection import train_test_split

    from ..datasets import HiSSCube, load_hisscube
    from ..datasets._fingerprint import cube_fingerprint
    from ..datasets._reader import check_cube
    from ..datasets._selection import flag_rows
    from ..utils._outputs import OutputFolder
    from ._evaluate import study_split
    from ._models import make_model, model_modalities, model_spec

    # -- everything that can be refused, before any work --------------------------------
    spec = model_spec(name)  # an unknown name
    modalities = model_modalities(name)
    for value, what in ((test_size, "test_size"), (validation_size, "validation_size")):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"{what} must be a fraction in [0, 1), got {value!r}")
    if not test_size > 0:
        raise ValueError("test_size must be positive: the card's test scores need test objects")
    if test_size + validation_size >= 1:
        raise ValueError(
            f"test_size + validation_size must be below 1 (objects must remain to train on), "
            f"got {test_size} + {validation_size}"
        )
    given, sources, config, params_files = _read_params(params)
    for source in sources:
        if source.get("estimator") not in (None, name):
            raise ValueError(
                f"{source['file']} holds parameters tuned for {source['estimator']!r}, not "
                f"{name!r}"
            )
    from ..datasets._layout import ZOOMS

    for value, what in ((image_zoom, "image_zoom"), (spectrum_zoom, "spectrum_zoom")):
        if value is not None and value not in ZOOMS:
            raise ValueError(f"{what} must be one of {ZOOMS}, got {value!r}")
    image_zoom, spectrum_zoom = _resolve_zooms(image_zoom, spectrum_zoom, config, name)
    make_model(name, random_state=random_state, **given)  # an unknown parameter
    sio = _import_skops()
    check_cube(cube)
    folder = OutputFolder(out, kind=_KIND, overwrite=overwrite, inputs=[cube, *params_files])
    with HiSSCube(cube) as opened:
        frame = opened.read_frame()
        if "image" in modalities and not opened.has_images():
            raise ValueError(
                f"{cube} holds no image cutouts, and {name!r} reads images; choose a model "
                "that reads spectra only (tree-spectrum, tree-lines, spectrum)"
            )
        keep = flag_rows(frame, 0, opened)
    geometry = _geometry(cube, modalities, image_zoom, spectrum_zoom)

    # -- the data and the split --------------------------------------------------------
    with warnings.catch_warnings():
        # Objects without a label are counted (and left out) below, not warned about.
        warnings.filterwarnings("ignore", r".*is missing \(NaN\) for", UserWarning)
        data = load_hisscube(
            cube,
            image_zoom=image_zoom,
            spectrum_zoom=spectrum_zoom,
            flag=0,
            modalities=modalities,
        )
    labelled = np.flatnonzero(np.isfinite(data.y))
    rows = keep[labelled]  # cube rows of the objects the model may learn from
    n = len(labelled)
    n_test = math.ceil(test_size * n)
    n_valid = math.ceil(validation_size * n) if validation_size else 0
    if n - n_test - n_valid < 2 or n_test < 2 or (validation_size and n_valid < 2):
        raise ValueError(
            f"{cube} has {n} labelled FLAG=0 objects: too few to train on and hold out "
            f"{test_size:.0%} for testing and {validation_size:.0%} for validation"
        )
    rest, test = study_split(n, test_size=test_size, random_state=random_state)
    if n_valid:
        train, valid = train_test_split(rest, test_size=n_valid, random_state=random_state)
        train, valid = np.sort(train), np.sort(valid)
    else:
        train, valid = rest, np.array([], dtype=int)
    X, y = data.X[labelled], data.y[labelled]
    if verbose:
        print(
            f"{n} labelled FLAG=0 objects from {cube}: training {name!r} on {len(train)}, "
            f"validating on {len(valid)}, testing on {len(test)} (seed {random_state})",
            flush=True,
        )

    # -- fit and score -----------------------------------------------------------------
    model = make_model(name, random_state=random_state, **given)
    start = time.perf_counter()
    model.fit(X[train], y[train])
    fit_seconds = time.perf_counter() - start
    scores = {
        "interval": (
            f"{_INTERVAL_METHOD} bootstrap over objects (scipy.stats.bootstrap, "
            f"{n_resamples} resamples, labels and predictions resampled in pairs)"
        ),
        "method": _INTERVAL_METHOD,
        "confidence_level": _CONFIDENCE,
        "n_resamples": int(n_resamples),
        "outlier_threshold_dex": _OUTLIER_THRESHOLD,
        "validation": None,
        "test": None,
    }
    predictions = []
    for part, positions in (("validation", valid), ("test", test)):
        if not len(positions):
            continue
        pred = np.asarray(model.predict(X[positions]), dtype=np.float64)
        scores[part] = _score_predictions(
            y[positions], pred, n_resamples=n_resamples, random_state=random_state
        )
        predictions.append(
            pd.DataFrame(
                {
                    "split": part,
                    "cube_row": rows[positions],
                    "label": y[positions],
                    "log_sfr_pred": pred,
                }
            )
        )
        if verbose:
            print(f"{part} ({len(positions)} objects): {_scores_line(scores[part])}", flush=True)

    card = {
        "card_version": _CARD_VERSION,
        "written_by": "sklearn-sfr",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": name,
            "description": spec.description,
            "kind": spec.kind,
            "steps": [step for step, _ in model.steps],
            "estimator": f"{type(model[-1]).__module__}.{type(model[-1]).__name__}",
            "predicts_std": _predicts_std(model),
            "file": MODEL_FILE,
            "sha256": None,
            "trusted_types": None,
        },
        "target": data.target_name,
        "inputs": {**geometry},
        "cube": {
            "path": str(Path(cube).resolve()),
            "fingerprint": cube_fingerprint(cube),
            "noise_floor": data.noise_floor,
        },
        "selection": {
            "flag": [0],
            "flag_rule": "FLAG == 0 (MPA-JHU reliable)",
            "n_objects": len(frame),
            "n_selected": n,
            "n_unlabelled": int(len(data.y) - n),
            "split": {
                "test_size": float(test_size),
                "validation_size": float(validation_size),
                "random_state": _json_value(random_state),
                "rule": "test objects: experiments.study_split (those of sklearn-sfr study "
                "with this seed); validation objects: drawn from the rest",
            },
            "rows": {
                "train": rows[train].tolist(),
                "validation": rows[valid].tolist(),
                "test": rows[test].tolist(),
            },
        },
        "parameters": {
            "given": {
                (k if "__" in k else f"model__{k}"): _json_value(v) for k, v in given.items()
            },
            "sources": sources,
            "random_state": _json_value(random_state),
            "all": _params_record(model),
        },
        "training": {
            "n_objects": len(train),
            "seconds": round(fit_seconds, 3),
            "history": _history(model),
            "history_note": "skorch's history of the network (None for a tree): losses in "
            "standardised target units; valid_loss is on the network's own early-stopping "
            "hold-out (validation_fraction of the training objects)",
        },
        "scores": scores,
        "versions": _versions(),
    }

    # -- write -------------------------------------------------------------------------
    with folder as tmp:
        sio.dump(model, tmp / MODEL_FILE)
        card["model"]["sha256"] = _sha256(tmp / MODEL_FILE)
        card["model"]["trusted_types"] = sorted(sio.get_untrusted_types(file=tmp / MODEL_FILE))
        (tmp / CARD_JSON).write_text(
            json.dumps(card, indent=1, default=_json_value) + "\n", encoding="utf-8"
        )
        (tmp / CARD_MARKDOWN).write_text(_markdown(card), encoding="utf-8")
    if verbose:
        print(f"wrote {out} ({MODEL_FILE}, {CARD_JSON}, {CARD_MARKDOWN})")
    return Bunch(
        model=model,
        card=card,
        path=Path(out),
        predictions=pd.concat(predictions, ignore_index=True),
    )


# --------------------------------------------------------------------------------------------
# load
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
     "STRING", "BINSTRING", "SHORT_BINSTRING"}
)  # fmt: skip
_NO_STACK_OPS = frozenset({"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"})


class _NotPickle(Exception):
    def __init__(self, ops):
        super().__init__()
        self.ops = ops


def _opcodes(data):
    """``(opcode, argument)`` of a pickle up to STOP; raises _NotPickle with those read so far
    when the data stops being a pickle."""
    ops = []
    try:
        for op, arg, _ in pickletools.genops(data):
            ops.append((op, arg))
    except Exception as exc:  # any parse error: not (or no longer) a pickle
        raise _NotPickle(ops) from exc
    return ops


def _pickle_globals(data):
    """The globals (``module.name``) a pickle would import, without unpickling it.

    Follows the strings that ``STACK_GLOBAL`` takes from the stack through the memo; a
    global whose name is not such a string is reported as ``"<unknown>"``, so that an
    allow-list check fails safe. Data that stops being a valid pickle part-way gives the
    globals before that point: an unpickler would have run those before failing.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    set of str
    """
    found, stack, memo = set(), [], {}
    try:
        ops = list(_opcodes(data))
    except _NotPickle as exc:
        ops = exc.ops
    for op, arg in ops:
        kind = op.name
        if kind in _STRING_OPS:
            stack.append(arg)
        elif kind == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif kind in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1] if stack else None
        elif kind in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg))
        elif kind == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            found.add(f"{module}.{attr}")
            stack.append(None)
        elif kind == "STACK_GLOBAL":
            module, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
            ok = isinstance(module, str) and isinstance(attr, str)
            found.add(f"{module}.{attr}" if ok else "<unknown>")
            stack.append(None)
        elif kind not in _NO_STACK_OPS:
            stack.append(None)  # anything else: not a string any more (fails safe)
    return found


def _resolve(name):
    """The object a dotted name refers to, importing only its (already trusted) package."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _is_trusted_class(name, prefixes):
    if not name.startswith(prefixes):
        return False
    return isinstance(_resolve(name), type)


def _check_trusted(path):
    """The types of a skops file outside the allow-list (an empty list: safe to load).

    skops lists the types it does not trust by default
    (``skops.io.get_untrusted_types``); each must be a class of sklearn-sfr, scikit-learn,
    skorch, NumPy, SciPy or torch's ``nn``, ``optim`` and ``utils.data``, or one of
    ``functools.partial`` and ``skorch.setter.optimizer_setter``. A skorch network's pickled
    module and optimizer inside the file (which skorch unpickles without restriction) may name
    only torch layers and optimizers, sklearn-sfr's networks, skorch and containers.

    Parameters
    ----------
    path : str or path-like
        A ``.skops`` file.

    Returns
    -------
    trusted : list of str
        The types skops asks to trust (all on the allow-list when ``refused`` is empty).
    refused : list of str
        Those outside it, and any global of an embedded pickle outside its list.
    """
    sio = _import_skops()
    untrusted = sorted(sio.get_untrusted_types(file=path))
    refused = [
        t for t in untrusted
        if t not in _TRUSTED_NAMES and not _is_trusted_class(t, _TRUSTED_CLASS_PREFIXES)
    ]  # fmt: skip
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".bin"):
                continue
            # Every bytes member, whatever its first byte (protocol 0 pickles too).
            names = _pickle_globals(archive.read(member))
            refused += sorted(
                g for g in names
                if g not in _PICKLE_NAMES and not _is_trusted_class(g, _PICKLE_CLASS_PREFIXES)
            )  # fmt: skip
    return untrusted, sorted(set(refused))


def _read_card(model_dir):
    from ..utils._outputs import read_marker

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder not found: {model_dir}")
    marker = read_marker(model_dir)
    if marker is None or marker.get("kind") != _KIND:
        raise ValueError(
            f"{model_dir} is not a model folder written by sklearn-sfr fit (no marker of kind "
            f"{_KIND!r})"
        )
    try:
        card = json.loads((model_dir / CARD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the model card {model_dir / CARD_JSON}: {exc}") from exc
    if not isinstance(card, dict) or card.get("card_version") != _CARD_VERSION:
        raise ValueError(
            f"{model_dir / CARD_JSON} is not a model card of version {_CARD_VERSION} (written "
            "by another version of sklearn-sfr?); fit the model again"
        )
    return card


def load_model(model_dir):
    """Load a model folder written by :func:`fit_model`, trusting only known types.

    The model file must be the one the card describes (its SHA-256), and every type skops
    asks to trust must be on the allow-list (see the user guide's model page);
    otherwise nothing is loaded. A warning says when scikit-learn, skorch, torch or NumPy
    differ from the versions the model was saved with.

    Parameters
    ----------
    model_dir : str or path-like
        The folder ``fit_model`` (``sklearn-sfr fit``) wrote.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``model`` (the fitted Pipeline) and ``card`` (the model card as a dict).

    Raises
    ------
    ValueError
        Not a model folder, a model file changed since the card was written, or types
        outside the allow-list (named in the message).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
    >>> from sklearn_sfr.experiments import fit_model, load_model
    >>> folder = tempfile.mkdtemp()
    >>> cube = make_synthetic_cube(os.path.join(folder, "c.h5"), n_objects=40,
    ...                            random_state=0)
    >>> fitted = fit_model(cube, "tree-spectrum", os.path.join(folder, "model"),
    ...                    verbose=False)
    >>> loaded = load_model(os.path.join(folder, "model"))
    >>> loaded.card["model"]["name"], [name for name, _ in loaded.model.steps]
    ('tree-spectrum', ['select', 'rebin', 'model'])
    >>> X = load_hisscube(cube, image_zoom=2, spectrum_zoom=2).X
    >>> bool((loaded.model.predict(X) == fitted.model.predict(X)).all())
    True
    """
    card = _read_card(model_dir)
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    if _sha256(path) != card["model"].get("sha256"):
        raise ValueError(
            f"{path} is not the model its card describes (its SHA-256 differs from "
            f"{CARD_JSON}'s): the folder was changed after fit; fit the model again"
        )
    trusted, refused = _check_trusted(path)
    if refused:
        raise ValueError(
            f"{path} holds types outside sklearn-sfr's allow-list, which loading could run: "
            f"{', '.join(refused)}; it is not loaded (load models only from sources you trust)"
        )
    installed = _versions()
    changed = [
        f"{p} {card['versions'].get(p)} -> {installed[p]}"
        for p in _MODEL_PACKAGES
        if card.get("versions", {}).get(p) != installed[p]
    ]
    if changed:
        warnings.warn(
            f"{path} was saved with other versions ({', '.join(changed)}): its predictions "
            "may differ from those its card scored",
            stacklevel=2,
        )
    sio = _import_skops()
    model = sio.load(path, trusted=trusted)
    return Bunch(model=model, card=card)


# --------------------------------------------------------------------------------------------
# predict
def _is_our_predictions(path):
    """A predictions file this library wrote: a CSV whose header is ours, or a Parquet file
    whose columns are."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    if head == b"PAR1":
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        except Exception:  # unreadable: not ours
            return False
        return names[: len(_OUR_HEADER)] == _OUR_HEADER
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().split(",")
    except OSError:
        return False
    return header[: len(_OUR_HEADER)] == _OUR_HEADER


def _output_format(out, format):
    if format is None:
        format = "parquet" if Path(out).suffix.lower() in (".parquet", ".pq") else "csv"
    if format not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise ModuleNotFoundError(
                "writing Parquet needs the package pyarrow, which is not installed: pip "
                "install pyarrow, or write CSV (a .csv name)"
            ) from exc
    return format


def _check_geometry(card, cube, model_dir):
    """Refuse a cube whose images or spectra are not those the model was trained on."""
    from ..datasets import HiSSCube

    geo = card["inputs"]
    where = f"{cube} does not match the model {model_dir}"
    with HiSSCube(cube) as opened:
        if "image" in geo["modalities"]:
            size, zoom = geo["image_size"], geo["image_zoom"]
            if not opened.has_images():
                raise ValueError(
                    f"{where}: the cube holds no images, and the model reads {size}x{size} px "
                    "images"
                )
            have = opened.image_size(zoom)
            if have != size:
                raise ValueError(
                    f"{where}: its images are {have}x{have} px at zoom {zoom}, the model was "
                    f"trained on {size}x{size} px images"
                )
            bands = list(opened.band_names)
            if bands != list(geo["bands"]):
                raise ValueError(
                    f"{where}: its bands are in the order {', '.join(bands)}, the model was "
                    f"trained on {', '.join(geo['bands'])}"
                )
        if "spectrum" in geo["modalities"]:
            grid = opened.wavelength(geo["spectrum_zoom"])
            if len(grid) != geo["spectrum_length"]:
                raise ValueError(
                    f"{where}: its spectra have {len(grid)} pixels at level "
                    f"{geo['spectrum_zoom']}, the model was trained on {geo['spectrum_length']}"
                )
            lo, hi = geo["wavelength_range"]
            if not np.allclose([grid[0], grid[-1]], [lo, hi], atol=1e-3):
                raise ValueError(
                    f"{where}: its spectra cover {grid[0]:.1f}-{grid[-1]:.1f} A, the model was "
                    f"trained on {lo:.1f}-{hi:.1f} A"
                )


def _check_arrays(card, X, cube, model_dir):
    """The arrays read have the shapes the card promises (a second, direct check)."""
    geo = card["inputs"]
    expected = {}
    if "image" in geo["modalities"]:
        expected["image"] = (len(geo["bands"]), geo["image_size"], geo["image_size"])
    if "spectrum" in geo["modalities"]:
        expected["spectrum"] = (geo["spectrum_length"],)
    for key, shape in expected.items():
        got = tuple(X[key].shape[1:])
        if got != shape:
            raise ValueError(
                f"{cube} does not match the model {model_dir}: X[{key!r}] has shape "
                f"(n, {', '.join(map(str, got))}), the model was trained on "
                f"(n, {', '.join(map(str, shape))})"
            )


def predict_cube(
    model_dir,
    cube,
    out=None,
    *,
    format=None,
    n_resamples=2000,
    overwrite=False,
    verbose=True,
):
    """Predict the log SFR of every object of a cube with a saved model.

    The cube must have what the model was trained on (its card's image size, band order and
    spectrum length at the card's zoom and level): another is refused before any array is
    read. Every object is predicted (``flag=None``). Where the cube has labels, the FLAG=0
    objects with a label are scored (RMSE, MAE, NMAD, bias, outlier fraction with 95 %
    percentile bootstrap intervals); on the cube the model was trained on (same content
    fingerprint) only its test objects are, since the model has seen the others.

    Parameters
    ----------
    model_dir : str or path-like
        A folder written by :func:`fit_model` (``sklearn-sfr fit``); an input.
    cube : str or path-like
        A HiSS-Cube file (opened read-only).
    out : str, path-like or None, default=None
        A file to write the predictions to (atomically): CSV, or Parquet for a ``.parquet``
        name or ``format="parquet"`` (needs pyarrow). An existing file is replaced only with
        ``overwrite`` and only if it is a predictions file of ours; an output that is, or
        lies inside, the cube or the model folder is refused. None writes nothing.
    format : {"csv", "parquet"} or None, default=None
        None: from the name of ``out``.
    n_resamples : int, default=2000
        Bootstrap resamples of each interval.
    overwrite : bool, default=False
        Whether to replace an existing ``out`` (only a predictions file this library wrote).
    verbose : bool, default=True
        Print what is predicted and the scores.

    Returns
    -------
    predictions : DataFrame
        One row per object of the cube: ``PLATEID``, ``MJD``, ``FIBERID``, ``cube_row`` (its
        row in the cube), ``log_sfr_pred`` and, for a model trained with
        ``loss="gaussian_nll"``, ``log_sfr_std``. ``predictions.attrs["scores"]`` holds the
        scores (None without labelled FLAG=0 objects) and ``attrs["scored_rows"]`` the cube
        rows they were computed on.

    Raises
    ------
    ValueError
        A cube that does not match the model, a model file outside the allow-list, a
        refused output.
    FileExistsError
        ``out`` exists and is not ours, or ``overwrite`` is False.
    ModuleNotFoundError
        Parquet without pyarrow.

    See Also
    --------
    fit_model : Train and save the model.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube
    >>> from sklearn_sfr.experiments import fit_model, predict_cube
    >>> folder = tempfile.mkdtemp()
    >>> train = make_synthetic_cube(os.path.join(folder, "train.h5"), n_objects=40,
    ...                             random_state=0)
    >>> new = make_synthetic_cube(os.path.join(folder, "new.h5"), n_objects=20,
    ...                           random_state=1)
    >>> model = fit_model(train, "tree-spectrum", os.path.join(folder, "model"),
    ...                   verbose=False).path
    >>> predictions = predict_cube(model, new, os.path.join(folder, "p.csv"), verbose=False)
    >>> len(predictions), list(predictions.columns)
    (20, ['PLATEID', 'MJD', 'FIBERID', 'cube_row', 'log_sfr_pred'])
    >>> sorted(predictions.attrs["scores"])
    ['bias', 'mae', 'n', 'nmad', 'outlier_fraction', 'rmse']
    """
    from ..datasets import load_hisscube
    from ..datasets._fingerprint import cube_fingerprint
    from ..datasets._reader import check_cube
    from ..utils._io import atomic_open, write_csv_atomic
    from ..utils._outputs import check_output_file

    card = _read_card(model_dir)
    if out is not None:
        format = _output_format(out, format)
        check_output_file(
            out,
            overwrite=overwrite,
            is_ours=_is_our_predictions,
            inputs=[cube, model_dir],
            kind="predictions",
        )
    check_cube(cube)
    _check_geometry(card, cube, model_dir)
    loaded = load_model(model_dir)
    model = loaded.model
    geo = card["inputs"]
    data = load_hisscube(
        cube,
        image_zoom=geo.get("image_zoom", 0),
        spectrum_zoom=geo.get("spectrum_zoom", 0),
        target=card.get("target", "AVG"),
        flag=None,  # every object; labels, where there are, only score
        modalities=tuple(geo["modalities"]),
    )
    _check_arrays(card, data.X, cube, model_dir)
    frame = data.frame
    predictions = pd.DataFrame(
        {
            "PLATEID": frame["PLATEID"].to_numpy(),
            "MJD": frame["MJD"].to_numpy(),
            "FIBERID": frame["FIBERID"].to_numpy(),
            "cube_row": np.arange(len(frame)),
        }
    )
    if card["model"].get("predicts_std"):
        pred, std = model.predict(data.X, return_std=True)
        predictions["log_sfr_pred"] = np.asarray(pred, dtype=np.float64)
        predictions["log_sfr_std"] = np.asarray(std, dtype=np.float64)
    else:
        predictions["log_sfr_pred"] = np.asarray(model.predict(data.X), dtype=np.float64)
    if verbose:
        print(
            f"predicted the log SFR of {len(predictions)} objects of {cube} with "
            f"{card['model']['name']!r} ({model_dir})",
            flush=True,
        )

    # -- scores where the cube has labels ------------------------------------------------
    flags = pd.to_numeric(frame["FLAG"], errors="coerce").to_numpy(np.float64)
    scored = np.flatnonzero((flags == 0) & np.isfinite(data.y))
    note = "labelled FLAG=0 objects"
    if scored.size and cube_fingerprint(cube) == card["cube"]["fingerprint"]:
        test_rows = np.asarray(card["selection"]["rows"]["test"], dtype=int)
        scored = np.intersect1d(scored, test_rows)
        note = (
            "test objects (this is the cube the model was trained on: the other objects "
            "were used to train or validate it)"
        )
    scores = None
    if scored.size:
        scores = _score_predictions(
            data.y[scored], predictions["log_sfr_pred"].to_numpy()[scored],
            n_resamples=n_resamples, random_state=0,
        )  # fmt: skip
        if verbose:
            how = (
                f"95 % {_INTERVAL_METHOD} bootstrap intervals over objects"
                if scored.size >= _MIN_INTERVAL_OBJECTS
                else f"no intervals: fewer than {_MIN_INTERVAL_OBJECTS} objects"
            )
            print(f"{scored.size} {note}: {_scores_line(scores, ('rmse', 'nmad'))} ({how})")
    elif verbose:
        print("no labelled FLAG=0 objects: nothing to score against")
    predictions.attrs["scores"] = scores
    predictions.attrs["scored_rows"] = scored.tolist()

    if out is not None:
        if format == "parquet":
            table = predictions.copy()
            table.attrs = {}
            with atomic_open(out, "wb") as fh:
                table.to_parquet(fh, index=False)
        else:
            write_csv_atomic(predictions, out, index=False, float_format="%.6g")
        if verbose:
            print(f"wrote {out}")
    return predictions
