"""The groundedness judge at inference: claims of an answer scored against knowledge, per claim and answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csml.judge.claims import Claim, split_claims
from csml.judge.data import SUPPORTED, pair_text

DEFAULT_MODEL_URI = "models:/csml-judge-groundedness@champion"


@dataclass(frozen=True)
class ClaimVerdict:
    """One claim of an answer: its span, the probability some knowledge window supports it, the window."""

    claim: Claim
    score: float
    supported: bool
    evidence: str


@dataclass(frozen=True)
class Verdict:
    """An answer's groundedness: the weakest claim's score (an answer is as grounded as its worst claim)."""

    score: float | None
    supported: bool | None
    claims: list[ClaimVerdict] = field(default_factory=list)

    @property
    def unsupported(self) -> list[ClaimVerdict]:
        return [c for c in self.claims if not c.supported]

    def highlight(self, answer: str, mark: tuple[str, str] = ("[[", "]]")) -> str:
        """``answer`` with every unsupported claim wrapped in ``mark`` (for plain-text reports)."""
        out, last = [], 0
        for verdict in sorted(self.unsupported, key=lambda c: c.claim.start):
            out += [answer[last : verdict.claim.start], mark[0], verdict.claim.text, mark[1]]
            last = verdict.claim.end
        return "".join([*out, answer[last:]])


class GroundednessJudge:
    """Scores whether knowledge supports each claim of an answer with a csml-trained cross-encoder.

    A claim quoted verbatim from the knowledge (up to case, spacing and surrounding punctuation) is
    supported with score 1.0 without asking the model.
    Long knowledge is cut into windows of ``window_words`` words (whole sentences); a claim's score is its
    best window's probability of ``supported``, an answer's score its weakest claim's. A claim is supported
    when its score reaches ``threshold`` (by default the one calibrated on validation data and kept in the
    model card, else 0.5).

    Args:
        model: A loaded csml text classifier (:class:`csml.tracking.pyfunc.TextClassifierModel`) trained on
            groundedness pairs (``label_field: grounded``).
        threshold: Decision threshold on the supported probability; ``None`` takes the model card's.
        window_words: Most words of knowledge shown with a claim at once.
        batch_size: Pairs per forward pass.
        int8: Quantise the encoder's linear layers to int8 for CPU scoring (faster; measure the accuracy cost
            with ``benchmarks/judge_begin.py --int8``).
    """

    def __init__(
        self,
        model: Any,
        threshold: float | None = None,
        window_words: int = 60,
        batch_size: int = 64,
        int8: bool = False,
    ) -> None:
        if model.card.get("label_field") != "grounded" or SUPPORTED not in model.labels:
            raise ValueError(
                f"not a groundedness judge: the model predicts {model.card.get('label_field')!r} with labels "
                f"{model.labels[:5]}; train one with `csml train experiment=judge_groundedness`"
            )
        if int8:
            from csml.models.quantize import quantize_int8

            model.net.encoder = quantize_int8(model.net.encoder)  # the head stays float (its weight is read)
        self.model = model
        self.supported_index = model.labels.index(SUPPORTED)
        card_threshold = model.card.get("decision_threshold")
        self.threshold = float(threshold if threshold is not None else card_threshold or 0.5)
        self.window_words = window_words
        self.batch_size = batch_size
        self.separator = model.tokenizer.sep_token or "[SEP]"

    @classmethod
    def load(
        cls,
        model_uri: str = DEFAULT_MODEL_URI,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        **kwargs: Any,
    ) -> GroundednessJudge:
        """From a model folder written by csml training, or any MLflow model URI (``models:/name@champion``)
        resolved against ``tracking_uri``/``registry_uri`` when given (else MLflow's current ones)."""
        from csml.tracking.pyfunc import TextClassifierModel

        if Path(model_uri).is_dir():
            return cls(TextClassifierModel().load(model_uri), **kwargs)
        import mlflow.pyfunc

        from csml.tracking.runs import use_store

        if tracking_uri:
            use_store(tracking_uri, registry_uri)

        try:
            model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        except Exception as error:  # mlflow raises several types for a missing model or alias
            raise FileNotFoundError(
                f"cannot load the groundedness judge {model_uri!r} ({error}); train and register it with "
                "`csml train experiment=judge_groundedness` (and promote it), or point judge.model_uri at a "
                "model folder or URI"
            ) from error
        return cls(model, **kwargs)

    def score_pairs(self, claims: Sequence[str], knowledge: Sequence[str]) -> np.ndarray:
        """Probability that ``knowledge[i]`` supports ``claims[i]``, for every i."""
        if not claims:
            return np.zeros(0, dtype=np.float32)
        texts = [pair_text(c, k, self.separator) for c, k in zip(claims, knowledge, strict=True)]
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch with less padding
        probs = self.model.predict_proba([texts[i] for i in order], batch_size=self.batch_size)
        scores = np.empty(len(texts), dtype=np.float32)
        scores[order] = probs[:, self.supported_index]
        return scores

    def judge(self, answer: str, contexts: Sequence[str]) -> Verdict:
        """The verdict on one answer given the knowledge it should rest on."""
        return self.judge_many([answer], [contexts])[0]

    def judge_many(self, answers: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[Verdict]:
        """Verdicts on many answers, all their (claim, window) pairs scored in shared batches.

        An answer without claims, or without any knowledge, gets ``Verdict(None, None)``.
        """
        jobs: list[tuple[int, int, Claim, str]] = []
        claims_of: list[list[Claim]] = []
        best: dict[tuple[int, int], tuple[float, str]] = {}
        for a, (answer, knowledge) in enumerate(zip(answers, contexts, strict=True)):
            claims = split_claims(answer)
            windows = [w for text in knowledge for w in knowledge_windows(text, self.window_words)]
            claims_of.append(claims if windows else [])
            sources = [(_normalise(text), text) for text in knowledge]
            for c, claim in enumerate(claims):
                quoted = next((text for norm, text in sources if _normalise(claim.text) in norm), None)
                if quoted is not None:  # a verbatim quote of the knowledge is supported by definition
                    best[a, c] = (1.0, quoted)
                else:
                    jobs += [(a, c, claim, window) for window in windows]
        scores = self.score_pairs([j[2].text for j in jobs], [j[3] for j in jobs])
        for (a, c, _, window), score in zip(jobs, scores, strict=True):
            if (a, c) not in best or score > best[a, c][0]:
                best[a, c] = (float(score), window)
        verdicts = []
        for a, claims in enumerate(claims_of):
            if not claims:
                verdicts.append(Verdict(None, None))
                continue
            claim_verdicts = [
                ClaimVerdict(claim, best[a, c][0], best[a, c][0] >= self.threshold, best[a, c][1])
                for c, claim in enumerate(claims)
            ]
            score = min(v.score for v in claim_verdicts)
            verdicts.append(Verdict(score, score >= self.threshold, claim_verdicts))
        return verdicts


def _normalise(text: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: how verbatim quotes are recognised."""
    return " ".join(text.lower().split()).strip(" .,;:!?\"'")


def knowledge_windows(text: str, max_words: int) -> list[str]:
    """``text`` cut into consecutive windows of whole sentences of at most ``max_words`` words (a longer
    sentence is a window of its own)."""
    windows: list[list[str]] = []
    count = 0
    for sentence in (c.text for c in split_claims(text, min_words=1)):
        words = len(sentence.split())
        if windows and count + words <= max_words:
            windows[-1].append(sentence)
            count += words
        else:
            windows.append([sentence])
            count = words
    return [" ".join(window) for window in windows]
