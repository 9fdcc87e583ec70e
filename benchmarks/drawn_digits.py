"""Drawn-digit benchmark: MNIST test digits redrawn as pen strokes on canvases, through ``predict_canvas``.

Each digit is skeletonized into pen paths and redrawn with a round brush, with the canvas side
(280-560 px), brush width (1/22 to 1/10 of the canvas), digit height (35-85 % of the canvas),
position, slant and hand jitter varying.  Prints the accuracy next to the same model's MNIST test
accuracy, and by brush width and digit size.

    .venv/bin/python benchmarks/drawn_digits.py [--count 2000] [--model runs/my-run/model.keras]
"""

import argparse

import numpy as np

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.strokes import drawn_digits


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--model", help="a trained model file instead of the shipped one (to compare recipes)")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    _, (x_test, y_test) = load_mnist()
    mnist_accuracy = np.mean(recognizer.predict_mnist(x_test).argmax(1) == y_test)
    digits = drawn_digits(args.count, seed=args.seed, images=x_test, labels=y_test)
    predictions = [recognizer.predict_canvas(d.render()) for d in digits]
    labels = np.array([d.label for d in digits])
    guessed = np.array([p.best_guess if p.best_guess is not None else -1 for p in predictions])
    answered = np.array([p.digit if p.digit is not None else -1 for p in predictions])
    relative_brush = np.array([d.brush_width / d.width for d in digits])
    relative_size = np.array([max(np.ptp(np.concatenate(d.strokes), 0)) / d.width for d in digits])

    top1 = np.mean(guessed == labels)
    print(f"model {recognizer.version}; {args.count} drawn digits (seed {args.seed})")
    print(f"MNIST test accuracy:                 {mnist_accuracy:.2%}")
    print(f"drawn-digit accuracy (top-1):        {top1:.2%}   gap {100 * (mnist_accuracy - top1):.2f} points "
          f"(target: within 1.5)")
    sure = answered >= 0
    print(f"answered (not 'unsure'):             {np.mean(sure):.2%}; accuracy when answered "
          + (f"{np.mean(answered[sure] == labels[sure]):.2%}" if sure.any() else "n/a"))
    for title, values, edges in (("brush / canvas", relative_brush, [0, 1 / 16, 1 / 12, 1]),
                                 ("digit size / canvas", relative_size, [0, 0.5, 0.7, 1.5])):
        for low, high in zip(edges[:-1], edges[1:]):
            members = (values >= low) & (values < high)
            if members.any():
                print(f"  {title} {low:.2f}-{high:.2f}: {np.mean(guessed[members] == labels[members]):.2%} "
                      f"({members.sum()} digits)")
    confusions = {}
    for label, guess in zip(labels, guessed):
        if label != guess:
            confusions[(label, guess)] = confusions.get((label, guess), 0) + 1
    top = sorted(confusions.items(), key=lambda item: -item[1])[:6]
    print("most common mistakes (true -> predicted: count): " + ", ".join(f"{a}->{b}: {n}" for (a, b), n in top))


if __name__ == "__main__":
    main()
