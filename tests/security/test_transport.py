"""What the HTTP server refuses before the application sees a request, over real HTTP against gunicorn.

gunicorn runs as the image runs it (``gunicorn -c gunicorn.conf.py cwom_site.wsgi``) on a free loopback
port. A request line past its limit, too many or too large header fields, a request that is not HTTP:
each comes back as a problem document (``application/problem+json``, a ``code``), never an HTML page, with
the status the OpenAPI document declares for every route.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cwom.api.schema import TRANSPORT_ERRORS, _problem_example
from tests.reliability.processes import free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (gunicorn closes the connection after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def answers(port: int) -> bool:
    try:
        return exchange(port, b"GET /api/v1/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cwom_site.settings_test"}
    with log.open("ab") as output:
        proc = subprocess.Popen(  # noqa: S603 - this environment's gunicorn, fixed arguments
            [str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
            + ["cwom_site.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: answers(port) or proc.poll() is not None, 60, "gunicorn to answer")
        assert proc.poll() is None, log.read_text()[-4000:]
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def problem_of(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"] == "application/problem+json", body[:200]
    document = json.loads(body)
    assert document["status"] == status
    # The members every problem of the API has.
    assert set(_problem_example(status, "x", "y")) - {"instance"} <= set(document)
    return document


def test_a_request_line_past_the_limit_is_a_414_problem(gunicorn: int) -> None:
    query = "q=" + "x" * 9000
    status, headers, body = exchange(
        gunicorn, f"GET /api/v1/issues?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    )

    assert status == 414
    assert problem_of(status, headers, body)["code"] == "uri_too_long"


def test_too_many_header_fields_are_a_431_problem(gunicorn: int) -> None:
    fields = "".join(f"X-Field-{i}: {i}\r\n" for i in range(150))
    status, headers, body = exchange(
        gunicorn, f"GET /api/v1/healthz HTTP/1.1\r\nHost: localhost\r\n{fields}\r\n".encode()
    )

    assert status == 431
    assert problem_of(status, headers, body)["code"] == "headers_too_large"


def test_a_header_field_past_the_limit_is_a_431_problem(gunicorn: int) -> None:
    request = f"GET /api/v1/healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {'b' * 9000}\r\n\r\n"
    status, headers, body = exchange(gunicorn, request.encode())

    assert status == 431
    assert problem_of(status, headers, body)["code"] == "headers_too_large"


def test_a_request_that_is_not_http_is_a_400_problem(gunicorn: int) -> None:
    status, headers, body = exchange(gunicorn, b"NOT HTTP AT ALL\r\n\r\n")

    assert status == 400
    assert problem_of(status, headers, body)["code"] == "bad_request"


def test_the_refusals_are_the_statuses_every_route_declares() -> None:
    assert {"400", "414", "431"} == set(TRANSPORT_ERRORS)
