"""Retrieval metrics, reply-quality metrics, the response index and the in-batch loss, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csml.response.index import ResponseIndex
from csml.response.metrics import (
    Bleu,
    DistinctN,
    EmbeddingSimilarity,
    Length,
    PlaceholderInvention,
    PlaceholderRecall,
    RougeL,
    gold_ranks,
    placeholder_check,
    retrieval_metrics,
)
from csml.response.module import in_batch_logits, symmetric_info_nce


def test_gold_ranks_recall_and_mrr_exact_values() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.5],  # gold 0 -> rank 1
            [0.9, 0.1, 0.5],  # gold 2 -> rank 2
            [0.9, 0.1, 0.5],  # gold 1 -> rank 3
            [0.2, 0.8, 0.9],  # gold {0, 1}: best gold 0.8 -> rank 2
        ]
    )
    ranks = gold_ranks(scores, [[0], [2], [1], [0, 1]])
    assert ranks.tolist() == [1, 2, 3, 2]
    metrics = retrieval_metrics(ranks, ks=(1, 2))
    assert metrics == pytest.approx(
        {"recall_at_1": 0.25, "recall_at_2": 0.75, "mrr": (1 + 0.5 + 1 / 3 + 0.5) / 4}
    )
    with pytest.raises(ValueError, match="no correct candidate"):
        gold_ranks(scores[:1], [[]])


def test_distinct_n_and_length_exact_values() -> None:
    candidates = ["the cat the cat", "the dog"]
    assert DistinctN(1).score(candidates).value == pytest.approx(3 / 6)  # the, cat, dog of 6 tokens
    assert DistinctN(2).score(candidates).value == pytest.approx(3 / 4)  # the cat, cat the, the dog of 4
    assert Length().score(candidates).value == 3.0
    # a placeholder is one token
    assert Length().score(["order {{Order Number}} shipped"]).value == 3.0


def test_placeholder_fidelity_exact_values() -> None:
    check = placeholder_check(
        "Your {{order number}} and {{Website URL}}", "Order {{Order Number}} of {{Refund Amount}}"
    )
    assert check.kept == ("Order Number",)
    assert check.missing == ("Refund Amount",)
    assert check.invented == ("Website URL",)
    candidates = ["Your {{order number}} and {{Website URL}}", "no slots"]
    references = ["Order {{Order Number}} of {{Refund Amount}}", "Call {{Customer Support Phone Number}}"]
    assert PlaceholderRecall().score(candidates, references).value == pytest.approx(1 / 3)
    invented = PlaceholderInvention()
    result = invented.score(candidates, references)
    assert result.value == pytest.approx(1 / 2)
    assert result.reason == "1 of 2 candidate placeholders invented"
    assert PlaceholderRecall().score(["a"], ["b"]).value == 1.0
    assert PlaceholderInvention(threshold=0.1).passed(result) is False


def test_bleu_rouge_embedding_similarity() -> None:
    reference = ["the parcel will arrive on monday morning"]
    assert Bleu().score(reference, reference).value == pytest.approx(100.0)
    assert RougeL().score(reference, reference).value == pytest.approx(1.0)
    assert RougeL().score(["the parcel arrives"], reference).value == pytest.approx(
        2 * (2 / 3 * 2 / 7) / (2 / 3 + 2 / 7)
    )

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "yes" in t else [1.0, 1.0] for t in texts])

    assert EmbeddingSimilarity(embed).score(["yes", "no"], ["yes", "yes"]).value == pytest.approx(
        (1 + 1 / np.sqrt(2)) / 2
    )
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        Bleu().score(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no candidate"):
        RougeL().score([], [])


def test_response_index_search_and_round_trip(tmp_path) -> None:
    emb = np.eye(3, dtype=np.float32)
    index = ResponseIndex(emb, ["A {{Order Number}}", "B", "C"])
    scores, indices = index.search(np.array([[0.1, 0.9, 0.3]]), k=2)
    assert indices.tolist() == [[1, 2]] and scores[0].tolist() == pytest.approx([0.9, 0.3])
    loaded = ResponseIndex.load(index.save(tmp_path / "index"))
    assert loaded.responses == index.responses and loaded.ids == ["r0", "r1", "r2"]
    assert (tmp_path / "index/responses.jsonl").read_text().splitlines()[0].count('"Order Number"') == 1
    with pytest.raises(ValueError, match="embeddings must be"):
        ResponseIndex(emb, ["only one"])


def test_in_batch_loss_masks_repeated_queries() -> None:
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    logits = in_batch_logits(q, q, torch.tensor(10.0), torch.tensor([0, 0, 1]))
    assert logits[0, 1] < -1e30 and logits[1, 0] < -1e30 and logits[0, 0] == pytest.approx(10.0)
    perfect = symmetric_info_nce(logits)
    assert perfect.item() == pytest.approx(0.0, abs=1e-3)
    unmasked = symmetric_info_nce(in_batch_logits(q, q, torch.tensor(10.0), None))
    assert unmasked.item() == pytest.approx(np.log(2) * 2 / 3, abs=1e-3)


def test_cached_bi_encoder_returns_the_network_s_own_embeddings() -> None:
    from transformers import AutoTokenizer

    from csml.config import minilm_path
    from csml.models.encoder import CachedEmbedder
    from csml.response.components.bi_encoder import BiEncoder, BiEncoderEmbedder

    net = BiEncoder.from_pretrained(minilm_path()).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    texts = ["where is my order {{Order Number}}?", "cancel it", "where is my order {{Order Number}}?"]
    embedder = CachedEmbedder(BiEncoderEmbedder(net, tokenizer, 16))

    vectors = embedder.encode(texts)
    direct = net.encode_texts(["where is my order {{Order Number}}?", "cancel it"], tokenizer, 16)
    np.testing.assert_array_equal(vectors, direct[[0, 1, 0]])  # each distinct text encoded once, bit for bit
    assert set(embedder.vectors) == set(texts)
    np.testing.assert_array_equal(embedder.encode(["cancel it"]), direct[[1]])
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
