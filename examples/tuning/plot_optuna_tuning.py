"""
=======================
Tuning with Optuna
=======================

:class:`~sklearn_sfr.model_selection.OptunaSearchCV` is a scikit-learn search (``fit``,
``best_params_``, ``best_estimator_``, ``predict``) whose trials are drawn by Optuna and
cross-validated. Every finished trial is stored in a database as it ends, so a search can
be continued later, after a crash, or by several workers sharing one database.

:func:`~sklearn_sfr.experiments.make_model` and
:func:`~sklearn_sfr.experiments.default_search_space` give the study's named models
and the distributions to tune them over; ``sklearn-sfr tune`` is the same from the shell.
"""

# %%
# A search space
# --------------
# The photometry tree: decision-tree depth and leaf size on features measured from the
# cutouts. Parameter names follow the pipeline (``model__max_depth``).
import tempfile
from pathlib import Path

import optuna

from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
from sklearn_sfr.experiments import default_search_space, make_model
from sklearn_sfr.model_selection import OptunaSearchCV

optuna.logging.set_verbosity(optuna.logging.WARNING)
tmp = tempfile.TemporaryDirectory(prefix="sfr-gallery-")  # removed when the script ends
path = make_synthetic_cube(Path(tmp.name) / "cube.h5", n_objects=500, random_state=0)
data = load_hisscube(path, image_zoom=2, spectrum_zoom=3, flag=0)

space = default_search_space("tree-lines")
print(space)

# %%
# Run, then resume
# ----------------
# A local SQLite file holds the study. Fitting again with the same ``storage`` and
# ``study_name`` adds ``n_trials`` more trials to it instead of starting over.
storage = Path(tmp.name) / "optuna.db"
search = OptunaSearchCV(
    make_model("tree-lines"),
    space,
    cv=3,
    scoring="neg_root_mean_squared_error",
    n_trials=15,
    storage=storage,
    study_name="tree-lines",
    random_state=0,
)
search.fit(data.X, data.y)
print(f"{len(search.study_.trials)} trials, best RMSE {-search.best_score_:.3f} dex")

search.set_params(n_trials=10).fit(data.X, data.y)  # the same study goes on
print(f"{len(search.study_.trials)} trials, best RMSE {-search.best_score_:.3f} dex")
print("best parameters:", search.best_params_)

# %%
# The search's history
# --------------------
# Each dot is a trial's cross-validated score; the line the best so far.
import matplotlib.pyplot as plt

from sklearn_sfr.plotting import plot_optuna_history, plot_param_importances

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
plot_optuna_history(search.study_, target_name="neg. RMSE", ax=ax1)
plot_param_importances(search.study_, target_name="neg. RMSE", ax=ax2)
fig.tight_layout()

# %%
# Sharing a study
# ---------------
# Any SQLAlchemy URL works as ``storage``: with a PostgreSQL or MySQL server every worker
# that runs the same search (same ``study_name``) adds its trials to one study::
#
#     search = OptunaSearchCV(model, space, storage="postgresql://user@host/db",
#                             study_name="fusion-v1", n_trials=20)
#
# ``best_estimator_`` is refitted on all the data with the best parameters:
print(search.best_estimator_)
