"""Running the reference bot: ``csml serve`` (foreground) and :class:`BackgroundServer` (a real server
on a free 127.0.0.1 port in a thread, for tests, benchmarks and audits run in the same process)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from omegaconf import DictConfig

from csml.config import apply_offline_env

log = logging.getLogger("csml")


def serve(cfg: DictConfig) -> None:
    """``csml serve``: builds the bot from the composed config and serves it until interrupted."""
    import uvicorn

    from csml.bot.app import create_app

    apply_offline_env(bool(cfg.get("offline", True)))
    limit_threads(cfg.server.get("threads"))
    app = create_app(cfg)
    log.info(
        "csml bot %s on http://%s:%s (replies logged to %s)",
        cfg.bot.name,
        cfg.server.host,
        cfg.server.port,
        cfg.bot.reply_log,
    )
    uvicorn.run(app, host=cfg.server.host, port=int(cfg.server.port), log_level=cfg.server.log_level)


def limit_threads(threads: int | None) -> None:
    """Caps torch's and the BLAS libraries' thread pools for this process (None leaves the defaults).

    A server answers many small requests: idle pool threads sleeping between them cost more in wake-ups
    than they save, and the event loop needs a core of its own.
    """
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))


class BackgroundServer:
    """A uvicorn server running ``app`` in a daemon thread; a context manager.

    Args:
        app: An ASGI app (:func:`csml.bot.app.create_app`).
        host: Interface to bind.
        port: Port, 0 for a free one (read :attr:`url` after entering).
        log_level: uvicorn's log level.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, name="csml-bot", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bot server did not start (see the log above)")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
