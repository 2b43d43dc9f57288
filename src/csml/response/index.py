"""The response bank: candidate responses and their normalised embeddings, searched by dot product."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csml.response.placeholders import find_placeholders

EMBEDDINGS = "embeddings.npy"
RESPONSES = "responses.jsonl"


@dataclass
class ResponseIndex:
    """Exact top-k search over unit-norm response embeddings (numpy; a few 100k responses fit easily).

    Attributes:
        embeddings: (n, dim) float32, unit rows, from the same encoder as the queries.
        responses: The n responses as written, placeholders included (``{{Order Number}}``).
        ids: An id per response (``"r<row>"`` by default).
        meta: Per-response extra fields (source, stage...), JSON-serialisable.
    """

    embeddings: np.ndarray
    responses: list[str]
    ids: list[str] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2 or len(self.embeddings) != len(self.responses):
            raise ValueError(
                f"embeddings must be (n, dim) with n = {len(self.responses)} responses; "
                f"got shape {self.embeddings.shape}"
            )
        self.ids = self.ids or [f"r{i}" for i in range(len(self.responses))]
        self.meta = self.meta or [{} for _ in self.responses]

    def __len__(self) -> int:
        return len(self.responses)

    def search(self, queries: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, indices) per query row, best first; ``k`` is capped at the bank size."""
        scores = np.asarray(queries, dtype=np.float32) @ self.embeddings.T
        return top_k(scores, k)

    def save(self, directory: str | Path) -> Path:
        """Writes ``embeddings.npy`` and ``responses.jsonl`` (id, response, placeholders, meta)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / EMBEDDINGS, self.embeddings)
        with (directory / RESPONSES).open("w", encoding="utf-8") as handle:
            for id_, text, meta in zip(self.ids, self.responses, self.meta, strict=True):
                row = {"id": id_, "response": text, "placeholders": find_placeholders(text), "meta": meta}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ResponseIndex:
        """Inverse of :meth:`save`."""
        directory = Path(directory)
        rows = [json.loads(line) for line in (directory / RESPONSES).read_text(encoding="utf-8").splitlines()]
        return cls(
            np.load(directory / EMBEDDINGS),
            [r["response"] for r in rows],
            [r["id"] for r in rows],
            [r.get("meta") or {} for r in rows],
        )


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (scores, column indices) of each row of ``scores``, best first."""
    k = max(1, min(k, scores.shape[1]))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)
