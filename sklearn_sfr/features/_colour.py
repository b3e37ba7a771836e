"""Colour histograms and a coarse thumbnail of each image: tabular features for trees."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..preprocessing._images import ImageTransformer
from ..utils._sklearn import Interval, fit_context
from ..utils._survey import BAND_NAMES


def _default_channel_names(n_channels):
    if n_channels == 3:
        return ("red", "green", "blue")
    if n_channels == len(BAND_NAMES):
        return BAND_NAMES
    return tuple(f"c{k}" for k in range(n_channels))


class ColourFeatures(ImageTransformer):
    """Per-channel colour histograms plus a ``grid`` x ``grid`` thumbnail of each image.

    What a decision tree can use from a photograph: how much of each colour it holds (a
    histogram per channel, the fraction of pixels in each of ``bins`` equal-width bins between
    the channel's 0.5th and 99.5th percentile over the training images) and where (the mean of
    each channel in each cell of a ``grid`` x ``grid`` partition: a sky above, a floor below).
    NaN pixels are ignored. A SliceDict input is read under ``image``.

    Parameters
    ----------
    bins : int, default=8
        Histogram bins per channel (0 for no histograms).
    grid : int, default=4
        Cells per side of the thumbnail (0 for none); at most the image size.
    channel_names : sequence of str, default=None
        Names of the channels in the feature names; None: red/green/blue for 3 channels,
        u/g/r/i/z for 5, else c0, c1, ...

    Attributes
    ----------
    value_range_ : ndarray of shape (n_channels, 2)
        Histogram range of each channel, learnt in ``fit``.
    image_shape_ : tuple of int
        ``(channels, height, width)`` seen in ``fit``.
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.features import ColourFeatures
    >>> images = np.random.default_rng(0).random((4, 3, 16, 16), dtype=np.float32)
    >>> features = ColourFeatures(bins=4, grid=2).fit(images)
    >>> features.transform(images).shape
    (4, 24)
    >>> features.get_feature_names_out()[[0, 12]].tolist()
    ['red_hist0', 'red_mean_0_0']
    """

    _parameter_constraints: dict = {
        "bins": [Interval(Integral, 0, None, closed="left")],
        "grid": [Interval(Integral, 0, None, closed="left")],
        "channel_names": [tuple, list, None],
    }

    def __init__(self, bins=8, grid=4, channel_names=None):
        self.bins = bins
        self.grid = grid
        self.channel_names = channel_names

    def _names(self, n_channels):
        names = self.channel_names or _default_channel_names(n_channels)
        if len(names) != n_channels:
            raise ValueError(
                f"channel_names has {len(names)} names but the images have {n_channels} channels"
            )
        return tuple(names)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn each channel's histogram range.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, height, width) or SliceDict
            Images, or a SliceDict holding them under ``image``.
        y : None
            Ignored.

        Returns
        -------
        self : ColourFeatures
            The fitted transformer.
        """
        images = self._images_of(X)
        if self.bins == 0 and self.grid == 0:
            raise ValueError("bins and grid cannot both be 0: there would be no features")
        if self.grid > min(images.shape[2:]):
            raise ValueError(
                f"grid={self.grid} is larger than the {images.shape[2]}x{images.shape[3]} images"
            )
        self._names(images.shape[1])
        per_channel = np.moveaxis(images, 1, 0).reshape(images.shape[1], -1)
        low, high = np.nanpercentile(per_channel, [0.5, 99.5], axis=1)
        high = np.where(high > low, high, low + 1.0)  # a constant channel still gets bins
        self.value_range_ = np.stack([low, high], axis=1)
        self.image_shape_ = tuple(images.shape[1:])
        c = images.shape[1]
        self.n_features_out_ = c * self.bins + c * self.grid**2
        return self

    def _histograms(self, images):
        n, c = images.shape[:2]
        low, high = self.value_range_[:, 0], self.value_range_[:, 1]
        scaled = (images - low[None, :, None, None]) / (high - low)[None, :, None, None]
        index = np.clip(np.floor(scaled * self.bins), 0, self.bins - 1).reshape(n, c, -1)
        valid = np.isfinite(index)
        counts = np.zeros((n, c, self.bins))
        for k in range(self.bins):
            counts[:, :, k] = ((index == k) & valid).sum(axis=2)
        return counts / np.maximum(valid.sum(axis=2, keepdims=True), 1)

    def _thumbnail(self, images):
        n, c, h, w = images.shape
        rows = np.array_split(np.arange(h), self.grid)
        cols = np.array_split(np.arange(w), self.grid)
        out = np.empty((n, c, self.grid, self.grid))
        for i, r in enumerate(rows):
            for j, q in enumerate(cols):
                cell = images[:, :, r[0] : r[-1] + 1, q[0] : q[-1] + 1].reshape(n, c, -1)
                # An all-NaN cell is rare (masked corners); 0 keeps the table finite.
                with np.errstate(invalid="ignore"):
                    counts = np.isfinite(cell).sum(axis=2)
                    out[:, :, i, j] = np.where(counts, np.nansum(cell, axis=2) / counts, 0.0)
        return out

    def transform(self, X):
        """Summarise each image as colour histograms and a coarse thumbnail.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_channels, height, width) or SliceDict
            Images of the shape seen in ``fit``, or a SliceDict holding them under ``image``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            The histograms, then the thumbnail cells, channel by channel (float32).
        """
        check_is_fitted(self)
        images = self._images_of(X)
        if tuple(images.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"images have shape {images.shape[1:]}, but ColourFeatures was fitted on "
                f"{self.image_shape_}"
            )
        parts = []
        if self.bins:
            parts.append(self._histograms(images).reshape(len(images), -1))
        if self.grid:
            parts.append(self._thumbnail(images).reshape(len(images), -1))
        return np.hstack(parts).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        """Get the names ``{channel}_hist{k}``, then ``{channel}_mean_{row}_{col}``.

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
        names = self._names(self.image_shape_[0])
        out = [f"{ch}_hist{k}" for ch in names for k in range(self.bins)]
        out += [
            f"{ch}_mean_{i}_{j}"
            for ch in names
            for i in range(self.grid)
            for j in range(self.grid)
        ]
        return np.asarray(out, dtype=object)
