"""Built-in sentiment datasets: SemEval-2017 Task 4A tweets, US airline tweets, UCI review sentences.

Their licences do not allow bundling them with csml; configs read them from ``paths.external_data_dir``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from csml.data.sources.base import DatasetSource
from csml.data.sources.checks import Row
from csml.data.sources.readers import read_csv, read_lines
from csml.data.sources.sampling import stratified_split
from csml.data.splits import DataValidationError

SENTIMENTS = ("negative", "neutral", "positive")

SEMEVAL_TRAIN_FILES = (
    "twitter-2013train-A.tsv",
    "twitter-2013dev-A.tsv",
    "twitter-2013test-A.tsv",
    "twitter-2014test-A.tsv",
    "twitter-2015train-A.tsv",
    "twitter-2015test-A.tsv",
    "twitter-2016train-A.tsv",
    "twitter-2016dev-A.tsv",
    "twitter-2016devtest-A.tsv",
    "twitter-2016test-A.tsv",
)
"""Every earlier SemEval tweet file: the training data of TweetEval's sentiment task."""

UCI_FILES = {"amazon": "amazon_cells_labelled.txt", "yelp": "yelp_labelled.txt", "imdb": "imdb_labelled.txt"}
UCI_LABELS = {"0": "negative", "1": "positive"}

_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")
_ESCAPED_QUOTES = re.compile(r'\\"+')


def decode_escapes(text: str) -> str:
    """Replaces the literal ``\\uXXXX`` escapes of the SemEval files by their characters (pairs included)."""
    return _ESCAPES.sub(
        lambda match: (
            match.group(0)
            .encode("ascii")
            .decode("unicode_escape")
            .encode("utf-16", "surrogatepass")
            .decode("utf-16")
        ),
        text,
    )


class SemEval2017(DatasetSource):
    """SemEval-2017 Task 4 subtask A: English tweets labelled negative/neutral/positive.

    Train is the union of ``train_files`` (by default every 2013-2016 file, as TweetEval does), test the 2017
    gold test set. Tweets are de-duplicated by tweet id: the first occurrence in train wins, and train tweets
    that are also in test are dropped. Ids are ``semeval2017:<train|test>:<tweet id>``.

    Args:
        root: Folder holding the ``id<TAB>label<TAB>text`` files.
        train_files: Files forming the train split, in priority order.
        test_file: File forming the test split.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "semeval2017"

    def __init__(
        self,
        root: str | Path,
        train_files: Sequence[str] = SEMEVAL_TRAIN_FILES,
        test_file: str = "SemEval2017-task4-test.subtask-A.english.txt",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.train_files = list(train_files)
        self.test_file = test_file

    def _read(self) -> dict[str, list[Row]]:
        seen: set[str] = set()
        test = self._read_files("test", [self.test_file], seen)
        return {"train": self._read_files("train", self.train_files, seen), "test": test}

    def _read_files(self, split: str, files: Sequence[str], seen: set[str]) -> list[Row]:
        """Rows of ``files`` whose tweet id is not in ``seen``, adding the ids read to ``seen``."""
        rows = []
        for name in files:
            path = self.root / name
            for number, line in read_lines(path):
                parts = line.split("\t", 2)
                if len(parts) < 3:
                    raise DataValidationError(
                        "malformed line",
                        file=str(path),
                        row=number,
                        expected="id<TAB>label<TAB>text",
                        found=line[:80],
                    )
                tweet_id, label, text = parts
                if label not in SENTIMENTS:
                    raise DataValidationError(
                        "unknown sentiment label",
                        file=str(path),
                        row=number,
                        field="label",
                        expected=", ".join(SENTIMENTS),
                        found=repr(label),
                    )
                if tweet_id in seen:
                    continue
                seen.add(tweet_id)
                text = _unquote(text.rstrip("\t"))
                rows.append(
                    self._row(
                        split, tweet_id, decode_escapes(text), file=str(path), row=number, sentiment=label
                    )
                )
        return rows


def _unquote(text: str) -> str:
    """Undoes the CSV-style quoting some SemEval files put around a tweet.

    Inside such tweets, quotes were backslash-escaped and then doubled by one or two rounds of CSV quoting:
    each backslash followed by a run of quotes stands for one quote character.
    """
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return _ESCAPED_QUOTES.sub('"', text[1:-1].replace('""', '"'))
    return text


class AirlineTweets(DatasetSource):
    """Twitter US Airline Sentiment (Figure Eight): 14,640 tweets to six US airlines, negative to positive.

    ``meta`` keeps the ``airline`` and, for negative tweets only, the ``negativereason`` (this copy carries
    invented reasons on some non-negative rows). The dataset has no splits: a stratified ``test_fraction`` is
    held out with ``test_seed``, kept apart from ``seed`` so that every run seed sees the same test set.

    Args:
        root: Folder holding ``Tweets.csv``.
        test_fraction: Fraction of each sentiment held out as the test split.
        test_seed: Seed of the test hold-out.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "airline_tweets"

    def __init__(self, root: str | Path, test_fraction: float = 0.2, test_seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.test_fraction = test_fraction
        self.test_seed = test_seed

    def _read(self) -> dict[str, list[Row]]:
        path = self.root / "Tweets.csv"
        rows = []
        for index, (number, row) in enumerate(read_csv(path, ["airline_sentiment", "airline", "text"])):
            meta = {"airline": row["airline"]}
            if row["airline_sentiment"] == "negative" and row.get("negativereason"):
                meta["negativereason"] = row["negativereason"]
            rows.append(
                self._row(
                    "all",
                    index,
                    row["text"],
                    file=str(path),
                    row=number,
                    sentiment=row["airline_sentiment"],
                    meta=meta,
                )
            )
        train, test = stratified_split(
            rows, self.test_fraction, self.test_seed, key=lambda r: r.record.sentiment
        )
        return {"train": train, "test": test}


class UciSentences(DatasetSource):
    """UCI Sentiment Labelled Sentences (Kotzias et al. 2015): Amazon, Yelp and IMDb review sentences.

    Labels 0/1 become ``negative``/``positive``. The Yelp copy's header line and ``,1``-style labels are
    handled. A stratified ``test_fraction`` of each (domain, label) pair is held out with ``test_seed``. Ids
    are ``uci_sentences:<domain>:<row>`` and ``meta["domain"]`` names the domain.

    Args:
        root: Folder holding ``amazon_cells_labelled.txt``, ``yelp_labelled.txt`` and ``imdb_labelled.txt``.
        domains: Which of ``amazon``, ``yelp``, ``imdb`` to load.
        test_fraction: Fraction held out as the test split.
        test_seed: Seed of the test hold-out.
        **kwargs: ``val_fraction``, ``seed``, ``limit``, ``journey_map`` of :class:`DatasetSource`.
    """

    name = "uci_sentences"

    def __init__(
        self,
        root: str | Path,
        domains: Sequence[str] = ("amazon", "yelp", "imdb"),
        test_fraction: float = 0.2,
        test_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        unknown = set(domains) - set(UCI_FILES)
        if unknown:
            raise ValueError(f"unknown UCI domains {sorted(unknown)}; choose from {sorted(UCI_FILES)}")
        self.root = Path(root)
        self.domains = list(domains)
        self.test_fraction = test_fraction
        self.test_seed = test_seed

    def _read(self) -> dict[str, list[Row]]:
        rows = [row for domain in self.domains for row in self._read_domain(domain)]
        train, test = stratified_split(
            rows,
            self.test_fraction,
            self.test_seed,
            key=lambda r: (r.record.meta["domain"], r.record.sentiment),
        )
        return {"train": train, "test": test}

    def _read_domain(self, domain: str) -> list[Row]:
        path = self.root / UCI_FILES[domain]
        rows: list[Row] = []
        for number, line in read_lines(path):
            text, _, label = line.rpartition("\t") if "\t" in line else line.rpartition(",")
            label = label.strip().lstrip(",").strip()
            if number == 1 and label == "sentiment":  # header line of the altered Yelp copy
                continue
            if label not in UCI_LABELS:
                raise DataValidationError(
                    "unknown sentiment label",
                    file=str(path),
                    row=number,
                    field="label",
                    expected="0 or 1 after a TAB",
                    found=repr(label),
                )
            rows.append(
                self._row(
                    domain,
                    len(rows),
                    text,
                    file=str(path),
                    row=number,
                    sentiment=UCI_LABELS[label],
                    meta={"domain": domain},
                )
            )
        return rows
