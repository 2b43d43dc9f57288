"""Training on a long-tailed export: what the default label policy drops, and the imbalance options' macro-F1.

Makes the bundled Banking77 look like a real ticket export (issue 17): ``--labels`` intents whose training
rows fall off geometrically from ``--head`` to one row (a long tail of labels with 1-5 examples), a test
file without ``--missing-in-test`` of the kept labels, and one test-only label train never has. Then trains
the same MiniLM classifier (``--epochs`` epochs, ``--seed``) through ``data=user_files`` with each option:

- ``plain``: the defaults (label policy only);
- ``balanced`` / ``sqrt_inverse``: ``model.class_weighting``;
- ``balanced_sampling``: ``data.balanced_sampling=true``.

It prints, per option, test accuracy and macro-F1 over the labels present, macro-F1 over the tail labels
(fewer than 20 training rows) and the run time, and once what the policy dropped. The figures are measured,
not targets.

    .venv/bin/python benchmarks/label_tail.py
    .venv/bin/python benchmarks/label_tail.py --labels 40 --epochs 3 --options plain balanced
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from csml.config import compose, project_root

OPTIONS = {
    "plain": [],
    "balanced": ["model.class_weighting=balanced"],
    "sqrt_inverse": ["model.class_weighting=sqrt_inverse"],
    "balanced_sampling": ["data.balanced_sampling=true"],
}
TAIL = 20  # training rows below which a label counts as tail


def export_run_overrides(out: Path, name: str, epochs: int, seed: int) -> list[str]:
    """Overrides that train on the ``train.csv`` / ``test.csv`` export under ``out`` through
    ``data=user_files``, in a throwaway MLflow store there, outputs under ``out / name``."""
    return [
        f"paths.run_dir={out / 'runs'}",
        f"paths.output_dir={out / name}",
        f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
        f"tracking.artifact_location={out / 'artifacts'}",
        "tracking.register=false",
        "data=user_files",
        f"data.source.train={out / 'train.csv'}",
        f"data.source.test={out / 'test.csv'}",
        "data.source.columns.intent=category",
        f"trainer.max_epochs={epochs}",
        f"seed={seed}",
        "trainer.enable_progress_bar=false",
    ]


def write_export(out: Path, labels: int, head: int, missing_in_test: int) -> dict[str, int]:
    """Writes ``train.csv`` and ``test.csv`` under ``out``; returns the training rows per label."""
    source = project_root() / "data" / "banking77"
    rows: dict[str, dict[str, list[dict[str, str]]]] = {}
    for split in ("train", "test"):
        with (source / f"{split}.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.setdefault(row["category"], {"train": [], "test": []})[split].append(row)
    names = sorted(rows)[: labels + 1]
    test_only, kept = names[-1], names[:-1]
    counts = {
        name: min(len(rows[name]["train"]), max(1, round(head * (1 / head) ** (i / (len(kept) - 1)))))
        for i, name in enumerate(kept)
    }
    train = [row for name in kept for row in rows[name]["train"][: counts[name]]]
    no_test = set(kept[: missing_in_test * 7 : 7])  # spread over head and tail
    test = [row for name in kept if name not in no_test for row in rows[name]["test"]]
    test += rows[test_only]["test"]
    for name, split_rows in (("train", train), ("test", test)):
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "category"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "category": r["category"]} for r in split_rows)
    return counts


def tail_macro_f1(predictions: Path, tail: set[str]) -> float:
    """Mean F1 of the ``tail`` labels present in the test predictions (JSONL of csml's evaluation)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # true positives, predicted, actual
    for line in predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        truth, predicted = row["label"], row["prediction"]
        counts[predicted][1] += 1
        counts[truth][2] += 1
        counts[truth][0] += truth == predicted
    scores = []
    for label in tail:
        tp, predicted, actual = counts[label]
        if actual:
            scores.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    return sum(scores) / len(scores) if scores else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=30, help="intents with training rows")
    parser.add_argument("--head", type=int, default=120, help="training rows of the most frequent intent")
    parser.add_argument("--missing-in-test", type=int, default=3, help="kept intents with no test rows")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of training, the validation carve and sampling (the export is fixed)",
    )
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    args = parser.parse_args()

    from csml.train import train

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        counts = write_export(out, args.labels, args.head, args.missing_in_test)
        tail = {name for name, n in counts.items() if n < TAIL}
        print(
            f"export: {len(counts)} intents, {sum(counts.values())} training rows "
            f"({min(counts.values())}-{max(counts.values())} per intent, {len(tail)} with < {TAIL}), "
            f"{args.missing_in_test} without test rows, one test-only intent"
        )
        for option in args.options:
            cfg = compose(
                "train",
                [
                    *export_run_overrides(out, option, args.epochs, args.seed),
                    f"+data.seed={args.seed}",
                    *OPTIONS[option],
                ],
            )
            start = time.perf_counter()
            metrics, objects = train(cfg)
            seconds = time.perf_counter() - start
            if option == args.options[0]:
                report = objects["datamodule"].splits.label_report
                print("label policy:", json.dumps({k: v for k, v in report.items() if k != "policy"}))
            tail_f1 = tail_macro_f1(out / option / "evaluation" / "test_predictions.jsonl", tail)
            print(
                f"{option:18s} test accuracy {metrics['test/accuracy']:.4f}  macro-F1 {metrics['test/macro_f1']:.4f}  "
                f"tail macro-F1 {tail_f1:.4f}  ({seconds:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
