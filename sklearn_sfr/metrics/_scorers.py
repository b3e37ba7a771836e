"""Named scorers of the metrics, for ``cross_validate(scoring=...)`` and tuning.

scikit-learn's convention: a scorer is "greater is better", so a loss is scored negated and its
name starts with ``neg_`` (``neg_rmse`` is ``-rmse``). ``bias`` is signed and reported as is;
it says which way a model is off, and is not a quantity to maximise.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer, mean_absolute_error, r2_score

from ..datasets._selection import flag_mask
from ..utils._multimodal import get_key, is_multimodal
from ..utils._sklearn import validate_params
from ._regression import bias, check_threshold, nmad, outlier_fraction, rmse

__all__ = ["SCORING", "flag_scorer", "get_scorer", "get_scorers"]


def get_scorers(*, threshold=0.3):
    """A fresh dict of every named scorer, for ``cross_validate(scoring=...)``.

    Parameters
    ----------
    threshold : float, default=0.3
        Outlier threshold of the ``neg_outlier_fraction`` scorer, in the units of ``y``.

    Returns
    -------
    scorers : dict of str to callable
        ``neg_rmse``, ``neg_mae``, ``r2``, ``bias``, ``neg_nmad`` and
        ``neg_outlier_fraction``; each ``scorer(estimator, X, y)`` returns a float, losses
        negated.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from sklearn_sfr.metrics import get_scorers
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3))
    >>> y = X[:, 0] + rng.normal(0, 0.1, size=60)
    >>> scores = cross_validate(DecisionTreeRegressor(max_depth=3, random_state=0), X, y,
    ...                         cv=3, scoring=get_scorers(threshold=0.5))
    >>> sorted(k for k in scores if k.startswith("test_"))
    ['test_bias', 'test_neg_mae', 'test_neg_nmad', 'test_neg_outlier_fraction', 'test_neg_rmse', 'test_r2']
    >>> bool((scores["test_neg_rmse"] < 0).all())
    True
    """  # noqa: E501
    threshold = check_threshold(threshold)
    return {
        "neg_rmse": make_scorer(rmse, greater_is_better=False),
        "neg_mae": make_scorer(mean_absolute_error, greater_is_better=False),
        "r2": make_scorer(r2_score),
        "bias": make_scorer(bias),
        "neg_nmad": make_scorer(nmad, greater_is_better=False),
        "neg_outlier_fraction": make_scorer(
            outlier_fraction, greater_is_better=False, threshold=threshold
        ),
    }


#: Every named scorer with the default outlier threshold (0.3 dex):
#: ``cross_validate(estimator, X, y, scoring=SCORING)``. Copy it before changing it.
SCORING = get_scorers()


def get_scorer(name, *, threshold=0.3):
    """One scorer by name: one of :data:`SCORING`, else scikit-learn's of that name.

    Parameters
    ----------
    name : str or callable
        ``"neg_rmse"``, ``"neg_mae"``, ``"r2"``, ``"bias"``, ``"neg_nmad"``,
        ``"neg_outlier_fraction"``, or any name :func:`sklearn.metrics.get_scorer` knows; a
        callable is returned unchanged.
    threshold : float, default=0.3
        Outlier threshold of ``neg_outlier_fraction``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``.

    Raises
    ------
    ValueError
        If ``name`` is neither ours nor scikit-learn's.

    Examples
    --------
    >>> from sklearn_sfr.metrics import get_scorer
    >>> get_scorer("neg_nmad")
    make_scorer(nmad, greater_is_better=False, response_method='predict')
    """
    if callable(name):
        return name
    ours = get_scorers(threshold=threshold)
    if name in ours:
        return ours[name]
    try:
        return _sklearn_get_scorer(name)
    except ValueError as exc:
        raise ValueError(
            f"unknown scorer {name!r}: use one of {sorted(ours)} or a scikit-learn scorer name "
            "(sklearn.metrics.get_scorer_names())"
        ) from exc


class _FlagScorer:
    """Picklable scorer that only scores rows whose flag is kept."""

    def __init__(self, scoring, keep, key):
        self.scoring = scoring
        self.keep = keep
        self.key = key

    def __call__(self, estimator, X, y, **kwargs):
        if not is_multimodal(X):
            raise TypeError(f"flag_scorer needs a SliceDict with a {self.key!r} key")
        mask = flag_mask(get_key(X, self.key), self.keep)
        y = np.asarray(y)
        mask &= np.isfinite(y)
        if not mask.any():
            return np.nan
        return get_scorer(self.scoring)(estimator, X[mask], y[mask], **kwargs)

    def __repr__(self):
        return f"flag_scorer({self.scoring!r}, keep={self.keep!r}, key={self.key!r})"


@validate_params(
    {
        "scoring": [str, callable],
        "keep": [tuple, list, None],
        "key": [str],
    },
    prefer_skip_nested_validation=True,
)
def flag_scorer(scoring, keep=(0,), key="flag"):
    """A scorer that evaluates only the rows whose flag is in ``keep``.

    Use it in ``cross_validate(scoring=...)`` so that a model trained on every object, or on
    FLAG=0 objects only, is always judged on reliable labels.

    Parameters
    ----------
    scoring : str or callable
        A scikit-learn scorer name (``"neg_root_mean_squared_error"``, ``"r2"``...) or scorer.
    keep : tuple of int or None, default=(0,)
        Flags to score.
    key : str, default="flag"
        SliceDict key holding the flags.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``; NaN when no test row is kept.

    Examples
    --------
    >>> from sklearn_sfr.metrics import flag_scorer
    >>> scoring = {"rmse": flag_scorer("neg_root_mean_squared_error"), "r2": flag_scorer("r2")}
    """
    return _FlagScorer(scoring, None if keep is None else tuple(keep), key)
