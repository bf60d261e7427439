"""``batchpoint serve`` as a user starts it: HTTPS by default, its own certificate, a usable banner."""

from __future__ import annotations

import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server import API, WORKSPACE_ID, Server

SIGNAL_BURST = 300


def test_serves_https_with_a_certificate_for_127_0_0_1_and_localhost(tls_server: Server) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tls_server.ca_cert))) as client:
        for host in ("127.0.0.1", "localhost"):
            response = client.get(
                f"https://{host}:{tls_server.port}{WORKSPACE_ID}",
                params={"api-version": API},
                headers={"Authorization": f"Bearer {tls_server.token()}"},
            )
            assert response.status_code == 200


def test_plain_clients_without_the_certificate_are_refused(tls_server: Server) -> None:
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{tls_server.base_url}/discovery")


def test_banner_tells_how_to_connect(tls_server: Server) -> None:
    log = (tls_server.home / f"server-{tls_server.port}.log").read_text()
    assert tls_server.base_url in log
    assert f'eval "$(batchpoint env --url {tls_server.base_url} --home {tls_server.home})"' in log


def test_first_start_creates_default_workspace_and_data_directory(tls_server: Server) -> None:
    assert (tls_server.home / "batchpoint.db").exists()
    assert tls_server.ca_cert.exists() and (tls_server.home / "tls" / "server-key.pem").stat().st_mode & 0o077 == 0


def test_ctrl_c_stops_cleanly(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = Server(home=tmp_path_factory.mktemp("home"), cold=True).start()  # `python -m batchpoint serve` itself
    assert server.stop() == 0
    assert "batchpoint stopped." in (server.home / f"server-{server.port}.log").read_text()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_burst_of_stop_signals_still_stops_the_server(tmp_path: Path, stop_signal: signal.Signals) -> None:
    """Ctrl-C pressed again and again, or a supervisor that signals twice: every signal after the first may arrive
    while the server handles the one before, and the server still stops."""
    server = Server(home=tmp_path).start()
    assert server.process is not None
    for _ in range(SIGNAL_BURST):
        server.process.send_signal(stop_signal)
    try:
        code = server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL)
        raise AssertionError(f"the server hung after {SIGNAL_BURST} x {stop_signal.name}") from None
    assert code in (0, -stop_signal)
