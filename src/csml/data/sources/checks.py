"""Checks of a dataset's labels across its splits, run by every source before records reach a model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from csml.data.splits import DataValidationError
from csml.records import Record


class Row(NamedTuple):
    """A record and where it was read, so an error about it can point at the file and row to fix.

    Attributes:
        record: The record.
        file: File (or other URI) it came from.
        row: 1-based row in that file (see :mod:`csml.data.sources.readers` for how rows are counted).
    """

    record: Record
    file: str
    row: int


def check_text(text: object, file: str, row: int, field: str = "text") -> str:
    """The stripped text of an utterance; an error if it is missing, empty or whitespace."""
    if text is None or not str(text).strip():
        raise DataValidationError(
            "empty text", file=file, row=row, field=field, expected="a non-empty utterance", found=repr(text)
        )
    return str(text).strip()


def check_labels_present(name: str, splits: Mapping[str, list[Row]], label_field: str) -> None:
    """Every row has a non-empty ``label_field``; a dataset with none at all says so in one line."""
    if not any(row.record.label(label_field) for rows in splits.values() for row in rows):
        raise DataValidationError(
            f"dataset {name!r} has no {label_field!r} labels",
            field=label_field,
            expected=f"a dataset labelled with {label_field}",
        )
    for split, rows in splits.items():
        for row in rows:
            if not row.record.label(label_field):
                raise DataValidationError(
                    f"empty label in {split}",
                    file=row.file,
                    row=row.row,
                    field=label_field,
                    expected="a label",
                    found=repr(row.record.label(label_field)),
                )


def check_known_labels(splits: Mapping[str, list[Row]], label_field: str) -> None:
    """Labels of validation and test all occur in train; names them and their first row otherwise."""
    known = {row.record.label(label_field) for row in splits["train"]}
    for split in ("validation", "test"):
        unknown = [row for row in splits.get(split, []) if row.record.label(label_field) not in known]
        if unknown:
            first = unknown[0]
            labels = sorted({row.record.label(label_field) or "" for row in unknown})
            raise DataValidationError(
                f"labels in {split} absent from train: {', '.join(labels)} ({len(unknown)} rows)",
                file=first.file,
                row=first.row,
                field=label_field,
                expected="labels seen in train",
                found=repr(first.record.label(label_field)),
            )


def check_same_labels(splits: Mapping[str, list[Row]], label_field: str, hint: str = "") -> list[str]:
    """The sorted label set, after checking every split has every train label."""
    labels = {row.record.label(label_field) or "" for row in splits["train"]}
    for split in ("validation", "test"):
        if not splits[split]:
            raise DataValidationError(
                f"the {split} split has no rows", expected=f"the {len(labels)} train labels"
            )
        missing = labels - {row.record.label(label_field) for row in splits[split]}
        if missing:
            raise DataValidationError(
                f"label sets differ between splits: train labels absent from {split}: "
                f"{', '.join(sorted(missing))}{hint}",
                file=splits[split][0].file,
                field=label_field,
                expected=f"the {len(labels)} train labels in every split",
                found=f"{len(labels) - len(missing)} of them in {split}",
            )
    return sorted(labels)
