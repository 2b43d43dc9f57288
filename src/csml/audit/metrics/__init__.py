"""Audit metrics: the interface and registry (:mod:`.base`) and the metrics suites name, by family.

- :mod:`.rag`: ``groundedness``, ``answer_correctness``
- :mod:`.hallucination`: ``fabricated_entities``, ``unsupported_sentences``, ``abstention``,
  ``false_abstention``, ``paraphrase_consistency``
- :mod:`.nlu`: ``intent_accuracy``, ``intent_macro_f1``, ``oos_recall``, ``oos_precision``
- :mod:`.escalation`: ``escalation_recall``, ``false_escalation_rate``
- :mod:`.conversation`: ``goal_completion``, ``turns_to_resolution``, ``escalation_in_time``,
  ``unwanted_handover``, ``bot_loops``, ``self_contradiction``, ``latency_turn_p95_ms``, ``turn_groundedness``
- :mod:`.safety`: ``prompt_injection``, ``personal_data_leak``, ``policy_overreach``, ``abusive_reply``
- :mod:`.operational`: ``latency_p50_ms``, ``latency_p95_ms``, ``error_rate``, ``timeout_rate``
- :mod:`.ragas_metrics`: ``ragas_context_precision``, ``ragas_context_recall``, ``ragas_string_similarity``,
  ``ragas_rouge`` (offline); ``ragas_faithfulness``, ``ragas_response_relevancy``,
  ``ragas_answer_correctness`` (with a judge endpoint)

Offline by default: semantic similarity comes from a :class:`csml.models.encoder.Embedder` (MiniLM,
:func:`csml.config.minilm_path`). A stronger judge (issue 6) plugs in as another embedder or metric.
"""

from csml.audit.metrics.base import (
    METRICS,
    Metric,
    abstained,
    build_metric,
    sentences,
)
from csml.audit.metrics.conversation import (
    BotLoops,
    EscalationInTime,
    GoalCompletion,
    LatencyTurnP95,
    SelfContradiction,
    TurnGroundedness,
    TurnsToResolution,
    UnwantedHandover,
)
from csml.audit.metrics.escalation import EscalationRecall, FalseEscalationRate, escalated
from csml.audit.metrics.hallucination import (
    Abstention,
    FabricatedEntities,
    FalseAbstention,
    ParaphraseConsistency,
    UnsupportedSentences,
)
from csml.audit.metrics.nlu import IntentAccuracy, IntentMacroF1, OosPrecision, OosRecall
from csml.audit.metrics.operational import ErrorRate, LatencyP50, LatencyPercentile, TimeoutRate
from csml.audit.metrics.rag import AnswerCorrectness, Groundedness, token_f1
from csml.audit.metrics.ragas_metrics import (
    RagasAnswerCorrectness,
    RagasContextPrecision,
    RagasContextRecall,
    RagasFaithfulness,
    RagasResponseRelevancy,
    RagasRouge,
    RagasStringSimilarity,
)
from csml.audit.metrics.safety import AbusiveReply, PersonalDataLeak, PolicyOverreach, PromptInjection

__all__ = [
    "METRICS",
    "Abstention",
    "AbusiveReply",
    "AnswerCorrectness",
    "BotLoops",
    "ErrorRate",
    "EscalationInTime",
    "EscalationRecall",
    "FabricatedEntities",
    "FalseAbstention",
    "FalseEscalationRate",
    "GoalCompletion",
    "Groundedness",
    "IntentAccuracy",
    "IntentMacroF1",
    "LatencyP50",
    "LatencyPercentile",
    "LatencyTurnP95",
    "Metric",
    "OosPrecision",
    "OosRecall",
    "ParaphraseConsistency",
    "PersonalDataLeak",
    "PolicyOverreach",
    "PromptInjection",
    "RagasAnswerCorrectness",
    "RagasContextPrecision",
    "RagasContextRecall",
    "RagasFaithfulness",
    "RagasResponseRelevancy",
    "RagasRouge",
    "RagasStringSimilarity",
    "SelfContradiction",
    "TimeoutRate",
    "TurnGroundedness",
    "TurnsToResolution",
    "UnsupportedSentences",
    "UnwantedHandover",
    "abstained",
    "build_metric",
    "escalated",
    "sentences",
    "token_f1",
]
