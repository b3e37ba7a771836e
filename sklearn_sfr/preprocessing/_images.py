"""Image transformers: central crop, band flattening and scaling."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from astropy.stats import mad_std
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..utils._multimodal import (
    check_array_ndim,
    get_key,
    is_multimodal,
    multimodal_tags,
    replace_keys,
)
from ..utils._sklearn import Interval, RealNotInt, StrOptions, fit_context
from ..utils._survey import BAND_NAMES

_IMAGE_SHAPE = "(n_samples, n_bands, height, width)"


class ImageTransformer(TransformerMixin, BaseEstimator):
    """Base of transformers that act on images, bare or under SliceDict keys.

    Subclasses implement ``_fit_images(images)`` and ``_transform_image(array, key)``; the base
    routes SliceDict keys (``keys``) and passes every other key through unchanged.
    """

    #: keys transformed when X is a SliceDict (errors transform with their image).
    keys = ("image", "image_error")

    def _images_of(self, X):
        if is_multimodal(X):
            return check_array_ndim(get_key(X, "image"), 4, "X['image']", shape_hint=_IMAGE_SHAPE)
        return check_array_ndim(X, 4, "X", shape_hint=_IMAGE_SHAPE)

    def _apply(self, X, func):
        if not is_multimodal(X):
            return func(self._images_of(X), "X")
        self._images_of(X)
        updates = {}
        for key in self.keys:
            if key in X:
                arr = check_array_ndim(X[key], 4, f"X[{key!r}]", shape_hint=_IMAGE_SHAPE)
                updates[key] = func(arr, f"X[{key!r}]")
        return replace_keys(X, **updates)

    def __sklearn_tags__(self):
        return multimodal_tags(super().__sklearn_tags__(), three_d_array=True)


class CentralCrop(ImageTransformer):
    """Crop image cutouts to ``size`` x ``size`` pixels around their centre.

    The object sits at the cutout centre (pixel ``S // 2`` of an ``S``-pixel cutout), so a
    crop keeps the object and drops the surroundings (and neighbours) further out. Works on a
    bare array or on a SliceDict, where it crops ``image`` and ``image_error`` and passes every
    other key through.

    Parameters
    ----------
    size : int or float, default=0.5
        Side of the crop. An int is a number of pixels, at most the input size; a float in
        (0, 1] is a fraction of the side of the images seen in ``fit`` (rounded, at least one
        pixel), as scikit-learn's ``train_size`` is a count or a fraction. The default keeps
        the central half of each side (64 -> 32 pixels at zoom 0), where the object's light
        is, and drops the outskirts where neighbours sit.

    Attributes
    ----------
    input_size_ : int
        Side of the images seen in ``fit``.
    size_ : int
        Side of the crop in pixels (``size`` resolved against ``input_size_``).

    See Also
    --------
    ObjectIsolator : Remove the neighbours instead of cropping them away.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import CentralCrop
    >>> images = np.zeros((2, 5, 64, 64), np.float32)
    >>> CentralCrop(24).fit_transform(images).shape
    (2, 5, 24, 24)
    >>> CentralCrop().fit_transform(images).shape  # the central half
    (2, 5, 32, 32)
    """

    _parameter_constraints: dict = {
        "size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ]
    }

    def __init__(self, size=0.5):
        self.size = size

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Resolve the crop size and check that the images are at least that wide.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, S, S) or SliceDict
            Images, or a SliceDict holding them under ``image``.
        y : None
            Ignored.

        Returns
        -------
        self : CentralCrop
            The fitted transformer.
        """
        images = self._images_of(X)
        h, w = images.shape[-2:]
        if isinstance(self.size, Integral):
            self.size_ = int(self.size)
        else:
            self.size_ = max(1, round(self.size * min(h, w)))
        self._check_size(images, "X['image']" if is_multimodal(X) else "X")
        self.input_size_ = images.shape[-1]
        return self

    def _check_size(self, images, name):
        h, w = images.shape[-2:]
        if self.size_ > min(h, w):
            pixels = "" if isinstance(self.size, Integral) else f" ({self.size_} pixels)"
            raise ValueError(
                f"CentralCrop(size={self.size}){pixels} is larger than the {h}x{w} images of "
                f"{name}"
            )

    def _crop(self, images, name):
        self._check_size(images, name)
        h, w = images.shape[-2:]
        top = h // 2 - self.size_ // 2
        left = w // 2 - self.size_ // 2
        return images[..., top : top + self.size_, left : left + self.size_]

    def transform(self, X):
        """Crop the images.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, S, S) or SliceDict
            Images, or a SliceDict holding them under ``image`` (and ``image_error``).

        Returns
        -------
        X_cropped : ndarray of shape (n_samples, n_bands, size, size) or SliceDict
            The cropped images; a SliceDict input comes back as a SliceDict whose other keys
            are unchanged.
        """
        check_is_fitted(self)
        return self._apply(X, self._crop)


class FlattenBands(ImageTransformer):
    """Flatten image cutouts into a 2-D table, one column per band and pixel.

    Column names read ``{band}_{row}_{col}`` (``r_12_30`` is the r band at row 12, column 30),
    so decision trees and linear models can use the pixels and their importances can be mapped
    back onto the images. A SliceDict input is read under ``image``.

    Parameters
    ----------
    band_names : tuple of str, default=("u", "g", "r", "i", "z")
        Names of the image channels, in order.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(bands, height, width)`` seen in ``fit``.
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import FlattenBands
    >>> images = np.arange(2 * 5 * 8 * 8, dtype=np.float32).reshape(2, 5, 8, 8)
    >>> flat = FlattenBands().fit(images)
    >>> table = flat.transform(images)
    >>> table.shape, flat.get_feature_names_out()[:2].tolist()
    ((2, 320), ['u_0_0', 'u_0_1'])
    >>> bool((flat.inverse_transform(table) == images).all())
    True
    """

    _parameter_constraints: dict = {"band_names": [tuple, list]}

    def __init__(self, band_names=BAND_NAMES):
        self.band_names = band_names

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the image shape.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, height, width) or SliceDict
            Images, or a SliceDict holding them under ``image``.
        y : None
            Ignored.

        Returns
        -------
        self : FlattenBands
            The fitted transformer.
        """
        images = self._images_of(X)
        if len(self.band_names) != images.shape[1]:
            raise ValueError(
                f"band_names has {len(self.band_names)} names but the images have "
                f"{images.shape[1]} bands (shape {images.shape})"
            )
        self.image_shape_ = tuple(images.shape[1:])
        self.n_features_out_ = int(np.prod(self.image_shape_))
        return self

    def transform(self, X):
        """Flatten the images into a table.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, height, width) or SliceDict
            Images of the shape seen in ``fit``, or a SliceDict holding them under ``image``.

        Returns
        -------
        X_flat : ndarray of shape (n_samples, n_bands * height * width)
            One row per image, columns in the order of :meth:`get_feature_names_out`.
        """
        check_is_fitted(self)
        images = self._images_of(X)
        if tuple(images.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"images have shape {images.shape[1:]}, but FlattenBands was fitted on "
                f"{self.image_shape_}"
            )
        return images.reshape(images.shape[0], -1)

    def inverse_transform(self, X):
        """Reshape a flattened table back to images.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_out)
            A table such as :meth:`transform` returns.

        Returns
        -------
        images : ndarray of shape (n_samples, n_bands, height, width)
            The images, in the shape seen in ``fit``.
        """
        check_is_fitted(self)
        X = check_array_ndim(X, 2, "X", shape_hint="(n_samples, n_features)")
        if X.shape[1] != self.n_features_out_:
            raise ValueError(f"X has {X.shape[1]} columns, expected {self.n_features_out_}")
        return X.reshape(X.shape[0], *self.image_shape_)

    def get_feature_names_out(self, input_features=None):
        """Get the names ``{band}_{row}_{col}`` of the output columns.

        Parameters
        ----------
        input_features : None
            Ignored (the input is images, whose pixels have no names).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of :meth:`transform`'s output.
        """
        check_is_fitted(self)
        _, h, w = self.image_shape_
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        names = [
            f"{b}_{r}_{c}" for b in self.band_names for r, c in zip(rows.ravel(), cols.ravel())
        ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class ImageScaler(ImageTransformer):
    """Per-band robust scaling of images, optionally with an asinh (Lupton) stretch.

    ``fit`` measures each band's sky level (median) and noise (:func:`astropy.stats.mad_std`,
    the median absolute deviation scaled to a Gaussian sigma) over all pixels of all images,
    ignoring NaN. ``transform`` then gives
    ``(x - sky) / noise`` (``stretch="linear"``) or ``asinh((x - sky) / (softening * noise))``
    (``stretch="asinh"``): linear near the noise, logarithmic for bright cores, so faint
    outskirts and bright centres share one dynamic range (Lupton et al. 1999). Both are
    monotonic in the flux. Errors (``image_error``) are divided by the same noise (linear) or
    propagated through the derivative of the stretch.

    Parameters
    ----------
    stretch : {"asinh", "linear"}, default="asinh"
    softening : float, default=3.0
        Softening of the asinh stretch in units of the band noise.

    Attributes
    ----------
    sky_ : ndarray of shape (n_bands,)
    noise_ : ndarray of shape (n_bands,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.preprocessing import ImageScaler
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(10.0, 2.0, size=(20, 5, 16, 16))
    >>> out = ImageScaler(stretch="linear").fit_transform(images)
    >>> bool(abs(np.median(out)) < 0.05), bool(abs(np.std(out) - 1) < 0.05)
    (True, True)
    """

    _parameter_constraints: dict = {
        "stretch": [StrOptions({"asinh", "linear"})],
        "softening": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, stretch="asinh", softening=3.0):
        self.stretch = stretch
        self.softening = softening

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Measure per-band sky and noise.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, height, width) or SliceDict
            Images, or a SliceDict holding them under ``image``; NaN pixels are ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageScaler
            The fitted transformer.
        """
        images = self._images_of(X).astype(np.float64)
        bands = np.moveaxis(images, 1, 0).reshape(images.shape[1], -1)
        self.sky_ = np.nanmedian(bands, axis=1)
        noise = mad_std(bands, axis=1, ignore_nan=True)
        # A band with no spread (constant images) must not divide by zero.
        self.noise_ = np.where(noise > 0, noise, 1.0)
        self.n_bands_ = images.shape[1]
        return self

    def _scale(self, images, name, *, errors=None):
        if images.shape[1] != self.n_bands_:
            raise ValueError(f"{name} has {images.shape[1]} bands, expected {self.n_bands_}")
        sky = self.sky_[None, :, None, None]
        noise = self.noise_[None, :, None, None]
        z = (images - sky) / noise
        if self.stretch == "linear":
            out = z if errors is None else errors / noise
        elif errors is None:
            out = np.arcsinh(z / self.softening)
        else:
            # d/dx asinh(z / s) = 1 / (noise * s * sqrt(1 + (z / s)^2))
            out = errors / (noise * self.softening * np.sqrt(1 + (z / self.softening) ** 2))
        return out.astype(np.float32)

    def transform(self, X):
        """Scale the images (and their errors under ``image_error``).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_bands, height, width) or SliceDict
            Images with the bands seen in ``fit``, or a SliceDict holding them under
            ``image`` (and their errors under ``image_error``).

        Returns
        -------
        X_scaled : ndarray of shape (n_samples, n_bands, height, width) or SliceDict
            The scaled images as float32; a SliceDict input comes back as a SliceDict whose
            other keys are unchanged.
        """
        check_is_fitted(self)
        if not is_multimodal(X):
            return self._scale(self._images_of(X), "X")
        images = self._images_of(X)
        updates = {"image": self._scale(images, "X['image']")}
        if "image_error" in X:
            errors = check_array_ndim(
                X["image_error"], 4, "X['image_error']", shape_hint=_IMAGE_SHAPE
            )
            updates["image_error"] = self._scale(images, "X['image']", errors=errors)
        return replace_keys(X, **updates)
