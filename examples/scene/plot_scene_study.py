"""
===========================================
The Scene study: images, audio and leakage
===========================================

The thesis outline (section 1.5) compares single-modality and fused classifiers on the
Kaggle "Scene classification: images and audio" set: frames cut from videos of nine
scenes, each with the MFCC coefficients of its sound. ``CLASS1`` is indoors/outdoors,
``CLASS2`` the scene.

Consecutive frames of one video are near-duplicates. A shuffled k-fold puts neighbours of
every test frame into the training set, and any model that memorises looks excellent.
:class:`~sklearn_sfr.model_selection.BlockedFrameSplit` keeps runs of consecutive frames
together, which is the honest estimate. :func:`~sklearn_sfr.experiments.scene_study` runs
both.
"""

# %%
# A synthetic Scene set
# ---------------------
# :func:`~sklearn_sfr.datasets.make_synthetic_scene` writes a folder in the Kaggle layout
# (``dataset.csv`` and ``images/``), with videos whose frames drift slowly, as real ones do.
import tempfile
from pathlib import Path

import torch

from sklearn_sfr.datasets import load_scene, make_synthetic_scene

torch.set_num_threads(1)
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
folder = make_synthetic_scene(Path(tmp.name) / "scene", n_per_class=40, image_size=32)
data = load_scene(folder, image_size=16)
print({key: value.shape for key, value in data.X.items()})
print(data.frame["CLASS2"].value_counts().head(3))

# %%
# Shuffled against blocked cross-validation
# -----------------------------------------
# Three models: a tree on the audio, a tree on the image, and late fusion of two small
# networks (sized for a CPU: 8 channels, at most 10 epochs).
from sklearn_sfr.experiments import scene_study, scene_summary

models = ["decision tree (audio)", "decision tree (image)", "fusion late (both)"]
scores, predictions = scene_study(
    data, models=models, targets=["CLASS2"], n_splits=3, max_per_class=40,
    device="cpu", return_predictions=True,
)  # fmt: skip
summary = scene_summary(scores)
print(summary[["accuracy random", "accuracy blocked", "leak"]].round(2))

# %%
# The leak
# --------
# The gap between the two bars of each model is what the shuffled split overstates.
import matplotlib.pyplot as plt

table = summary[["accuracy random", "accuracy blocked"]].droplevel("target")
ax = table.plot.barh(figsize=(7, 3.5))
ax.set_xlabel("accuracy (CLASS2, mean over folds)")
ax.set_xlim(0, 1)
plt.tight_layout()

# %%
# Where the honest model errs
# ---------------------------
# Out-of-fold confusion matrices under the blocked split (recall on the diagonal).
from sklearn_sfr.plotting import plot_confusion_matrices

blocked = predictions[predictions["split"] == "blocked"]
panels = {name: (group["y_true"], group["y_pred"]) for name, group in blocked.groupby("model")}
fig = plot_confusion_matrices(panels, ncols=3, title="CLASS2, blocked split")
