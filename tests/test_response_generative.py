"""Generative response models on a tiny random Llama and a tokenizer trained here (no test result is a
quality figure): prompts, batches, generation, and the whole train -> MLflow -> fresh-process pyfunc path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import save_tiny_llama
from csml.records import Channel, JourneyStage, Record

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
WORDS = " ".join(
    [
        "hello where is my order [order_number] please track refund account card payment transfer money",
        "thank you you can check the status in your profile section agent customer system user assistant",
        "intent stage channel support chat track_order balance",
    ]
)


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-dim random Llama and a word-level tokenizer trained on a few words, saved to a folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=specials)
    tok.train_from_iterator([WORDS, "[ ] { } : | . , ? ! < >"], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials[3:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return save_tiny_llama(
        tmp_path_factory.mktemp("tiny_llama"),
        tokenizer,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )


def _record(text: str, response: str, context: tuple[str, ...] = (), intent: str | None = None) -> Record:
    return Record(
        id="t:0",
        text=text,
        source="t",
        stage=JourneyStage.SUPPORT,
        channel=Channel.CHAT,
        intent=intent,
        context=context,
        response=response,
    )


def test_prompt_has_control_line_history_roles_and_slot_tokens() -> None:
    from csml.response.generative.prompts import PromptFormat, record_turns

    record = _record("and {{Order Number}}?", "r", ("hi", "hello, how can I help?"), intent="track_order")
    assert [t["role"] for t in record_turns(record)] == ["user", "assistant", "user"]
    messages = PromptFormat(system="Be kind.").messages(
        record_turns(record), {"intent": "track_order", "stage": "support", "channel": None}
    )
    assert messages[0] == {"role": "system", "content": "Be kind.\n[intent: track_order | stage: support]"}
    assert messages[-1] == {"role": "user", "content": "and [order_number]?"}
    short = PromptFormat(max_history_turns=0).messages(record_turns(record), {})
    assert [m["role"] for m in short] == ["system", "user"]
    with pytest.raises(ValueError, match="end with a user message"):
        PromptFormat().messages([{"role": "assistant", "content": "hi"}], {})
    with pytest.raises(ValueError, match="message 0"):
        PromptFormat().messages([{"role": "bot", "content": "hi"}], {})


def test_batches_mask_the_prompt_and_end_replies_with_eos(tiny_generator: Path) -> None:
    from transformers import AutoTokenizer

    from csml.response.data import PairSource
    from csml.response.generative.datamodule import IGNORE_INDEX, GenerationDataModule

    tokenizer = AutoTokenizer.from_pretrained(tiny_generator)
    data = GenerationDataModule(
        PairSource(), tokenizer, query_max_length=6, response_max_length=4, prompt={"max_history_turns": 2}
    )
    batch = data.collate(
        [_record("where is my order", "track [x] in your profile section"), _record("hello", "thank you")]
    )
    labels, ids = batch["labels"], batch["input_ids"]
    assert ids.shape == labels.shape and batch["attention_mask"][1].sum() < ids.shape[1]
    prompt_len = 6  # the prompt is cut to its last 6 tokens
    assert (labels[0, :prompt_len] == IGNORE_INDEX).all()
    reply = labels[0, prompt_len:].tolist()
    assert len(reply) == 4 and reply[-1] == tokenizer.eos_token_id  # 3 reply tokens + EOS
    assert reply[:3] == ids[0, prompt_len:].tolist()[:3]
    seq2seq = GenerationDataModule(
        PairSource(), tokenizer, query_max_length=6, response_max_length=4, seq2seq=True
    )
    pair = seq2seq.collate([_record("hello", "thank you")])
    assert pair["labels"].tolist() == [
        tokenizer("thank you", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ]


def test_quantized_loading_without_cuda_says_what_is_missing() -> None:
    import torch

    from csml.response.generative.loading import quantization_config

    assert quantization_config(None) is None
    with pytest.raises(ValueError, match="must be 4, 8 or null"):
        quantization_config(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"needs .*a CUDA GPU.*quantization_bits=null"):
            quantization_config(4)


def test_pyfunc_input_forms() -> None:
    import numpy as np
    import pandas as pd

    from csml.response.generative.pyfunc import conversations

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert conversations("where is it?") == [([{"role": "user", "content": "where is it?"}], {})]
    assert conversations([*messages, {"role": "user", "content": "x"}])[0][0][1]["role"] == "assistant"
    frame = pd.DataFrame({"text": ["a", None], "messages": [None, messages], "stage": ["support", None]})
    parsed = conversations(frame)
    assert parsed[0] == ([{"role": "user", "content": "a"}], {"stage": "support"})
    assert parsed[1][0] == messages
    as_array = pd.DataFrame({"messages": [np.array(messages, dtype=object)]})
    assert conversations(as_array)[0][0] == messages
    with pytest.raises(ValueError, match="'text' or 'messages'"):
        conversations(pd.DataFrame({"query": ["a"]}))
    with pytest.raises(ValueError, match="row 0"):
        conversations(pd.DataFrame({"text": [" "]}))


def _write_pairs(path: Path) -> None:
    rows = []
    for i in range(40):
        rows.append(
            {
                "q": f"where is my order {{{{Order Number}}}} please {i}",
                "a": f"you can track {{{{Order Number}}}} in your profile section {i}",
                "history": ["hello", "hello, how can i help?"] if i % 2 else [],
                "intent": "track_order" if i % 3 else "refund",
                "channel": "chat" if i % 4 else "email",
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_generative_pipeline_trains_scores_registers_and_serves_in_a_fresh_process(
    tiny_generator: Path, make_cfg, tmp_path: Path
) -> None:
    import mlflow

    from csml.response.train import train_response

    pairs = tmp_path / "pairs.jsonl"
    _write_pairs(pairs)
    cfg = make_cfg(
        "experiment=response_generative_bitext",
        "response_data=user_dialogues",
        f"response_data.source.files=[{pairs}]",
        "response_data.source.columns.text=q",
        "response_data.source.columns.response=a",
        "+response_data.source.columns.context=history",
        "+response_data.source.columns.intent=intent",
        "+response_data.source.columns.channel=channel",
        "response_data.batch_size=4",
        f"response_model.name_or_path={tiny_generator}",
        "response_model.gguf_file=null",
        "response_model.package=null",
        "response_model.lora.r=4",
        "response_model.generation.max_new_tokens=6",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        "evaluation.max_samples=6",
        "evaluation.splits=[validation,test]",
        "tracking.registered_model_name=csml-generative-test",
        config_name="train_response",
    )
    metrics, objects = train_response(cfg)

    for prefix in ("test/", "test/baseline/"):
        assert 0.0 <= metrics[f"{prefix}response/rouge_l"] <= 1.0
        assert -1.0 <= metrics[f"{prefix}response/embedding_similarity"] <= 1.0
        assert 0.0 <= metrics[f"{prefix}response/placeholder_recall"] <= 1.0
        assert metrics[f"{prefix}response/mean_logprob"] <= 0.0
    assert metrics["test/pairs"] == 6.0
    assert 0.0 <= metrics["val/response/rouge_l"] <= 1.0  # the classifiers' namespace: val/, test/
    assert {k.split("/")[0] for k in metrics} == {"val", "test"}
    run = mlflow.MlflowClient().get_run(objects["run_id"])
    assert run.data.tags["csml.model_kind"] == "response_generative"
    assert "val/loss" in run.data.metrics and "train/loss" in run.data.metrics
    assert json.loads((Path(cfg.paths.output_dir) / "evaluation/metrics.json").read_text()) == metrics
    logged = mlflow.MlflowClient().list_artifacts(objects["run_id"], "checkpoints")
    assert [Path(a.path).suffix for a in logged] == [".ckpt"]
    rows = [
        json.loads(line) for line in (Path(cfg.paths.output_dir) / "evaluation/test_generations.jsonl").open()
    ]
    assert len(rows) == 6 and {"model", "baseline", "reference", "context", "stage", "channel"} <= set(
        rows[0]
    )
    assert rows[0]["model"]["num_tokens"] <= 6
    card = json.loads((objects["model_dir"] / "card.json").read_text())
    assert card["placeholders"] == ["Order Number"] and card["base"]["name_or_path"] == str(tiny_generator)
    assert (objects["model_dir"] / "adapter/adapter_model.safetensors").is_file()
    assert not (objects["model_dir"] / "adapter/model.safetensors").exists()  # adapter only, no base weights

    script = (
        "import mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri({cfg.tracking.uri!r})\n"
        "m = mlflow.pyfunc.load_model('models:/csml-generative-test/1')\n"
        "conv = [{'role': 'user', 'content': 'hello'}, {'role': 'assistant', 'content': 'hi'},"
        " {'role': 'user', 'content': 'where is my order?'}]\n"
        "out = m.predict(pd.DataFrame({'messages': [conv], 'text': [None]}), params={'max_new_tokens': 3})\n"
        "out2 = m.predict(pd.DataFrame({'text': ['refund please'], 'stage': ['support']}))\n"
        "print(out.iloc[0].to_json()); print(out2.iloc[0].to_json())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert set(first) == {"response", "score", "num_tokens", "placeholders"}
    assert first["num_tokens"] <= 3 and first["score"] <= 0.0 and isinstance(first["response"], str)
    assert second["num_tokens"] <= 6

    # The reference bot's optional generator: the registered model answers a customer's message.
    from csml.bot.generation import ResponseModelGenerator

    generator = ResponseModelGenerator(
        "models:/csml-generative-test/1", tracking_uri=cfg.tracking.uri, max_new_tokens=4
    )
    answer = generator.generate("where is my order?", ["Orders ship within 2 days."])
    assert (
        isinstance(answer.text, str)
        and answer.completion_tokens <= 4
        and answer.finish_reason in ("stop", "length")
    )
