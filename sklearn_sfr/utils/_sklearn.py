"""The library's one door to scikit-learn internals.

scikit-learn has no public home for its parameter-validation vocabulary (``Interval``,
``StrOptions``, ...), which every estimator of the library uses in ``_parameter_constraints``
as scikit-learn's own estimators do. imbalanced-learn imports the same names from
``sklearn.utils._param_validation``; ``sklearn-compat`` (the compatibility layer that
imbalanced-learn and skrub maintain) covers the few that changed between releases
(``validate_params``, ``_fit_context``). Every other module imports them from here, so a
scikit-learn release that moves one is fixed in this file alone; the contract test
(``tests/test_common.py``) checks that no other module reaches into scikit-learn's private
modules.
"""

from __future__ import annotations

from sklearn.utils._param_validation import (  # no public equivalent (see above)
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    make_constraint,
)
from sklearn_compat.base import _fit_context as fit_context
from sklearn_compat.utils._param_validation import validate_params

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "RealNotInt",
    "StrOptions",
    "fit_context",
    "make_constraint",
    "validate_params",
]
