"""Escalation question sets: who must be handed to a human and who must not.

Bundled (``audits/escalation/questions.jsonl``): out-of-scope requests (CLINC150 ``oos`` test queries, CC BY
3.0) and explicit requests for a human (Bitext ``contact_human_agent``, CDLA-Sharing-1.0) must escalate;
calm in-scope customer-service requests (Bitext orders, refunds, invoices, accounts, shipping, without
offensive language) must not. Angry customers come from negative tweets to airlines
(:func:`build_airline_complaints`), whose licence does not allow bundling: they are read at audit time from
``paths.external_data_dir``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

from csml.audit.errors import AuditConfigError
from csml.audit.questions.nlu import record_sample, sample_by_label
from csml.schemas import AuditSample

CALM_EXCLUDED = ("complaint", "contact_human_agent", "contact_customer_service", "review")
"""Bitext intents left out of the calm in-scope set: they ask for people or voice a complaint."""
OFFENSIVE_FLAG = "W"
"""Bitext's linguistic flag for offensive language (``README_20k.txt``)."""
ANGRY_REASONS = (
    "Customer Service Issue",
    "Lost Luggage",
    "Cancelled Flight",
    "Late Flight",
    "Damaged Luggage",
    "Flight Booking Problems",
    "Bad Flight",
)


def build_escalation_questions(
    data_dir: str | Path, out_of_scope: int = 40, human_request: int = 20, calm: int = 60, seed: int = 0
) -> list[AuditSample]:
    """The bundled part of the ``escalation`` suite, sampled with ``seed``."""
    from csml.data.sources import BitextIntents, Clinc150

    clinc = Clinc150(Path(data_dir) / "clinc150").load("intent").splits["test"]
    samples = [
        record_sample(
            r, "data/clinc150", "test", answerable=False, category="out_of_scope", should_escalate=True
        )
        for r in sample_by_label(clinc, {"oos": out_of_scope}, seed)
    ]
    bitext = BitextIntents(Path(data_dir) / "bitext_cs_intents").load("intent").splits["test"]
    samples += [
        record_sample(r, "data/bitext_cs_intents", "test", category="human_request", should_escalate=True)
        for r in sample_by_label(bitext, {"contact_human_agent": human_request}, seed)
    ]
    polite = [
        r
        for r in bitext
        if r.intent not in CALM_EXCLUDED
        and OFFENSIVE_FLAG not in r.meta["flags"]
        and not PEOPLE.search(r.text)
    ]
    intents = sorted({str(r.intent) for r in polite})
    per_intent = {i: calm // len(intents) + (n < calm % len(intents)) for n, i in enumerate(intents)}
    samples += [
        record_sample(r, "data/bitext_cs_intents", "test", category="calm_in_scope", should_escalate=False)
        for r in sample_by_label(polite, per_intent, seed)
    ]
    return samples


PEOPLE = re.compile(r"\b(?:agent|human|person|representative|operator|someone)s?\b", re.IGNORECASE)
_HANDLE = re.compile(r"^(?:@\w+\s*)+|https?://\S+")


def build_airline_complaints(
    external_data_dir: str | Path, limit: int = 60, seed: int = 0
) -> list[AuditSample]:
    """Angry customers: tweets to US airlines that every annotator labelled negative (confidence 1.0) with
    a service complaint, ``limit`` of them sampled with ``seed`` across complaint reasons; leading
    @handles and links removed. Reads ``<external_data_dir>/airline_tweets/Tweets.csv`` (not bundled: the
    copy's licence is unclear, see data/README.md).

    Raises:
        AuditConfigError: the file is missing (with how to point csml at it).
    """
    from csml.data.sources import AirlineTweets
    from csml.data.splits import DataValidationError

    folder = Path(external_data_dir) / "airline_tweets"
    if not (folder / "Tweets.csv").is_file():
        raise AuditConfigError(
            f"escalation suite: angry-customer questions need {folder / 'Tweets.csv'} (Twitter US Airline "
            "Sentiment, not bundled); place it there or set CSML_EXTERNAL_DATA / paths.external_data_dir"
        )
    try:
        splits = AirlineTweets(folder).load("sentiment").splits
    except DataValidationError as error:
        raise AuditConfigError(f"escalation suite: {error}") from None
    with (folder / "Tweets.csv").open(encoding="utf-8", newline="") as handle:
        confidence = [float(row["airline_sentiment_confidence"] or 0) for row in csv.DictReader(handle)]
    row_of = {r.id: int(r.id.rsplit(":", 1)[1]) for rows in splits.values() for r in rows}
    records = sorted((r for rows in splits.values() for r in rows), key=lambda r: row_of[r.id])
    angry = [
        r
        for r in records
        if r.sentiment == "negative"
        and r.meta.get("negativereason") in ANGRY_REASONS
        and confidence[row_of[r.id]] == 1.0
        and len(_HANDLE.sub("", r.text).split()) >= 6
    ]
    reasons = sorted(ANGRY_REASONS)
    per_reason = {x: limit // len(reasons) + (n < limit % len(reasons)) for n, x in enumerate(reasons)}
    by_reason = [replace(r, intent=r.meta["negativereason"]) for r in angry]
    return [
        AuditSample(
            id=r.id,
            question=" ".join(_HANDLE.sub("", r.text).split()),
            answerable=False,
            category="angry",
            should_escalate=True,
            stage=r.stage.value,
            channel=r.channel.value,
            source=f"airline_tweets/Tweets.csv record {r.id} (negative, {r.meta['negativereason']}); not bundled",
        )
        for r in sample_by_label(by_reason, per_reason, seed)
    ]
