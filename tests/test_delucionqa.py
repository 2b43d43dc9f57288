"""DelucionQA reader and the offline decoding of its token-id contexts, on a small synthetic release built the
way the real one is: contexts as ids into an alphabetically sorted, lower-cased vocabulary."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from csml.judge import delucionqa

COLUMNS = ["sample_id", "Question", "Context", "Answer", "Answer_sent_tokenized", "Sentence_labels", "Label"]
PARTS = ["brake", "mirror", "seat", "wiper", "horn", "light", "door", "window", "radio", "heater"]
ACTIONS = ["press", "turn", "pull", "hold", "push", "lift"]
PLACES = ["dashboard", "console", "steering", "panel", "roof", "floor"]


def _manual(rng: random.Random) -> list[str]:
    return [
        f"to use the {part} , {action} the {place} switch ."
        for part in PARTS
        for action, place in [(rng.choice(ACTIONS), rng.choice(PLACES))]
    ]


def write_release(root: Path, samples: int = 240, seed: int = 0) -> dict[int, str]:
    """Writes train/dev/test CSVs and returns the true id -> token vocabulary."""
    rng = random.Random(seed)
    manual = _manual(rng)
    words = sorted({t for sentence in manual for t in sentence.split()} | {"how", "do", "i", "use", "you"})
    vocabulary = {3 * n + 7: w for n, w in enumerate(words)}  # sorted, with gaps, as the release's ids are
    ids = {w: i for i, w in vocabulary.items()}
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        with (root / delucionqa.FILES[split]).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            for n in range(samples // 3):
                shown = rng.sample(range(len(manual)), 2)
                part = PARTS[shown[0]]
                hallucinated = n % 3 == 0
                answer = manual[shown[0]].replace(" ,", ",").replace(" .", ".").capitalize()
                if hallucinated:
                    answer = answer.replace(part, PARTS[(shown[0] + 1) % len(PARTS)], 1)
                context = [ids[t] for k in shown for t in manual[k].split()]
                writer.writerow(
                    {
                        "sample_id": f"{split}_{n}",
                        "Question": f"How do I use the {part}?",
                        "Context": str(context),
                        "Answer": answer,
                        "Answer_sent_tokenized": str([f"R1:  {answer}"]),
                        "Sentence_labels": str({"R1": "Neither" if hallucinated else "Supported"}),
                        "Label": "Hallucinated" if hallucinated else "Not Hallucinated",
                    }
                )
    with (root / delucionqa.FILES["unanswerable"]).open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["Question", "Context", "Answer"])
        writer.writeheader()
        writer.writerow({"Question": "Is there a sunroof?", "Context": str([ids["roof"]]), "Answer": "No."})
    return vocabulary


def test_decoding_recovers_the_vocabulary_and_the_contexts(tmp_path: Path) -> None:
    truth = write_release(tmp_path)
    splits, learned = delucionqa.load(tmp_path)
    used = {i for samples in splits.values() for s in samples for i in s.context_ids}
    assert sum(learned.get(i) == truth[i] for i in used) / len(used) >= 0.9
    assert all(truth[i] == w for i, w in learned.items())  # nothing decoded wrongly
    sample = splits["test"][1]
    assert delucionqa.decode(sample.context_ids, learned).startswith("to use the ")
    assert delucionqa.coverage(splits["test"], learned) >= 0.9
    assert splits["unanswerable"][0].sample_id == "unanswerable_0"
    assert splits["unanswerable"][0].hallucinated is None


def test_labelled_pairs_per_answer_and_per_sentence(tmp_path: Path) -> None:
    write_release(tmp_path)
    splits, vocabulary = delucionqa.load(tmp_path)
    claims, knowledge, supported = delucionqa.labelled_pairs(splits["test"], vocabulary)
    assert len(claims) == len(knowledge) == len(supported) == len(splits["test"])
    assert supported.tolist() == [not s.hallucinated for s in splits["test"]]
    sentences, _, sentence_supported = delucionqa.labelled_pairs(splits["test"], vocabulary, sentences=True)
    assert sentences[1] == splits["test"][1].answer  # one sentence per synthetic answer
    assert sentence_supported.tolist() == supported.tolist()
    assert delucionqa.labelled_pairs(splits["unanswerable"], vocabulary)[0] == []  # no labels: no pairs


def test_decode_drops_unknown_ids_and_reattaches_punctuation() -> None:
    vocabulary = {1: ",", 2: ".", 5: "brake", 9: "press", 12: "the"}
    assert delucionqa.decode((9, 12, 99, 5, 1, 9, 2), vocabulary) == "press the brake, press."


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("Context", "[1, 'two']", "Context must be a list of integer token ids"),
        ("Label", "Maybe", "Label must be 'Hallucinated' or 'Not Hallucinated'"),
        ("Sentence_labels", "{'R2': 'Supported'}", "sentence 'R1' has no entry in Sentence_labels"),
    ],
)
def test_bad_rows_name_the_file_line_and_field(tmp_path: Path, column: str, value: str, message: str) -> None:
    write_release(tmp_path, samples=30)
    path = tmp_path / "test.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    rows[2][column] = value
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=message) as error:
        delucionqa.read_split(tmp_path, "test")
    assert "test.csv, line 4 (sample test_2)" in str(error.value)


def test_missing_file_and_column_are_explained(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CSML_EXTERNAL_DATA"):
        delucionqa.read_split(tmp_path, "test")
    (tmp_path / "test.csv").write_text("Question,Answer\nq,a\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Context'\]"):
        delucionqa.read_split(tmp_path, "test")


def test_judge_training_pairs_from_train_and_dev_only(tmp_path: Path) -> None:
    from csml.judge.data import SUPPORTED, UNSUPPORTED, GroundednessPairs

    write_release(tmp_path)
    splits = GroundednessPairs(delucionqa_root=str(tmp_path), window_words=12)._read()
    assert splits["test"] == []  # DelucionQA's test split stays held out
    samples, _ = delucionqa.load(tmp_path)
    for split in ("train", "validation"):
        records = [row.record for row in splits[split]]
        expected = [SUPPORTED if not s.hallucinated else UNSUPPORTED for s in samples[split]]
        assert [r.grounded for r in records] == expected
        assert {r.meta["domain"] for r in records} == {"rag_answer"}
    claim, window = splits["train"][1].record.text.split(" [SEP] ")
    assert claim == samples["train"][1].answer
    assert len(window.split()) <= 12 and "switch" in window  # the window sharing most words, cut to size
