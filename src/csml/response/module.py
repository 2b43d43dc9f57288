"""LightningModule fine-tuning a bi-encoder for response selection with in-batch negatives."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from csml.models.schedules import linear_warmup_decay
from csml.response.components.bi_encoder import BiEncoder


def in_batch_logits(
    queries: torch.Tensor, responses: torch.Tensor, scale: torch.Tensor, query_group: torch.Tensor | None
) -> torch.Tensor:
    """Scaled query x response similarities; other replies to the same query are masked out (not negatives)."""
    logits = queries @ responses.T * scale
    if query_group is not None:
        same = query_group[:, None] == query_group[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, torch.finfo(logits.dtype).min / 2)
    return logits


def symmetric_info_nce(logits: torch.Tensor) -> torch.Tensor:
    """Mean of query->response and response->query cross-entropy; pair i is the positive of row i."""
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))


class RetrievalModule(L.LightningModule):
    """Shared-weight bi-encoder trained with symmetric InfoNCE over in-batch negatives (ConveRT-style).

    Args:
        backbone: Hub name or local folder of the pretrained encoder.
        optimizer: Partial optimizer taking ``params`` (``_partial_: true`` in config).
        temperature: Initial softmax temperature (scores are cosine / temperature).
        learn_temperature: Learn the temperature (as a log scale, capped at 1/100) or keep it fixed.
        warmup_ratio: Fraction of steps with linear learning-rate warmup, then linear decay.
        temperature_lr: Learning rate of the (log) temperature, which the encoder's small rate barely moves.
    """

    def __init__(
        self,
        backbone: str,
        optimizer: Callable[..., torch.optim.Optimizer],
        temperature: float = 0.05,
        learn_temperature: bool = True,
        warmup_ratio: float = 0.1,
        temperature_lr: float = 1.0e-2,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.optimizer_factory = optimizer
        self.net = BiEncoder.from_pretrained(backbone).train()  # from_pretrained returns eval mode
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / temperature)), requires_grad=learn_temperature
        )

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        queries = self.net(batch["query_input_ids"], batch["query_attention_mask"])
        responses = self.net(batch["response_input_ids"], batch["response_attention_mask"])
        logits = in_batch_logits(queries, responses, self.scale(), batch.get("query_group"))
        return symmetric_info_nce(logits), logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, logits = self._step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log("train/temperature", 1.0 / self.scale().detach(), batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits = self._step(batch)
        target = torch.arange(len(logits), device=logits.device)
        accuracy = (logits.argmax(-1) == target).float().mean()
        self.log("val/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log("val/in_batch_recall_at_1", accuracy, prog_bar=True, batch_size=len(logits))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=[p for p in self.net.parameters() if p.requires_grad])
        if self.log_scale.requires_grad:
            optimizer.add_param_group(
                {"params": [self.log_scale], "lr": self.hparams.temperature_lr, "weight_decay": 0.0}
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": linear_warmup_decay(
                optimizer, self.trainer.estimated_stepping_batches, self.hparams.warmup_ratio
            ),
        }
