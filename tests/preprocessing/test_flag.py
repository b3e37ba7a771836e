"""FlagFilter: the study sample, training-only filtering in pipelines, honest scoring."""

import numpy as np
import pytest
from imblearn.pipeline import make_pipeline
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold, cross_validate
from skorch.helper import SliceDict

from sklearn_sfr.preprocessing import FlagFilter, ModalitySelector, flag_scorer


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    flags = rng.choice([0.0, 1.0, 2.0], size=n, p=[0.6, 0.2, 0.2])
    y = rng.normal(size=n)
    y[flags == 1] = np.nan  # FLAG 1: no estimate
    X = SliceDict(
        spectrum=rng.normal(size=(n, 7)).astype(np.float32),
        flag=flags,
        row=np.arange(n),  # lets the spy below see which rows it met
    )
    return X, y


class _RowSpy(RegressorMixin, BaseEstimator):
    """Records the rows it is fitted and asked to predict on; predicts 0."""

    def fit(self, X, y):
        self.fit_rows_ = np.asarray(X["row"]).copy()
        self.fit_y_ = np.asarray(y).copy()
        return self

    def predict(self, X):
        _PREDICTED.append(np.asarray(X["row"]).copy())
        return np.zeros(len(X))


_PREDICTED = []


def test_fit_resample_keeps_flag0_and_labelled_rows():
    X, y = _data()
    Xk, yk = FlagFilter().fit_resample(X, y)
    assert (Xk["flag"] == 0).all() and np.isfinite(yk).all()
    assert len(Xk) == int((X["flag"] == 0).sum())
    X_all, y_all = FlagFilter(keep=None).fit_resample(X, y)
    assert np.isfinite(y_all).all()
    assert len(X_all) == int(np.isfinite(y).sum())  # unlabelled rows can never be trained on


def test_pipeline_filters_training_only_and_scorer_scores_flag0_only():
    X, y = _data(n=90)
    for keep in [(0,), None]:
        _PREDICTED.clear()
        model = make_pipeline(FlagFilter(keep=keep), _RowSpy())
        res = cross_validate(
            model,
            X,
            y,
            cv=KFold(3, shuffle=True, random_state=0),
            scoring={"rmse": flag_scorer("neg_root_mean_squared_error")},
            return_estimator=True,
        )
        for est in res["estimator"]:
            fitted = est[-1].fit_rows_
            assert np.isfinite(y[fitted]).all()
            if keep == (0,):
                assert (X["flag"][fitted] == 0).all()
            else:
                assert (X["flag"][fitted] != 0).any()
        scored = np.concatenate(_PREDICTED)
        # Not one flagged row was ever scored, whatever the training sample was.
        assert scored.size > 0 and (X["flag"][scored] == 0).all()
        assert np.isfinite(res["test_rmse"]).all()


def test_standalone_errors():
    X, y = _data()
    with pytest.raises(TypeError, match="SliceDict"):
        FlagFilter().fit_resample(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(TypeError, match="plain dict"):
        FlagFilter().fit_resample(dict(X), y)
    with pytest.raises(KeyError, match="no key 'flags'"):
        FlagFilter(key="flags").fit_resample(X, y)
    with pytest.raises(ValueError, match="keeps no row"):
        FlagFilter(keep=(7,)).fit_resample(X, y)
    with pytest.raises(ValueError, match="rows but X has"):
        FlagFilter().fit_resample(X, y[:5])


def test_flagfilter_clone_and_params():
    f = FlagFilter(keep=(0, 2))
    assert clone(f).get_params() == {"keep": (0, 2), "key": "flag", "drop_missing_target": True}


def test_selector_after_filter_in_pipeline(synthetic_cube):
    from sklearn.tree import DecisionTreeRegressor

    from sklearn_sfr.datasets import load_hisscube

    data = load_hisscube(synthetic_cube, image_zoom=3, spectrum_zoom=3, flag=None)
    assert {"image", "spectrum", "flag", "redshift"} <= set(data.X)
    model = make_pipeline(
        FlagFilter(), ModalitySelector("spectrum"), DecisionTreeRegressor(random_state=0)
    )
    res = cross_validate(model, data.X, data.y, cv=3, scoring=flag_scorer("r2"))
    assert np.isfinite(res["test_score"]).all()
