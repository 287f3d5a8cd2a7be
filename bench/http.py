"""HTTP under load: the balance and ranking endpoints against a bare Flask app doing one SELECT.

Both apps are served the way the README serves production (gunicorn, here 2 workers) on
loopback, and loaded by wrk with the same connections, threads and duration.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

from flask import Flask, jsonify
from sqlalchemy import create_engine, text

WORKERS = 2
CONNECTIONS = 16
WRK_THREADS = 2


def bare_app() -> Flask:
    """A Flask app that reads one balance row per request: the floor any endpoint stands on."""
    app = Flask("bench_bare")
    engine = create_engine(os.environ["LEDGER_DATABASE_URL"], pool_size=4)

    @app.get("/accounts/<int:account_id>")
    def balance(account_id: int):
        with engine.connect() as connection:
            row = connection.execute(text("SELECT balance, version FROM account WHERE id = :id"), {"id": account_id}).one()
        return jsonify(balance=row.balance, version=row.version)

    return app


def _gunicorn() -> str:
    return os.path.join(os.path.dirname(sys.executable), "gunicorn")


def missing_tools() -> list[str]:
    """Name what the HTTP measurements need and this machine lacks, with how to get it."""
    missing = []
    if not os.path.exists(_gunicorn()):
        missing.append("gunicorn (pip install -e '.[production]')")
    if shutil.which("wrk") is None:
        missing.append("wrk (apt-get install wrk)")
    return missing


@contextmanager
def served(app_spec: str, environment: dict):
    """Serve ``app_spec`` with gunicorn on a free loopback port; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [_gunicorn(), "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app_spec],
        env={**os.environ, **environment},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # up: it answered, if only with 404
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up within a minute")


def requests_per_second(url: str, seconds: int, token: str | None = None) -> tuple[float, str]:
    """Load ``url`` with wrk; return requests per second and wrk's line about errors, if any."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    problems = " ".join(line.strip() for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line)
    return rate, problems
