"""CLIP-style contrastive pretraining of the image and spectrum encoders, then regression.

:class:`ContrastiveRegressor` trains in two stages, each a skorch net:

1. **Pretraining** (``pretrain_net_``): an image encoder and a spectrum encoder, each followed
   by a projection to ``projection_dim`` and L2 normalisation, learn to tell which spectrum
   belongs to which image in a batch (the symmetric InfoNCE loss of CLIP, with a learnable
   temperature). Labels are not needed, so every row of ``X`` takes part: FLAG 0, 1 and 2,
   labelled or not.
2. **Regression** (``net_``): a head reads the joint embedding (both normalised
   projections or both encoder embeddings, concatenated) and learns from the rows with a
   trusted label only (a finite ``y`` and, where ``X`` tells each object's MPA-JHU FLAG,
   FLAG=0). It starts as a ridge fit of those labels (``head="ridge"``), which a probe keeps
   (``finetune="probe"``, the encoders frozen) and fine-tuning trains on from, encoders
   included (``finetune="full"``).
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted
from skorch.dataset import ValidSplit
from skorch.helper import SliceDict
from skorch.utils import to_device
from torch import nn

from ..utils._multimodal import is_multimodal
from ..utils._sklearn import HasMethods, Interval, StrOptions
from ._base import (
    _NOT_MODALITIES,
    BaseNeuralEstimator,
    _GuardedNet,
    _WeightedNet,
    forget_fit_on_failure,
)
from ._estimators import _DOC_ATTRS, _DOC_PARAMS, _n_samples, _NeuralRegressor
from ._inputs import InputScaler
from ._lazy import HiSSCubeDataset
from ._losses import make_criterion, n_outputs_for
from ._modules import (
    ImageEncoder,
    LinearPlusMLPHead,
    SpectrumEncoder,
    _check_input,
    _mlp_head,
    append_scalars,
)
from ._targets import check_regression_target, check_sample_weight, standardise_target

#: Range of the learnable temperature (CLIP clamps its logit scale at 100, i.e. T >= 0.01).
TEMPERATURE_RANGE = (0.01, 1.0)

_FINETUNES = ("probe", "full")

#: What the regression head may read (:meth:`ContrastiveNet.features`).
HEAD_INPUTS = ("projection", "encoder")

#: How the regression head starts (:meth:`ContrastiveNet.reset_head`, ``head``).
HEADS = ("ridge", "mlp")

#: Ridge penalties the linear head's least-squares fit chooses from (by efficient
#: leave-one-out, :class:`~sklearn.linear_model.RidgeCV`), on standardised inputs and target.
_RIDGE_ALPHAS = np.logspace(-3, 5, 33)

#: Fewer labelled rows than this leave nothing to choose the penalty by: it is then 1.
_MIN_LEAVE_ONE_OUT = 3

#: The parts of a :class:`ContrastiveNet` that pretraining trains (``encoder_lr_ratio``).
_ENCODER_PARTS = ("image_encoder", "spectrum_encoder", "image_projection", "spectrum_projection")


class ContrastiveNet(nn.Module):
    """Two encoders with normalised projections, a learnable temperature and a regression head.

    ``image -> ImageEncoder -> GELU -> Linear -> L2 normalise`` and likewise for the spectrum
    (with :class:`~sklearn_sfr.neural._modules.SpectrumEncoder`). What :meth:`forward` returns
    depends on :attr:`output`: the two projections and the logit scale (pretraining, the input
    of :class:`SymmetricInfoNCELoss`), or the head's prediction from the joint embedding, the
    concatenation ``[z_image, z_spectrum]`` (regression).

    Parameters
    ----------
    image_shape : tuple of int (C, S, S)
        Shape of one image, channels first (bands plus the validity channel).
    spectrum_shape : tuple of int (C, L)
        Shape of one spectrum, channels first (flux plus the validity channel).
    n_outputs : int, default=1
        Outputs of the regression head.
    width : int, default=32
        Channels of the stem and first block of each encoder.
    depth : int, default=3
        Blocks of the image encoder.
    spectrum_depth : int, default=4
        Blocks of the spectrum encoder.
    norm : {"batch", "group", "layer", "none"}, default="group"
    dropout : float, default=0.1
        Dropout in the encoders and the head.
    embed_dim : int, default=64
        Size of each encoder's embedding; also the head's hidden size.
    projection_dim : int, default=64
        Size of each normalised projection.
    temperature : float, default=0.07
        Initial softmax temperature; it is learnt as ``logit_scale = log(1 / T)`` and kept in
        :data:`TEMPERATURE_RANGE`.
    augment : {"dihedral", "flip"} or None, default=None
        Random symmetry of the images while training (both stages).
    n_scalars : int, default=0
        Per-object scalars (e.g. the redshift) the regression head reads next to the joint
        embedding (``forward(..., scalars=...)``); pretraining ignores them.
    head_input : {"projection", "encoder"}, default="projection"
        What the regression head reads (see :meth:`features`): the two normalised
        projections, or the two encoders' embeddings before the projections.

    Attributes
    ----------
    output : {"projections", "regression"}
        What :meth:`forward` returns; ``"projections"`` after construction.
    frozen : bool
        Whether the encoders and projections are frozen (see :meth:`freeze_encoders`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_sfr.neural._contrastive import ContrastiveNet
    >>> net = ContrastiveNet((6, 8, 8), (2, 64), width=4, embed_dim=8, projection_dim=4)
    >>> z_image, z_spectrum, logit_scale = net(image=torch.zeros(3, 6, 8, 8),
    ...                                        spectrum=torch.zeros(3, 2, 64))
    >>> z_image.shape, z_spectrum.shape, logit_scale.shape
    (torch.Size([3, 4]), torch.Size([3, 4]), torch.Size([3]))
    >>> round(float(net.temperature()), 2)
    0.07
    >>> net.output = "regression"
    >>> net(image=torch.zeros(3, 6, 8, 8), spectrum=torch.zeros(3, 2, 64)).shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        image_shape,
        spectrum_shape,
        n_outputs=1,
        width=32,
        depth=3,
        spectrum_depth=4,
        norm="group",
        dropout=0.1,
        embed_dim=64,
        projection_dim=64,
        temperature=0.07,
        augment=None,
        n_scalars=0,
        head_input="projection",
    ):
        super().__init__()
        image_shape, spectrum_shape = tuple(image_shape), tuple(spectrum_shape)
        if len(image_shape) != 3 or image_shape[1] != image_shape[2]:
            raise ValueError(f"image_shape must be square (C, S, S), got {image_shape}")
        if len(spectrum_shape) != 2:
            raise ValueError(f"spectrum_shape must be (C, L), got {spectrum_shape}")
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise ValueError(f"temperature must be in [{low}, {high}], got {temperature!r}")
        self.image_shape, self.spectrum_shape = image_shape, spectrum_shape
        kw = dict(width=width, norm=norm, dropout=dropout, embed_dim=embed_dim)
        self.image_encoder = ImageEncoder(*image_shape[:2], depth=depth, augment=augment, **kw)
        self.spectrum_encoder = SpectrumEncoder(*spectrum_shape, depth=spectrum_depth, **kw)
        # A non-linear projection (as in SimCLR): the encoders' embeddings are its hidden layer.
        self.image_projection = nn.Sequential(nn.GELU(), nn.Linear(embed_dim, projection_dim))
        self.spectrum_projection = nn.Sequential(nn.GELU(), nn.Linear(embed_dim, projection_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.n_scalars, self.n_outputs, self.dropout = n_scalars, n_outputs, dropout
        self.embed_dim, self.projection_dim = embed_dim, projection_dim
        self.reset_head(head_input)
        self.output = "projections"
        self.frozen = False

    def reset_head(self, head_input="projection", head="mlp"):
        """A freshly initialised regression head reading ``head_input`` (see :meth:`features`).

        Stage 2 of :class:`ContrastiveRegressor` calls it on its copy of the pretrained
        module, so the head's initial weights do not depend on what it read before.

        Parameters
        ----------
        head_input : {"projection", "encoder"}, default="projection"
            What the new head reads (see :meth:`features`).
        head : {"mlp", "ridge"}, default="mlp"
            An MLP (linear, GELU, dropout, linear), or a :class:`LinearPlusMLPHead`, whose
            linear part :class:`ContrastiveRegressor` sets to a ridge fit.

        Returns
        -------
        self
        """
        if head_input not in HEAD_INPUTS:
            raise ValueError(f"head_input must be one of {HEAD_INPUTS}, got {head_input!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head_input = head_input
        size = 2 * (self.projection_dim if head_input == "projection" else self.embed_dim)
        kind = LinearPlusMLPHead if head == "ridge" else _mlp_head
        self.head = kind(size + self.n_scalars, self.embed_dim, self.n_outputs, self.dropout)
        # Standardisation of the head's input (see set_head_scaling).
        self.register_buffer("head_shift", torch.zeros(size))
        self.register_buffer("head_scale", torch.ones(size))
        return self

    def _encoders(self):
        return (
            self.image_encoder,
            self.spectrum_encoder,
            self.image_projection,
            self.spectrum_projection,
        )

    def freeze_encoders(self, frozen=True):
        """Freeze (or unfreeze) the encoders, projections and temperature.

        Frozen parts get ``requires_grad=False`` and stay in evaluation mode even while the
        net trains, so neither dropout nor normalisation statistics change them: only the
        head learns (a probe).

        Returns
        -------
        self
        """
        self.frozen = bool(frozen)
        for part in self._encoders():
            part.requires_grad_(not frozen)
        self.logit_scale.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode=True):
        """Set training mode; frozen encoders stay in evaluation mode."""
        super().train(mode)
        if self.frozen:
            for part in self._encoders():
                part.eval()
        return self

    def set_head_scaling(self, shift, scale):
        """Standardise the joint embedding before the head: ``(joint - shift) / scale``.

        Normalised projections vary little from object to object at first (all the more so
        for untrained encoders), too little for a head to learn from quickly; standardising
        them with their statistics over the training rows puts the head's input at order one.

        Returns
        -------
        self
        """
        self.head_shift.copy_(torch.as_tensor(shift, dtype=self.head_shift.dtype))
        self.head_scale.copy_(torch.as_tensor(scale, dtype=self.head_scale.dtype))
        return self

    def clamped_logit_scale(self):
        """``log(1 / T)``, clamped so that T stays in :data:`TEMPERATURE_RANGE`."""
        low, high = TEMPERATURE_RANGE
        return self.logit_scale.clamp(math.log(1.0 / high), math.log(1.0 / low))

    def temperature(self):
        """The current softmax temperature (detached)."""
        return torch.exp(-self.clamped_logit_scale().detach())

    def _encoded(self, image, spectrum):
        """Both inputs checked and encoded: the encoders' embeddings, by modality."""
        if image is None or spectrum is None:
            missing = "image" if image is None else "spectrum"
            raise ValueError(
                f"ContrastiveNet needs both image and spectrum; {missing!r} is missing"
            )
        image = _check_input(image, self.image_shape, "image")
        spectrum = _check_input(spectrum, self.spectrum_shape, "spectrum")
        if len(image) != len(spectrum):
            raise ValueError(
                f"'image' has {len(image)} samples but 'spectrum' has {len(spectrum)}"
            )
        return {"image": self.image_encoder(image), "spectrum": self.spectrum_encoder(spectrum)}

    def _projected(self, encoded):
        return {
            "image": F.normalize(self.image_projection(encoded["image"]), dim=1),
            "spectrum": F.normalize(self.spectrum_projection(encoded["spectrum"]), dim=1),
        }

    def features(self, image=None, spectrum=None, **kwargs):
        """What the regression head reads, before its standardisation: the image's and the
        spectrum's normalised projections (``head_input="projection"``) or encoder
        embeddings (``"encoder"``), concatenated, the image first.

        Parameters
        ----------
        image : Tensor of shape (B, *image_shape)
        spectrum : Tensor of shape (B, *spectrum_shape)
        **kwargs
            Other SliceDict keys, ignored.

        Returns
        -------
        Tensor of shape (B, 2 * projection_dim) or (B, 2 * embed_dim)
        """
        encoded = self._encoded(image, spectrum)
        parts = self._projected(encoded) if self.head_input == "projection" else encoded
        return torch.cat([parts["image"], parts["spectrum"]], dim=1)

    def head_features(self, image=None, spectrum=None, scalars=None, **kwargs):
        """What the regression head reads: :meth:`features` standardised (see
        :meth:`set_head_scaling`), with the per-object ``scalars`` appended.

        Returns
        -------
        Tensor of shape (B, n_features + n_scalars)
        """
        joint = (self.features(image, spectrum) - self.head_shift) / self.head_scale
        return append_scalars(joint, scalars, self.n_scalars)

    def embed(self, image=None, spectrum=None, **kwargs):
        """The L2-normalised projections of both modalities.

        Parameters
        ----------
        image : Tensor of shape (B, *image_shape)
        spectrum : Tensor of shape (B, *spectrum_shape)
        **kwargs
            Other SliceDict keys (e.g. ``sample_weight``), ignored.

        Returns
        -------
        dict with keys "image" and "spectrum" of Tensors of shape (B, projection_dim)
        """
        return self._projected(self._encoded(image, spectrum))

    def forward(self, image=None, spectrum=None, scalars=None, **kwargs):
        """Projections and logit scale, or the regression output (see :attr:`output`).

        Returns
        -------
        tuple (z_image, z_spectrum, logit_scale) or Tensor of shape (B, n_outputs)
            ``z_*`` have shape (B, projection_dim); ``logit_scale`` is the clamped scalar
            repeated B times, so that skorch can concatenate outputs batch by batch.
        """
        if self.output == "regression":
            return self.head(self.head_features(image, spectrum, scalars))
        if self.output != "projections":
            raise ValueError(f"output must be 'projections' or 'regression', got {self.output!r}")
        z = self.embed(image, spectrum)
        scale = self.clamped_logit_scale().expand(len(z["image"]))
        return z["image"], z["spectrum"], scale


class SymmetricInfoNCELoss(nn.Module):
    """CLIP's symmetric InfoNCE loss on a batch of paired, normalised projections.

    The logits are ``exp(logit_scale) * z_image @ z_spectrum.T``; the i-th image should pick
    the i-th spectrum among the batch's spectra and vice versa. The loss is the mean of the
    two cross-entropies. ``y_true`` is ignored (the pairing is the label).

    Examples
    --------
    >>> import torch
    >>> from sklearn_sfr.neural._contrastive import SymmetricInfoNCELoss
    >>> z = torch.eye(3)
    >>> loss = SymmetricInfoNCELoss()
    >>> round(float(loss((z, z, torch.zeros(3)), None)), 4)  # T = 1: log(1 + 2 / e)
    0.5514
    >>> round(float(loss((z, z, torch.full((3,), 5.0)), None)), 4)  # T = 1/e^5: sharper
    0.0
    """

    def forward(self, y_pred, y_true=None):
        z_image, z_spectrum, logit_scale = y_pred
        logits = logit_scale[0].exp() * z_image @ z_spectrum.T
        target = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class _PretrainNet(_GuardedNet):
    """The contrastive pretraining net (a skorch net that stops when training diverges)."""

    _stage = " in contrastive pretraining"


class _HeadNet(_WeightedNet):
    """The regression net: only parameters that require gradients reach the optimizer.

    Its ``module`` parameter is the pretrained module itself, not a class. It is saved with
    ``module_`` in skorch's torch blob (not as a plain attribute, which skops cannot persist:
    a tensor), and so stays the same object as ``module_`` after loading.
    """

    _stage = " in the regression head"

    def get_all_learnable_params(self):
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def __getstate__(self):
        if isinstance(vars(self).get("module"), nn.Module):
            saved = list(self.cuda_dependent_attributes_)
            if "module" not in saved:
                self.cuda_dependent_attributes_ = [*saved, "module"]
        return super().__getstate__()


def _embeddings(net, module, inputs, method="embed"):
    """``module.embed`` (or another ``method``: ``"features"``) of ``inputs`` in evaluation
    mode, batched by ``net``, as float64: a dict of arrays by modality (``embed``) or one
    array."""
    was_training = module.training
    module.eval()
    out = []
    try:
        with torch.no_grad():
            for Xi, _ in net.get_iterator(net.get_dataset(inputs), training=False):
                z = getattr(module, method)(**to_device(Xi, net.device))
                out.append(
                    {k: v.cpu().numpy() for k, v in z.items()} if isinstance(z, dict)
                    else z.cpu().numpy()
                )  # fmt: skip
    finally:
        module.train(was_training)
    if isinstance(out[0], dict):
        return {k: np.concatenate([o[k] for o in out]).astype(np.float64) for k in out[0]}
    return np.concatenate(out).astype(np.float64)


def _head_design(net, module, inputs, y=None):
    """What the head reads before its standardisation, for every row of ``inputs``, in one
    pass of the encoders (evaluation mode, batched by ``net``): ``(features, scalars,
    target, weight)``, :meth:`ContrastiveNet.features` (float32), the per-object scalars,
    the first target column and the sample weights as the batches carry them (each None
    where they carry none)."""
    features, scalars, target, weight = [], [], [], []
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for Xi, yi in net.get_iterator(net.get_dataset(inputs, y), training=False):
                Xi = to_device(Xi, net.device)
                features.append(module.features(**Xi).cpu())
                for key, parts in (("scalars", scalars), ("sample_weight", weight)):
                    if Xi.get(key) is not None:
                        parts.append(torch.as_tensor(Xi[key]).cpu())
                if yi is not None:
                    target.append(torch.as_tensor(yi).reshape(len(yi), -1)[:, 0].cpu())
    finally:
        module.train(was_training)
    return tuple(torch.cat(parts) if parts else None for parts in (features, scalars, target,
                                                                     weight))  # fmt: skip


def _split_rows(net, inputs, y, n_rows):
    """The rows of ``inputs`` that ``net`` trains on (its ``train_split`` applied as its
    ``fit`` will apply it), or None when its split does not say which (a custom split)."""
    train, _ = net.get_split_datasets(inputs, y)
    if train is None or len(train) == n_rows:
        return np.arange(n_rows)
    if isinstance(train, torch.utils.data.Subset) and len(train.dataset) == n_rows:
        return np.asarray(train.indices, dtype=np.intp)  # as skorch's ValidSplit gives it
    return None


def _fit_linear_head(net, features, scalars, target, weight=None):
    """Set the linear part of ``net.module_.head`` (a :class:`LinearPlusMLPHead`) to the ridge
    regression of the standardised ``target`` on what the head reads, the penalty chosen by
    leave-one-out.

    What the head reads is :meth:`ContrastiveNet.head_features` of those rows, computed here
    from their ``features`` and ``scalars`` (see :func:`_head_design`) with the module's own
    standardisation and the same float32 operations: the values the head sees when it
    predicts. With two outputs (``loss="gaussian_nll"``) the second, the log-variance, starts
    constant at the log of the fit's mean squared residual.
    """
    from sklearn.linear_model import Ridge, RidgeCV

    module = net.module_
    shift, scale = module.head_shift.detach().cpu(), module.head_scale.detach().cpu()
    H = append_scalars((features - shift) / scale, scalars, module.n_scalars)
    H, t = H.double().numpy(), np.asarray(target, dtype=np.float64)
    w = None if weight is None else np.asarray(weight, dtype=np.float64)
    if w is not None:  # the ridge penalty weighs against their sum: only their ratios count
        w = w / w.mean()
    ridge = None
    if len(t) >= _MIN_LEAVE_ONE_OUT:
        # A degenerate leave-one-out (rows that fit exactly) divides 0 by 0: a NaN score.
        with np.errstate(invalid="ignore", divide="ignore"):
            ridge = RidgeCV(alphas=_RIDGE_ALPHAS).fit(H, t, sample_weight=w)
    if ridge is None or not np.isfinite(ridge.best_score_):
        ridge = Ridge(alpha=1.0).fit(H, t, sample_weight=w)  # too few rows to choose
    head = module.head.linear
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0].copy_(torch.as_tensor(ridge.coef_, dtype=head.weight.dtype))
        head.bias[0] = float(ridge.intercept_)
        if len(head.bias) > 1:
            residual = np.average((ridge.predict(H) - t) ** 2, weights=w)
            head.bias[1] = float(np.log(max(residual, 1e-6)))
    return ridge


def _scatter(values, mask):
    """``values`` placed at the rows where ``mask`` is True (zeros elsewhere)."""
    out = np.zeros((len(mask), *values.shape[1:]), dtype=values.dtype)
    out[mask] = values
    return out


#: The MPA-JHU FLAG whose labels the regression head learns from (FLAG != 0 labels are biased).
TRUSTED_FLAG = 0


def _object_flags(X, n):
    """The MPA-JHU FLAG of each row of ``X`` as float64 (NaN: missing), or None if X has none.

    In memory the flags are ``X["flag"]`` (which :func:`~sklearn_sfr.datasets.load_hisscube`
    fills, and which cross-validation slices with the rows); out of core, the
    :class:`HiSSCubeDataset`'s ``flags``.
    """
    if isinstance(X, HiSSCubeDataset):
        return np.asarray(X.flags, dtype=np.float64)
    if not (is_multimodal(X) and "flag" in X):
        return None
    flags = np.asarray(X["flag"])
    if flags.dtype.kind not in "biuf":
        raise TypeError(
            f"X['flag'] must hold one numeric MPA-JHU FLAG per sample (0, 1, 2 or NaN), got "
            f"dtype {flags.dtype}"
        )
    if flags.shape != (n,):
        raise ValueError(
            f"X['flag'] must hold one MPA-JHU FLAG per sample, shape ({n},), got shape "
            f"{flags.shape}"
        )
    return flags.astype(np.float64)


def _trusted_labels(y, flags):
    """Rows whose label the regression head may learn from: a finite ``y`` and, when the
    ``flags`` are known, FLAG=0 (:data:`TRUSTED_FLAG`, the rule of
    :class:`~sklearn_sfr.preprocessing.FlagFilter`; a missing FLAG is not trusted).

    A row that fails either test is still pretrained on; its ``y`` is never read.
    """
    labelled = ~np.isnan(y)
    if flags is not None:
        from ..datasets._selection import flag_mask  # the one FLAG rule of the library

        labelled &= flag_mask(flags, (TRUSTED_FLAG,))
    if labelled.any():
        return labelled
    if flags is None or np.isnan(y).all():
        raise ValueError(
            "y is NaN for every row; ContrastiveRegressor pretrains on unlabelled rows but "
            "needs at least one labelled row (finite y) to train its regression head"
        )
    raise ValueError(
        f"no row has both a finite y and FLAG={TRUSTED_FLAG} ({int((~np.isnan(y)).sum())} "
        "labelled rows, all flagged or with a missing FLAG); ContrastiveRegressor pretrains "
        f"on every row but trains its regression head on FLAG={TRUSTED_FLAG} labels only"
    )


def _valid_split(fraction, n, seed):
    """A ValidSplit, or None when the fraction is 0 or would leave no training rows."""
    if fraction <= 0 or n < 2 or math.ceil(fraction * n) >= n:
        return None
    return ValidSplit(fraction, random_state=seed)


# The shared parameter docs, with what differs in two stages. Each anchor is a line's end.
_PARAMS = (
    _DOC_PARAMS.replace(
        "max_epochs : int, default=100\n"
        "        Most passes over the training data (early stopping may stop sooner).\n",
        "max_epochs : int, default=100\n"
        "        Most epochs of the regression stage (early stopping may stop sooner).\n",
    )
    .replace(
        "(0 disables early stopping).\n",
        "(0 disables early stopping), in\n"
        "        both stages: from all rows for pretraining, from the labelled rows for\n"
        "        the head.\n",
    )
    .replace(
        "Extra keyword arguments for the :class:`skorch.NeuralNet`. Its ``callbacks`` are\n"
        "        added to the estimator's own (early stopping, progress bar), not put in their "
        "place.\n",
        "Extra keyword arguments for both skorch nets, except ``module__*`` keys, which\n"
        "        only reach the pretraining net (it builds the module). Its ``callbacks`` are\n"
        "        added to each net's own (early stopping, progress bar), not put in their\n"
        "        place.\n",
    )
)


class ContrastiveRegressor(TransformerMixin, _NeuralRegressor):
    __doc__ = f"""Contrastive image-spectrum pretraining, then regression on the joint embedding.

    Stage 1 pretrains an image encoder and a spectrum encoder the way CLIP does: each encoder's
    embedding goes through a projection (GELU, linear) to ``projection_dim`` values and is
    L2-normalised, and the symmetric InfoNCE loss teaches them to pick each object's own
    spectrum for its image among the others in the batch, with a learnable temperature (kept
    in [0.01, 1]). This needs no labels, so **every** row of ``X`` is used: FLAG 0, 1 and 2,
    labelled or not. Stage 2 trains a regression head on the rows with a trusted label only: a
    finite ``y`` and, when ``X`` holds each object's MPA-JHU FLAG (``X["flag"]``, which
    :func:`~sklearn_sfr.datasets.load_hisscube` fills, or a :class:`HiSSCubeDataset`'s
    ``flags``), FLAG=0. A flagged object's label is biased, so the head never reads it,
    whatever ``y`` holds for it and whatever ``flag=`` the data were loaded with. The head
    reads the joint embedding, the concatenation of the image and the spectrum projections
    or encoder embeddings (``head_input``), standardised with its mean and spread over those
    rows as pretrained (normalised projections vary too little for a head to learn from), and
    the per-object scalars (the redshift). By default (``head="ridge"``) the head starts as
    the ridge regression of the labels on that input, the penalty chosen by leave-one-out.
    With ``finetune="probe"`` the encoders are frozen and that least-squares fit is the
    model; with ``"full"`` the encoders, projections and head are then fine-tuned together
    from it (linear probing, then fine-tuning).

    :meth:`transform` returns the joint embedding, so that another regressor (e.g.
    :class:`~sklearn.neighbors.KNeighborsRegressor`) can follow in a pipeline, and
    :meth:`embed` returns the two projections separately, for cross-modal retrieval.

    Parameters
    ----------
    projection_dim : int, default=64
        Size of each modality's normalised projection; :meth:`transform` returns twice as
        many columns.
    pretrain_epochs : int, default=100
        Most epochs of contrastive pretraining (with early stopping on the validation
        InfoNCE loss; see Notes). 0 skips pretraining: the head then reads randomly
        initialised encoders, a baseline that shows what pretraining buys.
    pretrain_lr : float, default=3e-4
        Learning rate of the pretraining (AdamW); ``lr`` is the regression stage's. Lower
        than ``lr`` by default: see Notes.
    finetune : {{"probe", "full"}}, default="full"
        ``"probe"`` freezes the pretrained encoders and projections (in evaluation mode, no
        gradient) and only the head learns; ``"full"`` trains them together with the head
        (the default: see Notes).
    temperature : float, default=0.07
        Initial softmax temperature of the InfoNCE loss (CLIP's value); it is learnt.
        Must be in [0.01, 1].
    head_input : {{"projection", "encoder"}}, default="encoder"
        What the head reads: the two normalised projections (``"projection"``, what
        InfoNCE compares) or the two encoders' embeddings before the projections
        (``"encoder"``, the default: see Notes). With ``"encoder"`` and ``head="mlp"`` the
        regression network is that of ``FusionRegressor(fusion="intermediate")`` of the
        same size, so that the two differ only by the pretraining.
    head : {{"ridge", "mlp"}}, default="ridge"
        How the head starts. ``"ridge"``: a linear layer set to the ridge regression of the
        standardised labels on what the head reads
        (:class:`~sklearn.linear_model.RidgeCV`, the penalty chosen by efficient
        leave-one-out), plus an MLP branch whose output starts at zero. A probe is then that
        least-squares fit, in closed form and on every labelled row (no epochs, no
        validation rows: ``loss`` must be ``"mse"``, or ``"gaussian_nll"``, whose spread
        is then the fit's residual scatter); fine-tuning starts from it, fitted on the
        rows it trains on, and the MLP branch learns what a linear map misses (LP-FT,
        Kumar et al. 2022). ``"mlp"``: an MLP (linear, GELU, dropout, linear) from a
        random start, trained by gradient in both modes. See Notes.
    encoder_lr_ratio : float in (0, 1], default=0.3
        With ``finetune="full"``, the encoders' and projections' learning rate as a
        fraction of the head's (``lr``), so that fine-tuning keeps more of what pretraining
        learnt; ignored by a probe. See Notes.
    pretrained : ContrastiveRegressor or FrozenEstimator of one, default=None
        A fitted model whose pretraining (encoders, input scaling, scalar keys) stands for
        stage 1: ``fit`` then trains only a new head (and, with ``finetune="full"``, a copy
        of the encoders) on the rows it is given, which may be a few labelled objects while
        the pretraining read them all. Wrap it in :class:`sklearn.frozen.FrozenEstimator`
        so that :func:`~sklearn.base.clone` (cross-validation, studies) keeps it fitted.
        ``projection_dim``, ``pretrain_epochs``, ``temperature`` and the network's
        size are the pretrained's.{_PARAMS}{_DOC_ATTRS}    pretrain_net_ : skorch.NeuralNet
        The pretraining net; ``pretrain_net_.history`` holds the InfoNCE losses per epoch and
        ``pretrain_net_.module_`` the encoders as pretrained (before any fine-tuning).
    n_labelled_ : int
        Rows with a finite ``y`` and (where ``X`` tells the flags) FLAG=0: the rows the
        regression head was trained on (validation rows included).
    temperature_ : float
        The learnt temperature at the end of pretraining.

    Notes
    -----
    ``loss``, ``sample_weight`` and ``max_epochs`` apply to the regression stage only.

    **Why these defaults.** Measured with ``label_efficiency_study`` on the default cube
    (``sklearn-sfr make-cube``: 13,750 objects; 8 px images and 577 px spectra; the default
    network, width 32; pretraining on the 11,550 non-test objects; 2,200 FLAG=0 test
    objects; noise floor 0.564 dex; heads up to 60 epochs with early stopping; 2-core CPU,
    one torch thread per run). Test RMSE with 88 / 880 / 8,800 labels (1 / 10 / 100 % of
    the FLAG=0 training objects; the mean of three random label subsets at 1 and 10 %):

    - ``pretrain_lr=3e-4``, apart from ``lr``: at 1e-3 the validation InfoNCE of the
      default network stayed at chance (4.77; ln 128 = 4.85) until early stopping ended
      pretraining after 11 to 13 epochs, and one fine-tune of three collapsed (1.03 dex).
      On 4,000 objects of the cube, 20 epochs, it fell from 3.88 to 2.44 at 3e-4 and from
      3.87 to 2.59 at 1e-4.
    - ``pretrain_epochs=100``, the cap every network of the studies trains under, with
      early stopping: on the default cube pretraining stopped after 66 epochs, its best
      validation InfoNCE 1.52 at epoch 56, against 1.93 after 20 epochs; with
      ``encoder_lr_ratio=1`` the fine-tuned RMSE went to 0.851 / 0.717 from 0.844 /
      0.731.
    - ``encoder_lr_ratio=0.3``: after that pretraining, with the MLP head of before,
      0.814 / 0.685 / 0.642 dex, against 0.851 / 0.717 / 0.644 at 1 (after 20 epochs:
      0.837 / 0.702 at 0.3, 0.842 / 0.700 at 0.1, 0.844 / 0.731 at 1).
    - ``head="ridge"``: with the MLP head (``head="mlp"``), a probe got 0.910 / 0.694 and
      fine-tuning 0.814 / 0.685 / 0.642. A network head early-stops on a tenth of its few
      labels (9 objects of 88); least squares on the frozen embedding needs none. With
      the ridge head, on the same split (ten label subsets at 1 %, three at 10 %), the
      probe got 0.800 / 0.674 / 0.652 and fine-tuning 0.819 / 0.691 / 0.635. From
      scratch, the same network (``FusionRegressor(fusion="intermediate")``) got 0.889 /
      0.798 / 0.631, late fusion 0.631 with every label, the line-feature tree 0.846 /
      0.713 / 0.677. The best pretrained model against from scratch: -0.089 dex (95 %
      interval -0.128 to -0.049) with 88 labels, -0.124 (-0.226 to -0.022) with 880;
      against the tree: -0.046 (-0.088 to -0.005) and -0.039 (-0.057 to -0.021). With
      every label fine-tuning is 0.6 % above the best network from scratch (+0.004,
      -0.005 to +0.012).
    - Another split, other label subsets and another pretraining (seed 1): probe 0.775 /
      0.670 / 0.651, fine-tuned 0.809 / 0.670 / 0.626, from scratch 0.883 / 0.745 /
      0.618, the tree 0.822 / 0.703 / 0.672. Against from scratch -0.108 (-0.154 to
      -0.061) and -0.075 (-0.102 to -0.048); against the tree -0.047 (-0.077 to -0.017)
      and -0.034 (-0.073 to +0.005); with every label fine-tuning is 1.4 % above from
      scratch (+0.009, +0.000 to +0.017).
    - The MLP branch of the ridge head: a linear head alone fine-tuned to 0.664 with every
      label on the first split, against 0.633 with the branch (prototypes whose ridge fit
      read the validation rows too).
    - ``finetune="full"`` stays the default for its results with many labels; with up to
      about a thousand labels the probe did as well or better on both splits.

    An earlier benchmark (``benchmarks/bench_label_efficiency.py``; a 3,000-object cube,
    width 8, three seeds with 58 / 192 / 1,920 labels) chose the head's input: a probe on
    the encoders got 0.903 / 0.887 / 0.739 dex, on the normalised projections 0.926 /
    0.917 / 0.779. InfoNCE needs only the direction of a projection to pair an image with
    its spectrum, and the L2 normalisation drops the rest, luminosity included, which
    carries the SFR; the encoders' embeddings keep it. It also kept the temperature at
    0.07 (0.2 to start with was better for the probe, worse for fine-tuning) and the batch
    at 128 (256, with half as many steps per epoch, was no better).

    Without a ``"flag"`` key in ``X`` (a SliceDict of ``image`` and ``spectrum`` only) every
    finite label is trusted: pass the FLAG=0 objects' labels only, or NaN for the others.

    The net of stage 2 is a copy of the pretrained module (the pretraining net is kept
    unchanged), so with ``finetune="full"`` :meth:`transform` and :meth:`embed` return the
    fine-tuned projections; ``pretrain_net_.module_.embed`` gives the pretrained ones.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr.neural._contrastive import ContrastiveRegressor
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=48)
    >>> X = SliceDict(
    ...     image=(a[:, None, None, None] + rng.normal(size=(48, 5, 8, 8))).astype("float32"),
    ...     spectrum=(a[:, None] + rng.normal(size=(48, 64))).astype("float32"),
    ...     flag=np.where(np.arange(48) % 8 == 7, 2.0, 0.0))  # every 8th object: FLAG=2
    >>> y = np.where(np.arange(48) < 32, a, np.nan)  # the last 16 objects are unlabelled
    >>> model = ContrastiveRegressor(projection_dim=8, pretrain_epochs=2, max_epochs=2,
    ...                              width=4, embed_dim=8, random_state=0).fit(X, y)
    >>> model.n_labelled_  # 32 labels, 4 of them FLAG=2: pretraining only
    28
    >>> model.predict(X[:2]).shape
    (2,)
    >>> model.transform(X[:2]).shape
    (2, 16)
    >>> model.get_feature_names_out()[:2]
    array(['contrastive0', 'contrastive1'], dtype=object)
    """

    _modalities = ("image", "spectrum")

    _parameter_constraints: dict = {
        **BaseNeuralEstimator._parameter_constraints,
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_lr": [Interval(Real, 0, None, closed="neither")],
        "finetune": [StrOptions(set(_FINETUNES))],
        "temperature": [Interval(Real, *TEMPERATURE_RANGE, closed="both")],
        "head_input": [StrOptions(set(HEAD_INPUTS))],
        "head": [StrOptions(set(HEADS))],
        "encoder_lr_ratio": [Interval(Real, 0, 1, closed="right")],
        "pretrained": [None, HasMethods(["fit", "predict"])],
    }

    def __init__(
        self,
        *,
        projection_dim=64,
        pretrain_epochs=100,
        pretrain_lr=3e-4,
        finetune="full",
        temperature=0.07,
        head_input="encoder",
        head="ridge",
        encoder_lr_ratio=0.3,
        pretrained=None,
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
        super().__init__(
            width=width,
            depth=depth,
            embed_dim=embed_dim,
            norm=norm,
            dropout=dropout,
            loss=loss,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            validation_fraction=validation_fraction,
            patience=patience,
            scalar_keys=scalar_keys,
            augment=augment,
            random_state=random_state,
            device=device,
            precision=precision,
            verbose=verbose,
            net_kwargs=net_kwargs,
        )
        self.projection_dim = projection_dim
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.finetune = finetune
        self.temperature = temperature
        self.head_input = head_input
        self.head = head
        self.encoder_lr_ratio = encoder_lr_ratio
        self.pretrained = pretrained

    # -- the two nets ---------------------------------------------------------------------------
    def _build_pretrain_net(self, seed, n_outputs, n_rows, lazy=False):
        module_kwargs = {
            "image_shape": self.net_shapes_["image"],
            "spectrum_shape": self.net_shapes_["spectrum"],
            "n_outputs": n_outputs,
            **self._encoder_kwargs(),
            "projection_dim": self.projection_dim,
            "temperature": float(self.temperature),
        }
        # The InfoNCE loss often stays flat for a dozen epochs before the encoders find what
        # pairs an image with its spectrum: a learning-rate drop there would stall it.
        stage = self._training_kwargs(
            _valid_split(self.validation_fraction, n_rows, seed),
            self.pretrain_epochs,
            plateau=False,
            lazy=lazy,
        )
        stage["lr"] = self.pretrain_lr  # see pretrain_lr: InfoNCE needs a lower rate
        kwargs = {
            "module": ContrastiveNet,
            "criterion": SymmetricInfoNCELoss,
            # CLIP does not decay its temperature.
            "optimizer__param_groups": [("logit_scale", {"weight_decay": 0.0})],
            **stage,
            **{f"module__{k}": v for k, v in module_kwargs.items()},
            **self._extra_net_kwargs(stage["callbacks"]),
        }
        return _PretrainNet(**kwargs)

    def _build_head_net(self, seed, module, n_rows, lazy=False):
        # module__* keys would make skorch build a new module instead of training this one.
        stage = self._training_kwargs(
            _valid_split(self.validation_fraction, n_rows, seed), self.max_epochs, lazy=lazy
        )
        extra = self._extra_net_kwargs(stage["callbacks"])
        groups = []
        if self.finetune == "full" and self.encoder_lr_ratio != 1:
            # The pretrained encoders move slower than the new head (see encoder_lr_ratio).
            slow = {"lr": self.lr * self.encoder_lr_ratio}
            groups = [(f"{part}.*", slow) for part in _ENCODER_PARTS]
        kwargs = {
            "module": module,  # an initialised module: skorch trains it as it is
            "criterion": make_criterion(self.loss),
            "optimizer__param_groups": groups,
            **stage,
            **{k: v for k, v in extra.items() if not k.startswith("module__")},
        }
        return _HeadNet(**kwargs)

    # -- scikit-learn API -----------------------------------------------------------------------
    @forget_fit_on_failure
    def fit(self, X, y=None, sample_weight=None):
        """Pretrain the encoders on all rows, then train the head on the trusted labels.

        Parameters
        ----------
        X : SliceDict or HiSSCubeDataset
            With keys ``image`` (n, bands, S, S) and ``spectrum`` (n, n_pixels), in physical
            units (scaling is learnt here, on all rows; NaN pixels are masked), and
            optionally ``flag`` (n,), each object's MPA-JHU FLAG (NaN: missing), as
            :func:`~sklearn_sfr.datasets.load_hisscube` gives it: only FLAG=0 rows then
            train the head. A :class:`HiSSCubeDataset` trains out of core, the head on its
            FLAG=0 objects only (open it with ``flag=None`` so that the flagged and
            unlabelled objects help the pretraining).
        y : array-like of shape (n_samples,), default=None
            Target, e.g. log SFR. NaN marks an unlabelled row: it takes part in pretraining
            only, as does a row whose ``X["flag"]`` is not 0 (its label is ignored). At
            least one FLAG=0 row must be labelled. Kept 1-D and reshaped to (n, 1)
            internally, so it can never broadcast against the network output. None takes a
            HiSSCubeDataset's targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-object weights of the regression loss; the weights of the rows the head
            does not train on are ignored. Pretraining is unweighted. Not supported with a
            HiSSCubeDataset.

        Returns
        -------
        self : ContrastiveRegressor
            The fitted estimator.
        """
        self._validate_params()
        if self.head == "ridge" and self.finetune == "probe" and self.loss == "huber":
            raise ValueError(
                "a ridge probe (head='ridge', finetune='probe') is fitted by least squares, "
                "not with loss='huber'; use head='mlp' for a probe trained with that loss"
            )
        lazy = isinstance(X, HiSSCubeDataset)
        n = _n_samples(X)
        if y is None and lazy:
            y = X.y
        if y is None:
            raise ValueError("y is required unless X is a HiSSCubeDataset")
        if lazy and sample_weight is not None:
            raise ValueError("sample_weight is not supported with a HiSSCubeDataset")
        y = check_regression_target(y, n, allow_nan=True)
        # Every row is pretrained on; the head learns only from trusted labels (FLAG=0).
        labelled = _trusted_labels(y, _object_flags(X, n))
        sample_weight = check_sample_weight(sample_weight, n, rows=labelled)
        self.y_mean_, self.y_scale_, y2d = standardise_target(y[labelled])

        source = self._pretrained_source()
        if source is None:
            self.scalar_keys_ = self._resolve_scalar_keys(X)
        else:  # the pretrained model's inputs and scaling, which its encoders learnt on
            self.scalar_keys_ = source.scalar_keys_
            self.input_shapes_, self.scaler_ = source.input_shapes_, source.scaler_
        # Out of core, the scaling is learnt on a sample and items are read while training.
        arrays = self._dataset_sample(X) if lazy else self._arrays(X)
        if source is None:
            self.input_shapes_ = {k: v.shape[1:] for k, v in arrays.items()}
            self.scaler_ = InputScaler().fit(arrays)  # all rows, labelled or not
        else:
            self._check_shapes(arrays)
        sample = self._net_inputs(arrays)
        self.net_shapes_ = {
            k: tuple(v.shape[1:]) for k, v in sample.items() if k not in _NOT_MODALITIES
        }
        inputs = self._scaled_dataset(X) if lazy else sample
        seed = self._seed()
        n_outputs = n_outputs_for(self.loss)

        # Stage 1: contrastive pretraining on every row; the pairing is the label, so y is a
        # placeholder. A pretrained model given as `pretrained` stands for it.
        if source is not None:
            pretrain_net = source.pretrain_net_
        else:
            pretrain_net = self._build_pretrain_net(seed, n_outputs, n, lazy=lazy)
            if self.pretrain_epochs > 0:
                pretrain_net.fit(inputs, None if lazy else np.zeros(n, dtype=np.float32))
            else:  # no pretraining: the encoders keep their random initialisation
                pretrain_net.initialize()
        self.temperature_ = float(pretrain_net.module_.temperature())

        # Stage 2: the head on the trusted labelled rows, on a copy of the pretrained module,
        # with a new head (seeded here: the same whether or not pretraining ran in this fit).
        module = copy.deepcopy(pretrain_net.module_)
        if module.n_outputs != n_outputs:
            raise ValueError(
                f"loss={self.loss!r} needs {n_outputs} outputs but the pretrained model was "
                f"built for {module.n_outputs}; pretrain with the same loss"
            )
        torch.manual_seed(seed)
        module.reset_head(self.head_input, self.head)
        module.output = "regression"
        module.freeze_encoders(self.finetune == "probe")
        if lazy:
            head_inputs = torch.utils.data.Subset(
                self._scaled_dataset(X, _scatter(y2d, labelled)),
                np.flatnonzero(labelled).tolist(),
            )
        else:
            head_inputs = SliceDict(**{k: v[labelled] for k, v in inputs.items()})
        # One pass of the encoders over the labelled rows serves both the head's
        # standardisation and, with head="ridge", its least squares.
        features, scalars, _, _ = _head_design(pretrain_net, module, head_inputs)
        joint = features.double().numpy()
        spread = joint.std(axis=0)
        module.set_head_scaling(joint.mean(axis=0), np.where(spread > 1e-6, spread, 1.0))
        if sample_weight is not None:
            head_inputs["sample_weight"] = sample_weight
        self.n_labelled_ = int(labelled.sum())
        net = self._build_head_net(seed, module, self.n_labelled_, lazy=lazy)
        head_y = None if lazy else y2d
        if self.head == "ridge":
            # Least squares first (see `head`): the probe's whole fit, on every labelled row
            # (the ridge penalty is chosen by leave-one-out, no validation rows needed); the
            # start of fine-tuning, on its training rows only (the validation rows judge it).
            net.initialize()
            n_head = self.n_labelled_
            rows = (
                np.arange(n_head)
                if self.finetune == "probe"
                else _split_rows(net, head_inputs, head_y, n_head)
            )
            if rows is None:  # a split that does not name its rows: read its rows again
                train = net.get_split_datasets(head_inputs, head_y)[0]
                features, scalars, target, weight = _head_design(net, net.module_, train)
            else:
                features = features[rows]
                scalars = None if scalars is None else scalars[rows]
                target = y2d[rows, 0]
                weight = None if sample_weight is None else sample_weight[rows]
            _fit_linear_head(net, features, scalars, target, weight)
        if not (self.head == "ridge" and self.finetune == "probe"):
            # partial_fit trains the net as it is, initialised once (above, or here if not).
            net.partial_fit(head_inputs, head_y)
        # Only once both stages trained: a fit that raised leaves no net behind.
        self.pretrain_net_, self.net_ = pretrain_net, net
        return self

    def _pretrained_source(self):
        """The fitted ContrastiveRegressor of ``pretrained`` (unwrapped from a
        :class:`~sklearn.frozen.FrozenEstimator`), or None."""
        source = self.pretrained
        if source is None:
            return None
        source = getattr(source, "estimator", source)  # a FrozenEstimator holds it there
        if not isinstance(source, ContrastiveRegressor):
            raise TypeError(
                "pretrained must be a fitted ContrastiveRegressor (or a FrozenEstimator of "
                f"one), got {type(source).__name__}"
            )
        check_is_fitted(source, "pretrain_net_")
        return source

    def embed(self, X):
        """The L2-normalised image and spectrum projections, for cross-modal retrieval.

        The cosine similarity of an image's and a spectrum's projections (their dot product)
        is high when they belong to the same object.

        Parameters
        ----------
        X : SliceDict or HiSSCubeDataset
            With keys ``image`` and ``spectrum`` shaped as in ``fit``.

        Returns
        -------
        dict with keys "image" and "spectrum" of ndarrays of shape (n_samples, projection_dim)
            The projections as float64, each row of unit length.
        """
        inputs = self._prediction_inputs(X)  # first: it raises NotFittedError before fit
        z = _embeddings(self.net_, self.net_.module_, inputs)
        for key, values in z.items():
            self._check_finite_output(values, f"{key} embeddings")
        return z

    def transform(self, X):
        """The joint embedding the regression head reads (before its standardisation).

        With ``head_input="encoder"`` the image and the spectrum encoders' embeddings, with
        ``"projection"`` their normalised projections (each half of unit length, so that the
        Euclidean distance between two rows measures how unlike both their images and their
        spectra are), concatenated, the image first.

        Parameters
        ----------
        X : SliceDict or HiSSCubeDataset
            With keys ``image`` and ``spectrum`` shaped as in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, 2 * embed_dim) or (n_samples, 2 * projection_dim)
            The joint embedding as float64; columns ``contrastive0 ...``
            (:meth:`get_feature_names_out`).
        """
        inputs = self._prediction_inputs(X)  # first: it raises NotFittedError before fit
        joint = _embeddings(self.net_, self.net_.module_, inputs, "features")
        self._check_finite_output(joint, "embeddings")
        return joint

    def get_feature_names_out(self, input_features=None):
        """Get the names of the :meth:`transform` columns: ``contrastive0``, ``contrastive1``...

        Parameters
        ----------
        input_features : None
            Ignored (the inputs are images and spectra, not named columns).

        Returns
        -------
        feature_names_out : ndarray of str objects, of shape (n_features_out,)
            One name per column of :meth:`transform`'s output.
        """
        check_is_fitted(self, "net_")
        n = self.net_.module_.head_shift.numel()
        return np.asarray([f"contrastive{i}" for i in range(n)], dtype=object)
