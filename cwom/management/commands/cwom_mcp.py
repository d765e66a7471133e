"""``manage.py cwom_mcp``: the MCP server on stdin/stdout, acting as the API token in ``CWOM_TOKEN``."""

from __future__ import annotations

import os
from typing import Any

import anyio
from django.core.management.base import CommandError
from mcp.server.stdio import stdio_server

from cwom.management.base import CwomCommand
from cwom.mcp import rest
from cwom.mcp.server import build_server
from cwom.models import ApiToken, TokenExpired
from cwom.shapes import iso

TOKEN_VARIABLE = "CWOM_TOKEN"  # noqa: S105 - the name of the variable, not a secret


def token_from_environment() -> ApiToken:
    """The token ``CWOM_TOKEN`` names, or a usage error (exit 2) saying why it cannot be used."""
    presented = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not presented:
        raise CommandError(
            f"{TOKEN_VARIABLE} is not set: give the server the API token it acts as "
            f"(create one with `manage.py cwom_token create NAME [--write]`).",
            returncode=2,
        )
    try:
        token = ApiToken.authenticate(presented)
    except TokenExpired as expired:
        raise CommandError(
            f"{TOKEN_VARIABLE}: this token expired at {iso(expired.expired_at)}; ask an operator for a new one.",
            returncode=2,
        ) from None
    if token is None:
        raise CommandError(f"{TOKEN_VARIABLE} is not a valid API token (unknown, malformed or revoked).", returncode=2)
    return token


class Command(CwomCommand):
    help = (
        "Serve the CWOM tools over the Model Context Protocol on stdin/stdout, for an agent runtime to launch. "
        f"Acts as the API token in the environment variable {TOKEN_VARIABLE} (a read-only token gets the read "
        "tools only); every tool call is a request to the REST API made with that token, recorded as its "
        "principal. Exit 0 when the client closes the connection, 2 when the token is missing, unknown, revoked "
        "or expired."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        token = token_from_environment()
        caller = rest.local_caller(os.environ[TOKEN_VARIABLE].strip(), token.can_write)
        server = build_server(lambda ctx: caller)

        async def serve() -> None:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())

        anyio.run(serve)
