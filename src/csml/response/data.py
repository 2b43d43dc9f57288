"""Query -> response pairs as csml records, split so that test responses are held out from training.

A pair is a :class:`~csml.records.Record` whose ``text`` is the customer's query and ``response`` the agent's
reply. Sources:

- :class:`BitextResponses`: the Bitext customer-support query -> response sample (``val.jsonl`` and
  ``test.jsonl`` of ``bitext_cs_responses_sample``; its train file is missing upstream, so both files are
  pooled and re-split here);
- :class:`PairFiles`: a user's own CSV / TSV / JSONL / parquet files through a column mapping
  (:class:`~csml.data.sources.TabularFileSource` with ``text`` and ``response`` columns).

**Split.** Pairs are grouped into connected components of "same normalised query" or "same normalised
response" (case, spacing and placeholder spelling ignored), and each component goes wholly to train,
validation or test by a hash of its smallest key. So a test query never appears in training with another
reply, a test response never appears in training at all, and the split does not depend on row order or on
the seed. Random row splits would leak: the Bitext sample repeats queries with different replies.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csml.data.journey import load_journey_map
from csml.data.sources.checks import check_text
from csml.data.sources.readers import require_file
from csml.data.splits import SPLITS, DataValidationError
from csml.records import Record
from csml.response.placeholders import to_slot_tokens


def pair_key(text: str) -> str:
    """Normalised form of a query or response used to group pairs: slot tokens, lower case, words only."""
    return " ".join(re.findall(r"[a-z0-9_\[\]]+", to_slot_tokens(text).lower()))


def group_split(
    records: Sequence[Record], fractions: Mapping[str, float], salt: str = ""
) -> dict[str, list[Record]]:
    """Splits pairs into ``train``/``validation``/``test`` by connected query/response groups (see module).

    Args:
        records: Pairs (records with a ``response``).
        fractions: ``validation`` and ``test`` fractions of the groups; train gets the rest.
        salt: Mixed into the hash; a different salt draws a different (still deterministic) split.
    """
    val, test = float(fractions.get("validation", 0.1)), float(fractions.get("test", 0.2))
    if val < 0 or test <= 0 or val + test >= 1:
        raise ValueError(f"split fractions must satisfy 0 <= validation, 0 < test, sum < 1; got {fractions}")
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keys = [("q:" + pair_key(r.text), "r:" + pair_key(r.response or "")) for r in records]
    for query, response in keys:
        a, b = find(query), find(response)
        if a != b:
            parent[max(a, b)] = min(a, b)
    out: dict[str, list[Record]] = {split: [] for split in SPLITS}
    for record, (query, _) in zip(records, keys, strict=True):
        root = find(query)
        bucket = int(hashlib.sha256((salt + root).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
        split = "test" if bucket < test else "validation" if bucket < test + val else "train"
        out[split].append(record)
    return out


@dataclass
class PairSplits:
    """Train/validation/test pairs of one dataset, with the identity a run logs.

    Attributes:
        name: Dataset name.
        splits: Pairs per split.
        sources: Files the pairs were read from.
        journey_map_version: Version of the journey map that assigned stage and channel.
    """

    name: str
    splits: dict[str, list[Record]]
    sources: list[str] = field(default_factory=list)
    journey_map_version: str | None = None

    def __getitem__(self, split: str) -> list[Record]:
        return self.splits[split]

    def responses(self) -> list[str]:
        """Every distinct response of every split, in split then row order: the response bank."""
        return list(dict.fromkeys(r.response for split in SPLITS for r in self.splits[split] if r.response))

    def identity(self) -> dict[str, Any]:
        """Name, SHA-256 over (split, query, response, stage, channel), rows per split, sources."""
        digest = hashlib.sha256()
        for split in SPLITS:
            for r in self.splits[split]:
                row = [split, r.text, r.response, r.stage.value, r.channel.value]
                digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
        return {
            "name": self.name,
            "sha256": digest.hexdigest(),
            "rows": {split: len(records) for split, records in self.splits.items()},
            "distinct_responses": len(self.responses()),
            "sources": self.sources,
            "journey_map_version": self.journey_map_version,
        }


class PairSource:
    """Base of query -> response sources: subclasses implement :meth:`_pairs`; :meth:`load` splits them.

    Args:
        fractions: Validation and test fractions of the query/response groups (:func:`group_split`).
        limit: Most pairs kept per split (the first ones, a deterministic slice for tests); ``None`` = all.
        journey_map: Path of the journey map; ``None`` is the bundled one.
    """

    name = "pairs"

    def __init__(
        self,
        fractions: Mapping[str, float] | None = None,
        limit: int | None = None,
        journey_map: str | Path | None = None,
    ) -> None:
        self.fractions = dict(fractions or {"validation": 0.1, "test": 0.2})
        self.limit = limit
        self.journey = load_journey_map(journey_map)

    def _pairs(self) -> tuple[list[Record], list[str]]:
        """All pairs and the files they came from."""
        raise NotImplementedError

    def _split(self, records: list[Record]) -> dict[str, list[Record]]:
        """Train/validation/test pairs: :func:`group_split` unless the source has its own split."""
        return group_split(records, self.fractions)

    def load(self) -> PairSplits:
        """Reads, checks and splits the pairs.

        Raises:
            DataValidationError: A file is missing or a row has an empty query or response.
        """
        records, files = self._pairs()
        splits = self._split(records)
        if self.limit is not None:
            splits = {split: rows[: self.limit] for split, rows in splits.items()}
        for split, rows in splits.items():
            if not rows:
                raise DataValidationError(
                    f"no {split} pairs", expected="enough pairs for train, validation and test groups"
                )
        return PairSplits(self.name, splits, files, self.journey.version)


class BitextResponses(PairSource):
    """Bitext customer-support query -> response pairs (``input`` -> ``output`` of the JSONL files).

    The re-exported sample dropped Bitext's intent column, so records carry no intent; stage and channel
    are those of the ``bitext_intents`` journey-map entry (chat; support), the same Bitext corpus.

    Args:
        root: Folder holding ``val.jsonl`` and ``test.jsonl``.
        **kwargs: ``fractions``, ``limit``, ``journey_map`` of :class:`PairSource`.
    """

    name = "bitext_cs_responses"
    FILES = ("val.jsonl", "test.jsonl")

    def __init__(self, root: str | Path, journey_entry: str = "bitext_intents", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.entry = self.journey.entry(journey_entry)

    def _pairs(self) -> tuple[list[Record], list[str]]:
        records, files = [], []
        for name in self.FILES:
            path = self.root / name
            require_file(path, f"the {self.name} file {name}")
            files.append(str(path))
            with path.open(encoding="utf-8") as handle:
                for row, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        values = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise DataValidationError(
                            "broken JSON line", file=str(path), row=row, found=str(error)
                        ) from None
                    records.append(
                        Record(
                            id=f"{self.name}:{path.stem}:{row - 1}",
                            text=check_text(values.get("input"), str(path), row, field="input"),
                            source=self.name,
                            stage=self.entry.stage_for(None),
                            channel=self.entry.channel,
                            response=check_text(values.get("output"), str(path), row, field="output"),
                        )
                    )
        return records, files


class PairFiles(PairSource):
    """A user's query -> response table(s) through a column mapping (``text`` and ``response`` required).

    Rows are read with :class:`~csml.data.sources.TabularFileSource` (formats, stage/channel rules and
    errors as for classifier data); all files are pooled and split by :func:`group_split`.

    Args:
        files: Paths of the files (any number; pooled before splitting).
        columns: Record field -> column name, e.g. ``{"text": "question", "response": "answer"}``.
        name: Dataset name (record ``source``, id prefix, journey-map key).
        **kwargs: ``format``, ``default_stage``, ``default_channel``, ``meta_columns`` of
            :class:`~csml.data.sources.TabularFileSource`, and ``fractions``, ``limit``, ``journey_map``.
    """

    def __init__(
        self,
        files: Iterable[str | Path],
        columns: Mapping[str, str],
        name: str = "user_pairs",
        fractions: Mapping[str, float] | None = None,
        limit: int | None = None,
        journey_map: str | Path | None = None,
        **table: Any,
    ) -> None:
        super().__init__(fractions=fractions, limit=limit, journey_map=journey_map)
        columns = dict(columns)
        if "response" not in columns:
            raise ValueError("columns must map 'response' to the column holding the agent's reply")
        self.name = name
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("files must name at least one file of query -> response pairs")
        self.columns = columns
        self.table = dict(table)

    def _pairs(self) -> tuple[list[Record], list[str]]:
        from csml.data.sources import TabularFileSource

        records = []
        for path in self.files:
            source = TabularFileSource(path, path, columns=self.columns, name=self.name, **self.table)
            for row in source._read_file("train"):
                if not row.record.response:
                    raise DataValidationError(
                        "empty response",
                        file=row.file,
                        row=row.row,
                        field=self.columns["response"],
                        expected="the agent's reply",
                    )
                records.append(row.record)
        return records, [str(p) for p in self.files]
