"""Fixtures for event subscriptions: a local receiver (a tiny HTTP server in a thread) and the settings
that allow it."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from execution import subscriptions
from tests.api.conftest import Api, _fresh_cache, outsider, problem, reader, writer

__all__ = ["Api", "Receiver", "_fresh_cache", "outsider", "problem", "reader", "writer"]


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> Any:
        return json.loads(self.body)

    def signature_verifies(self, secret: str) -> bool:
        """The receiver's side of the scheme: HMAC-SHA256(secret, "<timestamp>.<body>"), compared in constant time."""
        signed = self.headers["X-CWOM-Timestamp"].encode() + b"." + self.body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers["X-CWOM-Signature"])


@dataclass
class Receiver:
    """What the receiver answers (``status``) and what it got (``received``, in arrival order)."""

    url: str
    status: int = 204
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # While ``hold`` is set, a request is counted in ``arrived`` and then waits for ``release`` (a hung receiver).
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: int = 0

    def event_ids(self) -> list[int]:
        with self.lock:
            return [int(r.headers["X-CWOM-Event-Id"]) for r in self.received]


def start_receiver(port: int = 0) -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.arrived += 1
            if receiver.hold.is_set():
                receiver.release.wait(60)
                return  # hangs up without an answer
            with receiver.lock:
                status = receiver.status
                if 200 <= status < 300:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local receiver answering 204 (set ``receiver.status`` to make it fail)."""
    found, server = start_receiver()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def subscription_settings(settings: Any, receiver: Receiver) -> dict[str, Any]:
    """Subscriptions allowed to the local receiver, with short timeouts."""
    conf = copy.deepcopy(settings.CWOM_EXECUTION)
    conf["subscriptions"].update(allowlist=[receiver.url.rsplit("/", 1)[0] + "/hooks"], timeout_seconds=5.0)
    settings.CWOM_EXECUTION = conf
    return conf["subscriptions"]


@pytest.fixture(autouse=True)
def _no_active_flag() -> Iterator[None]:
    """The "some subscription is active" flag lives in the (possibly shared) cache: every test here starts and
    ends without it, so no test elsewhere sees a dispatch after commit that only these tests' rows asked for."""
    subscriptions.forget_active_flag()
    yield
    subscriptions.forget_active_flag()
