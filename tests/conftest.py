"""Shared fixtures: the real Hydra config, shrunk for CPU and pointed at a temporary MLflow store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig

from csml.config import OFFLINE_ENV, compose, project_root

for key, value in OFFLINE_ENV.items():
    os.environ.setdefault(key, value)


def external_data_dir() -> Path:
    """Non-bundled datasets (../shared/data in a checkout, or $CSML_EXTERNAL_DATA)."""
    return Path(os.environ.get("CSML_EXTERNAL_DATA", project_root().parent / "shared" / "data"))


def save_tiny_llama(folder: Path, tokenizer: Any, **config: Any) -> Path:
    """A random (seed 0) 2-layer, 32-dim Llama over ``tokenizer``, saved with it to ``folder``; ``config``
    overrides ``LlamaConfig`` settings (positions, heads, special-token ids)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "eos_token_id": tokenizer.eos_token_id,
    }
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**settings | config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Composes ``conf/<name>.yaml`` with overrides, writing runs and the MLflow store under tmp_path."""

    def make(*overrides: str, config_name: str = "train") -> DictConfig:
        base = [f"paths.run_dir={tmp_path / 'runs'}", f"paths.output_dir={tmp_path / 'out'}"]
        return compose(config_name, [*base, *overrides])

    return make


@pytest.fixture(scope="session")
def bot_defaults(tmp_path_factory: pytest.TempPathFactory):
    """The reference bot's settings as ``csml serve`` composes them by default (conf/bot/base.yaml)."""
    from csml.bot.settings import BotSettings

    out = tmp_path_factory.mktemp("bot_defaults")
    return BotSettings.from_config(
        compose("serve", [f"paths.run_dir={out / 'runs'}", f"paths.output_dir={out / 'out'}"])
    )


@pytest.fixture(scope="session")
def smoke_overrides() -> tuple[str, ...]:
    """A tiny real slice and a couple of optimiser steps: enough to exercise every stage of a run."""
    return (
        "data.source.limit=48",
        "data.batch_size=8",
        "data.eval_batch_size=32",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
    )


StartBotServer = Callable[..., tuple[str, Path]]


@pytest.fixture(scope="module")
def start_bot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartBotServer]:
    """Starts reference bots (real HTTP on 127.0.0.1) with config overrides; each call returns the bot's URL
    and its reply log. Servers stop at the end of the module; the knowledge-base embedding cache is shared."""
    from csml.bot.app import create_app
    from csml.bot.server import BackgroundServer

    cache = tmp_path_factory.mktemp("kb_cache")
    with ExitStack() as stack:

        def start(*overrides: str) -> tuple[str, Path]:
            out = tmp_path_factory.mktemp("bot")
            cfg = compose(
                "serve",
                [
                    f"paths.run_dir={out / 'runs'}",
                    f"paths.output_dir={out}",
                    f"bot.retrieval.cache_dir={cache}",
                    *overrides,
                ],
            )
            server = stack.enter_context(BackgroundServer(create_app(cfg)))
            return server.url, Path(cfg.bot.reply_log)

        yield start


@pytest.fixture(scope="session")
def smoke_judge(tmp_path_factory: pytest.TempPathFactory, smoke_overrides: tuple[str, ...]) -> Path:
    """Folder of a groundedness judge trained for a couple of steps on knowledge-base pairs from the bundled
    ABCD manual (plumbing for judge and audit tests; its scores mean nothing)."""
    from csml.train import train

    tmp = tmp_path_factory.mktemp("judge")
    cfg = compose(
        "train",
        [
            f"paths.run_dir={tmp / 'runs'}",
            f"paths.output_dir={tmp / 'out'}",
            "experiment=judge_groundedness",
            "~data.source.knowledge_bases.bank_faq",
            "data.source.begin_root=null",
            "data.source.sgd_root=null",
            "data.source.delucionqa_root=null",
            "data.source.heldout_fraction=0.25",
            "data.max_length=96",
            "tracking.register=false",
            *smoke_overrides,
        ],
    )
    return Path(train(cfg)[1]["model_dir"])
