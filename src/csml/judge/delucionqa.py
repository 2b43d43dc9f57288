"""DelucionQA (Sadat et al., Findings of EMNLP 2023; data CC BY 4.0): people's hallucination labels of answers
to questions about a car manual, per answer and per sentence -- a held-out test set of a kind the judge never
trained on (``benchmarks/judge_cross_domain.py`` scores it).

The release gives each answer's retrieved context only as integer token ids; the vocabulary behind them is
not released (the authors' crawler rebuilds it from the manual online). The ids index an alphabetically
sorted, lower-cased vocabulary of word and punctuation tokens, so :func:`learn_vocabulary` recovers it offline
from the text that *is* released -- questions and answers, which quote their contexts heavily:

1. **Co-occurrence.** For every candidate word (a token of some question or answer) and every id, how much
   more often the id is in a sample's context when the word is in its question or answer than in contexts at
   large, minus a small penalty when the two frequencies disagree.
2. **Monotone alignment.** Both lists are sorted alphabetically, so words map to ids in order: a dynamic
   programme picks the order-preserving assignment with the highest total score.
3. **Neighbour votes.** With the contexts decoded so far, an id whose decoded neighbours frame a word in the
   answers ("the parking ___ is") gets votes for that word; the votes sharpen the scores and the alignment is
   solved again (a few rounds).

Ids no question or answer ever spells cannot be recovered; :func:`decode` drops them (``coverage`` reports the
share of context tokens decoded: 0.97 on the release). Contexts come back lower-cased, with punctuation
re-attached. Decoding reads no label, and its per-id statistics pool all four files, so no answer's
label can leak into its own context beyond its words' share of those statistics.
"""

from __future__ import annotations

import ast
import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"\w+|[^\w\s]")
FILES = {
    "train": "train.csv",
    "validation": "dev.csv",
    "test": "test.csv",
    "unanswerable": "unanswerable.csv",
}
HALLUCINATED, NOT_HALLUCINATED = "Hallucinated", "Not Hallucinated"
_REQUIRED = ("Question", "Context", "Answer")
_VOTE_ROUNDS = 4
_MIN_VOTES = 3


@dataclass(frozen=True)
class Sample:
    """One DelucionQA answer: its question, decoded context and labels (``None`` where the file has none)."""

    sample_id: str
    question: str
    context_ids: tuple[int, ...]
    answer: str
    hallucinated: bool | None
    sentence_labels: tuple[tuple[str, str], ...]  # (sentence, Supported / Conflicted / Neither)


def read_split(root: str | Path, split: str) -> list[Sample]:
    """Reads one split's CSV; raises ``ValueError`` naming the file, row and field that is malformed."""
    path = Path(root) / FILES[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"DelucionQA file {path} does not exist (set paths.external_data_dir or $CSML_EXTERNAL_DATA to the "
            "folder that holds delucionqa/)"
        )
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and (missing := [c for c in _REQUIRED if c not in rows[0]]):
        raise ValueError(f"{path}: missing column(s) {missing}; found {sorted(rows[0])}")
    return [_sample(row, path, number) for number, row in enumerate(rows, start=2)]


def _sample(row: dict[str, str], path: Path, line: int) -> Sample:
    sample_id = row.get("sample_id") or f"{path.stem}_{line - 2}"
    where = f"{path}, line {line} (sample {sample_id})"
    try:
        ids = tuple(int(i) for i in ast.literal_eval(row["Context"]))
    except (ValueError, SyntaxError, TypeError) as error:
        raise ValueError(f"{where}: Context must be a list of integer token ids ({error})") from None
    label = row.get("Label")
    if label not in (None, HALLUCINATED, NOT_HALLUCINATED):
        raise ValueError(f"{where}: Label must be {HALLUCINATED!r} or {NOT_HALLUCINATED!r}, found {label!r}")
    sentences: tuple[tuple[str, str], ...] = ()
    if row.get("Answer_sent_tokenized") and row.get("Sentence_labels"):
        try:
            texts = ast.literal_eval(row["Answer_sent_tokenized"])
            labels = ast.literal_eval(row["Sentence_labels"])
        except (ValueError, SyntaxError) as error:
            raise ValueError(f"{where}: unreadable sentence columns ({error})") from None
        for text in texts:
            key, _, sentence = text.partition(":")
            if key.strip() not in labels:
                raise ValueError(f"{where}: sentence {key.strip()!r} has no entry in Sentence_labels")
            sentences += ((sentence.strip(), labels[key.strip()]),)
    return Sample(
        sample_id,
        row["Question"],
        ids,
        row["Answer"],
        None if label is None else label == HALLUCINATED,
        sentences,
    )


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def learn_vocabulary(samples: list[Sample]) -> dict[int, str]:
    """Id -> token, recovered from the samples' questions and answers (see the module's docstring)."""
    words = sorted({t for s in samples for t in tokens(f"{s.question} {s.answer}")})
    ids = sorted({i for s in samples for i in s.context_ids})
    word_index = {w: n for n, w in enumerate(words)}
    id_index = {i: n for n, i in enumerate(ids)}
    in_text = np.zeros((len(samples), len(words)), dtype=np.float32)
    in_context = np.zeros((len(samples), len(ids)), dtype=np.float32)
    word_count, id_count = np.zeros(len(words)), np.zeros(len(ids))
    for row, sample in enumerate(samples):
        for token in tokens(f"{sample.question} {sample.answer}"):
            in_text[row, word_index[token]] = 1
            word_count[word_index[token]] += 1
        for i in sample.context_ids:
            in_context[row, id_index[i]] = 1
            id_count[id_index[i]] += 1
    together = in_text.T @ in_context
    score = together / (in_text.sum(0)[:, None] + 2) - in_context.mean(0)[None, :]
    top = min(50, len(words), len(ids))  # the most frequent tokens set the scale between the two counts
    offset = np.median(np.log1p(np.sort(word_count)[::-1][:top]) - np.log1p(np.sort(id_count)[::-1][:top]))
    score -= 0.05 * np.abs(np.log1p(word_count)[:, None] - np.log1p(id_count)[None, :] - offset)
    score[together < 1] = -1.0
    vocabulary = _align(score, words, ids)
    shares, trigrams = _answer_ngrams(samples, word_index)
    for _ in range(_VOTE_ROUNDS):
        votes = _neighbour_votes(samples, vocabulary, shares, trigrams, word_index, id_index)
        total = votes.sum(0)
        voted = total >= _MIN_VOTES
        sharpened = score.copy()
        sharpened[:, voted] = votes[:, voted] / total[voted] * 4 + np.maximum(score[:, voted], 0)
        vocabulary = _align(sharpened, words, ids)
    return vocabulary


def _align(score: np.ndarray, words: list[str], ids: list[int]) -> dict[int, str]:
    """The order-preserving word -> id assignment with the highest total score (each used at most once)."""
    n_words, n_ids = score.shape
    best = np.zeros((n_words + 1, n_ids + 1), dtype=np.float32)
    for w in range(1, n_words + 1):
        best[w, 1:] = np.maximum.accumulate(np.maximum(best[w - 1, 1:], best[w - 1, :-1] + score[w - 1]))
    vocabulary, w, i = {}, n_words, n_ids
    while w > 0 and i > 0:
        if best[w, i] == best[w, i - 1]:
            i -= 1
        elif best[w, i] == best[w - 1, i]:
            w -= 1
        else:
            vocabulary[ids[i - 1]] = words[w - 1]
            w, i = w - 1, i - 1
    return vocabulary


def _answer_ngrams(samples: list[Sample], word_index: dict[str, int]) -> tuple[list, dict]:
    """Bigram shares both ways (word x word: how often the second word follows / precedes the first, as a
    share of all its neighbours), and trigram frames ((left, right) -> the words between them)."""
    from scipy import sparse

    pairs: Counter = Counter()
    trigrams: dict[tuple[int, int], set[int]] = defaultdict(set)
    for sample in samples:
        seq = [word_index[t] for t in tokens(f"{sample.question} {sample.answer}")]
        pairs.update(pairwise(seq))
        for left, middle, right in zip(seq, seq[1:], seq[2:], strict=False):
            trigrams[left, right].add(middle)
    (first, second), counts = np.array(list(pairs)).T, np.array(list(pairs.values()), dtype=np.float32)
    shape = (len(word_index),) * 2
    shares = []
    for rows, columns in ((first, second), (second, first)):
        table = sparse.csr_matrix((counts, (rows, columns)), shape=shape)
        shares.append(sparse.diags(1 / np.maximum(table.sum(1).A1, 1)) @ table)
    return shares, trigrams


def _neighbour_votes(samples, vocabulary, shares, trigrams, word_index, id_index) -> np.ndarray:
    """Words x ids: evidence from decoded neighbours that frame a word of the answers -- one vote per context
    position whose neighbours frame the word in some answer, 0.3 split over the words that follow the left
    neighbour in the answers, and 0.3 over those that precede the right one."""
    from scipy import sparse

    frames: Counter = Counter()
    for sample in samples:
        seq = [word_index.get(vocabulary.get(i, ""), -1) for i in sample.context_ids]
        columns = [id_index[i] for i in sample.context_ids]
        frames.update(zip(seq, seq[2:], columns[1:-1], strict=False))
    (left, right, column), counts = (
        np.array(list(frames)).T,
        np.array(list(frames.values()), dtype=np.float32),
    )
    shape = (len(id_index), len(word_index))
    votes = np.zeros(shape[::-1], dtype=np.float32)
    for neighbour, share in zip((left, right), shares, strict=True):
        known = neighbour >= 0
        seen = sparse.csr_matrix((counts[known], (column[known], neighbour[known])), shape=shape)
        votes += 0.3 * (seen @ share).T.toarray()
    for (left_word, right_word, id_column), count in frames.items():
        for middle in trigrams.get((left_word, right_word), ()):
            votes[middle, id_column] += count
    return votes


def decode(ids: tuple[int, ...], vocabulary: dict[int, str]) -> str:
    """The context's text: known tokens joined, unknown ids dropped, punctuation re-attached."""
    text = " ".join(vocabulary[i] for i in ids if i in vocabulary)
    return re.sub(r" ([.,;:!?)\]'%])|([(\[$]) ", r"\1\2", text)


def coverage(samples: list[Sample], vocabulary: dict[int, str]) -> float:
    """Share of all context tokens that decode."""
    ids = [i for s in samples for i in s.context_ids]
    return sum(i in vocabulary for i in ids) / max(len(ids), 1)


def load(root: str | Path) -> tuple[dict[str, list[Sample]], dict[int, str]]:
    """Every split, read and checked, and the vocabulary learned from all of them."""
    splits = {split: read_split(root, split) for split in FILES}
    return splits, learn_vocabulary([s for samples in splits.values() for s in samples])


def labelled_pairs(
    samples: list[Sample], vocabulary: dict[int, str], sentences: bool = False
) -> tuple[list[str], list[str], np.ndarray]:
    """(claims, knowledge, supported) of labelled samples: whole answers (supported = not hallucinated), or with
    ``sentences`` each answer sentence (supported = people found it Supported; Conflicted or Neither = not)."""
    claims, knowledge, supported = [], [], []
    for sample in samples:
        context = decode(sample.context_ids, vocabulary)
        if sentences:
            for sentence, label in sample.sentence_labels:
                claims.append(sentence)
                knowledge.append(context)
                supported.append(label == "Supported")
        elif sample.hallucinated is not None:
            claims.append(sample.answer)
            knowledge.append(context)
            supported.append(not sample.hallucinated)
    return claims, knowledge, np.array(supported, dtype=bool)
