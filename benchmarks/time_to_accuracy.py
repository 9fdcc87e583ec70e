"""Time to accuracy on this CPU: our recipe (glyphnet, augmentation, AdamW, one-cycle) against glyph17
trained with the original recipe (Adam defaults, constant learning rate, no augmentation), in one run,
under the same wall-clock budget each.

Test accuracy is printed at the end of every epoch for this learning curve only; it drives no decision.
Each recipe ends with the model it has when its time is up: training stops at the batch where the
budget is spent and those weights are kept (``selection="final"``), for both recipes alike.  Our
one-cycle schedule runs on the clock (``time_budget_s``), so it has annealed when the time is up.

    .venv/bin/python benchmarks/time_to_accuracy.py [--budget 600] [--parallel]

``--parallel`` trains both at once with one core each (same conditions for both when the machine is
busy); the default trains them one after the other with all cores.
"""

import argparse
import json
import multiprocessing
import tempfile
from pathlib import Path

RECIPES = {
    "glyph17 original recipe": dict(architecture="glyph17", optimizer="adam", learning_rate=0.001,
                                    schedule="constant", augment=False, batch_size=128),
    "glyphnet, our recipe": dict(architecture="glyphnet", optimizer="adamw", learning_rate=0.003,
                                 schedule="onecycle", augment=True, batch_size=128),
}


def run(name, values, run_dir, queue):
    from digitglyph.train import read_history, train

    metrics = train(values, run_dir)
    queue.put((name, read_history(run_dir), metrics["test_accuracy"]))


def first_time(history, level):
    return next((row["wall_seconds"] for row in history if row["test_accuracy_report_only"] >= level), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per recipe")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (split, initialisation, batches)")
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--out", help="directory for the run dirs (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="time-to-accuracy-"))
    threads = 1 if args.parallel else None
    jobs = []
    for name, recipe in RECIPES.items():
        # epochs=200 is only an upper bound: the budget ends both runs
        values = dict(recipe, epochs=200, time_budget_s=args.budget, report_test_each_epoch=True,
                      threads=threads, seed=args.seed, selection="final")
        jobs.append((name, values, str(out / recipe["architecture"])))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    results = {}
    if args.parallel:
        processes = [context.Process(target=run, args=(*job, queue)) for job in jobs]
        for process in processes:
            process.start()
        for _ in processes:
            name, history, final = queue.get()
            results[name] = (history, final)
        for process in processes:
            process.join()
    else:
        for job in jobs:
            process = context.Process(target=run, args=(*job, queue))
            process.start()
            name, history, final = queue.get()
            process.join()
            results[name] = (history, final)

    print(f"budget {args.budget:.0f} s per recipe, {'in parallel, 1 core each' if args.parallel else 'one after the other'}, "
          f"seed {args.seed}")
    for name, (history, final) in results.items():
        print(f"\n{name}: epoch, seconds, test accuracy (report only)")
        for row in history:
            print(f"  {row['epoch'] + 1:3d} {row['wall_seconds']:7.1f}  {row['test_accuracy_report_only']:.4%}")
        print(f"  model at the end of the budget (last epoch): {final:.4%}")
    (base_history, base_final), (our_history, our_final) = results[list(RECIPES)[0]], results[list(RECIPES)[1]]
    print()
    for level in (0.99, 0.995):
        base, ours = first_time(base_history, level), first_time(our_history, level)
        ratio = f"{base / ours:.2f}x faster" if base and ours else "n/a"
        fmt = lambda s: f"{s:.0f} s" if s else "not reached"  # noqa: E731
        print(f"time to {level:.1%}: glyph17 original {fmt(base)}, ours {fmt(ours)}  ({ratio})")
    print(f"end of budget: glyph17 original {base_final:.4%}, ours {our_final:.4%}, "
          f"difference {100 * (our_final - base_final):+.2f} points (target: at least +0.30)")
    (out / "summary.json").write_text(json.dumps({n: {"final": f, "history": h} for n, (h, f) in results.items()}))


if __name__ == "__main__":
    main()
