"""gunicorn's settings for the CWOM service (the Dockerfile and docker-compose.yml run ``gunicorn -c
gunicorn.conf.py``; gunicorn also reads this file by default from the working directory).

The limits on the request line and header fields are stated here rather than left to gunicorn's defaults,
and what gunicorn answers when a request breaks them (or is not valid HTTP) is a problem document like
every other error of the API (``application/problem+json``, a ``code``), never gunicorn's HTML page:
gunicorn refuses these requests before the application sees them, so this file writes the answer.
The statuses are in the OpenAPI document for every route (400, 414, 431).
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util

# The longest request line (method, path and query string, version) and header field gunicorn reads, and
# the most header fields; past them: 414 and 431 problem documents.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100

# Problem codes for what gunicorn refuses, by status (the API's own statuses keep their own codes).
TRANSPORT_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def problem_document(status: int, reason: str, message: str) -> bytes:
    """The problem-details body of a refusal gunicorn makes (the members every API problem has)."""
    code = TRANSPORT_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    detail = message or reason
    body = {
        "type": f"https://cwom.dev/problems/{code}",
        "title": reason,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [],
    }
    return json.dumps(body).encode()


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error writer, answering a problem document instead of an HTML page."""
    body = problem_document(status_int, reason, mesg)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn's workers answer a request they cannot parse through util.write_error (looked up at each call).
util.write_error = write_problem
