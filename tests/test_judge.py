"""The groundedness judge: claim splitting, perturbations, training pairs, baselines, and scoring answers."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from csml.data.splits import DataValidationError
from csml.judge.baselines import lexical_overlap
from csml.judge.claims import split_claims
from csml.judge.data import SUPPORTED, UNSUPPORTED, GroundednessPairs
from csml.judge.judge import GroundednessJudge
from csml.judge.perturb import PERTURBATIONS, PerturbationPool, perturb
from csml.knowledge import AbcdGuidelines, FaqFile
from csml.metrics.binary import balanced_accuracy, choose_decision_threshold

DATA = Path(__file__).resolve().parents[1] / "data"
BEGIN_HEADER = "model_name\tdata_source\tknowledge\tmessage\tresponse\tbegin_label"
FAQ = [
    ("How long do refunds take?", "Refunds reach your card within 5 business days. Gold members are refunded within 2 days."),
    ("Can I close my account online?", "You can close your account in the app under Settings. There is no closing fee."),
    ("What is the daily ATM limit?", "The daily ATM withdrawal limit is Rs. 25,000 for Classic cards."),
    ("When is the branch open?", "Branches are open Monday to Friday from 9 to 5. Saturday opening is 10 to 2."),
]  # fmt: skip


def test_claims_keep_spans_merge_fragments_and_respect_abbreviations() -> None:
    answer = (
        "Sure! You can return it within 30 days. The fee is Rs. 500, e.g. for shoes.\n- Log in to the app"
    )
    claims = split_claims(answer)
    assert [c.text for c in claims] == [
        "Sure! You can return it within 30 days.",
        "The fee is Rs. 500, e.g. for shoes.",
        "Log in to the app",
    ]
    assert all(answer[c.start : c.end] == c.text for c in claims)
    assert split_claims("") == [] and [c.text for c in split_claims("Hi.")] == ["Hi."]


@pytest.mark.parametrize(
    ("kind", "claim", "expected"),
    [
        ("number", "Refunds take 5 business days.", r"^Refunds take (?!5 )\d+ business days\.$"),
        ("unit", "Refunds take 5 business days.", r"^Refunds take 5 business (hours|weeks|months|years)\.$"),
        ("negation", "You can close your account online.", r"^You cannot close your account online\.$"),
        ("entity", "Refunds are faster for Gold members.", r"^Refunds are faster for Silver members\.$"),
        ("other_passage", "Refunds take 5 business days.", r"^Loans are approved in a week\.$"),
        ("invented_policy", "Refunds take 5 business days.", r"^Refunds take 5 business days\. \w.+\.$"),
        (
            "antonym",
            "Refunds are sent before the end of the month.",
            r"^Refunds are sent (after|before) the (start|end)",
        ),
    ],
)
def test_each_perturbation_changes_what_it_names(kind: str, claim: str, expected: str) -> None:
    pool = PerturbationPool(entities=["Silver"], similar_sentences=["Loans are approved in a week."])
    changed = PERTURBATIONS[kind](claim, random.Random(0), pool)
    assert changed is not None and re.match(expected, changed), changed


def test_perturb_says_when_nothing_applies() -> None:
    pool = PerturbationPool()
    assert PERTURBATIONS["negation"]("Thanks for your patience.", random.Random(0), pool) is None
    assert perturb("Thanks for your patience.", random.Random(0), pool, kinds=["number", "negation"]) is None


@pytest.fixture
def faq_file(tmp_path: Path) -> Path:
    path = tmp_path / "faq.csv"
    rows = ["Question,Answer", *(f'"{q}","{a}"' for q, a in FAQ)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_begin(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = [BEGIN_HEADER, *(f"t5\twow\t{k}\thello\t{r}\t{label}" for k, r, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pairs_keep_passages_apart_and_label_both_ways(faq_file: Path, tmp_path: Path) -> None:
    begin = tmp_path / "begin"
    begin.mkdir()
    write_begin(
        begin / "dev.tsv",
        [("Paris is the capital of France.", "paris is france's capital", "Fully attributable")] * 3
        + [("Paris is the capital of France.", "i love the eiffel tower at night", "Not fully attributable")]
        * 3,
    )
    source = GroundednessPairs(
        knowledge_bases=[AbcdGuidelines(str(DATA / "abcd")), FaqFile(str(faq_file), name="faq")],
        begin_root=str(begin),
        begin_files={"train": ["dev.tsv"]},
        heldout_fraction=0.2,
        seed=3,
    )
    splits = source.load("grounded")
    assert splits.labels == [SUPPORTED, UNSUPPORTED]
    passage_split = {}
    for split in ("train", "validation", "test"):
        for record in splits[split]:
            passage = record.id.rsplit(":", 2)[0]
            assert passage_split.setdefault(passage, split) == split, f"{passage} is in two splits"
    train = splits["train"]
    begin_rows = [r for r in train if r.id.startswith("begin:")]
    assert [r.grounded for r in begin_rows] == [SUPPORTED] * 3 + [UNSUPPORTED] * 3
    assert {r.channel.value for r in begin_rows} == {"chat"}
    kb_rows = [r for r in splits["train"] + splits["test"] if not r.id.startswith("begin:")]
    for record in kb_rows:
        claim, knowledge = record.text.split(" [SEP] ", 1)
        if record.meta["perturbation"] == "other_passage":
            assert claim not in knowledge
        if record.grounded == UNSUPPORTED:
            assert claim not in knowledge, record.meta["perturbation"]
    assert {r.grounded for r in kb_rows} == {SUPPORTED, UNSUPPORTED}


def test_bad_begin_files_name_file_row_and_field(tmp_path: Path) -> None:
    (tmp_path / "cols.tsv").write_text("knowledge\tresponse\nx\ty\n", encoding="utf-8")
    source = GroundednessPairs(begin_root=str(tmp_path), begin_files={"train": ["cols.tsv"]})
    with pytest.raises(DataValidationError, match=r"cols.tsv.*row 1.*begin_label"):
        source.load("grounded")
    write_begin(tmp_path / "empty.tsv", [("Some knowledge.", " ", "Fully attributable")])
    source = GroundednessPairs(begin_root=str(tmp_path), begin_files={"train": ["empty.tsv"]})
    with pytest.raises(DataValidationError, match=r"empty.tsv.*row 2.*'response'"):
        source.load("grounded")
    with pytest.raises(ValueError, match="unknown perturbation"):
        GroundednessPairs(begin_root=str(tmp_path), perturbations=["swap"])


def test_baselines_separate_copies_from_unrelated_text_and_thresholds_can_fail() -> None:
    knowledge = ["Refunds reach your card within 5 business days."] * 2
    overlap = lexical_overlap(
        ["refunds reach your card within 5 business days", "we sell blue shoes"], knowledge
    )
    assert overlap[0] == 1.0 and overlap[1] == 0.0
    positive = np.array([True, True, False, False])
    separable = np.array([0.9, 0.8, 0.2, 0.1])
    assert balanced_accuracy(separable >= choose_decision_threshold(separable, positive), positive) == 1.0
    constant = np.full(4, 0.5)
    assert balanced_accuracy(constant >= choose_decision_threshold(constant, positive), positive) == 0.5


def test_judge_scores_claims_and_highlights_unsupported_ones(smoke_judge: Path) -> None:
    judge = GroundednessJudge.load(str(smoke_judge), threshold=0.0)
    answer = "Refunds reach your card within 5 business days. Gold members get a free phone."
    verdict, no_knowledge = judge.judge_many([answer, answer], [[FAQ[0][1]], []])
    assert [c.claim.text for c in verdict.claims] == [c.text for c in split_claims(answer)]
    assert all(0.0 <= c.score <= 1.0 for c in verdict.claims) and verdict.supported is True
    assert verdict.score == min(c.score for c in verdict.claims)
    assert verdict.claims[0].score == 1.0  # quoted verbatim from the knowledge: supported without the model
    assert verdict.claims[1].score < 1.0
    assert no_knowledge.score is None and no_knowledge.claims == []

    quantised = GroundednessJudge.load(str(smoke_judge), threshold=0.0, int8=True).judge(answer, [FAQ[0][1]])
    assert [c.claim for c in quantised.claims] == [c.claim for c in verdict.claims]
    assert all(abs(q.score - f.score) < 0.2 for q, f in zip(quantised.claims, verdict.claims, strict=True))

    strict = GroundednessJudge.load(str(smoke_judge), threshold=1.01)
    flagged = strict.judge(answer, [FAQ[0][1]])
    assert flagged.supported is False and len(flagged.unsupported) == 2
    assert flagged.highlight(answer) == f"[[{answer[:47]}]] [[{answer[48:]}]]"

    lenient = GroundednessJudge.load(str(smoke_judge), threshold=0.001)
    flipped = lenient.judge("You cannot close your account in the app under Settings.", [FAQ[1][1]])
    assert (
        flipped.score == 0.0
        and flipped.claims[0].evidence == "You can close your account in the app under Settings."
    )


def test_a_model_that_is_not_a_judge_is_refused(smoke_judge: Path) -> None:
    from csml.tracking.pyfunc import TextClassifierModel

    model = TextClassifierModel().load(smoke_judge)
    model.card = {**model.card, "label_field": "intent"}
    with pytest.raises(ValueError, match="not a groundedness judge"):
        GroundednessJudge(model)
    with pytest.raises(FileNotFoundError, match="csml train experiment=judge_groundedness"):
        GroundednessJudge.load("models:/csml-no-such-judge@champion")


def test_courtesy_and_questions_are_not_claims_and_never_unsupported(smoke_judge: Path) -> None:
    judge = GroundednessJudge.load(str(smoke_judge), threshold=1.01)  # every judged claim is unsupported
    answer = "Thanks for reaching out! Refunds take 9 days. Is there anything else I can help you with?"
    verdict = judge.judge(answer, [FAQ[0][1]])
    assert [c.claim.text for c in verdict.claims] == ["Refunds take 9 days."]
    assert [c.text for c in verdict.non_claims] == [
        "Thanks for reaching out!",
        "Is there anything else I can help you with?",
    ]
    only_courtesy = judge.judge("Happy to help! Have a great day!", [FAQ[0][1]])
    assert only_courtesy.score is None and only_courtesy.supported is None and only_courtesy.unsupported == []


def test_an_unset_alias_falls_back_to_the_newest_version_with_the_promote_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from csml.judge.judge import _newest_if_alias_unset
    from csml.tracking.runs import use_store

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    use_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = MlflowClient()
        client.create_registered_model("csml-judge-groundedness")
        for _ in range(2):
            client.create_model_version("csml-judge-groundedness", source=str(tmp_path))
        uri = "models:/csml-judge-groundedness@champion"
        assert _newest_if_alias_unset(uri) == "models:/csml-judge-groundedness/2"  # right after training
        assert "csml promote model_name=csml-judge-groundedness candidate=2" in caplog.text
        client.set_registered_model_alias("csml-judge-groundedness", "champion", "1")
        assert _newest_if_alias_unset(uri) == uri  # once promoted, the alias decides
        missing = "models:/csml-no-such-judge@champion"
        assert _newest_if_alias_unset(missing) == missing  # nothing registered: the load's error explains
    finally:
        use_store(*before)
