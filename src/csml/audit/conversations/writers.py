"""Customer turns written by a language model instead of taken from the goal's script (optional).

By default a simulated customer says the goal's scripted messages: real utterances of the corpora. With
``customer_writer`` set in the audit config, every scripted message after the first is written by a model
that sees the goal, the persona and the conversation so far -- a customer who answers what the bot actually
said:

- ``customer_writer: {base_url: http://..., model: ..., api_key_env: NAME}``: any OpenAI-compatible endpoint,
  through the audit's own adapter (:class:`csml.audit.adapters.OpenAIChatAdapter`), temperature 0;
- ``customer_writer: {local: smollm2}``: the packaged SmolLM2-135M-Instruct on this machine, greedy (weak: it
  often writes something off-goal; say so when you use it).

A writer that fails or writes nothing leaves the scripted message in place; the turn's ``move`` says which
it was (``written`` or ``script``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

from csml.audit.conversations.goals import Goal
from csml.audit.errors import AuditConfigError

log = logging.getLogger(__name__)
INSTRUCTIONS = (
    "You are a customer writing to a company's support chat. Write only your next message to the agent: one "
    "or two short sentences, first person, no quotes, no labels."
)
PERSONA_HINTS = {
    "calm": "You are calm and polite.",
    "impatient": "You are impatient and want this solved quickly.",
    "angry": "You are angry about the service, but you still want your problem solved.",
    "switcher": "You are calm.",
    "corrector": "You are calm and precise about details.",
}


def prompt(goal: Goal, persona: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages asking for the customer's next message (``turns``: (customer, bot) so far)."""
    if goal.values:
        wanted = ", ".join(f"{slot.replace('_', ' ')}: {value}" for slot, value in goal.values.items())
        aim = f"You want to {goal.intent or 'get this done'} with these details: {wanted}."
    else:
        aim = f"You want an answer to: {goal.turns[0]}"
    said = "\n".join(f"Customer: {c}\nAgent: {b}" for c, b in turns)
    user = f"{aim} {PERSONA_HINTS.get(persona, '')}\n\nThe conversation so far:\n{said}\n\nYour next message:"
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": user}]


def _clean(text: str) -> str | None:
    text = text.strip().strip('"').strip()
    for label in ("Customer:", "customer:"):
        text = text.removeprefix(label).strip()
    first = text.split("\n")[0].strip()
    return first or None


class TurnWriter(ABC):
    """Writes a customer's next message from a prompt (:func:`prompt`)."""

    name: str = ""

    @abstractmethod
    async def write(self, messages: list[dict[str, str]]) -> str | None:
        """The message, or None when the model fails or writes nothing (the script is used instead)."""

    async def aclose(self) -> None:
        """Releases connections."""
        return None


class EndpointWriter(TurnWriter):
    """A model behind an OpenAI-compatible endpoint (temperature 0, 60 tokens at most).

    Args:
        base_url: The endpoint's base URL (``/v1/chat/completions`` is appended).
        model: The model name sent.
        api_key_env: NAME of the environment variable holding its key (None: no key).
        timeout_s: Per-request timeout.
    """

    def __init__(
        self, base_url: str, model: str, api_key_env: str | None = None, timeout_s: float = 60.0
    ) -> None:
        from csml.audit.adapters import OpenAIChatAdapter

        self.name = f"{model} at {base_url}"
        self.adapter = OpenAIChatAdapter(
            name="customer-writer", url=base_url, model=model, api_key_env=api_key_env, extension_field=None,
            temperature=0.0, max_tokens=60, timeout_s=timeout_s, retries=1, concurrency=8,
        )  # fmt: skip

    async def write(self, messages: list[dict[str, str]]) -> str | None:
        reply = await self.adapter.send(messages)
        if not reply.ok:
            log.warning(
                "customer writer %s failed (%s): the scripted message is used", self.name, reply.error
            )
            return None
        return _clean(reply.text)

    async def aclose(self) -> None:
        await self.adapter.aclose()


class LocalWriter(TurnWriter):
    """A causal LM on this machine (SmolLM2 by default), greedy, one message at a time on a worker thread.

    Args:
        model: Local folder of the model (None: the packaged SmolLM2).
        gguf_file: GGUF file inside it (the packaged SmolLM2's by default).
        max_new_tokens: Longest message, in tokens.
    """

    def __init__(
        self, model: str | None = None, gguf_file: str | None = None, max_new_tokens: int = 40
    ) -> None:
        self.source = (model, gguf_file)
        self.max_new_tokens = max_new_tokens
        self.name = model or "SmolLM2-135M-Instruct (packaged)"
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _complete(self, messages: list[dict[str, str]]) -> str:
        import torch

        with self._lock:
            if self._loaded is None:
                from csml.config import smollm2_dir
                from csml.models.generator import load_causal_lm

                model, gguf = self.source
                if model is None:
                    model, gguf = smollm2_dir(), gguf or "SmolLM2-135M-Instruct.Q4_1.gguf"
                self._loaded = load_causal_lm(model, gguf, "float32")
            lm, tokenizer = self._loaded
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            )
            with torch.inference_mode():
                output = lm.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)  # fmt: skip
            return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    async def write(self, messages: list[dict[str, str]]) -> str | None:
        return _clean(await asyncio.to_thread(self._complete, messages))


def build_writer(spec: dict[str, Any] | None) -> TurnWriter | None:
    """The writer ``customer_writer`` configures (module docstring), or None.

    Raises:
        AuditConfigError: neither ``base_url`` + ``model`` nor ``local``, or unknown keys.
    """
    if not spec:
        return None
    spec = dict(spec)
    if "local" in spec:
        if spec.pop("local") not in ("smollm2", True):
            raise AuditConfigError(
                "customer_writer.local: only 'smollm2' (or a folder in customer_writer.model)"
            )
        known = {"model", "gguf_file", "max_new_tokens"}
        if unknown := sorted(set(spec) - known):
            raise AuditConfigError(
                f"customer_writer: unknown keys {unknown} with local; known {sorted(known)}"
            )
        return LocalWriter(**spec)
    if not spec.get("base_url") or not spec.get("model"):
        raise AuditConfigError(
            "customer_writer: set base_url and model (an OpenAI-compatible endpoint), or local: smollm2"
        )
    known = {"base_url", "model", "api_key_env", "timeout_s"}
    if unknown := sorted(set(spec) - known):
        raise AuditConfigError(f"customer_writer: unknown keys {unknown}; known {sorted(known)}")
    return EndpointWriter(**spec)
