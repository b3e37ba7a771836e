"""A TPE sampler whose random draws are seeded by the trial number (imports optuna: load it
lazily)."""

from __future__ import annotations

import numpy as np
import optuna


class TrialSeededTPESampler(optuna.samplers.TPESampler):
    """:class:`optuna.samplers.TPESampler` that reseeds its random draws from ``seed`` and
    the number of each trial.

    Trial numbers are unique within a study, also across processes and hosts sharing it
    through a database, so workers started with one seed (as they must be, to share the
    folds) draw different start-up trials instead of the same ones; one worker rerun with the
    seed draws what it drew before; a continued study draws new parameters.

    Parameters
    ----------
    seed : int
    **kwargs
        Passed to :class:`~optuna.samplers.TPESampler`.

    Examples
    --------
    >>> import optuna
    >>> from sklearn_sfr.model_selection._sampler import TrialSeededTPESampler
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> def draws(study):
    ...     study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    ...     return [round(t.params["x"], 6) for t in study.trials]
    >>> a = draws(optuna.create_study(sampler=TrialSeededTPESampler(0)))
    >>> a == draws(optuna.create_study(sampler=TrialSeededTPESampler(0))), len(set(a))
    (True, 3)
    """

    def __init__(self, seed, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self._base_seed = int(seed)

    def before_trial(self, study, trial):
        # Optuna keeps the generators in LazyRandomState objects (TPE's own and its start-up
        # RandomSampler's); reseeding them is the only per-trial hook it offers.
        state = np.random.SeedSequence([self._base_seed, trial.number]).generate_state(2)
        for sampler, value in ((self, state[0]), (self._random_sampler, state[1])):
            rng = getattr(getattr(sampler, "_rng", None), "rng", None)
            if rng is not None:
                rng.seed(int(value))
        super().before_trial(study, trial)
