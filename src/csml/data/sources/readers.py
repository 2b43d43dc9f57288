"""Reading data files with errors that point at the file, line and column to fix.

Row numbers are 1-based and count as a person reading the file does: in a CSV the header is row 1 and the
first record row 2; in line-based text files (TSV, JSONL) the row is the line number; in parquet files, which
have no lines, it is the position of the record.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from csml.data.splits import DataValidationError


def require_file(path: str | Path, what: str = "a data file") -> Path:
    """``path`` as a :class:`Path`, or an error saying what the folder holds instead."""
    path = Path(path)
    if path.is_file():
        return path
    folder = path.parent
    if folder.is_dir():
        found = "folder holds: " + (", ".join(sorted(p.name for p in folder.iterdir())) or "nothing")
    else:
        found = f"folder {folder} does not exist"
    raise DataValidationError("missing file", file=str(path), expected=what, found=found)


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file (a byte-order mark is dropped), failing on the first non-UTF-8 line."""
    path = require_file(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataValidationError(
            "file is not valid UTF-8 (re-save it as UTF-8)",
            file=str(path),
            row=line,
            expected="UTF-8 text",
            found=f"bytes {raw[error.start : error.end]!r} at byte {error.start}",
        ) from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every non-blank line, split on ``\\n`` only.

    Only ``\\n`` ends a line: review texts contain characters such as U+0085 that ``str.splitlines`` would
    split on.
    """
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def read_csv(
    path: str | Path, required: Sequence[str], delimiter: str = ","
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for every record of a CSV file with a header row.

    Raises:
        DataValidationError: The file is missing or not UTF-8, or its header lacks a ``required`` column.
    """
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    check_columns(reader.fieldnames or [], required, path, row=1)
    start = reader.line_num + 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSON Lines file."""
    for number, line in read_lines(path):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataValidationError(
                f"unparseable JSON line ({error.msg} at column {error.colno})",
                file=str(path),
                row=number,
                expected="one JSON object per line",
                found=line[:80],
            ) from None
        if not isinstance(item, dict):
            raise DataValidationError(
                "JSON line is not an object",
                file=str(path),
                row=number,
                expected="one JSON object per line",
                found=type(item).__name__,
            )
        yield number, item


def read_parquet(path: str | Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The column names and ``(position, row)`` of every record of a parquet file."""
    import pyarrow.parquet as pq

    table = pq.read_table(require_file(path))
    return table.column_names, enumerate(table.to_pylist(), start=1)


def check_columns(found: Sequence[str], required: Sequence[str], path: str | Path, row: int = 1) -> None:
    """Fails listing the columns the file has if any ``required`` column is absent."""
    missing = [column for column in required if column not in found]
    if missing:
        raise DataValidationError(
            "missing columns",
            file=str(path),
            row=row,
            field=", ".join(missing),
            expected="columns " + ", ".join(required),
            found="columns " + (", ".join(str(column) for column in found) or "none"),
        )
