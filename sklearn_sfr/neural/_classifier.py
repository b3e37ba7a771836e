"""FusionClassifier: the fusion architectures for classification (e.g. the Scene study)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from torch import nn

from ..utils._multimodal import is_multimodal
from ..utils._sklearn import Interval, StrOptions
from ._base import BaseNeuralEstimator, forget_fit_on_failure
from ._estimators import _doc_params
from ._modules import FUSIONS
from ._targets import check_sample_weight


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """Cross-entropy per sample (the net reduces it, with sample weights)."""

    def __init__(self):
        super().__init__(reduction="none")


_PARAMS = _doc_params(
    ["width", "depth", "embed_dim", "norm", "dropout", "max_epochs", "batch_size", "lr",
     "weight_decay", "validation_fraction", "patience", "scalar_keys", "augment",
     "random_state", "device", "precision", "verbose", "net_kwargs"],
    augment="""\
    augment : {"dihedral", "flip"} or None, default=None
        Random symmetry of each training image. None by default: unlike a sky cutout, a scene
        has an up (the horizon); ``"flip"`` mirrors left-right only.""",
)  # fmt: skip


class FusionClassifier(ClassifierMixin, BaseNeuralEstimator):
    __doc__ = f"""Classify from an image and a 1-D modality (a spectrum, MFCC audio) together.

    The same encoders and fusion strategies as :class:`FusionRegressor`, trained with
    cross-entropy. The two inputs are named by SliceDict key, so the Scene study's
    ``image`` (n, 3, H, W) and ``audio`` (n, 104) work as well as SDSS images and spectra; set
    one key to None for a single-modality classifier.

    Parameters
    ----------
    fusion : {{"early", "intermediate", "late", "cross_attention"}}, default="intermediate"
        How the modalities are combined, as for :class:`FusionRegressor`.
    image_key : str or None, default="image"
        SliceDict key of the (n, channels, H, W) images.
    sequence_key : str or None, default="spectrum"
        SliceDict key of the (n, length) 1-D modality.
    n_heads : int, default=4
        Attention heads of ``"cross_attention"``.
    early_channels : int, default=4
        Image channels the 1-D modality is projected into by ``"early"``.{_PARAMS}
    Attributes
    ----------
    classes_ : ndarray
        Class labels seen in ``fit``.
    net_ : skorch.NeuralNet
        The trained network.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.helper import SliceDict
    >>> from sklearn_sfr.neural import FusionClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = SliceDict(image=rng.normal(size=(60, 3, 16, 16)).astype("float32"),
    ...               audio=rng.normal(size=(60, 104)).astype("float32"))
    >>> y = np.where(X["audio"][:, 0] > 0, "outdoors", "indoors")
    >>> clf = FusionClassifier(sequence_key="audio", max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape, clf.classes_.tolist()
    ((2, 2), ['indoors', 'outdoors'])
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in BaseNeuralEstimator._parameter_constraints.items() if k != "loss"},
        "fusion": [StrOptions(set(FUSIONS))],
        "image_key": [str, None],
        "sequence_key": [str, None],
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        "early_channels": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        fusion="intermediate",
        *,
        image_key="image",
        sequence_key="spectrum",
        n_heads=4,
        early_channels=4,
        width=32,
        depth=3,
        embed_dim=64,
        norm="group",
        dropout=0.1,
        max_epochs=100,
        batch_size=128,
        lr=1e-3,
        weight_decay=1e-4,
        validation_fraction=0.1,
        patience=10,
        scalar_keys="auto",
        augment=None,
        random_state=None,
        device="auto",
        precision="float32",
        verbose=0,
        net_kwargs=None,
    ):
        # Every parameter is stored as given (scikit-learn's __init__ contract); the base's
        # ``loss`` is not one of them: classification always uses cross-entropy.
        self.width = width
        self.depth = depth
        self.embed_dim = embed_dim
        self.norm = norm
        self.dropout = dropout
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
        self.fusion = fusion
        self.image_key = image_key
        self.sequence_key = sequence_key
        self.n_heads = n_heads
        self.early_channels = early_channels

    def _input_keys(self):
        keys = {"image": self.image_key, "spectrum": self.sequence_key}
        keys = {role: key for role, key in keys.items() if key is not None}
        if not keys:
            raise ValueError("image_key and sequence_key cannot both be None")
        return keys

    def _module_kwargs(self):
        return {
            "fusion": self.fusion,
            "n_heads": self.n_heads,
            "early_channels": self.early_channels,
        }

    def _criterion(self):
        return CrossEntropyLoss

    @forget_fit_on_failure
    def fit(self, X, y, sample_weight=None):
        """Train the classifier.

        Parameters
        ----------
        X : SliceDict or ndarray
            Inputs under ``image_key`` and ``sequence_key`` (a bare array when only one key
            is set), in any units (scaling is learnt here).
        y : array-like of shape (n_samples,)
            Class labels (strings or integers).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the loss; only their ratios matter.

        Returns
        -------
        self : FusionClassifier
            The fitted classifier.
        """
        n = len(X) if is_multimodal(X) else np.asarray(X).shape[0]
        if n == 0:
            raise ValueError("X has no samples; at least one is required")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y must be 1-D with {n} labels, got shape {y.shape}")
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class {self.classes_.tolist()[0]!r}; need at least two"
            )
        codes = encoder.transform(y).astype(np.int64)
        sample_weight = check_sample_weight(sample_weight, n)
        return self._fit_net(X, codes, len(self.classes_), sample_weight)

    def predict_proba(self, X):
        """Predict the class probabilities.

        Parameters
        ----------
        X : SliceDict or ndarray
            Inputs with the keys and shapes seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``; each row sums to 1.
        """
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predict the most probable class of each sample.

        Parameters
        ----------
        X : SliceDict or ndarray
            Inputs with the keys and shapes seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._forward(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(logits, axis=1)]
