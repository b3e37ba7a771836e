"""
=========================================
Contrastive embedding and retrieval
=========================================

:class:`~sklearn_sfr.neural.ContrastiveRegressor` first learns, without labels, to match
each object's image to its own spectrum (CLIP's InfoNCE loss), then trains a small head on
the labelled objects. The pretraining uses **every** object, also those whose label is
missing or unreliable (FLAG != 0): ``y`` is NaN there.

A good joint embedding puts an image next to its own spectrum: given a cutout, its
spectrum can be *retrieved* among all the others.
"""

# %%
# Labelled and unlabelled objects
# -------------------------------
import tempfile
from pathlib import Path

import numpy as np
import torch

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube

torch.set_num_threads(1)
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=500, random_state=0)
data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=None)  # every object
y = np.where(data.frame["FLAG"].to_numpy() == 0, data.y, np.nan)  # keep FLAG=0 labels only
print(f"{len(y)} objects, {np.isfinite(y).sum()} with a trusted label")

rng = np.random.default_rng(0)
test = rng.choice(len(y), size=100, replace=False)
train = np.setdiff1d(np.arange(len(y)), test)

# %%
# Pretrain and fit
# ----------------
# The InfoNCE loss sits on a plateau for the first dozen or so epochs before it falls, so
# ``patience`` (early stopping) must be longer than that plateau, or pretraining stops
# before it has learnt anything. Tiny networks on 8 x 8 cutouts keep this fast.
from sklearn_sfr.neural import ContrastiveRegressor

model = ContrastiveRegressor(
    projection_dim=16, pretrain_epochs=40, patience=40, max_epochs=10, width=8,
    embed_dim=16, norm="batch", batch_size=64, device="cpu", random_state=0,
)  # fmt: skip
model.fit(data.X[train], y[train])
print(f"head trained on {model.n_labelled_} labelled objects")
losses = model.pretrain_net_.history[:, "valid_loss"]
print(f"validation InfoNCE loss: {losses[0]:.2f} in the first epoch, {min(losses):.2f} at best")

# %%
# Cross-modal retrieval
# ---------------------
# :meth:`~sklearn_sfr.neural.ContrastiveRegressor.embed` returns unit-length projections of
# each modality; their dot product is the cosine similarity. For each held-out image we rank
# the 100 held-out spectra and see where its own lands.
emb = model.embed(data.X[test])
similarity = emb["image"] @ emb["spectrum"].T
rank = (similarity > np.diag(similarity)[:, None]).sum(axis=1)  # 0: own spectrum first
ks = np.arange(1, 21)
recall = [(rank < k).mean() for k in ks]
print(f"own spectrum first for {recall[0]:.0%} of images, in the top 5 for {recall[4]:.0%}")
print("chance: 1% and 5%")

import matplotlib.pyplot as plt

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
own = np.eye(len(test), dtype=bool)
bins = np.linspace(-1, 1, 41)
ax1.hist(similarity[~own], bins=bins, density=True, alpha=0.6, label="other objects' pairs")
ax1.hist(similarity[own], bins=bins, density=True, alpha=0.6, label="an object's own pair")
ax1.set_xlabel("cosine similarity of image and spectrum")
ax1.set_ylabel("density")
ax1.set_title("held-out objects")
ax1.legend()
ax2.plot(ks, recall, marker="o", label="contrastive embedding")
ax2.plot(ks, ks / len(test), ls="--", color="0.5", label="chance")
ax2.set_xlabel("k")
ax2.set_ylabel("own spectrum among the top k")
ax2.set_title("image -> spectrum retrieval")
ax2.legend()
fig.tight_layout()

# %%
# An image and the spectrum of the same object (right histogram) are far more similar than
# an image and a random spectrum, although no label was used: the embedding has learnt what
# the two views of one galaxy share, which is what the regression head builds on.
#
# Regression on the embedding
# ---------------------------
# The head predicts log SFR; scored here on the held-out objects with a trusted label.
from sklearn_sfr.metrics import regression_report

labelled = np.isfinite(y[test])
report = regression_report(
    y[test][labelled], model.predict(data.X[test][labelled]), noise_floor=data.noise_floor
)
print(report[["n", "rmse", "r2", "nmad", "noise_floor"]].round(3))
