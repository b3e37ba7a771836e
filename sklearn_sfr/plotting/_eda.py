"""Exploratory figures: image cutouts, spectra with emission lines, the target distribution.

matplotlib (and astropy.visualization) are imported inside the functions, so importing
:mod:`sklearn_sfr` stays cheap. A function that is not handed an ``ax``/``fig`` makes a new
figure through :mod:`matplotlib.pyplot` (so that sphinx-gallery and notebooks pick it up) but
never calls ``plt.show``; every function returns the :class:`~matplotlib.figure.Figure`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..utils._io import atomic_open
from ..utils._survey import BAND_NAMES, line_wavelengths

__all__ = [
    "EMISSION_LINES",
    "QUASAR_LINES",
    "plot_cutouts",
    "plot_spectra",
    "plot_target_distribution",
    "save_figure",
]

#: Emission lines marked by :func:`plot_spectra`: label -> vacuum rest wavelengths [Angstrom],
#: those of ``sklearn_sfr.utils._survey.SPECTRAL_LINES``. A doublet (``[OII]``,
#: ``[SII]``) is one entry with two wavelengths: a marker at each, one label at their mean.
EMISSION_LINES = {
    "[OII]": line_wavelengths("OII_3727", "OII_3730"),
    r"H$\beta$": line_wavelengths("Hbeta"),
    "[OIII]": line_wavelengths("OIII_5008"),
    r"H$\alpha$": line_wavelengths("Halpha"),
    "[NII]": line_wavelengths("NII_6585"),
    "[SII]": line_wavelengths("SII_6718", "SII_6733"),
}

#: Lines marked by :func:`plot_spectra` on a quasar (``object_type`` "quasar" or "QSO"): the
#: broad lines of the Vanden Berk et al. (2001) composite from Lyman-alpha to H-alpha, and the
#: narrow [OIII] 5008, the lines a quasar shows in the SDSS range at some redshift.
QUASAR_LINES = {
    r"Ly$\alpha$": line_wavelengths("Lyalpha"),
    "Si IV": line_wavelengths("SiIV_1400"),
    "C IV": line_wavelengths("CIV_1549"),
    "C III]": line_wavelengths("CIII_1909"),
    "Mg II": line_wavelengths("MgII_2799"),
    r"H$\gamma$": line_wavelengths("Hgamma"),
    r"H$\beta$": line_wavelengths("Hbeta"),
    "[OIII]": line_wavelengths("OIII_5008"),
    r"H$\alpha$": line_wavelengths("Halpha"),
}
_QUASAR_TYPES = ("quasar", "qso")

#: A line label sits on the upper envelope of its spectrum: the highest running median over
#: ``_SPIKE_WIDTH`` Angstrom under it, which keeps a broad quasar line (FWHM of thousands of
#: km/s, over 30 A observed) but drops a narrow emission spike (FWHM of a few A at SDSS
#: resolution), plus this percentile of the flux about that median (the top of the noise).
#: A spike thus runs through its label rather than lifting it off the trace.
_LABEL_ENVELOPE = 95.0
_SPIKE_WIDTH = 30.0
_LINE_LABEL_SIZE = "x-small"

_STRETCHES = ("asinh", "linear", "sqrt", "log")


# --------------------------------------------------------------------------------------------
# helpers


def _new_figure(figsize):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _robust_limits(image, lower=1.0, upper=99.5):
    """Percentile limits of the finite pixels; a sane interval even for flat or empty images."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = np.percentile(finite, (lower, upper))
    if not vmax > vmin:
        # flat image, or a few bright pixels on a constant background: widen to the full range,
        # and failing that to a unit interval around the value
        vmin, vmax = float(finite.min()), float(finite.max())
        if not vmax > vmin:
            vmin, vmax = vmin - 0.5, vmin + 0.5
    return float(vmin), float(vmax)


def _stretched(image, stretch):
    """``image`` mapped to [0, 1] between robust limits and stretched; NaN stays NaN.

    The stretch is applied here rather than through a matplotlib norm so that NaN (masked)
    pixels reach the colour map as NaN and are drawn in its "bad" colour.
    """
    from astropy.visualization import AsinhStretch, LinearStretch, LogStretch, SqrtStretch

    stretch_obj = {
        "asinh": AsinhStretch(a=0.1),
        "linear": LinearStretch(),
        "sqrt": SqrtStretch(),
        "log": LogStretch(),
    }[stretch]
    vmin, vmax = _robust_limits(image)
    finite = np.isfinite(image)
    unit = np.clip((np.where(finite, image, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    out = np.asarray(stretch_obj(unit, clip=True), dtype=float)
    out[~finite] = np.nan
    return out


def _lupton_rgb(red, green, blue, *, Q=8.0, stretch=0.05):
    """gri composite with astropy's Lupton et al. (2004) scheme, robust to NaN and units.

    Each band has its median (the sky) removed; the three bands are then divided by one common
    scale, the 99.5th percentile of their mean, so relative colours are those of the input
    units, and ``stretch`` and ``Q`` act on that normalised intensity.
    """
    from astropy.visualization import make_lupton_rgb

    bands = []
    for band in (red, green, blue):
        finite = band[np.isfinite(band)]
        sky = float(np.median(finite)) if finite.size else 0.0
        bands.append(np.nan_to_num(band - sky, nan=0.0, posinf=0.0, neginf=0.0))
    intensity = (bands[0] + bands[1] + bands[2]) / 3.0
    scale = float(np.percentile(intensity, 99.5)) if intensity.size else 0.0
    if not (np.isfinite(scale) and scale > 0):
        scale = float(np.max(np.abs(intensity))) if intensity.size else 0.0
        if not scale > 0:
            scale = 1.0
    r, g, b = (x / scale for x in bands)
    # astropy computes f(I)/I everywhere and then discards the I <= 0 pixels with np.where;
    # silence the 0/0 it meets on empty (zero) pixels
    with np.errstate(invalid="ignore", divide="ignore"):
        return make_lupton_rgb(r, g, b, stretch=stretch, Q=Q)


def _as_float_array(x, name):
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be a numeric array; got {type(x).__name__}") from exc


def _group_label(value):
    if (
        isinstance(value, (float, np.floating))
        and np.isfinite(value)
        and float(value).is_integer()
    ):
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------------
# cutouts


def plot_cutouts(
    images,
    *,
    band_names=BAND_NAMES,
    titles=None,
    n=None,
    rgb=True,
    stretch="asinh",
    cmap="gray",
    fig=None,
):
    """Show ugriz cutouts as a grid, one row per object, with a gri colour composite.

    Every band image gets its own display limits from the 1st and 99.5th percentiles of its
    finite pixels, so sky noise, a bright neighbour or NaN (masked) pixels do not wash it out;
    NaN pixels are drawn in the colour map's "bad" colour (red). The optional composite maps
    i, r, g to red, green, blue with astropy's Lupton et al. (2004) asinh scheme
    (:func:`astropy.visualization.make_lupton_rgb`), after removing each band's median sky and
    dividing the three bands by one common scale, so colours follow the input units.

    Parameters
    ----------
    images : array-like of shape (n_objects, n_bands, S, S)
        Cutouts, band order as in ``band_names`` (u, g, r, i, z for ``data.X["image"]``).
    band_names : sequence of str, default=("u", "g", "r", "i", "z")
        Name of each band, one per entry of ``images.shape[1]``; the composite needs
        ``"g"``, ``"r"`` and ``"i"`` among them.
    titles : sequence of str, optional
        One title per object in ``images`` or per object shown (e.g.
        ``"log SFR 0.3, z 0.08"``); default ``"object k"``.
    n : int, optional
        Show only the first ``n`` objects; default all.
    rgb : bool, default=True
        Add a gri composite as the last panel of each row.
    stretch : {"asinh", "linear", "sqrt", "log"}, default="asinh"
        Stretch of the single-band panels.
    cmap : str or Colormap, default="gray"
        Colour map of the single-band panels.
    fig : Figure or SubFigure, optional
        Draw into this (empty) figure; default a new one sized to the grid.

    Returns
    -------
    fig : Figure
        The figure; ``fig.axes`` holds ``n * (n_bands + rgb)`` axes, row by row.

    Raises
    ------
    ValueError
        If ``images`` is not 4-D or its band axis does not match ``band_names``, if ``titles``
        has the wrong length, or if a parameter has an invalid value.

    Notes
    -----
    The composite's colour balance is that of the input units. The cube stores images in
    units proportional to f_lambda (nanomaggies times ``IMAGE_UNIT_PER_NMGY[band]``, which
    falls as 1/lambda^2), so its composites look bluer than SDSS's nanomaggy-based ones;
    divide each band by its unit to get the familiar colours.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_cutouts
    >>> images = np.random.default_rng(0).normal(size=(2, 5, 16, 16))
    >>> fig = plot_cutouts(images, titles=["log SFR 0.3, z 0.08", "log SFR -1.2, z 0.12"])
    >>> len(fig.axes)
    12
    """
    images = _as_float_array(images, "images")
    band_names = tuple(band_names)
    if images.ndim != 4:
        raise ValueError(
            "`images` must be 4-D (n_objects, n_bands, S, S); "
            f"got an array of shape {images.shape}"
        )
    if images.shape[1] != len(band_names):
        raise ValueError(
            f"`images` must have {len(band_names)} bands on axis 1 (band_names={band_names}); "
            f"got shape {images.shape}"
        )
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"`images` is empty: shape {images.shape}")
    if stretch not in _STRETCHES:
        raise ValueError(f"`stretch` must be one of {_STRETCHES}; got {stretch!r}")
    if rgb:
        missing = [b for b in ("g", "r", "i") if b not in band_names]
        if missing:
            raise ValueError(
                f"`band_names` must contain 'g', 'r' and 'i' for the rgb composite; "
                f"missing {missing} in {band_names} (pass rgb=False)"
            )
    n_objects = images.shape[0]
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"`n` must be a positive integer or None; got {n!r}")
        n_objects = min(int(n), n_objects)
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) not in (images.shape[0], n_objects):
            raise ValueError(
                f"`titles` must have one entry per object ({images.shape[0]}, or {n_objects} "
                f"shown); got {len(titles)}"
            )
    else:
        titles = [f"object {k}" for k in range(n_objects)]

    import matplotlib as mpl

    cmap = (mpl.colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(bad="tab:red")

    n_bands = len(band_names)
    n_cols = n_bands + bool(rgb)
    if fig is None:
        fig = _new_figure((1.45 * n_cols, 1.75 * n_objects))
    rows = fig.subfigures(n_objects, 1, squeeze=False)[:, 0]

    label_box = {"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.55, "lw": 0}
    for k, row in enumerate(rows):
        axes = row.subplots(1, n_cols, squeeze=False)[0]
        row.suptitle(titles[k], fontsize="medium")
        for b, ax in enumerate(axes[:n_bands]):
            image = images[k, b]
            ax.imshow(
                _stretched(image, stretch),
                origin="lower",
                cmap=cmap,
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
            ax.text(
                0.05,
                0.93,
                band_names[b],
                transform=ax.transAxes,
                ha="left",
                va="top",
                color="white",
                fontsize="small",
                bbox=label_box,
            )
        if rgb:
            idx = {b: band_names.index(b) for b in ("g", "r", "i")}
            composite = _lupton_rgb(images[k, idx["i"]], images[k, idx["r"]], images[k, idx["g"]])
            ax = axes[-1]
            ax.imshow(composite, origin="lower", interpolation="nearest")
            ax.text(
                0.05,
                0.93,
                "gri",
                transform=ax.transAxes,
                ha="left",
                va="top",
                color="white",
                fontsize="small",
                bbox=label_box,
            )
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig.figure


# --------------------------------------------------------------------------------------------
# spectra


def _label_half_widths(ax, names, span, fontsize):
    """Approximate half width of each label in data units of a wavelength axis of ``span``."""
    from matplotlib.font_manager import FontProperties

    size_pt = FontProperties(size=fontsize).get_size_in_points()
    axes_pt = ax.get_position().width * ax.figure.figure.get_figwidth() * 72.0
    # a mathtext command such as \alpha is one glyph
    n_chars = [len(re.sub(r"\\[A-Za-z]+", "x", name).replace("$", "")) for name in names]
    return np.array([(0.6 * size_pt * c + 4.0) / 2.0 / axes_pt * span for c in n_chars])


def _label_groups(centres, names, half_width):
    """Labels whose boxes would overlap merged into one ("H$\\alpha$, [NII]").

    Returns ``(centre, text, members)`` per label, left to right: ``centre`` the middle of
    its lines, ``members`` their names. ``half_width(text)`` is a label's half width in the
    units of ``centres``.
    """
    groups = [[c, c, [n]] for c, n in sorted(zip(centres, names), key=lambda cn: cn[0])]
    merged = True
    while merged:  # merging widens a label: repeat until no neighbours touch
        merged = False
        for k in range(len(groups) - 1):
            (a0, a1, a_names), (b0, b1, b_names) = groups[k], groups[k + 1]
            right = 0.5 * (a0 + a1) + half_width(", ".join(a_names))
            left = 0.5 * (b0 + b1) - half_width(", ".join(b_names))
            if left < right:
                groups[k : k + 2] = [[a0, b1, a_names + b_names]]
                merged = True
                break
    return [(0.5 * (x0 + x1), ", ".join(members), members) for x0, x1, members in groups]


def _running_median(wavelength, flux, width):
    """Running median of ``flux`` over ``width`` (wavelength units), NaN pixels skipped."""
    import pandas as pd

    steps = np.diff(wavelength)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    n = max(1, round(width / float(np.median(steps)))) if steps.size else 1
    return pd.Series(flux).rolling(n, center=True, min_periods=1).median().to_numpy()


def _line_table(object_type):
    """The lines to mark on a spectrum of this object type."""
    is_quasar = object_type is not None and str(object_type).lower() in _QUASAR_TYPES
    return QUASAR_LINES if is_quasar else EMISSION_LINES


def _label_height(ax, fontsize):
    """Approximate height of a line label and its offset, in data units of the y axis."""
    from matplotlib.font_manager import FontProperties

    size_pt = FontProperties(size=fontsize).get_size_in_points()
    axes_pt = ax.get_position().height * ax.figure.figure.get_figheight() * 72.0
    y0, y1 = ax.get_ylim()
    # one line of text with its box (pad 0.1 em each side) and the 2 pt offset
    return (1.4 * size_pt + 2.0) / axes_pt * abs(y1 - y0)


def _mark_lines(ax, wavelength, flux, band, redshift, table, color, marker_color):
    """Mark the lines of ``table`` at ``redshift`` on one (shifted) spectrum and name them on
    its own trace.

    ``band`` is ``(lo, room)``: the bottom of the spectrum and the top of the space free for
    its labels (the next spectrum's bottom). Each label sits just above the upper envelope of
    this spectrum under it, never higher than its top fits below ``room`` (so an emission
    spike does not lift it into the next spectrum), in the spectrum's colour, with a dotted
    marker from ``lo`` to the label at each line. Lines too close to be told apart share a
    label; a label that would cross the left or right edge is aligned to that edge instead.
    Returns the label artists.
    """
    fontsize = _LINE_LABEL_SIZE
    lo, room = band
    hi = max(lo, room - _label_height(ax, fontsize))
    wl_min, wl_max = ax.get_xlim()
    scale = 1.0 + redshift
    if not np.isfinite(scale):
        return []
    visible = {
        name: [w * scale for w in rest if wl_min <= w * scale <= wl_max]
        for name, rest in table.items()
        if wl_min <= np.mean(rest) * scale <= wl_max
    }
    if not visible:
        return []

    def half_width(text):
        return float(_label_half_widths(ax, [text], wl_max - wl_min, fontsize)[0])

    finite = np.isfinite(flux)
    smooth = _running_median(wavelength, flux, _SPIKE_WIDTH)
    artists = []
    groups = _label_groups([np.mean(ws) for ws in visible.values()], list(visible), half_width)
    for centre, text, members in groups:
        width = 2.0 * half_width(text)
        if centre - width / 2 < wl_min:
            x, ha, dx, left = wl_min, "left", 2.0, wl_min
        elif centre + width / 2 > wl_max:
            x, ha, dx, left = wl_max, "right", -2.0, wl_max - width
        else:
            x, ha, dx, left = centre, "center", 0.0, centre - width / 2
        under = finite & (wavelength >= left) & (wavelength <= left + width)
        if under.any():
            noise = np.percentile(flux[under] - smooth[under], _LABEL_ENVELOPE)
            y = min(float(np.max(smooth[under]) + max(noise, 0.0)), float(np.max(flux[under])))
        else:
            y = hi
        y = min(max(y, lo), hi)
        for w in (w for name in members for w in visible[name]):
            ax.plot([w, w], [lo, y], color=marker_color, lw=0.6, ls=":", zorder=1)
        artists.append(
            ax.annotate(
                text,
                (x, y),
                xytext=(dx, 2.0),
                textcoords="offset points",
                ha=ha,
                va="bottom",
                fontsize=fontsize,
                color=color,
                annotation_clip=False,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.7, "lw": 0},
                zorder=4,
            )
        )
    return artists


def plot_spectra(
    wavelength,
    spectra,
    *,
    errors=None,
    labels=None,
    redshift=None,
    object_type=None,
    lines=True,
    offset=True,
    normalize=False,
    ylabel=None,
    ax=None,
):
    """Plot spectra against observed wavelength, stacked, with the main emission lines marked.

    Each spectrum's lines are named on its own trace: a label sits just above that
    spectrum's flux at the line, in its colour, inside the axes (lines too close to tell
    apart share one label, e.g. "H$\\alpha$, [NII]").

    Parameters
    ----------
    wavelength : array-like of shape (n_wavelength,)
        Observed-frame (vacuum) wavelength grid [Angstrom], e.g. ``data.wavelength``.
    spectra : array-like of shape (n_spectra, n_wavelength) or (n_wavelength,)
        Flux per pixel. NaN pixels are left as gaps.
    errors : array-like of the same shape as ``spectra``, optional
        1-sigma errors, drawn as a shaded band; NaN (masked) pixels leave gaps.
    labels : sequence of str, optional
        One label per spectrum, written right of it (with ``offset``) or in a legend.
    redshift : float or array-like of shape (n_spectra,), optional
        Redshift of each spectrum; its lines are drawn at ``lambda_rest * (1 + z)``.
        Default 0 (rest-frame lines on the observed grid).
    object_type : str or sequence of str, optional
        Type of each spectrum's object (e.g. ``data.frame["object_type"]``): a ``"quasar"``
        (or ``"QSO"``) gets its broad lines named (:data:`QUASAR_LINES`: Ly-alpha, C IV,
        C III], Mg II, Balmer lines, ...), every other spectrum the galaxy lines of
        :data:`EMISSION_LINES`. Default: galaxies.
    lines : bool, default=True
        Mark and label the lines that fall on the grid.
    offset : bool, default=True
        Stack the spectra: each one is shifted up so that its robust range (0.5th to 99.5th
        percentile) sits above the previous one. Otherwise they are overlaid.
    normalize : bool, default=False
        Divide each spectrum (and its errors) by its median finite flux, so that spectra of
        very different brightness stack into bands of similar height.
    ylabel : str, optional
        Label of the flux axis; default ``"flux"`` (``"normalised flux"`` with ``normalize``).
        `` + offset`` is appended when stacking.
    ax : Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : Figure
        The figure of the axes.

    Raises
    ------
    ValueError
        If ``wavelength`` is not 1-D or its length differs from the spectra's, if ``spectra``
        is not 1-D or 2-D, or if ``errors``, ``labels``, ``redshift`` or ``object_type`` do
        not match ``spectra``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_spectra
    >>> wavelength = np.linspace(3840.0, 8915.0, 500)
    >>> spectra = 1.0 + np.random.default_rng(0).normal(0, 0.1, size=(3, 500))
    >>> fig = plot_spectra(wavelength, spectra, redshift=[0.05, 0.1, 0.2],
    ...                    labels=["a", "b", "c"])
    >>> len(fig.axes)
    1
    """
    wavelength = _as_float_array(wavelength, "wavelength")
    spectra = _as_float_array(spectra, "spectra")
    if wavelength.ndim != 1:
        raise ValueError(f"`wavelength` must be 1-D; got an array of shape {wavelength.shape}")
    if spectra.ndim == 1:
        spectra = spectra[np.newaxis, :]
    if spectra.ndim != 2:
        raise ValueError(
            "`spectra` must be 1-D (n_wavelength,) or 2-D (n_spectra, n_wavelength); "
            f"got an array of shape {spectra.shape}"
        )
    n_spectra, n_wl = spectra.shape
    if n_spectra == 0:
        raise ValueError("`spectra` holds no spectrum")
    if wavelength.shape[0] != n_wl:
        raise ValueError(
            f"`wavelength` has {wavelength.shape[0]} values but `spectra` has {n_wl} pixels "
            f"per spectrum (shape {spectra.shape})"
        )
    if errors is not None:
        errors = _as_float_array(errors, "errors")
        if errors.ndim == 1 and n_spectra == 1:
            errors = errors[np.newaxis, :]
        if errors.shape != spectra.shape:
            raise ValueError(
                f"`errors` must have the shape of `spectra` {spectra.shape}; got {errors.shape}"
            )
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != n_spectra:
            raise ValueError(
                f"`labels` must have one entry per spectrum ({n_spectra}); got {len(labels)}"
            )
    if redshift is None:
        redshift = np.zeros(n_spectra)
    else:
        redshift = _as_float_array(redshift, "redshift")
        if redshift.ndim == 0:
            redshift = np.full(n_spectra, float(redshift))
        if redshift.shape != (n_spectra,):
            raise ValueError(
                f"`redshift` must be a scalar or have one value per spectrum ({n_spectra}); "
                f"got shape {redshift.shape}"
            )

    if object_type is None or isinstance(object_type, str):
        object_type = [object_type] * n_spectra
    else:
        object_type = list(object_type)
        if len(object_type) != n_spectra:
            raise ValueError(
                f"`object_type` must be a string or have one entry per spectrum ({n_spectra}); "
                f"got {len(object_type)}"
            )

    if normalize:
        spectra = spectra.copy()
        errors = None if errors is None else errors.copy()
        for i, flux in enumerate(spectra):
            finite = flux[np.isfinite(flux)]
            scale = float(np.median(finite)) if finite.size else 0.0
            if not scale > 0:
                scale = float(np.median(np.abs(finite))) if finite.size else 0.0
            if scale > 0:
                spectra[i] /= scale
                if errors is not None:
                    errors[i] /= scale
    if ylabel is None:
        ylabel = "normalised flux" if normalize else "flux"

    if ax is None:
        n_panel = n_spectra if offset else 1
        fig = _new_figure((10.0, min(2.0 + 1.6 * n_panel, 14.0)))
        ax = fig.add_subplot()

    # vertical band [lo_i, hi_i] of each spectrum and its shift
    lo = np.zeros(n_spectra)
    hi = np.zeros(n_spectra)
    for i, flux in enumerate(spectra):
        finite = flux[np.isfinite(flux)]
        if finite.size:
            lo[i], hi[i] = np.percentile(finite, (0.5, 99.5))
    heights = hi - lo
    positive = heights[heights > 0]
    default_height = float(np.median(positive)) if positive.size else 1.0
    heights = np.where(heights > 0, heights, default_height)
    hi = lo + heights
    gap = 0.35 * float(np.median(heights))  # room above each spectrum for its line labels
    shifts = np.zeros(n_spectra)
    if offset:
        top = None
        for i in range(n_spectra):
            shifts[i] = 0.0 if top is None else top + gap - lo[i]
            top = hi[i] + shifts[i]

    colors = [f"C{i % 10}" for i in range(n_spectra)]
    for i in range(n_spectra):
        flux = spectra[i] + shifts[i]
        label = None if labels is None or offset else labels[i]
        if errors is not None:
            ax.fill_between(
                wavelength,
                flux - errors[i],
                flux + errors[i],
                color=colors[i],
                alpha=0.25,
                lw=0,
                step="mid",
            )
        ax.plot(wavelength, flux, color=colors[i], lw=0.7, label=label, drawstyle="steps-mid")

    wl_finite = wavelength[np.isfinite(wavelength)]
    wl_min, wl_max = (wl_finite.min(), wl_finite.max()) if wl_finite.size else (0.0, 1.0)
    ax.set_xlim(wl_min, wl_max)
    # room above the top spectrum for its labels, as the gap gives every other one
    if offset:
        ax.set_ylim(lo[0] + shifts[0] - 0.05 * heights[0], hi[-1] + shifts[-1] + gap)
    else:
        ymin, ymax = lo.min(), hi.max()
        pad = 0.05 * (ymax - ymin)
        ax.set_ylim(ymin - pad, ymax + pad + 0.15 * (ymax - ymin) * lines)

    from matplotlib.transforms import blended_transform_factory

    if lines:
        y_top = ax.get_ylim()[1]
        for i in range(n_spectra):
            room = lo[i + 1] + shifts[i + 1] if offset and i + 1 < n_spectra else y_top
            _mark_lines(
                ax,
                wavelength,
                spectra[i] + shifts[i],
                (lo[i] + shifts[i], room),
                redshift[i],
                _line_table(object_type[i]),
                colors[i],
                "0.35" if offset else colors[i],
            )

    if labels is not None:
        if offset:
            for i in range(n_spectra):
                ax.text(
                    1.01,
                    0.5 * (lo[i] + hi[i]) + shifts[i],
                    labels[i],
                    transform=blended_transform_factory(ax.transAxes, ax.transData),
                    ha="left",
                    va="center",
                    fontsize="small",
                    color=colors[i],
                    fontweight="bold",
                    clip_on=False,
                )
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.set_xlabel(r"observed wavelength [$\mathrm{\AA}$]")
    ax.set_ylabel(f"{ylabel} + offset" if offset and n_spectra > 1 else ylabel)
    return ax.figure.figure


# --------------------------------------------------------------------------------------------
# target distribution


def plot_target_distribution(
    y,
    *,
    groups=None,
    noise_floor=None,
    xlabel="log SFR [M_sun/yr]",
    bins="auto",
    density=False,
    fig=None,
):
    """Histogram and box plot of the target, overall or per group, side by side.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Target values (log SFR). Non-finite values are dropped (the count is shown); filter
        MPA-JHU's -99 "no estimate" sentinels before, or they stretch the axis.
    groups : array-like of shape (n_samples,), optional
        Group of each sample (e.g. ``frame["FLAG"]`` or ``frame["object_type"]``): one
        overlaid histogram and one box per group. A pandas Series' name titles the legend.
    noise_floor : float, optional
        Label-noise floor [dex] (``data.noise_floor``), shaded as +/- noise_floor around the
        median on the histogram: the scale below which no model can resolve the target.
    xlabel : str, default="log SFR [M_sun/yr]"
        Label of the target axis.
    bins : int, sequence or str, default="auto"
        Histogram bins, shared by all groups (see :func:`numpy.histogram_bin_edges`).
    density : bool, default=False
        Normalise each histogram to unit area (compares groups of very different sizes).
    fig : Figure or SubFigure, optional
        Draw into this (empty) figure; default a new one.

    Returns
    -------
    fig : Figure
        The figure, with the histogram axes first and the box-plot axes second; both share
        the target axis.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or empty, ``groups`` has another length, or ``noise_floor`` is
        not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_target_distribution
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(0.0, 1.0, size=200)
    >>> flag = rng.choice([0.0, 2.0], size=200, p=[0.9, 0.1])
    >>> fig = plot_target_distribution(y, groups=flag, noise_floor=0.4)
    >>> len(fig.axes)
    2
    """
    group_title = getattr(groups, "name", None)
    y = _as_float_array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`y` must be 1-D (n_samples,); got an array of shape {y.shape}")
    if y.size == 0:
        raise ValueError("`y` is empty")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != y.shape[0]:
            raise ValueError(
                f"`groups` must be 1-D with one entry per sample ({y.shape[0]}); "
                f"got shape {groups.shape}"
            )
    if noise_floor is not None:
        try:
            noise_floor = float(noise_floor)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`noise_floor` must be a number; got {noise_floor!r}") from exc
        if not (np.isfinite(noise_floor) and noise_floor > 0):
            raise ValueError(f"`noise_floor` must be positive and finite; got {noise_floor}")

    finite = np.isfinite(y)
    n_dropped = int((~finite).sum())
    y = y[finite]
    if groups is None:
        names, members = ["all"], [y]
    else:
        import pandas as pd

        groups = groups[finite]
        try:
            codes, uniques = pd.factorize(groups, sort=True, use_na_sentinel=False)
        except TypeError:  # unorderable mixture of types
            codes, uniques = pd.factorize(groups, sort=False, use_na_sentinel=False)
        names = [_group_label(u) for u in uniques]
        members = [y[codes == c] for c in range(len(uniques))]

    if fig is None:
        fig = _new_figure((10.0, max(3.6, 1.2 + 0.45 * len(names))))
    ax_hist, ax_box = fig.subplots(1, 2, sharex=True)

    edges = np.histogram_bin_edges(y, bins=bins) if y.size else np.linspace(0.0, 1.0, 11)
    colors = [f"C{k % 10}" for k in range(len(names))]
    for name, values, color in zip(names, members, colors, strict=True):
        label = f"{name} (n={values.size})"
        ax_hist.hist(
            values,
            bins=edges,
            density=density,
            histtype="stepfilled",
            alpha=0.3,
            color=color,
        )
        ax_hist.hist(
            values,
            bins=edges,
            density=density,
            histtype="step",
            lw=1.4,
            color=color,
            label=label,
        )
    if noise_floor is not None and y.size:
        median = float(np.median(y))
        ax_hist.axvspan(
            median - noise_floor,
            median + noise_floor,
            color="0.5",
            alpha=0.2,
            lw=0,
            label=f"median ± noise floor ({noise_floor:.2g} dex)",
        )
    ax_hist.set_xlabel(xlabel)
    ax_hist.set_ylabel("density" if density else "count")
    title = f"n = {y.size}"
    if n_dropped:
        title += f" ({n_dropped} non-finite dropped)"
    ax_hist.set_title(title, fontsize="medium")
    if ax_hist.get_legend_handles_labels()[0]:
        ax_hist.legend(
            title=None if group_title is None else str(group_title),
            fontsize="small",
            loc="upper left",
        )

    nonempty = [k for k, values in enumerate(members) if values.size]
    if nonempty:
        boxes = ax_box.boxplot(
            [members[k] for k in nonempty],
            positions=np.arange(len(nonempty)),
            orientation="horizontal",
            patch_artist=True,
            widths=0.6,
            flierprops={"marker": ".", "markersize": 3, "alpha": 0.5},
            medianprops={"color": "black"},
        )
        for patch, k in zip(boxes["boxes"], nonempty, strict=True):
            patch.set_facecolor(colors[k])
            patch.set_alpha(0.5)
        ax_box.set_yticks(np.arange(len(nonempty)), [names[k] for k in nonempty])
        ax_box.set_ylim(-0.6, len(nonempty) - 0.4)
        ax_box.invert_yaxis()  # first group at the top, as in the legend
    if noise_floor is not None and y.size:
        ax_box.axvspan(median - noise_floor, median + noise_floor, color="0.5", alpha=0.2, lw=0)
    ax_box.set_xlabel(xlabel)
    if group_title is not None:
        ax_box.set_ylabel(str(group_title))
    ax_box.tick_params(axis="x", labelbottom=True)
    return fig.figure


# --------------------------------------------------------------------------------------------
# saving


def save_figure(fig, path, *, dpi=150, **savefig_kw):
    """Write a figure atomically (PNG unless ``path`` says otherwise), creating parent folders.

    The figure is written to a temporary file in the target folder and renamed over ``path``
    with :func:`os.replace`, so a reader never sees a half-written image and a failed write
    leaves neither a partial file nor the temporary one behind.

    Parameters
    ----------
    fig : Figure or SubFigure
        The figure to save.
    path : str or os.PathLike
        Destination; its suffix picks the format (``.png`` by default, also ``.pdf``,
        ``.svg``, ...).
    dpi : float, default=150
        Resolution of raster output.
    **savefig_kw
        Passed to :meth:`matplotlib.figure.Figure.savefig` (e.g. ``bbox_inches="tight"``).

    Returns
    -------
    path : pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sklearn_sfr.plotting import plot_target_distribution, save_figure
    >>> fig = plot_target_distribution(np.random.default_rng(0).normal(size=50))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = save_figure(fig, Path(tmp) / "plots" / "y.png")
    ...     out.read_bytes()[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    path = Path(path)
    fmt = savefig_kw.pop("format", None) or (path.suffix[1:].lower() or "png")
    with atomic_open(path, "wb") as fh:
        fig.figure.savefig(fh, format=fmt, dpi=dpi, **savefig_kw)
    return path
