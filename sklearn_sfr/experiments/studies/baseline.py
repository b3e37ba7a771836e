"""The decision-tree baselines: trees on spectra (rebinned pixels, line features) and on
photometry (flattened cutouts, photometry features)."""

from __future__ import annotations

from ._base import (
    BASELINE_MODELS,
    Study,
    _doc,
    _keep,
    _model,
    _run,
)


@_doc()
def baseline_study(
    data,
    *,
    models=BASELINE_MODELS,
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
    """Score the decision-tree baselines on spectra and on photometry.

        The spectra are read as rebinned pixels or as emission-line features, the images as
        flattened cutouts or as photometry features, one tree model each.

        Parameters
        ----------
        data : Bunch
            From :func:`~sklearn_sfr.datasets.load_hisscube` (``X``, ``y``, ``noise_floor``).
        models : sequence of str, default=BASELINE_MODELS
            Names of :func:`~sklearn_sfr.experiments.make_model`.
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> from sklearn_sfr.experiments import baseline_study
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=120,
        ...                            random_state=0)
        >>> data = load_hisscube(path, image_zoom=3, spectrum_zoom=3, flag=0)
        >>> scores, _ = baseline_study(data, models=["tree-pixels", "tree-spectrum"])
        >>> scores[["model", "split"]].values.tolist()
        [['tree-pixels', 'test'], ['tree-spectrum', 'test']]
    """
    built = {name: _model(name, random_state, neural_params) for name in models}
    scores, predictions, trained = _run(
        built, data, test_size=test_size, cv=cv, n_jobs=n_jobs,
        random_state=random_state, repeats=repeats, cache=cache, verbose=verbose,
    )  # fmt: skip
    _keep(history, [trained])
    return scores, predictions


class BaselineStudy(Study):
    """Which decision-tree baseline is best: the floor every network must beat."""

    name = "baseline"
    keys = ("model",)
    show_predictions = True

    def run(self, run):
        return baseline_study(run.data, history=run.history, **run.common)

    def conclusions(self, tables, dex, compare):
        table = tables.get(self.name)
        if table is None or not len(table):
            return []
        ranked = table.sort_values("rmse", kind="stable")
        b = ranked.iloc[0]
        out = f"**Decision-tree baselines**: best is {b['model']} with {dex(b)}."
        if len(ranked) > 1:
            r = ranked.iloc[1]
            words = compare.said((self.name, {"model": b["model"]}),
                                 (self.name, {"model": r["model"]}), "wins", "loses")  # fmt: skip
            out += f" Against the runner-up {r['model']}, it {words}."
        return [out]


STUDY = BaselineStudy()
