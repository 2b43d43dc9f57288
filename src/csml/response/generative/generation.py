"""Generating replies in batches, each with its mean token log-prob; slot tokens back to placeholders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from csml.response.placeholders import restore_placeholders

GENERATION_KEYS = ("max_new_tokens", "do_sample", "temperature", "top_p", "repetition_penalty")


@dataclass(frozen=True)
class GeneratedReply:
    """A generated reply with its model score (``csml.bot.generation.Generation`` is the bot's answer).

    Attributes:
        response: The reply, slot tokens of known placeholders restored (``[order_number]`` ->
            ``{{Order Number}}``).
        score: Mean log-probability of the reply's tokens under the model (the stop token included),
            from the raw logits whatever the sampling settings.
        num_tokens: Tokens generated (the stop token included).
    """

    response: str
    score: float
    num_tokens: int


def generation_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``generate`` keyword arguments of a generation config; sampling knobs only when sampling."""
    unknown = set(settings) - set(GENERATION_KEYS)
    if unknown:
        raise ValueError(
            f"unknown generation settings {sorted(unknown)}; known: {', '.join(GENERATION_KEYS)}"
        )
    out = {
        "max_new_tokens": int(settings.get("max_new_tokens", 64)),
        "do_sample": bool(settings.get("do_sample")),
    }
    if settings.get("repetition_penalty") is not None:
        out["repetition_penalty"] = float(settings["repetition_penalty"])
    if out["do_sample"]:
        out["temperature"] = float(settings.get("temperature", 1.0))
        out["top_p"] = float(settings.get("top_p", 1.0))
    return out


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: Mapping[str, Any],
    placeholder_names: Sequence[str] = (),
    batch_size: int = 16,
    progress: bool = False,
) -> list[GeneratedReply]:
    """Replies to ``prompts`` (rendered prompt texts), in order.

    Prompts are left-padded and batched by length. ``settings``: see :func:`generation_kwargs`.
    """
    from tqdm.auto import tqdm

    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    kwargs = generation_kwargs(settings)
    device = next(model.parameters()).device
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[GeneratedReply | None] = [None] * len(prompts)
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="generating", disable=not progress):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in index], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            result = model.generate(
                **batch,
                **kwargs,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                return_dict_in_generate=True,
                output_logits=True,
            )
            new = result.sequences[:, 1:] if seq2seq else result.sequences[:, batch["input_ids"].shape[1] :]
            logits = torch.stack(result.logits, dim=1).float()[:, : new.shape[1]]
            logprobs = logits.log_softmax(-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(index):
                tokens = new[row].tolist()
                length = (
                    tokens.index(tokenizer.eos_token_id) + 1
                    if tokenizer.eos_token_id in tokens
                    else len(tokens)
                )
                text = tokenizer.decode(tokens[:length], skip_special_tokens=True).strip()
                score = float(logprobs[row, :length].mean()) if length else 0.0
                out[i] = GeneratedReply(restore_placeholders(text, list(placeholder_names)), score, length)
    finally:
        model.train(was_training)
        tokenizer.padding_side = side
    return [g for g in out if g is not None]
