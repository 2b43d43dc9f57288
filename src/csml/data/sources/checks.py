"""Checks of a dataset's labels across its splits, run by every source before records reach a model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from csml.data.label_sets import join_label_set, label_set
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


def check_label_set(value: object, separator: str, file: str, row: int, field: str) -> str | None:
    """The canonical label (:func:`~csml.data.label_sets.join_label_set`) of a multi-label cell.

    The cell is a list of label strings (a JSONL or parquet list value), a JSON list in a text cell
    (``["flight", "airfare"]``), or text split on ``separator`` (``flight#airfare``); labels are stripped.
    A missing or blank cell is None, the empty label :func:`check_labels_present` refuses.

    Raises:
        DataValidationError: An empty set (``[]``, a separator-only cell), an empty label between
            separators, a list that is not of non-empty strings, or a listed label holding the separator.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise DataValidationError(
                f"unparseable JSON list of labels ({error.msg} at column {error.colno})",
                file=file,
                row=row,
                field=field,
                expected='a JSON list of label strings such as ["flight", "airfare"]',
                found=repr(value),
            ) from None
    if isinstance(value, list | tuple):
        return _listed_label_set(list(value), separator, file, row, field)
    text = str(value).strip()
    if not text:
        return None
    labels = [part.strip() for part in text.split(separator)]
    if not all(labels):
        raise DataValidationError(
            "empty label set" if not any(labels) else "empty label in a label set",
            file=file,
            row=row,
            field=field,
            expected=f"labels separated by {separator!r}, such as 'flight{separator}airfare'",
            found=repr(value),
        )
    return join_label_set(labels, separator)


def _listed_label_set(values: list[object], separator: str, file: str, row: int, field: str) -> str:
    where = {"file": file, "row": row, "field": field, "found": repr(values)[:200]}
    if not values:
        raise DataValidationError("empty label set", expected="a non-empty list of label strings", **where)
    if not all(isinstance(value, str) and value.strip() for value in values):
        raise DataValidationError(
            "label list holds something other than labels", expected="a list of non-empty strings", **where
        )
    labels = [str(value).strip() for value in values]
    if any(separator in label for label in labels):
        raise DataValidationError(
            f"a listed label holds the label separator {separator!r}",
            expected=f"labels without {separator!r} (or another data.source.label_separator)",
            **where,
        )
    return join_label_set(labels, separator)


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


def row_labels(row: Row, label_field: str, separator: str | None) -> set[str]:
    """The atomic labels of a row: its label, or for multi-label data (``separator``) those of its set."""
    return set(label_set(row.record.label(label_field) or "", separator))


def check_known_labels(
    splits: Mapping[str, list[Row]], label_field: str, hint: str = "", separator: str | None = None
) -> None:
    """Labels of validation and test all occur in train; names them and their first row otherwise.

    For multi-label data (``separator``) the atomic labels of every set must occur in train.
    """
    known = {label for row in splits["train"] for label in row_labels(row, label_field, separator)}
    for split in ("validation", "test"):
        unknown = [
            row for row in splits.get(split, []) if not row_labels(row, label_field, separator) <= known
        ]
        if unknown:
            first = unknown[0]
            labels = sorted(
                {label for row in unknown for label in row_labels(row, label_field, separator)} - known
            )
            raise DataValidationError(
                f"labels in {split} absent from train: {', '.join(labels)} ({len(unknown)} rows){hint}",
                file=first.file,
                row=first.row,
                field=label_field,
                expected="labels seen in train",
                found=repr(first.record.label(label_field)),
            )


def check_split_labels(
    splits: Mapping[str, list[Row]], label_field: str, separator: str | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """The sorted train label set and, per evaluation split, the train labels it has no row of.

    Evaluation splits may lack train labels (their metrics cover the labels present), but they must have
    rows, and only labels train has (the label policy has removed or remapped the others). For multi-label
    data (``separator``) labels are the atomic labels of the sets.
    """
    labels = {label for row in splits["train"] for label in row_labels(row, label_field, separator)}
    absent: dict[str, list[str]] = {}
    for split in ("validation", "test"):
        if not splits[split]:
            raise DataValidationError(
                f"the {split} split has no rows", expected=f"rows of the {len(labels)} train labels"
            )
        check_known_labels({"train": splits["train"], split: splits[split]}, label_field, separator=separator)
        present = {label for row in splits[split] for label in row_labels(row, label_field, separator)}
        absent[split] = sorted(labels - present)
    return sorted(labels), absent
