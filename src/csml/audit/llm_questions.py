"""Questions for ``csml audit init`` written by a language model behind an OpenAI-compatible chat endpoint
(vLLM, llama.cpp server, a hosted model), beside the template questions; opt-in (``generator`` in
``conf/audit_init.yaml``).

Each knowledge-base entry is sent once with :data:`PROMPT`; the reply's lines that read as questions (numbering
and bullets stripped, ending in "?", three words or more) are kept, at most ``per_entry``. Requests ask for
temperature 0 and the seed, so a deterministic server answers the same way twice. The key is read from the
environment variable the config names (``api_key_env``), sent only then, and never written anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from csml.audit.errors import AuditConfigError
from csml.knowledge import KBEntry

PROMPT = (
    "You write test questions for a customer-service chatbot. Given one passage of its knowledge base, write "
    "{n} different questions a customer might ask that the passage answers, in a customer's own words, one per "
    "line, with no numbering and nothing else."
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*")


def model_questions(
    entries: Sequence[KBEntry], generator: dict[str, Any], seed: int, progress: bool = True
) -> dict[str, list[str]]:
    """Questions per entry id from the endpoint ``generator`` describes: ``base_url`` (up to ``/v1``),
    ``model``, ``api_key_env`` (optional), ``per_entry`` (default 2), ``timeout_s`` (default 60).

    Raises:
        AuditConfigError: A missing setting, an unreachable endpoint or an error answer (with its message).
    """
    import httpx
    from tqdm.auto import tqdm

    missing = [key for key in ("base_url", "model") if not generator.get(key)]
    if missing:
        raise AuditConfigError(
            f"generator: set {missing} (an OpenAI-compatible chat endpoint), or generator=null"
        )
    headers = {}
    if key_env := generator.get("api_key_env"):
        if not os.environ.get(key_env):
            raise AuditConfigError(f"generator.api_key_env: the environment variable {key_env} is not set")
        headers["Authorization"] = f"Bearer {os.environ[key_env]}"
    per_entry = int(generator.get("per_entry", 2))
    url = str(generator["base_url"]).rstrip("/") + "/chat/completions"
    found: dict[str, list[str]] = {}
    with httpx.Client(timeout=float(generator.get("timeout_s", 60)), headers=headers) as client:
        for entry in tqdm(entries, desc="questions from the model", unit="entry", disable=not progress):
            body = {
                "model": generator["model"],
                "temperature": 0,
                "seed": seed,
                "messages": [
                    {"role": "system", "content": PROMPT.format(n=per_entry)},
                    {"role": "user", "content": f"{entry.title}\n\n{entry.passage}"},
                ],
            }
            try:
                response = client.post(url, json=body)
                response.raise_for_status()
                text = response.json()["choices"][0]["message"]["content"]
            except httpx.HTTPStatusError as error:
                raise AuditConfigError(
                    f"generator: {url} answered {error.response.status_code}: {error.response.text[:200]}"
                ) from None
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
                raise AuditConfigError(f"generator: no usable answer from {url} ({error})") from None
            found[entry.id] = questions_in(str(text))[:per_entry]
    return found


def questions_in(text: str) -> list[str]:
    """The lines of ``text`` that read as questions, numbering and bullets stripped, each once."""
    lines = [_BULLET.sub("", line).strip().strip('"') for line in text.splitlines()]
    return list(dict.fromkeys(line for line in lines if line.endswith("?") and len(line.split()) >= 3))
