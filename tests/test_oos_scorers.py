"""OOS scores: they separate out-of-scope clusters from in-scope ones, survive save/load, pick thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from csml.config import minilm_path
from csml.metrics.oos import choose_oos_threshold, predict_with_oos
from csml.models.components.oos_scorers import load_oos_scorer, make_oos_scorer

LABELS = ["a", "b", "c", "oos"]
DIM = 8


def clusters(rng: np.random.Generator, n: int, far_oos: bool) -> tuple[np.ndarray, np.ndarray]:
    """Three in-scope Gaussian clusters; OOS samples far away (``far_oos``) or drawn from the same clusters."""
    centres = np.eye(3, DIM) * 6.0
    y = np.repeat([0, 1, 2, 3], n)
    x = rng.normal(size=(4 * n, DIM))
    x[: 3 * n] += centres[y[: 3 * n]]
    x[3 * n :] += np.full(DIM, 6.0) if far_oos else centres[rng.integers(0, 3, size=n)]
    return x, y


@pytest.mark.parametrize("name", ["mahalanobis", "knn"])
def test_feature_scores_separate_distinct_clusters_and_not_identical_ones(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    logits = np.zeros((400, len(LABELS)))  # feature scores ignore the logits
    for far_oos, low, high in ((True, 0.99, 1.0), (False, 0.35, 0.65)):
        x_train, y_train = clusters(rng, 200, far_oos)
        x_test, y_test = clusters(rng, 100, far_oos)
        scorer = make_oos_scorer(name, LABELS, "oos").fit(x_train, y_train)
        auroc = roc_auc_score(y_test != 3, scorer.score(x_test, logits))
        assert low <= auroc <= high, (far_oos, auroc)
    card = {"labels": LABELS, "oos_label": "oos", **scorer.save(tmp_path)}
    np.testing.assert_array_equal(
        load_oos_scorer(tmp_path, card).score(x_test, logits), scorer.score(x_test, logits)
    )


def test_logit_scores_prefer_confident_in_scope_logits() -> None:
    logits = np.array([[8.0, 0.0, 0.0, 0.0], [0.5, 0.4, 0.3, 0.0], [0.0, 0.0, 0.0, 9.0]])
    for name in ("softmax", "energy"):
        scores = make_oos_scorer(name, LABELS, "oos").score(np.zeros((3, DIM)), logits)
        assert scores[0] > scores[1], name
    softmax = make_oos_scorer("softmax", LABELS, "oos").score(np.zeros((3, DIM)), logits)
    assert softmax[2] < 0.01  # the OOS column's probability counts against in-scope confidence


def test_unknown_score_and_unfitted_scorer_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="Did you mean 'mahalanobis'"):
        make_oos_scorer("mahalanobis_", LABELS, "oos")
    with pytest.raises(ValueError, match="bad parameters"):
        make_oos_scorer("knn", LABELS, "oos", {"kk": 3})
    with pytest.raises(RuntimeError, match="not fitted"):
        make_oos_scorer("knn", LABELS, "oos").score(np.zeros((1, DIM)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="no in-scope training utterances"):
        make_oos_scorer("mahalanobis", LABELS, "oos").fit(np.zeros((2, DIM)), np.array([3, 3]))


def test_scorer_is_saved_with_the_model_and_used_by_the_pyfunc(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from csml.models.components.encoder_classifier import EncoderClassifier
    from csml.tracking.pyfunc import TextClassifierModel

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=30522
    )
    net = EncoderClassifier(BertModel(config), num_labels=len(LABELS)).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    texts = ["where is my refund", "book a table for two", "what is the weather", "tell me a joke"]
    features, logits = net.encode_texts(tokenizer, texts, max_length=16)
    assert features.shape == (4, 16) and logits.shape == (4, 4)
    np.testing.assert_allclose(
        net.predict_texts(tokenizer, texts, 16), torch.from_numpy(logits).softmax(-1).numpy(), atol=1e-6
    )
    scorer = make_oos_scorer("knn", LABELS, "oos").fit(features[:3], np.array([0, 1, 2]))
    threshold = 0.999  # the three training texts score 1 (their own neighbour), the fourth less
    card = {"labels": LABELS, "max_length": 16, "oos_label": "oos", "oos_threshold": threshold}
    model_dir = net.save(tmp_path / "model", tokenizer, card, oos_scorer=scorer)

    model = TextClassifierModel().load(model_dir)
    assert model.card["oos_score"] == "knn" and model.oos_scorer.name == "knn"
    probs, scores = model.predict_scored(texts)
    np.testing.assert_allclose(scores, scorer.score(features, logits), rtol=1e-4)
    expected = predict_with_oos(probs, LABELS, "oos", threshold, scores=scores)
    assert list(model.predict(None, texts)["label"]) == [LABELS[i] for i in expected]
    assert model.predict(None, texts)["label"][3] == "oos"

    (model_dir / "oos_scorer.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"oos_scorer\.npz is missing"):
        load_oos_scorer(model_dir, model.card)


def test_in_scope_acceptance_policy_keeps_the_share_of_in_scope_it_is_asked_to() -> None:
    # Labels a, b, oos; in-scope samples with max in-scope probability 0.9, 0.7, 0.45, 0.6; OOS samples.
    probs = np.array(
        [[0.9, 0.05, 0.05], [0.1, 0.7, 0.2], [0.35, 0.45, 0.2], [0.6, 0.1, 0.3], [0.4, 0.35, 0.25]]
    )
    y = np.array([0, 1, 0, 0, 2])
    labels = ["a", "b", "oos"]
    # Accepting 3 of 4 in-scope samples: the largest such threshold is 0.6 (only 0.45 is rejected).
    assert choose_oos_threshold(probs, y, labels, "oos", min_in_scope_acceptance=0.75) == 0.6
    # Arbitrary scores: candidate thresholds are the scores themselves, not limited to [0, 1].
    scores = np.array([-1.0, -3.0, -20.0, -2.0, -50.0])
    assert choose_oos_threshold(probs, y, labels, "oos", scores=scores, min_in_scope_acceptance=0.75) == -3.0
    assert choose_oos_threshold(probs, y, labels, "oos", scores=scores, min_in_scope_acceptance=1.0) == -20.0
    # The policy needs no OOS validation samples, the recall policies do.
    assert choose_oos_threshold(probs[:4], y[:4], labels, "oos", min_in_scope_acceptance=1.0) == 0.45
    with pytest.raises(ValueError, match="at most one"):
        choose_oos_threshold(probs, y, labels, "oos", min_oos_recall=0.8, min_in_scope_acceptance=0.9)
