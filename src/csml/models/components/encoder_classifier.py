"""A ``transformers`` encoder (or decoder) with a pooling layer and a linear classification head."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from csml.models.components.oos_scorers import OOSScorer

POOLINGS = ("mean", "cls", "last")
MODEL_CARD = "csml_model.json"


def load_tokenizer(name_or_path: str, gguf_file: str | None = None) -> Any:
    """The backbone's tokenizer (``gguf_file``: a GGUF file inside ``name_or_path``), with a padding token.

    Decoders often have none; their EOS pads (padding is masked out, so which token pads does not matter).
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **({"gguf_file": gguf_file} if gguf_file else {}))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer of {name_or_path} has neither a padding nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function of logits (n, k): each label's probability in a multi-label model
    (computed stably, without overflow for large negative logits)."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(logits, dtype=np.float64)))


def _dense_gguf_kwargs(gguf_file: str) -> dict[str, Any]:
    """``from_pretrained`` arguments that load a GGUF file de-quantised into plain trainable weights.

    transformers >= 5 can keep GGUF weights packed (frozen, when a matmul kernel is installed); asking
    for ``GgufConfig(dequantize=True)`` rules that out. Older versions always de-quantise.
    """
    try:
        from transformers import GgufConfig
    except ImportError:
        return {"gguf_file": gguf_file}
    return {"gguf_file": gguf_file, "quantization_config": GgufConfig(dequantize=True)}


class EncoderClassifier(nn.Module):
    """Sequence classifier over any ``transformers`` base model (``AutoModel``): an encoder or a decoder.

    Mean pooling is the default because sentence encoders such as all-MiniLM-L6-v2 were trained with it;
    ``cls`` pooling takes the first token's hidden state; ``last`` takes the last non-padding token's, the
    one token of a causal decoder (SmolLM2, Llama) that has seen the whole text (any padding side).

    Args:
        encoder: A ``transformers`` base model (or a peft-wrapped one) returning ``last_hidden_state``.
        num_labels: Number of output classes.
        pooling: ``"mean"``, ``"cls"`` or ``"last"``.
        dropout: Dropout before the head.
    """

    def __init__(
        self, encoder: nn.Module, num_labels: int, pooling: str = "mean", dropout: float = 0.1
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        num_labels: int,
        pooling: str = "mean",
        dropout: float = 0.1,
        lora: dict[str, Any] | None = None,
        gguf_file: str | None = None,
    ) -> EncoderClassifier:
        """Loads a pretrained base model (hub name or local folder), optionally with LoRA adapters via peft.

        With ``lora`` (LoraConfig keyword arguments) only the adapters and the head are trained.
        ``gguf_file`` names a GGUF file inside ``name_or_path``, de-quantised to float32 on load.
        """
        from transformers import AutoModel

        kwargs = _dense_gguf_kwargs(gguf_file) if gguf_file else {}
        # from_pretrained returns eval mode
        encoder = AutoModel.from_pretrained(name_or_path, **kwargs).train()
        quantizer = getattr(encoder, "hf_quantizer", None)
        if gguf_file and quantizer is not None:
            # The weights are dense now; without the GGUF quantizer's marks the model saves as a plain one.
            quantizer.remove_quantization_config(encoder)
        if getattr(encoder.config, "use_cache", False):  # a decoder's key/value cache serves generation only
            encoder.config.use_cache = False
        if lora:
            from peft import LoraConfig, get_peft_model

            encoder = get_peft_model(encoder, LoraConfig(**lora))
        return cls(encoder, num_labels, pooling, dropout)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features, shape (batch, hidden_size): the head's input (before dropout)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "last":
            # Position of the last 1 of each mask row: right padding (pads after) and left padding alike.
            last = attention_mask.size(1) - 1 - attention_mask.flip(1).argmax(1)
            return hidden[torch.arange(len(hidden), device=hidden.device), last]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))

    @torch.inference_mode()
    def encode_texts(
        self, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features and logits of raw texts, shapes (len(texts), hidden_size) and
        (len(texts), num_labels), in batches on the model's device (for OOS scores that use features)."""
        device = self.head.weight.device
        features = [np.zeros((0, self.head.in_features), dtype=np.float32)]
        logits = [np.zeros((0, self.head.out_features), dtype=np.float32)]
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            pooled = self.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            features.append(pooled.float().cpu().numpy())
            logits.append(self.head(self.dropout(pooled)).float().cpu().numpy())
        return np.concatenate(features), np.concatenate(logits)

    def predict_texts(
        self, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 64
    ) -> np.ndarray:
        """Softmax probabilities of raw texts, shape (len(texts), num_labels), in batches on the model's device."""
        logits = self.encode_texts(tokenizer, texts, max_length, batch_size)[1]
        return torch.from_numpy(logits).softmax(-1).numpy()

    def save(
        self, directory: str | Path, tokenizer: Any, card: dict[str, Any], oos_scorer: OOSScorer | None = None
    ) -> Path:
        """Writes a self-contained model folder: encoder (LoRA merged), tokenizer, head and a JSON card.

        The card holds what inference needs besides weights: labels, pooling, max_length, OOS settings.
        With ``oos_scorer``, its fitted statistics are saved too and the card names it (read back by
        :func:`~csml.models.components.oos_scorers.load_oos_scorer`).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        encoder = self.encoder
        if hasattr(encoder, "merge_and_unload"):
            encoder = copy.deepcopy(encoder).merge_and_unload()
        encoder.save_pretrained(directory / "encoder")
        tokenizer.save_pretrained(directory / "tokenizer")
        torch.save(self.head.state_dict(), directory / "head.pt")
        if oos_scorer is not None:
            card = {**card, **oos_scorer.save(directory)}
        (directory / MODEL_CARD).write_text(json.dumps({"pooling": self.pooling, **card}, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> tuple[EncoderClassifier, Any, dict[str, Any]]:
        """Inverse of :meth:`save`: returns (model in eval mode, tokenizer, card)."""
        from transformers import AutoModel

        directory = Path(directory)
        card_path = directory / MODEL_CARD
        if not card_path.is_file():
            raise FileNotFoundError(f"{directory} is not a csml model folder: {MODEL_CARD} is missing")
        card = json.loads(card_path.read_text())
        model = cls(
            AutoModel.from_pretrained(directory / "encoder"), len(card["labels"]), card["pooling"], 0.0
        )
        model.head.load_state_dict(torch.load(directory / "head.pt", map_location="cpu"))
        return model.eval(), load_tokenizer(str(directory / "tokenizer")), card
