"""Schema-Guided Dialogue -> (history -> system turn) pairs: a hand-made SGD folder, errors, the real data."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from csml.config import project_root
from csml.data.splits import DataValidationError
from csml.records import Channel, JourneyStage
from csml.response.sgd import SgdDialogues


def _turn(speaker: str, text: str, intent: str | None = None) -> dict:
    frames = (
        [{"service": "Banks_1", "state": {"active_intent": intent or "NONE"}}] if speaker == "USER" else []
    )
    return {"speaker": speaker, "utterance": text, "frames": frames}


def _dialogue(dialogue_id: str, services: list[str]) -> dict:
    turns = [
        _turn("USER", "I want to move money.", "TransferMoney"),
        _turn("SYSTEM", "From which account?"),
        _turn("USER", "From checking.", "TransferMoney"),
        _turn("SYSTEM", "How much?"),
        _turn("USER", "Find me a flight too.", "SearchOnewayFlight"),
        _turn("SYSTEM", "Where to?"),
    ]
    return {"dialogue_id": dialogue_id, "services": services, "turns": turns}


def _write(root: Path, folder: str, dialogues: list[dict]) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    with gzip.open(root / folder / "dialogues_001.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(dialogues, handle)


def test_system_turns_become_pairs_with_history_intent_and_stage(tmp_path: Path) -> None:
    for folder in ("train", "dev", "test"):
        _write(
            tmp_path, folder, [_dialogue(f"{folder}_1", ["Banks_1"]), _dialogue(f"{folder}_2", ["Hotels_2"])]
        )
    splits = SgdDialogues(tmp_path, services=["Banks"], max_context_turns=2).load()
    assert splits.identity()["rows"] == {"train": 3, "validation": 3, "test": 3}
    first, _, last = splits["train"]
    assert (first.text, first.response, first.context) == ("I want to move money.", "From which account?", ())
    assert last.context == ("From checking.", "How much?")  # the 2 most recent earlier turns
    assert (last.intent, last.stage, last.channel) == (
        "SearchOnewayFlight",
        JourneyStage.CONSIDERATION,
        Channel.CHAT,
    )
    assert first.stage is JourneyStage.SUPPORT and first.conversation_id == "train_1"
    assert len(SgdDialogues(tmp_path, services=None).load()["test"]) == 6


def test_errors_name_the_file_row_and_field(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"missing SGD folder.*external_data_dir"):
        SgdDialogues(tmp_path).load()
    broken = _dialogue("train_1", ["Banks_1"])
    broken["turns"][2]["utterance"] = " "
    for folder in ("train", "dev", "test"):
        _write(tmp_path, folder, [_dialogue("ok", ["Banks_1"]), broken])
    with pytest.raises(DataValidationError, match=r"dialogues_001.json.gz.*row 2.*turns\[2\].utterance"):
        SgdDialogues(tmp_path).load()


SGD = (
    Path(os.environ.get("CSML_EXTERNAL_DATA", project_root().parent / "shared" / "data"))
    / "sgd_schema_guided"
)


@pytest.mark.slow
@pytest.mark.skipif(not SGD.is_dir(), reason=f"{SGD} is absent")
def test_real_sgd_banks_and_payment_dialogues() -> None:
    splits = SgdDialogues(SGD).load()
    assert all(len(splits[split]) > 500 for split in ("train", "validation", "test"))
    assert {"CheckBalance", "TransferMoney"} <= {r.intent for r in splits["train"]}
    assert "MakePayment" in {r.intent for r in splits["test"]}  # Payment is an SGD test-only service
