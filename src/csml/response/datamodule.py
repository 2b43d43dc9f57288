"""LightningDataModule of query -> response pairs: tokenised per batch, placeholders as slot tokens."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from csml.records import Record
from csml.response.data import PairSource, PairSplits, pair_key
from csml.response.placeholders import to_slot_tokens


class PairDataModule(L.LightningDataModule):
    """Batches of (query, response) pairs for in-batch-negative training.

    Each batch also carries ``query_group``: pairs whose queries normalise to the same text share a
    group, so the loss does not treat a repeated query's other reply as a negative.

    Args:
        source: A :class:`~csml.response.data.PairSource`.
        tokenizer: The encoder's tokenizer (filled in at run time).
        batch_size: Training pairs per batch (= 1 positive + ``batch_size - 1`` negatives per query).
        eval_batch_size: Pairs per validation batch.
        query_max_length: Token limit of queries.
        response_max_length: Token limit of responses.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        source: PairSource,
        tokenizer: Any,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        query_max_length: int = 48,
        response_max_length: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.query_max_length = query_max_length
        self.response_max_length = response_max_length
        self.num_workers = num_workers
        self.splits: PairSplits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self.source.load()

    def collate(self, records: list[Record]) -> dict[str, torch.Tensor]:
        def encode(texts: list[str], max_length: int) -> Any:
            return self.tokenizer(
                [to_slot_tokens(t) for t in texts],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )

        query = encode([r.text for r in records], self.query_max_length)
        response = encode([r.response or "" for r in records], self.response_max_length)
        keys = [pair_key(r.text) for r in records]
        groups = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        return {
            "query_input_ids": query["input_ids"],
            "query_attention_mask": query["attention_mask"],
            "response_input_ids": response["input_ids"],
            "response_attention_mask": response["attention_mask"],
            "query_group": torch.tensor([groups[key] for key in keys]),
        }

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        assert self.splits is not None, "call setup() first"
        return DataLoader(
            self.splits[split],
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(self.splits[split]) > batch_size,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.eval_batch_size, shuffle=False)
