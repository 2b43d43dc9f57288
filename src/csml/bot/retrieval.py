"""Dense retrieval over a knowledge base with a sentence encoder (:mod:`csml.models.encoder`).

Key embeddings are computed once per knowledge base and cached as ``<cache_dir>/<kb hash>.npy`` (the hash
covers the encoder and every key, so an edited KB or another encoder never reads a stale cache).
Concurrent requests are encoded together by a :class:`MicroBatcher`, which keeps latency flat under load
on a few CPU cores.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csml.knowledge import KBEntry
from csml.models.encoder import Encoder

log = logging.getLogger(__name__)


def kb_hash(entries: list[KBEntry], encoder: str) -> str:
    """SHA-256 over the encoder identity and every entry's keys: the key of the embedding cache."""
    digest = hashlib.sha256(encoder.encode())
    for entry in entries:
        digest.update(b"\x00" + entry.id.encode())
        for key in entry.keys:
            digest.update(b"\x01" + key.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    """A retrieved entry and its cosine similarity to the question (its best key's)."""

    entry: KBEntry
    score: float


class Retriever:
    """Top-k search over a knowledge base's key embeddings.

    Args:
        entries: The knowledge base.
        encoder: Embeds keys and questions.
        cache_dir: Folder of the embedding cache, or None to embed at every start.
    """

    def __init__(self, entries: list[KBEntry], encoder: Encoder, cache_dir: str | None = None) -> None:
        if not entries:
            raise ValueError("the knowledge base is empty")
        if keyless := [entry.id for entry in entries if not entry.keys]:
            raise ValueError(f"knowledge-base entries without retrieval keys: {keyless[:5]}")
        self.entries = entries
        self.encoder = encoder
        # Keys are stored entry by entry: entry i's keys start at row starts[i].
        self.starts = np.cumsum([0] + [len(entry.keys) for entry in entries[:-1]])
        self.matrix = self._key_embeddings(cache_dir)

    def _key_embeddings(self, cache_dir: str | None) -> np.ndarray:
        keys = [key for entry in self.entries for key in entry.keys]
        path = Path(cache_dir) / f"{kb_hash(self.entries, self.encoder.name)}.npy" if cache_dir else None
        if path is not None and path.is_file():
            matrix = np.load(path)
            if matrix.shape[0] == len(keys):
                log.info("KB embeddings: %d keys from cache %s", len(keys), path)
                return matrix
        matrix = self.encoder.encode(keys)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(partial, matrix)
            partial.replace(path)
            log.info("KB embeddings: %d keys embedded, cached at %s", len(keys), path)
        return matrix

    def search(self, query: np.ndarray, top_k: int) -> list[Hit]:
        """The ``top_k`` entries most similar to a unit-norm ``query`` vector, best first."""
        best = np.maximum.reduceat(self.matrix @ query, self.starts)
        top = np.argpartition(-best, min(top_k, len(best)) - 1)[:top_k]
        top = top[np.argsort(-best[top])]
        return [Hit(self.entries[i], float(best[i])) for i in top]


class MicroBatcher:
    """Turns concurrent single-item awaits into batched calls of a blocking function.

    Items queue while batches run in worker threads; each new batch takes up to ``max_batch`` of them.
    One request alone pays no waiting; sixteen concurrent requests share a few forward passes. With
    ``workers`` > 1, a batch starts while another is still running (on another core), so a request
    arriving mid-batch need not wait for that batch to finish. Use it from one event loop.

    Args:
        fn: Blocking function mapping a list of items to a sequence of results of the same length; it
            must be safe to call from ``workers`` threads at once.
        max_batch: Largest batch passed to ``fn``.
        workers: Batches in flight at once.
    """

    def __init__(
        self, fn: Callable[[list[Any]], Sequence[Any]], max_batch: int = 32, workers: int = 1
    ) -> None:
        if max_batch < 1 or workers < 1:
            raise ValueError(f"max_batch and workers must be >= 1, got {max_batch} and {workers}")
        self.fn = fn
        self.max_batch = max_batch
        self.workers = workers
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()  # drain tasks (finished ones until their done callback runs)

    async def __call__(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future))
        # Count unfinished tasks, not the set: a task is done the moment its drain returns, but its done
        # callback leaves the set a loop iteration later, and an item queued in between would wait forever.
        if sum(not task.done() for task in self._tasks) < self.workers:
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                results = await asyncio.to_thread(self.fn, [item for item, _ in batch])
            except Exception as error:  # every waiter of the batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
