"""Helpers for multi-modal inputs: a ``SliceDict`` of arrays or one bare array.

Kept free of torch: skorch (and so torch) is only imported when a new ``SliceDict`` has to be
built, which only happens when the caller already passed one in.
"""

from __future__ import annotations

import numpy as np

#: Keys of per-object metadata that ride along in X so that cross-validation slices them with
#: the rows; models never read them as inputs.
METADATA_KEYS = ("flag", "redshift")


def is_multimodal(X, name="X"):
    """Whether ``X`` is a ``SliceDict``; a plain dict is refused with an explanation."""
    from scipy.sparse import issparse

    if issparse(X):  # a dok_matrix is a dict too; validation refuses sparse input later
        return False
    if isinstance(X, dict):
        if type(X) is dict:
            raise TypeError(
                f"{name} is a plain dict; wrap it in skorch.helper.SliceDict(**{name}) so that "
                "cross-validation and pipelines can slice its rows"
            )
        return True
    return False


def get_key(X, key, name="X"):
    """``X[key]`` as an ndarray, with an error that lists the available keys."""
    if key not in X:
        raise KeyError(f"{name} has no key {key!r}; available keys: {sorted(X.keys())}")
    return np.asarray(X[key])


def replace_keys(X, **arrays):
    """A new SliceDict with ``arrays`` replacing (or adding) keys of ``X``."""
    out = dict(X)
    out.update(arrays)
    return type(X)(**out)


def check_array_ndim(x, ndim, name, *, shape_hint, allow_nan=True, dtype=np.float32):
    """Numeric array of ``ndim`` dimensions, cast to ``dtype``, with a clear error."""
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array {shape_hint}, got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_hint}, got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); at least one sample is required")
    x = x.astype(dtype, copy=False)
    if not allow_nan and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity, which is not allowed here")
    if allow_nan and np.isinf(x).any():
        raise ValueError(f"{name} contains infinity; mark missing pixels with NaN instead")
    return x


def multimodal_tags(tags, *, two_d_array=False, three_d_array=False, requires_fit=True):
    """Set the input tags shared by our SliceDict-aware estimators and return ``tags``.

    They accept a SliceDict (``dict``) whose arrays may hold NaN for masked pixels; which bare
    arrays they also take differs (a spectrum is 2-D, an image cube is 4-D, which scikit-learn
    tags as ``three_d_array``).
    """
    tags.input_tags.dict = True
    tags.input_tags.allow_nan = True
    tags.input_tags.two_d_array = two_d_array
    tags.input_tags.three_d_array = three_d_array
    tags.requires_fit = requires_fit
    return tags
