"""Knowledge bases: entries with retrieval keys, an answer and a passage.

The reference bot answers from them, the audit checks the facts of replies against them and the
groundedness judge's training pairs are written from them, so they live below all three. A knowledge-base
source is any object with ``load() -> list[KBEntry]``; configs build one with ``_target_``
(``conf/knowledge_base/*.yaml``). Bundled: the ABCD policy manual (:class:`AbcdGuidelines`). Read from a
path: question/answer files such as the bank FAQ (:class:`FaqFile`, CSV / TSV / JSONL), and documents of any
format auditors have (:class:`csml.knowledge.documents.DocumentFiles`: Markdown, text, HTML and tables).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class KBEntry:
    """One answerable unit of a knowledge base.

    Attributes:
        id: Stable identifier (``"bank_faq:17"``, ``"abcd:refund_initiate"``).
        title: Short human-readable name (an FAQ question, a policy section title).
        keys: Texts embedded for retrieval; an entry's score is its best key's similarity to the question.
        answer: What the extractive bot replies with.
        passage: The grounding text returned as the answer's context (the answer itself for an FAQ).
        intent: The entry's category, reported as the reply's intent when no intent model is configured.
        actions: Agent actions that resolve the request, offered as suggested actions.
    """

    id: str
    title: str
    keys: tuple[str, ...]
    answer: str
    passage: str
    intent: str | None = None
    actions: tuple[str, ...] = field(default=())


class FaqFile:
    """Question/answer pairs from a CSV, TSV or JSONL file (the bank FAQ: ``BankFAQs.csv``).

    Exact duplicate (question, answer) rows are kept once. Each question is the entry's retrieval key.

    Args:
        path: The file.
        name: Prefix of entry ids.
        question_column: Column holding the question.
        answer_column: Column holding the answer.
        category_column: Optional column reported as the entry's intent.
    """

    def __init__(
        self,
        path: str,
        name: str = "faq",
        question_column: str = "Question",
        answer_column: str = "Answer",
        category_column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.columns = (question_column, answer_column, category_column)

    def _rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            raise FileNotFoundError(
                f"knowledge base file {self.path} does not exist (set paths.external_data_dir or "
                "$CSML_EXTERNAL_DATA to the folder that holds it)"
            )
        text = self.path.read_text(encoding="utf-8")
        if self.path.suffix == ".jsonl":
            rows = []
            for line_number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{self.path}, line {line_number}: not JSON ({error})") from None
                if not isinstance(row, dict):
                    raise ValueError(
                        f"{self.path}, line {line_number}: expected a JSON object, found {row!r:.60}"
                    )
                rows.append(row)
            return rows
        delimiter = "\t" if self.path.suffix == ".tsv" else ","
        return list(csv.DictReader(text.splitlines(), delimiter=delimiter))

    def load(self) -> list[KBEntry]:
        """Reads the file; raises ``ValueError`` naming the missing column or the empty row."""
        question_col, answer_col, category_col = self.columns
        rows = self._rows()
        wanted = [c for c in self.columns if c]
        if not rows:
            raise ValueError(f"{self.path}: no rows")
        if missing := [c for c in wanted if c not in rows[0]]:
            raise ValueError(
                f"{self.path}: missing column(s) {missing}; found {sorted(rows[0])} (map them with "
                "question_column / answer_column, or title_column / text_column)"
            )
        entries, seen = [], set()
        for row_number, row in enumerate(rows, start=1):
            question, answer = (str(row.get(c) or "").strip() for c in (question_col, answer_col))
            if not question or not answer:
                empty = question_col if not question else answer_col
                raise ValueError(f"{self.path}, row {row_number}: empty {empty!r} (expected text)")
            if (question, answer) in seen:
                continue
            seen.add((question, answer))
            entries.append(
                KBEntry(
                    id=f"{self.name}:{row_number}",
                    title=question,
                    keys=(question,),
                    answer=answer,
                    passage=answer,
                    intent=str(row.get(category_col) or "").strip() or None if category_col else None,
                )
            )
        return entries


class AbcdGuidelines:
    """The ABCD agent guidelines as one passage per subflow (55 policy sections in 10 flows).

    ``ontology.json`` names each flow's subflows in the order ``guidelines.json`` lists them, which gives
    each section its intent label (``refund_initiate``) and, through ``kb.json``, the agent actions that
    resolve it. Retrieval keys are the section's title and its instructions.

    Args:
        root: Folder holding ``guidelines.json``, ``ontology.json`` and ``kb.json``.
    """

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _json(self, name: str) -> dict:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"ABCD knowledge base: {path} does not exist")
        return json.loads(path.read_text(encoding="utf-8"))

    def load(self) -> list[KBEntry]:
        """Reads the three files; raises ``ValueError`` if guidelines and ontology disagree."""
        guidelines, ontology, actions = (
            self._json(n) for n in ("guidelines.json", "ontology.json", "kb.json")
        )
        subflow_keys = ontology["intents"]["subflows"]
        entries = []
        for flow_name, flow in guidelines.items():
            flow_key = re.sub(r"[^a-z]+", "_", flow_name.lower()).strip("_")
            keys = subflow_keys.get(flow_key, [])
            if len(keys) != len(flow["subflows"]):
                raise ValueError(
                    f"ABCD: flow {flow_name!r} has {len(flow['subflows'])} subflows in guidelines.json "
                    f"but {len(keys)} in ontology.json under {flow_key!r}"
                )
            for subflow_key, (subflow_name, subflow) in zip(keys, flow["subflows"].items(), strict=True):
                title = f"{subflow_name} ({flow_name}: {flow['description']})"
                instructions = " ".join(_sentence(s) for s in subflow["instructions"])
                passage = _abcd_passage(title, subflow)
                entries.append(
                    KBEntry(
                        id=f"abcd:{subflow_key}",
                        title=title,
                        keys=(title, f"{subflow_name}. {instructions}"),
                        answer=passage,
                        passage=passage,
                        intent=subflow_key,
                        actions=tuple(actions.get(subflow_key, ())),
                    )
                )
        return entries


def _abcd_passage(title: str, subflow: dict) -> str:
    parts = [f"{title}.", *map(_sentence, subflow["instructions"])]
    for action in subflow["actions"]:
        parts += [_sentence(action["text"]), *map(_sentence, action["subtext"])]
    return " ".join(parts)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", ":", "?", "!")) else f"{text}."
