"""The MPA-JHU FLAG filter: train on reliable labels only.

The FLAG rule itself is :func:`~sklearn_sfr.datasets.flag_mask`; scoring on reliable labels is
:func:`~sklearn_sfr.metrics.flag_scorer`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ..datasets._selection import flag_mask
from ..utils._multimodal import get_key, is_multimodal


class FlagFilter(BaseEstimator):
    """Keep the objects whose MPA-JHU FLAG is trusted (FLAG=0 by default).

    A sampler in the sense of imbalanced-learn: ``fit_resample`` returns the kept rows. Inside
    an :class:`imblearn.pipeline.Pipeline` it drops flagged rows from *training* only; at
    prediction and scoring time every row passes, so score with
    :func:`~sklearn_sfr.metrics.flag_scorer` to evaluate on reliable labels only. The flags
    travel in ``X["flag"]`` (a SliceDict key that
    :func:`~sklearn_sfr.datasets.load_hisscube` fills), so cross-validation slices them with
    the rows.

    Parameters
    ----------
    keep : tuple of int or None, default=(0,)
        Flag values to keep; None keeps every flag (to train on all labelled objects).
    key : str, default="flag"
        SliceDict key holding the flags.
    drop_missing_target : bool, default=True
        Also drop rows whose target is NaN (objects without an SFR estimate), which no model
        can be trained on.

    Attributes
    ----------
    n_kept_ : int
        Rows kept by the last ``fit_resample``.

    See Also
    --------
    sklearn_sfr.metrics.flag_scorer : Score only the rows with trusted flags.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr.preprocessing import FlagFilter
    >>> X = SliceDict(spectrum=np.ones((4, 3)), flag=np.array([0.0, 2.0, 0.0, 1.0]))
    >>> y = np.array([0.1, 0.2, np.nan, 0.4])
    >>> Xk, yk = FlagFilter().fit_resample(X, y)
    >>> len(Xk), yk
    (1, array([0.1]))
    """

    _parameter_constraints: dict = {
        "keep": [tuple, list, None],
        "key": [str],
        "drop_missing_target": ["boolean"],
    }

    def __init__(self, keep=(0,), key="flag", drop_missing_target=True):
        self.keep = keep
        self.key = key
        self.drop_missing_target = drop_missing_target

    def _mask(self, X, y):
        if not is_multimodal(X):
            raise TypeError(
                "FlagFilter needs a SliceDict with a "
                f"{self.key!r} key (load_hisscube fills it), got {type(X).__name__}"
            )
        flags = get_key(X, self.key)
        if flags.ndim != 1:
            raise ValueError(f"X[{self.key!r}] must be 1-D, got shape {flags.shape}")
        mask = flag_mask(flags, self.keep)
        if self.drop_missing_target and y is not None:
            y = np.asarray(y)
            if y.shape[0] != flags.shape[0]:
                raise ValueError(f"y has {y.shape[0]} rows but X has {flags.shape[0]}")
            finite = np.isfinite(y) if y.ndim == 1 else np.isfinite(y).all(axis=1)
            mask &= finite
        return mask

    def fit(self, X, y=None):
        """Validate the parameters and the flags; nothing is learned.

        Parameters
        ----------
        X : SliceDict
            Samples, with flags in ``X[key]``.
        y : array-like of shape (n_samples,), default=None
            Target; checked against ``X`` when given.

        Returns
        -------
        self : FlagFilter
            The estimator itself.
        """
        self._validate_params()
        self._mask(X, y)
        return self

    def fit_resample(self, X, y):
        """Return the rows of ``X`` and ``y`` whose flag is kept.

        Parameters
        ----------
        X : SliceDict
            Samples, with flags in ``X[key]``.
        y : array-like of shape (n_samples,)
            Target (continuous targets are fine).

        Returns
        -------
        X_kept : SliceDict
            The rows of ``X`` whose flag is kept (and, with ``drop_missing_target``, whose
            target is finite).
        y_kept : ndarray
            The matching rows of ``y``.
        """
        self._validate_params()
        mask = self._mask(X, y)
        self.n_kept_ = int(mask.sum())
        if self.n_kept_ == 0:
            raise ValueError(
                f"FlagFilter(keep={self.keep!r}) keeps no row of {mask.size}: no training data"
            )
        return X[mask], np.asarray(y)[mask]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.dict = True
        tags.target_tags.required = True
        return tags
