"""The sentence encoder (the packaged all-MiniLM-L6-v2 by default) every part of csml embeds text with.

:func:`load_encoder` gives one :class:`Encoder` per model and options per process: the reference bot
retrieves with it and the audit's similarity metrics embed with it, so a bot and its audit run in one
process share the weights. Consumers that only need vectors depend on the :class:`Embedder` protocol;
:class:`CachedEmbedder` encodes each distinct text once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from csml.models.quantize import quantize_int8


class Embedder(Protocol):
    """Anything that maps texts to unit-norm vectors (:class:`Encoder` is one)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


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
        raise ValueError(f"jit: cannot trace a {type(model[0]).__name__}; load the encoder with jit=false")
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


class CachedEmbedder:
    """Wraps an :class:`Embedder` so each distinct text is encoded once (an audit's contexts repeat)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts`` (rows in order)."""
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            for text, vector in zip(new, self.embedder.encode(new), strict=True):
                self.vectors[text] = vector
        return np.stack([self.vectors[t] for t in texts])
