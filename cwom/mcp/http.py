"""The MCP server over Streamable HTTP at ``/mcp``, mounted in front of Django by ``cwom_site.asgi``.

Every HTTP request to ``/mcp`` passes :class:`McpGate` first, a DRF view run in-process with the API's
own classes: a Bearer token (``ApiTokenAuthentication``, with its per-address budget for bad
credentials), any valid token admitted (read-only ones included: they get the read tools), and a
per-token rate (:class:`McpRateThrottle`, the ``mcp`` rate of ``DEFAULT_THROTTLE_RATES``, else the
API's per-principal rate, counted apart from the API's requests). A refusal is the API's problem
document with its status and headers (401 with ``WWW-Authenticate``, 429 with ``Retry-After``).
Django's ``SecurityMiddleware`` wraps the gate, so ``SECURE_SSL_REDIRECT`` applies as for the API.

Admitted, the request goes to the SDK's session manager, stateless and answering JSON: each HTTP
request is served on its own, so any web process can serve any request (no session affinity). Tool
calls are then made as the authenticated caller through the REST API (:mod:`cwom.mcp.server`), where
the token, its scope and the API's own rate apply again.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import orjson
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse, HttpResponseBase
from django.middleware.security import SecurityMiddleware
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from cwom.api.auth import ApiTokenAuthentication, PrincipalRateThrottle, TokenScopePermission, can_write
from cwom.api.errors import PROBLEM_CONTENT_TYPE, problem_body
from cwom.api.renderers import CwomJSONRenderer

from . import rest
from .server import build_server

MCP_PATHS = frozenset({"/mcp", "/mcp/"})
CALLER_KEY = "cwom.mcp.caller"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AnyCredential(TokenScopePermission):
    """Any valid credential, whatever the method (MCP posts its reads too); none: the API's 401 (or 429)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        return super().has_permission(request, view)


class McpRateThrottle(PrincipalRateThrottle):
    """Per token, on its own counter: the ``mcp`` rate, else the API's per-principal rate."""

    scope = "mcp"

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        rate = rates.get(self.scope) or rates.get("principal")
        return str(rate) if rate is not None else None


class McpGate(APIView):
    """Who may use ``/mcp``: answers whether the caller may write, or the problem that refuses it."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [AnyCredential]
    throttle_classes = [McpRateThrottle]
    renderer_classes = [CwomJSONRenderer]

    def admit(self, request: Request) -> Response:
        return Response({"can_write": can_write(request)})

    get = post = delete = admit


_gate = McpGate.as_view()


def admit(scope: Scope) -> tuple[rest.Caller | None, HttpResponseBase | None]:
    """The caller an HTTP request to ``/mcp`` acts as, or the response refusing it (run in a thread)."""
    close_old_connections()  # what request_started does for a request Django serves
    try:
        request = ASGIRequest(dict(scope), io.BytesIO())
        try:
            host = request.get_host()
        except DisallowedHost:
            body = problem_body(400, "disallowed_host", "This host name is not served here.", instance=request.path)
            return None, HttpResponse(orjson.dumps(body), status=400, content_type=PROBLEM_CONTENT_TYPE)
        response = cast(HttpResponse, SecurityMiddleware(_gate)(request))
        if hasattr(response, "render"):
            response.render()
        if response.status_code != 200:
            return None, response
        meta = request.META
        caller = rest.Caller(
            authorization=meta["HTTP_AUTHORIZATION"],
            can_write=bool(orjson.loads(response.content)["can_write"]),
            host=host,
            scheme=str(scope.get("scheme") or "http"),
            remote_addr=meta.get("REMOTE_ADDR") or "127.0.0.1",
            headers=tuple((name, meta[name]) for name in rest.PASSED_HEADERS if name in meta),
        )
        return caller, None
    finally:
        close_old_connections()  # and request_finished


async def send_response(response: HttpResponseBase, send: Send) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    body = response.content if isinstance(response, HttpResponse) else b""
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def caller_of(ctx: ServerRequestContext[Any, Any]) -> rest.Caller:
    """The caller the gate admitted for the HTTP request this message came in."""
    caller = ctx.request.scope.get(CALLER_KEY) if ctx.request is not None else None
    if not isinstance(caller, rest.Caller):  # pragma: no cover - every request to /mcp passes the gate
        raise PermissionError("This MCP request did not pass the gate.")
    return caller


class McpApp:
    """``/mcp``: the gate, then the SDK's stateless Streamable HTTP transport."""

    def __init__(self) -> None:
        self.manager = StreamableHTTPSessionManager(
            app=build_server(caller_of),
            stateless=True,
            json_response=True,
            max_request_body_size=int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**22),
        )
        self._running: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Start the session manager (at the server's startup, or at the first request without one)."""
        if self._running is not None:
            return
        ready = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                ready.set()
                await self._stop.wait()

        self._running = asyncio.get_running_loop().create_task(run())
        await ready.wait()

    async def stop(self) -> None:
        if self._running is not None:
            self._stop.set()
            await self._running

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller, refusal = await anyio.to_thread.run_sync(admit, scope)
        if refusal is not None:
            await send_response(refusal, send)
            return
        await self.start()
        await self.manager.handle_request({**scope, CALLER_KEY: caller}, receive, send)


def with_mcp(django_app: ASGIApp) -> ASGIApp:
    """The ASGI application: ``/mcp`` to the MCP server, everything else to Django.

    The lifespan protocol (which Django does not speak) starts and stops the MCP session manager.
    """
    mcp_app = McpApp()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await mcp_app.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await mcp_app.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http" and scope["path"] in MCP_PATHS:
            await mcp_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return application
