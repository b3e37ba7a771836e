"""SkorchPruningCallback: reports per epoch, prunes a clearly bad trial, one net per trial."""

import numpy as np
import optuna
import pytest
from sklearn.base import clone
from skorch.history import History

from sklearn_sfr.experiments import make_model
from sklearn_sfr.neural import ImageRegressor, SkorchPruningCallback


class FakeTrial:
    """Records reports; prunes when the last reported value is below ``threshold``."""

    number = 7

    def __init__(self, threshold=-1.0):
        self.threshold = threshold
        self.reports = []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return bool(self.reports) and self.reports[-1][1] < self.threshold


class FakeNet:
    def __init__(self):
        self.history = History()

    def epoch(self, **values):
        self.history.new_epoch()
        for key, value in values.items():
            self.history.record(key, value)


def train(callback, losses):
    net = FakeNet()
    callback.on_train_begin(net)
    for loss in losses:
        net.epoch(train_loss=loss, valid_loss=loss)
        callback.on_epoch_end(net)
    return net


def test_reports_negated_losses_and_prunes_a_bad_trial():
    trial = FakeTrial(threshold=-1.0)
    train(SkorchPruningCallback(trial), [0.5, 0.4])
    assert trial.reports == [(0, -0.5), (1, -0.4)]

    bad = FakeTrial(threshold=-1.0)
    with pytest.raises(optuna.TrialPruned, match="trial 7 pruned at epoch 1: valid_loss = 5"):
        train(SkorchPruningCallback(bad), [0.9, 5.0, 0.1])
    assert bad.reports == [(0, -0.9), (1, -5.0)]  # stopped at the bad epoch


def test_diverged_loss_is_reported_as_the_worst():
    trial = FakeTrial(threshold=-1e300)
    with pytest.raises(optuna.TrialPruned):
        train(SkorchPruningCallback(trial), [np.nan])
    assert trial.reports == [(0, -np.inf)]


def test_only_the_first_net_of_a_trial_reports():
    trial = FakeTrial()
    callback = SkorchPruningCallback(trial)
    twin = clone(callback)  # what cross_validate's clone of the estimator makes
    assert twin.trial is trial
    train(callback, [0.3, 0.2])  # the first fold
    train(twin, [0.1])  # a later fold: silent
    train(callback, [0.1])  # a second net of the same fit (contrastive head): silent
    assert trial.reports == [(0, -0.3), (1, -0.2)]


def test_missing_monitor_reports_nothing():
    trial = FakeTrial()
    callback = SkorchPruningCallback(trial, monitor="valid_loss")
    net = FakeNet()
    callback.on_train_begin(net)
    net.epoch(train_loss=1.0)  # validation_fraction=0: no valid_loss
    callback.on_epoch_end(net)
    assert trial.reports == []


def test_median_pruner_stops_a_clearly_bad_trial():
    """With a real study: two good trials, then one whose loss is 100 times worse."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    for _ in range(2):
        trial = study.ask()
        train(SkorchPruningCallback(trial), [0.5, 0.3, 0.2])
        study.tell(trial, -0.2)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        train(SkorchPruningCallback(trial), [50.0, 40.0, 30.0])
    # Pruned once past the warm-up step, not before.
    assert sorted(study.trials[-1].intermediate_values) == [0, 1]


def test_callback_in_net_kwargs_keeps_early_stopping():
    """net_kwargs callbacks are added to the estimator's own, not put in their place."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 5, 8, 8)).astype("float32")
    y = images[:, 2].mean(axis=(1, 2))
    trial = FakeTrial(threshold=-np.inf)
    model = ImageRegressor(
        max_epochs=2,
        width=4,
        embed_dim=8,
        device="cpu",
        random_state=0,
        net_kwargs={"callbacks": [("pruning", SkorchPruningCallback(trial))]},
    ).fit(images, y)
    names = [name for name, _ in model.net_.callbacks_]
    assert "early_stopping" in names and "pruning" in names
    assert [step for step, _ in trial.reports] == [0, 1]
    # The registry's pipelines clone cleanly with the callback inside.
    pipe = make_model("image", net_kwargs={"callbacks": [("p", SkorchPruningCallback(trial))]})
    cloned = clone(pipe).named_steps["model"].net_kwargs["callbacks"][0][1]
    assert cloned.trial is trial
