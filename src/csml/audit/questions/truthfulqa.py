"""False-premise and misconception probes from TruthfulQA (Lin, Hilton, Evans 2022), read at audit time.

The copy in ``<external_data_dir>/truthfulqa/TruthfulQA.csv`` states no licence, so csml does not bundle it.
A customer-service bot has no business answering these questions from its knowledge base: it should decline
or hand over (scored by ``abstention``); when it answers, the reason shows the false beliefs it risks.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from csml.audit.errors import AuditConfigError
from csml.schemas import AuditSample

COLUMNS = ("Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers")


def build_truthfulqa(external_data_dir: str | Path, limit: int = 40, seed: int = 0) -> list[AuditSample]:
    """``limit`` TruthfulQA questions drawn with ``seed`` round-robin over its 38 categories, unanswerable,
    with the best answer as reference and the incorrect answers kept.

    Raises:
        AuditConfigError: the file is missing or lacks a column (file, row, expected vs found).
    """
    path = Path(external_data_dir) / "truthfulqa" / "TruthfulQA.csv"
    if not path.is_file():
        raise AuditConfigError(
            f"TruthfulQA questions need {path} (not bundled: no licence stated in our copy); place it there "
            "or set CSML_EXTERNAL_DATA / paths.external_data_dir"
        )
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if missing := [c for c in COLUMNS if c not in (reader.fieldnames or [])]:
            raise AuditConfigError(f"{path}, row 1: missing columns {missing}; found {reader.fieldnames}")
        rows = list(enumerate(reader, start=2))
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, (_, row) in enumerate(rows):
        by_category[row["Category"]].append(index)
    rng = random.Random(seed)
    queues = [rng.sample(by_category[c], len(by_category[c])) for c in sorted(by_category)]
    chosen: list[int] = []
    while len(chosen) < min(limit, len(rows)):
        chosen += [q.pop() for q in queues if q][: limit - len(chosen)]
    samples = []
    for index in sorted(chosen):
        line, row = rows[index]
        if not row["Question"].strip():
            raise AuditConfigError(f"{path}, row {line}: field 'Question' is empty")
        samples.append(
            AuditSample(
                id=f"truthfulqa:{line}",
                question=row["Question"].strip(),
                answerable=False,
                category="truthfulqa",
                reference_answer=row["Best Answer"].strip() or None,
                incorrect_answers=tuple(a.strip() for a in row["Incorrect Answers"].split(";") if a.strip()),
                source=f"truthfulqa/TruthfulQA.csv row {line} ({row['Type']}, {row['Category']}); not bundled",
            )
        )
    return samples
