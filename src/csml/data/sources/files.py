"""A user's own labelled utterances in CSV, TSV, JSON Lines or parquet files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from csml.data.sources.base import DatasetSource
from csml.data.sources.checks import Row
from csml.data.sources.columns import RowConverter
from csml.data.sources.readers import read_csv, read_jsonl, read_parquet, require_file

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
"""File suffix -> format, used when ``format`` is not given."""


class TabularFileSource(DatasetSource):
    """Train/test (and optionally validation) files with one utterance per row, mapped onto records.

    Without a validation file, one is carved from train (see :class:`DatasetSource`). Stage and channel come
    from mapped columns, else the journey map (if ``name`` is in it) and the defaults; see
    :class:`~csml.data.sources.columns.RowConverter` for the exact order.

    Args:
        train: Path of the training file.
        test: Path of the test file.
        validation: Path of the validation file, if there is one.
        columns: Record field -> column name, e.g. ``{"text": "utterance", "intent": "label"}``. ``text`` is
            required; ``intent``, ``sentiment``, ``stage``, ``channel``, ``customer_id``, ``conversation_id``,
            ``timestamp``, ``context`` and ``response`` are optional.
        name: Dataset name, used as record ``source``, id prefix and journey-map key.
        format: ``csv``, ``tsv``, ``jsonl`` or ``parquet``; inferred from each file's suffix when ``None``.
        default_stage: Journey stage of rows no column or intent override decides.
        default_channel: Channel of rows without a channel column value.
        meta_columns: Further columns to keep in ``Record.meta``.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    def __init__(
        self,
        train: str | Path,
        test: str | Path,
        validation: str | Path | None = None,
        *,
        columns: Mapping[str, str],
        name: str = "user",
        format: str | None = None,
        default_stage: str | None = None,
        default_channel: str | None = None,
        meta_columns: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if format is not None and format not in set(FORMATS.values()):
            raise ValueError(f"format must be one of {sorted(set(FORMATS.values()))} or None, got {format!r}")
        self.name = name
        self.paths = {"train": Path(train), "test": Path(test)}
        if validation is not None:
            self.paths["validation"] = Path(validation)
        self.formats = {
            split: format or FORMATS.get(path.suffix.lower()) for split, path in self.paths.items()
        }
        for split, kind in self.formats.items():
            if kind is None:
                raise ValueError(
                    f"cannot tell the format of {self.paths[split]} from its suffix: pass format= one of "
                    f"{sorted(set(FORMATS.values()))}"
                )
        self.converter = RowConverter(
            name,
            columns,
            default_stage=default_stage,
            default_channel=default_channel,
            journey=self.journey.datasets.get(name),
            meta_columns=meta_columns,
            label_separator=self.label_separator,
        )

    def _read(self) -> dict[str, list[Row]]:
        return {split: self._read_file(split) for split in self.paths}

    def _read_file(self, split: str) -> list[Row]:
        file = str(self.paths[split])
        return [
            self.converter.row(values, split=split, index=index, file=file, row=row)
            for index, (row, values) in enumerate(self._rows(self.paths[split], self.formats[split]))
        ]

    def _rows(self, path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(row number, values)`` of a file, after checking it has the mapped columns."""
        require_file(path, f"the {self.name} {kind} file")
        if kind in ("csv", "tsv"):
            yield from read_csv(path, self.converter.required, delimiter="," if kind == "csv" else "\t")
        elif kind == "jsonl":
            for position, (row, values) in enumerate(read_jsonl(path)):
                if position == 0:
                    self.converter.check_columns(values, str(path), row)
                yield row, values
        else:
            found, rows = read_parquet(path)
            self.converter.check_columns(found, str(path))
            yield from rows
