"""Run the API under uvicorn, with TLS by default, and tell the user how to connect."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn

from batchpoint.app.asgi import create_app
from batchpoint.app.sandboxing import Sandboxing, refusal, sandboxing, unreachable
from batchpoint.app.tls import TlsFiles, ensure_certificates, roots_in_force, write_bundle
from batchpoint.config import DEFAULT_URL, Settings, default_home
from batchpoint.runtime.gpus import describe_gpus, discover

LISTENING = "batchpoint is listening on"
"""The banner's first words, printed once the port is bound: what a script (or test) waits for."""
GRACEFUL_SHUTDOWN_SECONDS = 3
"""How long a stop waits for requests in flight to finish."""


def banner(settings: Settings, tls: TlsFiles | None, sandbox: Sandboxing) -> str:
    lines = [f"{LISTENING} {settings.base_url}", f"data directory: {settings.home}", sandbox.description]
    lines.append(describe_gpus(settings.gpus or []))
    if tls is not None:
        lines.append(f"connect unmodified Azure ML code (docs/azure-sdk.md):  {env_command(settings)}")
    else:
        lines.append("plain HTTP: the Azure SDKs send tokens over HTTPS only (docs/azure-sdk.md)")
    lines.append(
        f"get an access token with:    export TOKEN=$(batchpoint token --home {shlex.quote(str(settings.home))})"
    )
    return "\n".join(lines)


def env_command(settings: Settings) -> str:
    """The line that sets a shell up for this server (``batchpoint env``), with the options it needs."""
    options = [] if settings.base_url == DEFAULT_URL else ["--url", settings.base_url]
    if settings.home != default_home():
        options += ["--home", str(settings.home)]
    return f'eval "$(batchpoint env{"".join(" " + shlex.quote(option) for option in options)})"'


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the background work to stop as soon as a stop signal arrives, so that
    jobs and builds stop while open connections drain (docs/deployment.md: within 10 s)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event, banner: str) -> None:
        super().__init__(config)
        self._stopping = stopping
        self._banner = banner
        self._signalled, self._signal = os.pipe()
        os.set_blocking(self._signal, False)  # a full pipe (a flood of signals) must not block the handler
        threading.Thread(target=self._stop_when_signalled, name="stop-signal", daemon=True).start()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A signal handler runs between two steps of the main thread, which may be inside `stopping.set()` for
        the signal before, holding the event's lock: setting it here again hung the server for good (Ctrl-C
        pressed twice). The handler only writes a byte; a thread of its own sets the event."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._signal, b"\0")
        super().handle_exit(sig, frame)

    def _stop_when_signalled(self) -> None:
        os.read(self._signalled, 1)
        self._stopping.set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """The banner says the server listens once it does (start-up done, the port bound): a client that waits for
        it is not refused."""
        await super().startup(sockets)
        if self.started:
            print(self._banner, flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drops idle keep-alive connections at once, then drains the rest as uvicorn does.

        uvicorn closes an idle connection politely (at a stop, or after its keep-alive timeout), and over TLS that
        waits for the client's close_notify, which an idle pooled client (MLClient, requests) never sends: every
        stop then took the whole grace period."""
        for connection in list(self.server_state.connections):
            if _is_idle(connection):
                connection.transport.abort()
        await super().shutdown(sockets)


def _is_idle(connection: Any) -> bool:
    """No request is being read or answered, and every byte of the last response has left."""
    cycle = getattr(connection, "cycle", None)
    transport = getattr(connection, "transport", None)
    if transport is None:
        return False
    return (cycle is None or cycle.response_complete) and transport.get_write_buffer_size() == 0


def serve(settings: Settings) -> None:
    settings.make_home()
    tls = ensure_certificates(settings.home) if settings.tls else None
    if tls is not None:
        write_bundle(tls, roots_in_force(os.environ))  # what job workers trust (jobs/identity.py)
    workers = sandboxing(settings)
    if settings.gpus is None:
        settings.gpus = list(discover())  # once: the banner says what the workers get
    problem = unreachable(settings, workers.sandbox) or refusal(workers, settings)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        raise SystemExit(2)
    stopping = threading.Event()
    config = uvicorn.Config(
        create_app(settings, stopping),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    try:
        _Server(config, stopping, banner(settings, tls, workers)).run()
    except KeyboardInterrupt:
        pass  # uvicorn has shut down gracefully and re-raised Ctrl-C; a clean stop exits 0
    print("batchpoint stopped.", flush=True)
