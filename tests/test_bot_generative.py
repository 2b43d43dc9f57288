"""The generative reference bot over real HTTP: plumbing only, with a tiny random causal LM.

The test model (a two-layer Llama with random weights and a word-level tokenizer trained here on the ABCD
policy manual) writes nonsense quickly; it checks that passages reach the prompt, answers come back with
their contexts, generation is bounded and serialised, and fault injection works on generated text. It is
never a result. The slow test runs the real SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import save_tiny_llama
from csml.bot.generation import CausalLMGenerator, _cut
from csml.config import compose

REFUND_QUESTION = "How do I get a refund for my order?"
UNANSWERABLE = "What is the capital of France?"
MAX_NEW_TOKENS = 6
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_causal_lm(directory: Path) -> Path:
    """A random 2-layer Llama and a word-level tokenizer with a ChatML template, saved to ``directory``."""
    from hydra.utils import instantiate
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    kb = instantiate(compose("serve", ["paths.output_dir=/tmp"]).bot.kb).load()
    corpus = [entry.passage for entry in kb] + [REFUND_QUESTION, UNANSWERABLE, "Context Question"]
    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|im_end|>"
    )
    fast.chat_template = CHATML
    return save_tiny_llama(
        directory,
        fast,
        vocab_size=fast.vocab_size,
        num_attention_heads=2,
        max_position_embeddings=1024,
        pad_token_id=fast.pad_token_id,
    )


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llama"))


def generator_overrides(model: Path, *more: str) -> tuple[str, ...]:
    return (
        "generator=smollm2",
        f"bot.generator.model={model}",
        "bot.generator.gguf_file=null",
        f"bot.generator.max_new_tokens={MAX_NEW_TOKENS}",
        "bot.generator.max_context_tokens=200",
        *more,
    )


@pytest.fixture(scope="module")
def generative_bot(start_bot_server: Callable[..., tuple[str, Path]], tiny_lm: Path) -> tuple[str, Path]:
    return start_bot_server(*generator_overrides(tiny_lm))


def ask(url: str, text: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def logged(path: Path) -> dict[str, dict]:
    return {r["request_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_generated_answer_comes_from_the_model_with_its_retrieved_contexts(generative_bot, tiny_lm) -> None:
    url, reply_log = generative_bot
    health = httpx.get(f"{url}/healthz").json()
    assert health["answer_mode"] == "generative"
    assert health["generator"] == str(tiny_lm)

    response = ask(url, REFUND_QUESTION)
    assert response.status_code == 200
    body = response.json()
    ext = body["csml"]
    assert not ext["abstained"] and len(ext["contexts"]) == 3
    assert ext["sources"][0]["id"].startswith("abcd:refund")

    # The same generator, given the contexts the bot returned, writes the same (greedy) answer.
    direct = CausalLMGenerator(str(tiny_lm), max_new_tokens=MAX_NEW_TOKENS, max_context_tokens=200)
    expected = direct.generate(REFUND_QUESTION, ext["contexts"])
    assert expected.text and body["choices"][0]["message"]["content"] == expected.text
    assert expected.completion_tokens <= MAX_NEW_TOKENS
    # The prompt holds the instructions, the numbered passages within the budget, and the question.
    system, user = direct.prompt(REFUND_QUESTION, ext["contexts"])
    assert "only the context" in system["content"] and "I don't know" in system["content"]
    assert user["content"].startswith(f"Context:\n{ext['contexts'][0].split()[0]} ")  # best passage first
    assert user["content"].endswith(f"Question: {REFUND_QUESTION}") and "[1]" not in user["content"]
    passages = direct.context(ext["contexts"])
    assert len(direct.tokenizer(passages, add_special_tokens=False)["input_ids"]) <= 200

    record = logged(reply_log)[body["id"]]
    assert record["grounded_answer"] == expected.text and not record["corrupted"]
    assert record["generation"]["completion_tokens"] == expected.completion_tokens
    assert record["generation"]["finish_reason"] in ("stop", "length")


def test_anti_loop_decoding_never_repeats_an_ngram_and_cuts_at_stop_strings(tiny_lm) -> None:
    plain = CausalLMGenerator(str(tiny_lm), max_new_tokens=40)
    guarded = CausalLMGenerator(str(tiny_lm), max_new_tokens=40, no_repeat_ngram_size=2)
    answer = guarded.generate(REFUND_QUESTION, ["Refunds take 5 days."]).text
    ids = guarded.tokenizer(answer, add_special_tokens=False)["input_ids"]
    pairs = list(itertools.pairwise(ids))
    assert len(pairs) == len(set(pairs))  # no bigram twice
    first = plain.generate(REFUND_QUESTION, ["Refunds take 5 days."]).text
    stop = first.split()[len(first.split()) // 2]  # a word the greedy answer is known to hold
    cut = CausalLMGenerator(str(tiny_lm), max_new_tokens=40, stop=[stop]).generate(
        REFUND_QUESTION, ["Refunds take 5 days."]
    )
    assert stop not in cut.text and first.startswith(cut.text) and cut.finish_reason == "stop"
    assert _cut("One. Two! Three? Four.", [], 3) == ("One. Two! Three?", True)
    assert _cut("No end in sight", ["\nQuestion:"], 3) == ("No end in sight", False)


def test_unanswerable_question_abstains_without_generating(generative_bot) -> None:
    url, reply_log = generative_bot
    body = ask(url, UNANSWERABLE).json()
    assert body["csml"]["abstained"] and "don't know" in body["choices"][0]["message"]["content"]
    assert logged(reply_log)[body["id"]]["generation"] is None


def test_concurrent_requests_are_serialised_and_the_server_stays_responsive(generative_bot) -> None:
    url, _ = generative_bot
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: ask(url, REFUND_QUESTION), range(6)))
        assert httpx.get(f"{url}/healthz").status_code == 200
    texts = {r.json()["choices"][0]["message"]["content"] for r in answers}
    assert [r.status_code for r in answers] == [200] * 6 and len(texts) == 1


def test_fabrication_corrupts_the_generated_answer_and_logs_it(start_bot_server, tiny_lm) -> None:
    url, reply_log = start_bot_server(*generator_overrides(tiny_lm, "bot.faults.fabricate_rate=1.0"))
    body = ask(url, REFUND_QUESTION).json()
    record = logged(reply_log)[body["id"]]
    assert body["csml"]["corrupted"] and record["corrupted"] and record["corruptions"]
    assert record["grounded_answer"] and record["reply"] != record["grounded_answer"]
    assert body["choices"][0]["message"]["content"] == record["reply"]


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be in [1, 1024]"),
        ({"max_new_tokens": 5000}, "max_new_tokens must be in [1, 1024]"),
        ({"user_template": "{question}"}, "must contain ['{context}']"),
        ({"top_p": 0}, "top_p in (0, 1]"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size and max_sentences >= 0"),
        ({"max_sentences": -2}, "no_repeat_ngram_size and max_sentences >= 0"),
    ],
)
def test_bad_generation_settings_fail_with_a_readable_error(kwargs: dict, says: str) -> None:
    with pytest.raises(ValueError) as error:
        CausalLMGenerator("any-model", **kwargs)
    assert says in str(error.value)


def test_the_registered_response_model_is_a_generator_option(make_cfg) -> None:
    from csml.bot.generation import ResponseModelGenerator
    from csml.bot.settings import BotSettings

    cfg = make_cfg("generator=response_model", config_name="serve")
    generator = BotSettings.from_config(cfg).generator
    assert isinstance(generator, ResponseModelGenerator) and generator.model is None  # loaded at serve time
    assert (
        generator.name.startswith("models:/csml-response-generative-bitext")
        and generator.tracking_uri == cfg.tracking.uri
    )
    with pytest.raises(ValueError, match="max_new_tokens"):
        ResponseModelGenerator("models:/x/1", max_new_tokens=0)


def test_a_generator_target_that_is_not_a_generator_is_refused(make_cfg) -> None:
    from csml.bot.settings import BotSettings

    cfg = make_cfg("generator=smollm2", "bot.generator._target_=builtins.dict", config_name="serve")
    with pytest.raises(TypeError, match=r"is not a csml\.bot\.generation\.Generator"):
        BotSettings.from_config(cfg)


@pytest.mark.slow
def test_smollm2_answers_a_policy_question_from_its_contexts(start_bot_server) -> None:
    url, reply_log = start_bot_server("generator=smollm2", "bot.generator.max_new_tokens=48")
    body = ask(url, REFUND_QUESTION).json()
    text = body["choices"][0]["message"]["content"]
    record = logged(reply_log)[body["id"]]
    assert not body["csml"]["abstained"] and len(body["csml"]["contexts"]) == 3
    assert "refund" in text.lower() and 0 < record["generation"]["completion_tokens"] <= 48
