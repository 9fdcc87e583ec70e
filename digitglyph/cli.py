"""The ``digitglyph`` command: train, train-jax, ensemble, evaluate, ship, sweep, export, reports."""

from __future__ import annotations

import argparse
import json
import sys


def _train(args) -> int:
    from .recipes import config
    from .train import train

    values = json.loads(args.params) if args.params else {}
    for name in ("architecture", "epochs", "batch_size", "learning_rate", "seed", "train_subset", "data_dir"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    metrics = train(config(args.recipe, **values), args.run_dir)
    print(
        json.dumps(
            {
                k: metrics[k]
                for k in ("test_accuracy", "validation_accuracy", "wall_time_s", "parameter_count", "epochs_trained")
            },
            indent=2,
        )
    )
    return 0


def _train_jax(args) -> int:
    from .train_jax import main as train_jax_main

    return train_jax_main(args)


def _ensemble(args) -> int:
    from .ensemble import main as ensemble_main

    return ensemble_main(args)


def _evaluate(args) -> int:
    import numpy as np

    from .data import load_mnist
    from .evaluate import summarize
    from .recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    _, (x_test, y_test) = load_mnist(args.data_dir)
    metrics = summarize(recognizer.predict_mnist(x_test), y_test)
    print(
        f"model {recognizer.version}: MNIST test accuracy {metrics['test_accuracy']:.4%} "
        f"({metrics['test_errors']} errors of {len(y_test)})"
    )
    print("per class:", {k: round(v, 4) for k, v in metrics["per_class_accuracy"].items()})
    print(f"expected calibration error {metrics['calibration']['expected_calibration_error']:.4f}")
    return 0 if np.isfinite(metrics["test_accuracy"]) else 1


def _sweep(args) -> int:
    from .sweep import main as sweep_main

    return sweep_main(args)


def _ship(args) -> int:
    from .deploy import main as ship_main

    return ship_main(args)


def _export(args) -> int:
    from .export import main as export_main

    return export_main(args)


def _reports(args) -> int:
    from .reports import main as reports_main

    return reports_main(args)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="digitglyph", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one run into a run directory (resumes if interrupted)")
    train.add_argument("run_dir")
    train.add_argument("--architecture")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", dest="batch_size", type=int)
    train.add_argument("--learning-rate", dest="learning_rate", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--train-subset", dest="train_subset", type=int)
    train.add_argument("--data-dir", dest="data_dir")
    train.add_argument("--recipe", help="start from recipes/<RECIPE>.yaml (ship, fast, glyph17-original, report)")
    train.add_argument("--params", help="JSON object of any other TrainConfig fields")
    train.set_defaults(handler=_train)

    train_jax = commands.add_parser(
        "train-jax",
        help="train one run with Keras on JAX (an accelerator without TensorFlow), from data saved here",
    )
    train_jax.add_argument("run_dir", nargs="?")
    train_jax.add_argument("--recipe", help="start from recipes/<RECIPE>.yaml")
    train_jax.add_argument("--params", help="JSON object of any other TrainConfig fields")
    train_jax.add_argument("--data", help="the .npz written by --save-data")
    train_jax.add_argument("--save-data", dest="save_data", help="write the recipe's training data to this .npz")
    train_jax.add_argument("--training-seed", dest="training_seed", type=int, default=0)
    train_jax.set_defaults(handler=_train_jax)

    ensemble = commands.add_parser(
        "ensemble", help="average finished runs of one recipe into one model, measured (then `ship` it)"
    )
    ensemble.add_argument("run_dir")
    ensemble.add_argument("--members", nargs="+", required=True)
    ensemble.set_defaults(handler=_ensemble)

    evaluate = commands.add_parser("evaluate", help="MNIST test metrics of a model (default: the shipped one)")
    evaluate.add_argument("--model")
    evaluate.add_argument("--data-dir", dest="data_dir")
    evaluate.set_defaults(handler=_evaluate)

    sweep = commands.add_parser("sweep", help="run a papermill sweep from a YAML file")
    sweep.add_argument("sweep_file")
    sweep.add_argument("--workers", type=int, default=None)
    sweep.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port) to run on a cluster")
    sweep.set_defaults(handler=_sweep)

    ship = commands.add_parser(
        "ship",
        help="fold and float16-round a finished run's model and write it, "
        "measured, to models/ (what the apps and the web page use)",
    )
    ship.add_argument("run_dir")
    ship.add_argument("--out", default=None, help="default: the repository's models/")
    ship.add_argument("--data-dir", dest="data_dir")
    ship.set_defaults(handler=_ship)

    export = commands.add_parser("export", help="convert the model to TF.js and build web/dist")
    export.add_argument("--model")
    export.add_argument("--out", default=None, help="default: the repository's web/dist")
    export.add_argument("--float32", action="store_true", help="float32 weights (default: float16, half the size)")
    export.set_defaults(handler=_export)

    reports = commands.add_parser("reports", help="re-execute every notebook into reports/ (skips done work)")
    reports.set_defaults(handler=_reports)
    return root


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"digitglyph {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
