"""Pick modalities out of a SliceDict."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from ..utils._multimodal import get_key, is_multimodal, multimodal_tags
from ..utils._sklearn import fit_context


class ModalitySelector(TransformerMixin, BaseEstimator):
    """Select one modality (or several) of a SliceDict.

    With one key the output is that key's bare array, so single-modality pipelines read
    ``make_pipeline(ModalitySelector("spectrum"), SpectrumRebin(4), DecisionTreeRegressor())``.
    With a list of keys the output is a SliceDict of those keys (for transformers that need a
    modality plus metadata, e.g. ``["spectrum", "redshift"]``).

    Parameters
    ----------
    key : str, list of str or None, default=None
        Key(s) to keep. None keeps every key: ``ModalitySelector()`` returns a SliceDict of
        all the keys of X, as a list of every key would, and selects nothing away.

    Attributes
    ----------
    keys_in_ : list of str
        Keys of the SliceDict seen in ``fit``.

    See Also
    --------
    FlagFilter : Select rows (objects) rather than keys.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr.preprocessing import ModalitySelector
    >>> X = SliceDict(image=np.zeros((3, 5, 8, 8)), spectrum=np.ones((3, 577)))
    >>> ModalitySelector("spectrum").fit_transform(X).shape
    (3, 577)
    >>> sorted(ModalitySelector().fit_transform(X))
    ['image', 'spectrum']
    """

    _parameter_constraints: dict = {"key": [str, list, tuple, None]}

    def __init__(self, key=None):
        self.key = key

    def _check(self, X):
        if not is_multimodal(X):
            raise TypeError(
                f"ModalitySelector({self.key!r}) needs a SliceDict, got {type(X).__name__}"
            )
        if self.key is None:
            return list(X.keys())
        keys = [self.key] if isinstance(self.key, str) else list(self.key)
        for k in keys:
            get_key(X, k)
        return keys

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check that the key(s) exist.

        Parameters
        ----------
        X : SliceDict
            Samples, with the selected key(s).
        y : None
            Ignored.

        Returns
        -------
        self : ModalitySelector
            The fitted transformer.
        """
        self._check(X)
        self.keys_in_ = sorted(X.keys())
        return self

    def transform(self, X):
        """Select the key(s).

        Parameters
        ----------
        X : SliceDict
            Samples, with the selected key(s).

        Returns
        -------
        X_selected : ndarray or SliceDict
            The array under ``key`` when it is one str, else a SliceDict of the selected
            keys.
        """
        keys = self._check(X)
        if isinstance(self.key, str):
            return X[self.key]
        return type(X)(**{k: X[k] for k in keys})

    def __sklearn_tags__(self):
        return multimodal_tags(super().__sklearn_tags__(), requires_fit=False)
