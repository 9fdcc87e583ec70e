"""Drawn digits through ``Recognizer.predict_canvas``, as the apps would read them.

1. Real pen digits of held-out writers (the pen collections' test writers, never trained on or used for any
   choice; ``--split validation`` for the validation writers), drawn with the apps' default brush (20 px) on
   the 280 px canvas at 180 px tall: accuracy over all of them and per collection and site, the share answered
   "not a digit" or "not sure", and accuracy counting those as errors.  Beside it, the same without the
   "digits" that are one straight stroke labelled 0, 2-6, 8 or 9 (``is_stroke_fragment``: UNIPEN ``ibm``
   labels each stroke of some 4s as a "4"); the targets are judged on all digits.
2. Pen-redrawn MNIST test digits (the old benchmark: MNIST's own styles retraced with a pen, labelled as such).

    .venv/bin/python benchmarks/drawn_digits.py [--split test] [--model models/model.keras] [--count 1000]
"""

import argparse
from collections import Counter

import numpy as np
from tqdm import tqdm

from digitglyph import Recognizer
from digitglyph.data import load_mnist
from digitglyph.data.sources import EVALUATION_STYLE, is_digit, is_stroke_fragment, pen_sources
from digitglyph.strokes import DrawingStyle, drawn_digits, on_app_canvas

SITE_MINIMUM = 50  # sites with at least this many held-out digits are judged on their own
TARGETS = {"all": 0.99, "site": 0.97}


def held_out_pen_digits(recognizer, split: str):
    characters, splits, _ = pen_sources()  # the writer split every run uses
    chosen = [i for i in np.flatnonzero(splits == split) if is_digit(characters.labels[i])]
    style = DrawingStyle(**EVALUATION_STYLE)
    rows = []
    for index in tqdm(chosen, desc=f"{split} writers' pen digits"):
        strokes = characters.strokes(index)
        prediction = recognizer.predict_canvas(on_app_canvas(strokes, style))
        fragment = is_stroke_fragment(strokes, characters.labels[index])
        rows.append((characters.sources[index], int(characters.labels[index]), prediction, fragment))
    return rows


def report(rows, title: str) -> None:
    """``rows``: (source, label, prediction, is a one-stroke fragment)."""
    correct = np.array([p.best_guess == label for _, label, p, _ in rows])
    answered = np.array([p.digit == label for _, label, p, _ in rows])
    fragments = np.array([fragment for *_, fragment in rows])
    statuses = Counter(p.status for _, _, p, _ in rows)
    print(f"\n{title}: {len(rows):,} digits")
    print(
        f"  accuracy (best guess)                  {correct.mean():.2%}   target {TARGETS['all']:.0%}: "
        f"{'met' if correct.mean() >= TARGETS['all'] else 'NOT met'}"
    )
    print(f"  answered 'not a digit'                 {statuses['not_a_digit'] / len(rows):.2%}")
    print(f"  answered 'not sure'                    {statuses['unsure'] / len(rows):.2%}")
    print(f"  right digit answered (others = error)  {answered.mean():.2%}")
    if fragments.any():
        print(
            f"  one straight stroke labelled 0/2-6/8/9 {fragments.sum()} (read right: {correct[fragments].sum()}); "
            f"accuracy without them {correct[~fragments].mean():.2%}"
        )
    sources = np.array([source for source, *_ in rows])
    print(f"  {'source':16s} {'digits':>7s} {'accuracy':>9s} {'not a digit':>12s} {'fragments':>10s} {'without':>8s}")
    for source in sorted(set(sources), key=lambda s: -np.sum(sources == s)):
        members = sources == source
        rejected = np.mean([p.status == "not_a_digit" for (s, _, p, _) in rows if s == source])
        kept = members & ~fragments
        judged = (
            ""
            if members.sum() < SITE_MINIMUM
            else ("  ok" if correct[members].mean() >= TARGETS["site"] else f"  below {TARGETS['site']:.0%}")
        )
        print(
            f"  {source:16s} {members.sum():7d} {correct[members].mean():9.2%} {rejected:12.2%} "
            f"{(members & fragments).sum():10d} {correct[kept].mean():8.2%}{judged}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=("test", "validation"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--count", type=int, default=1000, help="pen-redrawn MNIST test digits")
    args = parser.parse_args()
    recognizer = Recognizer.load(args.model)
    print(f"model {recognizer.version}, answer rule {recognizer.rule}")
    report(
        held_out_pen_digits(recognizer, args.split),
        f"Real pen digits of the {args.split} writers (default brush, 280 px canvas)",
    )
    _, (images, labels) = load_mnist()
    digits = drawn_digits(args.count, seed=0, images=images, labels=labels)
    rows = [
        ("pen-redrawn MNIST", d.label, recognizer.predict_canvas(d.render()), False)
        for d in tqdm(digits, desc="pen-redrawn MNIST")
    ]
    report(rows, "Pen-redrawn MNIST test digits (MNIST's own styles, retraced)")


if __name__ == "__main__":
    main()
