"""``load_hisscube``: a HiSS-Cube as a scikit-learn ``Bunch`` of a SliceDict and a target."""

from __future__ import annotations

from sklearn.utils import Bunch

from ._reader import HiSSCube
from ._selection import SDSS_UNITS, select_objects

MODALITIES = ("image", "spectrum")
UNITS = ("sdss", "cube")

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
        :func:`~sklearn_sfr.metrics.flag_scorer` and spectral features read),
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

    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    with HiSSCube(path, label_policy=label_policy) as cube:
        chosen = select_objects(
            cube,
            target=target,
            flag=flag,
            image_zoom=image_zoom,
            spectrum_zoom=spectrum_zoom,
            modalities=modalities,
        )
        keep, y, frame = chosen.rows, chosen.y, chosen.frame
        # The unit change runs on each chunk as it is read, while it is in the CPU's cache: a
        # second pass over the arrays would add about a fifth to the time of the reads.
        convert = SDSS_UNITS if units == "sdss" else {}
        arrays = {}
        if "image" in modalities:
            arrays["image"] = cube._read_images(keep, image_zoom, convert.get("image"))
            if with_errors:
                arrays["image_error"] = cube._read_image_errors(
                    keep, image_zoom, convert.get("image_error")
                )
        if "spectrum" in modalities:
            arrays["spectrum"] = cube._read_spectra(keep, spectrum_zoom, convert.get("spectrum"))
            if with_errors:  # masked where the spectra just read are NaN: not read again
                arrays["spectrum_error"] = cube._read_spectrum_errors(
                    keep, spectrum_zoom, arrays["spectrum"], convert.get("spectrum_error")
                )
        # Metadata keys ride along so that cross-validation slices them with the rows:
        # FlagFilter and flag_scorer read "flag", spectral features read "redshift".
        arrays["flag"] = chosen.flags
        arrays["redshift"] = chosen.redshift
        X = SliceDict(**arrays)
        if return_X_y:
            return X, y
        noise_floor = cube.noise_floor
        wavelength = cube.wavelength(spectrum_zoom)
        descr = _DESCR.format(
            path=cube.path,
            kind="reference build" if cube.is_reference else "written by sklearn-sfr",
            n=len(frame),
            total=cube.n_objects,
            flag=flag,
            image=f"{cube.image_size(image_zoom)} px, bands ugriz"
            if "image" in modalities
            else "not loaded",
            spectrum=f"{len(wavelength)} pixels" if "spectrum" in modalities else "not loaded",
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
            wavelength=wavelength,
            band_names=list(cube.band_names),
            noise_floor=noise_floor,
            target_name=target,
            DESCR=descr,
        )
