"""Fixtures for the API tests: three principals (a writer, a read-only reader, an outsider)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from cwom.models import ApiToken


class Api:
    """A test client speaking JSON to /api/v1 with one credential (or none)."""

    def __init__(self, secret: str | None = None, name: str | None = None) -> None:
        self.client = APIClient()
        self.secret = secret
        self.principal = f"token:{name}" if name else None
        if secret:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def get(self, path: str, params: Any = None, **headers: Any) -> Any:
        return self.client.get(_url(path), params, headers=headers or None)

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.post(_url(path), body, format="json", headers=headers or None)

    def patch(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.patch(_url(path), body, format="json", headers=headers or None)

    def put(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.put(_url(path), body, format="json", headers=headers or None)

    def delete(self, path: str, **headers: Any) -> Any:
        return self.client.delete(_url(path), headers=headers or None)

    def raw(self, method: str, path: str, data: bytes | str, content_type: str = "application/json", **extra: Any):
        return self.client.generic(method, _url(path), data, content_type=content_type, **extra)


def _url(path: str) -> str:
    return path if path.startswith("/") else f"/api/v1/{path}"


@pytest.fixture
def writer(db: None) -> Api:
    """A caller with a read-write token."""
    _, secret = ApiToken.issue("writer-agent", can_write=True)
    return Api(secret, "writer-agent")


@pytest.fixture
def reader(db: None) -> Api:
    """A caller with a read-only token."""
    _, secret = ApiToken.issue("reader-agent", can_write=False)
    return Api(secret, "reader-agent")


@pytest.fixture
def outsider(db: None) -> Api:
    """A caller with no credential at all."""
    return Api()


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Throttle counters and token-touch marks live in the cache: start every test empty."""
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
