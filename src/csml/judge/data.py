"""Training data of the groundedness judge: (claim, knowledge) pairs labelled supported / unsupported.

Three kinds of rows, all real text:

- **Knowledge-base pairs.** Claims are sentences of knowledge-base passages (the ABCD policy manual, the bank
  FAQ, or a user's own KB), judged against a window of their passage: supported as they are (or with a
  conversational prefix, or joined to the next sentence); unsupported after one of the documented
  perturbations of :mod:`csml.judge.perturb`. Passages are assigned to train / validation / test by a hash of
  their id, so no passage's text is in two splits and the test measures generalisation to unseen passages.
- **Conversation pairs** (:mod:`csml.judge.dialogues`). Abstractive, summary-style claims about
  Schema-Guided Dialogue conversations, written from their annotations, and their exact perturbations, judged
  against windows of speaker turns. SGD's train dialogues train, its dev dialogues validate, and its test
  dialogues *whose services never occur in training* test (new domains such as Payment, Trains, Messaging,
  Alarm, and new schemas of seen domains), so the test measures conversations and services never seen.
- **BEGIN** (Dziri et al. 2022): knowledge-grounded dialogue responses labelled by people as fully
  attributable to their knowledge or not. Each BEGIN file goes to the split named in config; by default the
  CMU-DoG and TopicalChat dev sets train, the Wizard-of-Wikipedia dev set validates and the WoW test set
  tests, so WoW is a source the model is never trained on.
- **DelucionQA** (Sadat et al. 2023, optional: ``delucionqa_root``): people's per-sentence labels of ChatGPT
  answers about a car manual (Supported; Neither or Conflicted = unsupported), each sentence judged against
  the window of its retrieved context sharing most words with it. Its train split trains and its dev split
  validates (as one more domain of the threshold's mix); its test split is never read here.

A pair is one text, ``"<claim> <separator> <knowledge>"``: the claim comes first so that truncation cuts the
knowledge, never the claim, and ``separator`` is the backbone tokenizer's separator token, so the encoder sees
a proper two-segment input.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from csml.data.sources.base import DatasetSource
from csml.data.sources.checks import Row, check_text
from csml.data.sources.readers import read_lines
from csml.data.splits import SPLITS, DataValidationError
from csml.judge import delucionqa
from csml.judge.baselines import content_words
from csml.judge.claims import split_claims
from csml.judge.dialogues import (
    DialogueClaims,
    DialogueFacts,
    Fact,
    SlotValues,
    absent_window,
    joined,
    read_dialogues,
    read_schema,
    summary,
    turn_window,
)
from csml.judge.evidence import Knowledge
from csml.judge.nonclaims import is_checkable
from csml.judge.perturb import PERTURBATIONS, PerturbationPool, entities, paraphrase, perturb
from csml.records import Record

SUPPORTED, UNSUPPORTED = "supported", "unsupported"
BEGIN_COLUMNS = ("model_name", "data_source", "knowledge", "message", "response", "begin_label")
BEGIN_SUPPORTED = "Fully attributable"
_PREFIXES = ("Yes, ", "Sure! ", "According to our policy, ", "Good question. ", "As far as I know, ")


def pair_text(claim: str, knowledge: str, separator: str) -> str:
    """The judge's input for one (claim, knowledge) pair."""
    return f"{claim} {separator} {knowledge}"


class GroundednessPairs(DatasetSource):
    """(claim, knowledge) pairs from knowledge bases and BEGIN, labelled in the ``grounded`` field.

    Args:
        knowledge_bases: Knowledge-base sources (``load() -> list[csml.knowledge.KBEntry]``, as in
            ``conf/knowledge_base``), or a mapping of names to them (the config's form), read in order.
        begin_root: Folder of the BEGIN TSV files; ``None`` uses knowledge-base pairs only.
        delucionqa_root: Folder of DelucionQA's CSV files (:mod:`csml.judge.delucionqa`); ``None`` leaves it out.
        begin_files: BEGIN file names per split (``{"train": [...], "validation": [...], "test": [...]}``).
        sgd_root: Folder of the Schema-Guided Dialogue corpus (``train/``, ``dev/``, ``test/``); ``None``
            leaves conversation pairs out.
        dialogues_per_split: Most SGD dialogues read per split (``{"train": 1500, ...}``).
        facts_per_dialogue: Facts of a dialogue used as claims (plus one summary sentence joining two facts);
            each gives one supported and one unsupported pair, and sometimes an ``absent`` pair.
        summary_sentences: Facts per summary of a validation dialogue (0: none). Each sentence of a summary and
            of its twin with one fact perturbed is a pair; ``meta["answer"]`` groups them so that the decision
            threshold can be chosen on whole summaries, as audits judge them (the weakest sentence decides).
        separator: The backbone tokenizer's separator token (``[SEP]`` for BERT-style encoders).
        claims_per_passage: Most sentences of a passage used as claims (each gives one supported and one
            unsupported pair).
        window_words: Knowledge shown with a claim: the claim's sentence (or evidence turns) and their
            neighbours, up to this many words; match the judge's windows at inference (about 0.6 words per
            token of the model's ``max_length``).
        heldout_fraction: Fraction of passages in each of validation and test.
        perturbations: Names of the perturbations used (all by default).
        **base: ``seed``, ``limit`` and ``journey_map`` of :class:`DatasetSource`.
    """

    name = "groundedness"

    def __init__(
        self,
        knowledge_bases: Sequence[Any] | Mapping[str, Any] = (),
        begin_root: str | None = None,
        begin_files: Mapping[str, Sequence[str]] | None = None,
        separator: str = "[SEP]",
        sgd_root: str | None = None,
        dialogues_per_split: Mapping[str, int] | None = None,
        facts_per_dialogue: int = 3,
        summary_sentences: int = 3,
        claims_per_passage: int = 4,
        window_words: int = 96,
        heldout_fraction: float = 0.1,
        perturbations: Sequence[str] = tuple(PERTURBATIONS),
        delucionqa_root: str | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        for name in perturbations:
            PERTURBATIONS[name]  # an unknown name raises UnknownNameError, a ValueError naming the closest
        if not knowledge_bases and begin_root is None and sgd_root is None and delucionqa_root is None:
            raise ValueError(
                "GroundednessPairs needs knowledge_bases, begin_root, sgd_root or delucionqa_root"
            )
        self.knowledge_bases = list(
            knowledge_bases.values() if isinstance(knowledge_bases, Mapping) else knowledge_bases
        )
        self.begin_root = Path(begin_root) if begin_root else None
        self.begin_files = {split: list(files) for split, files in (begin_files or {}).items()}
        self.separator = separator
        self.sgd_root = Path(sgd_root) if sgd_root else None
        self.dialogues_per_split = dict(
            dialogues_per_split or {"train": 1500, "validation": 250, "test": 500}
        )
        self.facts_per_dialogue = facts_per_dialogue
        self.summary_sentences = summary_sentences
        self.claims_per_passage = claims_per_passage
        self.window_words = window_words
        self.heldout_fraction = heldout_fraction
        self.perturbations = tuple(perturbations)
        self.delucionqa_root = Path(delucionqa_root) if delucionqa_root else None

    def _read(self) -> dict[str, list[Row]]:
        splits: dict[str, list[Row]] = {split: [] for split in SPLITS}
        for kb in self.knowledge_bases:
            for split, rows in self._kb_rows(kb).items():
                splits[split] += rows
        if self.begin_root is not None:
            for split, files in self.begin_files.items():
                if split not in SPLITS:
                    raise ValueError(f"begin_files: unknown split {split!r}; expected one of {SPLITS}")
                for name in files:
                    splits[split] += self._begin_rows(self.begin_root / name, split)
        if self.sgd_root is not None:
            for split, rows in self._dialogue_rows().items():
                splits[split] += rows
        if self.delucionqa_root is not None:
            for split, rows in self._delucionqa_rows().items():
                splits[split] += rows
        return splits

    def _delucionqa_rows(self) -> dict[str, list[Row]]:
        """DelucionQA's labelled answer sentences (train and dev splits), each against the window of its
        context sharing most content words with it -- the window the judge most likely decides on."""
        samples, vocabulary = delucionqa.load(self.delucionqa_root)
        rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
        for split in ("train", "validation"):
            path = str(self.delucionqa_root / delucionqa.FILES[split])
            for line, sample in enumerate(samples[split], start=2):
                knowledge = Knowledge([delucionqa.decode(sample.context_ids, vocabulary)], self.window_words)
                answer = f"{self.name}:delucionqa:{sample.sample_id}"
                for n, (sentence, label) in enumerate(sample.sentence_labels):
                    if not knowledge or not is_checkable(sentence):
                        continue
                    wanted = set(content_words(sentence))
                    window = max(
                        knowledge.candidates(sentence), key=lambda w: len(wanted & set(content_words(w)))
                    )
                    record = self._pair(
                        f"{answer}:{n}", sentence, window, SUPPORTED if label == "Supported" else UNSUPPORTED,
                        "delucionqa", {"origin": "delucionqa", "domain": "rag_answer", "answer": answer,
                                       "perturbation": "none" if label == "Supported" else label.lower()},
                    )  # fmt: skip
                    rows[split].append(Row(record, path, line))
        return rows

    def _dialogue_rows(self) -> dict[str, list[Row]]:
        rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
        for split in SPLITS:
            origin = "sgd_unseen_services" if split == "test" else "sgd"
            for path, number, dialogue, facts in self._dialogues(split):
                rng = random.Random(f"{self.seed}:{dialogue.get('dialogue_id')}")
                found = facts.claims(dialogue, rng)
                for n, (claim, window, label, perturbation) in enumerate(self._fact_pairs(found, rng)):
                    meta = {"origin": origin, "domain": "conversation", "perturbation": perturbation}
                    record = self._pair(
                        f"{self.name}:sgd:{found.dialogue_id}:{n}", claim, window, label, "sgd_schema_guided",
                        meta | {"services": found.services},
                    )  # fmt: skip
                    rows[split].append(Row(record, str(path), number))
                if split == "validation" and self.summary_sentences:
                    rows[split] += self._summary_rows(found, path, number, rng)
        return rows

    def _summary_rows(self, found: DialogueClaims, path: Path, number: int, rng: random.Random) -> list[Row]:
        """The sentences of a dialogue's summary and of its unsupported twin, each with its evidence window;
        ``meta["answer"]`` names the summary they belong to (judged as a whole: its weakest sentence decides)."""
        made = summary(found, self.summary_sentences, rng)
        if made is None:
            return []
        windows = [turn_window(found.turns, fact.turns, self.window_words, rng) for fact in made.facts]
        if any(window is None for window in windows):
            return []
        rows = []
        for version in (SUPPORTED, UNSUPPORTED):
            answer = f"{self.name}:sgd_summary:{found.dialogue_id}:{version}"
            for n, (sentence, window) in enumerate(
                zip(made.sentences(version == SUPPORTED), windows, strict=True)
            ):
                wrong = version == UNSUPPORTED and n == made.wrong
                meta = {"origin": "sgd_summaries", "domain": "conversation_summary", "answer": answer}
                record = self._pair(
                    f"{answer}:{n}", sentence, window, UNSUPPORTED if wrong else SUPPORTED, "sgd_schema_guided",
                    meta | {"perturbation": made.perturbation if wrong else "none"},
                )  # fmt: skip
                rows.append(Row(record, str(path), number))
        return rows

    def summary_records(self, split: str, sentences: int = 3) -> list[Record]:
        """Summaries of ``sentences`` facts of the SGD dialogues of ``split`` (the test split: unseen services)
        judged against the whole transcript, as an auditor judges a summary of a call: per dialogue, a
        supported summary and its twin with one fact perturbed (answer-level pairs)."""
        records = []
        for _, _, dialogue, facts in self._dialogues(split):
            rng = random.Random(f"{self.seed}:summary:{dialogue.get('dialogue_id')}")
            found = facts.claims(dialogue, rng)
            made = summary(found, sentences, rng)
            if made is None:
                continue
            transcript = "\n".join(found.turns)
            for label in (SUPPORTED, UNSUPPORTED):
                text = " ".join(made.sentences(label == SUPPORTED))
                meta = {
                    "origin": "sgd_summaries",
                    "domain": "conversation_summary",
                    "perturbation": "none" if label == SUPPORTED else made.perturbation,
                }
                record_id = f"{self.name}:sgd_summary:{found.dialogue_id}:{label}"
                records.append(self._pair(record_id, text, transcript, label, "sgd_schema_guided", meta))
        return records

    def _dialogues(self, split: str) -> Iterator[tuple[Path, int, dict[str, Any], DialogueFacts]]:
        """The SGD dialogues of ``split`` (``dialogues_per_split``; the test keeps unseen services only), each
        with the fact writer of its split."""
        wanted = self.dialogues_per_split.get(split, 0)
        if self.sgd_root is None or not wanted:
            return
        folder = self.sgd_root / {"train": "train", "validation": "dev", "test": "test"}[split]
        dialogues = self._sample_dialogues(folder, wanted, split, set(read_schema(self.sgd_root / "train")))
        values = SlotValues()
        values.add([d for _, _, d in dialogues])
        facts = DialogueFacts(read_schema(folder), values)
        for path, number, dialogue in dialogues:
            yield path, number, dialogue, facts

    def _sample_dialogues(
        self, folder: Path, wanted: int, split: str, train_services: set[str]
    ) -> list[tuple[Path, int, dict[str, Any]]]:
        """Up to ``wanted`` dialogues of a folder, files read in a seeded order; the test keeps only dialogues
        whose services are all absent from training."""
        files = sorted(folder.glob("dialogues_*.json*"))
        if not files:
            raise DataValidationError(
                "no SGD dialogue files", file=str(folder),
                expected="dialogues_NNN.json(.gz) of Schema-Guided Dialogue (CC BY-SA 4.0); set sgd_root",
            )  # fmt: skip
        random.Random(f"{self.seed}:{split}").shuffle(files)
        chosen: list[tuple[Path, int, dict[str, Any]]] = []
        for path in files:
            for number, dialogue in enumerate(read_dialogues(path), start=1):
                services = set(dialogue.get("services", []))
                if split == "test" and services & train_services:
                    continue
                chosen.append((path, number, dialogue))
            if len(chosen) >= wanted:
                break
        return chosen[:wanted]

    def _fact_pairs(self, found: Any, rng: random.Random) -> list[tuple[str, str, str, str]]:
        """(claim, knowledge window, label, perturbation) pairs of one dialogue's facts."""
        facts: list[Fact] = [f for f in found.facts if f.twins]
        if not facts:
            return []
        chosen = rng.sample(facts, min(self.facts_per_dialogue, len(facts)))
        apart = [(x, y) for x in facts for y in facts if min(y.turns) > max(x.turns) + 1]
        if apart:
            chosen.append(joined(*rng.choice(apart), rng))
        pairs = []
        for fact in chosen:
            window = turn_window(found.turns, fact.turns, self.window_words, rng)
            if window is None:
                continue
            claim, perturbation = rng.choice(fact.twins)
            pairs += [(fact.text, window, SUPPORTED, "none"), (claim, window, UNSUPPORTED, perturbation)]
            if rng.random() < 0.3 and (elsewhere := absent_window(found.turns, fact, self.window_words, rng)):
                pairs.append((fact.text, elsewhere, UNSUPPORTED, "absent"))
        return pairs

    def _kb_rows(self, kb: Any) -> dict[str, list[Row]]:
        entries = list({entry.passage: entry for entry in kb.load()}.values())  # one entry per passage text
        origin = getattr(kb, "path", None) or getattr(kb, "root", None) or type(kb).__name__
        passages = [entry.passage for entry in entries]
        similar = _similar_passages(passages)
        pool_entities = sorted({e for passage in passages for e in entities(passage)})
        rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
        for index, entry in enumerate(entries):
            split = self._split_of(entry.id)
            rng = random.Random(f"{self.seed}:{entry.id}")
            claims = [c.text for c in split_claims(entry.passage)]
            pool = PerturbationPool(
                entities=pool_entities,
                similar_sentences=[
                    c.text
                    for j in similar[index]
                    for c in split_claims(passages[j])
                    if c.text not in entry.passage  # a sentence the passage also has is supported
                ],
            )
            chosen = rng.sample(range(len(claims)), min(self.claims_per_passage, len(claims)))
            for number, position in enumerate(sorted(chosen)):
                window = _window(claims, position, self.window_words, rng)
                pairs = [(self._supported_variant(claims, position, rng), SUPPORTED, "none")]
                changed = perturb(claims[position], rng, pool, self.perturbations)
                if changed is not None:
                    pairs.append((changed[0], UNSUPPORTED, changed[1]))
                for kind, (claim, label, perturbation) in enumerate(pairs):
                    record = self._pair(
                        f"{self.name}:{entry.id}:{number}:{kind}", claim, window, label, "knowledge_base",
                        {"origin": entry.id.split(":")[0], "domain": "knowledge_base", "perturbation": perturbation},
                    )  # fmt: skip
                    rows[split].append(Row(record, str(origin), index + 1))
        return rows

    def _pair(
        self, record_id: str, claim: str, knowledge: str, label: str, dataset: str, meta: dict[str, Any]
    ) -> Record:
        """One labelled (claim, knowledge) pair, its stage and channel those of ``dataset`` in the journey map."""
        return Record(
            id=record_id,
            text=pair_text(claim, knowledge, self.separator),
            source=self.name,
            stage=self.journey.stage_for(dataset),
            channel=self.journey.channel_for(dataset),
            grounded=label,
            meta=meta,
        )

    def _supported_variant(self, claims: list[str], position: int, rng: random.Random) -> str:
        claim, draw = claims[position], rng.random()
        if draw < 0.15:
            return rng.choice(_PREFIXES) + claim[0].lower() + claim[1:]
        if draw < 0.3 and position + 1 < len(claims):
            return f"{claim} {claims[position + 1]}"
        if draw < 0.75:
            return paraphrase(claim, rng)
        return claim

    def _split_of(self, entry_id: str) -> str:
        bucket = int(hashlib.sha256(f"{self.seed}:{entry_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if bucket < self.heldout_fraction:
            return "validation"
        return "test" if bucket < 2 * self.heldout_fraction else "train"

    def _begin_rows(self, path: Path, split: str) -> list[Row]:
        rows = []
        for number, values in read_begin(path):
            knowledge = check_text(values["knowledge"], str(path), number, "knowledge")
            response = check_text(values["response"], str(path), number, "response")
            label = SUPPORTED if values["begin_label"] == BEGIN_SUPPORTED else UNSUPPORTED
            record = self._pair(
                f"begin:{path.stem}:{number}", response, knowledge, label, "begin",
                {"origin": f"begin_{values['data_source']}", "domain": "begin", "generator": values["model_name"],
                 "begin_label": values["begin_label"]},
            )  # fmt: skip
            rows.append(Row(record, str(path), number))
        return rows


def _window(claims: list[str], position: int, max_words: int, rng: random.Random) -> str:
    """Sentences around ``claims[position]`` up to ``max_words`` words, the claim at a random place in them."""
    start = end = position
    words = len(claims[position].split())
    grow_left = rng.random() < 0.5
    while True:
        candidates = [i for i in ((start - 1) if grow_left else (end + 1),) if 0 <= i < len(claims)]
        if not candidates:
            other = (end + 1) if grow_left else (start - 1)
            if not 0 <= other < len(claims):
                break
            candidates = [other]
        i = candidates[0]
        if words + len(claims[i].split()) > max_words:
            break
        words += len(claims[i].split())
        start, end = min(start, i), max(end, i)
        grow_left = rng.random() < 0.5
    return " ".join(claims[start : end + 1])


def _similar_passages(passages: list[str], k: int = 5) -> list[list[int]]:
    """For each passage, the ``k`` most similar other passages by TF-IDF cosine (hard negatives' sources)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(passages) < 2:
        return [[] for _ in passages]
    matrix = TfidfVectorizer(stop_words="english").fit_transform(passages)
    similarity = (matrix @ matrix.T).toarray()
    for i in range(len(passages)):
        similarity[i, i] = -1.0
    return [list(row.argsort()[::-1][:k]) for row in similarity]


def read_begin(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, cells by column) of a BEGIN TSV file, its header and cell counts checked."""
    header = None
    for number, line in read_lines(path):
        cells = line.split("\t")
        if header is None:
            header = cells
            if missing := [c for c in BEGIN_COLUMNS if c not in header]:
                raise DataValidationError(
                    "not a BEGIN file: missing columns", file=str(path), row=number,
                    expected=f"columns {BEGIN_COLUMNS}", found=f"no {missing}",
                )  # fmt: skip
            continue
        if len(cells) != len(header):
            raise DataValidationError(
                "wrong number of tab-separated cells", file=str(path), row=number,
                expected=f"{len(header)} cells", found=f"{len(cells)} cells",
            )  # fmt: skip
        yield number, dict(zip(header, cells, strict=True))
