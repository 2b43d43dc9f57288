"""The groundedness judge at inference: claims of an answer scored against knowledge, per claim and answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csml.judge.claims import Claim, split_claims
from csml.judge.data import SUPPORTED, pair_text
from csml.judge.evidence import Knowledge
from csml.judge.nonclaims import is_checkable

logger = logging.getLogger(__name__)
DEFAULT_MODEL_URI = "models:/csml-judge-groundedness@champion"
WORDS_PER_TOKEN = 0.6  # knowledge words shown per token of the model's max_length (claims take the rest)


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
    non_claims: list[Claim] = field(default_factory=list)  # courtesy and questions: nothing to check

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

    A claim that quotes the knowledge -- verbatim up to case, spacing and surrounding punctuation, or every
    word of it found in one sentence or turn with the same negations, give or take conversational filler
    such as "yes, I think" (:meth:`csml.judge.evidence.Knowledge.quote`) -- is supported with score 1.0 without
    asking the model; a claim that restates a clause of a sentence or turn with the opposite polarity -- the
    same words but for negations and filler, one negated and the other not
    (:meth:`csml.judge.evidence.Knowledge.contradicted`) -- is unsupported with score 0.0.
    Knowledge of any length and shape is cut into overlapping windows of whole sentences, or of whole speaker
    turns for transcripts, of up to ``window_words`` words, plus one window assembled from the sentences or
    turns closest to the claim when the evidence may be spread (:mod:`csml.judge.evidence`); a claim's score
    is its best window's probability of ``supported``, an answer's score its weakest claim's. A claim is
    supported when its score reaches ``threshold`` (by default the one calibrated on validation data and kept
    in the model card, else 0.5). A claim longer than half a window is judged in chunks of that size, each of
    which must be supported. Sentences with no checkable fact -- greetings, thanks, apologies, offers of help,
    questions back to the customer (:func:`csml.judge.nonclaims.is_checkable`) -- are not claims: they are
    listed in ``Verdict.non_claims`` and never called unsupported. Answers with no claim, or with no
    knowledge, get ``Verdict(None, None)``.

    Args:
        model: A loaded csml text classifier (:class:`csml.tracking.pyfunc.TextClassifierModel`) trained on
            groundedness pairs (``label_field: grounded``).
        threshold: Decision threshold on the supported probability; ``None`` takes the model card's.
        window_words: Most words of knowledge shown with a claim at once; ``None``: 0.6 words per token of
            the model's ``max_length`` (96 for the default 160 tokens), as in the judge's training data.
        batch_size: Pairs per forward pass.
        int8: Quantise the encoder's linear layers to int8 for CPU scoring (faster; measure the accuracy cost
            with ``benchmarks/judge_begin.py --int8``).
    """

    def __init__(
        self,
        model: Any,
        threshold: float | None = None,
        window_words: int | None = None,
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
        self.window_words = window_words or max(20, int(WORDS_PER_TOKEN * model.card.get("max_length", 160)))
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

        model_uri = _newest_if_alias_unset(model_uri)
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
        knowledge = [Knowledge(texts, self.window_words) for texts in contexts]
        split = []
        for answer, known in zip(answers, knowledge, strict=True):
            claims, non_claims = self._claims(answer)
            split.append((claims if known else [], non_claims))
        return self._verdicts(
            split, [[k] * len(claims) for k, (claims, _) in zip(knowledge, split, strict=True)]
        )

    def judge_retrieving(
        self, answers: Sequence[str], retrieve: Callable[[list[tuple[int, str]]], list[list[str]]]
    ) -> list[Verdict]:
        """Verdicts on many answers whose claims each get their own evidence: ``retrieve`` is called once with
        every claim as ``(answer index, claim text)`` and returns each claim's knowledge texts (passages of a
        knowledge base retrieved for it). An answer without claims gets ``Verdict(None, None)``."""
        split = [self._claims(answer) for answer in answers]
        asked = [(a, claim.text) for a, (claims, _) in enumerate(split) for claim in claims]
        found = iter(retrieve(asked))
        knowledge = [[Knowledge(next(found), self.window_words) for _ in claims] for claims, _ in split]
        return self._verdicts(split, knowledge)

    def _claims(self, answer: str) -> tuple[list[Claim], list[Claim]]:
        """The claims of ``answer`` (cut to fit half a window) and its sentences with nothing to check."""
        sentences = [(c, is_checkable(c.text)) for c in split_claims(answer)]
        claims = [p for c, checkable in sentences if checkable for p in _fit(c, self.window_words // 2)]
        return claims, [c for c, checkable in sentences if not checkable]

    def _verdicts(
        self, split: list[tuple[list[Claim], list[Claim]]], knowledge: list[list[Knowledge]]
    ) -> list[Verdict]:
        """Verdicts from each answer's (claims, non-claims) and each claim's knowledge."""
        jobs: list[tuple[int, int, Claim, str]] = []
        best: dict[tuple[int, int], tuple[float, str]] = {}
        for a, ((claims, _), claim_knowledge) in enumerate(zip(split, knowledge, strict=True)):
            for c, (claim, known) in enumerate(zip(claims, claim_knowledge, strict=True)):
                quoted = known.quote(claim.text)
                if quoted is not None:  # a quote of the knowledge is supported by definition
                    best[a, c] = (1.0, quoted)
                    continue
                contradicted = known.contradicted(claim.text)
                if contradicted is not None:  # the knowledge says the opposite
                    best[a, c] = (0.0, contradicted)
                    continue
                candidates = known.candidates(claim.text)
                if not candidates:
                    best[a, c] = (0.0, "")
                jobs += [(a, c, claim, window) for window in candidates]
        scores = self.score_pairs([j[2].text for j in jobs], [j[3] for j in jobs])
        for (a, c, _, window), score in zip(jobs, scores, strict=True):
            if (a, c) not in best or score > best[a, c][0]:
                best[a, c] = (float(score), window)
        verdicts = []
        for a, (claims, non_claims) in enumerate(split):
            if not claims:
                verdicts.append(Verdict(None, None, non_claims=non_claims))
                continue
            claim_verdicts = [
                ClaimVerdict(claim, best[a, c][0], best[a, c][0] >= self.threshold, best[a, c][1])
                for c, claim in enumerate(claims)
            ]
            score = min(v.score for v in claim_verdicts)
            verdicts.append(Verdict(score, score >= self.threshold, claim_verdicts, non_claims))
        return verdicts


def _newest_if_alias_unset(model_uri: str) -> str:
    """``models:/<name>@<alias>`` as given, or the newest version of ``name`` when no version holds the alias
    yet -- an audit right after ``csml train experiment=judge_groundedness``, before ``csml promote`` -- with a
    warning that names the command setting the alias. Other URIs are returned as given."""
    found = re.fullmatch(r"models:/([^@/]+)@([\w-]+)", model_uri)
    if found is None:
        return model_uri
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from csml.tracking.registry import alias_version

    client = MlflowClient()
    name, alias = found.groups()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return model_uri  # no such model: the load that follows explains
    if alias_version(model, alias) is not None:
        return model_uri
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        return model_uri
    newest = max(versions, key=lambda v: int(v.version)).version
    logger.warning(
        "%s: no version of %s is %r yet; using its newest version %s. Set the alias with `csml promote "
        "model_name=%s candidate=%s data=groundedness gates=judge`",
        model_uri, name, alias, newest, name, newest,
    )  # fmt: skip
    return f"models:/{name}/{newest}"


def _fit(claim: Claim, max_words: int) -> list[Claim]:
    """``claim`` cut into consecutive chunks of at most ``max_words`` words (the claim itself when it fits)."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", claim.text)]
    if len(spans) <= max_words:
        return [claim]
    out = []
    for first in range(0, len(spans), max_words):
        begin, end = spans[first][0], spans[min(first + max_words, len(spans)) - 1][1]
        out.append(Claim(claim.text[begin:end], claim.start + begin, claim.start + end))
    return out
