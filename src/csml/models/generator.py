"""Loading causal and sequence-to-sequence language models (generators) from hub names, local folders or GGUF files."""

from __future__ import annotations

from typing import Any


def load_causal_lm(
    name_or_path: str,
    gguf_file: str | None = None,
    dtype: str = "float32",
    seq2seq: bool = False,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Returns ``(model, tokenizer)``; ``gguf_file`` names a GGUF file inside ``name_or_path`` (de-quantised on load).

    ``seq2seq=True`` loads an encoder-decoder (``AutoModelForSeq2SeqLM``) instead of a causal LM;
    ``model_kwargs`` go to ``from_pretrained`` (e.g. ``quantization_config``). The tokenizer gets a pad
    token (its EOS) when it has none, so batched generation and training work.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(name_or_path, dtype=getattr(torch, dtype), **kwargs, **model_kwargs)
    return model, tokenizer
