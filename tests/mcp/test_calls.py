"""Tool calls made in-process (the request runs in the test's thread, on its database): how an answer
becomes a result, for the cases the transport tests cannot set up through tools alone."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from cwom.mcp import rest
from cwom.mcp.server import call_tool
from cwom.mcp.tools import TEXT_LIMIT_BYTES
from cwom.models import ApiToken
from execution import content
from tests import factories


@pytest.fixture
def caller(db: None, settings: Any, tmp_path: Any) -> Iterator[rest.Caller]:
    """A reader's caller. As Django's test client does, requests keep the test's connection (its
    transaction) instead of closing it when they start and finish."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    _, secret = ApiToken.issue("calls-reader", can_write=False)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield rest.local_caller(secret, can_write=False)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def stored_artifact(data: bytes, media_type: str = "text/plain") -> str:
    artifact = factories.artifact(factories.started_run())
    content.attach_content(artifact.pk, io.BytesIO(data), media_type=media_type)
    return str(artifact.pk)


def test_small_utf8_content_comes_back_as_text(caller: rest.Caller) -> None:
    artifact_id = stored_artifact("naïve log line\n".encode())
    found = call_tool(caller, "get_artifact_content", {"id": artifact_id})
    assert not found.is_error
    document = found.structured_content
    assert document["text"] == "naïve log line\n" and document["size_bytes"] == len("naïve log line\n".encode())
    assert document["content_url"] == f"http://testserver/api/v1/artifacts/{artifact_id}/content"


def test_content_past_the_limit_says_how_big_it_is_and_where_to_fetch_it(caller: rest.Caller) -> None:
    artifact_id = stored_artifact(b"x" * (TEXT_LIMIT_BYTES + 1))
    document = call_tool(caller, "get_artifact_content", {"id": artifact_id}).structured_content
    assert document["text"] is None and document["size_bytes"] == TEXT_LIMIT_BYTES + 1
    assert str(TEXT_LIMIT_BYTES + 1) in document["reason"]
    assert document["content_url"].endswith(f"/api/v1/artifacts/{artifact_id}/content")


def test_bytes_that_are_not_utf8_are_not_given_as_text(caller: rest.Caller) -> None:
    artifact_id = stored_artifact(b"\xff\xfe\x00binary", media_type="application/octet-stream")
    document = call_tool(caller, "get_artifact_content", {"id": artifact_id}).structured_content
    assert document["text"] is None and "not UTF-8" in document["reason"]


def test_an_artifact_without_stored_content_is_the_apis_404(caller: rest.Caller) -> None:
    artifact = factories.artifact(factories.started_run())
    found = call_tool(caller, "get_artifact_content", {"id": str(artifact.pk)})
    assert found.is_error and (found.structured_content["status"], found.structured_content["code"]) == (
        404,
        "no_content",
    )


def test_list_filters_become_the_query_the_api_reads() -> None:
    assert rest.query_string({"status": ["done", "failed"], "sealed": False, "page_size": 2}) == (
        "status=done&status=failed&sealed=false&page_size=2"
    )


def test_links_name_https_behind_a_tls_proxy(settings: Any) -> None:
    proxied = rest.Caller("Bearer x", False, "cwom.example", "http", headers=(("HTTP_X_FORWARDED_PROTO", "https"),))
    assert proxied.url("/api/v1/runs") == "https://cwom.example/api/v1/runs"
    assert rest.Caller("Bearer x", False, "cwom.example", "http").url("/x") == "http://cwom.example/x"
