"""Object isolation: detect the sources of each cutout and remove all but the central one.

SDSS cutouts are centred on the target, but neighbouring galaxies and stars share the frame and
add their light to it. :class:`ObjectIsolator` finds the sources of each cutout with photutils'
image segmentation (``detect_sources`` on a noise-weighted, PSF-smoothed detection image), splits
blended sources with ``deblend_sources``, keeps the segment at the centre and replaces the pixels
of every other source by sky noise, zeros or NaN.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from astropy.stats import sigma_clipped_stats
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage
from skimage.morphology import disk
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..utils._multimodal import check_array_ndim, is_multimodal, replace_keys
from ..utils._sklearn import Interval, StrOptions, fit_context
from ..utils._survey import BAND_NAMES, CUTOUT_SIZES
from ._images import _IMAGE_SHAPE, ImageTransformer

#: FWHM of the SDSS PSF in zoom-0 pixels (median r-band seeing 1.4" at 0.396"/px).
_PSF_FWHM_ZOOM0 = 3.5
#: Radius (zoom-0 pixels, at least 2 pixels at any zoom) within which a segment centroid counts
#: as the central object when no segment covers the centre pixel.
_CENTRE_RADIUS_ZOOM0 = 3.0
#: The sky is re-measured without the sources only where this fraction of pixels is left.
_MIN_SKY_FRACTION = 0.1


def _import_photutils():
    try:
        from photutils.segmentation import (
            deblend_sources,
            detect_sources,
            make_2dgaussian_kernel,
        )
        from photutils.utils.exceptions import NoDetectionsWarning
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ObjectIsolator needs photutils (>= 3.0) for source detection: pip install photutils"
        ) from exc
    return detect_sources, deblend_sources, make_2dgaussian_kernel, NoDetectionsWarning


def _sky(x, mask=None):
    """Sigma-clipped median and std of each image (last two axes), NaN where none is left."""
    if mask is not None:
        mask = np.broadcast_to(mask, x.shape)  # astropy wants the data's shape
    # NaN pixels (missing rows) and all-NaN or fully masked bands are expected: their warnings
    # (astropy's "invalid values", numpy's empty slices) say nothing the NaN results don't.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        _, median, std = sigma_clipped_stats(x, mask=mask, sigma=3.0, maxiters=5, axis=(-2, -1))
    return np.asarray(median), np.asarray(std)


class ObjectIsolator(ImageTransformer):
    """Remove neighbouring objects from image cutouts, keeping the central object.

    For every cutout:

    1. **Sky.** A band's sky level and noise are the sigma-clipped median and standard
       deviation of its pixels (3 sigma, at most 5 iterations,
       :func:`astropy.stats.sigma_clipped_stats` over the batch).
    2. **Detection image.** The sky-subtracted ``detection_bands`` in units of their noise are
       summed and divided by the square root of their number (a signal-to-noise image whose sky
       has unit noise), then smoothed with a Gaussian of the PSF's width
       (:func:`photutils.segmentation.make_2dgaussian_kernel`,
       :func:`astropy.convolution.convolve`).
    3. **Segmentation.** :func:`photutils.segmentation.detect_sources` keeps groups of at least
       ``npixels`` connected pixels above ``nsigma`` times the noise of the unsmoothed detection
       image (photutils' convention: smoothing raises a source's significance, not the bar).
       With ``deblend=True`` blended sources are split by
       :func:`photutils.segmentation.deblend_sources` (multi-thresholding and watershed:
       ``nlevels`` exponentially spaced levels, a child must hold at least ``contrast`` of its
       parent's flux).
    4. **Central object.** The segment covering the centre pixel ``(S // 2, S // 2)``, else the
       segment whose centroid lies nearest the centre within 3 zoom-0 pixels (at least 2
       pixels). When there is none, the cutout is returned unchanged (``central_found`` is
       False in the statistics of :meth:`isolate`).
    5. **Removal.** Every other segment, dilated by ``dilate`` pixels, is replaced, except
       where it would touch the central segment, which is never changed. The sky is measured
       again without the (dilated) sources, and the removed pixels become Gaussian sky noise
       with that median and standard deviation (``mode="noise"``), 0 (``mode="zero"``: the
       sky-subtracted sky level, right for SDSS corrected frames, which are sky-subtracted) or
       NaN (``mode="mask"``).

    :meth:`transform` returns the isolated images; :meth:`isolate` returns them with a table of
    per-object statistics (the transformer itself keeps no record of the data it transformed).
    Both work on a bare ``(n, bands, S, S)`` array or on a SliceDict; there ``image`` is isolated,
    ``image_error`` follows (NaN at removed pixels in mask mode, the sky noise in the other
    modes) and every other key passes through. Detection reads the images only, so a bare array
    and a SliceDict give the same result. Any cutout size works; an 8-pixel cutout rarely
    separates anything, but it does not fail.

    Parameters
    ----------
    mode : {"noise", "zero", "mask"}, default="noise"
        What replaces the pixels of removed objects: sky noise, 0 or NaN.
    detection_bands : tuple of str, default=("g", "r", "i")
        Bands summed into the detection image; each must be in ``band_names``.
    nsigma : float, default=2.0
        Detection threshold in units of the detection image's sky noise.
    npixels : int, default=5
        Minimum number of connected pixels of a source (in pixels of the input images).
    deblend : bool, default=True
        Split blended sources by multi-threshold deblending.
    contrast : float, default=0.001
        Minimum fraction of a blend's flux that a deblended component must hold.
    nlevels : int, default=32
        Number of deblending thresholds.
    dilate : int, default=2
        Pixels by which removed segments are grown to catch their faint outskirts.
    fwhm : float or "auto", default="auto"
        FWHM (pixels) of the smoothing kernel; 0 turns smoothing off. ``"auto"`` assumes the
        cube's cutouts, 64 pixels at zoom 0, and uses ``3.5 * S / 64`` (the SDSS seeing).
        Give it explicitly for cutouts cropped before isolation.
    random_state : int, RandomState instance or None, default=None
        Seed of the sky noise of ``mode="noise"``; the same seed gives the same output.
    band_names : tuple of str, default=("u", "g", "r", "i", "z")
        Names of the image channels, in order.

    Attributes
    ----------
    n_bands_ : int
        Number of bands seen in ``fit``.
    image_size_ : int
        Side of the cutouts seen in ``fit`` (transform accepts any size).
    detection_indices_ : ndarray of int
        Channel indices of ``detection_bands``.

    See Also
    --------
    neighbour_detection_scores : Precision and recall of the detected neighbours against the
        synthetic cube's truth.
    CentralCrop : Drop the outskirts (and far neighbours) instead.

    Examples
    --------
    A galaxy at the centre and a fainter neighbour 14 pixels to its right:

    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import ObjectIsolator
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:64, :64]
    >>> central = 50 * np.exp(-((x - 32) ** 2 + (y - 32) ** 2) / (2 * 3.0**2))
    >>> neighbour = 30 * np.exp(-((x - 46) ** 2 + (y - 32) ** 2) / (2 * 2.0**2))
    >>> noise = rng.normal(0, 1, (1, 5, 64, 64))
    >>> images = (central + neighbour + noise).astype(np.float32)
    >>> iso = ObjectIsolator(mode="zero").fit(images)
    >>> out, stats = iso.isolate(images)
    >>> stats[["n_sources", "central_found", "n_removed", "neighbour_x"]].round()
       n_sources  central_found  n_removed  neighbour_x
    0          2           True          1         14.0
    >>> float(out[0, 2, 32, 46]), bool(out[0, 2, 32, 32] == images[0, 2, 32, 32])
    (0.0, True)
    >>> round(float(stats["fraction_flux_removed_r"][0]), 2)  # true share: 0.21
    0.22
    >>> bool((iso.transform(images) == out).all())  # the same images, without the table
    True
    """

    _parameter_constraints: dict = {
        "mode": [StrOptions({"noise", "zero", "mask"})],
        "detection_bands": [tuple, list],
        "nsigma": [Interval(Real, 0, None, closed="neither")],
        "npixels": [Interval(Integral, 1, None, closed="left")],
        "deblend": ["boolean"],
        "contrast": [Interval(Real, 0, 1, closed="both")],
        "nlevels": [Interval(Integral, 1, None, closed="left")],
        "dilate": [Interval(Integral, 0, None, closed="left")],
        "fwhm": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "band_names": [tuple, list],
    }

    def __init__(
        self,
        mode="noise",
        detection_bands=("g", "r", "i"),
        nsigma=2.0,
        npixels=5,
        deblend=True,
        contrast=0.001,
        nlevels=32,
        dilate=2,
        fwhm="auto",
        random_state=None,
        band_names=BAND_NAMES,
    ):
        self.mode = mode
        self.detection_bands = detection_bands
        self.nsigma = nsigma
        self.npixels = npixels
        self.deblend = deblend
        self.contrast = contrast
        self.nlevels = nlevels
        self.dilate = dilate
        self.fwhm = fwhm
        self.random_state = random_state
        self.band_names = band_names

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the bands and record the image shape (the transform itself learns nothing).

        Parameters
        ----------
        X : ndarray of shape (n, bands, S, S) or SliceDict
            Images, or a SliceDict holding them under ``image``.
        y : None
            Ignored.

        Returns
        -------
        self : ObjectIsolator
            The fitted transformer.
        """
        images = self._images_of(X)
        names = list(self.band_names)
        if len(names) != images.shape[1]:
            raise ValueError(
                f"band_names has {len(names)} names {tuple(names)} but the images have "
                f"{images.shape[1]} bands (shape {images.shape})"
            )
        missing = [b for b in self.detection_bands if b not in names]
        if missing or not len(self.detection_bands):
            raise ValueError(
                f"detection_bands {tuple(self.detection_bands)} must be a non-empty subset of "
                f"band_names {tuple(names)}; missing: {missing}"
            )
        self.detection_indices_ = np.asarray([names.index(b) for b in self.detection_bands])
        self.n_bands_ = images.shape[1]
        self.image_size_ = images.shape[-1]
        return self

    def transform(self, X):
        """Replace every source but the central one.

        Parameters
        ----------
        X : ndarray of shape (n, bands, S, S) or SliceDict
            Images, or a SliceDict holding them under ``image`` (and ``image_error``).

        Returns
        -------
        X_isolated : ndarray of shape (n, bands, S, S) float32, or SliceDict
            ``isolate(X)[0]``: a new array (the input is never modified); a SliceDict gets new
            ``image`` and ``image_error`` arrays and keeps its other keys.
        """
        return self.isolate(X)[0]

    def isolate(self, X):
        """Replace every source but the central one, and describe what was found and removed.

        Parameters
        ----------
        X : ndarray of shape (n, bands, S, S) or SliceDict
            Images, or a SliceDict holding them under ``image`` (and ``image_error``).

        Returns
        -------
        X_isolated : ndarray of shape (n, bands, S, S) float32, or SliceDict
            What :meth:`transform` returns.
        stats : pandas.DataFrame
            One row per cutout, in order (index ``0..n-1``): ``n_sources`` (segments detected,
            the central one included), ``central_found``, ``n_removed`` (segments removed),
            ``fraction_pixels_removed``, ``fraction_flux_removed_{band}`` (sky-subtracted flux
            in the removed pixels over that of the whole cutout, per band),
            ``neighbour_x``/``neighbour_y`` (offset in pixels, x along columns, y along rows, of
            the brightest other source from the central object's centroid, or from the centre
            pixel when no central object was found; NaN when there is no other source) and
            ``neighbour_flux_ratio`` (its detection-image flux over the central object's).
        """
        check_is_fitted(self)
        multimodal = is_multimodal(X)
        images = self._images_of(X)
        name = "X['image']" if multimodal else "X"
        if images.shape[1] != self.n_bands_:
            raise ValueError(
                f"{name} has {images.shape[1]} bands, but ObjectIsolator was fitted on "
                f"{self.n_bands_} ({tuple(self.band_names)})"
            )
        errors = None
        if multimodal and "image_error" in X:
            errors = check_array_ndim(
                X["image_error"], 4, "X['image_error']", shape_hint=_IMAGE_SHAPE
            )
            if errors.shape != images.shape:
                raise ValueError(
                    f"X['image_error'] has shape {errors.shape}, but X['image'] has "
                    f"{images.shape}; they must match"
                )

        remove, sky, noise, stats = self._segment(images)
        # Fill a copy, unless validation already made one (another dtype than float32).
        source = np.asarray(X["image"] if multimodal else X)
        out = images.copy() if np.may_share_memory(images, source) else images
        if errors is not None and np.may_share_memory(errors, np.asarray(X["image_error"])):
            errors = errors.copy()
        out, out_err = self._fill(out, errors, remove, sky, noise)
        if not multimodal:
            return out, stats
        updates = {"image": out}
        if out_err is not None:
            updates["image_error"] = out_err
        return replace_keys(X, **updates), stats

    # -- detection ------------------------------------------------------------------------
    def _kernel(self, size, make_kernel):
        fwhm = _PSF_FWHM_ZOOM0 * size / CUTOUT_SIZES[0] if self.fwhm == "auto" else self.fwhm
        if fwhm <= 0:
            return None
        return make_kernel(fwhm, size=2 * int(np.ceil(1.5 * fwhm)) + 1)

    def _segment(self, images):
        """Segment every cutout; return the removal masks, the sky, its noise and the stats."""
        from astropy.convolution import convolve

        detect_sources, deblend_sources, make_kernel, no_detections = _import_photutils()
        n, _, height, width = images.shape
        size = min(height, width)
        cy, cx = height // 2, width // 2

        # 1. Sky and noise of the detection bands; 2. the unit-noise detection image.
        idx = self.detection_indices_
        chosen = images[:, idx]
        sky_d, noise_d = _sky(chosen)
        inv = np.zeros(noise_d.shape, dtype=np.float32)
        np.divide(1.0, noise_d, out=inv, where=noise_d > 0)
        chosen -= np.nan_to_num(sky_d).astype(np.float32)[:, :, None, None]
        det = np.einsum("nbhw,nb->nhw", chosen, inv) / np.float32(np.sqrt(len(idx)))
        del chosen
        det_noise = _sky(det)[1]
        kernel = self._kernel(size, make_kernel)
        radius = max(2.0, _CENTRE_RADIUS_ZOOM0 * size / CUTOUT_SIZES[0])
        grow = disk(self.dilate, dtype=bool)

        if kernel is not None:
            # One call for the batch: a (1, k, k) kernel smooths each cutout on its own.
            det = convolve(det, kernel.array[None], boundary="extend", nan_treatment="interpolate")
        det = np.nan_to_num(np.asarray(det, dtype=np.float64), copy=False)

        remove = np.zeros((n, height, width), dtype=bool)
        sources = np.zeros((n, height, width), dtype=bool)
        rows = []
        for k in range(n):
            smooth = det[k]
            threshold = self.nsigma * det_noise[k]
            found = None
            if np.isfinite(threshold) and threshold > 0:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", no_detections)  # an empty cutout is fine
                    found = detect_sources(smooth, threshold, self.npixels)
                blends = _multi_peaked(smooth, found) if self.deblend else []
                if len(blends):
                    found = deblend_sources(
                        smooth,  # the image that detect_sources segmented, as photutils wants
                        found,
                        self.npixels,
                        labels=blends,
                        n_levels=self.nlevels,
                        contrast=self.contrast,
                        progress_bar=False,
                    )
            segm = None if found is None else found.data
            rows.append(self._record(k, segm, smooth, (cy, cx), radius, grow, remove, sources))

        # 5. Sky and noise of every band, without the (dilated) sources where enough sky is
        # left, for the cutouts that lose pixels (the others need none).
        stats = pd.DataFrame(rows)
        n_bands = images.shape[1]
        sky = np.full((n, n_bands), np.nan)
        noise = np.full((n, n_bands), np.nan)
        fraction = np.zeros((n, n_bands))
        hit = np.flatnonzero(remove.any(axis=(1, 2)))
        if hit.size:
            cut = images[hit]
            masks = sources[hit]
            if self.dilate:
                masks = ndimage.binary_dilation(masks, structure=grow[None])
            enough = (~masks).sum(axis=(1, 2)) >= max(_MIN_SKY_FRACTION * height * width, 9)
            masks[~enough] = False
            sky[hit], noise[hit] = _sky(cut, mask=masks[:, None])
            sky[hit] = np.nan_to_num(sky[hit])
            noise[hit] = np.nan_to_num(noise[hit])
            # Sky-subtracted flux in the removed pixels over that of the whole cutout.
            sub = np.nan_to_num(cut - sky[hit, :, None, None].astype(np.float32), copy=False)
            total = sub.sum(axis=(2, 3), dtype=np.float64)
            removed = np.einsum(
                "nbhw,nhw->nb", sub, remove[hit].astype(np.float32), dtype=np.float64
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction[hit] = np.where(total > 0, removed / total, np.nan)
        for b, band in enumerate(self.band_names):
            stats[f"fraction_flux_removed_{band}"] = fraction[:, b]
        return remove, sky, noise, stats

    def _record(self, k, segm, smooth, centre, radius, grow, remove, sources):
        """Pick the central segment, mark the pixels to remove; one row of the stats."""
        row = {
            "n_sources": 0,
            "central_found": False,
            "n_removed": 0,
            "fraction_pixels_removed": 0.0,
            "neighbour_x": np.nan,
            "neighbour_y": np.nan,
            "neighbour_flux_ratio": np.nan,
        }
        if segm is None or not segm.any():
            return row
        n_labels = int(segm.max())
        labels = np.arange(1, n_labels + 1)
        weight = np.clip(smooth, 0.0, None)
        centroids = np.asarray(ndimage.center_of_mass(weight, segm, labels)).reshape(-1, 2)
        flux = np.asarray(ndimage.sum_labels(smooth, segm, labels))
        central = int(segm[centre])
        if central == 0:
            dist = np.hypot(centroids[:, 0] - centre[0], centroids[:, 1] - centre[1])
            nearest = int(np.nanargmin(dist)) if np.isfinite(dist).any() else -1
            if nearest >= 0 and dist[nearest] <= radius:
                central = nearest + 1
        row["n_sources"] = n_labels
        row["central_found"] = central > 0
        sources[k] = segm > 0
        others = labels != central
        if others.any():
            bright = int(np.flatnonzero(others)[np.argmax(flux[others])])
            origin = centroids[central - 1] if central else np.asarray(centre, float)
            row["neighbour_y"], row["neighbour_x"] = centroids[bright] - origin
            if central and flux[central - 1] > 0:
                row["neighbour_flux_ratio"] = flux[bright] / flux[central - 1]
        if central and others.any():
            mask = (segm > 0) & (segm != central)
            if self.dilate:
                mask = ndimage.binary_dilation(mask, structure=grow)
            mask &= segm != central
            remove[k] = mask
            row["n_removed"] = n_labels - 1
            row["fraction_pixels_removed"] = float(mask.mean())
        return row

    # -- replacement ----------------------------------------------------------------------
    def _fill(self, out, out_err, remove, sky, noise):
        """Replace the removed pixels of ``out`` (and ``out_err``) in place."""
        if not remove.any():
            return out, out_err
        obj, row, col = np.nonzero(remove)
        n_bands = out.shape[1]
        obj = np.repeat(obj, n_bands)
        band = np.tile(np.arange(n_bands), len(row))
        row = np.repeat(row, n_bands)
        col = np.repeat(col, n_bands)
        sigma = noise[obj, band].astype(np.float32)
        if self.mode == "mask":
            out[obj, band, row, col] = np.nan
        elif self.mode == "zero":
            out[obj, band, row, col] = 0.0
        else:
            rng = check_random_state(self.random_state)
            draw = rng.standard_normal(len(obj)).astype(np.float32)
            out[obj, band, row, col] = sky[obj, band].astype(np.float32) + sigma * draw
        if out_err is not None:
            out_err[obj, band, row, col] = np.nan if self.mode == "mask" else sigma
        return out, out_err

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _multi_peaked(data, segm):
    """Labels of the segments of ``segm`` (a SegmentationImage or None) with two or more local
    maxima: the only ones that can split.

    Every region above a deblending level holds a local maximum of its segment, so a segment
    with one has a single region at every level and photutils leaves it whole, but only after
    thresholding it at all ``nlevels`` levels, which would be most of the transform's time.
    Segments are 8-connected components, so no 3x3 window reaches from one into another.
    """
    if segm is None:
        return []
    segm = segm.data
    inside = segm > 0
    peaks = inside & (data >= ndimage.maximum_filter(np.where(inside, data, -np.inf), size=3))
    return np.flatnonzero(np.bincount(segm[peaks]) >= 2)


# =============================================================================================
# Scoring against the synthetic cube's truth
# =============================================================================================
def neighbour_detection_scores(stats, frame, zoom=0, max_distance=3.0):
    """Precision and recall of neighbour detection against the synthetic cube's truth.

    An object *has a detected neighbour* when the statistics of :meth:`ObjectIsolator.isolate`
    record one
    (``neighbour_x`` not NaN); it *has a true neighbour* when ``frame["n_neighbours"] > 0``
    (the record of :func:`~sklearn_sfr.datasets.make_synthetic_cube`). A detection is a match
    when the detected brightest neighbour lies within ``max_distance`` pixels of the true
    brightest neighbour, whose offsets ``frame["neighbour_x"]``, ``frame["neighbour_y"]`` are
    in zoom-0 pixels and are divided by ``2 ** zoom``. Precision is matches over detections,
    recall matches over true neighbours (NaN when the denominator is 0).

    Parameters
    ----------
    stats : pandas.DataFrame
        Statistics of the cutouts of ``frame``, row for row: ``ObjectIsolator.isolate(X)[1]``.
    frame : pandas.DataFrame
        The cube's per-object table (``load_hisscube(...).frame``) with ``n_neighbours``,
        ``neighbour_x`` and ``neighbour_y``.
    zoom : int, default=0
        Zoom level of the images that ``stats`` describes.
    max_distance : float, default=3.0
        Largest position error of a match, in pixels of the images at ``zoom``.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``n_true`` (objects with a neighbour), ``n_detected``
        (objects with a detected neighbour) and ``n_matched``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_sfr.preprocessing import neighbour_detection_scores
    >>> stats = pd.DataFrame({"neighbour_x": [10.2, np.nan, 4.0], "neighbour_y": [0.5, np.nan, 9]})
    >>> frame = pd.DataFrame({"n_neighbours": [1, 1, 0], "neighbour_x": [10.0, -8, np.nan],
    ...                       "neighbour_y": [0.0, 3.0, np.nan]})
    >>> neighbour_detection_scores(stats, frame)
    {'precision': 0.5, 'recall': 0.5, 'n_true': 2, 'n_detected': 2, 'n_matched': 1}
    """
    missing_stats = [c for c in ("neighbour_x", "neighbour_y") if c not in stats]
    missing_frame = [c for c in ("n_neighbours", "neighbour_x", "neighbour_y") if c not in frame]
    if missing_stats or missing_frame:
        raise KeyError(
            f"missing columns: stats lacks {missing_stats}, frame lacks {missing_frame} "
            "(frame must be a synthetic cube's table, stats ObjectIsolator.isolate(X)[1])"
        )
    if len(stats) != len(frame):
        raise ValueError(
            f"stats has {len(stats)} rows but frame has {len(frame)}; they must describe the "
            "same objects in the same order"
        )
    scale = 2.0**zoom
    px = stats["neighbour_x"].to_numpy(dtype=float)
    py = stats["neighbour_y"].to_numpy(dtype=float)
    tx = frame["neighbour_x"].to_numpy(dtype=float) / scale
    ty = frame["neighbour_y"].to_numpy(dtype=float) / scale
    detected = np.isfinite(px) & np.isfinite(py)
    true = frame["n_neighbours"].to_numpy() > 0
    with np.errstate(invalid="ignore"):
        close = np.hypot(px - tx, py - ty) <= max_distance
    matched = int(np.sum(detected & true & close))
    n_true, n_detected = int(true.sum()), int(detected.sum())
    return {
        "precision": matched / n_detected if n_detected else float("nan"),
        "recall": matched / n_true if n_true else float("nan"),
        "n_true": n_true,
        "n_detected": n_detected,
        "n_matched": matched,
    }
