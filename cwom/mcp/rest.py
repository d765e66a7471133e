"""In-process REST calls: a tool's request is a real request to ``/api/v1``, made by the caller.

:func:`call` builds a WSGI request (method, path, query, JSON body, the caller's ``Authorization`` and
client headers) and hands it to Django's own WSGI handler: the middleware, the URL resolver, the DRF view
with its authentication, scopes, throttles, parsers, idempotency and problem documents all run exactly as
for an HTTP client. No rule of the API is restated here.

A request runs in the calling thread; tools call it from a worker thread (``anyio.to_thread``), where the
handler's ``request_started`` / ``request_finished`` signals open and release that thread's database
connection as they do for any request.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIX = "/api/v1"
JSON = "application/json"
# Client headers an MCP HTTP request passes on to the requests it makes (as WSGI environ keys): the
# proxies' view of the client (the per-address throttle, the scheme), who declares to act, the agent.
PASSED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_CWOM_ACTOR", "HTTP_USER_AGENT")

_handler: WSGIHandler | None = None


def handler() -> WSGIHandler:
    """The process's WSGI handler (its middleware chain is loaded once)."""
    global _handler
    if _handler is None:
        _handler = WSGIHandler()
    return _handler


@dataclass(frozen=True)
class Caller:
    """Who makes the requests, and how they reach the service: what an HTTP request would carry."""

    authorization: str
    can_write: bool
    host: str
    scheme: str = "https"
    remote_addr: str = "127.0.0.1"
    headers: tuple[tuple[str, str], ...] = ()  # extra WSGI environ entries (``PASSED_HEADERS``)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` as the caller reaches the service (a TLS proxy's scheme included)."""
        proxied = dict(self.headers).get("HTTP_X_FORWARDED_PROTO") == "https" and settings.SECURE_PROXY_SSL_HEADER
        return f"{'https' if proxied else self.scheme}://{self.host}{path}"

    def environ(
        self, method: str, path: str, query: str, body: bytes | None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        port = "443" if self.scheme == "https" else "80"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "localhost",  # Django reads the host from HTTP_HOST
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
            "HTTP_HOST": self.host,
            "HTTP_ACCEPT": JSON,
            "HTTP_AUTHORIZATION": self.authorization,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self.scheme,
            "wsgi.input": io.BytesIO(body or b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body is not None:
            environ["CONTENT_TYPE"] = JSON
            environ["CONTENT_LENGTH"] = str(len(body))
        environ.update(self.headers)
        for name, value in (headers or {}).items():
            environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
        return environ


def local_caller(token: str, can_write: bool) -> Caller:
    """The caller of a process on the service's own machine (the stdio server): links in answers name the
    first host of ``ALLOWED_HOSTS`` (``localhost`` if it names none exactly), over HTTPS when the service
    redirects to it."""
    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")]
    scheme = "https" if getattr(settings, "SECURE_SSL_REDIRECT", False) else "http"
    return Caller(
        authorization=f"Bearer {token}", can_write=can_write, host=hosts[0] if hosts else "localhost", scheme=scheme
    )


@dataclass
class Answer:
    """A REST answer: status, headers (lower-case names), body (cut at the limit asked for, if any)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False

    @property
    def is_json(self) -> bool:
        media = self.headers.get("content-type", "").split(";")[0].strip()
        return media == JSON or media.endswith("+json")

    def document(self) -> Any:
        """The JSON body (``None`` when there is none)."""
        return orjson.loads(self.body) if self.body and self.is_json else None


def query_string(params: dict[str, Any] | None) -> str:
    """Query parameters as the API reads them: a list as the parameter repeated, booleans as true/false."""
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((name, "" if item is None else str(item)))
    return urlencode(pairs)


def call(
    caller: Caller,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
) -> Answer:
    """Make one request to the API as ``caller`` with these request ``headers`` (``Idempotency-Key``,
    ``If-Match``); ``limit`` caps the body read (the rest is not read)."""
    data = orjson.dumps(body) if body is not None else None
    environ = caller.environ(method, path, query_string(query), data, headers)
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = {name.lower(): value for name, value in headers}
        return None

    response = handler()(environ, cast(Any, start_response))
    chunks: list[bytes] = []
    size = 0
    truncated = False
    try:
        for chunk in response:
            if limit is not None and size + len(chunk) > limit:
                chunks.append(chunk[: limit - size])
                truncated = True
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.close()  # request_finished: the connection is released as after any request
    return Answer(started["status"], started["headers"], b"".join(chunks), truncated)
