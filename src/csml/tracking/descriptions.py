"""What a registered csml model tells registry users: a description and tags on the model and each version.

Written whenever csml registers a version (:func:`csml.tracking.pyfunc.log_text_model`), from the model card
and the run that logged it: the task, the labels, the training data and its licences, the headline
metrics, and the OOS score and threshold or the decision threshold its predictions apply. The MLflow UI shows
them on the registered model's page and on each version's; the tags also filter searches
(``search_model_versions("tags.`csml.task` = 'intent_clinc150_oos'")``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAG = "csml."
MAX_LABELS = 20
"""Labels listed in a description; the others are counted."""
MAX_METRICS = 16
"""Headline metrics listed in a version's description."""
MAX_TEXT = 5000
"""The longest description or tag value every MLflow registry backend stores."""
IDENTITY_ARTIFACT = "data/identity.json"
SOURCE_NOTES = "SOURCE.txt"
KINDS = {
    "classifier": "text classifier",
    "response_retrieval": "retrieval response model",
    "response_generative": "generative response model",
}
MODEL_TAGS = (
    "task",
    "model_kind",
    "label_field",
    "multi_label",
    "dataset",
    "data_licences",
    "csml_version",
    "git_commit",
)
"""Tags the registered model carries too (those of its latest version); thresholds and metrics stay per version."""


@dataclass(frozen=True)
class Provenance:
    """What a registered version is: its model card and what the run that logged it recorded.

    Attributes:
        card: The model card training wrote (labels, thresholds, OOS score, backbone).
        run_id: The run that logged the model (None for a model logged outside a run).
        run_tags: That run's tags (``csml.task``, ``csml.model_kind``, ``csml.git_commit``).
        metrics: That run's metrics.
        identity: The dataset identity it logged (name, sha256, rows, source files); empty if none.
    """

    card: dict[str, Any]
    run_id: str | None = None
    run_tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, client: Any, card: dict[str, Any], run_id: str | None) -> Provenance:
        """Reads the run ``run_id`` (tags, metrics, logged dataset identity) through an ``MlflowClient``."""
        if not run_id:
            return cls(card)
        run = client.get_run(run_id)
        identity: dict[str, Any] = {}
        if any(f.path == IDENTITY_ARTIFACT for f in client.list_artifacts(run_id, "data")):
            with tempfile.TemporaryDirectory() as tmp:
                identity = json.loads(
                    Path(client.download_artifacts(run_id, IDENTITY_ARTIFACT, tmp)).read_text()
                )
        return cls(card, run_id, dict(run.data.tags), dict(run.data.metrics), identity)

    @property
    def kind(self) -> str:
        """What the model is, in words (``text classifier``)."""
        kind = self.run_tags.get(f"{TAG}model_kind", "")
        return KINDS.get(kind, f"{kind} model" if kind else "model")

    @property
    def headline_metrics(self) -> dict[str, float]:
        """The run's ``test/<metric>`` values (``val/…`` where there is no test split), sorted by name."""
        for split in ("test/", "val/"):
            found = {k: v for k, v in self.metrics.items() if k.startswith(split) and k.count("/") == 1}
            if found:
                return dict(sorted(found.items())[:MAX_METRICS])
        return {}

    @property
    def licences(self) -> dict[str, str]:
        """Data folder -> licence, for each folder the training data was read from (see :func:`licence_of`)."""
        folders = dict.fromkeys(Path(source).parent for source in self.identity.get("sources", []))
        return {folder.name or str(folder): licence_of(folder) for folder in folders}

    def tags(self) -> dict[str, str]:
        """The version's tags: what it is, where it came from, and the thresholds its predictions apply."""
        card = self.card
        values: dict[str, Any] = {
            "task": self.run_tags.get(f"{TAG}task"),
            "model_kind": self.run_tags.get(f"{TAG}model_kind"),
            "label_field": card.get("label_field"),
            "multi_label": "true" if card.get("multi_label") else None,
            "label_separator": card.get("label_separator"),
            "num_labels": len(card["labels"]) if card.get("labels") else None,
            "dataset": self.identity.get("name"),
            "dataset_sha256": self.identity.get("sha256") or card.get("dataset_sha256"),
            "data_licences": "; ".join(f"{k}: {v}" for k, v in self.licences.items()) or None,
            "backbone": card.get("backbone"),
            "csml_version": _csml_version(),
            "git_commit": self.run_tags.get(f"{TAG}git_commit"),
            "training_run_id": self.run_id,
            "oos_label": card.get("oos_label"),
            "oos_score": card.get("oos_score") if card.get("oos_label") else None,
            "oos_threshold": card.get("oos_threshold"),
            "positive_label": card.get("positive_label"),
            "decision_threshold": card.get("decision_threshold"),
        }
        return {f"{TAG}{key}": str(value)[:MAX_TEXT] for key, value in values.items() if value is not None}


def licence_of(folder: Path) -> str:
    """The licence a data folder's ``SOURCE.txt`` states (its ``License:`` line, as csml's bundled datasets
    record it), or why it is unknown."""
    notes = folder / SOURCE_NOTES
    if not notes.is_file():
        return f"unknown (no {SOURCE_NOTES} beside the data)"
    for line in notes.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("license", "licence") and value.strip():
            return value.strip()
    return f"not stated in {SOURCE_NOTES}"


def version_description(provenance: Provenance, name: str, version: str) -> str:
    """A version's description (Markdown): what it predicts and how, its data, metrics and origin."""
    p, card = provenance, provenance.card
    origin = f"logged by run `{p.run_id}`" if p.run_id else "logged outside a run"
    lines = [
        f"**csml {p.kind}**, version {version} of `{name}`, {origin} "
        f"(task `{p.run_tags.get(f'{TAG}task', 'unknown')}`, csml {_csml_version()}, "
        f"commit `{p.run_tags.get(f'{TAG}git_commit', 'unknown')}`).",
        "",
        *_what_it_predicts(card),
        *_training_data(p),
    ]
    if p.headline_metrics:
        metrics = ", ".join(f"`{k}` {v:.4f}" for k, v in p.headline_metrics.items())
        lines.append(f"- **Metrics** (training run): {metrics}")
    lines += ["", _how_to_load(name, version, card)]
    return "\n".join(lines)[:MAX_TEXT]


def model_description(provenance: Provenance, name: str, version: str) -> str:
    """The registered model's description (Markdown): what every version predicts and where the details are."""
    p = provenance
    lines = [
        f"**csml {p.kind}** (task `{p.run_tags.get(f'{TAG}task', 'unknown')}`); latest version: {version}.",
        "",
        *_what_it_predicts(p.card, exact=False),
        *_training_data(p),
        "",
        "Each version's description holds its metrics and thresholds; the `champion` alias is the version "
        "`csml promote` passed through its gates.",
        "",
        _how_to_load(name, "champion", p.card),
    ]
    return "\n".join(lines)[:MAX_TEXT]


def describe_version(
    client: Any, name: str, version: str | int, card: dict[str, Any], run_id: str | None
) -> None:
    """Writes the description and tags of a newly registered version, and refreshes the registered model's.

    Args:
        client: An ``MlflowClient`` on the store the version was registered in.
        name: The registered model.
        version: The new version.
        card: The model card (the loaded model's ``card``; empty for models without one).
        run_id: The run that logged the model.
    """
    provenance = Provenance.read(client, card, run_id)
    version = str(version)
    client.update_model_version(name, version, description=version_description(provenance, name, version))
    tags = provenance.tags()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.update_registered_model(name, description=model_description(provenance, name, version))
    for key in MODEL_TAGS:
        if f"{TAG}{key}" in tags:
            client.set_registered_model_tag(name, f"{TAG}{key}", tags[f"{TAG}{key}"])


def _what_it_predicts(card: dict[str, Any], exact: bool = True) -> list[str]:
    """The labels, the decision rule (with its thresholds when ``exact``, else naming them) and the backbone."""
    labels = card.get("labels")
    if not labels:
        return []
    shown = ", ".join(f"`{label}`" for label in labels[:MAX_LABELS])
    more = f" and {len(labels) - MAX_LABELS} more" if len(labels) > MAX_LABELS else ""
    what = f"`{card.get('label_field', 'label')}`"
    if card.get("multi_label"):
        what += f" label sets (multi-label, joined with `{card['label_separator']}`)"
    lines = [
        f"- **Predicts** {what}: {len(labels)} labels: {shown}{more}",
        f"- **Decision**: {_decision(card, exact)}",
    ]
    if card.get("backbone"):
        lines.append(f"- **Backbone**: `{card['backbone']}`")
    return lines


def _decision(card: dict[str, Any], exact: bool) -> str:
    """How the model's labels are decided, as the pyfunc and ``csml eval``/``promote`` apply it."""
    oos, positive = card.get("oos_label"), card.get("positive_label")
    score = card.get("oos_score", "softmax")
    if card.get("multi_label"):
        thresholds = "its threshold in the version's card (`label_thresholds`)"
        if exact:
            items = list(card["label_thresholds"].items())
            more = f" and {len(items) - MAX_LABELS} more" if len(items) > MAX_LABELS else ""
            shown = ", ".join(f"`{label}` {value:.3g}" for label, value in items[:MAX_LABELS])
            thresholds = f"its threshold ({shown}{more})"
        return (
            f"every label whose probability (one sigmoid per label) reaches {thresholds}, chosen on "
            "validation for each label's best F1; the most probable label when none does"
        )
    if oos and card.get("oos_threshold") is not None:
        threshold = f"{card['oos_threshold']:.6g}" if exact else "the version's OOS threshold"
        return (
            f"`{oos}` (out of scope) when it is the most probable label or the `{score}` in-scope score is "
            f"below {threshold}; else the most probable in-scope label"
        )
    if positive and card.get("decision_threshold") is not None:
        other = next(label for label in card["labels"] if label != positive)
        threshold = f"{card['decision_threshold']:.6g}" if exact else "the version's decision threshold"
        return f"`{positive}` when its probability reaches {threshold}, else `{other}`"
    return "the most probable label (argmax)"


def _training_data(p: Provenance) -> list[str]:
    if not p.identity:
        return []
    rows = ", ".join(f"{split} {n}" for split, n in p.identity.get("rows", {}).items())
    licences = "; ".join(f"{folder}: {licence}" for folder, licence in p.licences.items()) or "unknown"
    sha = str(p.identity.get("sha256", ""))[:12]
    return [
        f"- **Training data**: `{p.identity.get('name')}` ({rows}; sha256 `{sha}…`); licences: {licences}"
    ]


def _how_to_load(name: str, ref: str, card: dict[str, Any]) -> str:
    uri = f"models:/{name}@{ref}" if not ref.isdigit() else f"models:/{name}/{ref}"
    text = f'Load: `mlflow.pyfunc.load_model("{uri}")` (texts in, see its signature).'
    if card.get("labels"):
        text += f" `csml eval model_uri={uri}` scores it as `csml promote` gates it."
    return text


def _csml_version() -> str:
    import csml

    return csml.__version__
