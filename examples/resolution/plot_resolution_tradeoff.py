"""
==============================
Resolution against cost
==============================

HiSS-Cube stores every cutout at 64, 32, 16 and 8 pixels a side and every spectrum at
4620, 2310, 1155 and 577 pixels (zooms 0 to 3). Lower resolutions train faster and need
less memory; the question (thesis section 2.3) is what they cost in accuracy.
:func:`~sklearn_sfr.experiments.resolution_study` trains the same model on every image
zoom x spectrum zoom pair and records RMSE, fit and predict time and peak memory.
"""

# %%
# Every pair of zooms
# -------------------
# Zoom 0 (full resolution) is left out to keep this page fast; ``sklearn-sfr study`` runs
# all 16 pairs.
import tempfile
from pathlib import Path

import torch

from sklearn_sfr.datasets import make_synthetic_cube
from sklearn_sfr.experiments import resolution_study

torch.set_num_threads(1)
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=400, random_state=0)

scores, _ = resolution_study(
    path,
    model="fusion",
    image_zooms=(1, 2, 3),
    spectrum_zooms=(1, 2, 3),
    neural_params={"width": 8, "embed_dim": 16, "max_epochs": 5, "device": "cpu"},
)
print(scores[["image_size", "spectrum_length", "rmse", "fit_time", "predict_time"]].round(3))

# %%
# Accuracy over the grid
# ----------------------
# Each cell is one (image size, spectrum length) pair.
from sklearn_sfr.plotting import plot_pareto, plot_resolution_heatmap

noise_floor = scores["noise_floor"].iloc[0]
fig = plot_resolution_heatmap(scores, value=["rmse", "fit_time"], noise_floor=noise_floor)

# %%
# Accuracy against training time
# ------------------------------
# The Pareto front joins the pairs that no other pair beats on both accuracy and time:
# only those are worth considering.
fig = plot_pareto(scores, cost="fit_time", noise_floor=noise_floor)
