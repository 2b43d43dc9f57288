"""Dense retrieval over a knowledge base with a sentence encoder (the packaged all-MiniLM-L6-v2).

Key embeddings are computed once per knowledge base and cached as ``<cache_dir>/<kb hash>.npy`` (the hash
covers the encoder and every key, so an edited KB or another encoder never reads a stale cache).
Concurrent requests are encoded together by a :class:`MicroBatcher`, which keeps latency flat under load
on a few CPU cores.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csml.bot.kb import KBEntry, kb_hash
from csml.models.quantize import quantize_int8

log = logging.getLogger(__name__)


class Encoder:
    """A ``sentence_transformers`` model producing L2-normalised float32 embeddings (thread-safe).

    Args:
        name_or_path: Local folder (offline) or hub name of the model.
        int8: Quantise the linear layers to int8 (PyTorch dynamic quantisation): about 2.5x less CPU
            per question on x86 at a cosine of about 0.95 to the float32 embeddings. Keys and questions
            are embedded by the same model, and the cache key says which.
        jit: Run the transformer as a frozen TorchScript trace: the same embeddings for about 30% less
            CPU per short question, the Python overhead of the module-by-module forward being gone.
    """

    def __init__(self, name_or_path: str, int8: bool = False, jit: bool = False) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = f"{name_or_path}#int8" if int8 else name_or_path
        self.model = SentenceTransformer(name_or_path, device="cpu")
        if int8:
            self.model = quantize_int8(self.model)
        # sentence-transformers 6 renamed tokenize and get_sentence_embedding_dimension
        self._preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        dimension = getattr(self.model, "get_embedding_dimension", None)
        self.dim = int((dimension or self.model.get_sentence_embedding_dimension)())
        self._traced = _trace(self.model) if jit else None
        self._lock = threading.Lock()  # fast tokenizers are not safe to call from two threads at once

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dim), unit norm.

        Texts are sorted by length so each padded batch holds similar lengths. Only tokenization is
        serialised: forward passes called from several threads run in parallel (torch releases the GIL).
        This is the model's own module pipeline (transformer, pooling) without ``SentenceTransformer.encode``'s
        per-call bookkeeping, which costs as much as a short question's forward pass.
        """
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        for start in range(0, len(order), batch_size):
            with self._lock:
                features = self._preprocess([texts[i] for i in order[start : start + batch_size]])
            with torch.inference_mode():
                embedded = self._embed(features)
                chunks.append(torch.nn.functional.normalize(embedded, dim=-1).numpy())
        stacked = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)
        vectors = np.empty_like(stacked)
        vectors[order] = stacked
        return vectors

    def _embed(self, features: dict[str, Any]) -> Any:
        if self._traced is None:
            return self.model(features)["sentence_embedding"]
        features["token_embeddings"] = self._traced(features["input_ids"], features["attention_mask"])
        for module in list(self.model)[1:]:  # pooling, normalisation
            features = module(features)
        return features["sentence_embedding"]


def _trace(model: Any) -> Any:
    """The first module's transformer as a frozen TorchScript trace (token embeddings from ids and mask)."""
    import warnings

    import torch

    class Backbone(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask)[0]

    transformer = getattr(model[0], "auto_model", None)
    if transformer is None:
        raise ValueError(f"bot.retrieval.jit: cannot trace a {type(model[0]).__name__}; set jit=false")
    # A padded example, so the trace keeps the attention-mask path that batches of mixed lengths need.
    example = model.tokenizer(["a", "a longer example"], padding=True, return_tensors="pt")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on Python values computed from shapes
        traced = torch.jit.trace(
            Backbone(transformer).eval(), (example["input_ids"], example["attention_mask"]), check_trace=False
        )
        return torch.jit.freeze(traced)


@functools.lru_cache(maxsize=4)
def load_encoder(name_or_path: str, int8: bool = False, jit: bool = False) -> Encoder:
    """One :class:`Encoder` per model and options per process (apps built in the same process share it)."""
    return Encoder(name_or_path, int8, jit)


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
