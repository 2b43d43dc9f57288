"""A shared-weight bi-encoder: one transformer encodes queries and responses into the same unit sphere."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from csml.response.placeholders import to_slot_tokens

CARD = "card.json"


class BiEncoder(nn.Module):
    """Mean-pooled, L2-normalised embeddings from any ``transformers`` encoder (queries and responses alike).

    Texts are passed through :func:`~csml.response.placeholders.to_slot_tokens` before tokenisation by
    :meth:`encode_texts`, so placeholders become typed slot tokens.

    Args:
        encoder: A ``transformers`` ``AutoModel``.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> BiEncoder:
        """The pretrained encoder at ``name_or_path`` (a hub name online, a local folder offline)."""
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(name_or_path))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def encode_texts(
        self, texts: list[str], tokenizer: Any, max_length: int, batch_size: int = 64
    ) -> np.ndarray:
        """Unit-norm float32 embeddings of ``texts``, shape (len(texts), dim); longest texts batched together."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.encoder.config.hidden_size), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [to_slot_tokens(texts[i]) for i in index],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            emb = self(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            out[index] = emb.float().cpu().numpy()
        self.train(was_training)
        return out

    def save(self, directory: str | Path, tokenizer: Any, card: dict[str, Any]) -> Path:
        """Writes ``encoder/``, ``tokenizer/`` and a JSON card (max lengths, backbone...) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory / "encoder")
        tokenizer.save_pretrained(directory / "tokenizer")
        (directory / CARD).write_text(json.dumps(card, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> tuple[BiEncoder, Any, dict[str, Any]]:
        """Inverse of :meth:`save`: (bi-encoder in eval mode, tokenizer, card)."""
        from transformers import AutoModel, AutoTokenizer

        directory = Path(directory)
        if not (directory / CARD).is_file():
            raise FileNotFoundError(f"{directory} is not a saved bi-encoder: {CARD} is missing")
        card = json.loads((directory / CARD).read_text())
        model = cls(AutoModel.from_pretrained(directory / "encoder"))
        return model.eval(), AutoTokenizer.from_pretrained(directory / "tokenizer"), card


@dataclass(frozen=True)
class BiEncoderEmbedder:
    """A :class:`BiEncoder` with its tokenizer and a max length, as a :class:`csml.models.encoder.Embedder`
    (wrap it in :class:`csml.models.encoder.CachedEmbedder` to encode each distinct text once).

    Attributes:
        net: The bi-encoder (fine-tuned or untuned).
        tokenizer: Its tokenizer.
        max_length: Tokens kept per text (queries and responses get their own).
    """

    net: BiEncoder
    tokenizer: Any
    max_length: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings of ``texts`` (rows in order)."""
        return self.net.encode_texts(list(texts), self.tokenizer, self.max_length)
