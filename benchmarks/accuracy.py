"""Accuracy of the shipped model on the 10,000 MNIST test images.

    .venv/bin/python benchmarks/accuracy.py [--model models/model.keras]
"""

import argparse
import time

import numpy as np

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.evaluate import summarize


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    _, (x_test, y_test) = load_mnist()
    started = time.perf_counter()
    probabilities = recognizer.predict_mnist(x_test)
    seconds = time.perf_counter() - started
    metrics = summarize(probabilities, y_test)
    unsure = probabilities.max(1) < recognizer.threshold
    print(f"model: {recognizer.version}")
    print(f"MNIST test accuracy: {metrics['test_accuracy']:.4%} ({metrics['test_errors']} errors / {len(y_test)})")
    print(f"per class: " + ", ".join(f"{d}: {a:.2%}" for d, a in metrics["per_class_accuracy"].items()))
    print(f"below the {recognizer.threshold} confidence threshold: {unsure.mean():.2%} of images; "
          f"accuracy on the rest: {np.mean(probabilities[~unsure].argmax(1) == y_test[~unsure]):.4%}")
    print(f"expected calibration error: {metrics['calibration']['expected_calibration_error']:.4f}")
    print(f"10,000 images in {seconds:.2f} s")


if __name__ == "__main__":
    main()
