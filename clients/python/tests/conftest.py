"""A HandoffRail server (the release binary: `HANDOFFRAIL_BINARY`, default the repository's
target/release/handoffrail) with its proxy, and the repository's stand-in upstream API over TLS, for the session."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPOSITORY = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: str, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        try:
            if httpx.get(check, verify=False, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start:\n{log.read_text()}")


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str
    proxy: str
    upstream: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    scratch = tmp_path_factory.mktemp("handoffrail")
    binary = os.environ.get("HANDOFFRAIL_BINARY", str(REPOSITORY / "target/release/handoffrail"))
    api_key = "hr_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    upstream_port, api_port, proxy_port = free_port(), free_port(), free_port()

    upstream_log = scratch / "stand-in-api.log"
    upstream = subprocess.Popen(
        [sys.executable, str(REPOSITORY / "scripts/stand-in-api.py"), "--port", str(upstream_port),
         "--tls-dir", str(scratch / "tls")],
        stderr=upstream_log.open("w"),
    )
    upstream_url = f"https://localhost:{upstream_port}"
    wait_until(f"{upstream_url}/v1/stock/none", "the stand-in API", upstream, upstream_log)

    server_log = scratch / "server.log"
    handoffrail = subprocess.Popen(
        [binary, "serve", "--port", str(api_port), "--proxy-port", str(proxy_port),
         "--data-dir", str(scratch / "data"), "--upstream-ca", str(scratch / "tls/ca.pem"), "--no-rate-limits"],
        env={**os.environ, "HANDOFFRAIL_ADMIN_KEY": api_key},
        stdout=server_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_until(f"http://127.0.0.1:{api_port}/ready", "handoffrail", handoffrail, server_log)
    try:
        yield Server(f"http://127.0.0.1:{api_port}/api/v1", api_key, f"127.0.0.1:{proxy_port}", upstream_url)
    finally:
        for process in (handoffrail, upstream):
            process.terminate()
            process.wait(timeout=10)
