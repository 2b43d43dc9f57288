"""Multi-turn (dialogue history -> system turn) pairs from the Schema-Guided Dialogue corpus (SGD, DSTC8).

SGD (Rastogi et al. 2020; CC BY-SA 4.0, so read from ``paths.external_data_dir``, never bundled) holds
task-oriented service dialogues in 20 domains, Banks and Payment among them. Every system turn becomes a
:class:`~csml.records.Record`: ``text`` is the user turn before it, ``context`` the earlier turns (oldest
first, alternating user / system and ending with a system turn), ``response`` the system turn, ``intent``
the user's active intent (``TransferMoney``), stage from the journey map's ``sgd_schema_guided`` entry and
channel chat. SGD's own train / dev / test dialogues are the train / validation / test splits (whole
dialogues, so no conversation is split across them).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from csml.data.sources.checks import check_text
from csml.data.splits import DataValidationError
from csml.records import Record
from csml.response.data import PairSource

FOLDERS = {"train": "train", "validation": "dev", "test": "test"}
SUPPLEMENT = "banking_only_supplement"


class SgdDialogues(PairSource):
    """System turns of SGD dialogues in the chosen service domains, with their dialogue history.

    Args:
        root: The SGD folder (``train/``, ``dev/``, ``test/`` of ``dialogues_NNN.json(.gz)`` files; a
            ``banking_only_supplement/dev/`` folder is read into validation too).
        services: Service domains kept (``Banks``, ``Payment``, ``Flights``...); a dialogue is kept when
            one of its services belongs to one of them. ``None`` keeps every dialogue.
        max_context_turns: Earlier turns kept in ``context`` (the most recent ones).
        journey_entry: Journey-map entry giving stage (per intent) and channel.
        **kwargs: ``limit``, ``journey_map`` of :class:`~csml.response.data.PairSource`.
    """

    name = "sgd_schema_guided"

    def __init__(
        self,
        root: str | Path,
        services: Sequence[str] | None = ("Banks", "Payment"),
        max_context_turns: int = 6,
        journey_entry: str = "sgd_schema_guided",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.services = None if services is None else {s.split("_")[0] for s in services}
        self.max_context_turns = max_context_turns
        self.entry = self.journey.entry(journey_entry)

    def files(self, split: str) -> list[Path]:
        """The dialogue files of one split."""
        folder = self.root / FOLDERS[split]
        if not folder.is_dir():
            raise DataValidationError(
                "missing SGD folder",
                file=str(folder),
                expected=f"{FOLDERS[split]}/dialogues_NNN.json(.gz) of Schema-Guided Dialogue (CC BY-SA 4.0, "
                "github.com/google-research-datasets/dstc8-schema-guided-dialogue); set paths.external_data_dir",
            )
        files = sorted(folder.glob("dialogues_*.json*"))
        if split == "validation":
            files += sorted((self.root / SUPPLEMENT / "dev").glob("dialogues_*.json*"))
        if not files:
            raise DataValidationError(
                "no dialogue files", file=str(folder), expected="dialogues_NNN.json(.gz)"
            )
        return files

    def _pairs(self) -> tuple[list[Record], list[str]]:
        records, files = [], []
        for split in FOLDERS:
            for path in self.files(split):
                files.append(str(path))
                for index, dialogue in enumerate(read_dialogues(path), start=1):
                    if (
                        self.services is None
                        or {s.split("_")[0] for s in dialogue.get("services", [])} & self.services
                    ):
                        records += self._dialogue_pairs(dialogue, split, str(path), index)
        return records, files

    def _dialogue_pairs(self, dialogue: dict[str, Any], split: str, file: str, index: int) -> list[Record]:
        turns, dialogue_id = dialogue.get("turns"), dialogue.get("dialogue_id")
        if not isinstance(turns, list) or not dialogue_id:
            raise DataValidationError(
                "dialogue without turns or dialogue_id", file=file, row=index, field="turns/dialogue_id"
            )
        texts = [
            check_text(turn.get("utterance"), file, index, field=f"turns[{i}].utterance")
            for i, turn in enumerate(turns)
        ]
        out = []
        for i in range(1, len(turns)):
            if turns[i].get("speaker") != "SYSTEM" or turns[i - 1].get("speaker") != "USER":
                continue
            intent = active_intent(turns[i - 1])
            out.append(
                Record(
                    id=f"{self.name}:{dialogue_id}:{i}",
                    text=texts[i - 1],
                    source=self.name,
                    stage=self.entry.stage_for(intent),
                    channel=self.entry.channel,
                    intent=intent,
                    conversation_id=str(dialogue_id),
                    context=tuple(texts[max(0, i - 1 - self.max_context_turns) : i - 1]),
                    response=texts[i],
                    meta={"split": split, "services": list(dialogue.get("services", []))},
                )
            )
        return out

    def _split(self, records: list[Record]) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {split: [] for split in FOLDERS}
        for record in records:
            out[record.meta["split"]].append(record)
        return out


def read_dialogues(path: Path) -> list[dict[str, Any]]:
    """The dialogues of one SGD file (``.json`` or ``.json.gz``).

    Raises:
        DataValidationError: an unreadable file, or one that is not a list of dialogues.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, OSError, EOFError) as error:
        raise DataValidationError("unreadable dialogue file", file=str(path), found=str(error)) from None
    if not isinstance(data, list):
        raise DataValidationError("not a list of dialogues", file=str(path), found=type(data).__name__)
    return data


def active_intent(turn: dict[str, Any]) -> str | None:
    """The user's active intent in a turn's frames (``TransferMoney``), or None."""
    for frame in turn.get("frames", []):
        intent = frame.get("state", {}).get("active_intent")
        if intent and intent != "NONE":
            return str(intent)
    return None
