"""A skorch callback that lets Optuna prune a neural trial while it trains."""

from __future__ import annotations

import numpy as np
from skorch.callbacks import Callback


class SkorchPruningCallback(Callback):
    """Report a validation loss to an Optuna trial after every epoch; prune bad trials.

    After each epoch the callback reports the last value of ``monitor`` in the net's history to
    ``trial`` (step = epoch index, from 0) and raises :class:`optuna.TrialPruned` when
    ``trial.should_prune()`` says so. Pass it through a neural estimator's ``net_kwargs``
    (``net_kwargs={"callbacks": [("pruning", SkorchPruningCallback(trial))]}``), whose callbacks
    come on top of early stopping; :class:`~sklearn_sfr.model_selection.OptunaSearchCV` does
    that for every neural step of the tuned pipeline.

    Cross-validation trains one net per fold (and :class:`ContrastiveRegressor` two per fit,
    pretraining first), but an Optuna trial has a single series of intermediate values. So
    only the **first net trained** with this callback, or with one of its clones, reports:
    in cross-validation that is the first fold (the pretraining of the first fold for the
    contrastive model). A trial is pruned when its first fold learns visibly worse than the
    first folds of earlier trials; later folds run unmonitored.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial to report to.
    monitor : str, default="valid_loss"
        Key of the net's history to report (the estimators' early-stopping loss, measured on
        their ``validation_fraction`` hold-out; with ``validation_fraction=0`` nothing is
        reported and nothing is pruned).
    negate : bool, default=True
        Report ``-value``. Losses are lower-is-better, while the studies of
        :class:`~sklearn_sfr.model_selection.OptunaSearchCV` maximise a score, and Optuna's
        pruners read intermediate values in the study's direction. Set False for a study
        that minimises.

    Attributes
    ----------
    reporting_ : bool
        Whether the net being trained is the one that reports (set at the start of training).

    Examples
    --------
    >>> import numpy as np, optuna
    >>> from sklearn_sfr.neural import ImageRegressor, SkorchPruningCallback
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(64, 5, 8, 8)).astype("float32")
    >>> y = images[:, 2].mean(axis=(1, 2))
    >>> study = optuna.create_study(direction="maximize")
    >>> trial = study.ask()
    >>> callback = SkorchPruningCallback(trial)
    >>> model = ImageRegressor(max_epochs=3, width=4, embed_dim=8, random_state=0,
    ...                        net_kwargs={"callbacks": [("pruning", callback)]}).fit(images, y)
    >>> sorted(trial.storage.get_trial(trial._trial_id).intermediate_values)
    [0, 1, 2]
    """

    def __init__(self, trial, monitor="valid_loss", negate=True):
        self.trial = trial
        self.monitor = monitor
        self.negate = negate
        # Shared with every clone, so that exactly one net in a trial reports.
        self._claimed = [False]

    def __sklearn_clone__(self):
        # scikit-learn's clone would deep-copy the trial, and with it the study's storage
        # (database connections); clones must report to the very same trial instead.
        twin = type(self)(self.trial, monitor=self.monitor, negate=self.negate)
        twin._claimed = self._claimed
        return twin

    def __deepcopy__(self, memo):
        return self.__sklearn_clone__()

    def on_train_begin(self, net, **kwargs):
        """Claim the trial's series of intermediate values, unless another net has.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net that starts training.
        **kwargs
            Other arguments of skorch's callback hook, ignored.
        """
        self.reporting_ = not self._claimed[0]
        self._claimed[0] = True

    def on_epoch_end(self, net, **kwargs):
        """Report the epoch's ``monitor`` value to the trial; prune the trial if it says so.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net that finished an epoch.
        **kwargs
            Other arguments of skorch's callback hook, ignored.

        Raises
        ------
        optuna.TrialPruned
            When the trial's pruner stops it.
        """
        if not getattr(self, "reporting_", False):
            return
        last = net.history[-1]
        if self.monitor not in last:
            return
        value = float(last[self.monitor])
        if not np.isfinite(value):
            # A diverged net: report the worst possible value so that the pruner stops it.
            value = np.inf
        step = len(net.history) - 1
        self.trial.report(-value if self.negate else value, step)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(
                f"trial {self.trial.number} pruned at epoch {step}: "
                f"{self.monitor} = {last[self.monitor]:.4g}"
            )
