"""Which modality tells most about SFR: image alone, spectrum alone, or both fused."""

from __future__ import annotations

import pandas as pd

from ._base import (
    Study,
    _doc,
    _keep,
    _model,
    _run,
    best,
)


@_doc(extra=", plus ``modality`` (image, spectrum or both)")
def modality_study(
    data,
    *,
    fusion="intermediate",
    test_size=0.2,
    cv=None,
    n_jobs=None,
    random_state=0,
    neural_params=None,
    repeats=1,
    cache=None,
    history=None,
    verbose=False,
):
    """Image only, spectrum only, and both fused: how much each modality tells.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` with both modalities.
        fusion : str, default="intermediate"
            The fusion strategy of the multi-modal model.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import modality_study
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = modality_study(data, neural_params=tiny)
        >>> scores[["model", "modality"]].values.tolist()
        [['image', 'image'], ['spectrum', 'spectrum'], ['fusion (intermediate)', 'both']]
    """
    built = {
        "image": _model("image", random_state, neural_params),
        "spectrum": _model("spectrum", random_state, neural_params),
        f"fusion ({fusion})": _model("fusion", random_state, neural_params, fusion=fusion),
    }
    scores, predictions, trained = _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, repeats=repeats, cache=cache, verbose=verbose,
    )  # fmt: skip
    modality = {"image": "image", "spectrum": "spectrum"}
    for frame in (scores, trained):
        frame.insert(1, "modality", frame["model"].map(modality).fillna("both"))
    _keep(history, [trained])
    return scores, predictions


class ModalityStudy(Study):
    """Image vs spectrum vs both: the best single modality against the best fused model of
    the run (the fusion study's strategies compete too, when it ran)."""

    name = "modality"
    keys = ("model", "modality")
    show_predictions = True

    def run(self, run):
        return modality_study(run.data, history=run.history, **run.common)

    def conclusions(self, tables, dex, compare):
        table = tables.get(self.name)
        if table is None:
            return []
        single = table[table["modality"] != "both"]
        both = table[table["modality"] == "both"].assign(_study=self.name)
        if "fusion" in tables:  # every fused model of the run competes, not only one strategy
            both = pd.concat([both, tables["fusion"].assign(_study="fusion")], ignore_index=True)
        if not (len(single) and len(both)):
            return []
        s, b = best(single), best(both)
        words = compare.said((b["_study"], {"model": b["model"]}),
                             (self.name, {"model": s["model"]}), "helps", "hurts")  # fmt: skip
        ranking = ", ".join(f"{r['model']} {r['rmse']:.3f}" for _, r in table.iterrows())
        return [
            f"**Modalities**: the best single modality is {s['model']} ({dex(s)}); the best "
            f"fused model, {b['model']}, reaches {dex(b)}: fusion {words}.",
            f"Modality ranking (test RMSE, dex): {ranking}.",
        ]


STUDY = ModalityStudy()
