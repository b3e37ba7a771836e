"""The scikit-learn side of the neural estimators: parameters, validation, scaling, skorch.

Each estimator is a plain :class:`~sklearn.base.BaseEstimator` whose ``fit`` builds a skorch
net (the fitted ``net_``) around :class:`~sklearn_sfr.neural._modules.FusionNet`. Training,
validation split, early stopping with best-weights restore and the progress bar are skorch's
callbacks; this module only adds what skorch cannot know: which SliceDict keys are inputs, how
to scale physical units, how to keep a 1-D target from broadcasting, and the losses.
"""

from __future__ import annotations

import functools
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, PrintLog, ProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.helper import SliceDict
from skorch.utils import to_tensor

from ..utils._multimodal import get_key, is_multimodal
from ..utils._sklearn import Interval, InvalidParameterError, Options, StrOptions, make_constraint
from ._inputs import (
    InputScaler,
    ScaledArrays,
    check_no_empty_rows,
    modality_arrays,
    network_arrays,
)
from ._lazy import LAZY_LOADERS, HiSSCubeDataset, ScaledDataset, scaler_sample
from ._losses import LOSSES, make_criterion
from ._modules import AUGMENTATIONS, FusionNet
from ._targets import FLOAT32_MAX

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


class _PrintSinkNotSaved:
    """Mixin of a skorch callback with a ``sink`` (``print`` by default) that is saved without
    it when it is ``print`` and gets ``print`` back on loading.

    skops asks whoever loads a model to trust every function it holds; ``builtins.print`` need
    not be one of them.
    """

    def __getstate__(self):
        getstate = getattr(super(), "__getstate__", None)
        state = dict(getstate() if getstate is not None else vars(self))
        if state.get("sink") is print:
            del state["sink"]
        return state

    def __setstate__(self, state):
        self.__dict__.update({"sink": print, **state})


class _EarlyStopping(_PrintSinkNotSaved, EarlyStopping):
    """skorch's EarlyStopping, saved without its ``print`` sink."""


class _PrintLog(_PrintSinkNotSaved, PrintLog):
    """skorch's PrintLog (the epoch table), saved without its ``print`` sink."""


class _EpochProgress(Callback):
    """One progress bar per training, over its epochs, with the last training and validation
    loss (stderr, with the time left): what ``verbose=1`` shows. skorch's per-batch bar and
    epoch table come with ``verbose=2``. The bar is not saved with the model."""

    def __init__(self, desc="training"):
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit=" epochs", leave=False)

    def on_epoch_end(self, net, **kwargs):
        bar = getattr(self, "bar_", None)
        if bar is None:
            return
        row = net.history[-1]
        losses = [f"{key} {row[key]:.4g}" for key in ("train_loss", "valid_loss") if key in row]
        bar.set_postfix_str(", ".join(losses), refresh=False)
        bar.update(1)

    def on_train_end(self, net, **kwargs):
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()
        self.bar_ = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("bar_", None)
        return state


class _GuardedNet(NeuralNet):
    """A skorch net that stops with a clear error when training diverges, and runs its
    module's forward passes in ``precision``.

    After every epoch (once all callbacks have run, so that a pruning callback sees the
    diverged loss first) the epoch's training and validation losses must be finite, and when
    training ends so must the weights: otherwise every prediction would be NaN or infinite.

    ``precision="bfloat16"`` runs each forward pass (training, validation, prediction) under
    :func:`torch.autocast` with bfloat16 (mixed precision: the weights, the optimizer and the
    loss stay float32; convolutions and matrix products compute in bfloat16), and hands the
    outputs on as float32.
    """

    #: Which training this net does, for the error message.
    _stage = ""

    def __init__(self, *args, precision="float32", **kwargs):
        super().__init__(*args, **kwargs)
        self.precision = precision

    def infer(self, x, **fit_params):
        # getattr: a net pickled before `precision` existed computes in float32.
        if getattr(self, "precision", "float32") == "float32":
            return super().infer(x, **fit_params)
        device_type = torch.device(self.device).type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            out = super().infer(x, **fit_params)
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()

    def notify(self, method_name, **cb_kwargs):
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_epoch_end":
            self._check_finite_losses(self.history[-1:])
        elif method_name == "on_train_end":
            # A callback that stopped training (early stopping) skips the epoch-end check.
            self._check_finite_losses(self.history)
            self._check_finite_weights()

    def _diverged(self, what):
        return ValueError(
            f"training diverged{self._stage}: {what}; use a lower lr (it is {self.lr:g}) or "
            "check X, y and sample_weight for extreme values"
        )

    def _check_finite_losses(self, epochs):
        for row in epochs:
            for key, kind in (("train_loss", "training"), ("valid_loss", "validation")):
                value = row.get(key)
                if value is not None and not math.isfinite(value):
                    raise self._diverged(
                        f"the {kind} loss became non-finite ({value}) at epoch {row['epoch']} "
                        f"of {self.max_epochs}"
                    )

    def _check_finite_weights(self):
        finite = all(bool(torch.isfinite(p).all()) for p in self.module_.parameters())
        if not finite:
            epoch = len(self.history)
            raise self._diverged(
                f"the network's weights became non-finite by the end of epoch {epoch} of "
                f"{self.max_epochs}"
            )


#: The precisions a network may compute its forward passes in (``precision``).
PRECISIONS = ("float32", "bfloat16")


#: Most bytes of activations one forward pass keeps for the backward pass while training on
#: the CPU: a larger batch is run in chunks whose gradients add up to the batch's (see
#: :meth:`_WeightedNet.train_step_single`). A batch of 128 objects keeps about 680 MB at
#: 64 px and 4620 px (four times the arrays of 1,600 such objects), 39 MB at 8 px and 577 px,
#: which is not chunked. Chunks of about 12 rows at 64 px trained no slower than whole batches
#: (benchmarks/bench_memory.py --section fit has the memory).
STEP_ACTIVATION_BUDGET = 64 * 2**20


def _is_batch_dependent(module):
    """Whether a layer's output or state depends on the other rows of its batch (BatchNorm),
    or a forward pass updates its running statistics (any norm that tracks them)."""
    return isinstance(module, torch.nn.modules.batchnorm._BatchNorm) or bool(
        getattr(module, "track_running_stats", False)
    )


def _saved_bytes(module, inputs):
    """Bytes of the tensors a training forward pass of ``inputs`` keeps for its backward pass,
    the parameters left out; the random number generator's state is left as it was."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with (
        torch.random.fork_rng(devices=[]),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
    ):
        module(**inputs)
    return sum(storages.values())


class _WeightedNet(_GuardedNet):
    """A skorch net whose loss honours per-sample weights passed as ``X["sample_weight"]``.

    On the CPU, a training batch whose activations would exceed
    :data:`STEP_ACTIVATION_BUDGET` is run in chunks of rows, each chunk's backward pass
    adding its share of the batch's gradient: the same step (the loss is a per-sample
    mean), with the activations of a chunk in memory instead of those of the whole batch.
    """

    def _rows_per_chunk(self, Xi):
        """Rows of ``Xi`` (a batch, dict of tensors) one chunk holds: all of them unless the
        device is the CPU, the network has no batch-dependent layer and a batch's activations
        would exceed the budget, measured once per input shape on two rows."""
        n = len(next(iter(Xi.values())))
        if torch.device(self.device).type != "cpu":
            return n
        # A cache, not saved with the model: activation bytes per row by the inputs' shapes,
        # and whether the module has a batch-dependent layer (looked up once per module, not
        # once per batch).
        cache = vars(self).setdefault("_row_bytes", {})
        module, dependent = cache.get("batch_dependent", (None, False))
        if module is not self.module_:
            dependent = any(_is_batch_dependent(m) for m in self.module_.modules())
            cache["batch_dependent"] = (self.module_, dependent)
        if dependent:
            return n
        key = tuple((k, tuple(v.shape[1:])) for k, v in Xi.items())
        if key not in cache:
            with torch.enable_grad():
                saved = _saved_bytes(self.module_, {k: v[:2] for k, v in Xi.items()})
            cache[key] = saved / min(n, 2)
        most = max(1, int(min(n, STEP_ACTIVATION_BUDGET / max(cache[key], 1))))
        # Chunks of equal size: 128 rows at most 48 each make 3 chunks of 43, not 48 + 48 + 32.
        return -(-n // -(-n // most))

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_row_bytes", None)
        return state

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        rows = self._rows_per_chunk(Xi) if isinstance(Xi, dict) else len(yi)
        if rows >= len(yi):
            return super().train_step_single((Xi, yi), **fit_params)
        # The batch's loss is sum(w_i * l_i) / sum(w_i) (w_i = 1 without weights); a chunk's
        # own loss is that mean over its rows, so it counts with its share of the weight.
        weight = Xi.get("sample_weight")
        if weight is None:
            total = len(yi)
        else:
            total = weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
        loss, y_pred = 0.0, []
        for start in range(0, len(yi), rows):
            part = slice(start, start + rows)
            Xc = {k: v[part] for k, v in Xi.items()}
            out = self.infer(Xc, **fit_params)
            share = (len(out) if weight is None else Xc["sample_weight"].sum()) / total
            chunk_loss = self.get_loss(out, yi[part], X=Xc, training=True) * share
            chunk_loss.backward()
            loss = loss + chunk_loss.detach()
            y_pred.append(out.detach())
        return {"loss": loss, "y_pred": torch.cat(y_pred)}

    def _infer_in_chunks(self, Xi, **fit_params):
        """``infer`` of a batch without gradients, in the chunks of training: without a
        backward pass a forward pass still holds a few full-batch feature maps at once."""
        Xi = to_tensor(Xi, device=self.device)
        if not isinstance(Xi, dict):
            return self.infer(Xi, **fit_params)
        n = len(next(iter(Xi.values())))
        rows = self._rows_per_chunk(Xi)
        parts = [slice(start, start + rows) for start in range(0, n, rows)]
        outputs = [self.infer({k: v[p] for k, v in Xi.items()}, **fit_params) for p in parts]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self._infer_in_chunks(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=to_tensor(Xi, device=self.device))
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.no_grad():
            self._set_training(False)
            return self._infer_in_chunks(Xi)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(y_pred.device)
        per_sample = self.criterion_(y_pred, y_true)
        per_sample = per_sample.reshape(per_sample.shape[0], -1).mean(dim=1)
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return per_sample.mean()
        weight = weight.to(per_sample.device, per_sample.dtype)
        # A batch whose weights are all zero contributes nothing (not 0 / 0 = NaN).
        total = weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
        return (per_sample * weight).sum() / total


def forget_fit_on_failure(fit):
    """Decorate ``fit``: a fit starts from nothing, and one that fails leaves nothing.

    The fitted attributes (``name_``) are dropped before fitting and again if fitting
    raises, so that a failed (re)fit leaves an estimator that says it is not fitted rather
    than a half-trained network next to another fit's scaling.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        self._forget_fit()
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self._forget_fit()
            raise

    return wrapper


#: ``net_kwargs`` keys checked like the estimator's parameter of the same meaning: the
#: constraints and how to say them.
_BATCH_SIZE = (
    [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
    "an int in the range [1, inf), or -1 (one batch of all the data)",
)
_NET_KWARGS_CONSTRAINTS = {
    "max_epochs": ([Interval(Integral, 1, None, closed="left")], None),
    "lr": ([Interval(Real, 0, None, closed="neither")], None),
    "optimizer__lr": ([Interval(Real, 0, None, closed="neither")], None),
    "optimizer__weight_decay": ([Interval(Real, 0, None, closed="left")], None),
    "batch_size": _BATCH_SIZE,
    "iterator_train__batch_size": _BATCH_SIZE,
    "iterator_valid__batch_size": _BATCH_SIZE,
}


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
        "precision": [StrOptions(set(PRECISIONS))],
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
        precision="float32",
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
        self.precision = precision
        self.verbose = verbose
        self.net_kwargs = net_kwargs

    def _validate_params(self):
        super()._validate_params()
        self._validate_net_kwargs()

    def _validate_net_kwargs(self):
        """The numbers ``net_kwargs`` passes to skorch meet the constraints of the
        estimator's own parameters of the same meaning (``max_epochs``, ``lr``, ...)."""
        for key, (constraints, said) in _NET_KWARGS_CONSTRAINTS.items():
            if key not in (self.net_kwargs or {}):
                continue
            value = self.net_kwargs[key]
            constraints = [make_constraint(c) for c in constraints]
            if not any(c.is_satisfied_by(value) for c in constraints):
                said = said or " or ".join(str(c) for c in constraints)
                raise InvalidParameterError(
                    f"net_kwargs[{key!r}] of {type(self).__name__} must be {said}; got {value!r}"
                )

    def _forget_fit(self):
        """Drop every fitted attribute (see :func:`forget_fit_on_failure`)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)

    def _check_finite_output(self, values, what="predictions"):
        """Refuse to hand out non-finite network outputs: they mean a broken network."""
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{type(self).__name__} computed non-finite {what} for {int(bad.sum())} of "
                f"{len(values)} samples (e.g. rows {np.flatnonzero(bad)[:5].tolist()}): its "
                "network's weights are not finite or these inputs are beyond what float32 "
                "holds; refit it (with a lower lr) or check X for extreme values"
            )
        return values

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
                # NaN is a missing value (imputed); infinity would be imputed silently too,
                # and beyond float32's range a value becomes infinity in the network.
                with np.errstate(invalid="ignore"):
                    bad = np.abs(column.astype(np.float64)) > FLOAT32_MAX
                if bad.any():
                    raise ValueError(
                        f"X[{key!r}] contains infinity or values beyond float32's range "
                        f"(e.g. rows {np.flatnonzero(bad)[:5].tolist()}); mark a missing "
                        "value with NaN instead"
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
        """Scaled inputs, plus ``sample_weight`` (already checked, see
        :func:`~sklearn_sfr.neural._targets.check_sample_weight`)."""
        inputs = self.scaler_.transform(arrays)
        if sample_weight is not None:
            inputs["sample_weight"] = sample_weight
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
                 _EarlyStopping(monitor="valid_loss", patience=self.patience, load_best=True))
            )  # fmt: skip
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        elif self.verbose:
            callbacks.append(("epoch_progress", _EpochProgress(type(self).__name__)))
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
            "precision": self.precision,
            "verbose": int(self.verbose),
            # skorch's epoch table (verbose=2), saved without its sink (builtins.print, which
            # skops would ask users to trust); otherwise left out (verbose=1 has its bar).
            "callbacks__print_log": _PrintLog() if self.verbose >= 2 else None,
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
        # The scaled inputs' shapes: scale two rows, not thousands.
        sample = self._net_inputs({k: v[:2] for k, v in arrays.items()})
        self.net_shapes_ = {
            k: tuple(v.shape[1:]) for k, v in sample.items() if k not in _NOT_MODALITIES
        }
        seed = self._seed()
        net = self._build_net(seed, n_outputs, lazy=lazy)
        if lazy:
            del arrays
            net.fit(self._scaled_dataset(X, y2d), None)
        else:
            net.fit(self._training_data(arrays, y2d, sample_weight), y2d)
        self.net_ = net  # only once trained: a fit that raised leaves no net behind
        return self

    def _training_data(self, arrays, y2d, sample_weight=None):
        """What an in-memory fit hands to skorch: the arrays, scaled batch by batch as they
        are read (:class:`~sklearn_sfr.neural._inputs.ScaledArrays`: the same values as the
        scaled SliceDict, without a scaled copy of the data), or, when ``net_kwargs`` names
        a skorch ``dataset`` to build on them, the scaled SliceDict itself."""
        if any(k == "dataset" or k.startswith("dataset__") for k in self.net_kwargs or {}):
            return self._net_inputs(arrays, sample_weight)
        return ScaledArrays(arrays, self.scaler_, y2d, sample_weight)

    def _prediction_inputs(self, X):
        """X checked against the fitted shapes, as network inputs: a dataset whose batches
        are scaled as they are read (:class:`~sklearn_sfr.neural._inputs.ScaledArrays`, so
        predicting holds no scaled copy of X), or a lazy dataset for a HiSSCubeDataset."""
        check_is_fitted(self, "net_")
        if isinstance(X, HiSSCubeDataset):
            self._check_shapes(self._dataset_sample(X))
            return self._scaled_dataset(X)
        arrays = self._arrays(X)
        self._check_shapes(arrays)
        return ScaledArrays(arrays, self.scaler_)

    def _forward(self, X):
        inputs = self._prediction_inputs(X)  # first: it raises NotFittedError before fit
        out = self.net_.forward(inputs, training=False)
        return self._check_finite_output(out.detach().cpu().numpy().astype(np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.dict = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.device not in ("cpu", "auto")
        return tags
