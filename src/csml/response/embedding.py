"""Embedding texts for response metrics, shared by the retrieval and generative response pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np


class CachedEmbedder:
    """Texts -> embeddings through an encoder, remembering every text it has embedded (metrics reuse them)."""

    def __init__(self, net: Any, tokenizer: Any, max_length: int) -> None:
        self.net, self.tokenizer, self.max_length = net, tokenizer, max_length
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, emb in zip(
                missing, self.net.encode_texts(missing, self.tokenizer, self.max_length), strict=True
            ):
                self.cache[text] = emb
        return np.stack([self.cache[t] for t in texts])
