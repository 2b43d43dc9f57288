"""Dataset splits as loaded from a source, with identity (hash, row counts) for tracking."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from csml.data.label_sets import label_set
from csml.records import Record

SPLITS = ("train", "validation", "test")


def metric_prefix(split: str) -> str:
    """The namespace of a split's metrics, the same for every model: ``train``, ``val``, ``test``."""
    return "val" if split == "validation" else split


class DataValidationError(ValueError):
    """Bad input data, located precisely enough to fix: file, row, field, expected vs found."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.file, self.row, self.field, self.expected, self.found = file, row, field, expected, found
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        detail = "; ".join(
            part
            for part in (
                f"expected {expected}" if expected else "",
                f"found {found}" if found is not None else "",
            )
            if part
        )
        super().__init__(" | ".join(part for part in (message, where, detail) if part))


@dataclass
class DatasetSplits:
    """Train/validation/test records of one dataset and the label set of the field being predicted.

    Attributes:
        name: Dataset name (``"banking77"``).
        label_field: Record field the labels come from (``"intent"`` or ``"sentiment"``).
        labels: Sorted label set of train; validation and test hold only these labels (validated), but may
            lack some (see ``label_report["absent_labels"]``).
        splits: Records per split name; always has ``train``, ``validation`` and ``test``.
        sources: Files or URIs the data was read from, for the run's dataset identity.
        journey_map_version: Version of the intent-to-stage mapping that assigned the stages.
        label_report: What the source's label policy did (labels and rows dropped or remapped per split,
            labels kept in train only), as :meth:`csml.data.sources.policy.LabelPolicyReport.to_dict`
            gives it; ``None`` for splits built without a policy.
        label_separator: For multi-label data, the separator of the label sets records hold (see
            :mod:`csml.data.label_sets`; ``labels`` are then the atomic labels); None for single-label data.
    """

    name: str
    label_field: str
    labels: list[str]
    splits: dict[str, list[Record]]
    sources: list[str] = field(default_factory=list)
    journey_map_version: str | None = None
    label_report: dict[str, Any] | None = None
    label_separator: str | None = None

    def __getitem__(self, split: str) -> list[Record]:
        return self.splits[split]

    @property
    def multi_label(self) -> bool:
        """Whether a record's label is a set of labels."""
        return self.label_separator is not None

    def label_set(self, record: Record) -> tuple[str, ...]:
        """The atomic labels of ``record`` (one for single-label data)."""
        return label_set(record.label(self.label_field) or "", self.label_separator)

    def fingerprint(self) -> str:
        """SHA-256 over the records (text, label, stage, channel) of every split, in order."""
        digest = hashlib.sha256()
        for split in sorted(self.splits):
            for record in self.splits[split]:
                row = [
                    split,
                    record.text,
                    record.label(self.label_field),
                    record.stage.value,
                    record.channel.value,
                ]
                digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()

    def identity(self) -> dict[str, object]:
        """Name, hash, row counts and label distribution of each split: what a run logs about its data."""
        return {
            "name": self.name,
            "label_field": self.label_field,
            "num_labels": len(self.labels),
            "sha256": self.fingerprint(),
            "rows": {split: len(records) for split, records in self.splits.items()},
            "label_counts": {
                split: dict(Counter(r.label(self.label_field) for r in records))
                for split, records in self.splits.items()
            },
            "sources": self.sources,
            "journey_map_version": self.journey_map_version,
            **({"label_separator": self.label_separator} if self.multi_label else {}),
            **({"label_policy": self.label_report} if self.label_report is not None else {}),
        }
