"""LightningDataModule for text classification over csml records (intent and sentiment)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from csml.data.sources import DatasetSource
from csml.data.splits import DatasetSplits
from csml.records import Record


class EncodedSplit(Dataset):
    """Token ids and label of each record of one split (tokenised once, padded per batch): its label index,
    or for multi-label data a 0/1 vector over the labels."""

    def __init__(
        self, records: Sequence[Record], input_ids: list[list[int]], label_ids: list[int] | list[list[float]]
    ) -> None:
        self.records = list(records)
        self.input_ids = input_ids
        self.label_ids = label_ids

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.input_ids[index], "labels": self.label_ids[index], "index": index}


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar-length samples, in random order, so dynamic padding wastes little compute.

    Indices are shuffled, cut into pools of ``pool_factor`` batches, each pool sorted by length and cut
    into batches; the batches are then shuffled. A different permutation is drawn each epoch from
    ``seed + epoch``, so runs are reproducible.

    With ``weights`` (one per sample), the epoch is instead ``len(lengths)`` indices drawn with replacement
    in proportion to them (:func:`balanced_weights` gives every label the same share), then pooled, sorted
    and batched the same way: sorting reorders samples within a pool, so the epoch keeps the drawn share of
    every label.

    Under data-parallel training (``num_replicas`` processes) every process draws the same permutation and
    takes every ``num_replicas``-th batch from ``rank``, each the same number of batches.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        pool_factor: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.lengths = list(lengths)
        self.weights = list(weights) if weights is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.pool_size = batch_size * pool_factor
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        if self.weights is None:
            order = list(range(len(self.lengths)))
            rng.shuffle(order)
        else:
            order = rng.choices(range(len(self.lengths)), weights=self.weights, k=len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = sorted(order[start : start + self.pool_size], key=self.lengths.__getitem__)
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        rng.shuffle(batches)
        per_replica = len(batches) // self.num_replicas
        return iter(batches[self.rank : per_replica * self.num_replicas : self.num_replicas])

    def __len__(self) -> int:
        return ((len(self.lengths) + self.batch_size - 1) // self.batch_size) // self.num_replicas


class BalancedSampler(Sampler[int]):
    """``num_samples`` indices drawn with replacement in proportion to ``weights``, a new draw each epoch
    from ``seed + epoch`` (reproducible, like :class:`LengthBucketSampler`).

    Under data-parallel training every process makes the same draw and takes every ``num_replicas``-th
    index from ``rank``, each the same number.
    """

    def __init__(
        self,
        weights: Sequence[float],
        seed: int,
        num_samples: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.weights = list(weights)
        self.num_samples = len(self.weights) if num_samples is None else num_samples
        self.seed = seed
        self.epoch = 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        drawn = rng.choices(range(len(self.weights)), weights=self.weights, k=self.num_samples)
        return iter(drawn[self.rank : len(self) * self.num_replicas : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples // self.num_replicas


def balanced_weights(label_ids: Sequence[int]) -> list[float]:
    """Sampling weight of each sample, ``1 / (rows of its label)``: every label is drawn equally often."""
    counts = Counter(label_ids)
    return [1.0 / counts[label] for label in label_ids]


class TextClassificationDataModule(L.LightningDataModule):
    """Loads a dataset source, tokenises each split once, and serves dynamically padded batches.

    Args:
        source: Where the records come from (a :class:`~csml.data.sources.DatasetSource`).
        tokenizer: A ``transformers`` tokenizer, or a name/path to load one from.
        label_field: Record field to predict: ``"intent"`` or ``"sentiment"``.
        batch_size: Training batch size.
        eval_batch_size: Batch size for validation, test and prediction.
        max_length: Longer texts are truncated to this many tokens.
        num_workers: DataLoader worker processes.
        length_bucketing: Batch training samples of similar length (faster; still shuffled).
        balanced_sampling: Each training epoch draws as many samples as the training split has, with
            replacement, every label equally often (rare labels repeat, frequent ones are subsampled);
            combines with ``length_bucketing``, which then batches the drawn samples by length. Not for
            multi-label data (a row holds several labels; weigh them with ``model.class_weighting``).
        oos_label: Label that marks out-of-scope utterances (CLINC150's ``"oos"``), if any.
        seed: Seed of the training-batch order.
    """

    def __init__(
        self,
        source: DatasetSource,
        tokenizer: Any,
        label_field: str = "intent",
        batch_size: int = 32,
        eval_batch_size: int = 128,
        max_length: int = 64,
        num_workers: int = 0,
        length_bucketing: bool = True,
        oos_label: str | None = None,
        seed: int = 0,
        balanced_sampling: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.tokenizer = _load_tokenizer(tokenizer)
        self.label_field = label_field
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.num_workers = num_workers
        self.length_bucketing = length_bucketing
        self.balanced_sampling = balanced_sampling
        self.oos_label = oos_label
        self.seed = seed
        self.data: DatasetSplits | None = None
        self.encoded: dict[str, EncodedSplit] = {}

    @property
    def labels(self) -> list[str]:
        """Label names in index order (available after :meth:`setup`)."""
        return self.splits.labels

    @property
    def splits(self) -> DatasetSplits:
        if self.data is None:
            raise RuntimeError("call setup() before using the data module's splits")
        return self.data

    @property
    def multi_label(self) -> bool:
        """Whether a record's label is a set (``data.source.multi_label``; available after :meth:`setup`)."""
        return self.splits.multi_label

    def label_counts(self, split: str = "train") -> list[int]:
        """Rows of each label in ``split`` (for multi-label data: rows whose set holds it), in label index
        order (after :meth:`setup`)."""
        if self.multi_label:
            return [int(n) for n in torch.tensor(self.encoded[split].label_ids).sum(0).tolist()]
        counts = Counter(self.encoded[split].label_ids)
        return [counts[i] for i in range(len(self.labels))]

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        self.data = self.source.load(self.label_field)
        if self.oos_label is not None and self.oos_label not in self.data.labels:
            raise ValueError(
                f"data.oos_label={self.oos_label!r} is not a label of dataset {self.data.name!r}; "
                f"set data.oos_label=null or use one of its labels"
            )
        if self.data.multi_label and self.balanced_sampling:
            raise ValueError(
                "data.balanced_sampling draws every label equally often, which rows holding label sets "
                "cannot be; for multi-label data set data.balanced_sampling=false and weigh rare labels with "
                "model.class_weighting=balanced"
            )
        label_index = {label: i for i, label in enumerate(self.data.labels)}
        for split, records in self.data.splits.items():
            if self.data.multi_label:
                self.encoded[split] = self.encode(records, self._label_vectors(records, label_index))
                continue
            self.encoded[split] = self.encode(
                records, [label_index[r.label(self.label_field)] for r in records]
            )

    def _label_vectors(self, records: Sequence[Record], label_index: dict[str, int]) -> list[list[float]]:
        """The 0/1 vector over the labels of each record's label set (multi-label data)."""
        vectors = []
        for record in records:
            vector = [0.0] * len(label_index)
            for label in self.splits.label_set(record):
                vector[label_index[label]] = 1.0
            vectors.append(vector)
        return vectors

    def encode(self, records: Sequence[Record], label_ids: list[int] | None = None) -> EncodedSplit:
        """Tokenises records without padding (``label_ids`` default to -1 for unlabelled prediction)."""
        texts = [r.text for r in records]
        input_ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return EncodedSplit(records, input_ids, label_ids if label_ids is not None else [-1] * len(texts))

    def collate(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        padded = self.tokenizer.pad({"input_ids": [b["input_ids"] for b in batch]}, return_tensors="pt")
        dtype = torch.float32 if self.multi_label else torch.long  # 0/1 label vectors, or label indices
        padded["labels"] = torch.tensor([b["labels"] for b in batch], dtype=dtype)
        padded["index"] = torch.tensor([b["index"] for b in batch], dtype=torch.long)
        return dict(padded)

    def train_dataloader(self) -> DataLoader:
        dataset = self.encoded["train"]
        replicas, rank = _data_parallel_group()
        weights = balanced_weights(dataset.label_ids) if self.balanced_sampling else None
        if self.length_bucketing:
            lengths = [len(ids) for ids in dataset.input_ids]
            sampler = LengthBucketSampler(
                lengths, self.batch_size, self.seed, num_replicas=replicas, rank=rank, weights=weights
            )
            return self._loader(dataset, batch_sampler=sampler)
        if weights is not None:
            balanced = BalancedSampler(weights, self.seed, num_replicas=replicas, rank=rank)
            return self._loader(dataset, batch_size=self.batch_size, sampler=balanced)
        if replicas > 1:
            shard = DistributedSampler(dataset, replicas, rank, shuffle=True, seed=self.seed, drop_last=True)
            return self._loader(dataset, batch_size=self.batch_size, sampler=shard)
        generator = torch.Generator().manual_seed(self.seed)
        return self._loader(dataset, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def eval_dataloader(self, split: str) -> DataLoader:
        """Batches of one split, in file order."""
        return self.loader_for(self.encoded[split])

    def loader_for(self, dataset: EncodedSplit) -> DataLoader:
        return self._loader(dataset, batch_size=self.eval_batch_size, shuffle=False)

    def _loader(self, dataset: EncodedSplit, **kwargs: Any) -> DataLoader:
        return DataLoader(
            dataset,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )


def _data_parallel_group() -> tuple[int, int]:
    """(processes, this process's rank) of data-parallel training; (1, 0) in a single process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def _load_tokenizer(tokenizer: Any) -> Any:
    if isinstance(tokenizer, str):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tokenizer)
    return tokenizer
