"""Compound labels (``a#b``): the multi-label mode against treating each compound as a class of its own.

Makes the bundled Banking77 look like a ticket export with compound labels (issue 17): ``--labels``
intents with ``--train-rows`` training rows each, plus compound rows, each the texts of two Banking77 rows of
different intents joined into one message labelled ``a#b``: ``--pairs`` pairs of intents with
``--compound-train`` such rows in train and ``--compound-test`` in test, and ``--test-only-pairs`` pairs that
only the test file has. Then trains the same MiniLM classifier (``--epochs``, ``--seed``) through
``data=user_files`` twice:

- ``single-label``: the defaults, where ``a#b`` is one more class (test rows of the test-only pairs are
  labels train lacks, dropped by the label policy: the model cannot predict them);
- ``multi-label``: ``data.source.multi_label=true``, one sigmoid per intent and a threshold per intent.

It prints, per mode, on the compound test rows of the pairs both modes can predict: exact-set accuracy and
micro-F1 over (row, intent) decisions; exact accuracy on the single-intent rows; and for the multi-label
mode the same on the test-only pairs. The figures are measured, not targets.

    .venv/bin/python benchmarks/label_multilabel.py
    .venv/bin/python benchmarks/label_multilabel.py --labels 6 --train-rows 12 --compound-train 6 --epochs 1
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from label_tail import export_run_overrides  # the sibling benchmark (run as a script from benchmarks/)

from csml.config import compose, project_root

SEPARATOR = "#"
MODES = {"single-label": [], "multi-label": ["data.source.multi_label=true"]}


def write_export(out: Path, args: argparse.Namespace) -> dict[str, list[tuple[str, str]]]:
    """Writes ``train.csv`` and ``test.csv`` under ``out``; returns the pairs by kind (``seen``: in train
    and test, ``test_only``: in test only)."""
    rows: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "test"):
        with (project_root() / "data" / "banking77" / f"{split}.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.setdefault(row["category"], {"train": [], "test": []})[split].append(row["text"])
    intents = sorted(rows)[: args.labels]
    seen = [(intents[i], intents[i + 1]) for i in range(0, len(intents) - 1, 2)][: args.pairs]
    test_only = [(intents[i], intents[i + 2]) for i in range(0, len(intents) - 2, 2)][: args.test_only_pairs]
    # Texts of each intent not used as single-intent rows, taken in turn by its compound rows.
    pool = {
        split: {name: iter(rows[name][split][start:]) for name in intents}
        for split, start in (("train", args.train_rows), ("test", args.test_rows))
    }

    def compound(split: str, a: str, b: str, count: int) -> list[tuple[str, str]]:
        texts = [(next(pool[split][a], None), next(pool[split][b], None)) for _ in range(count)]
        label = SEPARATOR.join(sorted((a, b)))
        return [(f"{x} {y}", label) for x, y in texts if x is not None and y is not None]

    train = [(text, name) for name in intents for text in rows[name]["train"][: args.train_rows]]
    test = [(text, name) for name in intents for text in rows[name]["test"][: args.test_rows]]
    for a, b in seen:
        train += compound("train", a, b, args.compound_train)
        test += compound("test", a, b, args.compound_test)
    for a, b in test_only:
        test += compound("test", a, b, args.compound_test)
    for name, split_rows in (("train", train), ("test", test)):
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows(split_rows)
    return {"seen": seen, "test_only": test_only}


def set_scores(predictions: Path, keep: Callable[[set[str]], bool]) -> tuple[float, float, int]:
    """Exact-set accuracy, micro-F1 over (row, intent) decisions and row count of the test predictions
    (JSONL of csml's evaluation) whose true intent set passes ``keep``; a compound class predicted by the
    single-label model counts as its intents."""
    exact = true_positives = predicted = actual = count = 0
    for line in predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        truth, guess = set(row["label"].split(SEPARATOR)), set(row["prediction"].split(SEPARATOR))
        if not keep(truth):
            continue
        count += 1
        exact += truth == guess
        true_positives += len(truth & guess)
        predicted += len(guess)
        actual += len(truth)
    if not count:
        return float("nan"), float("nan"), 0
    return exact / count, 2 * true_positives / (predicted + actual), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=20, help="Banking77 intents")
    parser.add_argument("--train-rows", type=int, default=60, help="single-intent training rows per intent")
    parser.add_argument("--test-rows", type=int, default=20, help="single-intent test rows per intent")
    parser.add_argument(
        "--pairs", type=int, default=8, help="intent pairs with compound rows in train and test"
    )
    parser.add_argument("--test-only-pairs", type=int, default=4, help="intent pairs only the test file has")
    parser.add_argument("--compound-train", type=int, default=30, help="training rows per pair")
    parser.add_argument("--compound-test", type=int, default=10, help="test rows per pair")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42, help="seed of training and the validation carve")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()

    from csml.train import train

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pairs = write_export(out, args)
        seen = {frozenset(pair) for pair in pairs["seen"]}
        test_only = {frozenset(pair) for pair in pairs["test_only"]}
        print(
            f"export: {args.labels} intents, {len(seen)} compound pairs in train and test, "
            f"{len(test_only)} in test only"
        )
        for mode in args.modes:
            cfg = compose("train", [*export_run_overrides(out, mode, args.epochs, args.seed), *MODES[mode]])
            start = time.perf_counter()
            _, objects = train(cfg)
            seconds = time.perf_counter() - start
            report = objects["datamodule"].splits.label_report
            predictions = out / mode / "evaluation" / "test_predictions.jsonl"
            compound = set_scores(predictions, lambda labels: frozenset(labels) in seen)
            single = set_scores(predictions, lambda labels: len(labels) == 1)
            print(
                f"{mode:13s} compound rows (n={compound[2]}): exact {compound[0]:.4f}  "
                f"micro-F1 {compound[1]:.4f}  single-intent rows (n={single[2]}): exact {single[0]:.4f}  "
                f"test rows dropped {report['rows_dropped'].get('test', 0)}  ({seconds:.0f} s)",
                flush=True,
            )
            if mode == "multi-label" and test_only:
                unseen = set_scores(predictions, lambda labels: frozenset(labels) in test_only)
                print(
                    f"{'':13s} test-only pairs (n={unseen[2]}): exact {unseen[0]:.4f}  "
                    f"micro-F1 {unseen[1]:.4f} (the single-label model cannot predict them)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
