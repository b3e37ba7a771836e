"""``sklearn-sfr fit`` and ``sklearn-sfr predict``: train a named model once, keep it with its
model card, and apply it to any cube with the same layout.

:func:`add_parsers` adds both commands to the subparsers of ``sklearn-sfr``
(:func:`sklearn_sfr.cli.build_parser`). The work is done by
:func:`~sklearn_sfr.experiments.fit_model` and :func:`~sklearn_sfr.experiments.predict_cube`;
errors are raised as ``ValueError`` or ``OSError`` with one clear line, which
:func:`sklearn_sfr.cli.main` prints as ``error: ...``.
"""

from __future__ import annotations

from .cli import _device, _fraction, _positive_int, _seed


def _cmd_fit(args):
    from .experiments import fit_model
    from .experiments._models import model_spec

    overrides = {}
    neural = model_spec(args.estimator).kind == "neural"
    for value, key, option in (
        (args.max_epochs, "model__max_epochs", "--max-epochs"),
        (args.device, "model__device", "--device"),
    ):
        if value is None:
            continue
        if not neural:
            raise ValueError(f"{option} applies to the neural models, not {args.estimator!r}")
        overrides[key] = value
    params = [p for p in (args.params, overrides) if p] or None
    try:
        fit_model(
            args.cube,
            args.estimator,
            args.out,
            params=params,
            image_zoom=args.image_zoom,
            spectrum_zoom=args.spectrum_zoom,
            test_size=args.test_size,
            validation_size=args.validation_size,
            random_state=args.seed,
            overwrite=args.overwrite,
            verbose=not args.quiet,
        )
    except ImportError as exc:  # skops missing: one line, as every other error
        raise ValueError(str(exc)) from exc


def _cmd_predict(args):
    from .experiments import predict_cube

    try:
        predict_cube(
            args.model,
            args.cube,
            args.out,
            format=args.format,
            overwrite=args.overwrite,
            verbose=not args.quiet,
        )
    except ImportError as exc:  # pyarrow or skops missing
        raise ValueError(str(exc)) from exc


def _add_fit_parser(sub):
    from .experiments import MODEL_NAMES

    p = sub.add_parser(
        "fit",
        help="train a named model on a cube and save it with a model card",
        description=(
            "Train one of the study's models on the FLAG=0 objects of a cube (optionally with "
            "the best parameters of 'sklearn-sfr tune'), score it on held-out validation and "
            "test objects with 95 % bootstrap intervals, and write a model folder: "
            "model.skops, model_card.json and model_card.md."
        ),
    )
    p.add_argument("--cube", required=True, help="HiSS-Cube .h5 file (opened read-only)")
    p.add_argument("--estimator", required=True, choices=MODEL_NAMES, help="model to train")
    p.add_argument(
        "--out", default="sfr-model", help="model folder to write (default ./sfr-model)"
    )
    p.add_argument(
        "--params", default=None, metavar="JSON",
        help="best_params.json of 'sklearn-sfr tune', or a JSON object of pipeline "
        "parameters such as '{\"model__lr\": 0.003}' in a file (default: the model's defaults)",
    )  # fmt: skip
    p.add_argument(
        "--image-zoom", type=int, default=None, choices=(0, 1, 2, 3),
        help="cutout zoom, as load_hisscube(image_zoom=): 0..3 = 64, 32, 16, 8 px (default: "
        "the tuned zoom in --params, else 2)",
    )  # fmt: skip
    p.add_argument(
        "--spectrum-zoom", type=int, default=None, choices=(0, 1, 2, 3),
        help="spectral zoom, as load_hisscube(spectrum_zoom=): 0..3 = 4620, 2310, 1155, 577 "
        "px (default: the tuned zoom in --params, else 2)",
    )  # fmt: skip
    p.add_argument(
        "--test-size", type=_fraction, default=0.2,
        help="fraction of the FLAG=0 objects held out for testing (default 0.2)",
    )  # fmt: skip
    p.add_argument(
        "--validation-size", type=_fraction, default=0.2,
        help="fraction held out for validation (default 0.2; 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--max-epochs", type=_positive_int, default=None,
        help="epochs of a neural model (default: its own, or --params')",
    )  # fmt: skip
    p.add_argument(
        "--device", type=_device, default=None,
        help="torch device of a neural model: auto, cpu, cuda, cuda:N or mps (default auto)",
    )  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split and model (default 0)")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier model folder at --out (never a folder holding other files)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_fit)


def _add_predict_parser(sub):
    p = sub.add_parser(
        "predict",
        help="apply a saved model to every object of a cube and write the predictions",
        description=(
            "Predict the log SFR of every object of a cube with a model folder written by "
            "'sklearn-sfr fit'. A cube whose image size, band order or spectrum length "
            "differs from the model's is refused. Where the cube has labels, the RMSE and "
            "NMAD against the FLAG=0 ones are printed with 95 % bootstrap intervals."
        ),
    )
    p.add_argument("--model", required=True, help="model folder written by 'sklearn-sfr fit'")
    p.add_argument("--cube", required=True, help="HiSS-Cube .h5 file (opened read-only)")
    p.add_argument(
        "--out", default="predictions.csv",
        help="predictions file: CSV, or Parquet for a .parquet name (needs pyarrow) "
        "(default ./predictions.csv)",
    )  # fmt: skip
    p.add_argument(
        "--format", choices=("csv", "parquet"), default=None,
        help="file format (default: from the --out name)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier predictions file (never a file sklearn-sfr did not write)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_predict)


def add_parsers(sub):
    """Add the ``fit`` and ``predict`` commands to the subparsers ``sub`` of ``sklearn-sfr``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    """
    _add_fit_parser(sub)
    _add_predict_parser(sub)
