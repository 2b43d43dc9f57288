"""Imbalance options of classifier training: ``model.class_weighting`` (loss weights from the training label
counts) and ``data.balanced_sampling`` (every label drawn equally often)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from mlflow import MlflowClient
from sklearn.utils.class_weight import compute_class_weight

from csml.data.datamodule import BalancedSampler, LengthBucketSampler, balanced_weights
from csml.models.classifier import SequenceClassifier, imbalance_weights

# 90 / 9 / 1 rows of labels 0, 1, 2.
LABEL_IDS = [0] * 90 + [1] * 9 + [2]


def test_balanced_weights_match_scikit_learn_and_sqrt_inverse_has_mean_one() -> None:
    counts = [90, 9, 1]
    balanced = imbalance_weights(counts, "balanced")
    expected = compute_class_weight("balanced", classes=np.arange(3), y=np.array(LABEL_IDS))
    assert balanced.tolist() == pytest.approx(expected.tolist())
    assert balanced.tolist() == pytest.approx([100 / (3 * 90), 100 / (3 * 9), 100 / 3])

    sqrt_inverse = imbalance_weights(counts, "sqrt_inverse")
    roots = [math.sqrt(100 / (3 * n)) for n in counts]
    assert sqrt_inverse.tolist() == pytest.approx([r / (sum(roots) / 3) for r in roots])
    assert sqrt_inverse.mean().item() == pytest.approx(1.0)


def test_a_label_without_training_rows_counts_as_one() -> None:
    assert imbalance_weights([4, 0], "balanced").tolist() == pytest.approx([5 / 8, 5 / 2])


def test_weighted_loss_is_the_hand_computed_weighted_mean(make_cfg) -> None:
    cfg = make_cfg("model.class_weighting=balanced")
    module = instantiate(cfg.model, labels=["a", "b"], label_counts=[3, 1])
    assert module.loss_fn.weight.tolist() == pytest.approx([4 / 6, 2.0])

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    targets = torch.tensor([0, 1, 1])
    nll = [-torch.log_softmax(row, -1)[t].item() for row, t in zip(logits, targets, strict=True)]
    weights = [4 / 6, 2.0, 2.0]
    by_hand = sum(w * n for w, n in zip(weights, nll, strict=True)) / sum(weights)
    assert module.loss_fn(logits, targets).item() == pytest.approx(by_hand, rel=1e-6)
    assert module.loss_fn(logits, targets).item() != pytest.approx(sum(nll) / 3, rel=1e-3)

    # A buffer of the module (saved with checkpoints), not of the network that is saved for inference.
    assert "loss_fn.weight" in module.state_dict()
    assert not any("loss_fn" in key for key in module.net.state_dict())


def test_class_weighting_multiplies_named_class_weights(make_cfg) -> None:
    cfg = make_cfg("model.class_weighting=balanced", "model.class_weights={b: 3.0}")
    module = instantiate(cfg.model, labels=["a", "b"], label_counts=[3, 1])
    assert module.loss_fn.weight.tolist() == pytest.approx([4 / 6, 6.0])


def test_class_weighting_is_off_by_default(make_cfg) -> None:
    module = instantiate(make_cfg().model, labels=["a", "b"])
    assert module.hparams.class_weighting is None and module.loss_fn.weight is None


@pytest.mark.parametrize(
    ("overrides", "kwargs", "match"),
    [
        (["model.class_weighting=inverse"], {"label_counts": [3, 1]}, "expected null or one of"),
        (["model.class_weighting=balanced"], {}, "needs label_counts"),
        (["model.class_weighting=balanced"], {"label_counts": [3, 1, 2]}, "3 entries for 2 labels"),
    ],
)
def test_class_weighting_errors_name_the_problem(make_cfg, overrides, kwargs, match) -> None:
    with pytest.raises(InstantiationException, match=match):
        instantiate(make_cfg(*overrides).model, labels=["a", "b"], **kwargs)


def test_balanced_sampler_draws_every_label_equally_and_reproducibly() -> None:
    weights = balanced_weights(LABEL_IDS)
    sampler = BalancedSampler(weights, seed=7)
    draws = [i for _ in range(100) for i in sampler]  # 100 epochs of 100 draws
    assert len(sampler) == 100 and len(draws) == 10_000
    shares = Counter(LABEL_IDS[i] for i in draws)
    assert all(abs(shares[label] / len(draws) - 1 / 3) < 0.02 for label in range(3))

    assert list(BalancedSampler(weights, seed=7)) == list(BalancedSampler(weights, seed=7))
    assert list(BalancedSampler(weights, seed=7)) != list(BalancedSampler(weights, seed=8))
    again = BalancedSampler(weights, seed=7)
    again.set_epoch(3)
    fresh = BalancedSampler(weights, seed=7)
    epochs = [list(fresh) for _ in range(4)]
    assert list(again) == epochs[3] and epochs[0] != epochs[1]


def test_balanced_sampler_shards_one_draw_across_replicas() -> None:
    weights = balanced_weights(LABEL_IDS)
    whole = list(BalancedSampler(weights, seed=1))
    shards = [list(BalancedSampler(weights, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shards] == [33, 33, 33]
    assert shards[1] == whole[1:99:3]


def test_length_buckets_keep_the_balanced_draw() -> None:
    lengths = [i % 17 for i in range(len(LABEL_IDS))]
    weights = balanced_weights(LABEL_IDS)
    sampler = LengthBucketSampler(lengths, 8, seed=5, pool_factor=4, weights=weights)
    epochs = [[i for batch in sampler for i in batch] for _ in range(100)]
    assert all(len(epoch) == len(LABEL_IDS) for epoch in epochs)
    shares = Counter(LABEL_IDS[i] for epoch in epochs for i in epoch)
    assert all(abs(shares[label] / 10_000 - 1 / 3) < 0.02 for label in range(3))
    batches = list(LengthBucketSampler(lengths, 8, seed=5, pool_factor=4, weights=weights))
    assert batches == list(LengthBucketSampler(lengths, 8, seed=5, pool_factor=4, weights=weights))
    # Still length-bucketed: within a pool, every batch is a run of sorted lengths.
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)


def test_training_with_both_options_weights_the_loss_and_balances_batches(make_cfg, smoke_overrides) -> None:
    from csml.train import train

    cfg = make_cfg(
        "tracking.register=false",
        *smoke_overrides,
        "model.class_weighting=sqrt_inverse",
        "data.balanced_sampling=true",
    )
    _, objects = train(cfg)
    datamodule, model = objects["datamodule"], objects["model"]
    counts = datamodule.label_counts("train")
    assert sum(counts) == len(datamodule.splits["train"])
    expected = imbalance_weights(counts, "sqrt_inverse")
    assert model.loss_fn.weight.cpu().tolist() == pytest.approx(expected.tolist())

    sampler = datamodule.train_dataloader().batch_sampler  # length_bucketing is on by default
    assert isinstance(sampler, LengthBucketSampler)
    assert sampler.weights == pytest.approx(balanced_weights(datamodule.encoded["train"].label_ids))

    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["state_dict"]["loss_fn.weight"].tolist() == pytest.approx(expected.tolist())
    reloaded = SequenceClassifier.load_from_checkpoint(
        checkpoint, map_location="cpu", optimizer=torch.optim.AdamW
    )
    assert reloaded.loss_fn.weight.tolist() == pytest.approx(expected.tolist())
    assert reloaded.hparams.class_weighting == "sqrt_inverse"

    params = MlflowClient(cfg.tracking.uri).get_run(objects["run_id"]).data.params
    assert params["model.class_weighting"] == '"sqrt_inverse"'  # JSON values
    assert params["data.balanced_sampling"] == "true"
