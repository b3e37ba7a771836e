"""
===================================
Loading and exploring a HiSS-Cube
===================================

A HiSS-Cube file holds, for every SDSS object, five-band *ugriz* image cutouts and a
spectrum, each at four resolutions, and the MPA-JHU star-formation rate as the label.
:func:`~sklearn_sfr.datasets.load_hisscube` reads one resolution of each modality into a
:class:`skorch.helper.SliceDict` that every scikit-learn tool accepts.

Real cubes are not needed to follow along: :func:`~sklearn_sfr.datasets.make_synthetic_cube`
writes a physics-based cube of galaxies and quasars in the same layout.
"""

# %%
# Build a small synthetic cube
# ----------------------------
# A few hundred objects are enough to look at the data. The file is written to a temporary
# folder; :class:`~sklearn_sfr.datasets.HiSSCube` opens it read-only and lazily.
import tempfile
from pathlib import Path

import numpy as np

from sklearn_sfr.datasets import HiSSCube, load_hisscube, make_synthetic_cube

tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=400, random_state=0)

with HiSSCube(path) as cube:
    print(cube)

# %%
# Load one resolution of each modality
# ------------------------------------
# Zoom 0 is the full resolution (64 x 64 pixel cutouts, 4620 spectral pixels); every next
# zoom halves it. ``flag=0`` keeps the objects whose MPA-JHU SFR is reliable (see the user
# guide on the FLAG filter). ``X`` is a SliceDict of modalities plus the per-object
# ``flag`` and ``redshift``; ``frame`` holds the metadata of every row.
data = load_hisscube(path, image_zoom=1, spectrum_zoom=1, flag=0)
print({key: value.shape for key, value in data.X.items()})
print(f"{len(data.y)} labelled objects, target {data.target_name!r}")
print(data.frame[["Z", "AVG", "P16", "P84", "object_type"]].head())

# %%
# The cutouts
# -----------
# Three galaxies, from the most passive to the most star-forming of the cube. Each row is
# one object: the five bands and a false-colour composite (g, r, i). Images
# are in nanomaggies; an asinh stretch shows the faint outskirts and the bright core at
# once. Some cutouts hold a neighbouring object besides the target at the centre.
from sklearn_sfr.plotting import plot_cutouts

galaxies = np.flatnonzero(data.frame["object_type"] == "galaxy")
order = galaxies[np.argsort(data.y[galaxies])]  # galaxies from the lowest log SFR up
picks = order[[0, len(order) // 2, -1]]
titles = [f"log SFR {data.y[i]:.1f}, z={data.frame['Z'].iloc[i]:.2f}" for i in picks]
fig = plot_cutouts(data.X["image"][picks], titles=titles)

# %%
# The spectra
# -----------
# The spectrum sees only the light inside the 3-arcsec fibre. Star-forming galaxies show
# strong emission lines (H-alpha, [OII], [OIII]); quenched ones a red continuum with a
# strong 4000 A break. The lines are marked at each object's redshift.
from sklearn_sfr.plotting import plot_spectra

fig = plot_spectra(
    data.wavelength,
    data.X["spectrum"][picks],
    labels=titles,
    redshift=data.frame["Z"].to_numpy()[picks],
)

# %%
# The target
# ----------
# log SFR is bimodal: a star-forming main sequence and a quenched population (and quasars
# apart). The shaded band spans one noise floor either side of the median: MPA-JHU's SFR is
# itself an estimate, and no model predicts the label better than the truth does. That RMSE,
# the *noise floor*, is stored in the synthetic cube.
from sklearn_sfr.plotting import plot_target_distribution

fig = plot_target_distribution(
    data.y, groups=data.frame["object_type"].to_numpy(), noise_floor=data.noise_floor
)
print(f"noise floor: {data.noise_floor:.2f} dex")
