"""Scoring a trained csml classifier the way its users get it: one path for ``csml eval``, ``csml promote``
and the pyfunc.

A :class:`Classifier` is a saved model folder, a model logged to MLflow (``models:/<name>@champion``) or a
Lightning checkpoint, with the OOS scorer saved with it (softmax, energy, Mahalanobis or kNN, see
:mod:`csml.models.components.oos_scorers`) and its model card. :meth:`Classifier.decision_rule` reads the
card's thresholds: the OOS threshold, on the scale of that scorer, a two-label model's decision threshold,
and a multi-label model's per-label thresholds. :func:`score_splits` scores a classifier on dataset splits
(``csml eval``, ``csml promote``) and :meth:`Classifier.classify` labels raw texts (the pyfunc's
``predict``, hence the bot and the audits that talk to it); both go through :meth:`Classifier.predict_scored` and the same
:class:`~csml.evaluation.DecisionRule`, so promotion gates measure the decisions users get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csml.evaluation import DecisionRule, card_decision_rule, evaluate, label_indices

if TYPE_CHECKING:
    from csml.data.splits import DatasetSplits
    from csml.evaluation import Evaluation
    from csml.models.components.oos_scorers import OOSScorer
    from csml.records import Record

AUTO = "auto"


class ScoringError(ValueError):
    """A classifier that cannot be scored as asked: not a csml classifier, data with labels it was not
    trained on, or a decision threshold without the label it applies to."""


@dataclass(frozen=True, eq=False)
class Classification:
    """Labels of some texts and what they rest on.

    Attributes:
        probs: Softmax probabilities, shape (n, len(labels)); a multi-label model's per-label sigmoids.
        scores: In-scope scores of the classifier's OOS scorer, shape (n,); higher is more in scope.
        predictions: Predicted class indices, shape (n,); a multi-label model's 0/1 label indicators, shape
            (n, len(labels)).
        rule: The rule that turned ``probs`` and ``scores`` into ``predictions``.
    """

    probs: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    rule: DecisionRule


@dataclass(frozen=True, eq=False)
class Classifier:
    """A trained csml text classifier and what decides its labels.

    Build one with :meth:`from_dir`, :meth:`from_uri` or :meth:`from_checkpoint`.

    Attributes:
        net: The :class:`~csml.models.components.encoder_classifier.EncoderClassifier`.
        tokenizer: Its tokenizer.
        labels: Label names in the order of the network's outputs.
        max_length: Tokens read per text.
        oos_scorer: The in-scope score compared with the OOS threshold.
        oos_threshold: The OOS threshold that goes with ``oos_scorer``: the card's for a saved model (None:
            argmax, OOS as a class), ``"auto"`` where there is none yet (a checkpoint, a refitted scorer).
        card: The model card written by training; None for a checkpoint.
        multi_label: The network gives one sigmoid per label and a text has a set of labels (the card's
            ``multi_label``, with its ``label_thresholds``).
    """

    net: Any
    tokenizer: Any
    labels: list[str]
    max_length: int
    oos_scorer: OOSScorer
    oos_threshold: float | str | None = AUTO
    card: dict[str, Any] | None = None
    multi_label: bool = False

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> Classifier:
        """The classifier of a model folder written by ``csml train``, with the OOS scorer saved in it."""
        from csml.models.components.encoder_classifier import EncoderClassifier
        from csml.models.components.oos_scorers import load_oos_scorer

        net, tokenizer, card = EncoderClassifier.load(model_dir)
        scorer = load_oos_scorer(model_dir, card)
        return cls(
            net,
            tokenizer,
            list(card["labels"]),
            card["max_length"],
            scorer,
            card.get("oos_threshold"),
            card,
            bool(card.get("multi_label")),
        )

    @classmethod
    def from_uri(cls, model_uri: str) -> Classifier:
        """The classifier logged by ``csml train`` at an MLflow model URI (``models:/<name>@champion``,
        ``runs:/<run id>/model``), resolved against MLflow's current tracking and registry stores.

        Raises:
            ScoringError: The URI holds another kind of model (a response model, a foreign one).
        """
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        classifier = getattr(model, "classifier", None)
        if classifier is None:
            raise ScoringError(
                f"{model_uri} holds a {type(model).__name__}, not a csml text classifier (a model logged by "
                "csml train)"
            )
        return classifier

    @classmethod
    def from_checkpoint(cls, ckpt_path: str | Path, max_length: int, oos_label: str | None) -> Classifier:
        """The classifier of a ``csml train`` Lightning checkpoint, with the softmax OOS score.

        A checkpoint has no card: its thresholds (a multi-label model's too) are ``"auto"``, chosen on
        validation data by :func:`score_splits` as training chooses them.
        """
        import torch

        from csml.models.classifier import SequenceClassifier
        from csml.models.components.encoder_classifier import load_tokenizer
        from csml.models.components.oos_scorers import make_oos_scorer

        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
        model = SequenceClassifier.load_from_checkpoint(
            ckpt_path, map_location="cpu", optimizer=torch.optim.AdamW
        )
        model.eval()
        tokenizer = load_tokenizer(model.hparams.backbone, model.hparams.get("gguf_file"))
        scorer = make_oos_scorer("softmax", model.labels, oos_label)
        multi_label = bool(model.hparams.get("multi_label"))
        return cls(model.net, tokenizer, list(model.labels), max_length, scorer, multi_label=multi_label)

    def with_oos_scorer(
        self,
        name: str,
        params: dict[str, Any] | None,
        train: Sequence[Record],
        label_field: str,
        oos_label: str | None,
    ) -> Classifier:
        """This classifier with another OOS score (``evaluation.oos_score`` of ``csml eval``), fitted on the
        ``train`` records by :func:`fit_oos_scorer`. Its OOS threshold becomes ``"auto"``: the card's is on
        the scale of the score saved with the model.

        Raises:
            ScoringError: The classifier is multi-label (OOS scores need one label per text).
        """
        if self.multi_label:
            raise ScoringError(
                f"evaluation.oos_score={name!r}: out-of-scope scores need one label per text, and this "
                "model is multi-label; set evaluation.oos_score=null"
            )

        def features() -> np.ndarray:
            return self.net.encode_texts(self.tokenizer, [r.text for r in train], self.max_length)[0]

        scorer = fit_oos_scorer(name, params, self.labels, oos_label, train, label_field, features)
        return replace(self, oos_scorer=scorer, oos_threshold=AUTO)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Softmax probabilities (a multi-label model's per-label sigmoids), shape (len(texts),
        len(labels))."""
        if self.multi_label:
            return self.predict_scored(texts, batch_size)[0]
        return self.net.predict_texts(self.tokenizer, texts, self.max_length, batch_size)

    def predict_scored(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (a multi-label model's per-label sigmoids) and the in-scope score of
        :attr:`oos_scorer` (higher = more in scope)."""
        from csml.models.components.encoder_classifier import sigmoid
        from csml.models.components.oos_scorers import softmax

        features, logits = self.net.encode_texts(self.tokenizer, texts, self.max_length, batch_size)
        probs = sigmoid(logits) if self.multi_label else softmax(logits)
        return probs, self.oos_scorer.score(features, logits)

    def decision_rule(
        self,
        oos_label: str | None,
        oos_threshold: float | str | None = AUTO,
        decision_threshold: float | str | None = AUTO,
        positive_label: str | None = None,
    ) -> DecisionRule:
        """How this classifier's probabilities and scores become labels.

        Args:
            oos_label: The out-of-scope label (None: no OOS threshold applies).
            oos_threshold: ``"auto"``: :attr:`oos_threshold` (the card's, or chosen on validation data
                where it has none); a number applies instead; None is argmax.
            decision_threshold: ``"auto"``: a two-label model's card threshold (chosen on validation data
                for a checkpoint with ``positive_label``); a number applies instead; None is argmax.
            positive_label: The label the decision threshold applies to; None: the card's.

        A multi-label model applies its card's per-label thresholds (chosen on validation data for a
        checkpoint).

        Raises:
            ScoringError: A decision threshold without the label it applies to, or a positive label that
                is not one of exactly two labels; an OOS label or a decision threshold for a multi-label
                model.
        """
        try:
            positive, decision = card_decision_rule(
                self.labels, self.card, decision_threshold, positive_label
            )
            threshold = self.oos_threshold if oos_threshold == AUTO else oos_threshold
            return DecisionRule(
                tuple(self.labels),
                oos_label,
                threshold,
                positive,
                decision,
                self.multi_label,
                self._label_thresholds(),
            )
        except ValueError as error:
            raise ScoringError(str(error)) from None

    def _label_thresholds(self) -> tuple[float, ...] | str | None:
        """A multi-label model's card thresholds in label order, ``"auto"`` without a card; None otherwise."""
        if not self.multi_label:
            return None
        if self.card is None:
            return AUTO
        thresholds = self.card["label_thresholds"]
        return tuple(float(thresholds[label]) for label in self.labels)

    def classify(self, texts: list[str], batch_size: int = 64) -> Classification:
        """Labels ``texts`` as the model's users get them: its OOS score and its card's thresholds (the
        pyfunc's ``predict``)."""
        rule = self.decision_rule((self.card or {}).get("oos_label"))
        probs, scores = self.predict_scored(texts, batch_size)
        return Classification(probs, scores, rule.predict(probs, scores), rule)

    def check_data(self, splits: DatasetSplits, split_names: Sequence[str]) -> None:
        """Raises :class:`ScoringError` unless ``split_names`` of ``splits`` hold only labels of the field
        this classifier was trained on, read as label sets exactly when the classifier is multi-label."""
        if splits.multi_label != self.multi_label:
            model = "sets of labels (multi-label)" if self.multi_label else "one label per text"
            data = "label sets" if splits.multi_label else "single labels"
            raise ScoringError(
                f"the model predicts {model} but {splits.name} is read as {data}; pass "
                f"data.source.multi_label={str(self.multi_label).lower()}"
            )
        label_field = splits.label_field
        trained_on = (self.card or {}).get("label_field", label_field)
        found = {label for split in split_names for r in splits[split] for label in splits.label_set(r)}
        unknown = sorted(found - set(self.labels))
        if trained_on != label_field or unknown:
            what = (
                f"{len(unknown)} unknown labels such as {unknown[:3]}" if unknown else f"{label_field} labels"
            )
            raise ScoringError(
                f"the model predicts {trained_on} labels and cannot be scored on {splits.name} ({what}); pass "
                "the data= config it was trained for"
            )


def fit_oos_scorer(
    name: str,
    params: dict[str, Any] | None,
    labels: list[str],
    oos_label: str | None,
    train: Sequence[Record],
    label_field: str,
    train_features: Callable[[], np.ndarray],
) -> OOSScorer:
    """The OOS scorer called ``name`` for a classifier with ``labels``, fitted on its training data when it
    needs training features (Mahalanobis, kNN); the one way ``csml train`` and ``csml eval`` build it.

    Args:
        name: The score (``evaluation.oos_score``), as
            :func:`~csml.models.components.oos_scorers.make_oos_scorer` knows it.
        params: Its parameters (``evaluation.oos_score_params``).
        labels: The classifier's labels, in the order of its outputs.
        oos_label: The out-of-scope label, whose training rows the scorer leaves out.
        train: The training records.
        label_field: The field of ``train`` that holds the labels.
        train_features: Computes the classifier's pooled features of ``train``, in order, shape
            (len(train), hidden_size); called only for a scorer fitted from features.

    Raises:
        ValueError: An unknown score or bad parameters (see
            :func:`~csml.models.components.oos_scorers.make_oos_scorer`).
    """
    from csml.models.components.oos_scorers import make_oos_scorer

    scorer = make_oos_scorer(name, labels, oos_label, params)
    if scorer.fitted_from_features:
        scorer.fit(train_features(), label_indices(train, label_field, labels))
    return scorer


def score_splits(
    classifier: Classifier,
    splits: DatasetSplits,
    split_names: Sequence[str],
    oos_label: str | None,
    *,
    oos_threshold: float | str | None = AUTO,
    decision_threshold: float | str | None = AUTO,
    positive_label: str | None = None,
    oos_min_recall: float | None = None,
    oos_in_scope_acceptance: float | None = None,
    threshold_domain_field: str | None = None,
    threshold_answer_field: str | None = None,
) -> Evaluation:
    """Scores ``classifier`` on ``split_names`` of ``splits`` as its users get it (``csml eval``, ``csml
    promote``): its OOS score compared with its OOS threshold, its decision threshold, the metrics of
    :func:`~csml.evaluation.evaluate`.

    Args:
        classifier: The classifier.
        splits: The data.
        split_names: The splits to score (``validation`` too where a threshold is chosen on it).
        oos_label: The data's out-of-scope label, if it has one.
        oos_threshold: See :meth:`Classifier.decision_rule`; ``"auto"`` thresholds a classifier has no
            value for are chosen on the validation split, as training does.
        decision_threshold: See :meth:`Classifier.decision_rule`.
        positive_label: See :meth:`Classifier.decision_rule`.
        oos_min_recall: With a chosen OOS threshold: the validation OOS recall it must reach.
        oos_in_scope_acceptance: With a chosen OOS threshold: the share of validation in-scope utterances
            it must accept (instead of ``oos_min_recall``).
        threshold_domain_field: With a chosen decision threshold: see :func:`~csml.evaluation.evaluate`.
        threshold_answer_field: With a chosen decision threshold: see :func:`~csml.evaluation.evaluate`.

    Raises:
        ScoringError: Data with labels the classifier was not trained on, or a bad decision threshold.
    """
    classifier.check_data(splits, split_names)
    rule = classifier.decision_rule(oos_label, oos_threshold, decision_threshold, positive_label)
    scored = {split: classifier.predict_scored([r.text for r in splits[split]]) for split in split_names}
    return evaluate(
        {split: (splits[split], probs) for split, (probs, _) in scored.items()},
        classifier.labels,
        splits.label_field,
        oos_label=rule.oos_label,
        oos_threshold=rule.oos_threshold,
        oos_min_recall=oos_min_recall,
        oos_scores_by_split={split: scores for split, (_, scores) in scored.items()},
        oos_score=classifier.oos_scorer.name,
        oos_in_scope_acceptance=oos_in_scope_acceptance,
        positive_label=rule.positive_label,
        decision_threshold=rule.decision_threshold,
        threshold_domain_field=threshold_domain_field,
        threshold_answer_field=threshold_answer_field,
        label_separator=splits.label_separator,
        label_thresholds=rule.label_thresholds,
    )
