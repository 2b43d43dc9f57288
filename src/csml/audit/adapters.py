"""Bot adapters: one small interface between the audit runner and whatever serves the chatbot.

An adapter turns a conversation (OpenAI-style ``[{"role", "content"}]`` messages, the last one the
customer's) into a :class:`csml.schemas.BotReply`. Contract: :meth:`BotAdapter.send` never raises for the
bot's misbehaviour -- timeouts, HTTP errors, unreadable JSON and empty answers come back as a reply whose
``error`` says what happened -- so one bad answer never stops an audit. Shipped adapters:

- :class:`OpenAIChatAdapter`: ``POST <url>/v1/chat/completions``; contexts from an extension field when
  the bot returns one (the reference bot's ``csml.contexts``).
- :class:`HttpJsonAdapter`: any HTTP/JSON bot described in YAML: URL, method, headers (secrets read from
  environment variables the config names), a request template, and dotted paths to the answer, contexts
  and intent in the response.
- :class:`ConversationAdapter`: the reference bot's conversation API (a session per sample, multi-turn).
- :class:`CallableAdapter`: an in-process Python function (a model under development, a test double).

A target config names its adapter in :data:`ADAPTERS` (``adapter: openai_chat``) or by import path
(``adapter: my_bots.adapters:MyAdapter``); other distributions add adapters through the entry-point group
``csml.bot_adapters``.

HTTP adapters share timeouts, retries with exponential backoff on 5xx and timeouts, bounded concurrency
and a simple rate limit (:class:`HttpAdapter`).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from csml.registry import Registry, resolve
from csml.schemas import BotReply

Messages = list[dict[str, str]]


class BotAdapter(ABC):
    """Sends conversations to a bot. Subclasses implement :meth:`send` and :meth:`identity`.

    Args:
        name: How the scorecard names the bot under test.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def send(self, messages: Messages) -> BotReply:
        """The bot's reply to ``messages``; never raises for a bot's failure (see the module docstring)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What identifies the bot and the way it is asked (no secrets): logged and part of cache keys."""

    def request_key(self, messages: Messages) -> str:
        """SHA-256 of the adapter identity and the conversation: the key of resumed samples and cached replies."""
        text = json.dumps({"bot": self.identity(), "messages": messages}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def session(self) -> Session:
        """A conversation with the bot, for turn-by-turn audits: by default every turn sends the whole
        conversation so far (bots that keep no server-side session); adapters of session APIs override it."""
        return Session(self)

    async def aclose(self) -> None:
        """Releases connections; called once after the audit."""
        return None


class Session:
    """One conversation held turn by turn through ``adapter`` (stateless: the whole history every turn).

    Args:
        adapter: The bot's adapter.

    Attributes:
        stateless: Whether a reply depends only on the messages sent (so a cached reply may stand in for a
            request); False for sessions the server keeps.
    """

    stateless = True

    def __init__(self, adapter: BotAdapter) -> None:
        self.adapter = adapter

    async def send(self, messages: Messages) -> BotReply:
        """The bot's reply to the conversation ``messages`` (the new customer message last)."""
        return await self.adapter.send(messages)


ADAPTERS: Registry[type[BotAdapter]] = Registry("bot_adapters", "bot adapter", base=BotAdapter)
"""Bot adapters by the name a target config gives in ``adapter:`` (plugins: entry-point group
``csml.bot_adapters``)."""


def get_path(payload: Any, path: str | None) -> Any:
    """The value at a dotted path (``choices.0.message.content``; ``$.`` prefix allowed), or None."""
    if not path:
        return None
    node = payload
    for part in path.removeprefix("$.").split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def _text_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v.get("text", v.get("content", ""))) if isinstance(v, dict) else str(v) for v in value]
    return [str(value)]


class _RateLimiter:
    """At most ``per_second`` request starts per second (evenly spaced); None = unlimited."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_start = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next_start - now
            self.next_start = max(now, self.next_start) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class HttpAdapter(BotAdapter):
    """Shared HTTP transport: timeout, retries with exponential backoff, concurrency and rate limits.

    Subclasses say how to build the request (:meth:`build_request`) and read the answer (:meth:`parse`).

    Args:
        name: The bot's name in the scorecard.
        url: Base URL of the bot.
        timeout_s: Per-attempt timeout.
        retries: Extra attempts after a timeout, connection error or 5xx (4xx are not retried).
        backoff_s: First retry delay; it doubles at each retry.
        concurrency: Requests in flight at once.
        rate_limit_per_s: Request starts per second (None = unlimited).
        headers: Extra headers; a value holding ``{env:NAME}`` is read from environment variable NAME.
    """

    def __init__(
        self,
        name: str,
        url: str,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        concurrency: int = 8,
        rate_limit_per_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(name)
        self.url = str(url).rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.concurrency = int(concurrency)
        self.rate_limit_per_s = rate_limit_per_s
        self.header_spec = {str(k): str(v) for k, v in (headers or {}).items()}
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: _RateLimiter | None = None

    def _headers(self) -> dict[str, str]:
        out = {}
        for key, value in self.header_spec.items():
            resolved = _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), str(value))
            if resolved.strip() and not resolved.strip().endswith("Bearer"):
                out[key] = resolved
        return out

    def _setup(self) -> None:
        import httpx

        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            )
            self._client = httpx.AsyncClient(timeout=self.timeout_s, limits=limits, headers=self._headers())
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._limiter = _RateLimiter(self.rate_limit_per_s)

    @abstractmethod
    def build_request(self, messages: Messages) -> tuple[str, str, Any]:
        """``(method, url, json body)`` for one conversation."""

    @abstractmethod
    def parse(self, payload: Any) -> BotReply:
        """A reply from a decoded JSON response (``latency_ms``/``status``/``raw`` are filled in later)."""

    def identity(self) -> dict[str, Any]:
        return {"adapter": type(self).__name__, "name": self.name, "url": self.url}

    async def send(self, messages: Messages) -> BotReply:
        method, url, body = self.build_request(messages)
        return await self.exchange(method, url, body, self.parse)

    async def exchange(self, method: str, url: str, body: Any, parse: Callable[[Any], BotReply]) -> BotReply:
        """One request with the transport policy (limits, retries); ``parse`` reads a 2xx JSON payload."""
        import httpx

        self._setup()
        reply = BotReply(error="exception: not attempted")
        for attempt in range(1, self.retries + 2):
            async with self._semaphore:  # type: ignore[union-attr]
                await self._limiter.wait()  # type: ignore[union-attr]
                start = time.perf_counter()
                try:
                    response = await self._client.request(method, url, json=body)
                    latency = (time.perf_counter() - start) * 1000
                    reply = self._reply(response, latency, parse)
                except httpx.TimeoutException:
                    reply = BotReply(error=f"timeout: no answer within {self.timeout_s:g} s")
                    reply.latency_ms = (time.perf_counter() - start) * 1000
                except httpx.TransportError as error:
                    reply = BotReply(error=f"connection: {type(error).__name__}: {error}")
                    reply.latency_ms = (time.perf_counter() - start) * 1000
            reply.attempts = attempt
            retryable = reply.error is not None and (
                reply.error.startswith(("timeout", "connection")) or (reply.status or 0) >= 500
            )
            if not retryable or attempt > self.retries:
                return reply
            await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        return reply

    def _reply(self, response: Any, latency_ms: float, parse: Callable[[Any], BotReply]) -> BotReply:
        text = response.text
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            reply = BotReply(error=f"http_{response.status_code}: {text[:200]}", raw=payload or text[:2000])
        elif payload is None:
            reply = BotReply(error=f"malformed_json: {text[:200]!r}", raw=text[:2000])
        else:
            try:
                reply = parse(payload)
            except (TypeError, ValueError, KeyError) as error:
                reply = BotReply(error=f"malformed_json: {error}")
            reply.raw = payload
            if reply.error is None and not reply.text.strip():
                reply.error = "empty_answer: the response holds no answer text"
        reply.status = response.status_code
        reply.latency_ms = latency_ms
        return reply

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_ENV_REF = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@ADAPTERS.register("openai_chat")
class OpenAIChatAdapter(HttpAdapter):
    """An OpenAI-compatible chat completions API (``POST <url>/v1/chat/completions``).

    Args:
        model: The ``model`` field of the request (None leaves it out).
        api_key_env: NAME of the environment variable holding a bearer token (unset: no auth header).
        path: Endpoint path under ``url``.
        extension_field: Field of the completion holding the bot's extras (the reference bot's ``csml``):
            ``contexts``, ``intent``, ``confidence``, ``abstained``, ``escalated`` are read from it.
        system_prompt: A system message sent before every conversation (None: none; a bot that holds its own
            system prompt server-side needs none).
        temperature: The request's ``temperature`` (None leaves it to the server; 0 for repeatable audits of
            a model served directly).
        max_tokens: The request's ``max_tokens`` (None leaves it to the server).
        **transport: :class:`HttpAdapter` settings.
    """

    def __init__(
        self,
        name: str,
        url: str,
        model: str | None = None,
        api_key_env: str | None = None,
        path: str = "/v1/chat/completions",
        extension_field: str | None = "csml",
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **transport: Any,
    ) -> None:
        headers = dict(transport.pop("headers", None) or {})
        if api_key_env:
            headers.setdefault("Authorization", f"Bearer {{env:{api_key_env}}}")
        super().__init__(name, url, headers=headers, **transport)
        self.model = model
        self.path = path
        self.extension_field = extension_field
        self.options = {
            key: value
            for key, value in (("temperature", temperature), ("max_tokens", max_tokens))
            if value is not None
        }
        self.system_prompt = system_prompt

    def identity(self) -> dict[str, Any]:
        extra = dict(self.options)
        if self.system_prompt:  # its hash: the prompt may be long or confidential
            extra["system_prompt_sha256"] = hashlib.sha256(self.system_prompt.encode()).hexdigest()
        return {**super().identity(), "model": self.model, "path": self.path, **extra}

    def build_request(self, messages: Messages) -> tuple[str, str, Any]:
        if self.system_prompt:
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        body: dict[str, Any] = {"messages": messages, **self.options}
        if self.model:
            body["model"] = self.model
        return "POST", self.url + self.path, body

    def parse(self, payload: Any) -> BotReply:
        text = get_path(payload, "choices.0.message.content")
        if not isinstance(text, str):
            return BotReply(error="malformed_json: no choices[0].message.content")
        ext = get_path(payload, self.extension_field) or {}
        ext = ext if isinstance(ext, dict) else {}
        return BotReply(
            text=text,
            contexts=_text_list(ext.get("contexts")),
            intent=ext.get("intent"),
            confidence=ext.get("confidence"),
            abstained=ext.get("abstained"),
            escalated=ext.get("escalated"),
        )


@ADAPTERS.register("http_json")
class HttpJsonAdapter(HttpAdapter):
    """A bot with its own HTTP/JSON API, described entirely in config.

    Args:
        method: HTTP method.
        path: Endpoint path under ``url``.
        request_template: The JSON body; string values may hold ``{question}`` (the last user message)
            and ``{history}`` (earlier turns as text); the value ``"{messages}"`` is the message list.
        answer_path: Dotted path of the answer text in the response (required).
        contexts_path: Dotted path of the contexts (a string, or a list of strings or ``{text}`` objects).
        intent_path, confidence_path, abstained_path, escalated_path: Optional dotted paths.
        **transport: :class:`HttpAdapter` settings (``headers`` values may use ``{env:NAME}``).
    """

    def __init__(
        self,
        name: str,
        url: str,
        answer_path: str,
        method: str = "POST",
        path: str = "",
        request_template: Any = None,
        contexts_path: str | None = None,
        intent_path: str | None = None,
        confidence_path: str | None = None,
        abstained_path: str | None = None,
        escalated_path: str | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(name, url, **transport)
        self.method = method.upper()
        self.path = path
        self.template = (
            _plain(request_template) if request_template is not None else {"question": "{question}"}
        )
        self.paths = {
            "text": answer_path,
            "contexts": contexts_path,
            "intent": intent_path,
            "confidence": confidence_path,
            "abstained": abstained_path,
            "escalated": escalated_path,
        }

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "method": self.method, "path": self.path, "template": self.template}

    def build_request(self, messages: Messages) -> tuple[str, str, Any]:
        question = messages[-1]["content"]
        history = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])

        def fill(node: Any) -> Any:
            if node == "{messages}":
                return messages
            if isinstance(node, str):
                return node.replace("{question}", question).replace("{history}", history)
            if isinstance(node, dict):
                return {key: fill(value) for key, value in node.items()}
            if isinstance(node, list):
                return [fill(value) for value in node]
            return node

        return self.method, self.url + self.path, fill(self.template)

    def parse(self, payload: Any) -> BotReply:
        text = get_path(payload, self.paths["text"])
        if not isinstance(text, str):
            return BotReply(error=f"malformed_json: no string at answer_path {self.paths['text']!r}")
        return BotReply(
            text=text,
            contexts=_text_list(get_path(payload, self.paths["contexts"])),
            intent=get_path(payload, self.paths["intent"]),
            confidence=get_path(payload, self.paths["confidence"]),
            abstained=get_path(payload, self.paths["abstained"]),
            escalated=get_path(payload, self.paths["escalated"]),
        )


@ADAPTERS.register("conversation")
class ConversationAdapter(HttpAdapter):
    """The reference bot's conversation API: a session per sample, earlier turns replayed, then the question.

    ``POST <url>/v1/conversations`` opens a conversation (its id is the session id); each earlier user
    turn of the sample is sent to ``POST <url>/v1/conversations/{id}/messages`` (the bot answers them
    itself: assistant turns of the history are not injected), and the reply to the last message is the
    sample's. Latency is that last exchange's; a failure while opening or replaying is the sample's error.

    Args:
        channel: The conversation's channel (``chat``, ``email``...).
        api_key_env: NAME of the environment variable holding a bearer token.
        **transport: :class:`HttpAdapter` settings.
    """

    def __init__(
        self, name: str, url: str, channel: str = "chat", api_key_env: str | None = None, **transport: Any
    ) -> None:
        headers = dict(transport.pop("headers", None) or {})
        if api_key_env:
            headers.setdefault("Authorization", f"Bearer {{env:{api_key_env}}}")
        super().__init__(name, url, headers=headers, **transport)
        self.channel = channel

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "api": "conversations", "channel": self.channel}

    def build_request(self, messages: Messages) -> tuple[str, str, Any]:
        return "POST", f"{self.url}/v1/conversations", {"channel": self.channel}

    def parse(self, payload: Any) -> BotReply:
        if not isinstance(payload.get("text"), str):
            return BotReply(error="malformed_json: no text in the message reply")
        return BotReply(
            text=payload["text"],
            contexts=_text_list(payload.get("contexts")),
            intent=payload.get("intent"),
            confidence=payload.get("confidence"),
            abstained=payload.get("abstained"),
            escalated=payload.get("escalated"),
        )

    async def open(self) -> BotReply:
        """Opens a conversation; the reply's text is its id."""
        method, url, body = self.build_request([])
        opened = await self.exchange(method, url, body, lambda p: BotReply(text=str(p.get("id") or "")))
        if not opened.ok:
            opened.error = f"{opened.error} (opening the conversation)"
        return opened

    async def message(self, conversation_id: str, text: str) -> BotReply:
        """Sends one customer message to an open conversation."""
        url = f"{self.url}/v1/conversations/{conversation_id}/messages"
        return await self.exchange("POST", url, {"text": text}, self.parse)

    async def send(self, messages: Messages) -> BotReply:
        opened = await self.open()
        if not opened.ok:
            return opened
        for message in messages[:-1]:
            if message["role"] != "user":
                continue
            earlier = await self.message(opened.text, message["content"])
            if not earlier.ok:
                earlier.error = f"{earlier.error} (replaying an earlier turn)"
                return earlier
        return await self.message(opened.text, messages[-1]["content"])

    def session(self) -> Session:
        return _ConversationSession(self)


class _ConversationSession(Session):
    """A conversation of the conversation API: opened at the first turn, then one message per turn."""

    stateless = False

    def __init__(self, adapter: ConversationAdapter) -> None:
        super().__init__(adapter)
        self.api = adapter
        self.conversation_id: str | None = None

    async def send(self, messages: Messages) -> BotReply:
        if self.conversation_id is None:
            opened = await self.api.open()
            if not opened.ok:
                return opened
            self.conversation_id = opened.text
        return await self.api.message(self.conversation_id, messages[-1]["content"])


def _plain(node: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


@ADAPTERS.register("callable")
class CallableAdapter(BotAdapter):
    """An in-process bot: a function (sync or async) from messages to a reply.

    The function may return a string (the answer), a dict of :class:`BotReply` fields, or a
    :class:`BotReply`. An exception it raises is recorded as the sample's error.

    Args:
        fn: The function, or a ``"module:function"`` string.
        name: The bot's name in the scorecard.
    """

    def __init__(self, fn: Callable[[Messages], Any] | str, name: str | None = None) -> None:
        if isinstance(fn, str):
            fn = resolve(fn)
        self.fn = fn
        super().__init__(name or getattr(fn, "__qualname__", "callable"))

    def identity(self) -> dict[str, Any]:
        return {
            "adapter": "CallableAdapter",
            "name": self.name,
            "function": getattr(self.fn, "__qualname__", ""),
        }

    async def send(self, messages: Messages) -> BotReply:
        start = time.perf_counter()
        try:
            out = self.fn(messages)
            if inspect.isawaitable(out):
                out = await out
        except Exception as error:  # a crashing bot is a finding, not a crash of the audit
            return BotReply(error=f"exception: {type(error).__name__}: {error}")
        latency = (time.perf_counter() - start) * 1000
        if isinstance(out, BotReply):
            reply = out
        elif isinstance(out, dict):
            reply = BotReply(**out)
        else:
            reply = BotReply(text="" if out is None else str(out))
        reply.latency_ms = reply.latency_ms or latency
        if reply.error is None and not reply.text.strip():
            reply.error = "empty_answer: the function returned no answer text"
        return reply
