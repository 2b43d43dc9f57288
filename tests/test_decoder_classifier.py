"""A causal decoder as a text-classifier backbone: last-token pooling, LoRA training, save, pyfunc reload."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import save_tiny_llama

WORDS = "the refund takes five days gold members pay no fee card arrives in a week order ships today"
TEXTS = [
    "refund takes five days [SEP] the refund takes five days",
    "gold members pay no fee [SEP] card arrives in a week",
    "order ships today [SEP] the order ships today",
    "card arrives in a week [SEP] gold members pay a fee",
]
LABELS = ["supported", "unsupported"]
LORA = {
    "r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-dim random Llama and a word-level tokenizer with an EOS but no padding token (as
    SmolLM2's), saved to a folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([WORDS, "[ ] SEP"], trainers.WordLevelTrainer(special_tokens=["<unk>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_decoder"), tokenizer, max_position_embeddings=128)


def test_last_token_pooling_ignores_padding_on_either_side(tiny_decoder: Path) -> None:
    from csml.models.components.encoder_classifier import EncoderClassifier, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_decoder))
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    net = EncoderClassifier.from_pretrained(str(tiny_decoder), len(LABELS), pooling="last").eval()
    alone = net.predict_texts(tokenizer, TEXTS[2:3], max_length=32)
    batched = net.predict_texts(tokenizer, TEXTS, max_length=32)  # TEXTS[2] is the shortest: padded
    tokenizer.padding_side = "left"
    left = net.predict_texts(tokenizer, TEXTS, max_length=32)
    np.testing.assert_allclose(batched[2], alone[0], atol=1e-5)
    np.testing.assert_allclose(left, batched, atol=1e-5)
    with pytest.raises(ValueError, match="pooling must be one of"):
        EncoderClassifier(net.encoder, 2, pooling="first")


def test_lora_decoder_classifier_trains_saves_and_reloads_through_the_pyfunc(
    tiny_decoder: Path, tmp_path: Path
) -> None:
    import lightning as L
    from torch.utils.data import DataLoader

    from csml.models.classifier import SequenceClassifier
    from csml.models.components.encoder_classifier import load_tokenizer
    from csml.tracking.pyfunc import TextClassifierModel

    tokenizer = load_tokenizer(str(tiny_decoder))
    model = SequenceClassifier(
        str(tiny_decoder),
        LABELS,
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-2),
        pooling="last",
        lora=LORA,
        head_lr_multiplier=1.0,
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("net.head.") for n in trainable)
    assert {"net.head.weight", "net.head.bias"} <= trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def collate(rows: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        batch = dict(tokenizer([t for t, _ in rows], padding=True, return_tensors="pt"))
        return {**batch, "labels": torch.tensor([y for _, y in rows])}

    loader = DataLoader(list(zip(TEXTS, [0, 1, 0, 1], strict=True)), batch_size=2, collate_fn=collate)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == trainable  # adapters and head moved; the decoder's own weights did not

    model.eval()
    expected = model.net.predict_texts(tokenizer, TEXTS, max_length=32)
    card = {"labels": LABELS, "label_field": "grounded", "max_length": 32}
    model_dir = model.net.save(tmp_path / "model", tokenizer, card)
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "csml_model.json",
        "encoder",
        "head.pt",
        "tokenizer",
    ]

    loaded = TextClassifierModel().load(model_dir)
    assert loaded.card["pooling"] == "last" and loaded.tokenizer.pad_token == "</s>"
    assert not any("lora" in n for n, _ in loaded.net.named_parameters())  # adapters merged on save
    probs = loaded.predict_proba(TEXTS, batch_size=3)
    assert probs.shape == (len(TEXTS), len(LABELS))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert list(loaded.predict(None, TEXTS)["label"]) == [LABELS[i] for i in expected.argmax(1)]


def test_pair_separator_must_be_what_the_judge_uses(tiny_decoder: Path) -> None:
    from csml.models.components.encoder_classifier import load_tokenizer
    from csml.train import check_pair_separator

    decoder = load_tokenizer(str(tiny_decoder))  # no sep_token: the judge joins with plain-text "[SEP]"
    check_pair_separator(SimpleNamespace(separator="[SEP]"), decoder)
    check_pair_separator(SimpleNamespace(), decoder)  # not a pair source
    with pytest.raises(ValueError, match=r"set data.source.separator='\[SEP\]'"):
        check_pair_separator(SimpleNamespace(separator="\n\nKnowledge:"), decoder)
    encoder = SimpleNamespace(sep_token="</s>")  # RoBERTa-style
    with pytest.raises(ValueError, match=r"set data\.source\.separator='</s>'"):
        check_pair_separator(SimpleNamespace(separator="[SEP]"), encoder)


def test_smollm2_classifier_config_builds_on_any_llama_style_decoder(make_cfg, tiny_decoder: Path) -> None:
    """The config's LoRA targets and pooling fit a Llama-style decoder (the real SmolLM2 GGUF is loaded by
    the slow tier of tests/test_configs.py::test_model_instantiates)."""
    from hydra.utils import instantiate

    cfg = make_cfg("model=smollm2_lora_classifier", f"model.backbone={tiny_decoder}", "model.gguf_file=null")
    assert cfg.model.pooling == "last" and cfg.model.lora.r > 0
    module = instantiate(cfg.model, labels=LABELS)
    adapted = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in module.named_parameters() if ".lora_A" in n
    }
    assert adapted == set(cfg.model.lora.target_modules)
    assert module.net.head.in_features == 32 and module.net.head.weight.requires_grad


@pytest.mark.slow
def test_smollm2_gguf_backbone_saves_merged_and_reloads_through_the_pyfunc(tmp_path: Path) -> None:
    """The real SmolLM2-135M GGUF (~20-45 s to load on 2 CPU cores) as a LoRA classifier backbone: its
    de-quantised weights save as a plain model folder (514 MB) that the pyfunc reads back."""
    from csml.config import compose
    from csml.models.components.encoder_classifier import EncoderClassifier, load_tokenizer
    from csml.tracking.pyfunc import TextClassifierModel

    model_cfg = compose("train", ["model=smollm2_lora_classifier"]).model
    tokenizer = load_tokenizer(model_cfg.backbone, model_cfg.gguf_file)
    assert (
        tokenizer.sep_token is None and tokenizer.pad_token == tokenizer.eos_token
    )  # judge joins with "[SEP]"
    net = EncoderClassifier.from_pretrained(
        model_cfg.backbone, 2, "last", lora=dict(model_cfg.lora), gguf_file=model_cfg.gguf_file
    )
    assert net.encoder.config.max_position_embeddings == 8192
    with torch.no_grad():  # non-zero adapters, so that merging them on save matters
        for name, param in net.encoder.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    expected = net.eval().predict_texts(tokenizer, TEXTS, max_length=1024)
    model_dir = net.save(tmp_path / "model", tokenizer, {"labels": LABELS, "max_length": 1024})

    loaded = TextClassifierModel().load(model_dir)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS, batch_size=3), expected, atol=1e-5)
    assert loaded.tokenizer.pad_token == tokenizer.pad_token


def test_max_length_beyond_the_backbone_positions_is_refused() -> None:
    from csml.train import check_max_length

    check_max_length(512, SimpleNamespace(max_position_embeddings=512))
    check_max_length(4096, SimpleNamespace())  # no position limit declared
    with pytest.raises(ValueError, match=r"data.max_length=1024 exceeds the backbone's 512 positions"):
        check_max_length(1024, SimpleNamespace(max_position_embeddings=512))
