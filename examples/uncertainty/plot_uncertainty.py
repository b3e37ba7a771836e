"""
====================================
Predicting an uncertainty per object
====================================

MPA-JHU gives every SFR with a P16-P84 range, and the range is wide for weak-line and
passive galaxies. A network trained with ``loss="gaussian_nll"`` predicts a mean and a
standard deviation per object: ``predict(X, return_std=True)``. The predicted spread should
grow where the prediction is worse, and about 68 % of the labels should fall within one
predicted sigma.
"""

# %%
# Train with the Gaussian negative log-likelihood
# -----------------------------------------------
import tempfile
from pathlib import Path

import numpy as np
import torch

from sklearn_sfr import SpectrumRegressor
from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube

torch.set_num_threads(1)
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=600, random_state=0)
data = load_hisscube(path, spectrum_zoom=3, flag=0, modalities=("spectrum",))
rng = np.random.default_rng(0)
test = rng.random(len(data.y)) < 0.25

# The variance head needs more epochs than the mean to spread out: 40 at most (early
# stopping ends sooner), on the coarsest spectra (577 pixels) to stay fast.
model = SpectrumRegressor(
    loss="gaussian_nll", width=8, embed_dim=16, max_epochs=40, lr=3e-3, device="cpu",
    random_state=0,
)  # fmt: skip
model.fit(data.X[~test], data.y[~test])
y_pred, y_std = model.predict(data.X[test], return_std=True)
y_true = data.y[test]

# %%
# Is the predicted spread honest?
# -------------------------------
# The fraction of labels within k predicted sigmas, against a Gaussian's.
from scipy.stats import norm

z = np.abs(y_true - y_pred) / y_std
for k in (1, 2):
    print(f"within {k} sigma: {np.mean(z < k):.0%} (Gaussian: {2 * norm.cdf(k) - 1:.0%})")

# %%
# Errors against predicted uncertainty
# ------------------------------------
# Left: each object's error against its predicted sigma; the lines are 1 and 2 sigma.
# Right: the predicted sigma against the width of the label's own P16-P84 range, the
# label noise the network cannot remove. Without ever seeing P16 or P84, the network
# predicts a larger spread where MPA-JHU's label is itself less certain (weak-line and
# passive galaxies).
import matplotlib.pyplot as plt

frame = data.frame[test]
label_sigma = (frame["P84"] - frame["P16"]).to_numpy() / 2
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
ax1.scatter(y_std, np.abs(y_true - y_pred), s=8, alpha=0.6)
grid = np.linspace(0, y_std.max(), 10)
ax1.plot(grid, grid, "k--", lw=1, label="1 sigma")
ax1.plot(grid, 2 * grid, "k:", lw=1, label="2 sigma")
ax1.set_xlabel("predicted sigma [dex]")
ax1.set_ylabel("|label - prediction| [dex]")
ax1.legend()
points = ax2.scatter(label_sigma, y_std, s=8, alpha=0.6, c=y_true, cmap="viridis")
fig.colorbar(points, ax=ax2, label="label: log SFR")
ax2.set_xlabel("label's (P84 - P16) / 2 [dex]")
ax2.set_ylabel("predicted sigma [dex]")
r = np.corrcoef(label_sigma, y_std)[0, 1]
print(f"correlation of the predicted sigma with the label's width: {r:.2f}")
fig.tight_layout()

# %%
# The same works with :class:`~sklearn_sfr.neural.ImageRegressor`,
# :class:`~sklearn_sfr.neural.FusionRegressor` and
# :class:`~sklearn_sfr.neural.ContrastiveRegressor`. The predicted sigma is learnt from
# the training labels' scatter, so it includes the label noise: it cannot fall below the
# noise floor of the sample on average.
print(f"median predicted sigma {np.median(y_std):.2f} dex, noise floor {data.noise_floor:.2f}")
