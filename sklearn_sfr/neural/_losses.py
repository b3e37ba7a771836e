"""Per-sample losses (reduction happens in the net, where sample weights apply)."""

from __future__ import annotations

import torch
from torch import nn

LOSSES = ("mse", "huber", "gaussian_nll")

#: log-variance clamp of the Gaussian head: keeps exp() finite early in training.
_LOG_VAR_RANGE = (-12.0, 8.0)


class MSELoss(nn.MSELoss):
    """Squared error per element."""

    def __init__(self):
        super().__init__(reduction="none")


class HuberLoss(nn.HuberLoss):
    """Huber loss per element (delta 1 on the standardised target: robust to label outliers)."""

    def __init__(self):
        super().__init__(reduction="none")


class GaussianNLLLoss(nn.Module):
    """Negative log-likelihood of y under N(mean, exp(log_var)), per sample.

    The network's two outputs are the mean and the log-variance of the standardised target,
    so the model learns a per-object uncertainty (heteroscedastic regression).
    """

    def forward(self, y_pred, y_true):
        mean, log_var = y_pred[:, :1], split_log_var(y_pred)
        return 0.5 * (log_var + (y_true - mean) ** 2 / torch.exp(log_var))


def split_log_var(y_pred):
    """The clamped log-variance column of a Gaussian head's output."""
    return y_pred[:, 1:2].clamp(*_LOG_VAR_RANGE)


_CRITERIA = {"mse": MSELoss, "huber": HuberLoss, "gaussian_nll": GaussianNLLLoss}


def make_criterion(loss):
    """The criterion class of a loss name."""
    return _CRITERIA[loss]


def n_outputs_for(loss):
    """Network outputs a regression loss needs (mean, and log-variance for gaussian_nll)."""
    return 2 if loss == "gaussian_nll" else 1
