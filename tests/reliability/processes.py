"""Processes the fault tests start, own and kill: a private redis-server and Celery workers.

The private Redis listens on its own loopback port (never the machine's shared 6379) without persistence,
so stopping it is a real broker outage that touches nobody else. Workers run in their own process group
so a SIGKILL takes the pool children with them, as a crashed host would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """``redis-server`` on 127.0.0.1:<port>, no persistence; start/stop at will."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: answers(self.port), 15, f"redis on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_for(lambda: not answers(self.port), 10, f"redis on port {self.port} to go away")


class Worker:
    """A ``celery worker`` subprocess (prefork, one child) in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self.log_file = log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter running celery with fixed arguments
            [
                *(sys.executable, "-m", "celery", "-A", "cwom_site", "worker"),
                *("--pool=prefork", "--concurrency=1", "--loglevel=INFO"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("-n", f"fault-{uuid.uuid4().hex[:8]}@%h"),
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> Worker:
        wait_for(lambda: b" ready." in self.log_path.read_bytes() or self.proc.poll() is not None, timeout, "worker")
        if self.proc.poll() is not None:
            raise AssertionError("worker died at start:\n" + self.log_path.read_text()[-4000:])
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (one process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        if not self.log_file.closed:
            self.log_file.close()


@contextmanager
def publishing_to(broker_url: str) -> Any:
    """Point this process's Celery app (the one ``dispatch`` publishes with) at ``broker_url`` for a while."""
    from cwom_site.celery import app

    def reset() -> None:
        # Drop the app's references only: kombu keeps one global pool per broker URL, and closing it would
        # break the next user of that URL ("Acquire on closed pool").
        app._pool = None
        app.amqp._producer_pool = None

    names = ("broker_url", "broker_write_url", "broker_read_url")  # Celery pins read/write URLs at configuration
    old = {name: app.conf[name] for name in names}
    for name in names:
        app.conf[name] = broker_url
    reset()
    try:
        assert app.connection_for_write().as_uri().endswith(broker_url.rsplit("@", 1)[-1].split("//", 1)[-1])
        yield app
    finally:
        for name, value in old.items():
            app.conf[name] = value
        reset()
