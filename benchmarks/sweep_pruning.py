"""Compute a sweep spends with and without pruning: the same Optuna study (same sampler seed, search space,
data slice and epochs) run once with ``NopPruner`` and once with the default ``MedianPruner``.

Prints the trial-epochs each run trained (one epoch of one trial = one unit of compute), their ratio, the
best validation macro-F1 each found, and the wall time. Sized for a 2-core CPU: a small Banking77 slice,
two optimiser steps of 16 per epoch; the figures measure the pruning mechanism, not a realistic search.

    .venv/bin/python benchmarks/sweep_pruning.py --trials 8 --epochs 3
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


def run(workdir: str, pruner: str, trials: int, epochs: int, limit: int) -> dict[str, object]:
    from csml.sweep.run import sweep

    overrides = [
        "experiment=intent_banking77",
        "hparams_search=optuna",
        f"paths.run_dir={workdir}/{pruner}",
        f"hparams_search.n_trials={trials}",
        "hparams_search.sampler.n_startup_trials=3",
        f"data.source.limit={limit}",
        "data.batch_size=16",
        "data.eval_batch_size=128",
        f"trainer.max_epochs={epochs}",
        "trainer.limit_train_batches=2",
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
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=120, help="Banking77 rows per split")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        results = {
            "no_pruning": run(workdir, "none", args.trials, args.epochs, args.limit),
            "median_pruner": run(workdir, "median", args.trials, args.epochs, args.limit),
        }
    ratio = results["median_pruner"]["trial_epochs"] / results["no_pruning"]["trial_epochs"]
    print(
        json.dumps(
            {
                "trials": args.trials,
                "max_epochs": args.epochs,
                "rows_per_split": args.limit,
                **results,
                "trial_epochs_ratio_pruned_vs_unpruned": round(ratio, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
