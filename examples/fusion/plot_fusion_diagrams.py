"""
=================================
The four fusion strategies, drawn
=================================

:class:`~sklearn_sfr.neural.FusionRegressor` combines the image cutouts and the spectrum in
one of four places. This example only draws the architectures (no training): the boxes are
the modules of :class:`~sklearn_sfr.neural.FusionNet`, the arrows the tensors between them.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

COLOURS = {"image": "#4c72b0", "spectrum": "#dd8452", "joint": "#55a868", "out": "#8172b2"}


def box(ax, x, y, text, kind, w=0.26, h=0.11):
    """A labelled box centred at (x, y); returns its centre for the arrows."""
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2),
        w,
        h,
        boxstyle="round,pad=0.01",
        fc=COLOURS[kind],
        alpha=0.25,
        ec=COLOURS[kind],
        lw=1.5,
    )
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=8)
    return x, y


def arrow(ax, start, end, h=0.11):
    ax.annotate(
        "",
        xy=(end[0], end[1] + h / 2),
        xytext=(start[0], start[1] - h / 2),
        arrowprops={"arrowstyle": "->", "lw": 1.2},
    )


def early(ax):
    img = box(ax, 0.25, 0.9, "image (5, S, S)", "image")
    spec = box(ax, 0.75, 0.9, "spectrum (L,)", "spectrum")
    proj = box(ax, 0.75, 0.68, "linear: spectrum ->\nextra image channels", "spectrum")
    cat = box(ax, 0.4, 0.46, "concatenate channels\n(5 + k, S, S)", "joint", w=0.34)
    enc = box(ax, 0.4, 0.24, "one CNN encoder", "joint")
    out = box(ax, 0.4, 0.04, "head -> log SFR", "out")
    for a, b in ((spec, proj), (img, cat), (proj, cat), (cat, enc), (enc, out)):
        arrow(ax, a, b)


def intermediate(ax):
    img = box(ax, 0.25, 0.9, "image (5, S, S)", "image")
    spec = box(ax, 0.75, 0.9, "spectrum (L,)", "spectrum")
    ie = box(ax, 0.25, 0.62, "image CNN\n-> embedding", "image")
    se = box(ax, 0.75, 0.62, "1-D CNN\n-> embedding", "spectrum")
    cat = box(ax, 0.5, 0.34, "concatenate embeddings", "joint", w=0.36)
    out = box(ax, 0.5, 0.08, "MLP head -> log SFR", "out")
    for a, b in ((img, ie), (spec, se), (ie, cat), (se, cat), (cat, out)):
        arrow(ax, a, b)


def late(ax):
    img = box(ax, 0.25, 0.9, "image (5, S, S)", "image")
    spec = box(ax, 0.75, 0.9, "spectrum (L,)", "spectrum")
    ie = box(ax, 0.25, 0.62, "image CNN + head\n-> prediction", "image")
    se = box(ax, 0.75, 0.62, "1-D CNN + head\n-> prediction", "spectrum")
    mix = box(ax, 0.5, 0.34, "learned weights\nw1 * p1 + w2 * p2", "joint", w=0.36)
    out = box(ax, 0.5, 0.08, "log SFR", "out")
    for a, b in ((img, ie), (spec, se), (ie, mix), (se, mix), (mix, out)):
        arrow(ax, a, b)


def cross_attention(ax):
    img = box(ax, 0.25, 0.9, "image (5, S, S)", "image")
    spec = box(ax, 0.75, 0.9, "spectrum (L,)", "spectrum")
    it = box(ax, 0.25, 0.66, "patch tokens", "image")
    st = box(ax, 0.75, 0.66, "segment tokens", "spectrum")
    att = box(ax, 0.5, 0.40, "cross-attention:\nimage <-> spectrum tokens", "joint", w=0.44)
    out = box(ax, 0.5, 0.1, "pool + head -> log SFR", "out", w=0.36)
    for a, b in ((img, it), (spec, st), (it, att), (st, att), (att, out)):
        arrow(ax, a, b)


fig, axes = plt.subplots(1, 4, figsize=(14, 4.2))
for ax, (name, draw) in zip(
    axes,
    [("early", early), ("intermediate", intermediate), ("late", late),
     ("cross_attention", cross_attention)],
):  # fmt: skip
    draw(ax)
    ax.set_title(f'fusion="{name}"')
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.0)
    ax.axis("off")
fig.tight_layout()

# %%
# * **early** joins the modalities at the input: the spectrum is projected into ``k``
#   extra image channels (``early_channels``) and one image network reads both.
# * **intermediate** (the default) encodes each modality separately and concatenates the
#   two embeddings into a shared head, so each encoder suits its data.
# * **late** trains a full predictor per modality and combines their predictions with
#   learned weights (:meth:`~sklearn_sfr.neural.FusionNet.late_weights`): robust, but the
#   modalities never inform each other's features.
# * **cross_attention** lets image patch tokens attend to spectrum segment tokens and back
#   (``n_heads`` heads) before a shared head: the most expressive and the most costly.
#
# Which one wins on SFR is an empirical question: see
# :ref:`sphx_glr_auto_examples_fusion_plot_fusion_strategies.py`.
