""" "Not a digit", measured on held-out writers with the shipped runtime and answer rule.

Every drawing is rendered as the apps draw it (default brush, 180 px tall on the 280 px canvas) and put through
the canvas spec; the ``Recognizer``'s runtime and rule then answer it, exactly as ``predict_canvas`` does.

Prints, for the pen collections' test writers (never trained on, never used for a choice):
- the share of clearly non-digit letters and symbols (``data.sources.DIGIT_LIKE`` lists the ones left out) and
  of generated canvases (scribbles, zigzags, crossed-out digits, several digits, dots, ticks, blobs) answered
  "not a digit", overall and per character;
- the share of held-out pen digits and of MNIST test digits wrongly answered "not a digit";
- MNIST test accuracy counting a rejection as an error;
- with ``--score-baseline MODEL`` (a 10-output model), the alternative "separate score" design: that model's top
  probability as the score, with its threshold set to reject the same share of validation digits as ours.

    .venv/bin/python benchmarks/not_a_digit.py [--model models/model.keras] [--score-baseline OLD.keras]
"""

import argparse

import numpy as np
from tqdm import tqdm

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.data.sources import EVALUATION_STYLE, evaluation_sets
from digitglyph.evaluate import statuses
from digitglyph.preprocess import network_input

TARGETS = {"non_digits": 0.95, "pen_digits": 0.005, "mnist": 0.002, "mnist_accuracy": 0.9965}


def status_of(recognizer, images) -> np.ndarray:
    """The answer for MNIST-style images: the same runtime and rule as predict_canvas, after the canvas spec."""
    outputs = np.concatenate(
        [recognizer.runtime.outputs(network_input(images[i : i + 1000])) for i in range(0, len(images), 1000)]
    )
    return statuses(outputs, recognizer.rule), outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--score-baseline", default=None, help="a 10-output .keras model for the score design")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    print(f"model {recognizer.version}, answer rule {recognizer.rule}; drawn as {EVALUATION_STYLE}")
    test = evaluation_sets("test")
    others = test["non_digits"]
    # the evaluation images are the canvases' model inputs (rendered as the apps draw, through the canvas spec)
    status, _ = status_of(recognizer, others.images)
    rejected = status == "not_a_digit"
    print(
        f"\nNon-digits of the test writers answered 'not a digit': {rejected.mean():.2%} of {len(rejected):,} "
        f"(target {TARGETS['non_digits']:.0%}: {'met' if rejected.mean() >= TARGETS['non_digits'] else 'NOT met'})"
    )
    kinds = np.array(["generated" if s.startswith("generated/") else "letters and symbols" for s in others.sources])
    for kind in ("letters and symbols", "generated"):
        print(f"  {kind:20s} {rejected[kinds == kind].mean():.2%} of {np.sum(kinds == kind):,}")
    print("  per character (lowest first):")
    table = sorted(
        (rejected[others.characters == c].mean(), c, np.sum(others.characters == c))
        for c in np.unique(others.characters)
    )
    print("   " + "  ".join(f"{c} {share:.0%} ({n})" for share, c, n in table))

    pen_status, _ = status_of(recognizer, test["pen_digits"].images)
    _, (x_test, y_test) = load_mnist()
    mnist_status, mnist_outputs = status_of(recognizer, x_test)
    pen_rejected, mnist_rejected = np.mean(pen_status == "not_a_digit"), np.mean(mnist_status == "not_a_digit")
    correct = (mnist_outputs[:, :10].argmax(1) == y_test) & (mnist_status != "not_a_digit")
    print(
        f"\nHeld-out pen digits answered 'not a digit': {pen_rejected:.2%} of {len(pen_status):,} "
        f"(target at most {TARGETS['pen_digits']:.1%})"
    )
    print(
        f"MNIST test digits answered 'not a digit':   {mnist_rejected:.2%} of {len(mnist_status):,} "
        f"(target at most {TARGETS['mnist']:.1%})"
    )
    print(
        f"MNIST test accuracy, a rejection counted as an error: {correct.mean():.2%} "
        f"(target at least {TARGETS['mnist_accuracy']:.2%})"
    )
    if args.score_baseline:
        score_design(args.score_baseline, others, np.mean(pen_status == "not_a_digit"))


def score_design(path, others, rejected_share: float) -> None:
    """The other design: no 11th output, a score (the top digit probability) with a threshold."""
    baseline = Recognizer.load(path)
    validation = evaluation_sets("validation")["pen_digits"]
    scores = baseline.runtime.outputs(network_input(validation.images))[:, :10].max(1)
    threshold = np.quantile(scores, max(rejected_share, 0.0025))  # the same false rejection on validation
    other_scores = np.concatenate(
        [
            baseline.runtime.outputs(network_input(others.images[i : i + 1000]))[:, :10].max(1)
            for i in tqdm(range(0, len(others.images), 1000), desc="score design")
        ]
    )
    print(
        f"\nSeparate-score design ({path}, top probability below {threshold:.3f} = not a digit, rejecting "
        f"{max(rejected_share, 0.0025):.2%} of validation pen digits): {np.mean(other_scores < threshold):.2%} "
        "of the test writers' non-digits answered 'not a digit'"
    )


if __name__ == "__main__":
    main()
