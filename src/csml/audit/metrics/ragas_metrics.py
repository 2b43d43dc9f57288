"""ragas metrics (``pip install 'csml[audit]'``): its non-LLM metrics run offline; its LLM metrics run only
when a judge endpoint is configured (``judge`` in ``conf/audit.yaml``: an OpenAI-compatible ``base_url``,
``model`` and the NAME of the environment variable holding the API key), otherwise they are reported as
not applicable with the reason. ragas is imported on first use: its cold import takes seconds.

Each sample becomes a ragas ``SingleTurnSample``: ``user_input`` the question, ``response`` the reply,
``reference`` the reference answer, ``retrieved_contexts`` the contexts the bot returned,
``reference_contexts`` the sample's. A sample lacking a field the metric needs is not scored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from csml.audit.errors import AuditConfigError
from csml.audit.metrics.base import METRICS, Metric, abstained
from csml.models.encoder import Embedder
from csml.schemas import AuditSample, BotReply, MetricResult


class RagasMetric(Metric):
    """Base: wraps the ragas metric class ``ragas_class`` (in ``ragas.metrics``), scoring with
    ``single_turn_score``. ``fields`` are the sample fields it needs; ``llm`` marks metrics needing a judge.

    Args:
        judge: ``{base_url, model, api_key_env}`` of an OpenAI-compatible endpoint, or None.
        embedder: Sentence encoder for LLM metrics that also embed (relevancy, correctness).
        abstain_patterns: Declining replies are not scored (nothing to judge).
        options: Keyword arguments of the ragas metric (``rouge_type``, ``distance_measure``...).
    """

    ragas_class: ClassVar[str] = ""
    fields: ClassVar[tuple[str, ...]] = ()
    llm: ClassVar[bool] = False

    def __init__(
        self,
        judge: dict[str, Any] | None = None,
        embedder: Embedder | None = None,
        abstain_patterns: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.judge = dict(judge) if judge else None
        if self.llm and self.judge and not {"base_url", "model"} <= set(self.judge):
            raise AuditConfigError(
                f"metric {self.name!r}: judge needs base_url and model, got {sorted(self.judge)}"
            )
        self.embedder = embedder
        self.patterns = tuple(abstain_patterns)
        self.options = dict(options or {})
        self._metric: Any = None

    def _build(self) -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import ragas.metrics

            cls = getattr(ragas.metrics, self.ragas_class)
        if not self.llm:
            return cls(**self.options)
        models: dict[str, Any] = {"llm": judge_llm(self.judge or {})}
        if self.needs_embedder:  # Faithfulness takes no embeddings argument
            models["embeddings"] = _RagasEmbeddings(self.embedder)
        metric = cls(**models, **self.options)
        from ragas.run_config import RunConfig

        metric.init(
            RunConfig()
        )  # what ragas.evaluate does first (AnswerCorrectness builds its similarity here)
        return metric

    def score(self, sample: AuditSample, reply: BotReply) -> MetricResult:
        if self.llm and not self.judge:
            return MetricResult(None, "no judge endpoint configured (judge.base_url, judge.model)")
        if not reply.ok:
            return MetricResult(None, f"no answer to score ({reply.error})")
        if not sample.answerable or abstained(reply, self.patterns):
            return MetricResult(None, "unanswerable question or declined answer")
        values = {
            "user_input": sample.question,
            "response": reply.text,
            "reference": sample.reference_answer,
            "retrieved_contexts": list(reply.contexts) or None,
            "reference_contexts": list(sample.reference_contexts) or None,
        }
        if missing := [f for f in self.fields if not values[f]]:
            return MetricResult(None, f"no {', '.join(missing)} to score")
        from ragas import SingleTurnSample

        if self._metric is None:
            self._metric = self._build()
        try:
            value = float(self._metric.single_turn_score(SingleTurnSample(**values)))
        except Exception as error:  # a judge timeout or unparsable judge output must not stop the audit
            return MetricResult(
                None, f"ragas {self.ragas_class} failed: {type(error).__name__}: {error}"[:300]
            )
        return MetricResult(value, f"ragas {self.ragas_class}: {value:.3f}")


def judge_llm(judge: dict[str, Any]) -> Any:
    """A ragas LLM for the OpenAI-compatible ``judge`` (the key is read from the env var it names)."""
    from langchain_openai import ChatOpenAI
    from ragas.llms import LangchainLLMWrapper

    key_env = judge.get("api_key_env")
    key = os.environ.get(key_env, "") if key_env else ""
    chat = ChatOpenAI(
        base_url=judge["base_url"],
        model=judge["model"],
        api_key=key or "unused",
        temperature=0,
        timeout=float(judge.get("timeout_s", 60)),
        max_retries=int(judge.get("retries", 2)),
    )
    return LangchainLLMWrapper(chat)


class _RagasEmbeddings:
    """csml's sentence encoder behind the LangChain embeddings interface ragas wraps."""

    def __new__(cls, embedder: Embedder | None) -> Any:
        if embedder is None:
            return None
        from langchain_core.embeddings import Embeddings
        from ragas.embeddings import LangchainEmbeddingsWrapper

        class _Encoder(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return embedder.encode(list(texts)).tolist()

            def embed_query(self, text: str) -> list[float]:
                return embedder.encode([text])[0].tolist()

        return LangchainEmbeddingsWrapper(_Encoder())


@METRICS.register()
class RagasContextPrecision(RagasMetric):
    """ragas ``NonLLMContextPrecisionWithReference``: returned contexts that match a reference context,
    weighted by rank."""

    name = "ragas_context_precision"
    ragas_class = "NonLLMContextPrecisionWithReference"
    fields = ("retrieved_contexts", "reference_contexts")


@METRICS.register()
class RagasContextRecall(RagasMetric):
    """ragas ``NonLLMContextRecall``: reference contexts found among the returned contexts."""

    name = "ragas_context_recall"
    ragas_class = "NonLLMContextRecall"
    fields = ("retrieved_contexts", "reference_contexts")


@METRICS.register()
class RagasStringSimilarity(RagasMetric):
    """ragas ``NonLLMStringSimilarity``: normalised string similarity of the answer to the reference."""

    name = "ragas_string_similarity"
    ragas_class = "NonLLMStringSimilarity"
    fields = ("response", "reference")


@METRICS.register()
class RagasRouge(RagasMetric):
    """ragas ``RougeScore`` (ROUGE-L F-measure by default) of the answer against the reference."""

    name = "ragas_rouge"
    ragas_class = "RougeScore"
    fields = ("response", "reference")


@METRICS.register()
class RagasFaithfulness(RagasMetric):
    """ragas ``Faithfulness`` (LLM judge): share of the answer's claims the returned contexts support."""

    name = "ragas_faithfulness"
    ragas_class = "Faithfulness"
    fields = ("user_input", "response", "retrieved_contexts")
    llm = True


@METRICS.register()
class RagasResponseRelevancy(RagasMetric):
    """ragas ``ResponseRelevancy`` (LLM judge + embeddings): how well the answer addresses the question."""

    name = "ragas_response_relevancy"
    ragas_class = "ResponseRelevancy"
    fields = ("user_input", "response")
    llm = True
    needs_embedder = True


@METRICS.register()
class RagasAnswerCorrectness(RagasMetric):
    """ragas ``AnswerCorrectness`` (LLM judge + embeddings): factual and semantic agreement with the
    reference answer."""

    name = "ragas_answer_correctness"
    ragas_class = "AnswerCorrectness"
    fields = ("user_input", "response", "reference")
    llm = True
    needs_embedder = True
