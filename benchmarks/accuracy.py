"""Accuracy of the shipped model on the 10,000 MNIST test images.

.venv/bin/python benchmarks/accuracy.py [--model models/model.keras]
"""

import argparse
import time

import numpy as np

from digitglyph import Recognizer
from digitglyph.answers import digit_probabilities
from digitglyph.data import load_mnist
from digitglyph.evaluate import statuses, summarize
from digitglyph.preprocess import network_input


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    _, (x_test, y_test) = load_mnist()
    started = time.perf_counter()
    outputs = recognizer.runtime.outputs(network_input(x_test))  # once: the digits and "not a digit"
    seconds = time.perf_counter() - started
    probabilities = digit_probabilities(outputs)  # what predict_mnist returns
    metrics = summarize(probabilities, y_test)
    status = statuses(outputs, recognizer.rule)
    answered = status == "ok"
    print(f"model: {recognizer.version}, answer rule {recognizer.rule}")
    print(f"MNIST test accuracy: {metrics['test_accuracy']:.4%} ({metrics['test_errors']} errors / {len(y_test)})")
    print("per class: " + ", ".join(f"{d}: {a:.2%}" for d, a in metrics["per_class_accuracy"].items()))
    print(
        f"answered 'not sure': {np.mean(status == 'unsure'):.2%}, 'not a digit': {np.mean(status == 'not_a_digit'):.2%}"
        f" of images; accuracy on the rest: {np.mean(probabilities[answered].argmax(1) == y_test[answered]):.4%}; "
        f"accuracy with a 'not a digit' counted as an error: "
        f"{np.mean((probabilities.argmax(1) == y_test) & (status != 'not_a_digit')):.4%}"
    )
    print(f"expected calibration error: {metrics['calibration']['expected_calibration_error']:.4f}")
    print(f"10,000 images in {seconds:.2f} s")


if __name__ == "__main__":
    main()
