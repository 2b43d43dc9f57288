"""Batches of (prompt, reply) token ids for generator fine-tuning, with the loss on reply tokens only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from csml.records import Record
from csml.response.datamodule import PairDataModule
from csml.response.generative.prompts import PromptFormat, response_target
from csml.response.placeholders import find_placeholders

IGNORE_INDEX = -100


class GenerationDataModule(PairDataModule):
    """Query/dialogue -> reply pairs as causal-LM (prompt + reply) or seq2seq (prompt -> reply) batches.

    Same sources, splits and length options as the retrieval data (:class:`PairDataModule`). Prompts are
    cut from the left (the oldest tokens go first) to ``query_max_length`` tokens, replies from the right
    to ``response_max_length``; the reply ends with the tokenizer's EOS so the model learns to stop.

    Args:
        prompt: The model's :class:`PromptFormat` fields (filled in at run time, with the tokenizer).
        seq2seq: Encoder-decoder batches (``labels`` separate from ``input_ids``).
        **kwargs: Everything :class:`~csml.response.datamodule.PairDataModule` takes.
    """

    def __init__(
        self, *args: Any, prompt: Mapping[str, Any] | None = None, seq2seq: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.prompt = PromptFormat.from_dict(prompt or {})
        self.seq2seq = seq2seq

    def placeholder_names(self) -> list[str]:
        """Placeholder names of the training replies, in first-seen order (restored after generation)."""
        assert self.splits is not None, "call setup() first"
        names = (name for r in self.splits["train"] for name in find_placeholders(r.response or ""))
        return list(dict.fromkeys(names))

    def encode(self, record: Record) -> tuple[list[int], list[int]]:
        """Prompt and reply token ids of one pair (truncated as described above)."""
        prompt = self.tokenizer(self.prompt.record_prompt(self.tokenizer, record), add_special_tokens=False)
        reply = self.tokenizer(response_target(record.response or ""), add_special_tokens=False)
        eos = [self.tokenizer.eos_token_id]
        return prompt["input_ids"][-self.query_max_length :], reply["input_ids"][
            : self.response_max_length - 1
        ] + eos

    def collate(self, records: list[Record]) -> dict[str, torch.Tensor]:
        pairs = [self.encode(r) for r in records]
        if self.seq2seq:
            return {
                **_pad([p for p, _ in pairs], self.tokenizer.pad_token_id),
                "labels": _pad([r for _, r in pairs], IGNORE_INDEX)["input_ids"],
            }
        batch = _pad([p + r for p, r in pairs], self.tokenizer.pad_token_id)
        batch["labels"] = _pad([[IGNORE_INDEX] * len(p) + r for p, r in pairs], IGNORE_INDEX)["input_ids"]
        return batch


def _pad(rows: list[list[int]], value: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` of token rows."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}
