"""``load_hisscube``: a HiSS-Cube as a scikit-learn ``Bunch`` of a SliceDict and a target."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._layout import BAND_NAMES, IMAGE_UNIT_PER_NMGY, MERGED_LABEL_KEY, SFR_COLUMNS
from ._reader import HiSSCube

MODALITIES = ("image", "spectrum")
UNITS = ("sdss", "cube")

#: Spectra: the cube stores erg s^-1 cm^-2 A^-1; SDSS files use 1e-17 of that.
_SPECTRUM_SDSS_SCALE = 1e17


#: Image value per nanomaggy of each band (u, g, r, i, z) and the spectra's factor, float32.
_PER_NMGY32 = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float32)
_SPECTRUM_SDSS_SCALE32 = np.float32(_SPECTRUM_SDSS_SCALE)


def _to_sdss_units(arrays):
    """Cube values to nanomaggies (images) and 1e-17 erg/s/cm2/A (spectra), in place.

    One float32 operation per value, written into the arrays themselves (float32 arrays that
    this load has just read): no float64 temporary, no copy. The result is within one float32
    rounding of the float64 arithmetic it replaces (``x / per_nmgy``, ``x * 1e17``, rounded to
    float32): at most one unit in the last place apart, NaN and infinities unchanged.
    """
    for key in ("image", "image_error"):
        if key in arrays:
            a = arrays[key]
            np.divide(a, _PER_NMGY32[:, None, None], out=a)
    for key in ("spectrum", "spectrum_error"):
        if key in arrays:
            a = arrays[key]
            np.multiply(a, _SPECTRUM_SDSS_SCALE32, out=a)


_DESCR = """HiSS-Cube multi-modal SDSS sample
=================================

File: {path} ({kind})
Objects: {n} selected of {total} (flag={flag!r})
Image cutouts: {image}
Spectra: {spectrum}
Units: {units}
Target: {target} (log10 SFR [M_sun/yr] for the MPA-JHU columns), label policy {policy!r}
Noise floor (RMSE of the label against the true value, FLAG=0): {noise_floor}

X is a skorch.helper.SliceDict whose keys are modalities; frame holds one row of metadata per
object (MPA-JHU column names) aligned with X and y.
"""


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


def _flag_rows(frame, flag, cube=None):
    """Rows whose FLAG is in ``flag``: the same rule as FlagFilter, applied before reading so
    unwanted arrays are never read.

    With the ``cube`` the frame came from, a selection that cannot work (no objects, FLAG
    all missing, infinite, or no object with the flag) is an error naming the file and the
    FLAG column, never an empty result.
    """
    if flag is None:
        return np.arange(len(frame))
    from ..preprocessing._flag import flag_mask  # imports scikit-image: only when filtering

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


def _check_target(cube, frame, keep, target, flag):
    """The target of the selected objects as float64, refused where it cannot be learnt from:
    infinite, beyond float32, outside +-LOG_SFR_LIMIT for a log SFR, or (with a FLAG
    selection) missing for every object. The error names the file, the column and the first
    objects with their label-table rows."""
    values = pd.to_numeric(frame[target], errors="coerce")
    if (values.isna() & frame[target].notna()).any():
        raise ValueError(
            f"{cube.path}: target {target!r} is not numeric (dtype {frame[target].dtype})"
        )
    y = values.to_numpy(np.float64)[keep]
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


def load_hisscube(
    path,
    image_zoom=0,
    spectrum_zoom=0,
    target="AVG",
    flag=0,
    modalities=MODALITIES,
    with_errors=False,
    return_X_y=False,
    label_policy="ivar",
    units="sdss",
):
    """Load a HiSS-Cube file as a multi-modal sample set.

    Parameters
    ----------
    path : str or path-like
        The cube (see :func:`make_synthetic_cube` for one to try).
    image_zoom : {0, 1, 2, 3}, default=0
        Cutout size 64, 32, 16 or 8 pixels.
    spectrum_zoom : {0, 1, 2, 3}, default=0
        Spectral level with 4620, 2310, 1155 or 577 pixels.
    target : str, default="AVG"
        Column of the metadata table to predict: the MPA-JHU mean log SFR by default
        (``"MEDIAN"``, ``"P16"``, ``"P84"`` or a synthetic cube's ``"true_log_sfr"`` also work).
    flag : int, sequence of int or None, default=0
        Keep objects whose MPA-JHU FLAG is in ``flag``: 0 is the reliable sample the study uses;
        None keeps every object (their labels may be missing).
    modalities : sequence of {"image", "spectrum"}, default=("image", "spectrum")
        Which arrays to load.
    with_errors : bool, default=False
        Also load ``image_error`` / ``spectrum_error``.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of the Bunch.
    label_policy : {"ivar", "first"}, default="ivar"
        How objects with several spectra get one label, see :class:`HiSSCube`.
    units : {"sdss", "cube"}, default="sdss"
        ``"sdss"`` returns images in nanomaggies and spectra in 1e-17 erg s^-1 cm^-2 A^-1, the
        units of SDSS frames and spectra, whose values are of order one. ``"cube"`` returns
        the stored HiSS-Cube values (erg s^-1 cm^-2 A^-1, images scaled per band by the
        reference's fibre factor), of order 1e-17: scikit-learn's trees treat features that
        vary by less than 1e-7 as constant, so use them only with your own scaling.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X`` (a :class:`skorch.helper.SliceDict` with keys ``image`` (n, 5, S, S) and
        ``spectrum`` (n, L), float32, plus the errors if asked, and the metadata keys ``flag``
        and ``redshift`` (n,), which models ignore but
        :class:`~sklearn_sfr.preprocessing.FlagFilter`,
        :func:`~sklearn_sfr.preprocessing.flag_scorer` and spectral features read),
        ``y`` (n,) float64, ``frame`` (DataFrame of metadata aligned with X),
        ``wavelength`` (L,), ``band_names``, ``noise_floor`` (float or None), ``DESCR``.
    (X, y) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"),
    ...                            n_objects=30, random_state=0)
    >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=2)
    >>> data.X["image"].shape[1:], data.X["spectrum"].shape[1:]
    ((5, 8, 8), (1155,))
    >>> bool((data.frame["FLAG"] == 0).all())
    True
    """
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ValueError(
            f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}"
        )
    from skorch.helper import SliceDict  # imports torch: only when data is actually loaded

    with HiSSCube(path, label_policy=label_policy) as cube:
        cube._check_zoom(image_zoom, "image_zoom")
        cube._check_zoom(spectrum_zoom, "spectrum_zoom")
        all_frame = cube.read_frame()
        if target not in all_frame.columns:
            raise KeyError(
                f"target {target!r} is not a column of {cube.path}; available: "
                f"{sorted(map(str, all_frame.columns))}"
            )
        if "image" in modalities and not cube.has_images():
            raise ValueError(
                f"{cube.path} holds no image cutouts; load it with modalities=('spectrum',)"
            )
        if units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {units!r}")
        keep = _flag_rows(all_frame, flag, cube)
        y = _check_target(cube, all_frame, keep, target, flag)  # before any array is read
        frame = all_frame.iloc[keep].reset_index(drop=True)
        arrays = {}
        if "image" in modalities:
            arrays["image"] = cube.read_images(keep, zoom=image_zoom)
            if with_errors:
                arrays["image_error"] = cube.read_image_errors(keep, zoom=image_zoom)
        if "spectrum" in modalities:
            arrays["spectrum"] = cube.read_spectra(keep, level=spectrum_zoom)
            if with_errors:  # masked where the spectra just read are NaN: not read again
                arrays["spectrum_error"] = cube._read_spectrum_errors(
                    keep, spectrum_zoom, flux=arrays["spectrum"]
                )
        if units == "sdss":
            _to_sdss_units(arrays)
        # Metadata keys ride along so that cross-validation slices them with the rows:
        # FlagFilter and flag_scorer read "flag", spectral features read "redshift".
        arrays["flag"] = frame["FLAG"].to_numpy(dtype=np.float64)
        arrays["redshift"] = (
            frame["Z"].to_numpy(dtype=np.float64) if "Z" in frame else np.full(len(frame), np.nan)
        )
        X = SliceDict(**arrays)
        if return_X_y:
            return X, y
        noise_floor = cube.noise_floor
        descr = _DESCR.format(
            path=cube.path,
            kind="reference build" if cube.is_reference else "written by sklearn-sfr",
            n=len(frame),
            total=cube.n_objects,
            flag=flag,
            image=f"{cube.image_size(image_zoom)} px, bands ugriz"
            if "image" in modalities
            else "not loaded",
            spectrum=f"{len(cube.wavelength(spectrum_zoom))} pixels"
            if "spectrum" in modalities
            else "not loaded",
            target=target,
            policy=label_policy,
            noise_floor="unknown" if noise_floor is None else f"{noise_floor:.3f} dex",
            units=(
                "images in nanomaggies, spectra in 1e-17 erg/s/cm2/A"
                if units == "sdss"
                else "as stored in the cube (erg/s/cm2/A; images x reference fibre factor)"
            ),
        )
        return Bunch(
            X=X,
            y=y,
            frame=frame,
            wavelength=cube.wavelength(spectrum_zoom),
            band_names=list(cube.band_names),
            noise_floor=noise_floor,
            target_name=target,
            DESCR=descr,
        )
