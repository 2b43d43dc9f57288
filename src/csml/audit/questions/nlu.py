"""NLU question sets: labelled utterances of the bundled intent datasets (Banking77, CLINC150), sampled by
seed from their test splits, each carrying its intent, journey stage, channel and source row."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from csml.data.sources.base import DatasetSource
from csml.records import Record
from csml.schemas import AuditSample

LICENCES = {"banking77": "CC BY 4.0", "clinc150": "CC BY 3.0", "bitext_intents": "CDLA-Sharing-1.0"}


def sample_by_label(records: list[Record], per_label: dict[str, int] | int, seed: int) -> list[Record]:
    """``per_label`` records of every intent (a dict gives a count per intent, 0 leaves it out), drawn
    with ``seed`` from each intent's records and returned in dataset order."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_label[str(record.intent)].append(index)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_label):
        count = per_label if isinstance(per_label, int) else per_label.get(label, 0)
        chosen += rng.sample(by_label[label], min(count, len(by_label[label])))
    return [records[i] for i in sorted(chosen)]


def record_sample(record: Record, folder: str, split: str, **fields: object) -> AuditSample:
    """An audit question from a dataset record: its text, intent, stage, channel and where it came from."""
    licence = LICENCES.get(record.source, "see data/README.md")
    values: dict = {
        "id": record.id,
        "question": record.text,
        "expected_intent": record.intent,
        "stage": record.stage.value,
        "channel": record.channel.value,
        "source": f"{folder} {split} split, record {record.id} ({licence})",
        **fields,
    }
    return AuditSample(**values)


def build_intent_questions(
    source: DatasetSource, folder: str, per_intent: int, oos: int = 0, oos_label: str = "oos", seed: int = 0
) -> list[AuditSample]:
    """``per_intent`` test utterances of every in-scope intent and ``oos`` out-of-scope ones.

    The category of a question is its CLINC150 domain (``oos`` for out-of-scope) or ``in_scope`` for
    datasets without domains; out-of-scope questions are unanswerable.
    """
    records = source.load("intent").splits["test"]
    labels = {str(r.intent) for r in records}
    counts = {label: (oos if label == oos_label else per_intent) for label in labels}
    samples = []
    for record in sample_by_label(records, counts, seed):
        out_of_scope = record.intent == oos_label
        category = oos_label if out_of_scope else str(record.meta.get("domain", "in_scope"))
        samples.append(record_sample(record, folder, "test", answerable=not out_of_scope, category=category))
    return samples


def build_banking77(data_dir: str | Path, per_intent: int = 3, seed: int = 0) -> list[AuditSample]:
    """The ``nlu_banking77`` question set (77 intents, no out-of-scope)."""
    from csml.data.sources import Banking77

    return build_intent_questions(
        Banking77(Path(data_dir) / "banking77"), "data/banking77", per_intent, seed=seed
    )


def build_clinc150(
    data_dir: str | Path, per_intent: int = 2, oos: int = 100, seed: int = 0
) -> list[AuditSample]:
    """The ``nlu_clinc150`` question set (150 intents in 10 domains, and out-of-scope queries)."""
    from csml.data.sources import Clinc150

    return build_intent_questions(
        Clinc150(Path(data_dir) / "clinc150"), "data/clinc150", per_intent, oos=oos, seed=seed
    )
