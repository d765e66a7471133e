"""ASGI entry point: the whole service, plus the MCP server's Streamable HTTP transport at ``/mcp``.

Serve it with uvicorn (``uvicorn cwom_site.asgi:application``) or gunicorn's uvicorn workers; the
lifespan protocol starts and stops the MCP session manager (``cwom.mcp.http``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cwom_site.settings")

django_application = get_asgi_application()

from cwom.mcp.http import with_mcp  # noqa: E402 - Django must be set up first

application = with_mcp(django_application)
