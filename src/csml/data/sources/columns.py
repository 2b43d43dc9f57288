"""Turning rows of a user's table (files or a hub dataset) into records, through a column mapping."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from csml.data.journey import DatasetJourney
from csml.data.sources.checks import Row, check_label_set, check_text
from csml.data.sources.readers import check_columns
from csml.data.splits import DataValidationError
from csml.records import Channel, JourneyStage, Record

MAPPABLE_FIELDS = (
    "text",
    "intent",
    "sentiment",
    "stage",
    "channel",
    "customer_id",
    "conversation_id",
    "timestamp",
    "context",
    "response",
)
"""Record fields a column can be mapped to; ``text`` is required."""


class RowConverter:
    """Builds records from a user's rows: mapped columns, and stage/channel rules.

    A row's stage is its ``stage`` column if mapped and non-empty, else the journey map's override for its
    intent (if ``name`` is in the map), else ``default_stage``, else the map's default for ``name``. The
    channel is the ``channel`` column, else ``default_channel``, else the map's channel for ``name``.

    Args:
        name: Dataset name: ``source`` of the records, prefix of their ids, key in the journey map.
        columns: Record field -> column name; must map ``text``.
        default_stage: Stage of rows the column and intent overrides do not decide.
        default_channel: Channel of rows without a channel column value.
        journey: The dataset's journey-map entry, if it has one.
        meta_columns: Further columns kept in ``Record.meta``.
        label_separator: For multi-label data, the separator of label sets: the ``intent`` and ``sentiment``
            cells are then read by :func:`~csml.data.sources.checks.check_label_set`; None for one label.
    """

    def __init__(
        self,
        name: str,
        columns: Mapping[str, str],
        default_stage: str | None = None,
        default_channel: str | None = None,
        journey: DatasetJourney | None = None,
        meta_columns: Sequence[str] = (),
        label_separator: str | None = None,
    ) -> None:
        columns = {str(field): str(column) for field, column in dict(columns).items()}
        for field in columns:
            if field not in MAPPABLE_FIELDS:
                close = difflib.get_close_matches(field, MAPPABLE_FIELDS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"cannot map a column to {field!r}{hint}; fields: {', '.join(MAPPABLE_FIELDS)}"
                )
        if "text" not in columns:
            raise ValueError("columns must map 'text' to the column holding the utterance")
        self.name = name
        self.columns = columns
        self.meta_columns = list(meta_columns)
        self.label_separator = label_separator
        self.journey = journey
        self.default_stage = _default(JourneyStage, default_stage, "default_stage")
        self.default_channel = _default(Channel, default_channel, "default_channel")
        if "stage" not in columns and self.default_stage is None and journey is None:
            raise ValueError(
                f"dataset {name!r} is not in the journey map: map a stage column or set default_stage"
            )
        if "channel" not in columns and self.default_channel is None and journey is None:
            raise ValueError(
                f"dataset {name!r} is not in the journey map: map a channel column or set default_channel"
            )

    @property
    def required(self) -> list[str]:
        """Columns every table must have."""
        return [*self.columns.values(), *self.meta_columns]

    def check_columns(self, found: Iterable[str], file: str, row: int = 1) -> None:
        """Fails listing the columns found if a mapped or meta column is missing."""
        check_columns(list(found), self.required, file, row)

    def row(self, values: Mapping[str, Any], *, split: str, index: int, file: str, row: int) -> Row:
        """The record of one table row, located at ``file``/``row`` for errors."""
        columns = self.columns
        text = check_text(values.get(columns["text"]), file, row, field=columns["text"])
        intent = self._label(values, "intent", file, row)
        record = Record(
            id=f"{self.name}:{split}:{index}",
            text=text,
            source=self.name,
            stage=self._stage(values, intent, file, row),
            channel=self._channel(values, file, row),
            intent=intent,
            sentiment=self._label(values, "sentiment", file, row),
            customer_id=self._optional(values, "customer_id"),
            conversation_id=self._optional(values, "conversation_id"),
            timestamp=self._timestamp(values),
            context=self._context(values),
            response=self._optional(values, "response"),
            meta={column: values.get(column) for column in self.meta_columns},
        )
        return Row(record, file, row)

    def _label(self, values: Mapping[str, Any], field: str, file: str, row: int) -> str | None:
        """A label cell as text, or as the canonical label of its set for multi-label data."""
        if field not in self.columns:
            return None
        value = values.get(self.columns[field])
        if self.label_separator is None:
            return _text(value)
        return check_label_set(value, self.label_separator, file, row, self.columns[field])

    def _optional(self, values: Mapping[str, Any], field: str) -> str | None:
        return _text(values.get(self.columns[field])) if field in self.columns else None

    def _stage(self, values: Mapping[str, Any], intent: str | None, file: str, row: int) -> JourneyStage:
        value = self._optional(values, "stage")
        if value is not None:
            return _member(JourneyStage, value, file, row, self.columns["stage"])
        if self.journey is not None and intent in self.journey.intents:
            return self.journey.intents[intent]
        if self.default_stage is not None:
            return self.default_stage
        if self.journey is not None:
            return self.journey.default_stage
        raise DataValidationError(
            "empty stage and no default_stage",
            file=file,
            row=row,
            field=self.columns["stage"],
            expected="a stage",
        )

    def _channel(self, values: Mapping[str, Any], file: str, row: int) -> Channel:
        value = self._optional(values, "channel")
        if value is not None:
            return _member(Channel, value, file, row, self.columns["channel"])
        if self.default_channel is not None:
            return self.default_channel
        if self.journey is not None:
            return self.journey.channel
        raise DataValidationError(
            "empty channel and no default_channel",
            file=file,
            row=row,
            field=self.columns["channel"],
            expected="a channel",
        )

    def _timestamp(self, values: Mapping[str, Any]) -> str | None:
        if "timestamp" not in self.columns:
            return None
        value = values.get(self.columns["timestamp"])
        return value.isoformat() if hasattr(value, "isoformat") else _text(value)

    def _context(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """Earlier turns: a list, or in a CSV cell a JSON list (any other text is one turn)."""
        if "context" not in self.columns:
            return ()
        value = values.get(self.columns["context"])
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return (value,)
        if isinstance(value, list | tuple):
            return tuple(str(turn) for turn in value)
        text = _text(value)
        return (text,) if text else ()


def _text(value: Any) -> str | None:
    """A cell as stripped text; ``None`` for missing or blank cells."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _default(kind: type[JourneyStage] | type[Channel], value: str | None, argument: str) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}") from None


def _member(kind: type[JourneyStage] | type[Channel], value: str, file: str, row: int, column: str) -> Any:
    try:
        return kind(value.lower())
    except ValueError:
        raise DataValidationError(
            f"unknown {'journey stage' if kind is JourneyStage else 'channel'}",
            file=file,
            row=row,
            field=column,
            expected="one of " + ", ".join(member.value for member in kind),
            found=repr(value),
        ) from None
