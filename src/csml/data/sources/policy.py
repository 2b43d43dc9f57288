"""What a source does with labels a real export gets wrong: too rare to learn, or unseen in train.

Users' ticket and chat exports have a long tail of labels with one or two rows, and evaluation files that
hold labels train never saw. Instead of refusing such data, :class:`DatasetSource.load` applies a
:class:`LabelPolicy` (``data.source.label_policy`` in config) and keeps a :class:`LabelPolicyReport` of every
label and row it dropped or remapped, which the run logs with its dataset identity.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from csml.data.label_sets import join_label_set
from csml.data.sources.checks import Row, check_known_labels, row_labels
from csml.data.splits import DataValidationError

RARE_ACTIONS = ("drop", "merge")
UNSEEN_ACTIONS = ("error", "drop", "oos")
EVAL_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class LabelPolicy:
    """How :meth:`DatasetSource.load` treats rare labels and evaluation labels unseen in train.

    Attributes:
        min_train_examples: Labels with fewer train rows are rare. 2 by default: the fewest rows a label
            needs to be both learnt from and held out in a carved validation split; a higher bar removes
            labels, which is a modelling choice to make knowingly (the report lists what it would remove).
        rare: ``drop`` the rows of rare labels from every split, or ``merge`` them into ``other_label``.
        other_label: The label rare labels are merged into (an existing label, or a new one).
        unseen_in_validation: What to do with validation rows whose label never occurs in train: ``error``
            (default: a validation file that disagrees with train is usually the wrong file or a renamed
            label), ``drop`` them, or map them to ``oos`` (``oos_label``).
        unseen_in_test: The same for test rows; ``drop`` by default, since a label the model cannot
            predict measures the data gap rather than the model, and the report counts the rows.
        oos_label: The dataset's out-of-scope label (``data.oos_label``), needed by ``oos``.
    """

    min_train_examples: int = 2
    rare: str = "drop"
    other_label: str = "other"
    unseen_in_validation: str = "error"
    unseen_in_test: str = "drop"
    oos_label: str | None = None

    def __post_init__(self) -> None:
        if self.min_train_examples < 1:
            raise ValueError(
                f"label_policy.min_train_examples must be at least 1, got {self.min_train_examples}"
            )
        if self.rare not in RARE_ACTIONS:
            raise ValueError(f"label_policy.rare must be one of {RARE_ACTIONS}, got {self.rare!r}")
        if not self.other_label:
            raise ValueError("label_policy.other_label must be a non-empty label")
        for split in EVAL_SPLITS:
            action = self.unseen(split)
            if action not in UNSEEN_ACTIONS:
                raise ValueError(
                    f"label_policy.unseen_in_{split} must be one of {UNSEEN_ACTIONS}, got {action!r}"
                )
            if action == "oos" and not self.oos_label:
                raise ValueError(
                    f"label_policy.unseen_in_{split}=oos needs the dataset's out-of-scope label: set "
                    "data.oos_label (or label_policy.oos_label)"
                )

    @classmethod
    def of(cls, value: LabelPolicy | Mapping[str, Any] | None) -> LabelPolicy:
        """A policy from config (a mapping of the attributes above), or the defaults for ``None``."""
        if value is None:
            return cls()
        if isinstance(value, LabelPolicy):
            return value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"unknown label_policy keys {unknown}; expected some of {sorted(names)}")
        return cls(**{str(key): value[key] for key in value})

    def unseen(self, split: str) -> str:
        """The action for ``split``'s rows whose label train never has."""
        return self.unseen_in_validation if split == "validation" else self.unseen_in_test


@dataclass
class LabelPolicyReport:
    """What a :class:`LabelPolicy` did to one dataset; logged as a warning and with the run's dataset record.

    Attributes:
        policy: The policy applied.
        rare_labels: Rare label -> its train rows, dropped or merged into ``policy.other_label`` per
            ``policy.rare``.
        unseen_labels: Split -> label absent from train -> its rows in that split (dropped or mapped to the
            out-of-scope label per the split's policy).
        rows_dropped: Split -> rows removed.
        rows_remapped: Split -> rows whose label was changed (merged or mapped to out-of-scope).
        train_only_labels: Label -> train rows, for labels too rare to carve a validation split from: they
            stay in train and are absent from validation. For multi-label data these are label sets (the
            carve stratifies by set); the other entries name single labels.
        absent_labels: Split -> train labels with no row in that split (metrics there cover the labels
            present; per-class reports show these with support 0).
    """

    policy: LabelPolicy
    rare_labels: dict[str, int] = field(default_factory=dict)
    unseen_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_remapped: dict[str, int] = field(default_factory=dict)
    train_only_labels: dict[str, int] = field(default_factory=dict)
    absent_labels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the data differs from a dataset every check would pass as it is."""
        return bool(
            self.rare_labels
            or self.unseen_labels
            or self.train_only_labels
            or any(self.absent_labels.values())
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as logged to MLflow (``data/label_policy.json``)."""
        return {
            "policy": dataclasses.asdict(self.policy),
            "rare_labels": dict(self.rare_labels),
            "unseen_labels": {split: dict(labels) for split, labels in self.unseen_labels.items()},
            "rows_dropped": dict(self.rows_dropped),
            "rows_remapped": dict(self.rows_remapped),
            "train_only_labels": dict(self.train_only_labels),
            "absent_labels": {split: list(labels) for split, labels in self.absent_labels.items()},
        }

    def summary(self, name: str) -> str:
        """One warning line per thing the policy did, for the log."""
        policy = self.policy
        lines = [f"label policy of dataset {name!r} changed its labels:"]
        if self.rare_labels:
            what = "dropped" if policy.rare == "drop" else f"merged into {policy.other_label!r}"
            lines.append(
                f"  {len(self.rare_labels)} labels with < {policy.min_train_examples} train rows {what}: "
                + _counts(self.rare_labels)
            )
        for split, labels in self.unseen_labels.items():
            action = policy.unseen(split)
            what = "dropped" if action == "drop" else f"mapped to {policy.oos_label!r}"
            lines.append(f"  {split} labels absent from train {what}: {_counts(labels)}")
        for split in sorted(set(self.rows_dropped) | set(self.rows_remapped)):
            lines.append(
                f"  {split}: {self.rows_dropped.get(split, 0)} rows dropped, "
                f"{self.rows_remapped.get(split, 0)} remapped"
            )
        if self.train_only_labels:
            lines.append(
                "  labels too rare to carve validation from (kept in train only): "
                + _counts(self.train_only_labels)
            )
        for split, labels in self.absent_labels.items():
            if labels:
                lines.append(f"  train labels with no {split} rows (not scored there): {', '.join(labels)}")
        return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{label} ({n})" for label, n in sorted(counts.items()))


def apply_label_policy(
    splits: dict[str, list[Row]], label_field: str, policy: LabelPolicy, separator: str | None = None
) -> tuple[dict[str, list[Row]], LabelPolicyReport]:
    """Applies ``policy`` to the rows of every split, before a validation split is carved.

    Rare labels are judged by their train rows and treated alike in every split (a label dropped from train
    is dropped from validation and test too), so the ``unseen_in_*`` actions only concern labels train never
    had at all.

    For multi-label data (``separator``: labels are sets, see :mod:`csml.data.label_sets`) the policy works
    on atomic labels: a label's train rows are the rows whose set holds it; a rare or unseen label is dropped
    from the sets that hold it (or replaced by ``other_label`` / the out-of-scope label), and a row whose set
    becomes empty is dropped. A row whose set changed counts as remapped, one whose set emptied as dropped.

    Raises:
        DataValidationError: A split's policy is ``error`` and it has labels train lacks (file, row, field of
            the first such row), or ``oos`` maps to a label train lacks.
    """
    report = LabelPolicyReport(policy)

    def labels(row: Row) -> set[str]:
        return row_labels(row, label_field, separator)

    def relabel(row: Row, new: set[str]) -> Row:
        meta = {**row.record.meta, f"original_{label_field}": row.record.label(label_field) or ""}
        new_label = join_label_set(new, separator)
        return row._replace(record=dataclasses.replace(row.record, **{label_field: new_label}, meta=meta))

    def count(counts: dict[str, int], split: str) -> None:
        counts[split] = counts.get(split, 0) + 1

    def apply(rows: list[Row], split: str, remove: set[str], replacement: str | None) -> list[Row]:
        """``rows`` with the labels in ``remove`` taken out of their sets, and ``replacement`` put in."""
        kept: list[Row] = []
        for row in rows:
            old = labels(row)
            if not old & remove:
                kept.append(row)
                continue
            new = (old - remove) | ({replacement} if replacement else set())
            if new == old:
                kept.append(row)  # a rare other label merges into itself: unchanged
            elif new:
                kept.append(relabel(row, new))
                count(report.rows_remapped, split)
            else:
                count(report.rows_dropped, split)
        return kept

    counts = Counter(label for row in splits["train"] for label in labels(row))
    rare = {name: n for name, n in counts.items() if n < policy.min_train_examples}
    if policy.rare == "merge" and rare.keys() == {policy.other_label}:
        rare = {}  # merging the other label into itself changes nothing
    report.rare_labels = dict(sorted(rare.items()))
    merged_into = policy.other_label if policy.rare == "merge" else None
    result = {split: apply(rows, split, set(rare), merged_into) for split, rows in splits.items()}

    known = {label for row in result["train"] for label in labels(row)}
    for split in EVAL_SPLITS:
        if split not in result:
            continue
        action = policy.unseen(split)
        if action == "error":
            hint = f" (set data.source.label_policy.unseen_in_{split}=drop or oos to go on without them)"
            check_known_labels({"train": result["train"], split: result[split]}, label_field, hint, separator)
            continue
        if action == "oos" and policy.oos_label not in known:
            raise DataValidationError(
                f"label_policy.unseen_in_{split}=oos maps to the out-of-scope label, which train lacks",
                field=label_field,
                expected=f"{policy.oos_label!r} among the train labels",
                found=f"{len(known)} train labels without it",
            )
        unseen = Counter(label for row in result[split] for label in labels(row) - known)
        if not unseen:
            continue
        report.unseen_labels[split] = dict(sorted(unseen.items()))
        mapped_to = str(policy.oos_label) if action == "oos" else None
        result[split] = apply(result[split], split, set(unseen), mapped_to)
    return result, report
