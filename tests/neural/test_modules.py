"""Tests of the torch modules: shapes for every fusion and size, inputs, gradients, learning."""

import numpy as np
import pytest
import torch

from sklearn_sfr.neural._modules import (
    FUSIONS,
    FusionNet,
    ImageEncoder,
    SpectrumEncoder,
    count_parameters,
)

# Small widths keep the whole file fast; the architecture (depths, pooling) stays the default.
SMALL = dict(width=8, embed_dim=16, n_heads=4)
IMAGE_CHANNELS, SPECTRUM_CHANNELS = 6, 2  # 5 bands + mask, flux + mask


def inputs(n, size, length, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(n, IMAGE_CHANNELS, size, size, generator=gen),
        "spectrum": torch.randn(n, SPECTRUM_CHANNELS, length, generator=gen),
    }


def fusion_net(fusion, size=8, length=577, **kwargs):
    return FusionNet(
        fusion,
        image_shape=(IMAGE_CHANNELS, size, size),
        spectrum_shape=(SPECTRUM_CHANNELS, length),
        **{**SMALL, **kwargs},
    )


def spectrum_parameter(net):
    """A first-layer parameter of whatever reads the spectrum."""
    if net.fusion == "early":
        return net.spectrum_projector.mlp[0].weight
    return net.spectrum_encoder.features[0].weight


# Every size and length appears with every fusion, without the full 4 x 4 x 2 product.
SIZES = [(8, 577), (16, 1155), (32, 577), (64, 1155)]


@pytest.mark.parametrize("size, length", SIZES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_output_shape_train_and_eval(fusion, size, length):
    net = fusion_net(fusion, size, length, n_outputs=2)
    out = net(**inputs(3, size, length))
    assert out.shape == (3, 2)
    assert torch.isfinite(out).all()
    net.eval()  # batch norm in eval mode must cope with a single sample
    with torch.no_grad():
        one = net(**inputs(1, size, length))
    assert one.shape == (1, 2)
    assert torch.isfinite(one).all()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_default_settings_largest_inputs(fusion):
    net = FusionNet(fusion, image_shape=(6, 64, 64), spectrum_shape=(2, 4620))
    out = net(**inputs(2, 64, 4620))
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_output_is_never_squeezed(n_outputs):
    net = fusion_net("intermediate", n_outputs=n_outputs)
    assert net(**inputs(1, 8, 577)).shape == (1, n_outputs)


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "none"])
@pytest.mark.parametrize("fusion", ["intermediate", "cross_attention"])
def test_every_norm(norm, fusion):
    out = fusion_net(fusion, 16, norm=norm, width=12)(**inputs(2, 16, 577))
    assert out.shape == (2, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("fusion", [*FUSIONS, "not-a-fusion"])
def test_single_modality_nets_ignore_fusion(fusion):
    data = inputs(4, 16, 577)
    image_net = FusionNet(fusion, image_shape=(IMAGE_CHANNELS, 16, 16), **SMALL)
    spectrum_net = FusionNet(fusion, spectrum_shape=(SPECTRUM_CHANNELS, 577), **SMALL)
    assert image_net.fusion is None and spectrum_net.fusion is None
    assert image_net.modalities == ("image",)
    assert spectrum_net.spectrum_encoder is not None and spectrum_net.image_encoder is None
    assert image_net(image=data["image"]).shape == (4, 1)
    assert spectrum_net(spectrum=data["spectrum"]).shape == (4, 1)
    assert image_net(**data).shape == (4, 1)  # an unused modality is ignored
    assert set(image_net.embed(**data)) == {"image"}


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("missing", ["image", "spectrum"])
def test_missing_modality_names_it(fusion, missing):
    data = inputs(2, 8, 577)
    del data[missing]
    with pytest.raises(ValueError, match=f"'{missing}' input is missing"):
        fusion_net(fusion)(**data)


def test_single_modality_net_missing_its_input():
    net = FusionNet(spectrum_shape=(SPECTRUM_CHANNELS, 577), **SMALL)
    with pytest.raises(ValueError, match="'spectrum' input is missing"):
        net(image=torch.zeros(2, 6, 8, 8))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_extra_keys_are_ignored(fusion):
    data = inputs(3, 8, 577)
    net = fusion_net(fusion).eval()
    with torch.no_grad():
        plain = net(**data)
        extra = net(
            **data,
            sample_weight=torch.ones(3),
            image_error=torch.ones_like(data["image"]),
            redshift=torch.zeros(3),
        )
    torch.testing.assert_close(plain, extra)


@pytest.mark.parametrize(
    "key, bad, expected",
    [
        ("image", torch.zeros(2, 5, 8, 8), r"image must have shape \(n_samples, 6, 8, 8\)"),
        ("image", torch.zeros(2, 6, 16, 16), r"got \(2, 6, 16, 16\)"),
        ("spectrum", torch.zeros(2, 2, 578), r"spectrum must have shape \(n_samples, 2, 577\)"),
        ("spectrum", torch.zeros(2, 577), r"got \(2, 577\)"),
    ],
)
@pytest.mark.parametrize("fusion", ["early", "intermediate"])
def test_wrong_shape_names_key_and_shapes(fusion, key, bad, expected):
    data = inputs(2, 8, 577)
    data[key] = bad
    with pytest.raises(ValueError, match=expected):
        fusion_net(fusion)(**data)


def test_mismatched_batch_sizes():
    data = inputs(2, 8, 577)
    data["spectrum"] = data["spectrum"][:1]
    with pytest.raises(ValueError, match="'image' has 2 samples but 'spectrum' has 1"):
        fusion_net("late")(**data)


def test_float64_and_numpy_inputs_are_accepted():
    data = inputs(2, 8, 577)
    net = fusion_net("intermediate").eval()
    with torch.no_grad():
        ref = net(**data)
        out = net(image=data["image"].double().numpy(), spectrum=data["spectrum"].double())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_one_channel_spectrum_may_come_without_channel_axis():
    net = FusionNet(spectrum_shape=(1, 577), **SMALL)
    assert net(spectrum=torch.zeros(2, 577)).shape == (2, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fusion="mid"), "fusion must be one of"),
        (dict(embed_dim=18, n_heads=4, fusion="cross_attention"), "divisible by n_heads"),
        (dict(norm="instance"), "norm must be one of"),
        (dict(image_shape=(6, 8, 16)), "square"),
        (dict(spectrum_shape=(577,)), "spectrum_shape must be a tuple of 2"),
        (dict(dropout=1.0), "dropout"),
        (dict(n_outputs=0), "n_outputs"),
    ],
)
def test_invalid_parameters(kwargs, match):
    params = dict(
        fusion="intermediate",
        image_shape=(6, 8, 8),
        spectrum_shape=(2, 577),
        **{**SMALL, "n_heads": 4},
    )
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FusionNet(**params)


def test_needs_a_modality():
    with pytest.raises(ValueError, match="got neither"):
        FusionNet("late")


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_both_encoders(fusion):
    net = fusion_net(fusion, size=16)
    out = net(**inputs(4, 16, 577))
    ((out - 1.0) ** 2).mean().backward()
    image_grad = net.image_encoder.features[0].weight.grad
    spectrum_grad = spectrum_parameter(net).grad
    assert image_grad is not None and image_grad.norm() > 0
    assert spectrum_grad is not None and spectrum_grad.norm() > 0
    if fusion == "late":
        assert net.late_logits.grad.norm() > 0


def test_late_weights_sum_to_one_and_are_learned():
    net = fusion_net("late", n_outputs=3)
    weights = net.late_weights()
    assert weights.shape == (2, 3)
    torch.testing.assert_close(weights, torch.full((2, 3), 0.5))
    with torch.no_grad():
        net.late_logits.copy_(torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]]))
    weights = net.late_weights()
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(3))
    assert weights[0, 0] > 0.5 > weights[0, 2]
    assert not weights.requires_grad


def test_late_output_is_the_weighted_sum_of_the_heads():
    data = inputs(3, 8, 577)
    net = fusion_net("late").eval()
    with torch.no_grad():
        net.late_logits.fill_(0.0)
        net.late_logits[0] = 50.0  # all weight on the image head
        emb = net.embed(**data)
        torch.testing.assert_close(net(**data), net.image_head(emb["image"]))


def test_late_weights_only_for_late_fusion():
    with pytest.raises(ValueError, match="fusion='late'"):
        fusion_net("intermediate").late_weights()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_embed_shapes(fusion):
    embeddings = fusion_net(fusion).embed(**inputs(5, 8, 577), sample_weight=None)
    keys = {"joint"} if fusion == "early" else {"image", "spectrum"}
    assert set(embeddings) == keys
    for emb in embeddings.values():
        assert emb.shape == (5, SMALL["embed_dim"])


@pytest.mark.parametrize("size, n_tokens", [(8, 4), (16, 4), (32, 16), (64, 64)])
def test_image_encoder_tokens(size, n_tokens):
    enc = ImageEncoder(6, size, width=8, depth=3, embed_dim=16)
    x = torch.randn(2, 6, size, size)
    assert enc.feature_size**2 == n_tokens
    assert enc(x).shape == (2, 16)
    assert enc.tokens(x).shape == (2, n_tokens, 16)


def test_image_encoder_deep_on_tiny_images():
    enc = ImageEncoder(5, 8, width=4, depth=5, embed_dim=8)
    assert enc.feature_size == 2
    assert enc.out_channels == 16  # width doubling is capped at 4 * width
    assert enc(torch.randn(2, 5, 8, 8)).shape == (2, 8)


@pytest.mark.parametrize("length, n_tokens", [(577, 9), (1155, 18), (4620, 64), (100, 12), (5, 2)])
def test_spectrum_encoder_any_length(length, n_tokens):
    enc = SpectrumEncoder(2, length, width=8, embed_dim=16)
    x = torch.randn(2, 2, length)
    assert enc.n_tokens == n_tokens
    assert enc(x).shape == (2, 16)
    assert enc.tokens(x).shape == (2, n_tokens, 16)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_same_seed_same_outputs(fusion):
    data = inputs(4, 16, 577)
    outputs = []
    for _ in range(2):
        torch.manual_seed(42)
        net = fusion_net(fusion, size=16)
        outputs.append(net(**data))  # train mode: dropout draws from the seeded generator
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    torch.manual_seed(43)
    assert not torch.equal(fusion_net(fusion, size=16)(**data), outputs[0])


def test_intermediate_fusion_overfits_a_target_from_both_modalities():
    torch.manual_seed(0)
    data = inputs(32, 8, 577, seed=1)
    # The target needs both inputs: a band's mean brightness and a spectral feature's depth.
    target = (
        data["image"][:, 2].mean(dim=(1, 2)) * 4 + data["spectrum"][:, 0, 200:260].mean(dim=1) * 4
    )
    target = ((target - target.mean()) / target.std()).unsqueeze(1)
    net = fusion_net("intermediate", dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(100):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(**data), target)
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(net(**data), target).item()
    assert mse < 0.05  # the target has unit variance


def test_count_parameters_grows_with_width():
    small = count_parameters(fusion_net("intermediate", width=8))
    large = count_parameters(fusion_net("intermediate", width=16))
    assert 0 < small < large
    assert count_parameters(fusion_net("intermediate")) == sum(
        np.prod(p.shape) for p in fusion_net("intermediate").parameters()
    )


def test_spectrum_encoder_stem_reads_every_pixel():
    # The strided stem keeps a quarter of its outputs, but each pixel still reaches one: a
    # one-pixel emission line anywhere changes the stem's output.
    enc = SpectrumEncoder(1, 101, width=4, embed_dim=8, norm="none")
    stem = enc.features[0]
    assert stem.stride[0] < stem.kernel_size[0]
    x = torch.zeros(1, 1, 101, requires_grad=True)
    stem(x).abs().sum().backward()
    assert (x.grad != 0).all()
