"""Compute a sweep spends with and without pruning: the same Optuna study (same sampler seed, search space,
data slice and epochs) run once with ``NopPruner`` and once with the default ``MedianPruner``.

Prints the trial-epochs each run trained (one epoch of one trial = one unit of compute), their ratio, the
best validation macro-F1 each found, and the wall time. Sized for a 2-core CPU (about 10 minutes idle): the
bundled Bitext intents (27) cut to ``--limit`` rows per split, ``--steps`` optimiser steps per epoch (of
the batch size each trial draws), so trials learn within a few epochs and their curves separate; a
realistic search runs longer trials.

    .venv/bin/python benchmarks/sweep_pruning.py                      # 10 trials, 5 epochs, Bitext intents
    .venv/bin/python benchmarks/sweep_pruning.py --experiment intent_banking77 --limit 2000 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from csml.config import OFFLINE_ENV

for key, value in OFFLINE_ENV.items():
    os.environ.setdefault(key, value)


def run(args: argparse.Namespace, workdir: str, pruner: str) -> dict[str, object]:
    from csml.sweep.run import sweep

    overrides = [
        f"experiment={args.experiment}",
        "hparams_search=optuna",
        f"paths.run_dir={workdir}/{pruner}",
        f"hparams_search.n_trials={args.trials}",
        "hparams_search.sampler.n_startup_trials=3",
        f"data.source.limit={args.limit}",
        "data.eval_batch_size=128",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.limit_train_batches={args.steps}",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        # Early stopping would also cut epochs; off, so the comparison isolates the pruner.
        "~callbacks.early_stopping",
    ]
    if pruner == "none":
        overrides.append("hparams_search.pruning.enabled=false")
    else:
        overrides += ["hparams_search.pruning.pruner.n_startup_trials=2"]
    start = time.perf_counter()
    result = sweep(overrides)
    return {
        "trial_epochs": result.trial_epochs,
        "complete": result.complete,
        "pruned": result.pruned,
        "best_val_macro_f1": round(result.best_value, 4) if result.best_value is not None else None,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("csml.sweep").setLevel(logging.INFO)  # one line per trial: progress
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", default="intent_bitext", help="training experiment the study tunes")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per epoch")
    parser.add_argument("--limit", type=int, default=270, help="rows per split")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        results = {
            "no_pruning": run(args, workdir, "none"),
            "median_pruner": run(args, workdir, "median"),
        }
    ratio = results["median_pruner"]["trial_epochs"] / results["no_pruning"]["trial_epochs"]
    print(
        json.dumps(
            {
                "experiment": args.experiment,
                "trials": args.trials,
                "max_epochs": args.epochs,
                "steps_per_epoch": args.steps,
                "rows_per_split": args.limit,
                **results,
                "trial_epochs_ratio_pruned_vs_unpruned": round(ratio, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
