"""LightningModule fine-tuning a causal or seq2seq LM with LoRA on (conversation -> agent reply) pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import lightning as L
import torch

from csml.models.schedules import linear_warmup_decay
from csml.response.generative.loading import BaseModelRef, add_lora, load_base
from csml.response.generative.prompts import PromptFormat


class GenerativeResponseModule(L.LightningModule):
    """A pretrained generator with LoRA adapters; loss = token cross-entropy on the reply tokens only.

    The base weights stay frozen; :meth:`baseline` switches the adapters off, which is the untuned model
    every run is compared with.

    Args:
        name_or_path: Hub name or local folder of the base model.
        optimizer: Partial optimizer taking ``params`` (``_partial_: true`` in config).
        lora: :class:`peft.LoraConfig` fields (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``,
            ``bias``).
        gguf_file: GGUF file inside ``name_or_path``, de-quantised on load.
        package: Python package holding the base weights, saved as the base reference (see
            :class:`~csml.response.generative.loading.BaseModelRef`).
        seq2seq: The base is an encoder-decoder.
        dtype: Dtype the base weights are loaded in.
        quantization_bits: 8 or 4 to load the base quantised (QLoRA-style; bitsandbytes + CUDA), or ``None``.
        prompt: :class:`PromptFormat` fields (system instruction, control fields, history turns...).
        generation: Generation settings (:func:`~csml.response.generative.generation.generation_kwargs`).
        warmup_ratio: Fraction of steps with linear learning-rate warmup, then linear decay.
    """

    strict_loading = False  # checkpoints hold the trainable (adapter) weights only

    def __init__(
        self,
        name_or_path: str,
        optimizer: Callable[..., torch.optim.Optimizer],
        lora: Mapping[str, Any],
        gguf_file: str | None = None,
        package: str | None = None,
        seq2seq: bool = False,
        dtype: str = "float32",
        quantization_bits: int | None = None,
        prompt: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
        warmup_ratio: float = 0.05,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.optimizer_factory = optimizer
        self.base_ref = BaseModelRef(str(name_or_path), gguf_file, package, seq2seq, dtype)
        base, self.tokenizer = load_base(self.base_ref, quantization_bits)
        self.net = add_lora(base, lora, seq2seq)
        self.prompt = PromptFormat.from_dict(prompt or {})
        self.generation = dict(generation or {})

    def baseline(self) -> AbstractContextManager:
        """Context in which the model is the untuned base (adapters disabled)."""
        return self.net.disable_adapter() if hasattr(self.net, "disable_adapter") else nullcontext()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(**batch).loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self(batch), prog_bar=True, batch_size=len(batch["input_ids"]))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=[p for p in self.net.parameters() if p.requires_grad])
        return {
            "optimizer": optimizer,
            "lr_scheduler": linear_warmup_decay(
                optimizer, self.trainer.estimated_stepping_batches, self.hparams.warmup_ratio
            ),
        }
