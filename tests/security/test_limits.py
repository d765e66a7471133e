"""Limits that keep one caller from hurting the service: throttling per token (429 + Retry-After), body
size (413), page size, tags, meta, list lengths and nesting (400)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from cwom.models import ApiToken, Repo
from tests.api.conftest import Api
from tests.security.conftest import problem

pytestmark = pytest.mark.django_db


def throttled(rate: str) -> Any:
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": rate}})


def test_each_token_has_its_own_budget_and_past_it_gets_429_with_retry_after() -> None:
    _, first = ApiToken.issue("busy", can_write=False)
    _, second = ApiToken.issue("calm", can_write=False)
    busy, calm = Api(first), Api(second)
    with throttled("3/min"):
        cache.clear()
        assert [busy.get("repos").status_code for _ in range(3)] == [200, 200, 200]
        refused = busy.get("repos")
        assert refused.status_code == 429
        assert problem(refused)["code"] == "throttled"
        assert 1 <= int(refused["Retry-After"]) <= 60
        assert calm.get("repos").status_code == 200  # another token is not slowed down by the busy one
        # Writes count against the same budget.
        assert Api(first).post("repos", {"name": "x", "slug": "x"}).status_code in (403, 429)


@pytest.mark.xfail(
    strict=True,
    reason="API gap (cwom/api/auth.py + DRF's initial() order, owner: API): permissions run before throttles, so "
    "a caller without a valid credential gets 401 forever and is never throttled, though PrincipalRateThrottle "
    "documents a per-address rate for anonymous callers; wrong tokens (one token lookup each) are not rate-limited "
    "either. Fix: check throttles before authentication/permissions for unauthenticated requests",
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer cwom_0123456789ab_wrong-secret"], ids=["anonymous", "bad-token"]
)
def test_callers_without_a_valid_credential_are_throttled_by_address(authorization: str | None) -> None:
    with throttled("2/min"):
        cache.clear()
        outsider = Api()
        if authorization:
            outsider.client.credentials(HTTP_AUTHORIZATION=authorization)
        assert [outsider.get("repos").status_code for _ in range(3)] == [401, 401, 429]


def test_the_health_probe_is_never_throttled() -> None:
    with throttled("1/min"):
        cache.clear()
        assert {Api().get("healthz").status_code for _ in range(5)} == {200}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_body_over_the_limit_is_413_and_writes_nothing(writer: Any) -> None:
    body = json.dumps({"name": "big", "slug": "big", "meta": {"pad": "x" * 4096}}).encode()
    response = writer.raw("POST", "repos", body)
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"
    assert not Repo.objects.filter(slug="big").exists()


@pytest.mark.parametrize("page_size", ["0", "501", "-1", "abc", "1e3", "99999999999999999999"])
def test_page_sizes_outside_1_to_500_are_400(reader: Any, page_size: str) -> None:
    response = reader.get("repos", {"page_size": page_size})
    assert response.status_code == 400
    problem(response)


def test_the_largest_page_size_is_accepted(reader: Any) -> None:
    assert reader.get("repos", {"page_size": "500"}).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", [f"t{i}" for i in range(33)]),
        ("tags", ["x" * 65]),
        ("tags", [""]),
        ("meta", {"pad": "x" * (16 * 1024 + 1)}),
        ("meta", json.loads('{"a":' * 20 + "1" + "}" * 20)),
        ("links", [f"https://example.com/{i}" for i in range(201)]),
        ("owners", [{"actor_kind": "human", "actor_id": str(i), "display": "x"} for i in range(201)]),
    ],
    ids=["33-tags", "long-tag", "empty-tag", "meta-over-16k", "meta-too-deep", "201-links", "201-owners"],
)
def test_oversized_tags_meta_and_lists_are_400(writer: Any, field: str, value: Any) -> None:
    response = writer.post("repos", {"name": "Limits", "slug": "limits", field: value})
    assert response.status_code == 400, response.content[:300]
    body = problem(response)
    assert body["code"] == "validation_error"
    assert not Repo.objects.filter(slug="limits").exists()


def test_absurd_nesting_in_a_body_is_400_not_a_crash(writer: Any) -> None:
    depth = 10_000
    response = writer.raw("POST", "repos", b"[" * depth + b"]" * depth)
    assert response.status_code == 400
    problem(response)


@pytest.mark.parametrize("raw", [b'{"name": "a\\u0000b", "slug": "nul"}', b'{"name": "\\ud800", "slug": "lone"}'])
def test_nul_bytes_and_lone_surrogates_are_400(writer: Any, raw: bytes) -> None:
    response = writer.raw("POST", "repos", raw)
    assert response.status_code == 400
    problem(response)
