"""The scikit-learn side of the neural estimators: parameters, validation, scaling, skorch.

Each estimator is a plain :class:`~sklearn.base.BaseEstimator` whose ``fit`` builds a skorch
net (the fitted ``net_``) around :class:`~sklearn_sfr.neural._modules.FusionNet`. Training,
validation split, early stopping with best-weights restore and the progress bar are skorch's
callbacks; this module only adds what skorch cannot know: which SliceDict keys are inputs, how
to scale physical units, how to keep a 1-D target from broadcasting, and the losses.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from skorch.helper import SliceDict

from ..utils._multimodal import get_key, is_multimodal
from ._inputs import InputScaler, check_no_empty_rows, modality_arrays, network_arrays
from ._lazy import LAZY_LOADERS, HiSSCubeDataset, ScaledDataset, scaler_sample
from ._losses import LOSSES, make_criterion
from ._modules import AUGMENTATIONS, FusionNet

#: Network inputs that are not a modality with an encoder.
_NOT_MODALITIES = ("sample_weight", "scalars")


def resolve_device(device):
    """``"auto"`` is CUDA when a GPU is visible, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class _PlateauScheduler(LRScheduler):
    """skorch's LRScheduler that lets go of its torch scheduler when training ends.

    The scheduler object is only used while training (skorch builds a new one at the start of
    every fit) and holds optimizer state that skops cannot persist; dropping it keeps fitted
    estimators savable with skops.
    """

    def on_train_end(self, net, **kwargs):
        self.lr_scheduler_ = None


class _WeightedNet(NeuralNet):
    """A skorch net whose loss honours per-sample weights passed as ``X["sample_weight"]``."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(y_pred.device)
        per_sample = self.criterion_(y_pred, y_true)
        per_sample = per_sample.reshape(per_sample.shape[0], -1).mean(dim=1)
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return per_sample.mean()
        weight = weight.to(per_sample.device, per_sample.dtype)
        return (per_sample * weight).sum() / weight.sum()


class BaseNeuralEstimator(BaseEstimator):
    """Shared machinery of the neural estimators (not for direct use).

    Subclasses set ``_modalities`` (SliceDict keys the network reads) and may add
    architecture parameters through ``_module_kwargs``.
    """

    _modalities: tuple = ("image", "spectrum")

    _parameter_constraints: dict = {
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "embed_dim": [Interval(Integral, 1, None, closed="left")],
        "norm": [StrOptions({"batch", "group", "layer", "none"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "scalar_keys": [StrOptions({"auto"}), list, tuple, None],
        "augment": [StrOptions(set(AUGMENTATIONS)), None],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "net_kwargs": [dict, None],
    }

    def __init__(
        self,
        *,
        width=32,
        depth=3,
        embed_dim=64,
        norm="group",
        dropout=0.1,
        loss="mse",
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        weight_decay=1e-4,
        validation_fraction=0.1,
        patience=10,
        scalar_keys="auto",
        augment="dihedral",
        random_state=None,
        device="auto",
        verbose=0,
        net_kwargs=None,
    ):
        self.width = width
        self.depth = depth
        self.embed_dim = embed_dim
        self.norm = norm
        self.dropout = dropout
        self.loss = loss
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scalar_keys = scalar_keys
        self.augment = augment
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.net_kwargs = net_kwargs

    # -- hooks for subclasses -------------------------------------------------------------------
    def _module_kwargs(self):
        return {}

    def _criterion(self):
        return make_criterion(self.loss)

    # -- inputs ---------------------------------------------------------------------------------
    def _input_keys(self):
        """SliceDict key of each network input (role): the modality names by default."""
        return {m: m for m in self._modalities}

    def _resolve_scalar_keys(self, X):
        """The per-object scalars the heads read: ``scalar_keys``, with ``"auto"`` resolved
        to ``("redshift",)`` when X holds a redshift (a SliceDict with that key, or a
        HiSSCubeDataset), else none."""
        keys = self.scalar_keys
        if keys is None:
            return ()
        if isinstance(keys, str):  # "auto", the only string the constraints accept
            has_redshift = isinstance(X, HiSSCubeDataset) or (is_multimodal(X) and "redshift" in X)
            return ("redshift",) if has_redshift else ()
        keys = tuple(keys)
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"scalar_keys must be 'auto', None or a list of str, got {keys!r}")
        return keys

    def _arrays(self, X):
        """The network inputs of an in-memory X, by role, plus ``"scalars"`` if any."""
        arrays = modality_arrays(X, self._input_keys())
        check_no_empty_rows(arrays)
        if self.scalar_keys_:
            if not is_multimodal(X):
                raise TypeError(
                    f"the model reads the per-object scalars {list(self.scalar_keys_)}, so X "
                    f"must be a SliceDict holding them, got {type(X).__name__}"
                )
            n = len(next(iter(arrays.values())))
            columns = {}
            for key in self.scalar_keys_:
                column = get_key(X, key)
                if column.shape != (n,) or column.dtype.kind not in "biuf":
                    raise ValueError(
                        f"X[{key!r}] must be one number per sample, shape ({n},), got shape "
                        f"{column.shape} and dtype {column.dtype}"
                    )
                columns[key] = column
            arrays["scalars"] = network_arrays(columns, {}, self.scalar_keys_)["scalars"]
        return arrays

    def _scaled_dataset(self, dataset, y=None):
        """A lazy dataset's items as network inputs, read while training or predicting."""
        return ScaledDataset(
            dataset, self.scaler_, y, roles=self._input_keys(), scalar_keys=self.scalar_keys_
        )

    def _check_shapes(self, arrays):
        keys = {**self._input_keys(), "scalars": "scalars"}
        for role, x in arrays.items():
            if x.shape[1:] != self.input_shapes_[role]:
                raise ValueError(
                    f"X[{keys[role]!r}] has shape {x.shape}, but the model was fitted on "
                    f"(n, {', '.join(map(str, self.input_shapes_[role]))}); crop or rebin to "
                    "match"
                )

    def _net_inputs(self, arrays, sample_weight=None):
        inputs = self.scaler_.transform(arrays)
        if sample_weight is not None:
            inputs["sample_weight"] = np.asarray(sample_weight, dtype=np.float32)
        return SliceDict(**inputs)

    def _seed(self):
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(2**31 - 1))
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        torch.manual_seed(seed)
        return seed

    # -- the net --------------------------------------------------------------------------------
    def _callbacks(self, validate=None, plateau=True):
        """skorch callbacks: with a validation split, the learning rate drops to 30 % after
        ``patience // 3`` epochs without a better validation loss (the noisy labels make the
        loss jump at a constant rate), and training stops after ``patience`` such epochs with
        the best weights restored (``plateau=False``: no learning-rate drop); a progress bar
        when ``verbose``."""
        validate = self.validation_fraction > 0 if validate is None else validate
        callbacks = []
        if validate and plateau:
            scheduler = _PlateauScheduler(
                policy=torch.optim.lr_scheduler.ReduceLROnPlateau,
                monitor="valid_loss",
                factor=0.3,
                patience=max(self.patience // 3, 1),
            )
            callbacks.append(("lr_scheduler", scheduler))
        if validate:
            callbacks.append(
                ("early_stopping",
                 EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True))
            )  # fmt: skip
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _extra_net_kwargs(self, callbacks):
        """``net_kwargs`` with its ``callbacks`` appended to the estimator's own ``callbacks``.

        Appended, not replacing: a user's callback (or a tuner's pruning callback, see
        :class:`~sklearn_sfr.neural.SkorchPruningCallback`) must not silently switch off early
        stopping.
        """
        extra = dict(self.net_kwargs or {})
        extra["callbacks"] = [*callbacks, *(extra.get("callbacks") or [])]
        return extra

    def _encoder_kwargs(self):
        """Module keyword arguments every network of these estimators shares."""
        return {
            "width": self.width,
            "depth": self.depth,
            # Spectra are longer than images are wide: one more block (as documented).
            "spectrum_depth": self.depth + 1,
            "embed_dim": self.embed_dim,
            "norm": self.norm,
            "dropout": self.dropout,
            "n_scalars": len(self.scalar_keys_),
            "augment": self.augment,
        }

    def _training_kwargs(self, split, max_epochs, *, plateau=True, lazy=False):
        """skorch keyword arguments of a training stage: AdamW, batches, ``split`` (a
        ValidSplit or None) with its callbacks, the device and, out of core, the loaders
        that read batches of whole chunks (a user's ``net_kwargs``, merged after, win)."""
        return {
            "optimizer": torch.optim.AdamW,
            "lr": self.lr,
            "optimizer__weight_decay": self.weight_decay,
            "max_epochs": max_epochs,
            "batch_size": self.batch_size,
            "iterator_train__shuffle": True,
            "train_split": split,
            "callbacks": self._callbacks(validate=split is not None, plateau=plateau),
            "device": resolve_device(self.device),
            "verbose": int(self.verbose),
            **(LAZY_LOADERS if lazy else {}),
        }

    def _build_net(self, seed, n_outputs, lazy=False):
        module_kwargs = {
            "image_shape": self.net_shapes_.get("image"),
            "spectrum_shape": self.net_shapes_.get("spectrum"),
            "n_outputs": n_outputs,
            **self._encoder_kwargs(),
            **self._module_kwargs(),
        }
        split = (
            ValidSplit(self.validation_fraction, random_state=seed)
            if self.validation_fraction > 0
            else None
        )
        stage = self._training_kwargs(split, self.max_epochs, lazy=lazy)
        kwargs = {
            "module": FusionNet,
            "criterion": self._criterion(),
            **stage,
            **{f"module__{k}": v for k, v in module_kwargs.items()},
            **self._extra_net_kwargs(stage["callbacks"]),
        }
        return _WeightedNet(**kwargs)

    def _dataset_sample(self, dataset):
        """A batch of a lazy dataset, to learn the scaling and check the inputs."""
        keys = self._input_keys()
        missing = [
            key for role, key in keys.items() if role != key or key not in dataset.modalities
        ]
        if missing:
            raise ValueError(
                f"the HiSSCubeDataset holds {list(dataset.modalities)} but this model needs "
                f"{list(keys.values())}"
            )
        unknown = [k for k in self.scalar_keys_ if k != "redshift"]
        if unknown:
            raise ValueError(
                f"a HiSSCubeDataset provides only 'redshift' as a per-object scalar, not {unknown}"
            )
        arrays = network_arrays(scaler_sample(dataset), keys, self.scalar_keys_)
        check_no_empty_rows(arrays)
        return arrays

    def _fit_net(self, X, y2d, n_outputs, sample_weight=None):
        self._validate_params()
        lazy = isinstance(X, HiSSCubeDataset)
        if lazy and sample_weight is not None:
            raise ValueError("sample_weight is not supported with a HiSSCubeDataset")
        self.scalar_keys_ = self._resolve_scalar_keys(X)
        # Out of core, the scaling is learnt on a sample and items are read while training.
        arrays = self._dataset_sample(X) if lazy else self._arrays(X)
        n_rows = len(X) if lazy else len(next(iter(arrays.values())))
        if self.validation_fraction > 0 and math.ceil(self.validation_fraction * n_rows) >= n_rows:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out every one of the "
                f"{n_rows} samples, leaving none to train on; use validation_fraction=0"
            )
        self.input_shapes_ = {k: v.shape[1:] for k, v in arrays.items()}
        self.scaler_ = InputScaler().fit(arrays)
        # Out of core the scaled sample only tells the shapes: scale two rows, not thousands.
        sample = self._net_inputs(
            {k: v[:2] for k, v in arrays.items()} if lazy else arrays, sample_weight
        )
        del arrays
        self.net_shapes_ = {
            k: tuple(v.shape[1:]) for k, v in sample.items() if k not in _NOT_MODALITIES
        }
        seed = self._seed()
        self.net_ = self._build_net(seed, n_outputs, lazy=lazy)
        if lazy:
            self.net_.fit(self._scaled_dataset(X, y2d), None)
        else:
            self.net_.fit(sample, y2d)
        return self

    def _prediction_inputs(self, X):
        """X checked against the fitted shapes, as network inputs (a lazy dataset for a
        HiSSCubeDataset)."""
        check_is_fitted(self, "net_")
        if isinstance(X, HiSSCubeDataset):
            self._check_shapes(self._dataset_sample(X))
            return self._scaled_dataset(X)
        arrays = self._arrays(X)
        self._check_shapes(arrays)
        return self._net_inputs(arrays)

    def _forward(self, X):
        inputs = self._prediction_inputs(X)  # first: it raises NotFittedError before fit
        out = self.net_.forward(inputs, training=False)
        return out.detach().cpu().numpy().astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.dict = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.device not in ("cpu", "auto")
        return tags


def check_regression_target(y, n_samples, *, allow_nan=False):
    """A 1-D float target with one value per sample (2-D targets are refused)."""
    if n_samples == 0:
        raise ValueError("X has no samples; at least one is required")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one target per sample), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} values but X has {n_samples} samples")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if np.isinf(y).any() or (not allow_nan and np.isnan(y).any()):
        raise ValueError(
            "y contains NaN or infinity; drop unlabelled objects first (e.g. with FlagFilter)"
        )
    return y
