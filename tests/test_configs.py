"""Every config in conf/ composes under every command that uses it, and every object it describes instantiates."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from csml.cli import COMMANDS
from csml.config import config_dir, experiment_command, register_resolvers
from csml.records import LABEL_FIELDS

CONF = config_dir()
# Files of a group that its options include (conf/bot/base.yaml, conf/data/base.yaml); not options themselves.
NOT_OPTIONS = {"base"}
CONFIGS = sorted({config_name for _, config_name, _ in COMMANDS.values()})
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml") if p.stem not in NOT_OPTIONS)
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
# Loading SmolLM2's GGUF takes 20-40 s on 2 CPU cores (the fast tier checks its config on a tiny decoder:
# tests/test_decoder_classifier.py).
SLOW_MODELS = {"smollm2_lora_classifier"}
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))


def groups(config_name: str) -> list[str]:
    """Config groups in ``conf/<config_name>.yaml``'s defaults tree (Hydra's own groups left out)."""
    from hydra import compose, initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, return_hydra_config=True)
    return sorted(group for group in cfg.hydra.runtime.choices if not group.startswith("hydra/"))


def options(group: str) -> list[str]:
    return sorted(
        p.stem for p in (CONF / group.partition("@")[0]).glob("*.yaml") if p.stem not in NOT_OPTIONS
    )


GROUPS = {config_name: groups(config_name) for config_name in CONFIGS}
CHOICES = [
    (config_name, group, option)
    for config_name, names in GROUPS.items()
    for group in names
    if group != "experiment"  # an experiment composes under its own command only (below)
    for option in options(group)
]


def targets(node: Any) -> list[str]:
    """Every ``_target_`` in a resolved config container."""
    if isinstance(node, dict):
        own = [str(node["_target_"])] if "_target_" in node else []
        return own + [target for value in node.values() for target in targets(value)]
    if isinstance(node, list):
        return [target for value in node for target in targets(value)]
    return []


def assert_resolves(cfg: DictConfig, config_name: str) -> None:
    """Every interpolation resolves (``???`` values are the user's to fill in) and every ``_target_`` imports."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert cfg.task_name
    assert Path(str(cfg.paths.root_dir)).is_dir()
    for target in targets(resolved):
        assert callable(get_object(target)), target
    if "data" in cfg:
        assert cfg.data.label_field in LABEL_FIELDS
    if config_name in ("train", "train_response"):
        assert cfg.tracking.registered_model_name.startswith("csml-")


def test_every_config_group_is_used_by_a_command() -> None:
    used = {group.partition("@")[0] for names in GROUPS.values() for group in names}
    present = {p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"}
    assert present == used


@pytest.mark.parametrize("config_name", CONFIGS)
def test_command_config_composes_with_its_defaults(make_cfg, config_name: str) -> None:
    cfg = make_cfg(config_name=config_name)
    assert cfg.task_name == config_name
    assert_resolves(cfg, config_name)


@pytest.mark.parametrize(("config_name", "group", "option"), CHOICES)
def test_every_group_option_composes_under_its_command(
    make_cfg, monkeypatch, config_name: str, group: str, option: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # tracking=server reads it
    cfg = make_cfg(f"{group}={option}", config_name=config_name)
    assert_resolves(cfg, config_name)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_under_the_command_it_declares(make_cfg, experiment: str) -> None:
    command = experiment_command(experiment)
    assert command in COMMANDS, f"conf/experiment/{experiment}.yaml declares no csml command"
    config_name = COMMANDS[command][1]
    assert "experiment" in GROUPS[config_name]
    cfg = make_cfg(f"experiment={experiment}", config_name=config_name)
    assert cfg.command == command
    assert cfg.task_name == experiment
    assert_resolves(cfg, config_name)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_cli_refuses_an_experiment_of_another_command_and_names_its_own(experiment: str, capsys) -> None:
    from csml.cli import main

    command = experiment_command(experiment)
    others = [
        name
        for name, (_, config_name, _) in COMMANDS.items()
        if config_name != COMMANDS[command][1] and "experiment" in GROUPS[config_name]
    ]
    assert others
    for other in others:
        with pytest.raises(SystemExit) as exited:
            main([other, f"experiment={experiment}", "trainer.max_epochs=1"])
        assert exited.value.code == 2
        assert f"run `csml {command} experiment={experiment}`" in capsys.readouterr().err


def test_cli_accepts_an_experiment_under_every_command_of_its_config(monkeypatch, capsys) -> None:
    from csml.cli import COMMAND_ENV, main

    monkeypatch.setattr(sys, "argv", ["csml"])
    monkeypatch.delenv(COMMAND_ENV, raising=False)
    main(["sweep", "experiment=intent_banking77", "--cfg", "job"])  # `csml sweep` tunes `csml train` ones
    assert "registered_model_name: csml-intent-banking77" in capsys.readouterr().out


def test_eval_config_composes(make_cfg) -> None:
    cfg = make_cfg("model_uri=models:/x@champion", config_name="eval")
    assert cfg.model_uri == "models:/x@champion"
    assert list(cfg.splits) == ["validation", "test"]


@pytest.mark.parametrize("data", DATA)
def test_data_config_instantiates_and_loads(make_cfg, data: str) -> None:
    cfg = make_cfg(f"data={data}", "data.source.limit=200")  # >= 151 labels: every CLINC150 label is kept
    if "???" in str(cfg.data.source):
        pytest.skip("template config: its paths are the user's to fill in")
    roots = [str(cfg.data.source[key]) for key in ("root", "begin_root") if cfg.data.source.get(key)]
    if missing := [root for root in roots if not Path(root).is_dir()]:
        pytest.skip(f"{missing} absent (dataset not bundled)")
    splits = instantiate(cfg.data.source).load(cfg.data.label_field)
    assert all(0 < len(splits[split]) <= 200 for split in ("train", "validation", "test"))
    if cfg.data.oos_label is not None:
        assert cfg.data.oos_label in splits.labels


@pytest.mark.parametrize(
    "model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_MODELS else m for m in MODELS]
)
def test_model_instantiates(make_cfg, model: str) -> None:
    """Also loads each backbone for real (smollm2_lora_classifier: the SmolLM2 GGUF, slow tier) and
    classifies two texts of different lengths with its tokenizer, as training and the pyfunc do."""
    from csml.models.components.encoder_classifier import load_tokenizer

    cfg = make_cfg(f"model={model}")
    module = instantiate(cfg.model, labels=["refund", "delivery", "oos"])
    assert module.net.head.out_features == 3
    tokenizer = load_tokenizer(cfg.model.backbone, cfg.model.get("gguf_file"))
    probs = module.net.eval().predict_texts(
        tokenizer, ["refund please", "where is my card [SEP] it ships"], 32
    )
    assert probs.shape == (2, 3)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    if cfg.model.lora:
        assert trainable < 0.2 * total
    else:
        assert trainable == total


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_callbacks_logger_instantiate(make_cfg, trainer: str) -> None:
    cfg = make_cfg(f"trainer={trainer}", "trainer.accelerator=cpu", "trainer.precision=32-true")
    if "FSDP" in str(cfg.trainer.get("strategy")):
        pytest.skip("Lightning's FSDP strategy needs a CUDA accelerator (composition is checked above)")
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    logger = instantiate(cfg.logger, run_id=None)
    built = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    assert built.max_epochs == cfg.trainer.max_epochs
    assert {type(c).__name__ for c in callbacks} == {
        "ModelCheckpoint",
        "EarlyStopping",
        "LearningRateMonitor",
    }


@pytest.mark.parametrize("override", ["trainer.bogus=1", "data=nope", "trainer.max_epochs=[oops"])
def test_cli_exits_2_on_overrides_that_do_not_compose(override: str, capsys) -> None:
    from csml.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["train", override])
    assert exited.value.code == 2
    assert "config error" in capsys.readouterr().err


def test_class_weights_weigh_named_labels_and_reject_unknown_ones(make_cfg) -> None:
    cfg = make_cfg("model.class_weights={oos: 3.0}")
    module = instantiate(cfg.model, labels=["refund", "oos"])
    assert module.loss_fn.weight.tolist() == [1.0, 3.0]
    with pytest.raises(InstantiationException, match="does not have"):
        instantiate(cfg.model, labels=["refund", "delivery"])
