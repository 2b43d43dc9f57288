"""Scoring a classifier's probabilities on dataset splits: metrics, reports, plots, per-sample predictions.

Shared by ``csml train`` (after fitting) and, through :mod:`csml.scoring`, by ``csml eval`` and
``csml promote``, so all log the same metric names. :class:`DecisionRule` turns probabilities into labels
the same way for all of them and for the pyfunc's ``predict``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from csml.data.splits import metric_prefix
from csml.records import Record


@dataclass
class SplitEvaluation:
    """Predictions and metrics of one split (``prefix`` is the metric namespace: ``val`` or ``test``).

    ``y_true`` and ``y_pred`` are label indices, shape (n,); for a multi-label model 0/1 label indicators,
    shape (n, len(labels)).
    """

    prefix: str
    records: list[Record]
    y_true: np.ndarray
    probs: np.ndarray
    y_pred: np.ndarray
    metrics: dict[str, float]


@dataclass
class Evaluation:
    """All evaluated splits plus the thresholds that were used (chosen on validation data).

    ``label_separator`` is set for a multi-label model (labels are sets, joined with it), whose per-label
    thresholds are ``label_thresholds``, in ``labels`` order.
    """

    labels: list[str]
    label_field: str
    oos_label: str | None
    oos_threshold: float | None
    oos_score: str = "softmax"
    decision_threshold: float | None = None
    splits: dict[str, SplitEvaluation] = field(default_factory=dict)
    label_separator: str | None = None
    label_thresholds: tuple[float, ...] | None = None

    @property
    def metrics(self) -> dict[str, float]:
        return {k: v for split in self.splits.values() for k, v in split.metrics.items()}

    @property
    def multi_label(self) -> bool:
        """Whether the model predicts a set of labels per text."""
        return self.label_separator is not None


@dataclass(frozen=True)
class DecisionRule:
    """How a classifier's probabilities (and in-scope OOS scores) become labels.

    The one rule behind training's test metrics, ``csml eval``, ``csml promote`` and the pyfunc's ``predict``
    (see :mod:`csml.scoring`): with an ``oos_label``, an in-scope score below ``oos_threshold`` gives the OOS
    label (:func:`~csml.metrics.oos.predict_with_oos`); else a two-label model with a ``decision_threshold``
    predicts ``positive_label`` when its probability reaches it (:func:`predict_with_decision_threshold`);
    else the argmax. A ``multi_label`` model (one sigmoid probability per label) predicts every label whose
    probability reaches its own threshold in ``label_thresholds``, and the single most probable label for a
    text where none does (:func:`~csml.metrics.multilabel.predict_label_sets`); its predictions are 0/1
    label indicators, shape (n, len(labels)).

    Attributes:
        labels: Label names in the column order of the probabilities.
        oos_label: The out-of-scope label, if the task has one (without it ``oos_threshold`` is ignored).
        oos_threshold: The least in-scope score that keeps an in-scope prediction, on the scale of the
            model's OOS score (None: argmax, OOS as a class); ``"auto"`` until :meth:`choose` picks it.
        positive_label: The label ``decision_threshold`` applies to (one of exactly two labels).
        decision_threshold: The least probability of ``positive_label`` that predicts it (None: argmax);
            ``"auto"`` until :meth:`choose` picks it.
        multi_label: The probabilities are one sigmoid per label and a text has a set of labels.
        label_thresholds: With ``multi_label``, the least probability of each label that predicts it, in
            ``labels`` order (None: 0.5 for each); ``"auto"`` until :meth:`choose` picks them.

    Raises:
        ValueError: A decision threshold without a positive label, or a positive label that is not one of
            exactly two labels; a multi-label rule with an OOS or positive label, or with a number of label
            thresholds other than one per label.
    """

    labels: tuple[str, ...]
    oos_label: str | None = None
    oos_threshold: float | str | None = None
    positive_label: str | None = None
    decision_threshold: float | str | None = None
    multi_label: bool = False
    label_thresholds: tuple[float, ...] | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        self._check_label_thresholds()
        if self.oos_label is None:
            object.__setattr__(self, "oos_threshold", None)
        elif self.oos_threshold not in (None, "auto"):
            object.__setattr__(self, "oos_threshold", float(self.oos_threshold))
        if self.positive_label is None:
            if self.decision_threshold not in (None, "auto"):
                raise ValueError(f"decision_threshold={self.decision_threshold} needs positive_label=<label>")
            object.__setattr__(self, "decision_threshold", None)
            return
        check_positive_label(list(self.labels), self.positive_label)
        if self.decision_threshold not in (None, "auto"):
            object.__setattr__(self, "decision_threshold", float(self.decision_threshold))

    def _check_label_thresholds(self) -> None:
        """Validates the multi-label fields (``label_thresholds`` as a tuple of floats, or None or "auto")."""
        thresholds = self.label_thresholds
        numbers = thresholds is not None and not isinstance(thresholds, str)
        if isinstance(thresholds, str) and thresholds != "auto":
            raise ValueError(f'label_thresholds must be numbers, "auto" or None, got {thresholds!r}')
        if not self.multi_label:
            if numbers:
                raise ValueError("label_thresholds are the thresholds of a multi-label rule: set multi_label")
            object.__setattr__(self, "label_thresholds", None)
            return
        if self.oos_label is not None:
            raise ValueError(
                f"a multi-label model has no out-of-scope label (got {self.oos_label!r}): out-of-scope "
                "detection needs one label per text; set data.oos_label=null"
            )
        if self.positive_label is not None:
            raise ValueError(
                f"positive_label={self.positive_label!r} and its decision threshold are for two-label "
                "models; a multi-label model has a threshold per label (label_thresholds)"
            )
        if numbers:
            thresholds = tuple(float(t) for t in thresholds)
            if len(thresholds) != len(self.labels):
                raise ValueError(f"{len(thresholds)} label thresholds for {len(self.labels)} labels")
            object.__setattr__(self, "label_thresholds", thresholds)

    @property
    def resolved(self) -> bool:
        """No threshold is left ``"auto"``: the rule can :meth:`predict`."""
        return "auto" not in (self.oos_threshold, self.decision_threshold, self.label_thresholds)

    def choose(
        self,
        probs: np.ndarray,
        y: np.ndarray,
        scores: np.ndarray | None = None,
        *,
        oos_min_recall: float | None = None,
        oos_in_scope_acceptance: float | None = None,
        domains: Sequence[str] | None = None,
        answers: Sequence[str | None] | None = None,
    ) -> DecisionRule:
        """This rule with its ``"auto"`` thresholds chosen on validation data, as training chooses them.

        Args:
            probs: Validation probabilities, shape (n, len(labels)).
            y: Their true class indices; for a multi-label rule their 0/1 label indicators (n, len(labels)),
                on which each label's threshold is chosen for its best F1
                (:func:`~csml.metrics.multilabel.choose_label_thresholds`).
            scores: Their in-scope OOS scores; None for the in-scope max probability.
            oos_min_recall: The validation OOS recall the OOS threshold must reach (see
                :func:`~csml.metrics.oos.choose_oos_threshold`); None maximises the mean of in-scope
                accuracy and OOS recall.
            oos_in_scope_acceptance: The share of validation in-scope utterances the OOS threshold must
                accept (instead of ``oos_min_recall``).
            domains: Each validation row's domain: the decision threshold then maximises the mean over
                domains of the balanced accuracy (:func:`~csml.metrics.binary.choose_domain_balanced_threshold`),
                so it transfers to domains not seen rather than fitting the largest one.
            answers: Each validation row's answer id: rows of one answer are one decision, its weakest row's.
        """
        from csml.metrics.binary import choose_decision_threshold, choose_domain_balanced_threshold
        from csml.metrics.multilabel import choose_label_thresholds
        from csml.metrics.oos import choose_oos_threshold

        chosen: dict[str, Any] = {}
        if self.label_thresholds == "auto":
            chosen["label_thresholds"] = tuple(float(t) for t in choose_label_thresholds(probs, y))
        if self.oos_threshold == "auto":
            chosen["oos_threshold"] = choose_oos_threshold(
                probs,
                y,
                list(self.labels),
                str(self.oos_label),
                min_oos_recall=oos_min_recall,
                scores=scores,
                min_in_scope_acceptance=oos_in_scope_acceptance,
            )
        if self.decision_threshold == "auto":
            positive = self.labels.index(str(self.positive_label))
            if domains is None and answers is None:
                chosen["decision_threshold"] = choose_decision_threshold(probs[:, positive], y == positive)
            else:
                chosen["decision_threshold"] = choose_domain_balanced_threshold(
                    probs[:, positive], y == positive, domains or [""] * len(y), answers
                )
        return replace(self, **chosen)

    def predict(self, probs: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Class indices of ``probs`` (n, len(labels)), or a multi-label rule's 0/1 label indicators (n,
        len(labels)); ``scores`` are the in-scope OOS scores (None: the in-scope max probability)."""
        from csml.metrics.multilabel import DEFAULT_THRESHOLD, predict_label_sets
        from csml.metrics.oos import predict_with_oos

        if not self.resolved:
            raise ValueError(
                '"auto" thresholds are chosen on validation data: call DecisionRule.choose first'
            )
        if self.multi_label:
            thresholds = self.label_thresholds or (DEFAULT_THRESHOLD,) * len(self.labels)
            return predict_label_sets(probs, thresholds)
        if self.oos_label is not None:
            return predict_with_oos(
                probs, list(self.labels), self.oos_label, self.oos_threshold, scores=scores
            )
        if self.decision_threshold is not None:
            return predict_with_decision_threshold(
                probs, list(self.labels), str(self.positive_label), float(self.decision_threshold)
            )
        return np.asarray(probs).argmax(-1)


def label_indices(records: Sequence[Record], label_field: str, labels: Sequence[str]) -> np.ndarray:
    """Index of each record's label in ``labels``; a clear error names labels the model does not know."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({r.label(label_field) for r in records} - index.keys())
    if unknown:
        raise ValueError(
            f"the data has {label_field} labels the model was not trained on: {unknown[:10]}"
            f"{' ...' if len(unknown) > 10 else ''}; the model knows {len(labels)} labels"
        )
    return np.array([index[r.label(label_field)] for r in records], dtype=np.int64)


def label_indicators(
    records: Sequence[Record], label_field: str, labels: Sequence[str], separator: str
) -> np.ndarray:
    """0/1 indicators (n, len(labels)) of each record's label set (labels joined by ``separator``); a clear
    error names labels the model does not know."""
    from csml.data.label_sets import label_set

    index = {label: i for i, label in enumerate(labels)}
    sets = [label_set(r.label(label_field) or "", separator) for r in records]
    unknown = sorted({label for labels_of_row in sets for label in labels_of_row} - index.keys())
    if unknown:
        raise ValueError(
            f"the data has {label_field} labels the model was not trained on: {unknown[:10]}"
            f"{' ...' if len(unknown) > 10 else ''}; the model knows {len(labels)} labels"
        )
    indicators = np.zeros((len(records), len(labels)), dtype=np.int64)
    for row, labels_of_row in enumerate(sets):
        indicators[row, [index[label] for label in labels_of_row]] = 1
    return indicators


def evaluate(
    probs_by_split: dict[str, tuple[list[Record], np.ndarray]],
    labels: list[str],
    label_field: str,
    oos_label: str | None = None,
    oos_threshold: float | str | None = "auto",
    oos_min_recall: float | None = None,
    oos_scores_by_split: dict[str, np.ndarray] | None = None,
    oos_score: str = "softmax",
    oos_in_scope_acceptance: float | None = None,
    positive_label: str | None = None,
    decision_threshold: float | str | None = "auto",
    threshold_domain_field: str | None = None,
    threshold_answer_field: str | None = None,
    label_separator: str | None = None,
    label_thresholds: Sequence[float] | str | None = "auto",
) -> Evaluation:
    """Computes metrics for each split from its records and predicted probabilities.

    Args:
        probs_by_split: ``{"validation": (records, probs), "test": (records, probs)}``.
        labels: Label names in the column order of ``probs``.
        label_field: Record field holding the true label.
        oos_label: Out-of-scope label, if the task has one.
        oos_threshold: A fixed threshold, ``None`` (plain argmax, OOS as a class), or ``"auto"``: chosen
            on the validation split (see :func:`csml.metrics.oos.choose_oos_threshold`).
        oos_min_recall: With ``"auto"``, the validation OOS recall the threshold must reach; None for the
            threshold maximising the mean of in-scope accuracy and OOS recall.
        oos_scores_by_split: In-scope scores of each split's samples compared with the threshold (see
            :mod:`csml.models.components.oos_scorers`); None for the in-scope max softmax probability.
        oos_score: Name of the score in ``oos_scores_by_split``, kept in the result.
        oos_in_scope_acceptance: With ``"auto"``, the share of validation in-scope utterances the threshold
            must accept (instead of ``oos_min_recall``).
        positive_label: For two labels: predict this one when its probability reaches ``decision_threshold``
            (see :func:`predict_with_decision_threshold`; logged as ``{prefix}/decision_threshold``); None:
            argmax.
        decision_threshold: With ``positive_label``: ``"auto"`` chooses the threshold with the best balanced
            accuracy on the validation split, a number is applied as is (a model card's), None is argmax.
        threshold_domain_field: With ``"auto"``: the record ``meta`` field naming each validation row's domain;
            the threshold then has the best mean over domains of the balanced accuracy (see
            :meth:`DecisionRule.choose`). Rows without it form one domain.
        threshold_answer_field: With ``"auto"``: the ``meta`` field naming the answer a validation row is a
            claim of; the claims of one answer are then one decision (rows without it are their own).
        label_separator: For a multi-label model (``probs`` one sigmoid per label): the separator of the
            records' label sets. Predictions are then label sets (see :class:`DecisionRule`) and the metrics
            those of :func:`~csml.metrics.multilabel.compute_multilabel_metrics`; None: one label per text.
        label_thresholds: With ``label_separator``: ``"auto"`` chooses each label's threshold for its best
            F1 on the validation split, numbers (one per label, a model card's) apply as they are, None is
            0.5 for every label.
    """
    from csml.metrics.classification import compute_classification_metrics
    from csml.metrics.multilabel import compute_multilabel_metrics

    multi_label = label_separator is not None

    def targets(records: Sequence[Record]) -> np.ndarray:
        if multi_label:
            return label_indicators(records, label_field, labels, str(label_separator))
        return label_indices(records, label_field, labels)

    rule = DecisionRule(
        tuple(labels),
        oos_label,
        oos_threshold,
        positive_label,
        decision_threshold,
        multi_label,
        label_thresholds,
    )
    if not rule.resolved:
        if "validation" not in probs_by_split:
            raise ValueError('"auto" thresholds are chosen on the validation split; score it too')
        records, probs = probs_by_split["validation"]
        rule = rule.choose(
            probs,
            targets(records),
            None if oos_scores_by_split is None else oos_scores_by_split["validation"],
            oos_min_recall=oos_min_recall,
            oos_in_scope_acceptance=oos_in_scope_acceptance,
            domains=None
            if threshold_domain_field is None
            else [str(r.meta.get(threshold_domain_field, "")) for r in records],
            answers=None
            if threshold_answer_field is None
            else [r.meta.get(threshold_answer_field) for r in records],
        )
    result = Evaluation(
        labels, label_field, oos_label, rule.oos_threshold, oos_score, rule.decision_threshold
    )
    if multi_label:
        result.label_separator, result.label_thresholds = label_separator, rule.label_thresholds
    for split, (records, probs) in probs_by_split.items():
        prefix = metric_prefix(split)
        y_true = targets(records)
        scores = None if oos_scores_by_split is None else oos_scores_by_split[split]
        y_pred = rule.predict(probs, scores)
        slices = {
            "stages": [r.stage.value for r in records],
            "channels": [r.channel.value for r in records],
        }
        if multi_label:
            metrics = compute_multilabel_metrics(y_true, y_pred, labels, prefix=prefix, **slices)
            result.splits[split] = SplitEvaluation(prefix, list(records), y_true, probs, y_pred, metrics)
            continue
        metrics = compute_classification_metrics(
            y_true,
            probs,
            labels,
            prefix=prefix,
            **slices,
            oos_label=oos_label,
            oos_threshold=rule.oos_threshold,
            in_scope_scores=scores,
            y_pred=y_pred,
        )
        if rule.decision_threshold is not None:
            metrics[f"{prefix}/decision_threshold"] = rule.decision_threshold
        result.splits[split] = SplitEvaluation(prefix, list(records), y_true, probs, y_pred, metrics)
    return result


def check_positive_label(labels: list[str], positive_label: str | None) -> None:
    """``evaluation.positive_label`` must name one of exactly two labels (checked before training too)."""
    if positive_label is not None and (len(labels) != 2 or positive_label not in labels):
        raise ValueError(
            f"evaluation.positive_label={positive_label!r} needs exactly two labels including it; "
            f"the model has {labels[:5]}"
        )


def predict_with_decision_threshold(
    probs: np.ndarray, labels: list[str], positive_label: str, threshold: float
) -> np.ndarray:
    """The decision rule of a two-label model: ``positive_label``'s index where its probability is at least
    ``threshold``, else the other label's (applied by :class:`DecisionRule`; the groundedness judge reads
    the same threshold from the model card), so gates measure the decisions users get.
    """
    check_positive_label(labels, positive_label)
    positive = labels.index(positive_label)
    return np.where(np.asarray(probs)[:, positive] >= threshold, positive, 1 - positive)


def card_decision_rule(
    labels: list[str],
    card: dict[str, Any] | None,
    decision_threshold: float | str | None = "auto",
    positive_label: str | None = None,
) -> tuple[str | None, float | str | None]:
    """The ``(positive_label, decision_threshold)`` of a trained model's :class:`DecisionRule`.

    Args:
        labels: The model's labels.
        card: Its model card (``decision_threshold`` and ``positive_label`` as training wrote them), or None
            for a checkpoint, whose ``"auto"`` threshold is then chosen on validation as in training.
        decision_threshold: ``"auto"`` (the card's), a number (applied instead), or None (argmax).
        positive_label: The label the threshold applies to; None: the card's.

    Returns:
        ``(None, None)`` (argmax) for models without a decision threshold, such as multi-class ones.

    Raises:
        ValueError: A threshold without a known positive label, or a positive label that is not one of
            exactly two labels.
    """
    positive = positive_label if positive_label is not None else (card or {}).get("positive_label")
    if decision_threshold is None:
        return None, None
    if card is not None and decision_threshold == "auto":
        decision_threshold = card.get("decision_threshold")
        if decision_threshold is None:
            return None, None
    if positive is None:
        if card is None and decision_threshold == "auto":
            return None, None  # a checkpoint evaluated without evaluation.positive_label: argmax
        raise ValueError(
            f"decision threshold {decision_threshold} needs the label it applies to; the model card names "
            "none (a model trained before csml recorded it): pass evaluation.positive_label=<label>"
        )
    check_positive_label(labels, positive)
    return positive, decision_threshold if decision_threshold == "auto" else float(decision_threshold)


def write_reports(evaluation: Evaluation, out_dir: Path, top_k: int = 5) -> list[Path]:
    """Writes per-sample predictions (JSONL), per-class reports, metrics and plots for every split."""
    from csml.metrics.classification import per_class_report
    from csml.metrics.plots import plot_confusion_matrix, plot_reliability_diagram, plot_slice_bars

    out_dir.mkdir(parents=True, exist_ok=True)
    labels = evaluation.labels
    written = []
    for split in evaluation.splits.values():
        if evaluation.multi_label:
            written += _write_label_set_reports(evaluation, split, out_dir, top_k)
            continue
        path = out_dir / f"{split.prefix}_predictions.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for record, truth, pred, probs in zip(
                split.records, split.y_true, split.y_pred, split.probs, strict=True
            ):
                top = np.argsort(-probs)[:top_k]
                row = {
                    "id": record.id,
                    "text": record.text,
                    "stage": record.stage.value,
                    "channel": record.channel.value,
                    "label": labels[truth],
                    "prediction": labels[pred],
                    "correct": bool(truth == pred),
                    "confidence": float(probs[pred]),
                    "top_k": [[labels[j], round(float(probs[j]), 6)] for j in top],
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        written.append(path)
        report = out_dir / f"{split.prefix}_per_class.json"
        report.write_text(json.dumps(per_class_report(split.y_true, split.y_pred, labels), indent=2))
        written.append(report)
        written.append(
            plot_confusion_matrix(
                split.y_true,
                split.y_pred,
                labels,
                out_dir / f"{split.prefix}_confusion_matrix.png",
                title=f"{split.prefix} confusion matrix",
            )
        )
        written.append(
            plot_reliability_diagram(split.probs, split.y_true, out_dir / f"{split.prefix}_reliability.png")
        )
        for group in ("stage", "channel"):
            written.append(
                plot_slice_bars(
                    split.metrics,
                    split.prefix,
                    group,
                    "accuracy",
                    out_dir / f"{split.prefix}_{group}_accuracy.png",
                )
            )
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps({**evaluation.metrics}, indent=2, sort_keys=True))
    written.append(metrics_path)
    return written


def _write_label_set_reports(
    evaluation: Evaluation, split: SplitEvaluation, out_dir: Path, top_k: int
) -> list[Path]:
    """A multi-label model's reports of one split: per-sample predictions with the true and predicted label
    sets (lists, and joined as the data writes them), the per-label report with each label's threshold, and
    the micro-F1 by stage and channel."""
    from csml.data.label_sets import join_label_set
    from csml.metrics.multilabel import multilabel_per_class_report
    from csml.metrics.plots import plot_slice_bars

    labels, separator = evaluation.labels, evaluation.label_separator
    path = out_dir / f"{split.prefix}_predictions.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for record, truth, predicted, probs in zip(
            split.records, split.y_true, split.y_pred, split.probs, strict=True
        ):
            picked = np.flatnonzero(predicted)
            true_labels = [labels[j] for j in np.flatnonzero(truth)]
            predicted_labels = [labels[j] for j in picked]
            top = np.argsort(-probs)[:top_k]
            row = {
                "id": record.id,
                "text": record.text,
                "stage": record.stage.value,
                "channel": record.channel.value,
                "label": join_label_set(true_labels, separator),
                "prediction": join_label_set(predicted_labels, separator),
                "labels": true_labels,
                "predicted_labels": predicted_labels,
                "correct": bool((truth == predicted).all()),
                "scores": [round(float(probs[j]), 6) for j in picked],
                "top_k": [[labels[j], round(float(probs[j]), 6)] for j in top],
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    report = out_dir / f"{split.prefix}_per_class.json"
    per_label = multilabel_per_class_report(split.y_true, split.y_pred, labels, evaluation.label_thresholds)
    report.write_text(json.dumps(per_label, indent=2))
    bars = [
        plot_slice_bars(
            split.metrics, split.prefix, group, "micro_f1", out_dir / f"{split.prefix}_{group}_micro_f1.png"
        )
        for group in ("stage", "channel")
    ]
    return [path, report, *bars]
