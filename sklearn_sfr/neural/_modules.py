"""Torch modules: an image encoder, a spectrum encoder and one fusion network for them all.

The skorch-backed estimators build these modules; they never appear in a user's pipeline
directly. Every input is channels-first: images ``(B, C, S, S)`` (the bands plus, say, a
validity-mask channel) and spectra ``(B, C, L)`` (flux plus a mask channel). ``FusionNet``
takes them as keyword arguments named like the keys of a ``skorch.helper.SliceDict``, because
skorch calls ``module(**X)``.
"""

from __future__ import annotations

import torch
from torch import nn

#: The ways :class:`FusionNet` can combine an image and a spectrum.
FUSIONS = ("early", "intermediate", "late", "cross_attention")

#: Random image symmetries applied while training (:func:`augment_images`).
AUGMENTATIONS = ("dihedral", "flip")

#: Normalisation layers an encoder can use.
NORMS = ("batch", "group", "layer", "none")

#: Most points the early-fusion projector reads from a spectrum; pooling down to this keeps its
#: first linear layer small whatever the spectrum's length.
EARLY_MAX_POINTS = 256

#: Most tokens a spectrum contributes to cross-attention (attention cost grows with T^2).
MAX_SPECTRUM_TOKENS = 64

# Positional embeddings start small, as in ViT, so they do not swamp the content at first.
_POS_INIT_STD = 0.02


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_norm(norm):
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def _check_dropout(dropout):
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def _n_groups(channels, max_groups=8):
    """The largest divisor of ``channels`` not above ``max_groups`` (GroupNorm needs a divisor)."""
    return max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)


def _norm_layer(norm, channels, dim):
    """A normalisation layer over ``channels`` for ``dim``-D feature maps (1 or 2)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels) if dim == 2 else nn.BatchNorm1d(channels)
    if norm == "group":
        return nn.GroupNorm(_n_groups(channels), channels)
    if norm == "layer":
        # GroupNorm with one group normalises over channels and positions together: a
        # LayerNorm for feature maps that, unlike nn.LayerNorm, does not fix the map's size.
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _conv_norm_gelu(in_channels, out_channels, kernel_size, norm, dim, stride=1):
    """conv-norm-GELU; the padding keeps the size (divided by ``stride``)."""
    conv = nn.Conv2d if dim == 2 else nn.Conv1d
    # A bias right before a normalisation layer is cancelled by its mean subtraction.
    bias = norm == "none"
    return [
        conv(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=bias,
        ),
        _norm_layer(norm, out_channels, dim),
        nn.GELU(),
    ]


def _cnn(
    in_channels, size, width, depth, kernel_size, norm, dim, min_size, stem_stride=1, block_convs=2
):
    """The convolutional trunk shared by both encoders.

    A stem (conv-norm-GELU, ``in_channels -> width``) at full resolution, then ``depth``
    blocks, each a max-pool by 2 (skipped once that would leave fewer than ``min_size``
    positions) followed by conv-norm-GELU-conv-norm-GELU with ``min(width * 2**i, 4 * width)``
    channels. Pooling at the start of each block rather than its end means the wide blocks run
    on maps half as long (a quarter as large for images), which halves to quarters the cost on
    a CPU, while the stem still sees every pixel, so narrow emission lines and 8 px cutouts
    keep their detail. Max rather than average pooling keeps narrow lines from being diluted.

    Returns the ``nn.Sequential``, the final size (side or length) and the final channels.
    """
    pool = nn.MaxPool2d if dim == 2 else nn.MaxPool1d
    layers = _conv_norm_gelu(in_channels, width, kernel_size, norm, dim, stride=stem_stride)
    size = (size + stem_stride - 1) // stem_stride
    channels = width
    for i in range(depth):
        if size // 2 >= min_size:
            layers.append(pool(2))
            size //= 2
        out = min(width * 2**i, 4 * width)
        for k in range(block_convs):
            layers += _conv_norm_gelu(channels if k == 0 else out, out, kernel_size, norm, dim)
        channels = out
    return nn.Sequential(*layers), size, channels


def _check_input(x, expected, name):
    """``x`` as a float tensor of shape ``(B, *expected)``, else a ValueError naming ``name``."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim == len(expected) and expected[0] == 1:
        x = x.unsqueeze(1)  # a bare (B, L) spectrum or (B, S, S) image is one channel
    if tuple(x.shape[1:]) != tuple(expected) or x.ndim != len(expected) + 1:
        shape = ", ".join(str(s) for s in expected)
        raise ValueError(f"{name} must have shape (n_samples, {shape}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    return x


def append_scalars(embedding, scalars, n_scalars):
    """``embedding`` (B, E) with the per-object ``scalars`` (B, n_scalars) appended: what a
    head reads. With ``n_scalars=0`` the embedding is returned as it is."""
    if not n_scalars:
        return embedding
    if scalars is None:
        raise ValueError(
            f"the net was built with n_scalars={n_scalars} but no 'scalars' input was given"
        )
    scalars = torch.as_tensor(scalars).to(embedding)
    if scalars.ndim == 1:
        scalars = scalars.unsqueeze(1)
    if tuple(scalars.shape) != (len(embedding), n_scalars):
        raise ValueError(
            f"scalars must have shape (n_samples, {n_scalars}), got {tuple(scalars.shape)}"
        )
    return torch.cat([embedding, scalars], dim=1)


def augment_images(x, augment):
    """A random symmetry of each image of the batch ``x`` (B, C, S, S), drawn from torch's RNG.

    ``"dihedral"``: one of the 8 rotations by multiples of 90 degrees and reflections, which
    leave a sky cutout's physics unchanged (the sky has no up or left) and multiply the training
    set eightfold. ``"flip"``: left-right mirror only (scenes with a horizon). ``None``: ``x``.
    """
    if augment is None:
        return x
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS} or None, got {augment!r}")

    def maybe(transform, x):
        chosen = torch.rand(len(x), device=x.device) < 0.5
        return torch.where(chosen[:, None, None, None], transform(x), x)

    x = maybe(lambda t: t.flip(-1), x)
    if augment == "dihedral":
        x = maybe(lambda t: t.flip(-2), x)
        x = maybe(lambda t: t.transpose(-1, -2), x)
    return x


def _mlp_head(in_features, hidden, n_outputs, dropout):
    """Linear-GELU-Dropout-Linear: the regression head on top of an embedding."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_outputs),
    )


class LinearPlusMLPHead(nn.Module):
    """A linear layer plus an MLP branch (:func:`_mlp_head`) whose last layer starts at zero.

    At the start the head is its linear part alone, so setting that to a least-squares fit
    (:class:`~sklearn_sfr.neural.ContrastiveRegressor`'s ``head="ridge"``) makes training
    start from it, the MLP branch then learning what a linear map of the embedding misses.

    Parameters
    ----------
    in_features, hidden, n_outputs : int
    dropout : float
        Dropout of the MLP branch.
    """

    def __init__(self, in_features, hidden, n_outputs, dropout):
        super().__init__()
        self.linear = nn.Linear(in_features, n_outputs)
        self.mlp = _mlp_head(in_features, hidden, n_outputs, dropout)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


class ImageEncoder(nn.Module):
    """A small 2-D CNN that turns multi-band cutouts into an embedding or a set of tokens.

    A full-resolution stem (conv3x3-norm-GELU to ``width`` channels), then ``depth`` blocks:
    a 2x2 max-pool, only while the map stays at least 2 px wide (so even ``depth=3`` on 8 px
    cutouts works: 8 -> 4 -> 2 -> 2), then conv3x3-norm-GELU-conv3x3-norm-GELU with
    ``min(width * 2**i, 4 * width)`` channels in block ``i``. The final map goes through
    channel dropout, then global average pooling and a linear layer (:meth:`forward`), or,
    position by position, through the same linear layer plus a learned 2-D positional
    embedding (:meth:`tokens`).

    Parameters
    ----------
    in_channels : int
        Channels of the input (bands, plus any mask channels).
    image_size : int
        Side of the square input in pixels; fixes how often the blocks downsample.
    width : int, default=32
        Channels of the stem and the first block.
    depth : int, default=3
        Number of blocks (and so of downsamplings, where the size allows them).
    norm : {"batch", "group", "layer", "none"}, default="batch"
        Normalisation after each convolution; "layer" is ``GroupNorm(1, C)``.
    dropout : float, default=0.1
        Channel-dropout rate on the final feature map.
    embed_dim : int, default=64
        Size of the embedding and of each token.
    augment : {"dihedral", "flip"} or None, default=None
        Random symmetry applied to each image in training mode (:func:`augment_images`).

    Attributes
    ----------
    feature_size : int
        Side of the final feature map; :meth:`tokens` returns ``feature_size**2`` tokens.
    out_channels : int
        Channels of the final feature map.

    Examples
    --------
    >>> import torch
    >>> from sklearn_sfr.neural._modules import ImageEncoder
    >>> enc = ImageEncoder(in_channels=6, image_size=8, embed_dim=16)
    >>> x = torch.zeros(2, 6, 8, 8)
    >>> enc(x).shape
    torch.Size([2, 16])
    >>> enc.tokens(x).shape
    torch.Size([2, 4, 16])
    """

    def __init__(
        self,
        in_channels,
        image_size,
        width=32,
        depth=3,
        norm="batch",
        dropout=0.1,
        embed_dim=64,
        augment=None,
    ):
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(image_size, "image_size", minimum=2)
        if augment is not None and augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS} or None, got {augment!r}")
        self.augment = augment
        _check_positive_int(width, "width")
        _check_positive_int(depth, "depth")
        _check_positive_int(embed_dim, "embed_dim")
        _check_norm(norm)
        _check_dropout(dropout)
        self.in_channels = in_channels
        self.image_size = image_size

        # Pooling stops at 2 px, so even depth 3 on 8 px cutouts works (8 -> 4 -> 2 -> 2).
        self.features, size, channels = _cnn(
            in_channels, image_size, width, depth, 3, norm, dim=2, min_size=2
        )
        self.feature_size = size
        self.out_channels = channels
        # Channel dropout: element-wise dropout would be averaged away by the pooling.
        self.dropout = nn.Dropout2d(dropout)
        # One projection for both views: projecting the mean equals the mean of the projections.
        self.proj = nn.Linear(channels, embed_dim)
        # Factorised 2-D position (row + column): few parameters, still tells rows from columns.
        self.pos_row = nn.Parameter(torch.randn(size, 1, embed_dim) * _POS_INIT_STD)
        self.pos_col = nn.Parameter(torch.randn(1, size, embed_dim) * _POS_INIT_STD)

    def _feature_map(self, x):
        x = _check_input(x, (self.in_channels, self.image_size, self.image_size), "image")
        # Match the weights' dtype and device: float64 or NumPy input would otherwise fail in conv.
        x = x.to(self.proj.weight)
        if self.training:
            x = augment_images(x, self.augment)
        return self.dropout(self.features(x))

    def forward(self, x):
        """Embed a batch of images.

        Parameters
        ----------
        x : Tensor of shape (B, in_channels, image_size, image_size)
            The images, scaled.

        Returns
        -------
        Tensor of shape (B, embed_dim)
            One embedding per image.
        """
        return self.proj(self._feature_map(x).mean(dim=(2, 3)))

    def tokens(self, x):
        """The final feature map's positions as tokens, with their positional embedding.

        Parameters
        ----------
        x : Tensor of shape (B, in_channels, image_size, image_size)
            The images, scaled.

        Returns
        -------
        Tensor of shape (B, feature_size**2, embed_dim)
            Tokens in row-major order.
        """
        tok = self.proj(self._feature_map(x).flatten(2).transpose(1, 2))
        return tok + (self.pos_row + self.pos_col).flatten(0, 1)


class SpectrumEncoder(nn.Module):
    """A 1-D CNN that turns spectra into an embedding or a set of tokens.

    A stem conv7-norm-GELU to ``width`` channels that reads every pixel with stride 4, then
    ``depth`` blocks: a max-pool by 2 (which keeps narrow emission lines that an average would
    dilute), only while the length stays at least 8, then one conv7-norm-GELU with
    ``min(width * 2**i, 4 * width)`` channels in block ``i``. Any input length works.
    :meth:`forward` applies channel dropout, global average pooling and a linear layer;
    :meth:`tokens` average-pools the final map to at most 64 positions, projects each with the
    same linear layer and adds a learned positional embedding.

    Parameters
    ----------
    in_channels : int
        Channels of the input (flux, plus any mask channels).
    length : int
        Number of pixels of the input.
    width : int, default=32
        Channels of the stem and the first block.
    depth : int, default=4
        Number of blocks (and so of downsamplings, where the length allows them).
    norm : {"batch", "group", "layer", "none"}, default="batch"
        Normalisation after each convolution; "layer" is ``GroupNorm(1, C)``.
    dropout : float, default=0.1
        Channel-dropout rate on the final feature map.
    embed_dim : int, default=64
        Size of the embedding and of each token.

    Attributes
    ----------
    feature_length : int
        Length of the final feature map.
    n_tokens : int
        Number of tokens :meth:`tokens` returns, ``min(feature_length, 64)``.
    out_channels : int
        Channels of the final feature map.

    Examples
    --------
    >>> import torch
    >>> from sklearn_sfr.neural._modules import SpectrumEncoder
    >>> enc = SpectrumEncoder(in_channels=2, length=577, embed_dim=16)
    >>> x = torch.zeros(3, 2, 577)
    >>> enc(x).shape
    torch.Size([3, 16])
    >>> enc.tokens(x).shape
    torch.Size([3, 9, 16])
    """

    kernel_size = 7
    #: The stem convolution reads every pixel (its kernel is wider than its stride) but keeps
    #: every fourth output, and each block has one convolution: the stem's kernel still sees
    #: narrow emission lines at full resolution, and every later layer runs on a map a quarter
    #: as long. Stride 4 rather than 2 halved the encoder's cost and did not raise the test
    #: RMSE on the synthetic cube (benchmarks/bench_time_to_quality.py, 16 px images and
    #: 1155 px spectra: 0.706 dex against 0.747 after 30 epochs).
    stem_stride = 4
    block_convs = 1

    def __init__(
        self,
        in_channels,
        length,
        width=32,
        depth=4,
        norm="batch",
        dropout=0.1,
        embed_dim=64,
    ):
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(length, "length")
        _check_positive_int(width, "width")
        _check_positive_int(depth, "depth")
        _check_positive_int(embed_dim, "embed_dim")
        _check_norm(norm)
        _check_dropout(dropout)
        self.in_channels = in_channels
        self.length = length

        self.features, size, channels = _cnn(
            in_channels,
            length,
            width,
            depth,
            self.kernel_size,
            norm,
            dim=1,
            min_size=8,
            stem_stride=self.stem_stride,
            block_convs=self.block_convs,
        )
        self.feature_length = size
        self.n_tokens = min(size, MAX_SPECTRUM_TOKENS)
        self.out_channels = channels
        self.dropout = nn.Dropout1d(dropout)
        self.token_pool = nn.AdaptiveAvgPool1d(self.n_tokens)
        self.proj = nn.Linear(channels, embed_dim)
        self.pos = nn.Parameter(torch.randn(self.n_tokens, embed_dim) * _POS_INIT_STD)

    def _feature_map(self, x):
        x = _check_input(x, (self.in_channels, self.length), "spectrum")
        x = x.to(self.proj.weight)
        return self.dropout(self.features(x))

    def forward(self, x):
        """Embed a batch of spectra.

        Parameters
        ----------
        x : Tensor of shape (B, in_channels, length)
            ``(B, length)`` is accepted too when ``in_channels == 1``.

        Returns
        -------
        Tensor of shape (B, embed_dim)
            One embedding per spectrum.
        """
        return self.proj(self._feature_map(x).mean(dim=2))

    def tokens(self, x):
        """The final feature map, pooled to ``n_tokens`` positions, as tokens.

        Parameters
        ----------
        x : Tensor of shape (B, in_channels, length)
            The spectra, scaled.

        Returns
        -------
        Tensor of shape (B, n_tokens, embed_dim)
            Tokens in wavelength order.
        """
        tok = self.proj(self.token_pool(self._feature_map(x)).transpose(1, 2))
        return tok + self.pos


class _EarlyProjector(nn.Module):
    """Spectrum -> ``channels`` image-sized maps, for early fusion (see :class:`FusionNet`)."""

    def __init__(self, in_channels, length, channels, image_size, hidden):
        super().__init__()
        self.in_channels, self.length = in_channels, length
        self.channels, self.image_size = channels, image_size
        points = min(length, EARLY_MAX_POINTS)
        self.pool = nn.AdaptiveAvgPool1d(points)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels * points, hidden),
            nn.GELU(),
            nn.Linear(hidden, channels * image_size * image_size),
        )

    def forward(self, x):
        x = _check_input(x, (self.in_channels, self.length), "spectrum")
        x = x.to(self.mlp[0].weight)
        maps = self.mlp(self.pool(x).flatten(1))
        return maps.view(-1, self.channels, self.image_size, self.image_size)


class _CrossAttentionBlock(nn.Module):
    """Query tokens attend to context tokens: attention + residual + LayerNorm, then an FFN."""

    def __init__(self, embed_dim, n_heads, dropout):
        super().__init__()
        self.attention = nn.MultiheadAttention(
            embed_dim, n_heads, dropout=dropout, batch_first=True
        )
        self.norm1 = nn.LayerNorm(embed_dim)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dim, 2 * embed_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * embed_dim, embed_dim),
        )
        self.norm2 = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, context):
        attended, _ = self.attention(query, context, context, need_weights=False)
        x = self.norm1(query + self.dropout(attended))
        return self.norm2(x + self.dropout(self.ffn(x)))


class FusionNet(nn.Module):
    """One network for images, spectra, or both, fused in one of four ways.

    With both ``image_shape`` and ``spectrum_shape`` the net fuses the two modalities as
    ``fusion`` says:

    ``"early"``
        The spectrum is average-pooled to at most 256 points per channel, flattened, and a
        small MLP (``Linear -> GELU -> Linear``) maps it to ``early_channels`` maps of the
        image's size. They are concatenated to the image's channels and ONE image encoder plus
        an MLP head sees the result. There is no separate spectrum encoder.
    ``"intermediate"``
        An image encoder and a spectrum encoder each give an ``embed_dim`` embedding; the two
        are concatenated and a shared MLP head predicts.
    ``"late"``
        Each modality has its own encoder and head, each predicting ``n_outputs`` values. The
        output is their weighted sum with learned weights: a softmax over two logits, one pair
        per output (see :meth:`late_weights`); the weights start equal.
    ``"cross_attention"``
        The encoders' tokens (:meth:`ImageEncoder.tokens`, :meth:`SpectrumEncoder.tokens`)
        attend to each other in both directions: image tokens query the spectrum tokens and
        spectrum tokens query the image tokens (multi-head attention, residual + LayerNorm,
        then a feed-forward layer with residual + LayerNorm, each direction with its own
        weights). The tokens are mean-pooled per modality, concatenated, and an MLP head
        predicts.

    With only one of the shapes the net is a single-modality net (that modality's encoder and
    an MLP head) and ``fusion`` is ignored.

    Parameters
    ----------
    fusion : {"early", "intermediate", "late", "cross_attention"}, default="intermediate"
        How to fuse the modalities; ignored (not even validated) for a single-modality net.
    image_shape : tuple of int (C, S, S), default=None
        Shape of one image, channels first (e.g. 5 bands + 1 mask channel). None: no image.
    spectrum_shape : tuple of int (C, L), default=None
        Shape of one spectrum, channels first (e.g. flux + mask). None: no spectrum.
    n_outputs : int, default=1
        Number of outputs per sample (targets for regression, classes for classification).
    width : int, default=32
        Channels of the stem and first block of each encoder.
    depth : int, default=3
        Blocks of the image encoder.
    spectrum_depth : int, default=4
        Blocks of the spectrum encoder.
    norm : {"batch", "group", "layer", "none"}, default="batch"
        Normalisation in the encoders.
    dropout : float, default=0.1
        Dropout rate in the encoders, the attention and the heads.
    embed_dim : int, default=64
        Size of each modality's embedding and tokens; also the heads' hidden size.
    n_heads : int, default=4
        Attention heads for ``"cross_attention"``; must divide ``embed_dim``.
    early_channels : int, default=4
        Image-sized channels the spectrum becomes for ``"early"``.
    augment : {"dihedral", "flip"} or None, default=None
        Random symmetry of the images while training (see :func:`augment_images`).
    n_scalars : int, default=0
        Per-object scalars (e.g. the redshift) that every head reads next to the embeddings,
        passed to :meth:`forward` as ``scalars`` of shape (B, n_scalars). A CNN with global
        pooling cannot tell where in the spectrum a line fell, so without the redshift it
        cannot turn a line flux into a luminosity.

    Attributes
    ----------
    fusion : str or None
        The fusion in effect: the ``fusion`` parameter, or None for a single-modality net.
    modalities : tuple of str
        The inputs the net needs, a subset of ``("image", "spectrum")``.
    image_encoder : ImageEncoder or None
        For ``"early"`` it reads the image plus the ``early_channels`` spectrum maps.
    spectrum_encoder : SpectrumEncoder or None
        None for ``"early"``, which has ``spectrum_projector`` instead.

    Examples
    --------
    >>> import torch
    >>> from sklearn_sfr.neural._modules import FusionNet
    >>> net = FusionNet("late", image_shape=(6, 8, 8), spectrum_shape=(2, 577), embed_dim=16)
    >>> out = net(image=torch.zeros(4, 6, 8, 8), spectrum=torch.zeros(4, 2, 577))
    >>> out.shape
    torch.Size([4, 1])
    >>> net.late_weights()
    tensor([[0.5000],
            [0.5000]])
    >>> sorted(net.embed(image=torch.zeros(4, 6, 8, 8), spectrum=torch.zeros(4, 2, 577)))
    ['image', 'spectrum']
    """

    def __init__(
        self,
        fusion="intermediate",
        image_shape=None,
        spectrum_shape=None,
        n_outputs=1,
        width=32,
        depth=3,
        spectrum_depth=4,
        norm="batch",
        dropout=0.1,
        embed_dim=64,
        n_heads=4,
        early_channels=4,
        augment=None,
        n_scalars=0,
    ):
        super().__init__()
        if image_shape is None and spectrum_shape is None:
            raise ValueError("FusionNet needs image_shape, spectrum_shape or both; got neither")
        image_shape = self._check_shape(image_shape, "image_shape", "(C, S, S)", 3)
        spectrum_shape = self._check_shape(spectrum_shape, "spectrum_shape", "(C, L)", 2)
        if image_shape is not None and image_shape[1] != image_shape[2]:
            raise ValueError(f"image_shape must be square (C, S, S), got {image_shape}")
        _check_positive_int(n_outputs, "n_outputs")
        _check_positive_int(n_scalars, "n_scalars", minimum=0)
        self.n_scalars = n_scalars
        _check_dropout(dropout)
        both = image_shape is not None and spectrum_shape is not None
        if both and fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")

        self.fusion = fusion if both else None
        self.image_shape, self.spectrum_shape = image_shape, spectrum_shape
        self.n_outputs = n_outputs
        self.modalities = tuple(
            name
            for name, shape in (("image", image_shape), ("spectrum", spectrum_shape))
            if shape is not None
        )
        self.image_encoder = self.spectrum_encoder = None
        common = dict(width=width, norm=norm, dropout=dropout, embed_dim=embed_dim)
        image_kw = dict(common, depth=depth, augment=augment)
        spectrum_kw = dict(common, depth=spectrum_depth)

        if self.fusion == "early":
            _check_positive_int(early_channels, "early_channels")
            channels, size, _ = image_shape
            self.spectrum_projector = _EarlyProjector(
                *spectrum_shape, early_channels, size, hidden=embed_dim
            )
            self.image_encoder = ImageEncoder(channels + early_channels, size, **image_kw)
        else:
            if image_shape is not None:
                self.image_encoder = ImageEncoder(image_shape[0], image_shape[1], **image_kw)
            if spectrum_shape is not None:
                self.spectrum_encoder = SpectrumEncoder(*spectrum_shape, **spectrum_kw)

        if self.fusion == "late":
            self.image_head = _mlp_head(embed_dim + n_scalars, embed_dim, n_outputs, dropout)
            self.spectrum_head = _mlp_head(embed_dim + n_scalars, embed_dim, n_outputs, dropout)
            # Zero logits: both modalities start with weight 1/2 for every output.
            self.late_logits = nn.Parameter(torch.zeros(2, n_outputs))
            return
        if self.fusion == "cross_attention":
            _check_positive_int(n_heads, "n_heads")
            if embed_dim % n_heads:
                raise ValueError(
                    f"embed_dim ({embed_dim}) must be divisible by n_heads ({n_heads})"
                )
            self.image_cross = _CrossAttentionBlock(embed_dim, n_heads, dropout)
            self.spectrum_cross = _CrossAttentionBlock(embed_dim, n_heads, dropout)
        n_embeddings = 2 if self.fusion in ("intermediate", "cross_attention") else 1
        self.head = _mlp_head(n_embeddings * embed_dim + n_scalars, embed_dim, n_outputs, dropout)

    @staticmethod
    def _check_shape(shape, name, hint, ndim):
        if shape is None:
            return None
        shape = tuple(shape)
        if len(shape) != ndim or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape
        ):
            raise ValueError(f"{name} must be a tuple of {ndim} positive ints {hint}, got {shape}")
        return shape

    def _inputs(self, image, spectrum):
        """Check that every needed modality came, with the configured shape."""
        given = {"image": image, "spectrum": spectrum}
        shapes = {"image": self.image_shape, "spectrum": self.spectrum_shape}
        for name in self.modalities:
            if given[name] is None:
                raise ValueError(
                    f"FusionNet was built for {' and '.join(self.modalities)} but the "
                    f"{name!r} input is missing (expected shape (n_samples, "
                    f"{', '.join(map(str, shapes[name]))}))"
                )
        if len(self.modalities) == 2 and len(image) != len(spectrum):
            raise ValueError(
                f"'image' has {len(image)} samples but 'spectrum' has {len(spectrum)}"
            )
        return image, spectrum

    def embed(self, image=None, spectrum=None, **kwargs):
        """The per-modality embeddings the fusion step consumes.

        For ``"intermediate"``, ``"late"`` and single-modality nets these are the encoders'
        outputs; for ``"cross_attention"``, the mean of each encoder's tokens before they
        attend to the other modality (the representation that fusion trains). ``"early"`` has
        no per-modality embedding, so it returns the joint one under ``"joint"``.

        Parameters
        ----------
        image : Tensor of shape ``(B, *image_shape)``, default=None
            Required when the net was built with ``image_shape``.
        spectrum : Tensor of shape ``(B, *spectrum_shape)``, default=None
            Required when the net was built with ``spectrum_shape``.
        **kwargs
            Other SliceDict keys, ignored.

        Returns
        -------
        dict of str to Tensor of shape (B, embed_dim)
            Keys ``"image"`` and/or ``"spectrum"`` (``"joint"`` for early fusion).
        """
        image, spectrum = self._inputs(image, spectrum)
        if self.fusion == "early":
            maps = self.spectrum_projector(spectrum)
            image = _check_input(image, self.image_shape, "image").to(maps)
            return {"joint": self.image_encoder(torch.cat([image, maps], dim=1))}
        if self.fusion == "cross_attention":
            return {
                "image": self.image_encoder.tokens(image).mean(dim=1),
                "spectrum": self.spectrum_encoder.tokens(spectrum).mean(dim=1),
            }
        out = {}
        if self.image_encoder is not None:
            out["image"] = self.image_encoder(image)
        if self.spectrum_encoder is not None:
            out["spectrum"] = self.spectrum_encoder(spectrum)
        return out

    def forward(self, image=None, spectrum=None, scalars=None, **kwargs):
        """Predict from the modalities the net was built for.

        Parameters
        ----------
        image : Tensor of shape ``(B, *image_shape)``, default=None
            Required when the net was built with ``image_shape``.
        spectrum : Tensor of shape ``(B, *spectrum_shape)``, default=None
            Required when the net was built with ``spectrum_shape``.
        scalars : Tensor of shape (B, n_scalars), default=None
            Required when the net was built with ``n_scalars > 0``.
        **kwargs
            Other SliceDict keys (``sample_weight``, ``image_error``, ...), ignored, because
            skorch passes every key of X to the module.

        Returns
        -------
        Tensor of shape (B, n_outputs)
            Always 2-D, also for ``n_outputs=1``.
        """
        image, spectrum = self._inputs(image, spectrum)
        if self.fusion == "late":
            emb = self.embed(image, spectrum)
            stacked = torch.stack(
                [
                    self.image_head(append_scalars(emb["image"], scalars, self.n_scalars)),
                    self.spectrum_head(append_scalars(emb["spectrum"], scalars, self.n_scalars)),
                ]
            )  # (2, B, n_outputs)
            weights = torch.softmax(self.late_logits, dim=0).unsqueeze(1)  # (2, 1, n_outputs)
            return (weights * stacked).sum(dim=0)
        if self.fusion == "cross_attention":
            img = self.image_encoder.tokens(image)
            spec = self.spectrum_encoder.tokens(spectrum)
            # Both directions read the other modality's tokens before either is updated.
            img, spec = self.image_cross(img, spec), self.spectrum_cross(spec, img)
            joint = torch.cat([img.mean(dim=1), spec.mean(dim=1)], dim=1)
        else:
            joint = torch.cat(list(self.embed(image, spectrum).values()), dim=1)
        return self.head(append_scalars(joint, scalars, self.n_scalars))

    def late_weights(self):
        """The current weights of the late-fusion combination.

        Returns
        -------
        Tensor of shape (2, n_outputs)
            Row 0 weighs the image head, row 1 the spectrum head; each column sums to 1.
            Detached from the graph.
        """
        if self.fusion != "late":
            raise ValueError(f"late_weights needs fusion='late', this net has {self.fusion!r}")
        return torch.softmax(self.late_logits.detach(), dim=0)


def count_parameters(module):
    """Number of trainable parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    int

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_sfr.neural._modules import count_parameters
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
