"""The MLflow pyfunc flavour of csml's text classifiers: text in; label, confidence and top-k out (for a
multi-label model: the label set, its scores and top-k).

A logged model carries a copy of the ``csml`` package (``code_paths``), so a registry consumer loads it
with plain ``mlflow.pyfunc.load_model("models:/<name>@champion")`` in a fresh process.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

PIP_REQUIREMENTS = ["torch", "transformers", "numpy", "pandas", "mlflow"]
DEFAULT_TOP_K = 5
COLUMNS = ["label", "confidence", "top_k_labels", "top_k_scores"]
LABEL_SET_COLUMNS = ["label", "labels", "scores", "top_k_labels", "top_k_scores"]
"""Output columns of a multi-label model."""


class TextClassifierModel(mlflow.pyfunc.PythonModel):
    """Predicts a label, its confidence and the top-k labels for each input text.

    Labels are those of :meth:`csml.scoring.Classifier.classify`, the path ``csml eval`` and ``csml promote``
    score with: out of scope when the model's OOS score (best in-scope probability by default, or the
    Mahalanobis/kNN score saved with it, see :mod:`csml.models.components.oos_scorers`) is below the card's
    OOS threshold, with confidence ``1 - max in-scope probability``; for a two-label model with a card
    decision threshold, the positive label when its probability reaches it.

    A multi-label model (card ``multi_label``) predicts a set per text: every label whose sigmoid
    probability reaches its card threshold, or the most probable label when none does. Its columns are
    ``labels`` (the set, a list in label order), ``label`` (the set joined with the card's
    ``label_separator``, as the training data writes it: ``airfare#flight``), ``scores`` (the probability of
    each label in ``labels``) and ``top_k_labels`` / ``top_k_scores`` over all labels.
    """

    def load_context(self, context: Any) -> None:
        self.load(context.artifacts["model"])

    def load(self, model_dir: str | Path) -> TextClassifierModel:
        """Loads the saved model folder (used by MLflow through :meth:`load_context`, and directly)."""
        from csml.scoring import Classifier

        self.classifier = Classifier.from_dir(model_dir)
        return self

    # The classifier's parts, for code that holds the loaded pyfunc (the judge, the bot's routing).
    @property
    def net(self) -> Any:
        return self.classifier.net

    @property
    def tokenizer(self) -> Any:
        return self.classifier.tokenizer

    @property
    def card(self) -> dict[str, Any]:
        return self.classifier.card

    @card.setter
    def card(self, card: dict[str, Any]) -> None:
        self.classifier = replace(self.classifier, card=card)

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    @property
    def oos_scorer(self) -> Any:
        return self.classifier.oos_scorer

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Softmax probabilities (a multi-label model's per-label sigmoids), shape (len(texts), num_labels),
        label order as in ``self.labels``."""
        return self.classifier.predict_proba(texts, batch_size)

    def predict_scored(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities and the in-scope score of :attr:`oos_scorer` (higher = more in scope)."""
        return self.classifier.predict_scored(texts, batch_size)

    def predict(self, context, model_input, params=None):
        """``model_input``: a DataFrame with a ``text`` column, a list of strings, or one string."""
        texts = texts_from_input(model_input)
        top_k = int((params or {}).get("top_k", DEFAULT_TOP_K))
        result = self.classifier.classify(texts)
        probs, rule = result.probs, result.rule
        order = np.argsort(-probs, axis=1)[:, :top_k]
        if rule.multi_label:
            return self._label_sets(result.predictions, probs, order)
        in_scope = [j for j, name in enumerate(self.labels) if name != rule.oos_label]
        rows = []
        for i, label_index in enumerate(result.predictions):
            label = self.labels[label_index]
            confidence = float(probs[i, label_index])
            if label == rule.oos_label and rule.oos_threshold is not None:
                confidence = max(confidence, 1.0 - float(probs[i, in_scope].max()))
            rows.append(
                {
                    "label": label,
                    "confidence": confidence,
                    "top_k_labels": [self.labels[j] for j in order[i]],
                    "top_k_scores": [float(probs[i, j]) for j in order[i]],
                }
            )
        return pd.DataFrame(rows, columns=COLUMNS)

    def _label_sets(self, predictions: np.ndarray, probs: np.ndarray, order: np.ndarray) -> pd.DataFrame:
        """A multi-label model's output rows (:data:`LABEL_SET_COLUMNS`) from its 0/1 label indicators."""
        from csml.data.label_sets import join_label_set

        separator = self.card["label_separator"]
        rows = []
        for i, chosen in enumerate(predictions):
            picked = np.flatnonzero(chosen)
            labels = [self.labels[j] for j in picked]
            rows.append(
                {
                    "label": join_label_set(labels, separator),
                    "labels": labels,
                    "scores": [float(probs[i, j]) for j in picked],
                    "top_k_labels": [self.labels[j] for j in order[i]],
                    "top_k_scores": [float(probs[i, j]) for j in order[i]],
                }
            )
        return pd.DataFrame(rows, columns=LABEL_SET_COLUMNS)


def texts_from_input(model_input: Any) -> list[str]:
    """The texts of a pyfunc input: a DataFrame with a ``text`` column, a list of strings, or one string."""
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise ValueError(
                f"input DataFrame needs a 'text' column; found columns {list(model_input.columns)}"
            )
        values = model_input["text"].tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, dict) and "text" in model_input:
        values = model_input["text"] if isinstance(model_input["text"], list) else [model_input["text"]]
    else:
        values = list(model_input)
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"input row {i}: 'text' must be a non-empty string, got {value!r}")
    return values


def log_text_model(
    python_model: Any, model_dir: Path, example_texts: list[str], registered_model_name: str | None
) -> Any:
    """Logs a saved csml model folder as a pyfunc (text in) with signature and input example; registers it.

    ``python_model`` is a csml ``PythonModel`` with a ``load(model_dir)`` method; the signature is inferred
    from its predictions on ``example_texts``. The logged model carries a copy of the ``csml`` package. A
    registered version gets a description and tags from the model's card and the active run (see
    :mod:`csml.tracking.descriptions`).
    """
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    import csml
    from csml.tracking.descriptions import describe_version

    example = pd.DataFrame({"text": example_texts})
    loaded = type(python_model)().load(model_dir)
    signature = infer_signature(example, loaded.predict(None, example), params={"top_k": DEFAULT_TOP_K})
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(csml.__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=PIP_REQUIREMENTS,
        registered_model_name=registered_model_name,
    )
    if registered_model_name:
        card = getattr(loaded, "card", None) or {}
        describe_version(
            MlflowClient(), registered_model_name, info.registered_model_version, card, info.run_id
        )
    return info


def log_classifier(model_dir: Path, example_texts: list[str], registered_model_name: str | None) -> Any:
    """Logs a saved classifier folder as a pyfunc with signature and input example, and registers it."""
    return log_text_model(TextClassifierModel(), model_dir, example_texts, registered_model_name)
