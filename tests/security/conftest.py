"""Fixtures for the security suite: three principals (a writer, a read-only reader, an outsider)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cwom.models import ApiToken
from tests.api.conftest import Api


@pytest.fixture
def writer(db: None) -> Api:
    _, secret = ApiToken.issue("sec-writer", can_write=True)
    return Api(secret, "sec-writer")


@pytest.fixture
def reader(db: None) -> Api:
    _, secret = ApiToken.issue("sec-reader", can_write=False)
    return Api(secret, "sec-reader")


@pytest.fixture
def outsider(db: None) -> Api:
    return Api()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters live in the cache: every test starts and ends with an empty one."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def problem(response: Any) -> dict[str, Any]:
    """The problem-details body of an error response (checking the media type on the way)."""
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(body)
    assert body["status"] == response.status_code
    return body
