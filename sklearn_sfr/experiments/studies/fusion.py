"""Which fusion strategy wins: early, intermediate, late, cross-attention, and contrastive
pretraining (fine-tuned, the ``ContrastiveRegressor`` default)."""

from __future__ import annotations

from ._base import (
    Study,
    _doc,
    _keep,
    _model,
    _run,
)


@_doc(extra=", plus ``fusion``")
def fusion_study(
    data,
    *,
    fusions=("early", "intermediate", "late", "cross_attention"),
    contrastive=True,
    contrastive_params=None,
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
    """Compare the fusion strategies of images and spectra.

        Early, intermediate, late and cross-attention fusion (one ``FusionRegressor`` each)
        and, with ``contrastive``, contrastive pretraining followed by a regression head.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` with both modalities.
        fusions : sequence of str
            ``FusionRegressor`` strategies to compare.
        contrastive : bool, default=True
            Also run :class:`~sklearn_sfr.neural.ContrastiveRegressor`.
        contrastive_params : dict, default=None
            Parameters of the contrastive model only (e.g. ``{"pretrain_epochs": 2}``),
            applied over ``neural_params``; ignored without ``contrastive``.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import fusion_study
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = fusion_study(data, fusions=["early", "late"], contrastive=False,
        ...                          neural_params=tiny)
        >>> scores[["model", "fusion"]].values.tolist()
        [['fusion (early)', 'early'], ['fusion (late)', 'late']]
    """
    built = {
        f"fusion ({f})": _model("fusion", random_state, neural_params, fusion=f) for f in fusions
    }
    if contrastive:
        built["contrastive"] = _model(
            "contrastive", random_state, neural_params, **(contrastive_params or {})
        )
    scores, predictions, trained = _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, repeats=repeats, cache=cache, verbose=verbose,
    )  # fmt: skip
    strategy = {name: name[len("fusion (") : -1] for name in built if name.startswith("fusion")}
    for frame in (scores, trained):
        frame.insert(1, "fusion", frame["model"].map(strategy).fillna("contrastive"))
    _keep(history, [trained])
    return scores, predictions


class FusionStudy(Study):
    """The fusion strategies (and the contrastive model) ranked by test RMSE."""

    name = "fusion"
    keys = ("model", "fusion")
    settings = {"contrastive_params": {}}
    quick_settings = {"contrastive_params": {"pretrain_epochs": 2}}
    show_predictions = True

    def run(self, run):
        return fusion_study(
            run.data, contrastive_params=run.config["contrastive_params"],
            history=run.history, **run.common,
        )  # fmt: skip

    def conclusions(self, tables, dex, compare):
        table = tables.get(self.name)
        if table is None or not len(table):
            return []
        ranked = table.sort_values("rmse", kind="stable")
        b = ranked.iloc[0]
        ranking = ", ".join(f"{r['fusion']} {r['rmse']:.3f}" for _, r in table.iterrows())
        out = (
            f"**Fusion strategy**: {b['fusion']} has the lowest RMSE, {dex(b)}; ranking {ranking}."
        )
        if len(ranked) > 1:
            r = ranked.iloc[1]
            words = compare.said((self.name, {"model": b["model"]}),
                                 (self.name, {"model": r["model"]}), "wins", "loses")  # fmt: skip
            out += f" Against the runner-up {r['fusion']}, it {words}."
        return [out]


STUDY = FusionStudy()
