"""Fixtures of the MCP tests: real server processes, reached with the SDK's own client.

The servers (``manage.py cwom_mcp`` on stdio, uvicorn serving ``cwom_site.asgi`` over HTTP) run with the
settings of ``cwom_site.settings`` from the test's environment, against a database of their own made for
the module (an SQLite file, or a new PostgreSQL database on the test server), with tasks executed
eagerly in the server process (the noop executor runs each enqueued run to its end before the enqueue
answers). Every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import psycopg
import pytest
from django.core.cache import cache
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the venv's interpreter (its realpath would be the bare one)


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    """Rate counters start empty: with a shared cache (``CACHE_URL``) the servers and earlier tests share them."""
    cache.clear()


@dataclass
class Service:
    """How to start a process of the service against the module's database."""

    env: dict[str, str]
    writer: str = ""
    reader: str = ""

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - this interpreter running manage.py
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def token(self, name: str, *flags: str) -> str:
        made = self.manage("cwom_token", "create", name, *flags)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()


def _postgres_database(url: str, name: str, statement: str) -> None:
    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(statement.format(name=name))  # our own generated name


@pytest.fixture(scope="module")
def service(tmp_path_factory: Any) -> Iterator[Service]:
    """A migrated database of the module's own, and a writer's and a reader's token in it."""
    var = tmp_path_factory.mktemp("mcp-var")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
        "CWOM_VAR_DIR": str(var),
        "ARTIFACT_ROOT": str(var / "artifacts"),
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "PYTHONUNBUFFERED": "1",
    }
    database_url = os.environ.get("DATABASE_URL")
    name = f"cwom_mcp_{uuid.uuid4().hex[:12]}"
    if database_url:
        _postgres_database(database_url, name, 'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        started = Service(env)
        migrated = started.manage("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        started.writer = started.token("mcp-writer", "--write")
        started.reader = started.token("mcp-reader")
        yield started
    finally:
        if database_url:
            _postgres_database(database_url, name, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HttpServer:
    """uvicorn serving the ASGI entry (the API and ``/mcp``) on a free port, in its own process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter running uvicorn
            [PYTHON, "-m", "uvicorn", "cwom_site.asgi:application", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for(lambda: self.answers() or self.proc.poll() is not None, 60, "uvicorn to serve")
        if self.proc.poll() is not None:
            raise AssertionError("uvicorn died at start:\n" + log_path.read_text()[-4000:])

    def answers(self) -> bool:
        try:
            return httpx2.get(f"{self.url}/api/v1/healthz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def http_server(service: Service, tmp_path_factory: Any) -> Iterator[HttpServer]:
    server = HttpServer(service.env, tmp_path_factory.mktemp("mcp-logs") / "uvicorn.log")
    try:
        yield server
    finally:
        server.stop()


Connect = Callable[[str], AbstractAsyncContextManager[Client]]


def stdio_connect(service: Service) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        params = StdioServerParameters(
            command=PYTHON, args=["manage.py", "cwom_mcp"], env={**service.env, "CWOM_TOKEN": token}, cwd=ROOT
        )
        async with Client(params, read_timeout_seconds=60) as client:
            yield client

    return connect


def http_connect(server: HttpServer) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
                yield client

    return connect


@pytest.fixture(params=["stdio", "http"])
def connect(request: Any, service: Service) -> Connect:
    """Open an MCP client session as a token, over stdio or Streamable HTTP."""
    if request.param == "stdio":
        return stdio_connect(service)
    return http_connect(request.getfixturevalue("http_server"))
