"""Generative answers for the reference bot: a language model writes the reply from the retrieved passages.

The ``bot.generator`` config node (``conf/generator/*.yaml``, built with ``_target_``) turns it on; null
keeps the bot extractive. Any :class:`Generator` fits: :class:`CausalLMGenerator` runs a transformers
causal LM (SmolLM2-135M-Instruct by default, or any local folder or hub name) through its chat template;
:class:`ResponseModelGenerator` (``generator=response_model``) a generative response model csml trained and
registered; another generator plugs in through its own ``_target_``.

Retrieval and the abstain threshold stay as in extractive mode; the generator only sees questions that
retrieval can answer (or, under fault injection, is made to answer anyway). Unlike an extractive reply,
a generated one can state what no passage says: this is the bot audits are meant to catch.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_SYSTEM_PROMPT = (
    "You are a customer-service agent. Answer the customer's question in two or three sentences, using "
    "only the context. If the context does not contain the answer, say: I don't know."
)
DEFAULT_USER_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"
MAX_NEW_TOKENS_LIMIT = 1024


@dataclass(frozen=True)
class Generation:
    """A generated answer: its text, token counts, and whether it stopped by itself or hit the limit."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


class Generator(abc.ABC):
    """What the bot needs from a generator.

    Contract: :meth:`load` is called once, before the server starts; :meth:`generate` is blocking and is
    called from one worker thread at a time (the bot serialises generation off its event loop), so an
    implementation needs no locking of its own.
    """

    name: str
    """Reported by ``/healthz``."""

    def load(self) -> None:  # noqa: B027 - optional hook: generators without weights to load skip it
        """Loads weights; the default does nothing."""

    @abc.abstractmethod
    def generate(self, question: str, passages: Sequence[str]) -> Generation:
        """Answers ``question`` from ``passages`` (retrieved, best first)."""


class CausalLMGenerator(Generator):
    """A transformers causal LM answering through its chat template, greedy unless ``do_sample``.

    Greedy decoding of a small model loops ("I'm here to help you with your order." until the token limit);
    ``no_repeat_ngram_size`` forbids any n-gram twice in the answer (the answer only: quoting the context
    stays allowed, unlike transformers' own option, which counts the prompt), ``stop`` ends the answer at
    strings that start a new turn or section, and ``max_sentences`` after that many sentences.
    ``repetition_penalty`` also counts the prompt's tokens, so it discourages quoting the context.

    The system message holds the instructions; the user message holds the passages and the question
    (``user_template`` with ``{context}`` and ``{question}``). Passages are added best first, separated
    by blank lines, until ``max_context_tokens``; the one that crosses the budget is cut. They are not
    numbered: a small model copies ``[1]`` markers into its answer, where audits count them as invented
    numbers.

    Args:
        model: Local folder or hub name of the model.
        gguf_file: GGUF file inside ``model`` (de-quantised on load), or None.
        dtype: Torch dtype the weights are loaded in.
        system_prompt: Instructions: answer only from the context, otherwise say so.
        user_template: The user message; ``{context}`` and ``{question}`` are filled in.
        max_context_tokens: Token budget of the passages.
        max_new_tokens: Upper bound of the answer's length, in tokens (1 to 1024).
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature (with ``do_sample``).
        top_p: Nucleus sampling mass (with ``do_sample``).
        repetition_penalty: 1.0 = none.
        no_repeat_ngram_size: No n-gram of this size twice in the answer (0 = off).
        stop: Strings that end the answer (not included in it).
        max_sentences: The answer ends after this many sentences (0 = no limit).
    """

    def __init__(
        self,
        model: str,
        gguf_file: str | None = None,
        dtype: str = "float32",
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        user_template: str = DEFAULT_USER_TEMPLATE,
        max_context_tokens: int = 512,
        max_new_tokens: int = 80,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        stop: Sequence[str] = (),
        max_sentences: int = 0,
    ) -> None:
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(
                f"bot.generator.max_new_tokens must be in [1, {MAX_NEW_TOKENS_LIMIT}], got {max_new_tokens}"
            )
        if max_context_tokens < 1:
            raise ValueError(f"bot.generator.max_context_tokens must be >= 1, got {max_context_tokens}")
        if (
            temperature <= 0
            or not 0 < top_p <= 1
            or repetition_penalty <= 0
            or min(no_repeat_ngram_size, max_sentences) < 0
        ):
            raise ValueError(
                "bot.generator: temperature and repetition_penalty must be > 0, top_p in (0, 1], "
                "no_repeat_ngram_size and max_sentences >= 0"
            )
        missing = [field for field in ("{context}", "{question}") if field not in user_template]
        if missing:
            raise ValueError(f"bot.generator.user_template must contain {missing}")
        self.name = f"{model}/{gguf_file}" if gguf_file else model
        self.source = (model, gguf_file, dtype)
        self.system_prompt = system_prompt
        self.user_template = user_template
        self.max_context_tokens = max_context_tokens
        self.options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
        if do_sample:
            self.options.update(temperature=temperature, top_p=top_p)
        if repetition_penalty != 1.0:
            self.options["repetition_penalty"] = repetition_penalty
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.stop = [str(s) for s in stop if str(s)]
        self.max_sentences = max_sentences
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> None:
        """Loads the model and tokenizer (once); the tokenizer must have a chat template."""
        if self.model is not None:
            return
        from csml.models.generator import load_causal_lm

        model, gguf_file, dtype = self.source
        self.model, self.tokenizer = load_causal_lm(model, gguf_file, dtype)
        self.model.eval()
        if not self.tokenizer.chat_template:
            raise ValueError(f"generator {self.name}: the tokenizer has no chat template")

    def context(self, passages: Sequence[str]) -> str:
        """The passages, best first, within ``max_context_tokens``."""
        parts, room = [], self.max_context_tokens
        for passage in passages:
            if room <= 0:
                break
            ids = self.tokenizer(passage, add_special_tokens=False)["input_ids"]
            parts.append(passage if len(ids) <= room else self.tokenizer.decode(ids[:room]).strip())
            room -= len(ids)
        return "\n\n".join(parts)

    def prompt(self, question: str, passages: Sequence[str]) -> list[dict[str, str]]:
        """The chat messages sent to the model."""
        user = self.user_template.format(context=self.context(passages), question=question)
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def generate(self, question: str, passages: Sequence[str]) -> Generation:
        import torch

        self.load()
        inputs = self.tokenizer.apply_chat_template(
            self.prompt(question, passages), add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        prompt_tokens = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                **self.options,
                **_controls(self, prompt_tokens),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = output[0, prompt_tokens:].tolist()
        text, cut = _cut(self.tokenizer.decode(new, skip_special_tokens=True), self.stop, self.max_sentences)
        stopped = (bool(new) and new[-1] == self.tokenizer.eos_token_id) or cut
        return Generation(
            text=text.strip(),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new),
            finish_reason="length" if len(new) >= self.options["max_new_tokens"] and not stopped else "stop",
        )


class ResponseModelGenerator(Generator):
    """A generative response model trained by ``csml train-response`` (LoRA on SmolLM2 over customer-service
    query -> reply pairs), loaded from the MLflow registry by URI.

    It writes the agent's reply to the customer's message as it learnt from those pairs. It was not trained
    to answer from retrieved passages, so it is not shown them: its replies are fluent and ungrounded by
    design (placeholders such as ``{{Order Number}}`` included) -- a bot whose hallucinations are real, for
    audits to be proven on. ``prompt_tokens`` is not reported (0).

    Args:
        model_uri: ``models:/<name>@<alias>`` or any MLflow model URI of a generative response model.
        tracking_uri: The MLflow store to resolve it in (None: MLflow's current one).
        max_new_tokens: Overrides the model's saved generation length (None: keep it).
    """

    def __init__(
        self, model_uri: str, tracking_uri: str | None = None, max_new_tokens: int | None = None
    ) -> None:
        if max_new_tokens is not None and not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(
                f"bot.generator.max_new_tokens must be in [1, {MAX_NEW_TOKENS_LIMIT}], got {max_new_tokens}"
            )
        self.name = model_uri
        self.tracking_uri = tracking_uri
        self.params = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
        self.model: Any = None

    def load(self) -> None:
        """Loads the registered model (once)."""
        if self.model is not None:
            return
        import mlflow.pyfunc

        if self.tracking_uri:
            from csml.tracking.runs import use_store

            use_store(self.tracking_uri)
        self.model = mlflow.pyfunc.load_model(self.name)

    def generate(self, question: str, passages: Sequence[str]) -> Generation:
        self.load()
        import pandas as pd

        conversation = pd.DataFrame({"messages": [[{"role": "user", "content": question}]], "text": [None]})
        row = self.model.predict(conversation, params=self.params or None).iloc[0]
        tokens = int(row["num_tokens"])
        limit = self.params.get("max_new_tokens")
        return Generation(
            text=str(row["response"]).strip(),
            prompt_tokens=0,
            completion_tokens=tokens,
            finish_reason="length" if limit is not None and tokens >= limit else "stop",
        )


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _cut(text: str, stop: Sequence[str], max_sentences: int) -> tuple[str, bool]:
    """``text`` up to the first stop string or the end of its ``max_sentences``-th sentence; whether it was
    cut."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    if max_sentences:
        found = list(_SENTENCE_END.finditer(text))
        if len(found) >= max_sentences:
            ends.append(found[max_sentences - 1].end())
    return (text[: min(ends)], True) if ends else (text, False)


def _controls(generator: CausalLMGenerator, prompt_tokens: int) -> dict[str, Any]:
    """``generate`` arguments for the answer-only n-gram block and the stop conditions (none when off)."""
    from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    size, tokenizer = generator.no_repeat_ngram_size, generator.tokenizer

    class NoRepeatInAnswer(LogitsProcessor):
        """Bans the token that would repeat an n-gram of the answer so far (the prompt is not counted)."""

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            for row, ids in enumerate(input_ids[:, prompt_tokens:].tolist()):
                if len(ids) < size:
                    continue
                prefix = tuple(ids[len(ids) - size + 1 :])
                for start in range(len(ids) - size + 1):
                    if tuple(ids[start : start + size - 1]) == prefix:
                        scores[row, ids[start + size - 1]] = -float("inf")
            return scores

    class StopWhenCut(StoppingCriteria):
        """Stops once the decoded answer reaches a stop string or its last allowed sentence."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            text = tokenizer.decode(input_ids[0, prompt_tokens:], skip_special_tokens=True)
            return torch.tensor(
                [_cut(text, generator.stop, generator.max_sentences)[1]], device=input_ids.device
            )

    controls: dict[str, Any] = {}
    if size:
        controls["logits_processor"] = LogitsProcessorList([NoRepeatInAnswer()])
    if generator.stop or generator.max_sentences:
        controls["stopping_criteria"] = StoppingCriteriaList([StopWhenCut()])
    return controls
