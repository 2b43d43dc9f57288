"""The contract every dataset source fulfils: read files, validate, return train/validation/test."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csml.data.journey import JourneyMap, load_journey_map
from csml.data.sources.checks import (
    Row,
    check_label_set,
    check_labels_present,
    check_split_labels,
    check_text,
    row_labels,
)
from csml.data.sources.policy import LabelPolicy, apply_label_policy
from csml.data.sources.sampling import stratified_split, stratified_take
from csml.data.splits import SPLITS, DatasetSplits
from csml.records import LABEL_FIELDS, Record

log = logging.getLogger(__name__)


class DatasetSource(ABC):
    """A dataset csml can train and evaluate on, loaded as validated :class:`DatasetSplits`.

    Contract for subclasses: set :attr:`name` (the dataset's key in the journey map and the ``source`` of its
    records) and implement :meth:`_read`, which returns :class:`Row` lists for ``"train"`` and ``"test"``, plus
    ``"validation"`` where the dataset has one, and fails with ``DataValidationError`` on bad files or rows
    (missing files or columns, bad encodings, empty text, unknown stage/channel values). Record ids are
    ``"<name>:<split or file part in the source>:<row index or native id>"``: they do not change when a
    validation split is carved from train, so per-sample results stay comparable across seeds.

    :meth:`load` does the rest for every source: it checks every row has a label, applies the label policy
    (rare labels dropped or merged, evaluation labels unseen in train refused, dropped or mapped to
    out-of-scope), carves a validation split from train when there is none (stratified by label, seeded;
    labels with a single train row stay in train), applies ``limit``, and keeps a report of what the policy
    did on the returned splits (``label_report``), logged as a warning when it changed anything.

    With ``multi_label`` a row's label is a set (see :mod:`csml.data.label_sets`): subclasses read label
    cells with :func:`~csml.data.sources.checks.check_label_set` (:meth:`_row` and the column mapping do),
    the label policy works on the atomic labels, and the carve and ``limit`` stratify by label set.

    Args:
        val_fraction: Fraction of each label's train rows held out as validation when there is none.
        seed: Seed of the validation carve-out and of the ``limit`` sample.
        limit: Most records kept per split, taken round-robin over labels after a seeded shuffle (small real
            slices for tests and smoke runs); ``None`` keeps all.
        journey_map: Path of the journey-map YAML giving stages and channels; ``None`` is the bundled map.
        label_policy: A :class:`~csml.data.sources.policy.LabelPolicy` or a mapping of its fields
            (``data.source.label_policy``); ``None`` is the default policy.
        multi_label: Read each label cell as a set of labels (``flight#airfare``, or a list) instead of one.
        label_separator: What separates the labels of a set in a text cell (multi-label data only).
    """

    name: str = ""

    def __init__(
        self,
        val_fraction: float = 0.1,
        seed: int = 0,
        limit: int | None = None,
        journey_map: str | Path | None = None,
        label_policy: LabelPolicy | Mapping[str, Any] | None = None,
        multi_label: bool = False,
        label_separator: str = "#",
    ) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of records or None, got {limit}")
        self.val_fraction = val_fraction
        self.seed = seed
        self.limit = limit
        self.journey_map = journey_map
        self.label_policy = LabelPolicy.of(label_policy)
        if multi_label:
            if not isinstance(label_separator, str) or not label_separator.strip():
                raise ValueError(
                    f"label_separator must be a non-blank string such as '#', got {label_separator!r}"
                )
            if "oos" in (self.label_policy.unseen_in_validation, self.label_policy.unseen_in_test):
                raise ValueError(
                    "label_policy.unseen_in_*=oos maps unseen labels to the out-of-scope label, which "
                    "multi-label data has none of; use drop (unseen labels leave their sets) or error"
                )
        self.label_separator: str | None = label_separator if multi_label else None
        """The separator of label sets for multi-label data; None for single-label data."""
        self._journey: JourneyMap | None = None

    @property
    def journey(self) -> JourneyMap:
        """The journey map, read on first use."""
        if self._journey is None:
            self._journey = load_journey_map(self.journey_map)
        return self._journey

    @abstractmethod
    def _read(self) -> dict[str, list[Row]]:
        """Rows per split as the dataset provides them: ``train`` and ``test``, optionally ``validation``."""

    def load(self, label_field: str) -> DatasetSplits:
        """Reads and validates the dataset, returning ``train``, ``validation`` and ``test`` splits.

        Args:
            label_field: Record field the model predicts, ``"intent"`` or ``"sentiment"``.

        Raises:
            DataValidationError: The data is missing or malformed; the message names file, row and field.
        """
        if label_field not in LABEL_FIELDS:
            raise ValueError(f"label_field must be one of {LABEL_FIELDS}, got {label_field!r}")
        splits = self._read()
        files = list(dict.fromkeys(row.file for rows in splits.values() for row in rows))
        check_labels_present(self.name, splits, label_field)
        splits, report = apply_label_policy(splits, label_field, self.label_policy, self.label_separator)
        if "validation" not in splits:
            counts = Counter(row.record.label(label_field) or "" for row in splits["train"])
            report.train_only_labels = {label: n for label, n in sorted(counts.items()) if n < 2}
            splits["train"], splits["validation"] = stratified_split(
                splits["train"], self.val_fraction, self.seed, key=lambda row: row.record.label(label_field)
            )
        if self.limit is not None:
            splits = self._take(splits, label_field, self.limit)
        labels, report.absent_labels = check_split_labels(splits, label_field, self.label_separator)
        if report.changed:
            log.warning(report.summary(self.name))
        return DatasetSplits(
            name=self.name,
            label_field=label_field,
            labels=labels,
            splits={split: [row.record for row in splits[split]] for split in SPLITS},
            sources=files,
            journey_map_version=self.journey.version,
            label_report=report.to_dict(),
            label_separator=self.label_separator,
        )

    def _take(self, splits: dict[str, list[Row]], label_field: str, limit: int) -> dict[str, list[Row]]:
        """At most ``limit`` rows per split, evaluation splits restricted to the labels train keeps."""

        def label(row: Row) -> Any:
            return row.record.label(label_field)

        def labels(row: Row) -> set[str]:
            return row_labels(row, label_field, self.label_separator)

        taken = {"train": stratified_take(splits["train"], limit, self.seed, key=label)}
        kept = {name for row in taken["train"] for name in labels(row)}
        for split in ("validation", "test"):
            rows = [row for row in splits[split] if labels(row) <= kept]
            taken[split] = stratified_take(rows, limit, self.seed, key=label)
        return taken

    def _row(
        self,
        split: str,
        index: int | str,
        text: object,
        *,
        file: str,
        row: int,
        intent: str | None = None,
        sentiment: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Row:
        """A row of a built-in dataset: checked text, stage and channel from the journey map."""
        intent = (intent.strip() or None) if intent is not None else None
        sentiment = (sentiment.strip() or None) if sentiment is not None else None
        if self.label_separator is not None:
            intent = check_label_set(intent, self.label_separator, file, row, "intent")
            sentiment = check_label_set(sentiment, self.label_separator, file, row, "sentiment")
        entry = self.journey.entry(self.name)
        record = Record(
            id=f"{self.name}:{split}:{index}",
            text=check_text(text, file, row),
            source=self.name,
            stage=entry.stage_for(intent),
            channel=entry.channel,
            intent=intent,
            sentiment=sentiment,
            meta=meta or {},
        )
        return Row(record, file, row)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed}, limit={self.limit})"
