"""Racing helpers: start N callers at the same instant, each on its own thread and database connection,
and wait for them with deadlines (never sleeps as synchronization)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections

JOIN_TIMEOUT_S = 60.0


def race(callers: list[Callable[[], Any]]) -> list[Any]:
    """Run every caller on its own thread, released together by a barrier. Returns each caller's result,
    or the exception it raised (as a value), in the callers' order. Each thread closes its own database
    connections before it ends."""
    barrier = threading.Barrier(len(callers))
    results: list[Any] = [None] * len(callers)

    def run(index: int, caller: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_S)
            results[index] = caller()
        except BaseException as error:  # noqa: BLE001 - handed back to the test, which asserts on it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(callers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.1))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"racing callers did not finish within {JOIN_TIMEOUT_S}s: {stuck}"
    return results


@dataclass
class Reply:
    """One HTTP answer: status, headers (lower-cased names) and the decoded JSON body (or raw text)."""

    status: int
    headers: dict[str, str]
    body: Any = None
    raw: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def __repr__(self) -> str:
        return f"<{self.status} {self.code or ''}>"


def http(
    method: str, url: str, body: Any = None, token: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One real HTTP request (stdlib only), returning a :class:`Reply` for any status."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the test's own live server
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw, found = response.status, response.read(), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        status, raw, found = error.code, error.read(), dict(error.headers.items())
    decoded: Any = raw.decode("utf-8", errors="replace")
    if raw and "json" in found.get("Content-Type", ""):
        decoded = json.loads(raw)
    return Reply(status, {k.lower(): v for k, v in found.items()}, decoded, raw)
