"""Model-registry look-ups for promotion: versions by alias, number or run, lineage and audit runs.

Every look-up that can miss raises :class:`RegistryError` with what exists instead, so a command line
typo gets an actionable message rather than an MLflow stack trace.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

AUDIT_PASSED_TAG = "csml.audit.passed"
"""The tag an audit scorecard run carries: ``true`` when every gate of its suite passed."""
RUN_PREFIX = "run:"


class RegistryError(LookupError):
    """A tracking store, registered model, version, alias or run that does not exist."""


def registry_client(tracking: Any) -> Any:
    """An ``MlflowClient`` on the configured store, which must already exist (nothing is created)."""
    from mlflow import MlflowClient

    uri = str(tracking["uri"])
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise RegistryError(
            f"no MLflow store at {uri}: train and register a model first (csml train), or point "
            "tracking.uri at the store that holds it"
        )
    return MlflowClient(tracking_uri=uri, registry_uri=str(tracking.get("registry_uri") or uri))


def get_registered_model(client: Any, name: str) -> Any:
    """The registered model ``name``; the error lists the registered models (with a close match)."""
    try:
        return client.get_registered_model(name)
    except Exception as error:
        if not _missing(error):
            raise
    names = sorted(m.name for m in client.search_registered_models())
    raise RegistryError(
        f"no registered model named '{name}'{_did_you_mean(name, names)}; registered models: "
        f"{', '.join(names) or 'none'} (set model_name=<one of them>)"
    )


def resolve_version(client: Any, model: Any, ref: str | int) -> Any:
    """The ``ModelVersion`` that ``ref`` names: an alias, a version number, or ``run:<run_id>``.

    A run that registered several versions of the model resolves to its latest one.
    """
    ref = str(ref)
    if ref.isdigit():
        try:
            return client.get_model_version(model.name, ref)
        except Exception as error:
            if not _missing(error):
                raise
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{model.name}'"))
        raise RegistryError(
            f"'{model.name}' has no version {ref}; its versions: {', '.join(map(str, versions)) or 'none'}"
        )
    if ref.startswith(RUN_PREFIX):
        run_id = ref.removeprefix(RUN_PREFIX)
        versions = client.search_model_versions(f"name='{model.name}' and run_id='{run_id}'")
        if not versions:
            raise RegistryError(
                f"no version of '{model.name}' was registered by run {run_id}; pass candidate=<alias>, "
                "<version number> or run:<id of the training run that registered it>"
            )
        return max(versions, key=lambda v: int(v.version))
    aliases = dict(model.aliases)
    if ref not in aliases:
        raise RegistryError(
            f"'{model.name}' has no alias '{ref}'{_did_you_mean(ref, aliases)}; its aliases: "
            f"{', '.join(f'{a} -> v{v}' for a, v in sorted(aliases.items())) or 'none'}"
        )
    return client.get_model_version(model.name, str(aliases[ref]))


def alias_version(model: Any, alias: str) -> str | None:
    """The version number ``alias`` points to, or ``None`` when the model has no such alias."""
    version = dict(model.aliases).get(alias)
    return None if version is None else str(version)


def lineage(client: Any, version: Any) -> dict[str, str]:
    """Where a version came from, read from the run that logged it: commit, config, training data."""
    if not version.run_id:
        return {"training_run_id": "unknown"}
    tags = client.get_run(version.run_id).data.tags
    return {
        "training_run_id": version.run_id,
        "git_commit": tags.get("csml.git_commit", "unknown"),
        "dataset_sha256": tags.get("csml.dataset_sha256", "unknown"),
        "config": f"runs:/{version.run_id}/config/config.yaml",
    }


def audit_tag(client: Any, run_id: str) -> str | None:
    """The ``csml.audit.passed`` tag of an audit run (``None`` when absent); the run must exist."""
    try:
        run = client.get_run(run_id)
    except Exception as error:
        if not _missing(error):
            raise
        raise RegistryError(
            f"audit_run_id={run_id} is not a run in this tracking store; pass the run id of a csml audit "
            f"scorecard (it carries the tag {AUDIT_PASSED_TAG}), or audit_run_id=null"
        ) from None
    return run.data.tags.get(AUDIT_PASSED_TAG)


def _missing(error: Exception) -> bool:
    return getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
