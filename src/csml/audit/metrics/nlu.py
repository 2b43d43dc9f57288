"""NLU metrics: the intent the bot reports against labelled utterances, and out-of-scope handling.

The predicted label is the intent the bot reports; a bot that reports none but declines or hands over is
taken to have judged the message out of scope (``decline_is_oos``). Samples without ``expected_intent`` are
not scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csml.audit.metrics.base import METRICS, Metric, abstained
from csml.schemas import AuditSample, BotReply, MetricResult


class IntentMetric(Metric):
    """Base of NLU metrics: the expected and predicted labels of a sample.

    Args:
        oos_label: The out-of-scope label of the question set and the bot.
        decline_is_oos: Count a reply without an intent that declines or escalates as out of scope.
        abstain_patterns: Reply phrases that count as declining.
    """

    def __init__(
        self,
        oos_label: str = "oos",
        decline_is_oos: bool = True,
        abstain_patterns: Sequence[str] = (),
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.oos_label = oos_label
        self.decline_is_oos = decline_is_oos
        self.patterns = tuple(abstain_patterns)

    def labels(self, sample: AuditSample, reply: BotReply) -> tuple[str, str | None] | str:
        """``(expected, predicted)`` (predicted None: the bot reported no intent), or why not scored."""
        if sample.expected_intent is None:
            return "no labelled intent"
        if not reply.ok:
            return f"no answer to score ({reply.error})"
        predicted = reply.intent
        if predicted is None and self.decline_is_oos and abstained(reply, self.patterns):
            predicted = self.oos_label
        return sample.expected_intent, predicted

    def _data(self, expected: str, predicted: str | None) -> dict[str, Any]:
        return {"expected": expected, "predicted": predicted}


@METRICS.register()
class IntentAccuracy(IntentMetric):
    """On in-scope utterances: 1.0 when the reported intent is the labelled one (no intent reported: 0.0)."""

    name = "intent_accuracy"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        labels = self.labels(sample, reply)
        if isinstance(labels, str):
            return MetricResult(None, labels)
        expected, predicted = labels
        if expected == self.oos_label:
            return MetricResult(None, "out-of-scope utterance (see oos_recall)")
        if predicted is None:
            return MetricResult(0.0, f"the bot reported no intent (expected {expected!r})")
        hit = predicted == expected
        return MetricResult(float(hit), f"expected {expected!r}, bot said {predicted!r}", self._data(*labels))


@METRICS.register()
class IntentMacroF1(IntentMetric):
    """Macro-F1 over the labels of the question set (out-of-scope included as a class); per sample 1.0
    for a correct label. A reported label outside the set counts against the expected label's recall."""

    name = "intent_macro_f1"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        labels = self.labels(sample, reply)
        if isinstance(labels, str):
            return MetricResult(None, labels)
        expected, predicted = labels
        return MetricResult(
            float(predicted == expected),
            f"expected {expected!r}, bot said {predicted!r}",
            self._data(*labels),
        )

    def aggregate_results(self, results: Sequence[MetricResult]) -> float | None:
        pairs = [(r.data["expected"], r.data["predicted"]) for r in results if r.data and r.value is not None]
        if not pairs:
            return None
        f1s = []
        for label in sorted({expected for expected, _ in pairs}):
            tp = sum(e == label and p == label for e, p in pairs)
            fp = sum(e != label and p == label for e, p in pairs)
            fn = sum(e == label and p != label for e, p in pairs)
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        return sum(f1s) / len(f1s)


@METRICS.register()
class OosRecall(IntentMetric):
    """On out-of-scope utterances: 1.0 when the bot labels them out of scope (or declines, see above)."""

    name = "oos_recall"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        labels = self.labels(sample, reply)
        if isinstance(labels, str):
            return MetricResult(None, labels)
        expected, predicted = labels
        if expected != self.oos_label:
            return MetricResult(None, "in-scope utterance")
        caught = predicted == self.oos_label
        return MetricResult(
            float(caught), "recognised as out of scope" if caught else f"bot said {predicted!r}"
        )


@METRICS.register()
class OosPrecision(IntentMetric):
    """On utterances the bot labels out of scope: 1.0 when they are (in-scope ones wrongly turned away: 0.0)."""

    name = "oos_precision"

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        labels = self.labels(sample, reply)
        if isinstance(labels, str):
            return MetricResult(None, labels)
        expected, predicted = labels
        if predicted != self.oos_label:
            return MetricResult(None, "not labelled out of scope")
        right = expected == self.oos_label
        return MetricResult(float(right), "out of scope" if right else f"in-scope {expected!r} turned away")
