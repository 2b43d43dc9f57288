"""Calibrating the groundedness judge's threshold on a small sample of an auditor's own bot replies.

The judge's shipped threshold was chosen on its validation data (knowledge-base passages and BEGIN); another
bot's replies, knowledge and labelling habits can call for another one. An auditor labels 50-200 replies of
their own bot as grounded or not, and :func:`calibrate` picks the threshold on the judge's answer scores with
the best balanced accuracy on them. The :class:`Calibration` is saved as JSON and used by audits through
``groundedness_judge.calibration`` in ``conf/audit.yaml``; ``csml calibrate-judge labels=<file>`` makes one.

Labelled file: JSON Lines, one object per reply::

    {"reply": "Refunds take 5 days.", "knowledge": ["Refunds reach your card within 5 business days."], "grounded": "yes"}

``reply`` (alias ``answer``) is the bot's reply, ``knowledge`` a string or a list of strings the reply should
rest on, ``grounded`` one of yes/no, true/false, 1/0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from csml.data.splits import DataValidationError

log = logging.getLogger(__name__)

MIN_ROWS = 20
"""Fewest labelled replies (with a score) a threshold is chosen on; 50-200 are recommended."""
RECOMMENDED_ROWS = 50
LABELS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
EXPECTED_LABEL = "yes/no, true/false or 1/0"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LabelledReplies:
    """Replies of a bot, the knowledge each should rest on, and people's groundedness labels."""

    replies: list[str]
    knowledge: list[list[str]]
    grounded: list[bool]
    path: str
    sha256: str


def read_labelled_replies(path: str | Path) -> LabelledReplies:
    """Reads and validates a labelled JSONL file (format in the module docstring).

    Raises:
        DataValidationError: The file is missing or not UTF-8, a line is not a JSON object, a field is
            missing or empty, a label is not yes/no, or the file has fewer than :data:`MIN_ROWS` rows or only
            one class.
    """
    from csml.data.sources.readers import read_jsonl, require_file

    file = str(path)
    raw = require_file(path, "a labelled JSONL file (reply, knowledge, grounded)").read_bytes()
    replies, knowledge, grounded = [], [], []
    for row, item in read_jsonl(path):
        replies.append(_reply(item, file, row))
        knowledge.append(_knowledge(item.get("knowledge"), file, row))
        grounded.append(parse_label(item.get("grounded"), file, row, present="grounded" in item))
    if len(replies) < MIN_ROWS:
        raise DataValidationError(
            "too few labelled replies to calibrate on", file=file,
            expected=f"at least {MIN_ROWS} rows ({RECOMMENDED_ROWS}-200 recommended)", found=f"{len(replies)} rows",
        )  # fmt: skip
    _check_both_classes(grounded, file)
    return LabelledReplies(replies, knowledge, grounded, file, hashlib.sha256(raw).hexdigest())


def _reply(item: dict[str, Any], file: str, row: int) -> str:
    if "reply" in item and "answer" in item:
        raise DataValidationError(
            "both reply and its alias answer given", file=file, row=row, field="reply",
            expected="one of reply and answer", found="both",
        )  # fmt: skip
    name = "answer" if "answer" in item and "reply" not in item else "reply"
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataValidationError(
            "missing or empty reply", file=file, row=row, field=name,
            expected="the bot's reply as a non-empty string (field reply or answer)",
            found=f"fields {sorted(item)}" if name not in item else repr(value)[:80],
        )  # fmt: skip
    return value


def _knowledge(value: Any, file: str, row: int) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if (
        not isinstance(texts, list)
        or not all(isinstance(t, str) for t in texts)
        or not any(t.strip() for t in texts)
    ):
        raise DataValidationError(
            "missing or empty knowledge", file=file, row=row, field="knowledge",
            expected="a non-empty string or list of strings the reply should rest on",
            found="no field" if value is None else repr(value)[:80],
        )  # fmt: skip
    return [t for t in texts if t.strip()]


def parse_label(value: Any, file: str | None = None, row: int | None = None, present: bool = True) -> bool:
    """``True`` for yes/true/1 (JSON booleans and integers too), ``False`` for no/false/0, else an error."""
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if key not in LABELS:
        raise DataValidationError(
            "unknown groundedness label", file=file, row=row, field="grounded", expected=EXPECTED_LABEL,
            found=repr(value)[:80] if present else "no field",
        )  # fmt: skip
    return LABELS[key]


def _check_both_classes(grounded: Sequence[bool], file: str | None, what: str = "labelled replies") -> None:
    if len(set(grounded)) < 2:
        only = "grounded" if grounded and grounded[0] else "not grounded"
        raise DataValidationError(
            f"only one class among the {what}: balanced accuracy needs both", file=file, field="grounded",
            expected="grounded and not-grounded replies", found=f"{len(grounded)} rows, all {only}",
        )  # fmt: skip


def choose_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """The threshold on ``scores`` (supported when ``score >= threshold``) with the best balanced accuracy.

    Every threshold between two adjacent distinct scores gives the same predictions; the thresholds with the
    best balanced accuracy form one or more intervals. The threshold returned is the midpoint of the best
    interval (of the widest when several tie, the lowest of those), so that it does not sit on a score seen
    in the sample. Thresholds range over [0, 1] (scores are probabilities) or wider when scores are.

    Returns:
        (threshold, balanced accuracy, interval ``(low, high)``: thresholds in ``(low, high]`` do as well).
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("choose_threshold needs scores of both classes")
    values, inverse = np.unique(scores, return_inverse=True)
    pos_at = np.bincount(inverse, weights=positive, minlength=len(values))
    neg_at = np.bincount(inverse, weights=~positive, minlength=len(values))
    # Cut k (0..m) predicts "supported" for scores >= values[k] (k = m: for none) and holds for thresholds
    # in (bounds[k], bounds[k + 1]].
    true_pos = n_pos - np.r_[0.0, np.cumsum(pos_at)]
    true_neg = np.r_[0.0, np.cumsum(neg_at)]
    accuracy = (true_pos / n_pos + true_neg / n_neg) / 2
    bounds = np.r_[min(0.0, values[0]), values, max(1.0, values[-1])]
    best = np.isclose(accuracy, accuracy.max(), rtol=0.0, atol=1e-12)
    runs, start = [], None
    for k, is_best in enumerate([*best, False]):
        if is_best and start is None:
            start = k
        elif not is_best and start is not None:
            runs.append((start, k - 1))
            start = None
    first, last = max(runs, key=lambda run: bounds[run[1] + 1] - bounds[run[0]])  # max keeps the lowest tie
    low, high = float(bounds[first]), float(bounds[last + 1])
    threshold = (low + high) / 2
    if first > 0 and threshold <= low:  # an empty interval above the top score (scores of 1.0)
        threshold = float(np.nextafter(low, np.inf))
    return threshold, float(accuracy[first]), (low, high)


def balanced_accuracy_at(scores: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    """Balanced accuracy of predicting "supported" for ``scores >= threshold``."""
    from csml.metrics.binary import balanced_accuracy

    return balanced_accuracy(np.asarray(scores) >= threshold, positive)


def bootstrap_interval(
    scores: np.ndarray, positive: np.ndarray, threshold: float, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the balanced accuracy at a fixed ``threshold`` over bootstrap resamples
    drawn within each class (so every resample has both, in the sample's proportions).

    The threshold is not re-chosen per resample: the interval says how precisely the sample measures this
    threshold, and is optimistic about new replies because the threshold was chosen on the same sample.
    """
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, bool)
    rng = np.random.default_rng(seed)
    recalls = []
    for cls in (True, False):
        correct = (scores[positive == cls] >= threshold) == cls
        draws = rng.integers(0, len(correct), size=(resamples, len(correct)))
        recalls.append(correct[draws].mean(axis=1))
    accuracy = (recalls[0] + recalls[1]) / 2
    low, high = np.percentile(accuracy, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Calibration:
    """A judge threshold chosen on labelled replies, with what it was chosen on and how well it did.

    Attributes:
        threshold: The chosen threshold (midpoint of ``threshold_interval``).
        balanced_accuracy: Balanced accuracy at ``threshold`` on the labelled replies (in-sample).
        balanced_accuracy_ci: Bootstrap 95% interval of ``balanced_accuracy``.
        previous_threshold: The judge's threshold before calibration (its model card's unless overridden).
        previous_balanced_accuracy: Balanced accuracy at ``previous_threshold`` on the same replies.
        n: Replies the threshold was chosen on (those with a score).
        n_supported: Of ``n``, replies labelled grounded.
        n_unsupported: Of ``n``, replies labelled not grounded.
        n_unscored: Replies left out: no checkable claim (the judge gave no score).
        threshold_interval: ``(low, high]``: every threshold in it does as well on the sample.
        model_uri: The judge model the calibration was made for (a resolved folder path or a URI).
        int8: Whether that judge ran with an int8 encoder (scores shift with it), when known.
        labels_file: The labelled file, as given.
        labels_sha256: SHA-256 of the labelled file's bytes.
        bootstrap_resamples: Resamples behind ``balanced_accuracy_ci``.
        seed: Seed of the bootstrap.
        created: When it was made (UTC, ISO 8601).
        schema_version: Version of this JSON layout.
    """

    threshold: float
    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    previous_threshold: float
    previous_balanced_accuracy: float
    n: int
    n_supported: int
    n_unsupported: int
    n_unscored: int
    threshold_interval: tuple[float, float]
    model_uri: str | None = None
    int8: bool | None = None
    labels_file: str | None = None
    labels_sha256: str | None = None
    bootstrap_resamples: int = 1000
    seed: int = 0
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def save(self, path: str | Path) -> Path:
        """Writes the calibration as JSON to ``path`` (folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Reads a calibration written by :meth:`save`.

        Raises:
            FileNotFoundError: No file at ``path``.
            DataValidationError: Not a calibration file of a known schema version.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no judge calibration at {path}; make one with `csml calibrate-judge`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataValidationError(
                f"not a judge calibration ({error})", file=str(path), expected="JSON"
            ) from None
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in _DEFAULTED}
        if not isinstance(data, dict) or (missing := sorted(required - set(data))):
            raise DataValidationError(
                "not a judge calibration: fields missing", file=str(path),
                expected=f"fields {sorted(required)}", found=f"no {missing}" if isinstance(data, dict) else None,
            )  # fmt: skip
        if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise DataValidationError(
                "judge calibration written by a newer csml", file=str(path), field="schema_version",
                expected=f"<= {SCHEMA_VERSION}", found=str(data["schema_version"]),
            )  # fmt: skip
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**values)

    def table(self) -> str:
        """A plain-text summary for the terminal."""
        low, high = self.balanced_accuracy_ci
        rows = [
            f"judge        {self.model_uri}",
            f"labels       {self.labels_file} (sha256 {str(self.labels_sha256)[:12]})",
            f"replies      {self.n} scored: {self.n_supported} grounded, {self.n_unsupported} not grounded; "
            f"{self.n_unscored} without a checkable claim left out",
            "",
            f"{'':<12} {'threshold':>9}  {'balanced accuracy':>17}  95% interval",
            f"{'calibrated':<12} {self.threshold:>9.4f}  {self.balanced_accuracy:>17.3f}  [{low:.3f}, {high:.3f}]",
            f"{'previous':<12} {self.previous_threshold:>9.4f}  {self.previous_balanced_accuracy:>17.3f}",
        ]
        return "\n".join(rows)


_DEFAULTED = {
    "model_uri",
    "int8",
    "labels_file",
    "labels_sha256",
    "bootstrap_resamples",
    "seed",
    "created",
    "schema_version",
}


def model_identity(model_uri: str) -> str:
    """How calibrations and scorecards name a judge: a model folder's resolved path, or the URI with any
    credentials in it (``scheme://user:password@host``) masked."""
    if Path(model_uri).is_dir():
        return str(Path(model_uri).resolve())
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]+@", r"\1***@", str(model_uri), flags=re.IGNORECASE)


def calibrate_scores(
    scores: Sequence[float | None],
    grounded: Sequence[bool],
    previous_threshold: float,
    *,
    resamples: int = 1000,
    seed: int = 0,
    **provenance: Any,
) -> Calibration:
    """:func:`calibrate` on answer scores already computed (``None``: no checkable claim, left out).

    ``provenance`` fills :class:`Calibration`'s ``model_uri``, ``int8``, ``labels_file`` and ``labels_sha256``.
    """
    if len(scores) != len(grounded):
        raise ValueError(f"{len(scores)} scores for {len(grounded)} labels")
    kept = [i for i, score in enumerate(scores) if score is not None]
    values = np.array([scores[i] for i in kept], dtype=np.float64)
    positive = np.array([bool(grounded[i]) for i in kept], dtype=bool)
    file = provenance.get("labels_file")
    if len(kept) < MIN_ROWS:
        raise DataValidationError(
            "too few replies with a checkable claim to calibrate on", file=file, field="reply",
            expected=f"at least {MIN_ROWS} replies the judge can score",
            found=f"{len(kept)} of {len(scores)} (the others have no checkable claim)",
        )  # fmt: skip
    _check_both_classes(positive.tolist(), file, "replies the judge could score")
    if len(kept) < RECOMMENDED_ROWS:
        log.warning(
            "calibrating on %d replies: %d or more give a steadier threshold", len(kept), RECOMMENDED_ROWS
        )
    threshold, accuracy, interval = choose_threshold(values, positive)
    return Calibration(
        threshold=threshold,
        balanced_accuracy=accuracy,
        balanced_accuracy_ci=bootstrap_interval(values, positive, threshold, resamples, seed),
        previous_threshold=float(previous_threshold),
        previous_balanced_accuracy=balanced_accuracy_at(values, positive, float(previous_threshold)),
        n=len(kept),
        n_supported=int(positive.sum()),
        n_unsupported=int((~positive).sum()),
        n_unscored=len(scores) - len(kept),
        threshold_interval=interval,
        bootstrap_resamples=resamples,
        seed=seed,
        **provenance,
    )


def calibrate(
    judge: Any,
    replies: Sequence[str],
    knowledge: Sequence[str | Sequence[str]],
    labels: Sequence[bool | str | int],
    *,
    model_uri: str | None = None,
    int8: bool | None = None,
    labels_file: str | None = None,
    labels_sha256: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Calibration:
    """Chooses ``judge``'s threshold on labelled replies for the best balanced accuracy.

    Every reply is scored once with ``judge.judge_many``; replies without a score (no checkable claim) are
    left out and counted. The judge's current ``threshold`` is reported beside the chosen one; the judge
    itself is not changed (audits apply a saved calibration with ``groundedness_judge.calibration``).

    Args:
        judge: A :class:`csml.judge.judge.GroundednessJudge` (or anything with ``judge_many`` and
            ``threshold``).
        replies: The bot's replies.
        knowledge: Per reply, the knowledge it should rest on (a string or a list of strings).
        labels: Per reply, whether people judged it grounded (booleans, or yes/no, true/false, 1/0).
        model_uri: The judge's model folder or URI, recorded so audits can check they use the same judge.
        int8: Whether the judge runs with an int8 encoder, recorded likewise.
        labels_file: The labelled file, recorded for provenance.
        labels_sha256: Its SHA-256, recorded for provenance.
        resamples: Bootstrap resamples of the balanced accuracy's interval.
        seed: Seed of the bootstrap.

    Raises:
        DataValidationError: A label is not yes/no, or fewer than :data:`MIN_ROWS` replies have a score, or
            they hold only one class.
    """
    if not len(replies) == len(knowledge) == len(labels):
        raise ValueError(f"{len(replies)} replies, {len(knowledge)} knowledge entries, {len(labels)} labels")
    grounded = [parse_label(label, labels_file, row) for row, label in enumerate(labels, start=1)]
    contexts = [[k] if isinstance(k, str) else list(k) for k in knowledge]
    scores = [verdict.score for verdict in judge.judge_many(list(replies), contexts)]
    return calibrate_scores(
        scores,
        grounded,
        float(judge.threshold),
        resamples=resamples,
        seed=seed,
        model_uri=None if model_uri is None else model_identity(model_uri),
        int8=int8,
        labels_file=labels_file,
        labels_sha256=labels_sha256,
    )


def calibrate_file(judge: Any, path: str | Path, model_uri: str | None = None, **kwargs: Any) -> Calibration:
    """:func:`calibrate` on a labelled JSONL file, recording its path and SHA-256."""
    data = read_labelled_replies(path)
    return calibrate(
        judge,
        data.replies,
        data.knowledge,
        data.grounded,
        model_uri=model_uri,
        labels_file=data.path,
        labels_sha256=data.sha256,
        **kwargs,
    )
