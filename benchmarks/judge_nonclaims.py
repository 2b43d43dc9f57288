"""How well :func:`csml.judge.nonclaims.is_checkable` tells courtesy from checkable claims, on labelled sentences.

Reads a labelled set (default the bundled ``data/judge/nonclaims.jsonl``: one ``{"sentence", "checkable",
"source"}`` object a line) and prints, overall and per source, the confusion counts, the share of
non-claims kept as claims (pleasantries the judge would still check and could call unsupported) and the
share of checkable sentences dropped (facts the judge would never check), then lists every misclassified
sentence. With ``--twcs`` it also scores the labelled brand replies of the TWCS sample (text read from
that CSV, labels from ``data/judge/nonclaims_twcs.jsonl``; the tweets are not bundled). With ``--sgd`` it
scores the system turns of Schema-Guided Dialogue test files, a source the rule was never tuned on, labelled
by their dialogue acts: a turn whose acts are all ``REQ_MORE``, ``GOODBYE`` or ``REQUEST`` ("Anything else I
can help with?", "Which city?") is no claim; a turn that informs, offers, notifies or counts is checkable.
Goals: both shares <= 0.05.

    .venv/bin/python benchmarks/judge_nonclaims.py
    .venv/bin/python benchmarks/judge_nonclaims.py --twcs ../shared/data/twcs_sample/sample.csv
    .venv/bin/python benchmarks/judge_nonclaims.py --sgd ../shared/data/sgd_schema_guided/test
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

from csml.config import project_root
from csml.judge.claims import split_claims
from csml.judge.nonclaims import is_checkable

DATA = project_root() / "data" / "judge"


def load(path: Path) -> list[dict]:
    """The labelled sentences of a JSONL file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_twcs(sample_csv: Path, labels: Path) -> list[dict]:
    """TWCS brand-reply sentences: text sliced from the sample CSV at the labelled character spans."""
    with open(sample_csv, encoding="utf-8", newline="") as f:
        texts = {row["tweet_id"]: row["text"] for row in csv.DictReader(f)}
    rows = load(labels)
    return [
        {
            "sentence": texts[str(r["tweet_id"])][r["start"] : r["end"]],
            "checkable": r["checkable"],
            "source": "twcs",
        }
        for r in rows
    ]


_FACT_ACTS = {"INFORM", "OFFER", "NOTIFY_SUCCESS", "NOTIFY_FAILURE", "INFORM_COUNT"}


def load_sgd(folder: Path, per_kind: int = 1000) -> list[dict]:
    """System turns of SGD dialogue files labelled by their acts (up to ``per_kind`` of each label)."""
    from csml.judge.dialogues import COURTESY_ACTS, system_turns

    rows: dict[bool, list[dict]] = {True: [], False: []}
    for turns in system_turns(folder):
        for utterance, acts in turns:
            if not acts:
                continue
            label = None
            if acts <= COURTESY_ACTS:
                label = False
            elif acts & _FACT_ACTS:
                label = True
            if label is not None and len(rows[label]) < per_kind:
                rows[label].append({"sentence": utterance, "checkable": label, "source": "sgd"})
    return rows[True] + rows[False]


def checkable(row: dict) -> bool:
    """The rule's verdict on a labelled row; an SGD turn (several sentences) is checkable when any of its
    sentences is, as the judge splits replies."""
    if row["source"] != "sgd":
        return is_checkable(row["sentence"])
    return any(is_checkable(c.text) for c in split_claims(row["sentence"]))


def report(name: str, rows: list[dict], predicted: list[bool]) -> None:
    counts = Counter((r["checkable"], p) for r, p in zip(rows, predicted, strict=True))
    kept, dropped = counts[False, True], counts[True, False]
    non_claims, checkable = kept + counts[False, False], dropped + counts[True, True]
    print(
        f"{name:<22} n={len(rows):<4} checkable kept {counts[True, True]:<4} dropped {dropped:<3} | "
        f"non-claims dropped {counts[False, False]:<4} kept {kept:<3} | "
        f"non-claims kept as claims {kept / max(non_claims, 1):.1%}  checkable dropped {dropped / max(checkable, 1):.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "nonclaims.jsonl", help="labelled JSONL file")
    parser.add_argument(
        "--twcs", type=Path, default=None, help="TWCS sample.csv, to score its labelled replies"
    )
    parser.add_argument("--twcs-labels", type=Path, default=DATA / "nonclaims_twcs.jsonl")
    parser.add_argument(
        "--sgd", type=Path, default=None, help="an SGD split folder, to score its system turns"
    )
    args = parser.parse_args()

    rows = load(args.data)
    if args.twcs:
        rows += load_twcs(args.twcs, args.twcs_labels)
    if args.sgd:
        rows += load_sgd(args.sgd)
    start = time.perf_counter()
    predicted = [checkable(r) for r in rows]
    speed = len(rows) / (time.perf_counter() - start)
    report("all", rows, predicted)
    for source in sorted({r["source"].split("/")[0].split(":")[0] for r in rows}):
        picked = [i for i, r in enumerate(rows) if r["source"].split("/")[0].split(":")[0] == source]
        report(source, [rows[i] for i in picked], [predicted[i] for i in picked])
    print(f"{speed:,.0f} sentences/s")
    for r, p in zip(rows, predicted, strict=True):
        if p != r["checkable"]:
            print(f"{'KEPT ' if p else 'DROPPED'} [{r['source']}] {r['sentence']}")


if __name__ == "__main__":
    main()
