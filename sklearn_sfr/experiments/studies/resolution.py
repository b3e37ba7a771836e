"""Which resolution is worth its cost: every image size x spectrum length pair, accuracy
against fit time, predict time and memory."""

from __future__ import annotations

import pandas as pd

from ...datasets import load_hisscube
from .._evaluate import parallel_map
from ._base import (
    Study,
    _doc,
    _keep,
    _model,
    _run,
    best,
    cv_words,
)

#: Training settings the resolution pairs share with every network of the run
#: (``neural_params``): a pair of its own cap would not be compared at convergence.
_SHARED_TRAINING = ("max_epochs", "patience", "validation_fraction")


@_doc(
    extra=(", plus ``image_zoom``, ``spectrum_zoom``, ``image_size`` (px) and "
           "``spectrum_length`` (px)"),
    pred_extra=", ``image_zoom``, ``spectrum_zoom``, ``image_size``, ``spectrum_length``",
)  # fmt: skip
def resolution_study(
    cube,
    *,
    model="fusion",
    image_zooms=(0, 1, 2, 3),
    spectrum_zooms=(0, 1, 2, 3),
    flag=0,
    model_params=None,
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
    """Score one model at every pair of image zoom and spectral level, with its costs.

        Each image zoom and each spectral level is read from ``cube`` once (with parallel
        jobs, each pair reads its own); every pair's scores come with the fit time, the
        predict time and the memory the fit needed, so that accuracy can be weighed against
        cost.

        Parameters
        ----------
        cube : str or path-like
            A HiSS-Cube file.
        model : str, default="fusion"
            Name of :func:`~sklearn_sfr.experiments.make_model` that reads both modalities.
        image_zooms, spectrum_zooms : sequence of {0, 1, 2, 3}
            Zoom 0 is the full resolution (64 px, 4620 px), each next zoom halves it.
        flag : int, sequence of int or None, default=0
            The objects to use, as in :func:`~sklearn_sfr.datasets.load_hisscube`.
        model_params : dict, default=None
            Parameters of the model (e.g. ``{"fusion": "late"}``).
    {common}

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn_sfr.datasets import load_hisscube, make_synthetic_cube
        >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "c.h5"), n_objects=60,
        ...                            random_state=0)
        >>> from sklearn_sfr.experiments import resolution_study
        >>> tiny = {"max_epochs": 1, "width": 4, "embed_dim": 8, "device": "cpu"}
        >>> scores, _ = resolution_study(path, image_zooms=[3], spectrum_zooms=[2, 3],
        ...                              neural_params=tiny)
        >>> scores[["image_size", "spectrum_length"]].values.tolist()
        [[8, 1155], [8, 577]]
    """
    tasks = [
        dict(cube=cube, image_zoom=i, spectrum_zoom=s, flag=flag, model=model,
             model_params=model_params, test_size=test_size, cv=cv, random_state=random_state,
             neural_params=neural_params, repeats=repeats, cache=cache, verbose=verbose)
        for i in image_zooms for s in spectrum_zooms
    ]  # fmt: skip
    if cv is None and n_jobs not in (None, 1) and len(tasks) > 1:
        # The pairs run in worker processes: each reads its own two arrays.
        results = list(parallel_map(_resolution_pair, tasks, cv=cv, n_jobs=n_jobs))
    else:
        # One after the other: each image zoom and each spectral level is read once, not
        # once per pair (16 reads of each modality become 4).
        reads = _ZoomReads(cube, flag)
        results = [_resolution_pair(**task, n_jobs=n_jobs, reads=reads) for task in tasks]
    _keep(history, [trained for _, _, trained in results])
    return (
        pd.concat([scores for scores, _, _ in results], ignore_index=True),
        pd.concat([predictions for _, predictions, _ in results], ignore_index=True),
    )


class _ZoomReads:
    """Each image zoom and spectral level of a cube, read once, as the pairs ask for them.

    The images of one zoom are kept until another zoom is asked for (the pairs come image
    zoom by image zoom); the spectra of every level are kept, as every image zoom pairs with
    them all (about a third more than the finest level's spectra).
    """

    def __init__(self, cube, flag):
        self.cube, self.flag = cube, flag
        self._images, self._spectra = (None, None), {}

    def _load(self, modality, zoom):
        kind = "image_zoom" if modality == "image" else "spectrum_zoom"
        return load_hisscube(self.cube, flag=self.flag, modalities=(modality,), **{kind: zoom})

    def pair(self, image_zoom, spectrum_zoom):
        """The sample of one pair, as ``load_hisscube`` would return it (the same arrays)."""
        from sklearn.utils import Bunch
        from skorch.helper import SliceDict

        if self._images[0] != image_zoom:
            self._images = (None, None)  # let the previous zoom go before reading the next
            self._images = (image_zoom, self._load("image", image_zoom))
        if spectrum_zoom not in self._spectra:
            self._spectra[spectrum_zoom] = self._load("spectrum", spectrum_zoom)
        images, spectra = self._images[1], self._spectra[spectrum_zoom]
        X = SliceDict(
            image=images.X["image"],
            spectrum=spectra.X["spectrum"],
            flag=images.X["flag"],
            redshift=images.X["redshift"],
        )
        return Bunch(X=X, y=images.y, frame=images.frame, noise_floor=images.noise_floor)


def _resolution_pair(cube, image_zoom, spectrum_zoom, *, flag, model, model_params, reads=None,
                     **common):  # fmt: skip
    if reads is not None:
        data = reads.pair(image_zoom, spectrum_zoom)
    else:
        data = load_hisscube(cube, image_zoom=image_zoom, spectrum_zoom=spectrum_zoom, flag=flag)
    size, length = data.X["image"].shape[-1], data.X["spectrum"].shape[-1]
    neural_params = common.pop("neural_params")
    random_state = common["random_state"]
    built = {
        f"{size} px x {length} px": _model(
            model, random_state, neural_params, **(model_params or {})
        )
    }
    scores, predictions, trained = _run(built, data, **common)
    for frame in (scores, predictions, trained):
        frame.insert(1, "image_zoom", image_zoom)
        frame.insert(2, "spectrum_zoom", spectrum_zoom)
        frame.insert(3, "image_size", size)
        frame.insert(4, "spectrum_length", length)
    return scores, predictions, trained


class ResolutionStudy(Study):
    """The image-size x spectrum-length grid: the most accurate pair, the cheapest within 2 %
    of it, and what the finest pair costs."""

    name = "resolution"
    keys = ("model", "image_size", "spectrum_length")
    settings = {
        "image_zooms": (0, 1, 2, 3),
        "spectrum_zooms": (0, 1, 2, 3),
        "resolution_model": "fusion",
        "resolution_params": {"fusion": "intermediate"},
    }
    quick_settings = {"image_zooms": (2, 3), "spectrum_zooms": (2, 3)}

    def run(self, run):
        config = run.config
        return resolution_study(
            run.cube,
            model=config["resolution_model"],
            model_params=config["resolution_params"],
            image_zooms=config["image_zooms"],
            spectrum_zooms=config["spectrum_zooms"],
            history=run.history,
            **run.common,
        )

    def check_settings(self, config):
        own = sorted(set(_SHARED_TRAINING) & set(config["resolution_params"]))
        if own:
            raise ValueError(
                f"resolution_params sets {', '.join(own)}: every pair trains until early "
                "stopping with the run's shared settings; set them in neural_params instead"
            )

    def settings_lines(self, config):
        from ...datasets._layout import CUTOUT_SIZES, n_wavelength

        params = ", ".join(f"{k}={v}" for k, v in config["resolution_params"].items())
        return [
            f"Resolution study: {config['resolution_model']} ({params}) on images of "
            + ", ".join(str(CUTOUT_SIZES[z]) for z in config["image_zooms"])
            + " px x spectra of "
            + ", ".join(str(n_wavelength(z)) for z in config["spectrum_zooms"])
            + " px."
        ]

    def conclusions(self, tables, dex, compare):
        t = tables.get(self.name)
        if t is None or not len(t):
            return []
        b = best(t)
        # The pairs not detectably worse than the most accurate one (by their paired
        # interval), and the cheapest of them: the one worth its cost.
        peers = []
        for _, row in t.iterrows():
            if row["model"] == b["model"]:
                peers.append((row, None))
                continue
            d = compare.difference((self.name, {"model": row["model"]}),
                                   (self.name, {"model": b["model"]}))  # fmt: skip
            if d is not None and not (d.excludes_zero and d.difference > 0):
                peers.append((row, d))
        c, d = min(peers, key=lambda pair: pair[0]["fit_time"])
        out = []
        head = (
            f"**Resolution**: the most accurate pair is {b['image_size']} px images x "
            f"{b['spectrum_length']} px spectra ({dex(b)}, fit {b['fit_time']:.0f} s)"
        )
        if (
            len(peers) == 1
            and len(t) > 1
            and all(
                compare.difference((self.name, {"model": m}), (self.name, {"model": b["model"]}))
                is None
                for m in t["model"]
                if m != b["model"]
            )
        ):
            out.append(f"{head}; which pair is worth its cost cannot be decided (no "
                       "predictions to compute intervals from).")  # fmt: skip
        elif c["model"] == b["model"]:
            out.append(f"{head}; no pair that fits faster is as accurate (by its paired "
                       "interval): it is the one worth its cost.")  # fmt: skip
        else:
            cv = compare.cv_difference((self.name, {"model": c["model"]}),
                                       (self.name, {"model": b["model"]}))  # fmt: skip
            out.append(
                f"{head}; the cheapest pair not detectably less accurate is "
                f"{c['image_size']} px x {c['spectrum_length']} px (RMSE {c['rmse']:.3f}, "
                f"{d.difference:+.3f} dex, 95 % interval [{d.low:+.3f}, {d.high:+.3f}]"
                + ("" if cv is None else f"; {cv_words(cv)}")
                + f"; fit {c['fit_time']:.0f} s, "
                f"{b['fit_time'] / max(c['fit_time'], 1e-9):.1f}x "
                "faster): that is the one worth its cost."
            )
        finest = t.sort_values(["image_size", "spectrum_length"]).iloc[-1]
        out.append(
            f"The finest pair ({finest['image_size']} px x {finest['spectrum_length']} px) "
            f"reaches RMSE {finest['rmse']:.3f} in {finest['fit_time']:.0f} s, "
            f"{finest['fit_time'] / max(c['fit_time'], 1e-9):.1f}x the fit time of the pair "
            "worth its cost."
        )
        return out

    def figures(self, scores, predictions, data, folder, table=None):
        from ...plotting import plot_pareto, plot_resolution_heatmap, save_figure

        floor = data.noise_floor if data is not None else None
        test = scores[scores["split"] == "test"]
        bounds = ("rmse_low", "rmse_high")
        if table is not None and set(bounds) <= set(table.columns):
            # the summary's paired-bootstrap intervals: each cell reads RMSE [low, high] and
            # the colour scale is as wide as the widest, so a spread within it looks flat
            fig = plot_resolution_heatmap(
                table,
                value=["rmse", "fit_time"],
                noise_floor=floor,
                intervals={"rmse": bounds},
            )
            what = "test RMSE with its 95 % interval"
        else:
            fig = plot_resolution_heatmap(test, value=["rmse", "fit_time"], noise_floor=floor)
            what = "test RMSE"
        figures = {
            "resolution_heatmap": (
                save_figure(fig, folder / "resolution_heatmap.png"),
                f"{what} and fit time for each image size x spectrum length",
            )
        }
        fig = plot_pareto(test, cost="fit_time", value="rmse", noise_floor=floor)
        figures["resolution_pareto"] = (
            save_figure(fig, folder / "resolution_pareto.png"),
            "accuracy against fit time, with the Pareto front",
        )
        return figures


STUDY = ResolutionStudy()
