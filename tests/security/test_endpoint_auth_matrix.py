"""No endpoint can be forgotten: the test walks the URLconf and asks every route with every method.

For each route under ``/api/v1/`` (found by walking ``django.urls.get_resolver()``, so a route added
tomorrow is covered tomorrow) and each of GET, POST, PUT, PATCH, DELETE:

- an anonymous caller gets 401 (with ``WWW-Authenticate``) unless the route is on the explicit open
  list below (health, readiness, schema, docs, and the catch-all 404);
- a read-only token gets 403 ``read_only`` for every method that writes;
- a read-only token can read (GET answers neither 401 nor 403).

The answers are problem documents, never HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import problem

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
SAMPLE_ID = "01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ"  # a well-formed ULID that names nothing
# Routes anyone may call (by URL name). Everything else needs a credential.
OPEN_ROUTES = {"healthz", "readyz", "schema", "docs", "redoc", "not-found"}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
METHODS = ("GET", *WRITE_METHODS)
# Routes that must be in the walk (a broken walk must not pass by finding nothing).
EXPECTED_ROUTES = {
    "repos-list",
    "repos-detail",
    "issues-list",
    "issues-detail",
    "context_packets-seal",
    "runs-lineage",
    "runs-lineage-svg",
    "runs-events",
    "events-list",
    "object-detail",
    "enqueue",
    "run-cancel",
    "artifact-content",
}


@dataclass(frozen=True)
class Route:
    name: str
    regex: str
    path: str

    def __str__(self) -> str:
        return f"{self.name} {self.path}"


def concrete_path(regex: str) -> str:
    """A URL that the route's regex matches: every named group filled with a sample id."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", SAMPLE_ID, regex)
    path = path.replace("^", "").replace("$", "").replace("/?", "/").replace("\\Z", "").replace("\\.", ".")
    assert not re.search(r"[()\[\]\\*+?{}]", path), f"cannot make a concrete URL from {regex!r}"
    return "/" + path


def walk(patterns: list[Any], prefix: str = "") -> list[Route]:
    routes: list[Route] = []
    for entry in patterns:
        regex = prefix + str(entry.pattern.regex.pattern).lstrip("^") if prefix else str(entry.pattern.regex.pattern)
        if isinstance(entry, URLResolver):
            routes += walk(entry.url_patterns, regex.rstrip("$"))
        elif isinstance(entry, URLPattern):
            routes.append(Route(entry.name or regex, regex, ""))
    return routes


def api_routes() -> list[Route]:
    found = []
    for route in walk(get_resolver().url_patterns):
        regex = route.regex.lstrip("^")
        if not regex.startswith(API_PREFIX):
            continue
        if route.name == "not-found":
            path = "/api/v1/no/such/endpoint"
        else:
            path = concrete_path(regex)
        found.append(Route(route.name, regex, path))
    return found


ROUTES = api_routes()


def test_the_walk_finds_every_known_route_and_no_unnamed_one() -> None:
    names = {route.name for route in ROUTES}
    assert EXPECTED_ROUTES <= names, EXPECTED_ROUTES - names
    assert all(not route.name.startswith("^") for route in ROUTES), "an unnamed route: give it a name"
    assert OPEN_ROUTES <= names


def _call(client: Any, method: str, path: str) -> Any:
    return client.raw(method, path, b"{}" if method != "GET" else b"")


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in OPEN_ROUTES], ids=str)
def test_anonymous_callers_are_refused_everywhere_but_the_open_list(route: Route, outsider: Any) -> None:
    for method in METHODS:
        response = _call(outsider, method, route.path)
        assert response.status_code == 401, f"{method} {route.path}: {response.status_code}"
        assert problem(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in OPEN_ROUTES], ids=str)
def test_read_only_tokens_cannot_write_anywhere(route: Route, reader: Any) -> None:
    for method in WRITE_METHODS:
        response = _call(reader, method, route.path)
        assert response.status_code == 403, f"{method} {route.path}: {response.status_code}"
        assert problem(response)["code"] == "read_only"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in OPEN_ROUTES], ids=str)
def test_read_only_tokens_can_read(route: Route, reader: Any) -> None:
    response = _call(reader, "GET", route.path)
    assert response.status_code not in (401, 403), f"GET {route.path}: {response.status_code}"
    assert response.status_code < 500


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name in OPEN_ROUTES], ids=str)
def test_the_open_routes_answer_without_a_credential_and_accept_no_write(route: Route, outsider: Any) -> None:
    response = _call(outsider, "GET", route.path)
    expected = 404 if route.name == "not-found" else 200
    assert response.status_code == expected, f"GET {route.path}: {response.status_code}"
    for method in WRITE_METHODS:
        written = _call(outsider, method, route.path)
        assert written.status_code in (404, 405), f"{method} {route.path}: {written.status_code}"


def test_a_bad_or_revoked_or_malformed_credential_is_401_not_anonymous_access(db: None) -> None:
    from tests.api.conftest import Api

    for header in ("Bearer cwom_nope_nope", "Bearer", "Bearer a b", "Token cwom_x_y", "Bearer \u00e9t\u00e9"):
        client = Api()
        client.client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("repos")
        assert response.status_code == 401, (header, response.status_code)
        problem(response)
