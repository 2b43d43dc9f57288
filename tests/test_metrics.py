"""Behaviour of csml.metrics: exact values on hand-built inputs, slicing, OOS thresholds and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from csml.metrics.calibration import (
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from csml.metrics.classification import compute_classification_metrics, per_class_report
from csml.metrics.oos import choose_oos_threshold, oos_scores, predict_with_oos
from csml.records import Channel, JourneyStage

LABELS = ["a", "b", "c"]
# Six samples: true a,a,a,b,b,c predicted a,a,b,b,c,c with confidence 0.8 each.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def one_hotish(y_pred: np.ndarray, n_classes: int, confidence: float) -> np.ndarray:
    """Probabilities with ``confidence`` on the predicted class and the rest spread evenly."""
    probs = np.full((len(y_pred), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(y_pred)), y_pred] = confidence
    return probs


def test_overall_metrics_match_hand_calculation() -> None:
    probs = one_hotish(Y_PRED, 3, 0.8)
    metrics = compute_classification_metrics(Y_TRUE, probs, LABELS, prefix="val")

    # Per class: a P=1 R=2/3 F1=0.8; b P=1/2 R=1/2 F1=1/2; c P=1/2 R=1 F1=2/3.
    assert metrics["val/accuracy"] == pytest.approx(4 / 6)
    assert metrics["val/macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics["val/macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert metrics["val/weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert metrics["val/ece"] == pytest.approx(0.8 - 4 / 6)
    assert metrics["val/nll"] == pytest.approx(-(4 * math.log(0.8) + 2 * math.log(0.1)) / 6)
    assert metrics["val/count"] == 6.0
    assert set(metrics) == {
        f"val/{name}"
        for name in ("accuracy", "macro_f1", "macro_recall", "weighted_f1", "ece", "nll", "count")
    }
    assert all(type(value) is float for value in metrics.values())


def test_per_class_report_has_a_row_for_every_label_including_unsupported() -> None:
    rows = per_class_report(Y_TRUE, Y_PRED, [*LABELS, "d"])

    assert [row["label"] for row in rows] == ["a", "b", "c", "d"]
    assert rows[0] == {
        "label": "a",
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": 0.8,
        "support": 3,
        "absent": False,
    }
    assert rows[2]["precision"] == 0.5 and rows[2]["recall"] == 1.0
    assert rows[3] == {"label": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "absent": True}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_metrics_agree_with_scikit_learn_on_random_data() -> None:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_recall_fscore_support,
    )

    rng = np.random.default_rng(0)
    labels = [f"l{i}" for i in range(7)]
    y_true = rng.integers(0, 6, size=300)  # label l6 never occurs as a true label
    probs = rng.dirichlet(np.ones(7) * 0.5, size=300)
    y_pred = probs.argmax(axis=1)

    metrics = compute_classification_metrics(y_true, probs, labels, prefix="test")
    assert metrics["test/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["test/macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert metrics["test/weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    assert metrics["test/macro_recall"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(7), zero_division=0
    )
    rows = per_class_report(y_true, y_pred, labels)
    assert [row["precision"] for row in rows] == pytest.approx(precision)
    assert [row["recall"] for row in rows] == pytest.approx(recall)
    assert [row["f1"] for row in rows] == pytest.approx(f1)
    assert [row["support"] for row in rows] == support.tolist()


def test_slices_by_stage_and_channel_have_right_keys_counts_and_order() -> None:
    probs = one_hotish(Y_PRED, 3, 0.8)
    stages = ["support", JourneyStage.AWARENESS, "support", "support", JourneyStage.AWARENESS, "support"]
    channels = [Channel.CHAT] * 6

    metrics = compute_classification_metrics(
        Y_TRUE, probs, LABELS, prefix="test", stages=stages, channels=channels
    )

    stage_keys = [key for key in metrics if key.startswith("test/stage/")]
    # Enum declaration order: awareness before support.
    assert stage_keys == [
        "test/stage/awareness/accuracy",
        "test/stage/awareness/macro_f1",
        "test/stage/awareness/macro_recall",
        "test/stage/awareness/count",
        "test/stage/support/accuracy",
        "test/stage/support/macro_f1",
        "test/stage/support/macro_recall",
        "test/stage/support/count",
    ]
    # awareness: samples 1 (a->a) and 4 (b->c); support: samples 0, 2, 3, 5 (a->a, a->b, b->b, c->c).
    assert metrics["test/stage/awareness/count"] == 2.0
    assert metrics["test/stage/awareness/accuracy"] == 0.5
    # Slice macro-F1 averages over the slice's true labels (a, b), not the wrongly predicted c.
    assert metrics["test/stage/awareness/macro_f1"] == pytest.approx((1.0 + 0.0) / 2)
    assert metrics["test/stage/awareness/macro_recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert metrics["test/stage/support/count"] == 4.0
    assert metrics["test/stage/support/accuracy"] == 0.75
    assert metrics["test/stage/support/macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)
    assert metrics["test/channel/chat/count"] == 6.0
    assert metrics["test/channel/chat/accuracy"] == metrics["test/accuracy"]


def test_single_class_slice_and_unknown_slice_values_give_finite_metrics() -> None:
    probs = one_hotish(np.array([0, 0, 1]), 3, 0.9)
    metrics = compute_classification_metrics(
        np.array([0, 0, 0]), probs, LABELS, prefix="val", stages=["zeta", "alpha", "alpha"]
    )

    assert [key for key in metrics if key.endswith("/count") and "/stage/" in key] == [
        "val/stage/alpha/count",
        "val/stage/zeta/count",
    ]
    assert metrics["val/stage/zeta/accuracy"] == 1.0
    assert metrics["val/stage/zeta/macro_f1"] == 1.0
    assert metrics["val/stage/alpha/macro_f1"] == pytest.approx(2 / 3)  # only label a is true in the slice
    assert all(math.isfinite(value) for value in metrics.values())


def test_ece_is_zero_for_perfectly_calibrated_predictions() -> None:
    # Confidence 0.75 right 3 of 4 times, 0.5 right 1 of 2 times, 1.0 always right.
    probs = np.array(
        [[0.75, 0.25]] * 4 + [[0.5, 0.5]] * 2 + [[1.0, 0.0]] * 2,
    )
    y_true = np.array([0, 0, 0, 1, 0, 1, 0, 0])

    assert expected_calibration_error(probs, y_true, n_bins=10) == 0.0


def test_ece_of_over_confident_predictions_equals_hand_value() -> None:
    # Confidence 0.85 but right 2 of 4 times (gap 0.35); 0.65 but right 2 of 4 times (gap 0.15).
    probs = np.array([[0.85, 0.1, 0.05]] * 4 + [[0.65, 0.3, 0.05]] * 4)
    y_true = np.array([0, 0, 1, 2, 0, 0, 1, 1])

    assert expected_calibration_error(probs, y_true, n_bins=10) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_reliability_bins_are_right_closed() -> None:
    probs = np.array([[0.5, 0.5], [0.6, 0.4], [1.0, 0.0]])
    bins = reliability_bins(probs, np.array([0, 1, 0]), n_bins=2)

    assert bins.edges.tolist() == [0.0, 0.5, 1.0]
    assert bins.count.tolist() == [1, 2]  # 0.5 falls in (0, 0.5], 1.0 in (0.5, 1]
    assert bins.confidence.tolist() == pytest.approx([0.5, 0.8])
    assert bins.accuracy.tolist() == pytest.approx([1.0, 0.5])


def test_nll_stays_finite_when_true_class_has_zero_probability() -> None:
    value = negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1]))

    assert value == pytest.approx(-math.log(1e-15))


# Crafted OOS example. Labels a, b, oos. In-scope samples (max in-scope probability, correct?):
# 0.9 yes, 0.7 yes, 0.45 no, 0.6 yes. OOS samples: argmax already oos; in-scope max 0.5; in-scope max 0.4.
OOS_LABELS = ["a", "b", "oos"]
OOS_PROBS = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.1, 0.7, 0.2],
        [0.35, 0.45, 0.2],
        [0.6, 0.1, 0.3],
        [0.3, 0.2, 0.5],
        [0.5, 0.3, 0.2],
        [0.4, 0.35, 0.25],
    ]
)
OOS_TRUE = np.array([0, 1, 0, 0, 2, 2, 2])


def test_choose_oos_threshold_maximises_mean_of_in_scope_accuracy_and_oos_recall() -> None:
    # Objective: t<=0.4 -> (3/4 + 1/3)/2; (0.4, 0.5] -> (3/4 + 2/3)/2; (0.5, 0.6] -> (3/4 + 1)/2 (best);
    # (0.6, 0.7] -> (2/4 + 1)/2. The default grid's smallest value in (0.5, 0.6] is 0.505.
    assert choose_oos_threshold(OOS_PROBS, OOS_TRUE, OOS_LABELS, "oos") == pytest.approx(0.505)
    # Ties (0.55 and 0.58 both best) go to the smaller threshold, whatever the grid order.
    grid = [0.58, 0.3, 0.55, 0.65]
    assert choose_oos_threshold(OOS_PROBS, OOS_TRUE, OOS_LABELS, "oos", grid=grid) == 0.55


def test_oos_metrics_with_threshold_are_exact() -> None:
    metrics = compute_classification_metrics(
        OOS_TRUE, OOS_PROBS, OOS_LABELS, prefix="test", oos_label="oos", oos_threshold=0.55
    )

    # Predicted OOS: the 0.45 in-scope sample plus all three OOS samples.
    assert metrics["test/oos_recall"] == 1.0
    assert metrics["test/oos_precision"] == 0.75
    assert metrics["test/oos_f1"] == pytest.approx(2 * 3 / (3 + 4))
    assert metrics["test/in_scope_accuracy"] == 0.75
    assert metrics["test/accuracy"] == pytest.approx(6 / 7)
    assert metrics["test/oos_threshold"] == 0.55


def test_oos_metrics_without_threshold_use_argmax() -> None:
    metrics = compute_classification_metrics(OOS_TRUE, OOS_PROBS, OOS_LABELS, prefix="val", oos_label="oos")

    assert metrics["val/oos_recall"] == pytest.approx(1 / 3)
    assert metrics["val/oos_precision"] == 1.0
    assert metrics["val/oos_f1"] == 0.5
    assert metrics["val/in_scope_accuracy"] == 0.75
    assert "val/oos_threshold" not in metrics


def test_no_oos_predicted_gives_zero_precision_not_nan() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    metrics = compute_classification_metrics(
        np.array([0, 2]), probs, OOS_LABELS, prefix="val", oos_label="oos"
    )

    assert metrics["val/oos_precision"] == 0.0
    assert metrics["val/oos_recall"] == 0.0
    assert metrics["val/oos_f1"] == 0.0
    assert all(math.isfinite(value) for value in metrics.values())


def test_oos_scores_without_in_scope_samples_is_zero() -> None:
    scores = oos_scores(np.array([2, 2]), np.array([2, 0]), OOS_LABELS, "oos")

    assert scores == {"in_scope_accuracy": 0.0, "oos_recall": 0.5, "oos_precision": 1.0, "oos_f1": 2 / 3}


def test_predict_with_oos_without_threshold_is_argmax() -> None:
    probs = np.random.default_rng(1).dirichlet(np.ones(5), size=50)
    labels = ["a", "b", "oos", "c", "d"]

    assert np.array_equal(predict_with_oos(probs, labels, "oos"), probs.argmax(axis=1))
    assert np.array_equal(predict_with_oos(probs, labels, "oos", threshold=0.0), probs.argmax(axis=1))
    assert (predict_with_oos(probs, labels, "oos", threshold=1.0) == 2).all()


def test_predict_with_oos_rejects_below_threshold_using_raw_in_scope_probability() -> None:
    # In-scope max 0.45 (not renormalised to 0.45 / 0.8): rejected at 0.5 although it is the argmax.
    probs = np.array([[0.45, 0.35, 0.2], [0.55, 0.25, 0.2]])

    assert predict_with_oos(probs, OOS_LABELS, "oos", threshold=0.5).tolist() == [2, 0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y_true": np.array([0, 1, 2, 0, 1])}, ValueError, "y_true has 5 samples but probs has 4"),
        ({"y_true": np.array([0.0, 1.0, 2.0, 0.0])}, TypeError, "integer class indices; found dtype float64"),
        ({"y_true": np.array([0, 1, 3, 0])}, ValueError, r"indices in \[0, 3\).*found 3"),
        ({"probs": np.array([[2.0, -1.0, 0.0]] * 4)}, ValueError, "negative values"),
        ({"probs": np.array([[2.0, 1.0, 0.5]] * 4)}, ValueError, "rows must sum to 1"),
        ({"probs": np.full((4, 2), 0.5)}, ValueError, "labels has 3 names but probs has 2 columns"),
        ({"labels": ["a", "b", "a"]}, ValueError, "'a' appears more than once"),
        ({"stages": ["support"] * 3}, ValueError, "stages has 3 values but probs has 4 samples"),
        ({"channels": ["chat/email"] * 4}, ValueError, "without '/'"),
        ({"oos_threshold": 0.5}, ValueError, "oos_threshold was given without oos_label"),
        ({"oos_label": "oos"}, ValueError, "'oos' is not one of the 3 labels"),
        ({"prefix": "val/"}, ValueError, "prefix must be"),
        ({"n_bins": 0}, ValueError, "n_bins must be a positive integer"),
    ],
)
def test_bad_inputs_raise_actionable_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    arguments = {
        "y_true": np.array([0, 1, 2, 0]),
        "probs": np.full((4, 3), 1 / 3),
        "labels": LABELS,
        "prefix": "val",
        **kwargs,
    }
    with pytest.raises(error, match=match):
        compute_classification_metrics(
            arguments.pop("y_true"), arguments.pop("probs"), arguments.pop("labels"), **arguments
        )


def test_choose_oos_threshold_needs_both_kinds_of_samples_and_a_valid_grid() -> None:
    with pytest.raises(ValueError, match="no out-of-scope samples"):
        choose_oos_threshold(OOS_PROBS[:4], OOS_TRUE[:4], OOS_LABELS, "oos")
    with pytest.raises(ValueError, match="no in-scope samples"):
        choose_oos_threshold(OOS_PROBS[4:], OOS_TRUE[4:], OOS_LABELS, "oos")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        choose_oos_threshold(OOS_PROBS, OOS_TRUE, OOS_LABELS, "oos", grid=[0.5, 1.5])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        choose_oos_threshold(OOS_PROBS, OOS_TRUE, OOS_LABELS, "oos", grid=[])


def test_threshold_for_a_minimum_oos_recall_is_the_smallest_that_reaches_it() -> None:
    labels = ["a", "b", "oos"]
    # Max in-scope probability of each sample; the true OOS samples have 0.3, 0.6 and 0.9.
    probs = np.array(
        [[0.3, 0.1, 0.6], [0.6, 0.1, 0.3], [0.9, 0.05, 0.05], [0.95, 0.03, 0.02], [0.7, 0.2, 0.1]]
    )
    y_true = np.array([2, 2, 2, 0, 0])
    grid = [0.0, 0.5, 0.65, 0.8, 0.95, 1.0]

    # Sample 0 is OOS by argmax; recall 2/3 needs the 0.6-sample below the threshold: 0.65.
    assert choose_oos_threshold(probs, y_true, labels, "oos", grid, min_oos_recall=0.6) == pytest.approx(0.65)
    assert choose_oos_threshold(probs, y_true, labels, "oos", grid, min_oos_recall=0.3) == pytest.approx(0.0)
    # Recall 1 needs the 0.9 sample rejected, which also rejects the in-scope 0.7 sample.
    assert choose_oos_threshold(probs, y_true, labels, "oos", grid, min_oos_recall=1.0) == pytest.approx(0.95)


def test_decision_threshold_maximises_balanced_accuracy_and_can_fail() -> None:
    from csml.metrics.binary import balanced_accuracy, choose_decision_threshold

    positive = np.array([True, True, False, False, False])
    separable = np.array([0.9, 0.7, 0.6, 0.2, 0.1])
    threshold = choose_decision_threshold(separable, positive)
    assert threshold == 0.7 and balanced_accuracy(separable >= threshold, positive) == 1.0
    useless = np.full(5, 0.5)
    assert balanced_accuracy(useless >= choose_decision_threshold(useless, positive), positive) == 0.5


def test_answer_level_merges_the_claims_of_an_answer_into_its_weakest() -> None:
    from csml.metrics.binary import answer_level

    scores, positive, first = answer_level(
        np.array([0.9, 0.2, 0.8, 0.7, 0.6]),
        np.array([True, False, True, True, True]),
        ["a", "a", None, "b", "b"],
    )
    assert scores.tolist() == [0.2, 0.8, 0.6] and positive.tolist() == [False, True, True]
    assert first.tolist() == [0, 2, 3]


def test_domain_balanced_threshold_lets_every_domain_count_the_same() -> None:
    from csml.metrics.binary import choose_decision_threshold, choose_domain_balanced_threshold

    # A large domain (supported 0.9; unsupported 0.2, a few 0.7) and a small one whose supported scores sit
    # lower (0.6 vs 0.3): pooled, the large domain decides (0.9); balanced, both count the same (0.6).
    scores = np.r_[np.full(50, 0.9), np.full(45, 0.2), np.full(5, 0.7), [0.6, 0.6, 0.3, 0.3]]
    positive = np.r_[np.ones(50, bool), np.zeros(50, bool), [True, True, False, False]]
    domains = ["big"] * 100 + ["small"] * 4
    assert choose_decision_threshold(scores, positive) == 0.9
    assert choose_domain_balanced_threshold(scores, positive, domains) == 0.6


def test_domain_balanced_threshold_judges_answers_by_their_weakest_claim() -> None:
    from csml.metrics.binary import choose_domain_balanced_threshold

    # A supported answer whose weakest claim scores 0.4, and an unsupported one whose wrong claim scores 0.1.
    scores = np.array([0.9, 0.8, 0.4, 0.9, 0.8, 0.1])
    positive = np.array([True, True, True, True, True, False])
    answers = ["good"] * 3 + ["bad"] * 3
    assert choose_domain_balanced_threshold(scores, positive, ["d"] * 6, answers) == 0.4
    # With one more supported answer whose weakest claim is 0.05, no threshold gets both: 0.4 still wins.
    more = choose_domain_balanced_threshold(
        np.r_[scores, 0.05, 0.9], np.r_[positive, True, True], ["d"] * 8, [*answers, "low", "low"]
    )
    assert more == 0.4


def test_evaluate_applies_the_validation_decision_threshold_to_test() -> None:
    from csml.evaluation import evaluate
    from csml.records import Record

    def split(name: str, labels: list[str]) -> list[Record]:
        return [
            Record(
                f"{name}:{i}", "a claim [SEP] knowledge", "t", JourneyStage.SUPPORT, Channel.FAQ, grounded=g
            )
            for i, g in enumerate(labels)
        ]

    truth = ["supported", "supported", "unsupported", "unsupported"]
    # P(supported) of the supported pairs is low but still above that of the unsupported ones.
    probs = np.array([[0.3, 0.7], [0.35, 0.65], [0.2, 0.8], [0.1, 0.9]])
    labels = ["supported", "unsupported"]
    data = {"validation": (split("v", truth), probs), "test": (split("t", truth), probs)}
    argmax = evaluate(data, labels, "grounded", oos_label=None)
    assert argmax.metrics["test/accuracy"] == 0.5 and argmax.decision_threshold is None
    tuned = evaluate(data, labels, "grounded", oos_label=None, positive_label="supported")
    assert tuned.decision_threshold == pytest.approx(0.3)
    assert tuned.metrics["test/accuracy"] == 1.0 and tuned.metrics["val/decision_threshold"] == pytest.approx(
        0.3
    )
    with pytest.raises(ValueError, match="positive_label='yes' needs exactly two labels"):
        evaluate(data, labels, "grounded", oos_label=None, positive_label="yes")


def test_evaluate_chooses_the_decision_threshold_over_the_domains_named_in_record_meta() -> None:
    from csml.evaluation import evaluate
    from csml.records import Record

    # The validation data of test_domain_balanced_threshold_lets_every_domain_count_the_same, as records.
    scores = np.r_[np.full(50, 0.9), np.full(45, 0.2), np.full(5, 0.7), [0.6, 0.6, 0.3, 0.3]]
    truth = [
        *["supported"] * 50,
        *["unsupported"] * 50,
        "supported",
        "supported",
        "unsupported",
        "unsupported",
    ]
    domains = ["big"] * 100 + ["small"] * 4
    records = [
        Record(f"v:{i}", "c [SEP] k", "t", JourneyStage.SUPPORT, Channel.FAQ, grounded=g, meta={"source": d})
        for i, (g, d) in enumerate(zip(truth, domains, strict=True))
    ]
    data = {"validation": (records, np.c_[scores, 1 - scores])}
    labels = ["supported", "unsupported"]
    pooled = evaluate(data, labels, "grounded", positive_label="supported")
    balanced = evaluate(data, labels, "grounded", positive_label="supported", threshold_domain_field="source")
    assert pooled.decision_threshold == pytest.approx(0.9)
    assert balanced.decision_threshold == pytest.approx(0.6)


def test_card_decision_rule_reads_the_card_and_honours_overrides() -> None:
    from csml.evaluation import card_decision_rule, predict_with_decision_threshold

    labels = ["supported", "unsupported"]
    card = {"labels": labels, "decision_threshold": 0.3, "positive_label": "supported"}
    assert card_decision_rule(labels, card) == ("supported", 0.3)
    assert card_decision_rule(labels, card, 0.8) == ("supported", 0.8)
    assert card_decision_rule(labels, card, None) == (None, None)
    assert card_decision_rule(labels, card, positive_label="unsupported") == ("unsupported", 0.3)
    assert card_decision_rule(["a", "b", "c"], {"decision_threshold": None}) == (None, None)  # multi-class
    assert card_decision_rule(labels, None) == (None, None)  # a checkpoint without positive_label: argmax
    assert card_decision_rule(labels, None, positive_label="supported") == ("supported", "auto")
    with pytest.raises(ValueError, match=r"pass evaluation\.positive_label=<label>"):
        card_decision_rule(labels, {"decision_threshold": 0.3})  # a card from before positive_label
    probs = np.array([[0.3, 0.7], [0.29, 0.71]])
    assert predict_with_decision_threshold(probs, labels, "supported", 0.3).tolist() == [0, 1]
    assert predict_with_decision_threshold(probs, labels, "unsupported", 0.3).tolist() == [1, 1]
