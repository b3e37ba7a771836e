"""Which objects of a cube a model sees, and in what units: the one selection rule of the
library.

:func:`~sklearn_sfr.datasets.load_hisscube` (in memory) and
:class:`~sklearn_sfr.neural.HiSSCubeDataset` (out of core) both select objects with
:func:`select_objects` (zooms, the FLAG rule, the target's checks, optional rows), and both
convert what they read with :func:`to_sdss_units`, so the two routes cannot drift apart.
:func:`flag_mask` is the FLAG rule itself, shared by ``FlagFilter``, ``flag_scorer`` and
``ContrastiveRegressor``'s head.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._layout import BAND_NAMES, IMAGE_UNIT_PER_NMGY, MERGED_LABEL_KEY, SFR_COLUMNS


def flag_mask(flags, keep=(0,)):
    """Boolean mask of the rows whose flag is in ``keep`` (``keep=None`` keeps every row).

    Missing flags (NaN) are never kept unless ``keep`` is None.

    Parameters
    ----------
    flags : array-like of shape (n_samples,)
        MPA-JHU FLAG values.
    keep : tuple of int or None, default=(0,)
        Flag values to keep.

    Returns
    -------
    mask : ndarray of bool of shape (n_samples,)
        True where the row's flag is kept.

    Examples
    --------
    >>> from sklearn_sfr.datasets import flag_mask
    >>> flag_mask([0, 2, 0, float("nan")])
    array([ True, False,  True, False])
    >>> flag_mask([0, 2, 1], keep=(0, 2))
    array([ True,  True, False])
    """
    flags = np.asarray(flags, dtype=np.float64)
    if keep is None:
        return np.ones(flags.shape[0], dtype=bool)
    return np.isin(flags, np.asarray(keep, dtype=np.float64))


#: Spectra: the cube stores erg s^-1 cm^-2 A^-1; SDSS files use 1e-17 of that.
_SPECTRUM_SDSS_SCALE = 1e17


#: Image value per nanomaggy of each band (u, g, r, i, z) and the spectra's factor, float32.
_PER_NMGY32 = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float32)
_SPECTRUM_SDSS_SCALE32 = np.float32(_SPECTRUM_SDSS_SCALE)


@functools.lru_cache(maxsize=8)
def _per_nmgy_row(pixels):
    """The band factors repeated over each band's ``pixels``: one image's row of factors."""
    row = np.repeat(_PER_NMGY32, pixels)
    row.flags.writeable = False
    return row


def _image_to_sdss(values, out=None):
    out = values if out is None else out
    if values.ndim >= 3 and values.flags.c_contiguous and out.flags.c_contiguous:
        # Divided as rows of one image each by a row of factors: both operands contiguous,
        # so numpy runs its vectorised loop over whole rows (1.6x faster than broadcasting
        # the factors over 8 x 8 px bands), with the same quotients.
        pixels = int(np.prod(values.shape[-2:]))
        rows = values.reshape(-1, values.shape[-3] * pixels)
        np.divide(rows, _per_nmgy_row(pixels), out=out.reshape(rows.shape))
    else:
        np.divide(values, _PER_NMGY32[:, None, None], out=out)


def _spectrum_to_sdss(values, out=None):
    np.multiply(values, _SPECTRUM_SDSS_SCALE32, out=values if out is None else out)


#: The change to SDSS units of each array a load returns: ``convert(values, out=None)`` writes
#: the converted float32 ``values`` (images and their errors with the bands on axis -3 in u,
#: g, r, i, z order) into ``out``, by default in place. The readers apply these to each chunk
#: as it is read (``load_hisscube``) or to a whole batch (:func:`to_sdss_units`): the same
#: operation either way, so the values are identical.
SDSS_UNITS = {
    "image": _image_to_sdss,
    "image_error": _image_to_sdss,
    "spectrum": _spectrum_to_sdss,
    "spectrum_error": _spectrum_to_sdss,
}


def to_sdss_units(arrays):
    """Cube values to nanomaggies (images) and 1e-17 erg/s/cm2/A (spectra), in place.

    One float32 operation per value, written into the arrays themselves (float32 arrays that
    this load has just read): no float64 temporary, no copy. The result is within one float32
    rounding of the float64 arithmetic it replaces (``x / per_nmgy``, ``x * 1e17``, rounded to
    float32): at most one unit in the last place apart, NaN and infinities unchanged.
    """
    for key, convert in SDSS_UNITS.items():
        if key in arrays:
            convert(arrays[key])


#: The largest float32: a label beyond it (1e300) cannot reach a float32 model intact.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: |log10 SFR [M_sun/yr]| beyond this is not a star-formation rate (the most intense
#: starbursts reach about 3.5, MPA-JHU's P16..P84 stay within about -6..7): a linear SFR,
#: another quantity or garbage.
LOG_SFR_LIMIT = 20.0

#: Target columns that hold log SFRs.
_LOG_SFR_COLUMNS = ("AVG", "MEDIAN", "MODE", "P2P5", "P16", "P84", "P97P5")

#: Objects listed in an error about bad values.
_SHOWN = 3


def _is_log_sfr(column):
    return column in _LOG_SFR_COLUMNS or str(column).startswith("true_log_sfr")


def _bad_objects(cube, column, objects, values):
    """``"object 1 has AVG=inf (label-table row 1 of /...)"`` for the first bad objects."""
    links = cube._spectrum_rows if column in SFR_COLUMNS else None
    parts = []
    for obj, value in zip(objects[:_SHOWN], values[:_SHOWN]):
        text = f"object {int(obj)} has {column}={value:g}"
        if links is not None:
            rows = links.loc[links["object"] == obj, "spectrum"].tolist()
            noun = "row" if len(rows) == 1 else "rows"
            text += f" (label-table {noun} {', '.join(map(str, rows))} of /{MERGED_LABEL_KEY})"
        parts.append(text)
    more = f" and {len(objects) - _SHOWN} more" if len(objects) > _SHOWN else ""
    return "; ".join(parts) + more


def flag_rows(frame, flag, cube=None):
    """Rows whose FLAG is in ``flag``: the same rule as FlagFilter, applied before reading so
    unwanted arrays are never read.

    With the ``cube`` the frame came from, a selection that cannot work (no objects, FLAG
    all missing, infinite, or no object with the flag) is an error naming the file and the
    FLAG column, never an empty result.
    """
    if flag is None:
        return np.arange(len(frame))

    keep = np.atleast_1d(np.asarray(flag))
    if keep.dtype.kind not in "iuf":
        raise TypeError(f"flag must be None, an int or a sequence of ints, got {flag!r}")
    if cube is None:
        return np.flatnonzero(flag_mask(frame["FLAG"], tuple(keep.tolist())))
    n = len(frame)
    if n == 0:
        raise ValueError(f"{cube.path} holds no objects")
    flags = pd.to_numeric(frame["FLAG"], errors="coerce").to_numpy(np.float64)
    if np.isnan(flags).all():
        raise ValueError(
            f"{cube.path}: the FLAG column is missing (NaN) for all {n} objects, so "
            f"flag={flag!r} selects none; load with flag=None to keep every object (their "
            "labels may be missing)"
        )
    huge = np.abs(flags) > _FLOAT32_MAX  # inf too; NaN is False
    if huge.any():
        bad = np.flatnonzero(huge)
        raise ValueError(
            f"{cube.path}: the FLAG column holds values that are not MPA-JHU flags "
            f"(0, 1, 2 or missing): {_bad_objects(cube, 'FLAG', bad, flags[bad])}"
        )
    mask = flag_mask(flags, tuple(keep.tolist()))
    if not mask.any():
        present = pd.Series(flags).map(lambda v: "missing" if np.isnan(v) else f"FLAG={v:g}")
        counts = ", ".join(f"{k}: {v}" for k, v in present.value_counts().sort_index().items())
        raise ValueError(
            f"{cube.path}: no object of {n} has FLAG in {tuple(keep.tolist())} ({counts}); "
            "choose another flag, or flag=None to keep every object"
        )
    return np.flatnonzero(mask)


def check_target(cube, frame, keep, target, flag):
    """The target of the selected objects as float64, refused where it cannot be learnt from:
    infinite, beyond float32, outside +-LOG_SFR_LIMIT for a log SFR, or (with a FLAG
    selection) missing for every object. The error names the file, the column and the first
    objects with their label-table rows."""
    column = frame[target]
    if column.dtype.kind not in "fiu":  # numbers need no coercion (the usual case)
        values = pd.to_numeric(column, errors="coerce")
        if (values.isna() & column.notna()).any():
            raise ValueError(
                f"{cube.path}: target {target!r} is not numeric (dtype {column.dtype})"
            )
        column = values
    y = column.to_numpy(np.float64)[keep]
    limit = LOG_SFR_LIMIT if _is_log_sfr(target) else _FLOAT32_MAX
    with np.errstate(invalid="ignore"):
        bad = np.abs(y) > limit  # inf and 1e300 too; NaN is False
    if bad.any():
        where = np.flatnonzero(bad)
        what = f"a finite float32 number within +-{limit:g} for a log SFR [log10 M_sun/yr]"
        if limit == _FLOAT32_MAX:
            what = "a finite number that float32 can hold (|x| < 3.4e38)"
        raise ValueError(
            f"{cube.path}: the label column {target!r} holds unusable values for "
            f"{where.size} of the {keep.size} selected objects (flag={flag!r}): "
            f"{_bad_objects(cube, target, keep[where], y[where])}; a label must be {what}"
        )
    missing = np.isnan(y)
    if flag is not None and missing.any():
        if missing.all():
            raise ValueError(
                f"{cube.path}: the label column {target!r} is missing (NaN) for all "
                f"{keep.size} objects selected by flag={flag!r}: there is nothing to learn "
                "from (no label table, or one without this column's values?)"
            )
        first = ", ".join(map(str, keep[np.flatnonzero(missing)][:_SHOWN]))
        warnings.warn(
            f"{cube.path}: the label column {target!r} is missing (NaN) for "
            f"{int(missing.sum())} of the {keep.size} objects selected by flag={flag!r} "
            f"(objects {first}{', ...' if missing.sum() > _SHOWN else ''})",
            stacklevel=3,
        )
    return y


@dataclass(frozen=True)
class Selection:
    """The objects a load uses: cube rows, their metadata, target, FLAG and redshift."""

    rows: np.ndarray
    frame: pd.DataFrame
    y: np.ndarray
    flags: np.ndarray
    redshift: np.ndarray


def select_objects(
    cube,
    *,
    target="AVG",
    flag=0,
    image_zoom=0,
    spectrum_zoom=0,
    modalities=("image", "spectrum"),
    index=None,
):
    """The objects of an open cube that a load uses, checked before any array is read.

    Parameters
    ----------
    cube : HiSSCube
        The open cube.
    target : str, default="AVG"
        Metadata column to predict.
    flag : int, sequence of int or None, default=0
        Keep objects whose FLAG is in ``flag`` (None: every object).
    image_zoom, spectrum_zoom : {0, 1, 2, 3}, default=0
        The zooms that will be read (checked here).
    modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
        What will be read: a cube without cutouts is refused if images are asked for.
    index : array-like of int or None, default=None
        Positions among the flag-selected objects to keep (None: all of them).

    Returns
    -------
    selection : Selection
        ``rows`` (cube rows), ``frame`` (their metadata, index reset), ``y`` (float64),
        ``flags`` (float64, NaN where missing) and ``redshift`` (float64, NaN where missing).
    """
    cube._check_zoom(image_zoom, "image_zoom")
    cube._check_zoom(spectrum_zoom, "spectrum_zoom")
    frame = cube._all_frame  # read only here: read_frame copies the selected rows below
    if target not in frame.columns:
        raise KeyError(
            f"target {target!r} is not a column of {cube.path}; available: "
            f"{sorted(map(str, frame.columns))}"
        )
    if "image" in modalities and not cube.has_images():
        raise ValueError(
            f"{cube.path} holds no image cutouts; load it with modalities=('spectrum',)"
        )
    rows = flag_rows(frame, flag, cube)
    if index is not None:
        rows = rows[np.asarray(index)]
    y = check_target(cube, frame, rows, target, flag)  # before any array is read
    selected = cube.read_frame(rows)

    def column(name):
        if name in selected:
            return selected[name].to_numpy(dtype=np.float64)
        return np.full(len(selected), np.nan)

    return Selection(rows, selected, y, column("FLAG"), column("Z"))
