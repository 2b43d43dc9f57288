"""The versioned mapping from datasets and intents to customer-journey stages and channels.

No public dataset is labelled with journey stage or channel, so csml derives both from data kept in
``journey_map.yaml`` (beside this module): each dataset's channel, its default stage, and per-intent stage
overrides. The map is reviewed like code and its ``version`` is logged with every run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from csml.data.splits import DataValidationError
from csml.records import Channel, JourneyStage

DEFAULT_JOURNEY_MAP = Path(__file__).with_name("journey_map.yaml")


@dataclass(frozen=True)
class DatasetJourney:
    """Journey rules of one dataset.

    Attributes:
        channel: Channel every record of the dataset came through.
        default_stage: Stage of records whose intent has no override (all records of sentiment datasets).
        intents: Stage overrides per intent.
    """

    channel: Channel
    default_stage: JourneyStage
    intents: Mapping[str, JourneyStage] = field(default_factory=dict)

    def stage_for(self, intent: str | None = None) -> JourneyStage:
        """The stage of a record with this intent: its override if listed, else the default stage."""
        if intent is None:
            return self.default_stage
        return self.intents.get(intent, self.default_stage)


@dataclass(frozen=True)
class JourneyMap:
    """Journey rules of every known dataset, as loaded from a journey-map YAML file.

    Attributes:
        version: Version of the mapping, logged with runs so results say which mapping sliced them.
        datasets: Rules per dataset name (``"banking77"``).
        path: File the map was read from.
    """

    version: str
    datasets: Mapping[str, DatasetJourney]
    path: str = ""

    def __contains__(self, dataset: object) -> bool:
        return dataset in self.datasets

    def entry(self, dataset: str) -> DatasetJourney:
        """Rules of ``dataset``; a ``KeyError`` naming the closest known datasets if it is not mapped."""
        if dataset not in self.datasets:
            close = difflib.get_close_matches(dataset, list(self.datasets), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"dataset {dataset!r} is not in the journey map {self.path} (version {self.version}); "
                f"known: {', '.join(sorted(self.datasets))}{hint}"
            )
        return self.datasets[dataset]

    def stage_for(self, dataset: str, intent: str | None = None) -> JourneyStage:
        """The journey stage of a record of ``dataset`` with ``intent``: override, else dataset default."""
        return self.entry(dataset).stage_for(intent)

    def channel_for(self, dataset: str) -> Channel:
        """The channel every record of ``dataset`` came through."""
        return self.entry(dataset).channel


def load_journey_map(path: str | Path | None = None) -> JourneyMap:
    """Reads and validates a journey map; the bundled ``journey_map.yaml`` by default.

    Raises:
        DataValidationError: The file is missing, or a key or value is not valid (the error names the key).
    """
    path = Path(path) if path is not None else DEFAULT_JOURNEY_MAP
    if not path.is_file():
        raise DataValidationError("journey map not found", file=str(path), expected="a YAML file")
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return parse_journey_map(data, source=str(path))


def parse_journey_map(data: Any, source: str = "<journey map>") -> JourneyMap:
    """Builds a :class:`JourneyMap` from the parsed YAML, checking every stage and channel value."""
    if not isinstance(data, dict):
        raise DataValidationError("journey map must be a mapping", file=source, found=type(data).__name__)
    if data.get("version") in (None, ""):
        raise DataValidationError("journey map has no version", file=source, field="version")
    datasets = data.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise DataValidationError(
            "journey map lists no datasets", file=source, field="datasets", expected="a mapping"
        )
    parsed = {name: _parse_dataset(name, entry, source) for name, entry in datasets.items()}
    return JourneyMap(version=str(data["version"]), datasets=parsed, path=source)


def _parse_dataset(name: str, entry: Any, source: str) -> DatasetJourney:
    key = f"datasets.{name}"
    if not isinstance(entry, dict):
        raise DataValidationError("dataset entry must be a mapping", file=source, field=key)
    unknown = set(entry) - {"channel", "default_stage", "intents"}
    if unknown:
        raise DataValidationError(
            "unknown keys in dataset entry",
            file=source,
            field=key,
            expected="channel, default_stage, intents",
            found=", ".join(sorted(unknown)),
        )
    intents = entry.get("intents") or {}
    if not isinstance(intents, dict):
        raise DataValidationError("intents must map intent -> stage", file=source, field=f"{key}.intents")
    return DatasetJourney(
        channel=_enum(Channel, entry.get("channel"), source, f"{key}.channel"),
        default_stage=_enum(JourneyStage, entry.get("default_stage"), source, f"{key}.default_stage"),
        intents={
            str(intent): _enum(JourneyStage, stage, source, f"{key}.intents.{intent}")
            for intent, stage in intents.items()
        },
    )


def _enum(kind: type[Channel] | type[JourneyStage], value: Any, source: str, key: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise DataValidationError(
            f"invalid {kind.__name__} value",
            file=source,
            field=key,
            expected="one of " + ", ".join(member.value for member in kind),
            found=repr(value),
        ) from None
