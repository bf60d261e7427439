"""Run the API under uvicorn, with TLS by default, and tell the user how to connect."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn

from batchpoint.app.asgi import create_app
from batchpoint.app.tls import TlsFiles, ensure_certificates
from batchpoint.config import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION, DEFAULT_WORKSPACE, Settings

GRACEFUL_SHUTDOWN_SECONDS = 3
"""How long a stop waits for requests in flight to finish."""

SNIPPET = '''\
import os, subprocess, time
os.environ["REQUESTS_CA_BUNDLE"] = {ca!r}
from azure.core.credentials import AccessToken
from azure.ai.ml import MLClient

class BatchpointToken:
    """Tokens of the server's own issuer, from `batchpoint token`, for the scope each SDK call asks for."""
    def get_token(self, *scopes, **kwargs):
        command = ["batchpoint", "token", "--home", {home!r}, "--minutes", "60"]
        command += [f"--audience={{scope}}" for scope in scopes]
        token = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
        return AccessToken(token, int(time.time()) + 3600)

ml_client = MLClient(
    BatchpointToken(), {subscription!r}, {group!r}, {workspace!r},
    cloud="batchpoint",
    cloud_metadata={{
        "azure_portal": {base!r}, "resource_manager": {base!r},
        "active_directory": {base!r}, "aml_resource_id": {base!r},
        "storage_endpoint": "core.windows.net", "registry_discovery_endpoint": {base!r},
    }},
)
# The management client:
from azure.mgmt.machinelearningservices import MachineLearningServicesMgmtClient
mgmt = MachineLearningServicesMgmtClient(BatchpointToken(), {subscription!r}, base_url={base!r}, polling_interval=1)
'''


def banner(settings: Settings, tls: TlsFiles | None) -> str:
    lines = [f"batchpoint is listening on {settings.base_url}", f"data directory: {settings.home}"]
    if tls is not None:
        lines.append(f"trust its certificate with:  export REQUESTS_CA_BUNDLE={tls.ca_cert}")
    lines.append(f"get an access token with:    export TOKEN=$(batchpoint token --home {settings.home})")
    lines += ["", "Connect the official clients (paste into Python):", ""]
    lines.append(
        SNIPPET.format(
            ca=str(tls.ca_cert) if tls else "",
            subscription=DEFAULT_SUBSCRIPTION,
            group=DEFAULT_RESOURCE_GROUP,
            workspace=DEFAULT_WORKSPACE,
            base=settings.base_url,
            home=str(settings.home),
        )
    )
    return "\n".join(lines)


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the background work to stop as soon as a stop signal arrives, so that
    jobs and builds stop while open connections drain (docs/deployment.md: within 10 s)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping
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
    settings.home.mkdir(parents=True, exist_ok=True)
    tls = ensure_certificates(settings.home) if settings.tls else None
    print(banner(settings, tls), flush=True)
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
        _Server(config, stopping).run()
    except KeyboardInterrupt:
        pass  # uvicorn has shut down gracefully and re-raised Ctrl-C; a clean stop exits 0
    print("batchpoint stopped.", flush=True)
