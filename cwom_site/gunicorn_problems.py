"""Errors gunicorn answers itself (a request line or header over its limits, a request it cannot parse) as
problem documents, like every other error of the service, instead of gunicorn's HTML page.

``gunicorn.conf.py`` (read by gunicorn from the working directory) calls :func:`install` when gunicorn
starts. The codes are those of the API's table (``cwom.api.errors.PROBLEM_CODES``; a test keeps them
equal); this module imports nothing of Django, since gunicorn reads its configuration before the
application is loaded.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_TYPE_BASE = "https://cwom.dev/problems/"

# The status gunicorn chose -> the problem code it answers with.
CODES = {
    400: "bad_request",
    403: "permission_denied",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
}


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer for an error gunicorn found: status line, headers and a problem document."""
    code = CODES.get(status, "bad_request" if status < 500 else "internal_error")
    body = json.dumps(
        {
            "type": f"{PROBLEM_TYPE_BASE}{code}",
            "title": reason,
            "status": status,
            "detail": message or reason,
            "code": code,
            "errors": [],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's ``util.write_error``, answering a problem document."""
    from gunicorn import util

    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install() -> None:
    """Make gunicorn answer its own errors with :func:`write_problem` (its workers call ``util.write_error``)."""
    from gunicorn import util

    util.write_error = write_problem
