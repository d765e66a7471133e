"""Cursor pages: default 50, at most 500, stable order, and 400 for any bad paging input."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIRequestFactory

from cwom.api.pagination import CwomCursorPagination
from cwom.models import Repo
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def repos(make):
    return [make.repo() for _ in range(7)]


def _cursor(link: str) -> str:
    return parse_qs(urlparse(link).query)["cursor"][0]


def test_pages_walk_every_row_once_in_order(writer, repos):
    seen, cursor = [], None
    while True:
        params = {"page_size": 3, **({"cursor": cursor} if cursor else {})}
        page = writer.get("repos", params).json()
        seen += [r["id"] for r in page["results"]]
        if not page["next"]:
            break
        cursor = _cursor(page["next"])

    assert seen == [r.pk for r in sorted(repos, key=lambda r: (r.created_at, r.pk), reverse=True)]


def test_previous_links_walk_back(writer, repos):
    first = writer.get("repos", {"page_size": 3}).json()
    second = writer.get("repos", {"page_size": 3, "cursor": _cursor(first["next"])}).json()
    back = writer.get("repos", {"page_size": 3, "cursor": _cursor(second["previous"])}).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]


def test_the_default_page_holds_50(writer, make):
    for _ in range(51):
        make.repo()
    page = writer.get("repos").json()
    assert len(page["results"]) == 50
    assert page["next"]


def test_ascending_ordering_pages_too(writer, repos):
    page = writer.get("repos", {"ordering": "created_at", "page_size": 2}).json()
    assert [r["id"] for r in page["results"]] == [repos[0].pk, repos[1].pk]


@pytest.mark.parametrize("size", ["0", "501", "-1", "ten", ""])
def test_a_page_size_outside_1_to_500_is_400(writer, size):
    response = writer.get("repos", {"page_size": size})
    assert response.status_code == 400
    assert problem(response)["code"] == "invalid_page_size"


def test_page_size_500_is_allowed(writer):
    assert writer.get("repos", {"page_size": 500}).status_code == 200


@pytest.mark.parametrize("cursor", ["garbage", "cD1ub3QtYS1kYXRl", "!!!", "cD0%00"])
def test_a_cursor_that_does_not_decode_is_422(writer, repos, cursor):
    response = writer.get("repos", {"cursor": cursor})
    assert response.status_code == 422
    assert problem(response)["code"] == "invalid_cursor"


def test_a_cursor_from_another_ordering_is_422_not_500(writer, repos):
    by_slug = writer.get("repos", {"ordering": "slug", "page_size": 2}).json()
    response = writer.get("repos", {"cursor": _cursor(by_slug["next"])})
    assert response.status_code == 422
    assert problem(response)["code"] == "invalid_cursor"


def test_an_empty_cursor_is_400(writer, repos):
    response = writer.get("repos", {"cursor": ""})
    assert response.status_code == 400
    assert problem(response)["code"] == "empty_value"


def test_pagination_refuses_a_view_that_does_not_say_how_it_orders():
    class Unordered:
        pass

    request = APIRequestFactory().get("/api/v1/repos")
    from rest_framework.request import Request

    with pytest.raises(ImproperlyConfigured):
        CwomCursorPagination().paginate_queryset(Repo.objects.all(), Request(request), Unordered())
