"""
=======================
Decision-tree baselines
=======================

Before any neural network, the study asks how far a decision tree gets on each modality
(thesis chapter 4). Four pipelines from :func:`~sklearn_sfr.experiments.make_model`:

* ``tree-spectrum``: the spectrum's pixels, rebinned;
* ``tree-lines``: emission-line fluxes, equivalent widths and the 4000 A break measured by
  :class:`~sklearn_sfr.features.SpectralLineFeatures`;
* ``tree-pixels``: the cutouts' pixels, flattened by
  :class:`~sklearn_sfr.preprocessing.FlattenBands`;
* ``tree-photometry``: magnitudes, colours and sizes measured by
  :class:`~sklearn_sfr.features.PhotometryFeatures`.

Each is an ordinary :class:`~sklearn.pipeline.Pipeline` on the SliceDict, so
:func:`~sklearn.model_selection.cross_val_score` works as usual.
"""

# %%
# Data
# ----
import tempfile
from pathlib import Path

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube

tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=600, random_state=0)
data = load_hisscube(path, image_zoom=2, spectrum_zoom=2, flag=0)
print({key: value.shape for key, value in data.X.items()})

# %%
# One pipeline, cross-validated
# -----------------------------
# The line features are measured in the rest frame, so they read the redshift that
# ``data.X`` carries next to the modalities.
from sklearn.model_selection import cross_val_score

from sklearn_sfr.experiments import make_model

model = make_model("tree-lines", max_depth=6)
print(model)
rmse = -cross_val_score(model, data.X, data.y, cv=3, scoring="neg_root_mean_squared_error")
print(f"tree-lines: RMSE {rmse.mean():.2f} +/- {rmse.std():.2f} dex")

# %%
# All four baselines on one split
# -------------------------------
# :func:`~sklearn_sfr.experiments.baseline_study` scores every baseline on the same held-out
# objects and returns a tidy table with the noise floor beside each RMSE.
from sklearn_sfr.experiments import baseline_study

scores, predictions = baseline_study(data, random_state=0)
print(scores[["model", "rmse", "mae", "r2", "noise_floor", "fit_time"]].round(3))

# %%
# Which features help?
# --------------------
# Spectra carry the emission lines that trace star formation directly, so the line
# features should beat the raw pixels of either modality; the dashed line is the noise
# floor, the error a perfect model would still make against these noisy labels.
import matplotlib.pyplot as plt

from sklearn_sfr.plotting import plot_model_comparison, plot_predicted_vs_true

fig = plot_model_comparison(scores, noise_floor=data.noise_floor)

# %%
# The best tree's predictions against the labels:
best = scores.sort_values("rmse")["model"].iloc[0]
sel = predictions[predictions["model"] == best]
fig, ax = plt.subplots(figsize=(5, 5))
plot_predicted_vs_true(
    sel["y_true"], sel["y_pred"], ax=ax, noise_floor=data.noise_floor, title=best
)
