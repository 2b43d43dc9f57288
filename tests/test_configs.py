"""Every config in conf/ composes, and every object it describes instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from csml.config import config_dir
from csml.records import LABEL_FIELDS

CONF = config_dir()
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
# Loading SmolLM2's GGUF takes 20-40 s on 2 CPU cores (the fast tier checks its config on a tiny decoder:
# tests/test_decoder_classifier.py).
SLOW_MODELS = {"smollm2_lora_classifier"}
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(make_cfg, experiment: str) -> None:
    if experiment.startswith("response_generative"):  # switches csml train-response's config groups
        cfg = make_cfg(f"experiment={experiment}", config_name="train_response")
        assert cfg.response_model._target_.startswith("csml.response.generative.")
    else:
        cfg = make_cfg(f"experiment={experiment}")
        assert cfg.data.label_field in LABEL_FIELDS
    assert cfg.task_name == experiment
    assert cfg.tracking.registered_model_name.startswith("csml-")


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


def test_eval_config_composes(make_cfg) -> None:
    cfg = make_cfg("model_uri=models:/x@champion", config_name="eval")
    assert cfg.model_uri == "models:/x@champion"
    assert list(cfg.splits) == ["validation", "test"]


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
