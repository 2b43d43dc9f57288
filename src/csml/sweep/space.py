"""Search spaces declared in YAML (``hparams_search.search_space``) and turned into Optuna suggestions.

Each entry maps a config key (dotted, as on the command line) to a distribution::

    model.optimizer.lr: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}
    trainer.max_epochs: {type: int, low: 1, high: 4}
    data.batch_size: {type: categorical, choices: [16, 32, 64]}

A trial's suggestions become Hydra overrides (``model.optimizer.lr=3.2e-05``) of the training config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TYPES = ("float", "int", "categorical")


class SearchSpaceError(ValueError):
    """A search-space entry that cannot be sampled; the message names the key and what was expected."""


@dataclass(frozen=True)
class Param:
    """One dimension of the search: a config key and its distribution."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draws this parameter's value for an ``optuna.Trial``."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return trial.suggest_categorical(self.key, list(self.choices))


def parse_space(space: Mapping[str, Any] | None) -> list[Param]:
    """Validates ``hparams_search.search_space`` and returns its parameters in declaration order.

    Raises:
        SearchSpaceError: an empty space, an unknown type, missing or inverted bounds, a log range that
            is not positive, a step with ``log``, or an empty list of choices.
    """
    if not space:
        raise SearchSpaceError(
            "hparams_search.search_space is empty: declare at least one entry such as "
            "'model.optimizer.lr: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}'"
        )
    return [_parse_entry(str(key), entry) for key, entry in space.items()]


def _parse_entry(key: str, entry: Any) -> Param:
    where = f"hparams_search.search_space['{key}']"
    if not isinstance(entry, Mapping) or "type" not in entry:
        raise SearchSpaceError(f"{where}: expected a mapping with a 'type' in {TYPES}; found {entry!r}")
    kind = str(entry["type"])
    if kind not in TYPES:
        raise SearchSpaceError(f"{where}: unknown type '{kind}'; expected one of {TYPES}")
    unknown = set(entry) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        raise SearchSpaceError(
            f"{where}: unknown fields {sorted(unknown)}; expected low/high/log/step or choices"
        )
    if kind == "categorical":
        choices = entry.get("choices")
        if not choices or isinstance(choices, (str, Mapping)):
            raise SearchSpaceError(
                f"{where}: type categorical needs a non-empty list 'choices'; found {choices!r}"
            )
        return Param(key, kind, choices=tuple(choices))
    low, high = entry.get("low"), entry.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or isinstance(low, bool):
        raise SearchSpaceError(
            f"{where}: type {kind} needs numeric 'low' and 'high'; found low={low!r}, high={high!r}"
        )
    if low >= high:
        raise SearchSpaceError(f"{where}: expected low < high; found low={low}, high={high}")
    log, step = bool(entry.get("log", False)), entry.get("step")
    if log and low <= 0:
        raise SearchSpaceError(f"{where}: log: true needs low > 0; found low={low}")
    if log and step is not None:
        raise SearchSpaceError(f"{where}: 'step' and 'log: true' cannot be combined (Optuna)")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise SearchSpaceError(f"{where}: type int needs integer bounds; found low={low}, high={high}")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def to_overrides(params: Mapping[str, Any]) -> list[str]:
    """Hydra overrides (``key=value``) setting each sampled value; strings are quoted."""
    return [f"{key}={_override_value(value)}" for key, value in params.items()]


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)
