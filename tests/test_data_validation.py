"""Bad input data fails with errors that name the file, row, field, and what was expected vs found."""

from __future__ import annotations

from pathlib import Path

import pytest

from csml.data.sources import Banking77, Clinc150, TabularFileSource, UciSentences
from csml.data.splits import DataValidationError

HEADER = "text,intent\n"
GOOD = "hello there,greet\nbye now,leave\nhi,greet\nsee you,leave\n"


def csv_source(tmp_path: Path, train: str, test: str = HEADER + GOOD, **kwargs) -> TabularFileSource:
    (tmp_path / "train.csv").write_bytes(train.encode("utf-8") if isinstance(train, str) else train)
    (tmp_path / "test.csv").write_text(test, encoding="utf-8")
    options = {
        "columns": {"text": "text", "intent": "intent"},
        "default_stage": "support",
        "default_channel": "chat",
    }
    return TabularFileSource(
        train=tmp_path / "train.csv", test=tmp_path / "test.csv", **{**options, **kwargs}
    )


def load_error(source, label_field: str = "intent") -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        source.load(label_field)
    return caught.value


def test_missing_file_lists_folder(tmp_path: Path) -> None:
    (tmp_path / "test.csv").write_text("")
    error = load_error(Banking77(tmp_path))
    assert error.file == str(tmp_path / "train.csv")
    assert "missing file" in str(error) and "folder holds: test.csv" in str(error)


def test_missing_columns_lists_found(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, "utterance,label\nhi,greet\n"))
    assert (error.file, error.row, error.field) == (str(tmp_path / "train.csv"), 1, "text, intent")
    assert "missing columns" in str(error) and "found columns utterance, label" in str(error)


def test_banking77_needs_its_columns(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("text,label\nhi,greet\n")
    (tmp_path / "test.csv").write_text("text,label\nhi,greet\n")
    error = load_error(Banking77(tmp_path))
    assert error.field == "category" and "found columns text, label" in str(error)


def test_empty_text_names_row(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER + "hello,greet\n   ,leave\n"))
    assert (error.file, error.row, error.field) == (str(tmp_path / "train.csv"), 3, "text")
    assert "empty text" in str(error) and "row 3" in str(error)


def test_empty_label_names_row(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER + GOOD + "no label here,\n"))
    assert (error.row, error.field) == (6, "intent")
    assert "empty label in train" in str(error)


def test_row_numbers_count_multiline_cells(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER + '"two\nlines",greet\n"",leave\n'))
    assert error.row == 4


def test_dataset_without_the_label_field(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER + GOOD), label_field="sentiment")
    assert "has no 'sentiment' labels" in str(error)


def test_unknown_labels_in_test_are_named_with_first_row(tmp_path: Path) -> None:
    test = HEADER + "hello,greet\nbye,leave\nrefund please,refund\nmoney back,refund\nwho,smalltalk\n"
    source = csv_source(tmp_path, HEADER + GOOD, test=test, label_policy={"unseen_in_test": "error"})
    error = load_error(source)
    assert (error.file, error.row, error.field) == (str(tmp_path / "test.csv"), 4, "intent")
    assert "labels in test absent from train: refund, smalltalk (3 rows)" in str(error)
    assert "label_policy.unseen_in_test=drop" in str(error)


def test_empty_split(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER + GOOD, test=HEADER))
    assert "the test split has no rows" in str(error)


def test_unknown_stage_and_channel_values(tmp_path: Path) -> None:
    columns = {"text": "text", "intent": "intent", "stage": "stage", "channel": "channel"}
    train = "text,intent,stage,channel\nhi,greet,support,chat\nyo,greet,considerashun,chat\n"
    error = load_error(csv_source(tmp_path, train, columns=columns))
    assert (error.row, error.field, error.found) == (3, "stage", "'considerashun'")
    assert "unknown journey stage" in str(error) and "awareness" in str(error)
    train = "text,intent,stage,channel\nhi,greet,support,chat\nyo,greet,support,fax\n"
    error = load_error(csv_source(tmp_path, train, columns=columns))
    assert (error.row, error.field, error.found) == (3, "channel", "'fax'")
    assert "unknown channel" in str(error)


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    error = load_error(csv_source(tmp_path, HEADER.encode() + b"hello,greet\ncaf\xe9 au lait,order\n"))
    assert (error.file, error.row) == (str(tmp_path / "train.csv"), 3)
    assert "not valid UTF-8" in str(error) and "\\xe9" in str(error)


def test_unparseable_jsonl_line(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(
        '{"text": "hi", "intent": "greet"}\n\n{"text": "oops", intent: 1}\n'
    )
    (tmp_path / "test.jsonl").write_text('{"text": "hi", "intent": "greet"}\n')
    source = TabularFileSource(
        train=tmp_path / "train.jsonl",
        test=tmp_path / "test.jsonl",
        columns={"text": "text", "intent": "intent"},
        default_stage="support",
        default_channel="chat",
    )
    error = load_error(source)
    assert (error.file, error.row) == (str(tmp_path / "train.jsonl"), 3)
    assert "unparseable JSON line" in str(error)


def test_jsonl_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"utterance": "hi", "intent": "greet"}\n')
    (tmp_path / "test.jsonl").write_text('{"text": "hi", "intent": "greet"}\n')
    source = TabularFileSource(
        train=tmp_path / "train.jsonl",
        test=tmp_path / "test.jsonl",
        columns={"text": "text", "intent": "intent"},
        default_stage="support",
        default_channel="chat",
    )
    error = load_error(source)
    assert error.row == 1 and "found columns utterance, intent" in str(error)


def test_bad_arguments_fail_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="did you mean 'text'"):
        csv_source(tmp_path, HEADER + GOOD, columns={"txt": "text"})
    with pytest.raises(ValueError, match="not in the journey map"):
        csv_source(tmp_path, HEADER + GOOD, default_stage=None)
    with pytest.raises(ValueError, match="default_channel must be one of email"):
        csv_source(tmp_path, HEADER + GOOD, default_channel="fax")
    with pytest.raises(ValueError, match="pass format="):
        TabularFileSource(
            train=tmp_path / "a.xlsx", test=tmp_path / "a.csv", columns={"text": "t"}, name="banking77"
        )
    with pytest.raises(ValueError, match="label_field"):
        Clinc150(tmp_path).load("topic")
    with pytest.raises(ValueError, match="val_fraction"):
        Banking77(tmp_path, val_fraction=1.5)
    with pytest.raises(ValueError, match="unknown UCI domains"):
        UciSentences(tmp_path, domains=["amazon", "twitter"])


def test_uci_unknown_label(tmp_path: Path) -> None:
    (tmp_path / "amazon_cells_labelled.txt").write_text("Good.\t1\nBad.\t0\nHmm.\t5\n")
    error = load_error(UciSentences(tmp_path, domains=["amazon"]), label_field="sentiment")
    assert (error.row, error.found) == (3, "'5'")
