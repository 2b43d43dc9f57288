"""LightningModule for text classification (intent, sentiment, groundedness) over a ``transformers`` backbone."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from csml.models.components.encoder_classifier import EncoderClassifier
from csml.models.schedules import linear_warmup_decay


class SequenceClassifier(L.LightningModule):
    """Fine-tunes an :class:`EncoderClassifier` with cross-entropy, linear warmup and linear decay; for
    multi-label data, with one sigmoid per label and binary cross-entropy (``BCEWithLogitsLoss``).

    Args:
        backbone: Hub name or local folder of the pretrained encoder, or of a decoder (use ``last`` pooling).
        labels: Label names in index order (filled in at run time from the data).
        optimizer: Partial optimizer taking ``params`` (``_partial_: true`` in config).
        pooling: ``"mean"``, ``"cls"`` or ``"last"`` (decoders).
        dropout: Dropout before the head.
        lora: ``peft.LoraConfig`` keyword arguments, or None for full fine-tuning.
        head_lr_multiplier: The randomly initialised head learns this many times faster than the encoder.
        warmup_ratio: Fraction of training steps with a linear learning-rate warmup.
        label_smoothing: Cross-entropy label smoothing.
        class_weights: Cross-entropy weight of named labels (``{oos: 3.0}``); unnamed labels weigh 1.
        gguf_file: GGUF file inside ``backbone`` to load (de-quantised to float32), e.g. SmolLM2's.
        class_weighting: Cross-entropy weights from the training label counts, for imbalanced data:
            ``None`` (off), ``"balanced"`` or ``"sqrt_inverse"`` (see :func:`imbalance_weights`); multiplied
            by ``class_weights`` where both are set.
        label_counts: Training rows per label, in ``labels`` order (filled in at run time from the data when
            ``class_weighting`` is set).
        multi_label: Each text has a set of labels: one sigmoid per label and binary cross-entropy, where
            ``class_weights`` weigh each label's loss and ``class_weighting`` its positive rows
            (``pos_weight``, see :func:`positive_weights`); ``label_smoothing`` does not apply.
        train_rows: Training rows (filled in at run time for multi-label data), of which ``label_counts``
            hold each label: the rest are the label's negatives.

    The loss weights are buffers (``loss_fn.weight``, and ``loss_fn.pos_weight`` for multi-label data), saved
    with checkpoints; they shape the training and validation losses only, never predictions.
    """

    def __init__(
        self,
        backbone: str,
        labels: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        pooling: str = "mean",
        dropout: float = 0.1,
        lora: dict[str, Any] | None = None,
        head_lr_multiplier: float = 1.0,
        warmup_ratio: float = 0.1,
        label_smoothing: float = 0.0,
        class_weights: dict[str, float] | None = None,
        gguf_file: str | None = None,
        class_weighting: str | None = None,
        label_counts: list[int] | None = None,
        multi_label: bool = False,
        train_rows: int | None = None,
    ) -> None:
        super().__init__()
        # Plain containers (not OmegaConf's) so checkpoints load with torch.load(weights_only=True).
        labels = [str(label) for label in labels]
        lora = OmegaConf.to_container(lora) if isinstance(lora, DictConfig) else lora
        class_weights = {str(k): float(v) for k, v in (class_weights or {}).items()} or None
        unknown = sorted(set(class_weights or {}) - set(labels))
        if unknown:
            raise ValueError(f"model.class_weights names labels the data does not have: {unknown}")
        if class_weighting is not None and class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"model.class_weighting={class_weighting!r}; expected null or one of {list(CLASS_WEIGHTINGS)}"
            )
        if class_weighting is not None and label_counts is None:
            raise ValueError(
                f"model.class_weighting={class_weighting!r} needs label_counts, the training rows per label "
                "(csml train passes them from the data)"
            )
        label_counts = [int(n) for n in label_counts] if label_counts is not None else None
        if label_counts is not None and len(label_counts) != len(labels):
            raise ValueError(f"label_counts has {len(label_counts)} entries for {len(labels)} labels")
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.optimizer_factory = optimizer
        self.labels = labels
        self.net = EncoderClassifier.from_pretrained(
            backbone, len(labels), pooling=pooling, dropout=dropout, lora=lora, gguf_file=gguf_file
        )
        if multi_label:
            self.loss_fn = multi_label_loss(
                labels, class_weights, class_weighting, label_counts, train_rows, label_smoothing
            )
        else:
            weight = None
            if class_weights or class_weighting is not None:
                named = torch.tensor([(class_weights or {}).get(label, 1.0) for label in labels])
                weight = (
                    named * imbalance_weights(label_counts, class_weighting) if class_weighting else named
                )
            self.loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.net(input_ids, attention_mask)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self.loss_fn(logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        self.log("val/loss", self.loss_fn(logits, batch["labels"]), prog_bar=True, batch_size=len(logits))
        self._val_logits.append(logits.detach().float().cpu())
        self._val_labels.append(batch["labels"].cpu())

    def on_validation_epoch_end(self) -> None:
        """Logs ``val/accuracy`` and ``val/macro_f1`` of the argmax (checkpoints keep the best macro-F1); for
        multi-label data ``val/subset_accuracy`` and ``val/macro_f1`` of every label at probability 0.5
        (the per-label thresholds are chosen after training)."""
        if not self._val_logits:
            return
        if self.hparams.multi_label:
            y_pred = (torch.cat(self._val_logits) >= 0).int().numpy()  # sigmoid >= 0.5
            y_true = torch.cat(self._val_labels).int().numpy()
            self._val_logits.clear()
            self._val_labels.clear()
            subset_accuracy = float(accuracy_score(y_true, y_pred))  # exact label-set match
            macro_f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
            self.log("val/subset_accuracy", subset_accuracy, prog_bar=True, sync_dist=True)
            self.log("val/macro_f1", macro_f1, sync_dist=True)
            return
        y_pred = torch.cat(self._val_logits).argmax(-1).numpy()
        y_true = torch.cat(self._val_labels).numpy()
        self._val_logits.clear()
        self._val_labels.clear()
        self.log("val/accuracy", float(accuracy_score(y_true, y_pred)), prog_bar=True, sync_dist=True)
        self.log("val/macro_f1", float(f1_score(y_true, y_pred, average="macro")), sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        head = list(self.net.head.parameters())
        head_ids = {id(p) for p in head}
        encoder = [p for p in self.parameters() if p.requires_grad and id(p) not in head_ids]
        optimizer = self.optimizer_factory(params=encoder)
        base_lr = optimizer.param_groups[0]["lr"]
        optimizer.add_param_group({"params": head, "lr": base_lr * self.hparams.head_lr_multiplier})
        return {
            "optimizer": optimizer,
            "lr_scheduler": linear_warmup_decay(
                optimizer, self.trainer.estimated_stepping_batches, self.hparams.warmup_ratio
            ),
        }

    def predict_proba(self, batches: Iterable[dict[str, torch.Tensor]]) -> np.ndarray:
        """Softmax probabilities (for multi-label data, each label's sigmoid) for every sample of
        ``batches``, in order, as a (n, k) float array."""
        logits = torch.from_numpy(self.predict_outputs(batches)[1])
        return (logits.sigmoid() if self.hparams.multi_label else logits.softmax(-1)).numpy()

    @torch.inference_mode()
    def predict_outputs(self, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features (n, hidden_size) and logits (n, k) for every sample of ``batches``, in order."""
        was_training = self.training
        self.eval()
        features, logits = [], []
        for batch in batches:
            pooled = self.net.embed(
                batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            )
            features.append(pooled.float().cpu())
            logits.append(self.net.head(pooled).float().cpu())
        self.train(was_training)
        if not logits:
            features.append(torch.zeros(0, self.net.head.in_features))
            logits.append(torch.zeros(0, len(self.labels)))
        return torch.cat(features).numpy(), torch.cat(logits).numpy()


CLASS_WEIGHTINGS = ("balanced", "sqrt_inverse")
"""Values of ``model.class_weighting`` besides ``None``."""


def imbalance_weights(label_counts: list[int], scheme: str) -> torch.Tensor:
    """Per-label cross-entropy weights that counter class imbalance, from the training rows per label.

    ``"balanced"`` weighs label ``c`` by ``n / (k * count_c)`` (scikit-learn's ``class_weight="balanced"``:
    every label contributes as much to the loss as if all were equally frequent); ``"sqrt_inverse"`` by the
    square root of that, rescaled to mean 1 (a milder correction). A label with no training rows counts as
    one (it is never a training target, so its weight does not matter). The loss is a weighted mean, so
    only the ratios between weights change training.

    Args:
        label_counts: Training rows per label, in label index order.
        scheme: ``"balanced"`` or ``"sqrt_inverse"``.

    Returns:
        A float tensor of ``len(label_counts)`` weights.
    """
    check_class_weighting(scheme)
    counts = torch.tensor(label_counts, dtype=torch.float64).clamp(min=1)
    weights = counts.sum() / (len(counts) * counts)
    if scheme == "sqrt_inverse":
        weights = weights.sqrt()
        weights = weights / weights.mean()
    return weights.float()


def positive_weights(label_counts: list[int], train_rows: int, scheme: str) -> torch.Tensor:
    """Per-label weights of the positive rows in a multi-label binary cross-entropy (``pos_weight``), from
    the training rows, for imbalanced labels.

    ``"balanced"`` weighs a label's positive rows by its negatives / positives (a label in 1 of 100 rows by
    99: positives and negatives then weigh the same in its loss, as ``BCEWithLogitsLoss`` recommends);
    ``"sqrt_inverse"`` by the square root of that (a milder correction). A label with no training rows
    counts as one; a label in every row as having one negative.

    Args:
        label_counts: Training rows holding each label, in label index order.
        train_rows: Training rows in all.
        scheme: ``"balanced"`` or ``"sqrt_inverse"``.

    Returns:
        A float tensor of ``len(label_counts)`` weights.
    """
    check_class_weighting(scheme)
    positives = torch.tensor(label_counts, dtype=torch.float64).clamp(min=1)
    weights = (train_rows - positives).clamp(min=1) / positives
    return (weights.sqrt() if scheme == "sqrt_inverse" else weights).float()


def multi_label_loss(
    labels: list[str],
    class_weights: dict[str, float] | None,
    class_weighting: str | None,
    label_counts: list[int] | None,
    train_rows: int | None,
    label_smoothing: float,
) -> nn.BCEWithLogitsLoss:
    """The binary cross-entropy of a multi-label :class:`SequenceClassifier`: ``class_weights`` weigh each
    named label's loss, ``class_weighting`` its positive rows (:func:`positive_weights`).

    Raises:
        ValueError: ``label_smoothing`` is set (it smooths one label per text), or ``class_weighting``
            without ``train_rows``.
    """
    if label_smoothing:
        raise ValueError(
            f"model.label_smoothing={label_smoothing} smooths the one label of a text; multi-label data "
            "has a set: set model.label_smoothing=0"
        )
    if class_weighting is not None and train_rows is None:
        raise ValueError(
            f"model.class_weighting={class_weighting!r} on multi-label data needs train_rows, the training "
            "rows (csml train passes them from the data)"
        )
    weight = torch.tensor([class_weights.get(label, 1.0) for label in labels]) if class_weights else None
    pos_weight = positive_weights(label_counts, train_rows, class_weighting) if class_weighting else None
    return nn.BCEWithLogitsLoss(weight=weight, pos_weight=pos_weight)


def check_class_weighting(scheme: str) -> None:
    """Raises a clear ValueError unless ``scheme`` is one of :data:`CLASS_WEIGHTINGS`."""
    if scheme not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"model.class_weighting={scheme!r}; expected null or one of {list(CLASS_WEIGHTINGS)}"
        )
