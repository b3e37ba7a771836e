"""Rest-frame spectral features: emission lines, the 4000 A break, H-delta and continuum colours.

All measurements are simple and robust, so that they can be computed for every object of a cube
in one vectorised pass: no line fitting, no stellar-continuum modelling. Each feature is
measured on the observed-frame spectrum in windows that are fixed in the rest frame and moved to
``(1 + z)`` times their rest wavelength; pixels that only partly overlap a window count with the
overlapping fraction of their width.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..utils._multimodal import check_array_ndim, get_key, is_multimodal, multimodal_tags
from ..utils._sklearn import Interval, StrOptions, fit_context
from ..utils._survey import air_to_vacuum, line_wavelengths
from ..utils._wavelength import resolve_wavelength

_SPECTRUM_SHAPE = "(n_samples, n_pixels)"

#: Flux unit of the line-flux features [erg s^-1 cm^-2] (the unit of SDSS ``LINEAREA``).
LINE_FLUX_UNIT = 1e-17

#: Unit of the H-alpha luminosity feature [erg s^-1].
LUMINOSITY_UNIT = 1e40

#: Input flux-density unit [erg s^-1 cm^-2 A^-1] per ``units`` option (as ``load_hisscube``).
_INPUT_UNIT = {"sdss": 1e-17, "cube": 1.0}

#: Flat Lambda-CDM cosmology of the luminosity feature.
COSMOLOGY = {"H0": 70.0, "Om0": 0.3}


#: Emission lines: name -> (lines of ``sklearn_sfr.utils._survey.SPECTRAL_LINES``
#: measured together, integration window, blue and red continuum side-bands), windows in
#: rest-frame vacuum Angstrom. Windows are +-10 A (about +-450 km/s) around the line, narrower
#: for [N II] 6584 so that H-alpha stays outside; the side-bands avoid the neighbouring lines.
#: Doublets are measured as their sum.
_LINE_DEFINITIONS = {
    "oii_3727": (("OII_3727", "OII_3730"), (3716.0, 3741.0), (3680.0, 3710.0), (3745.0, 3775.0)),
    "hbeta": (("Hbeta",), (4852.7, 4872.7), (4815.0, 4845.0), (4880.0, 4910.0)),
    "oiii_5007": (("OIII_5008",), (4998.2, 5018.2), (4975.0, 4995.0), (5025.0, 5055.0)),
    "halpha": (("Halpha",), (6554.6, 6574.6), (6490.0, 6535.0), (6600.0, 6640.0)),
    "nii_6584": (("NII_6585",), (6577.3, 6593.3), (6490.0, 6535.0), (6600.0, 6640.0)),
    "sii_6717_6731": (("SII_6718", "SII_6733"), (6708.0, 6743.0), (6645.0, 6695.0),
                      (6755.0, 6795.0)),
}  # fmt: skip

#: The same with the vacuum rest wavelengths [A] in place of the line names (SDSS's values).
LINES = {
    name: (line_wavelengths(*lines), *bands) for name, (lines, *bands) in _LINE_DEFINITIONS.items()
}

#: Narrow 4000 A break (Balogh et al. 1999): <F_nu>(red) / <F_nu>(blue), rest-frame A.
DN4000_BANDS = {"blue": (3850.0, 3950.0), "red": (4000.0, 4100.0)}

#: Lick H-delta_A (Worthey & Ottaviani 1997), defined in air; used here in vacuum.
HDELTA_A_BANDS = {
    "index": tuple(air_to_vacuum(np.array([4083.500, 4122.250]))),
    "blue": tuple(air_to_vacuum(np.array([4041.600, 4079.750]))),
    "red": tuple(air_to_vacuum(np.array([4128.500, 4161.000]))),
}

#: Continuum colours: name -> (numerator window, denominator window), rest-frame A, chosen
#: free of strong lines.
COLOURS = {
    "color_4200_5500": ((4150.0, 4250.0), (5450.0, 5550.0)),
    "color_6200_5500": ((6150.0, 6250.0), (5450.0, 5550.0)),
}

#: log10 line ratios: name -> (numerator line, denominator line). [N II]/H-alpha and
#: [O III]/H-beta are the BPT diagnostics (star formation vs AGN); H-alpha/H-beta is the
#: Balmer decrement (2.86 without dust).
RATIOS = {
    "log_nii_halpha": ("nii_6584", "halpha"),
    "log_oiii_hbeta": ("oiii_5007", "hbeta"),
    "log_halpha_hbeta": ("halpha", "hbeta"),
}


def _pixel_edges(centres):
    """Pixel edges of a strictly increasing grid of pixel centres."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(
        [[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]]
    )


class _Pixels:
    """Spectra prepared for band measurements in per-object observed windows.

    Every band of every object is gathered into an ``(n, K)`` block of the pixels it touches,
    with the overlap width of each pixel (zero for masked pixels and padding), so one band is
    one vectorised operation over all objects. For line and index integrals, masked pixels
    between unmasked ones are linearly interpolated (``filled``), so a masked line peak is
    bridged rather than lost.
    """

    def __init__(self, wavelength, flux, valid):
        self.centres = wavelength
        self.edges = _pixel_edges(wavelength)
        self.rows = np.arange(flux.shape[0])[:, None]
        self.valid = valid
        self.flux = np.where(valid, flux, 0.0)
        # nearest unmasked pixel before and after each pixel (-1 / n_pix where none)
        n_pix = flux.shape[1]
        idx = np.arange(n_pix, dtype=np.int32)
        self.prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
        after = np.where(valid, idx, n_pix)[:, ::-1]
        self.next = np.minimum.accumulate(after, axis=1)[:, ::-1]

    def _bridged(self, idx):
        """Flux at pixels ``idx`` (n, K), masked ones interpolated between unmasked ones."""
        n_pix = self.centres.size
        p, q = self.prev[self.rows, idx], self.next[self.rows, idx]
        inner = (p >= 0) & (q < n_pix)
        p, q = np.clip(p, 0, n_pix - 1), np.clip(q, 0, n_pix - 1)
        lam = self.centres
        span = lam[q] - lam[p]
        t = np.divide(lam[idx] - lam[p], span, out=np.zeros_like(span), where=span > 0)
        fp, fq = self.flux[self.rows, p], self.flux[self.rows, q]
        return np.where(inner, fp + t * (fq - fp), 0.0), inner

    def gather(self, lo, hi, filled=False):
        """Pixels in [lo, hi] per object: flux, overlap width, centre and unmasked width.

        With ``filled`` masked pixels between unmasked ones are linearly interpolated and the
        overlap width counts them too; the last value is always the width of unmasked pixels.
        """
        edges, n_pix = self.edges, self.centres.size
        first = np.clip(np.searchsorted(edges, lo, side="right") - 1, 0, n_pix - 1)
        last = np.clip(np.searchsorted(edges, hi, side="left"), 1, n_pix)
        k = max(int((last - first).max(initial=1)), 1)
        idx = first[:, None] + np.arange(k)[None, :]
        inside = (idx < last[:, None]) & (np.isfinite(lo) & np.isfinite(hi))[:, None]
        idx = np.minimum(idx, n_pix - 1)
        width = np.minimum(edges[idx + 1], hi[:, None]) - np.maximum(edges[idx], lo[:, None])
        inside &= width > 0
        w_valid = np.where(inside & self.valid[self.rows, idx], width, 0.0)
        if not filled:
            return self.flux[self.rows, idx], w_valid, self.centres[idx], w_valid
        flux, fillable = self._bridged(idx)
        w_fill = np.where(inside & fillable, width, 0.0)
        return flux, w_fill, self.centres[idx], w_valid

    def mean(self, lo, hi, power=0):
        """Mean of ``flux * lambda**power`` over the unmasked part of [lo, hi], and coverage."""
        f, w, lam, _ = self.gather(lo, hi)
        covered = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (f * lam**power * w).sum(axis=1) / covered
        return mean, covered / (hi - lo)

    def median(self, lo, hi):
        """Median flux of the unmasked pixels whose centres lie in [lo, hi] (NaN if none)."""
        f, w, lam, _ = self.gather(lo, hi)
        use = (w > 0) & (lam >= lo[:, None]) & (lam <= hi[:, None])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows without pixels: NaN
            return np.nanmedian(np.where(use, f, np.nan), axis=1)


def _luminosity_distance_cm(z):
    """Luminosity distance [cm] in the flat Lambda-CDM cosmology of :data:`COSMOLOGY`."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=COSMOLOGY["H0"], Om0=COSMOLOGY["Om0"])
    return cosmo.luminosity_distance(np.clip(z, 0.0, None)).to_value("cm")


class SpectralLineFeatures(TransformerMixin, BaseEstimator):
    """Rest-frame line fluxes, equivalent widths, Dn4000, H-delta_A and continuum colours.

    Turns observed-frame spectra and their redshifts into a table of physically meaningful
    features, the quantities the MPA-JHU catalogue derives its star-formation rates from:

    * **H-alpha** flux traces the ionising photons of young (< 10 Myr) massive stars, so its
      luminosity is proportional to the current star-formation rate (Kennicutt 1998:
      ``SFR [M_sun/yr] = 7.9e-42 L(H-alpha) [erg/s]``, Salpeter IMF). ``halpha_lum`` gives
      ``L = 4 pi d_L**2 F`` in units of 1e40 erg/s (0.079 M_sun/yr), within the 3" fibre and
      without dust correction. H-beta, [O II] 3727 and the other lines trace the same gas;
      the Balmer decrement H-alpha/H-beta (2.86 without dust) measures the dust attenuation,
      and [N II]/H-alpha and [O III]/H-beta (the BPT diagram) separate star formation from AGN
      ionisation, whose lines do not trace the SFR.
    * **Equivalent widths** (line flux over the continuum beneath it, rest frame, positive in
      emission) trace the specific SFR, SFR per unit stellar mass.
    * **Dn4000**, the narrow 4000 A break (Balogh et al. 1999), ``<F_nu>`` in 4000-4100 A over
      3850-3950 A, grows with the age of the stellar population (about 1.1 for young, 1.9
      and more for old, quenched galaxies). **H-delta_A** (Lick, Worthey & Ottaviani 1997, in
      Angstrom, positive in absorption) is strong for populations 0.1-1 Gyr old, so together
      they time the recent star-formation history.
    * **Continuum colours**, the ratio of the mean flux density in two line-free rest-frame
      windows (4200/5500 A and 6200/5500 A), measure the slope of the stellar continuum
      (age and dust).

    Measurement. For each line the continuum is the median (``nanmedian``) of a blue and a red
    side-band, interpolated linearly to the line; the line flux is the integral of the
    continuum-subtracted flux density over a window of fixed rest-frame width (+-10 A, so
    ``(1 + z)`` times wider observed), and the equivalent width is that flux over the
    continuum, divided by ``(1 + z)``. Doublets ([O II] 3726+3729, [S II] 6717+6731) are
    summed. Underlying stellar absorption is not corrected, so Balmer lines of old
    populations come out weak or negative; at the coarse spectral levels (4.4 and 8.8 A
    pixels) H-alpha and [N II] blend partly. Masked pixels (NaN flux, or NaN / non-positive
    ``spectrum_error`` when that key is present) are ignored: side-band medians and band means
    use the unmasked pixels only; in line and Lick-index windows masked pixels between
    unmasked ones are linearly interpolated (so a masked line peak is bridged), and masked
    pixels at the ends of the spectrum stand in at the mean of the rest. A window counts as
    measured when at least ``min_coverage`` of its width has unmasked pixels.

    Missing values. The output is free of NaN. A feature that cannot be measured (its window
    is outside the observed range at that redshift, masked, or the redshift is not finite)
    gets a fill value and its indicator column ``<name>_missing`` is 1:

    * line flux, equivalent width and ``halpha_lum``: 0 (indicator per line, e.g.
      ``halpha_missing``); a line whose continuum is not positive keeps its flux and gets
      an equivalent width of 0;
    * ``dn4000`` and the continuum colours: 1 (no break, flat), also when the denominator
      is not positive;
    * ``hdelta_a``: 0;
    * log line ratios: 0, also when either flux is not positive.

    Units. Line fluxes are in 1e-17 erg s^-1 cm^-2 (SDSS's ``LINEAREA`` unit, so typical
    values are 1 to 1000), optionally asinh-scaled (``flux_scale="asinh"``, ``asinh(F)``:
    linear for weak lines, logarithmic for strong ones, defined for the negative fluxes of
    noise and absorption). Decision trees do not care about the scaling, linear models and
    neural networks prefer asinh. Equivalent widths, ``hdelta_a`` in Angstrom; ``dn4000``
    and colours are unit-free ratios; ``log_*`` ratios are log10.

    Parameters
    ----------
    redshift_key : str, default="redshift"
        Key of the SliceDict that holds the redshifts, shape (n_samples,);
        :func:`~sklearn_sfr.datasets.load_hisscube` puts the catalogue redshift ``Z`` there.
    units : {"sdss", "cube"}, default="sdss"
        Unit of the input spectra, as ``load_hisscube(units=...)``: ``"sdss"`` is
        1e-17 erg s^-1 cm^-2 A^-1, ``"cube"`` is erg s^-1 cm^-2 A^-1 (the stored values).
    flux_scale : {"linear", "asinh"}, default="linear"
        Scaling of the line fluxes and of ``halpha_lum``.
    line_ratios : bool, default=True
        Add the log10 ratios [N II]/H-alpha, [O III]/H-beta and H-alpha/H-beta.
    min_coverage : float, default=0.5
        Smallest fraction of a window that must hold unmasked pixels for a measurement.
    wavelength : array-like of shape (n_pixels,), default=None
        Observed-frame vacuum wavelengths of the spectra [A]; None takes the HiSS-Cube grid of
        matching length (any of the four levels).

    Attributes
    ----------
    wavelength_in_ : ndarray of shape (n_pixels,)
        Wavelength grid of the spectra seen in ``fit``.
    n_pixels_in_ : int
        Pixels per spectrum seen in ``fit``.
    feature_names_out_ : ndarray of str
        Names of the output columns (see :meth:`get_feature_names_out`).

    See Also
    --------
    PhotometryFeatures : Aperture photometry, colours and sizes from the image cutouts.

    Notes
    -----
    The input must be a :class:`skorch.helper.SliceDict`, because the features need each
    object's redshift and a bare array cannot carry it: ``load_hisscube(...).X`` has the keys
    ``spectrum`` and ``redshift``. Rest wavelengths are vacuum, as SDSS spectra (SPZLINE
    values); the Lick bands are converted from air. ``fit`` learns nothing from the data; it
    records the wavelength grid.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr.datasets import wavelength_grid
    >>> from sklearn_sfr.features import SpectralLineFeatures
    >>> lam = wavelength_grid(1)
    >>> z = np.array([0.02, 0.1])
    >>> centre = 6564.614 * (1 + z)[:, None]
    >>> line = 100.0 * np.exp(-0.5 * ((lam - centre) / 3.0) ** 2) / (3.0 * np.sqrt(2 * np.pi))
    >>> X = SliceDict(spectrum=(1.0 + line).astype(np.float32), redshift=z)
    >>> features = SpectralLineFeatures().fit(X)
    >>> table = features.transform(X)
    >>> names = list(features.get_feature_names_out())
    >>> np.round(table[:, names.index("halpha_flux")])
    array([100., 100.])
    >>> np.round(table[:, names.index("halpha_ew")])
    array([98., 91.])
    >>> table[:, names.index("oii_3727_missing")]
    array([1., 0.])
    """

    _parameter_constraints: dict = {
        "redshift_key": [str],
        "units": [StrOptions({"sdss", "cube"})],
        "flux_scale": [StrOptions({"linear", "asinh"})],
        "line_ratios": ["boolean"],
        "min_coverage": [Interval(Real, 0, 1, closed="right")],
        "wavelength": ["array-like", None],
    }

    def __init__(
        self,
        redshift_key="redshift",
        units="sdss",
        flux_scale="linear",
        line_ratios=True,
        min_coverage=0.5,
        wavelength=None,
    ):
        self.redshift_key = redshift_key
        self.units = units
        self.flux_scale = flux_scale
        self.line_ratios = line_ratios
        self.min_coverage = min_coverage
        self.wavelength = wavelength

    # -- input ------------------------------------------------------------------------------
    def _inputs(self, X):
        """Spectra (n, L) float64, their validity mask and the redshifts (n,)."""
        if not is_multimodal(X):
            shape = getattr(X, "shape", None)
            raise TypeError(
                f"{type(self).__name__} needs the redshift of every object, so X must be a "
                f"skorch.helper.SliceDict with keys 'spectrum' {_SPECTRUM_SHAPE} and "
                f"{self.redshift_key!r} (n_samples,), such as load_hisscube(...).X; got "
                f"{type(X).__name__}" + (f" of shape {shape}" if shape is not None else "")
            )
        flux = check_array_ndim(
            get_key(X, "spectrum"), 2, "X['spectrum']", shape_hint=_SPECTRUM_SHAPE
        )
        z = np.asarray(get_key(X, self.redshift_key))
        name = f"X[{self.redshift_key!r}]"
        if z.dtype == object or z.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numeric redshifts, got dtype {z.dtype}")
        if z.ndim == 2 and z.shape[1] == 1:
            z = z[:, 0]
        if z.shape != (flux.shape[0],):
            raise ValueError(
                f"{name} must have shape (n_samples,) = ({flux.shape[0]},) to match "
                f"X['spectrum'] of shape {flux.shape}, got {z.shape}"
            )
        flux = flux.astype(np.float64)
        valid = np.isfinite(flux)
        if "spectrum_error" in X:
            err = check_array_ndim(
                X["spectrum_error"], 2, "X['spectrum_error']", shape_hint=_SPECTRUM_SHAPE
            )
            if err.shape != flux.shape:
                raise ValueError(
                    f"X['spectrum_error'] has shape {err.shape} but X['spectrum'] has {flux.shape}"
                )
            with np.errstate(invalid="ignore"):
                valid &= np.isfinite(err) & (err > 0)
        return flux, valid, z.astype(np.float64)

    # -- fit / transform --------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the input and record the wavelength grid.

        Parameters
        ----------
        X : SliceDict
            With ``spectrum`` (n_samples, n_pixels) and the redshifts under ``redshift_key``.
        y : None
            Ignored.

        Returns
        -------
        self : SpectralLineFeatures
            The fitted transformer.
        """
        flux, valid, _ = self._inputs(X)
        self.wavelength_in_ = resolve_wavelength(
            self.wavelength, flux.shape[1], what="X['spectrum']", required=True
        )
        self.n_pixels_in_ = flux.shape[1]
        level = np.nanmedian(np.abs(np.where(valid, flux, np.nan))) if valid.any() else np.nan
        if self.units == "sdss" and 0 < level < 1e-10:
            warnings.warn(
                f"X['spectrum'] has a median |flux| of {level:.2g}, which looks like "
                "erg/s/cm2/A (cube units), not 1e-17 erg/s/cm2/A; pass units='cube' or load "
                "the cube with units='sdss', else the line fluxes come out 1e17 times too small",
                UserWarning,
                stacklevel=2,
            )
        self.feature_names_out_ = np.asarray(self._names(), dtype=object)
        return self

    def _names(self):
        values, missing = [], []
        for line in LINES:
            values += [f"{line}_flux", f"{line}_ew"]
            missing.append(f"{line}_missing")
        values.append("halpha_lum")
        values += ["dn4000", "hdelta_a"]
        missing += ["dn4000_missing", "hdelta_a_missing"]
        values += list(COLOURS)
        missing += [f"{c}_missing" for c in COLOURS]
        if self.line_ratios:
            values += list(RATIOS)
            missing += [f"{r}_missing" for r in RATIOS]
        return values + missing

    def transform(self, X):
        """Measure the features.

        Parameters
        ----------
        X : SliceDict
            With ``spectrum`` (n_samples, n_pixels), the redshifts under ``redshift_key`` and
            optionally ``spectrum_error``.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            Feature values followed by the 0/1 missing indicators, NaN-free; column names
            from :meth:`get_feature_names_out`.
        """
        check_is_fitted(self)
        flux, valid, z = self._inputs(X)
        if flux.shape[1] != self.n_pixels_in_:
            raise ValueError(
                f"X['spectrum'] has {flux.shape[1]} pixels, but {type(self).__name__} was "
                f"fitted on {self.n_pixels_in_}"
            )
        flux *= _INPUT_UNIT[self.units] / LINE_FLUX_UNIT  # work in 1e-17 erg/s/cm2/A
        known = np.isfinite(z) & (z > -1)
        opz = np.where(known, 1.0 + z, np.nan)  # NaN windows gather no pixels
        pix = _Pixels(self.wavelength_in_, flux, valid)
        out = {}

        with np.errstate(invalid="ignore", divide="ignore"):
            for name, (centres, window, blue, red) in LINES.items():
                f, ew, ok = self._line(pix, opz, np.mean(centres), window, blue, red)
                out[f"{name}_flux"], out[f"{name}_ew"], out[f"{name}_missing"] = f, ew, ~ok

            lum = np.zeros_like(z)
            ok = ~out["halpha_missing"]
            lum[ok] = (
                4 * np.pi * _luminosity_distance_cm(z[ok]) ** 2
                * out["halpha_flux"][ok] * LINE_FLUX_UNIT / LUMINOSITY_UNIT
            )  # fmt: skip
            out["halpha_lum"] = lum

            b, cov_b = pix.mean(*self._observed(DN4000_BANDS["blue"], opz), power=2)
            r, cov_r = pix.mean(*self._observed(DN4000_BANDS["red"], opz), power=2)
            ok = (cov_b >= self.min_coverage) & (cov_r >= self.min_coverage) & (b > 0)
            out["dn4000"], out["dn4000_missing"] = np.where(ok, r / b, 1.0), ~ok

            out["hdelta_a"], out["hdelta_a_missing"] = self._lick(pix, opz, HDELTA_A_BANDS)

            for name, (num, den) in COLOURS.items():
                a, cov_a = pix.mean(*self._observed(num, opz))
                d, cov_d = pix.mean(*self._observed(den, opz))
                ok = (cov_a >= self.min_coverage) & (cov_d >= self.min_coverage) & (d > 0)
                out[name], out[f"{name}_missing"] = np.where(ok, a / d, 1.0), ~ok

            if self.line_ratios:
                for name, (num, den) in RATIOS.items():
                    a, d = out[f"{num}_flux"], out[f"{den}_flux"]
                    ok = ~out[f"{num}_missing"] & ~out[f"{den}_missing"] & (a > 0) & (d > 0)
                    out[name] = np.where(ok, np.log10(np.where(ok, a / d, 1.0)), 0.0)
                    out[f"{name}_missing"] = ~ok

        if self.flux_scale == "asinh":
            for key in [f"{line}_flux" for line in LINES] + ["halpha_lum"]:
                out[key] = np.arcsinh(out[key])
        table = np.column_stack([out[k] for k in self.feature_names_out_]).astype(np.float64)
        table[~np.isfinite(table)] = 0.0  # defensive: every fill above is explicit
        return table

    # -- measurements -----------------------------------------------------------------------
    @staticmethod
    def _observed(band, opz):
        lo, hi = band
        return lo * opz, hi * opz

    def _line(self, pix, opz, centre, window, blue, red):
        """Flux, rest-frame EW and a measured-flag of one line for every object."""
        m_b = pix.median(*self._observed(blue, opz))
        m_r = pix.median(*self._observed(red, opz))
        c_b, c_r = np.mean(blue), np.mean(red)
        slope = np.where(np.isfinite(m_b) & np.isfinite(m_r), (m_r - m_b) / (c_r - c_b), 0.0)
        anchor_lam = np.where(np.isfinite(m_b), c_b, c_r)
        anchor = np.where(np.isfinite(m_b), m_b, m_r)
        have_cont = np.isfinite(anchor)

        lo, hi = self._observed(window, opz)
        f, w, lam, w_valid = pix.gather(lo, hi, filled=True)
        # continuum at each pixel, in rest-frame wavelength
        cont = anchor[:, None] + slope[:, None] * (lam / opz[:, None] - anchor_lam[:, None])
        covered = w.sum(axis=1)
        line = (np.where(w > 0, f - cont, 0.0) * w).sum(axis=1) * (hi - lo) / covered
        ok = have_cont & (w_valid.sum(axis=1) / (hi - lo) >= self.min_coverage)
        line = np.where(ok, line, 0.0)
        c_line = anchor + slope * (centre - anchor_lam)
        ew = np.where(ok & (c_line > 0), line / c_line / opz, 0.0)
        return line, ew, ok

    def _lick(self, pix, opz, bands):
        """A Lick index in Angstrom (positive in absorption) and its missing flag."""
        m_b, cov_b = pix.mean(*self._observed(bands["blue"], opz))
        m_r, cov_r = pix.mean(*self._observed(bands["red"], opz))
        c_b, c_r = np.mean(bands["blue"]), np.mean(bands["red"])
        slope = (m_r - m_b) / (c_r - c_b)
        lo, hi = self._observed(bands["index"], opz)
        f, w, lam, w_valid = pix.gather(lo, hi, filled=True)
        cont = m_b[:, None] + slope[:, None] * (lam / opz[:, None] - c_b)
        covered = w.sum(axis=1)
        index = (np.where(w > 0, 1.0 - f / cont, 0.0) * w).sum(axis=1) / covered
        index *= bands["index"][1] - bands["index"][0]  # mean depth x rest width
        edge_cont = m_b[:, None] + slope[:, None] * (np.asarray(bands["index"]) - c_b)
        ok = (
            (cov_b >= self.min_coverage)
            & (cov_r >= self.min_coverage)
            & (w_valid.sum(axis=1) / (hi - lo) >= self.min_coverage)
            & (edge_cont > 0).all(axis=1)
        )
        return np.where(ok, index, 0.0), ~ok

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output columns.

        Per line ``{line}_flux`` and ``{line}_ew`` for ``oii_3727``, ``hbeta``,
        ``oiii_5007``, ``halpha``, ``nii_6584``, ``sii_6717_6731``; ``halpha_lum``;
        ``dn4000``, ``hdelta_a``; ``color_4200_5500``, ``color_6200_5500``; with
        ``line_ratios`` ``log_nii_halpha``, ``log_oiii_hbeta``, ``log_halpha_hbeta``; then
        the indicators ``{line}_missing``, ``dn4000_missing``, ``hdelta_a_missing``,
        ``{colour}_missing`` and ``{ratio}_missing``.

        Parameters
        ----------
        input_features : None
            Ignored (the input is not a table).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of :meth:`transform`'s output.
        """
        check_is_fitted(self)
        return self.feature_names_out_.copy()

    def __sklearn_tags__(self):
        return multimodal_tags(super().__sklearn_tags__())
