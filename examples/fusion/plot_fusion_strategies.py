"""
=============================
Fusion strategies compared
=============================

Does combining the cutouts and the spectrum beat either alone, and where in the network
should they meet? :func:`~sklearn_sfr.experiments.fusion_study` trains
:class:`~sklearn_sfr.neural.FusionRegressor` with each strategy on one fixed split
(the strategies are drawn in
:ref:`sphx_glr_auto_examples_fusion_plot_fusion_diagrams.py`).

The networks here are tiny and train for a few epochs on a few hundred objects so that the
page builds in seconds; the ranking they give is not the study's answer.
"""

# %%
# Data
# ----
# Zoom 2 gives 16 x 16 cutouts and 1155-pixel spectra.
import tempfile
from pathlib import Path

import torch

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube

torch.set_num_threads(1)  # tiny networks: more threads only add overhead
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=500, random_state=0)
data = load_hisscube(path, image_zoom=2, spectrum_zoom=2, flag=0)

# %%
# One fusion model by hand
# ------------------------
# The estimator scales the physical units itself, masks NaN pixels and stops early on a
# validation split; ``device="auto"`` would use a GPU where there is one.
from sklearn_sfr import FusionRegressor

model = FusionRegressor(
    fusion="intermediate", width=8, embed_dim=16, max_epochs=8, device="cpu", random_state=0
)
model.fit(data.X[:300], data.y[:300])
history = model.net_.history
print(f"{len(history)} epochs, last validation loss {history[-1, 'valid_loss']:.3f}")

# %%
# The four strategies on one split
# --------------------------------
# ``neural_params`` reach every network of the study. ``contrastive=False`` leaves out
# contrastive pretraining, which has an example of its own.
from sklearn_sfr.experiments import fusion_study

tiny = {"width": 8, "embed_dim": 16, "max_epochs": 8, "device": "cpu"}
scores, predictions = fusion_study(data, contrastive=False, neural_params=tiny)
print(scores[["model", "fusion", "rmse", "r2", "fit_time"]].round(3))

# %%
# Accuracy and cost
# -----------------
# The dashed line is the noise floor. Cross-attention costs the most to train; late
# fusion is two independent networks.
import matplotlib.pyplot as plt

from sklearn_sfr.plotting import plot_model_comparison

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
plot_model_comparison(scores, model="fusion", noise_floor=data.noise_floor, ax=ax1)
ax2.barh(scores["fusion"], scores["fit_time"], color="0.5")
ax2.set_xlabel("fit time [s]")
ax2.set_title("training cost")
fig.tight_layout()
