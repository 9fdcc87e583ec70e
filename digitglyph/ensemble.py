"""An ensemble: several trained runs of one recipe, answering together as one model (their outputs averaged).

Members trained with different ``training_seed`` values (``train_jax``) on the same data make different
mistakes; the average of their probabilities is more often right and, for "not a digit", separates digits
from non-digits better than any one member (``models/README.md`` gives the figures).  The ensemble is one Keras
model (an input, the members, an ``Average``), so shipping (``deploy.deployable`` folds each member), the light
runtime, the TF.js export and both apps take it like any other model.

    digitglyph ensemble runs/ensemble --members runs/member-11 runs/member-12 ...
    digitglyph ship runs/ensemble
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .files import write_json_atomic

# members must share these parameters: they decide the validation and test writers and what is measured
SAME_DATA = ("seed", "validation_size", "pen_digits", "not_a_digit", "pen_variants", "architecture")


def build(members: list, name: str = "ensemble"):
    """One model whose outputs are the average of ``members``' outputs (same input and output shapes).  Members
    whose names repeat are renamed ``member_<i>`` (a Keras model's layers need unique names)."""
    import keras

    if len({member.name for member in members}) < len(members):
        for index, member in enumerate(members):
            member.name = f"member_{index}"
    shapes = {(tuple(member.input_shape[1:]), tuple(member.output_shape[1:])) for member in members}
    if len(members) < 2 or len(shapes) != 1:
        raise ValueError("an ensemble needs at least two members with the same input and output shapes")
    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    outputs = keras.layers.Average(name="average")([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=name)


def members_of(model) -> list | None:
    """The member models of an ensemble built by :func:`build`, or None for any other model."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not isinstance(layers[-1], keras.layers.Average):
        return None
    members = layers[:-1]
    return members if len(members) >= 2 and all(isinstance(m, keras.Model) for m in members) else None


def make_run(run_dir, member_dirs: list) -> dict:
    """Build the ensemble of the runs in ``member_dirs`` into ``run_dir`` and measure it (and each member) on
    the members' validation and test sets, as a finished run that ``digitglyph ship`` takes."""
    import keras

    from . import __version__
    from .data.sources import evaluation_data
    from .evaluate import measure
    from .train import git_commit

    run_dir, member_dirs = Path(run_dir), [Path(d) for d in member_dirs]
    if (run_dir / "metrics.json").exists():
        raise ValueError(f"{run_dir} already holds a finished run; choose a new run directory")
    configs = []
    for member in member_dirs:
        if not (member / "model.keras").is_file() or not (member / "config.json").is_file():
            raise ValueError(f"{member} is not a trained run (no model.keras and config.json)")
        configs.append(json.loads((member / "config.json").read_text()))
    differing = [name for name in SAME_DATA if len({json.dumps(c.get(name)) for c in configs}) > 1]
    if differing:
        raise ValueError(f"the members differ in {differing}: an ensemble's members must share their data")
    models = [keras.models.load_model(member / "model.keras", compile=False) for member in member_dirs]
    ensemble = build(models)
    validation, test = evaluation_data(configs[0])
    metrics = measure(ensemble, validation, test)
    member_records = []
    for member, model in zip(member_dirs, models, strict=True):
        member_metrics = measure(model, validation, test)
        training = member / "training.json"
        member_records.append(
            {
                "run": str(member),
                **(json.loads(training.read_text()) if training.is_file() else {}),
                "test_accuracy": member_metrics["test_accuracy"],
                "answer_rule": member_metrics["answer_rule"],
                "sources": {
                    name: {k: v for k, v in report.items() if k != "by_character"}
                    for name, report in member_metrics["sources"].items()
                },
            }
        )
    metrics.update(
        {
            "parameters": configs[0],
            "members": member_records,
            "epochs_trained": sum(record.get("epochs_trained", 0) for record in member_records),
            "wall_time_s": sum(record.get("wall_time_s", 0.0) for record in member_records),
            "parameter_count": int(ensemble.count_params()),
            "package_version": __version__,
            "git_commit": git_commit(),
        }
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_histories(run_dir / "history.csv", member_dirs)
    ensemble.save(run_dir / "model.keras")
    write_json_atomic(run_dir / "metrics.json", metrics)
    return metrics


def _write_histories(path: Path, member_dirs: list[Path]) -> None:
    """The members' ``history.csv`` rows in one file, each with its member's run directory first."""
    rows = []
    for member in member_dirs:
        if (member / "history.csv").is_file():
            with open(member / "history.csv") as handle:
                rows += [{"member": str(member), **row} for row in csv.DictReader(handle)]
    if rows:
        columns = list(dict.fromkeys(name for row in rows for name in row))
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


def main(args) -> int:
    metrics = make_run(args.run_dir, args.members)
    rule = metrics["answer_rule"]
    print(
        f"ensemble of {len(args.members)} -> {args.run_dir}: MNIST test {metrics['test_accuracy']:.4%}, "
        f"not-a-digit threshold {rule['not_a_digit_at']:.4f}"
    )
    for name, report in metrics["sources"].items():
        print(f"  {name}: {json.dumps({k: v for k, v in report.items() if not k.startswith('by_')})}")
    return 0
