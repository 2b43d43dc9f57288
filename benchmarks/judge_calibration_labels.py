"""How many labelled replies an auditor needs to calibrate the groundedness judge's threshold.

Scores every row of a labelled set once with the judge, then, for each sample size n (25, 50, 100, 200),
draws ``--draws`` random samples of n rows (redrawn while a sample lacks a class), chooses the threshold on
each as ``csml calibrate-judge`` does (:func:`csml.judge.calibration.choose_threshold`: best balanced
accuracy, midpoint of the best interval) and measures balanced accuracy on the remaining rows. Per n it
prints the regret -- the best balanced accuracy any threshold reaches on the remaining rows minus the one the
calibrated threshold reaches -- as median, 10th and 90th percentiles (the 90th is the worst tenth of draws),
and the share of draws within 0.02 of the best; and the same for the judge's shipped threshold (its model
card's) on the same remaining rows. Rows the judge cannot score (no checkable claim) are left out, as
calibration leaves them out.

Input: a labelled JSONL file in ``csml calibrate-judge``'s format (reply/answer, knowledge, grounded),
BEGIN's TSV with ``--begin`` (columns knowledge, response, begin_label; "Fully attributable" is grounded), or
DelucionQA's folder with ``--delucionqa`` (its test split's answers; not hallucinated is grounded; contexts
decoded by :mod:`csml.judge.delucionqa`).

    .venv/bin/python benchmarks/judge_calibration_labels.py labelled.jsonl --model runs/judge_groundedness/<run>/model
    .venv/bin/python benchmarks/judge_calibration_labels.py --begin ../shared/data/begin/begin_test_wow.tsv
    .venv/bin/python benchmarks/judge_calibration_labels.py --delucionqa ../shared/data/delucionqa
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from csml.config import OFFLINE_ENV, compose

SIZES = (25, 50, 100, 200)
TOLERANCE = 0.02


def read_begin(path: str) -> tuple[list[str], list[list[str]], list[bool]]:
    """(replies, knowledge, grounded) of a BEGIN TSV file; labels other than "Fully attributable" are not
    grounded (BEGIN's "Generic" included)."""
    from pathlib import Path

    from csml.judge.data import BEGIN_SUPPORTED
    from csml.judge.data import read_begin as begin_rows

    rows = [values for _, values in begin_rows(Path(path))]
    return (
        [v["response"] for v in rows],
        [[v["knowledge"]] for v in rows],
        [v["begin_label"].strip() == BEGIN_SUPPORTED for v in rows],
    )


def read_delucionqa(root: str) -> tuple[list[str], list[list[str]], list[bool]]:
    """(replies, knowledge, grounded) of DelucionQA's test split (answers people found not hallucinated are
    grounded)."""
    from csml.judge import delucionqa

    samples, vocabulary = delucionqa.load(root)
    replies, knowledge, grounded = delucionqa.labelled_pairs(samples["test"], vocabulary)
    return replies, [[k] for k in knowledge], grounded.tolist()


def _summary(regrets: Sequence[float], tolerance: float) -> dict[str, float]:
    values = np.asarray(regrets, dtype=np.float64)
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {
        "median": float(median),
        "p10": float(p10),
        "p90": float(p90),
        "within": float(np.mean(values <= tolerance + 1e-12)),
    }


def _draw(rng: np.random.Generator, positive: np.ndarray, n: int, attempts: int = 100) -> np.ndarray:
    for _ in range(attempts):
        rows = rng.choice(len(positive), size=n, replace=False)
        if 0 < positive[rows].sum() < n:
            return rows
    raise ValueError(f"{attempts} random samples of {n} rows all held one class: too few of the other")


def resampling_regret(
    scores: np.ndarray,
    positive: np.ndarray,
    shipped_threshold: float,
    sizes: Sequence[int] = SIZES,
    draws: int = 200,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> dict[int, dict[str, Any]]:
    """Regret of calibrating on ``n`` random rows, evaluated on the rest, for every ``n`` in ``sizes``.

    Args:
        scores: The judge's answer score of every labelled row (rows without a score already left out).
        positive: Whether each row is labelled grounded.
        shipped_threshold: The judge's own threshold, measured on the same remaining rows for comparison.
        sizes: Sample sizes n; each must leave rows of both classes to evaluate on.
        draws: Random samples per n.
        seed: Seed of the draws.
        tolerance: Regret counted as "close enough" in ``within``.

    Returns:
        Per n: ``calibrated`` and ``shipped``, each ``{median, p10, p90, within}`` of the regret (best
        balanced accuracy on the remaining rows minus the one reached), and ``draws``.
    """
    from csml.judge.calibration import balanced_accuracy_at, choose_threshold

    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, Any]] = {}
    for n in sizes:
        if n >= len(scores) - 1:
            raise ValueError(f"a sample of {n} rows leaves too few of {len(scores)} to evaluate on")
        calibrated, shipped = [], []
        for _ in range(draws):
            rows = _draw(rng, positive, n)
            rest = np.ones(len(scores), dtype=bool)
            rest[rows] = False
            threshold, _, _ = choose_threshold(scores[rows], positive[rows])
            _, best, _ = choose_threshold(scores[rest], positive[rest])
            calibrated.append(best - balanced_accuracy_at(scores[rest], positive[rest], threshold))
            shipped.append(best - balanced_accuracy_at(scores[rest], positive[rest], shipped_threshold))
        out[n] = {
            "calibrated": _summary(calibrated, tolerance),
            "shipped": _summary(shipped, tolerance),
            "draws": draws,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", nargs="?", help="labelled JSONL (reply, knowledge, grounded)")
    parser.add_argument("--begin", help="a BEGIN TSV file instead (e.g. begin_test_wow.tsv)")
    parser.add_argument("--delucionqa", help="DelucionQA's folder instead (its test split)")
    parser.add_argument("--model", default="models:/csml-judge-groundedness@champion")
    parser.add_argument("--int8", action="store_true", help="score with the int8-quantised judge")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if sum(x is not None for x in (args.labels, args.begin, args.delucionqa)) != 1:
        parser.error(
            "give one of: a labelled JSONL file, --begin path/to/begin.tsv, --delucionqa path/to/folder"
        )
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)

    import torch

    from csml.judge.calibration import balanced_accuracy_at, choose_threshold, read_labelled_replies
    from csml.judge.judge import GroundednessJudge

    torch.set_num_threads(args.threads)
    if args.begin:
        replies, knowledge, grounded = read_begin(args.begin)
    elif args.delucionqa:
        replies, knowledge, grounded = read_delucionqa(args.delucionqa)
    else:
        data = read_labelled_replies(args.labels)
        replies, knowledge, grounded = data.replies, data.knowledge, data.grounded
    tracking = compose("calibrate_judge").tracking
    judge = GroundednessJudge.load(args.model, tracking.uri, tracking.get("registry_uri"), int8=args.int8)
    start = time.perf_counter()
    verdicts = judge.judge_many(replies, knowledge)
    seconds = time.perf_counter() - start
    kept = [i for i, v in enumerate(verdicts) if v.score is not None]
    scores = np.array([verdicts[i].score for i in kept], dtype=np.float64)
    positive = np.array([grounded[i] for i in kept], dtype=bool)
    full_threshold, full_best, _ = choose_threshold(scores, positive)
    print(
        f"{len(replies)} rows scored in {seconds:.0f} s; {len(kept)} with a score "
        f"({int(positive.sum())} grounded, {int((~positive).sum())} not), {len(replies) - len(kept)} without"
    )
    print(
        f"all rows: best balanced accuracy {full_best:.3f} at threshold {full_threshold:.4f}; shipped "
        f"threshold {judge.threshold:.4f}: {balanced_accuracy_at(scores, positive, judge.threshold):.3f}"
    )
    results = resampling_regret(scores, positive, judge.threshold, args.sizes, args.draws, args.seed)
    print(f"\nregret = best balanced accuracy on the remaining rows - reached ({args.draws} draws per n)")
    print(f"{'n':>5} | {'threshold':<10} | {'median':>7} | {'p10':>7} | {'p90':>7} | within {TOLERANCE}")
    for n, row in results.items():
        for name in ("calibrated", "shipped"):
            s = row[name]
            print(
                f"{n:>5} | {name:<10} | {s['median']:>7.4f} | {s['p10']:>7.4f} | {s['p90']:>7.4f} | "
                f"{s['within']:.1%}"
            )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "model": args.model,
                    "input": args.begin or args.delucionqa or args.labels,
                    "shipped_threshold": judge.threshold,
                    "rows": len(replies),
                    "scored": len(kept),
                    "seed": args.seed,
                    "results": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
