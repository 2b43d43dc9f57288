"""The MLflow pyfunc flavour of retrieval response models: query text in; best response, score, top-k out.

The logged model holds the bi-encoder, its tokenizer and the response bank index (``index/``), plus a copy
of the ``csml`` package (``code_paths``), so ``mlflow.pyfunc.load_model("models:/<name>@champion")`` works in
a fresh process with only MLflow's requirements installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from csml.response.placeholders import fill_placeholders, find_placeholders
from csml.tracking.pyfunc import DEFAULT_TOP_K, log_text_model, texts_from_input

OUTPUT_COLUMNS = ["response", "score", "response_id", "placeholders", "top_k_responses", "top_k_scores"]


class ResponseSelectorModel(mlflow.pyfunc.PythonModel):
    """Selects, for each query, the best responses of the bank by cosine similarity of bi-encoder embeddings.

    Responses come back as written in the bank, placeholders included (``{{Order Number}}``), with the list
    of placeholders the caller must fill; :func:`~csml.response.placeholders.fill_placeholders` fills them.
    """

    def load_context(self, context: Any) -> None:
        self.load(context.artifacts["model"])

    def load(self, model_dir: str | Path) -> ResponseSelectorModel:
        """Loads a saved model folder (encoder, tokenizer, card, ``index/``)."""
        from csml.response.components.bi_encoder import BiEncoder
        from csml.response.index import ResponseIndex

        self.net, self.tokenizer, self.card = BiEncoder.load(model_dir)
        self.index = ResponseIndex.load(Path(model_dir) / "index")
        return self

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm query embeddings."""
        return self.net.encode_texts(texts, self.tokenizer, self.card["query_max_length"])

    def predict(self, context, model_input, params=None):
        """``model_input``: a DataFrame with a ``text`` column (the query, or the conversation so far), a
        list of strings, or one string. ``params``: ``top_k``."""
        texts = texts_from_input(model_input)
        top_k = int((params or {}).get("top_k", DEFAULT_TOP_K))
        scores, indices = self.index.search(self.embed(texts), top_k)
        rows = []
        for row_scores, row_indices in zip(scores, indices, strict=True):
            best = self.index.responses[row_indices[0]]
            rows.append(
                {
                    "response": best,
                    "score": float(row_scores[0]),
                    "response_id": self.index.ids[row_indices[0]],
                    "placeholders": find_placeholders(best),
                    "top_k_responses": [self.index.responses[j] for j in row_indices],
                    "top_k_scores": [float(s) for s in row_scores],
                }
            )
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def log_response_model(model_dir: Path, example_texts: list[str], registered_model_name: str | None) -> Any:
    """Logs a saved retrieval model folder as a pyfunc with signature and input example; registers it."""
    return log_text_model(ResponseSelectorModel(), model_dir, example_texts, registered_model_name)


__all__ = ["ResponseSelectorModel", "fill_placeholders", "log_response_model"]
