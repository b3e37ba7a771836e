"""The neural regressors: image only, spectrum only, and the four fusion strategies."""

from __future__ import annotations

import re
from numbers import Integral

import numpy as np
from sklearn.base import RegressorMixin

from ..utils._multimodal import is_multimodal
from ..utils._sklearn import Interval, StrOptions
from ._base import BaseNeuralEstimator, forget_fit_on_failure
from ._lazy import HiSSCubeDataset
from ._losses import n_outputs_for, split_log_var
from ._modules import FUSIONS
from ._targets import check_regression_target, check_sample_weight, standardise_target


def _n_samples(X):
    if isinstance(X, HiSSCubeDataset):
        return len(X)
    # is_multimodal refuses a plain dict (whose len() would count keys, not samples).
    return len(X) if is_multimodal(X) else np.asarray(X).shape[0]


class _NeuralRegressor(RegressorMixin, BaseNeuralEstimator):
    """Regression on a standardised target; ``predict`` undoes the standardisation."""

    @forget_fit_on_failure
    def fit(self, X, y=None, sample_weight=None):
        """Train the network.

        Parameters
        ----------
        X : SliceDict, ndarray or HiSSCubeDataset
            Inputs with the estimator's modalities (a bare array for a single-modality
            estimator). Physical units are fine: scaling is learnt here. A
            :class:`HiSSCubeDataset` trains out of core, reading items from the file.
        y : array-like of shape (n_samples,), default=None
            Target, e.g. log SFR. Kept 1-D and reshaped to (n, 1) internally, so it can never
            broadcast against the network output. None takes a HiSSCubeDataset's targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-object weights of the loss (e.g. inverse label variance from P16/P84): finite,
            non-negative, within float32's range, with a positive sum. Only their ratios
            matter.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        n = _n_samples(X)
        if y is None and isinstance(X, HiSSCubeDataset):
            y = X.y
        if y is None:
            raise ValueError("y is required unless X is a HiSSCubeDataset")
        y = check_regression_target(y, n)
        sample_weight = check_sample_weight(sample_weight, n)
        self.y_mean_, self.y_scale_, y2d = standardise_target(y)
        return self._fit_net(X, y2d, n_outputs_for(self.loss), sample_weight)

    def predict(self, X, return_std=False):
        """Predict the target (and its standard deviation with ``loss="gaussian_nll"``).

        Parameters
        ----------
        X : SliceDict, ndarray or HiSSCubeDataset
            Inputs with the modalities, shapes and keys seen in ``fit``.
        return_std : bool, default=False
            Also return the predicted per-object standard deviation.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predicted target, in the units of the ``y`` seen in ``fit``.
        y_std : ndarray of shape (n_samples,)
            The predicted standard deviation; only with ``return_std=True``.
        """
        if return_std and self.loss != "gaussian_nll":
            raise ValueError("return_std=True needs loss='gaussian_nll'")
        out = self._forward(X)
        mean = out[:, 0] * self.y_scale_ + self.y_mean_
        if not return_std:
            return mean
        import torch

        log_var = split_log_var(torch.as_tensor(out)).numpy()[:, 0]
        return mean, np.exp(0.5 * log_var) * self.y_scale_


_DOC_PARAMS = """
    width : int, default=32
        Channels of the first convolution block (doubling per block, capped).
    depth : int, default=3
        Convolution blocks of the image encoder (the spectrum encoder uses one more).
    embed_dim : int, default=64
        Size of each modality's embedding.
    norm : {"batch", "group", "layer", "none"}, default="group"
        Normalisation inside the encoders. GroupNorm by default: it behaves the same in
        training and prediction, whereas BatchNorm's running statistics lag behind when an
        epoch has few batches (small study samples) and make early stopping misfire.
    dropout : float, default=0.1
        Dropout rate of the encoders and heads while training.
    loss : {"mse", "huber", "gaussian_nll"}, default="mse"
        ``"gaussian_nll"`` learns a per-object uncertainty: ``predict(X, return_std=True)``.
    max_epochs : int, default=100
        Most passes over the training data (early stopping may stop sooner).
    batch_size : int, default=128
        Samples per gradient step.
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW weight decay.
    validation_fraction : float, default=0.1
        Held out of the training data for early stopping (0 disables early stopping).
    patience : int, default=10
        Epochs without a better validation loss before training stops; the best weights are
        restored. After ``patience // 3`` such epochs the learning rate drops to 30 %.
    scalar_keys : "auto", list of str or None, default="auto"
        SliceDict keys of per-object numbers the heads read next to the embeddings. ``"auto"``
        takes ``redshift`` when X holds it (as :func:`~sklearn_sfr.datasets.load_hisscube`'s
        X and a HiSSCubeDataset do): a CNN's pooled features barely know where a line fell in
        the spectrum, and without the distance neither a line flux nor an image's brightness
        is a luminosity. None reads the images/spectra only.
    augment : {"dihedral", "flip"} or None, default="dihedral"
        Random symmetry of each training image: one of the 8 rotations by multiples of 90
        degrees and reflections (``"dihedral"``: a sky cutout has no up or left, so this
        multiplies the training images eightfold and curbs overfitting), a left-right mirror
        (``"flip"``) or none. Predictions always see the images as they are.
    random_state : int, RandomState or None, default=None
        Seeds weights, shuffling, dropout and the validation split.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; any torch device string works.
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` computes the forward passes with bfloat16 mixed precision
        (:func:`torch.autocast`; the weights and the loss stay float32): faster where the
        hardware has bfloat16 arithmetic (recent x86 CPUs with AVX-512 BF16 or AMX, NVIDIA
        GPUs from Ampere on), at a slightly coarser rounding. The user guide's "Scaling out"
        page gives what it measured.
    verbose : int, default=0
        1 shows a progress bar over the epochs with the training and validation loss (on
        stderr); 2 shows skorch's epoch table and its per-batch bar instead.
    net_kwargs : dict, default=None
        Extra keyword arguments for the :class:`skorch.NeuralNet`. Its ``callbacks`` are
        added to the estimator's own (early stopping, progress bar), not put in their place.
        Its ``max_epochs``, ``batch_size``, ``lr``, ``optimizer__lr``,
        ``optimizer__weight_decay`` and ``iterator_*__batch_size`` are checked like the
        estimator's own parameters (``batch_size=-1``, one batch of all the data, is allowed).
"""


def _doc_params(names, **replaced):
    """The entries of ``names`` from :data:`_DOC_PARAMS`, in that order, each replaced by
    ``replaced[name]`` where given (a whole entry, its first line included)."""
    entries = {}
    for entry in re.split(r"\n(?=    \w+ : )", _DOC_PARAMS.strip("\n")):
        entries[entry.split(" : ")[0].strip()] = entry
    entries.update(replaced)
    return "\n" + "\n".join(entries[name] for name in names) + "\n"


_DOC_ATTRS = """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network (``net_.history`` holds the losses per epoch).
    scaler_ : object
        Input scaling learnt in ``fit``.
    input_shapes_ : dict
        Shape of each modality seen in ``fit`` (without the sample axis).
    scalar_keys_ : tuple of str
        The per-object scalars the heads read (``scalar_keys`` resolved).
    y_mean_, y_scale_ : float
        Standardisation of the target.
"""


class ImageRegressor(_NeuralRegressor):
    __doc__ = f"""Regress a target from ugriz image cutouts with a 2-D CNN.

    Takes a SliceDict with an ``image`` key or a bare (n, bands, S, S) array, of any size from
    8 to 64 pixels, in any flux calibration (scaled internally, NaN pixels masked).

    Parameters
    ----------{_DOC_PARAMS}{_DOC_ATTRS}
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.neural import ImageRegressor
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(64, 5, 8, 8)).astype("float32")
    >>> y = images[:, 2, 3:5, 3:5].mean(axis=(1, 2))
    >>> model = ImageRegressor(max_epochs=3, random_state=0).fit(images, y)
    >>> model.predict(images[:2]).shape
    (2,)
    """

    _modalities = ("image",)


class SpectrumRegressor(_NeuralRegressor):
    __doc__ = f"""Regress a target from spectra with a 1-D CNN.

    Takes a SliceDict with a ``spectrum`` key or a bare (n, n_pixels) array of any length, in
    physical flux units (scaled internally; NaN pixels are masked, not propagated).

    Parameters
    ----------{_DOC_PARAMS}{_DOC_ATTRS}
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_sfr.neural import SpectrumRegressor
    >>> rng = np.random.default_rng(0)
    >>> spectra = rng.normal(1e-17, 1e-18, size=(64, 577))
    >>> y = spectra[:, 300] * 1e17
    >>> SpectrumRegressor(max_epochs=3, random_state=0).fit(spectra, y).predict(spectra[:2]).shape
    (2,)
    """

    _modalities = ("spectrum",)


class FusionRegressor(_NeuralRegressor):
    __doc__ = f"""Regress a target from images and spectra together.

    Four fusion strategies (see :class:`~sklearn_sfr.neural._modules.FusionNet`):
    ``"early"`` joins the modalities at the input (the spectrum projected into extra image
    channels), ``"intermediate"`` concatenates the two embeddings into a shared head,
    ``"late"`` combines one prediction per modality with learned weights, and
    ``"cross_attention"`` lets image patch tokens and spectrum segment tokens attend to each
    other before a shared head.

    Parameters
    ----------
    fusion : {{"early", "intermediate", "late", "cross_attention"}}, default="intermediate"
        How the modalities are combined (see above).
    n_heads : int, default=4
        Attention heads of ``"cross_attention"``.
    early_channels : int, default=4
        Image channels the spectrum is projected into by ``"early"``.{_DOC_PARAMS}{_DOC_ATTRS}
    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr import FusionRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = SliceDict(image=rng.normal(size=(64, 5, 8, 8)).astype("float32"),
    ...               spectrum=rng.normal(size=(64, 577)).astype("float32"))
    >>> y = X["image"][:, 2].mean(axis=(1, 2)) + X["spectrum"][:, 100]
    >>> model = FusionRegressor(fusion="late", max_epochs=3, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    """

    _modalities = ("image", "spectrum")

    _parameter_constraints: dict = {
        **BaseNeuralEstimator._parameter_constraints,
        "fusion": [StrOptions(set(FUSIONS))],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "early_channels": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        fusion="intermediate",
        *,
        n_heads=4,
        early_channels=4,
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
        self.fusion = fusion
        self.n_heads = n_heads
        self.early_channels = early_channels

    def _module_kwargs(self):
        return {
            "fusion": self.fusion,
            "n_heads": self.n_heads,
            "early_channels": self.early_channels,
        }
