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


def check_known_labels(splits: Mapping[str, list[Row]], label_field: str, hint: str = "") -> None:
    """Labels of validation and test all occur in train; names them and their first row otherwise."""
    known = {row.record.label(label_field) for row in splits["train"]}
    for split in ("validation", "test"):
        unknown = [row for row in splits.get(split, []) if row.record.label(label_field) not in known]
        if unknown:
            first = unknown[0]
            labels = sorted({row.record.label(label_field) or "" for row in unknown})
            raise DataValidationError(
                f"labels in {split} absent from train: {', '.join(labels)} ({len(unknown)} rows){hint}",
                file=first.file,
                row=first.row,
                field=label_field,
                expected="labels seen in train",
                found=repr(first.record.label(label_field)),
            )


def check_split_labels(
    splits: Mapping[str, list[Row]], label_field: str
) -> tuple[list[str], dict[str, list[str]]]:
    """The sorted train label set and, per evaluation split, the train labels it has no row of.

    Evaluation splits may lack train labels (their metrics cover the labels present), but they must have
    rows, and only labels train has (the label policy has removed or remapped the others).
    """
    labels = {row.record.label(label_field) or "" for row in splits["train"]}
    absent: dict[str, list[str]] = {}
    for split in ("validation", "test"):
        if not splits[split]:
            raise DataValidationError(
                f"the {split} split has no rows", expected=f"rows of the {len(labels)} train labels"
            )
        check_known_labels({"train": splits["train"], split: splits[split]}, label_field)
        absent[split] = sorted(labels - {row.record.label(label_field) or "" for row in splits[split]})
    return sorted(labels), absent
