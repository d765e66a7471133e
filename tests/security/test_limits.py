"""Limits that keep one caller from hurting the service: throttling per token (429 + Retry-After), per
address for callers without a valid credential (before any token lookup), body size (413), page size,
tags, meta, list lengths and nesting (400)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cwom.api.auth import AddressRateThrottle
from cwom.models import ApiToken, Repo
from tests.api.conftest import Api
from tests.security.conftest import problem

pytestmark = pytest.mark.django_db


def throttled(rate: str, anonymous: str | None = None) -> Any:
    """``rate`` per principal and (unless given its own) per address for callers without a valid credential."""
    from django.conf import settings

    rates = {"principal": rate, "anonymous": anonymous or rate}
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates})


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


# --- callers without a valid credential, per client address ---------------------------------------------
BAD_TOKEN = "Bearer cwom_0123456789ab_wrong-secret"


def caller(authorization: str | None = None, address: str = "127.0.0.1", **meta: str) -> APIClient:
    client = APIClient()
    client.credentials(REMOTE_ADDR=address, **({"HTTP_AUTHORIZATION": authorization} if authorization else {}), **meta)
    return client


def status(client: APIClient, path: str = "/api/v1/repos") -> int:
    return int(client.get(path).status_code)


def exhaust(address: str = "127.0.0.1", **meta: str) -> None:
    """Spend the address's whole budget (2/min in these tests) on failed tokens."""
    guesser = caller(BAD_TOKEN, address, **meta)
    assert [status(guesser) for _ in range(2)] == [401, 401]
    assert status(guesser) == 429


def test_past_the_address_budget_a_guess_costs_no_database_query(django_assert_num_queries: Any) -> None:
    guesser = caller(BAD_TOKEN)
    with throttled("100/min", anonymous="2/min"):
        with CaptureQueriesContext(connection) as lookups:
            assert [status(guesser) for _ in range(2)] == [401, 401]
        assert sum("cwom_apitoken" in q["sql"] for q in lookups.captured_queries) == 2  # one lookup each
        for guess in (BAD_TOKEN, "Bearer cwom_ffffffffffff_another-guess", "Token cwom_x_y", "Bearer a b", None):
            with django_assert_num_queries(0):
                refused = caller(guess).get("/api/v1/repos")
            assert refused.status_code == 429, guess
            body = problem(refused)
            assert body["code"] == "throttled"
            assert 1 <= int(refused["Retry-After"]) <= 60
            assert "WWW-Authenticate" not in refused


def test_a_valid_token_keeps_working_from_an_address_over_its_budget_under_its_own_rate() -> None:
    _, secret = ApiToken.issue("steady", can_write=False)
    agent = caller(f"Bearer {secret}")
    with throttled("3/min", anonymous="2/min"):
        assert status(agent) == 200  # the credential has authenticated: it is vouched for
        exhaust()
        assert status(caller()) == 429  # anonymous calls from the address are refused too
        assert [status(agent) for _ in range(3)] == [200, 200, 429]  # its own (principal) budget still applies
        assert problem(agent.get("/api/v1/repos"))["code"] == "throttled"


def test_valid_tokens_never_count_against_their_address() -> None:
    _, secret = ApiToken.issue("busy-but-valid", can_write=False)
    agent = caller(f"Bearer {secret}")
    with throttled("100/min", anonymous="2/min"):
        assert {status(agent) for _ in range(10)} == {200}
        assert [status(caller(BAD_TOKEN)) for _ in range(3)] == [401, 401, 429]


def test_a_token_unused_within_the_vouching_window_waits_out_its_address_budget(monkeypatch: Any) -> None:
    # The price of checking before the lookup: a credential not seen lately cannot be told from a guess.
    clock = [1000.0]
    monkeypatch.setattr(AddressRateThrottle, "timer", lambda self: clock[0])
    _, secret = ApiToken.issue("newcomer", can_write=False)
    with throttled("100/min", anonymous="2/min"):
        exhaust()
        refused = caller(f"Bearer {secret}").get("/api/v1/repos")
        assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
        clock[0] += 61  # the window has passed
        assert status(caller(f"Bearer {secret}")) == 200


def test_a_vouched_token_that_is_revoked_counts_as_a_failure_again() -> None:
    token, secret = ApiToken.issue("soon-revoked", can_write=False)
    agent = caller(f"Bearer {secret}")
    with throttled("100/min", anonymous="2/min"):
        assert status(agent) == 200
        token.revoke()
        assert [status(agent) for _ in range(3)] == [401, 401, 429]


def test_an_expired_token_counts_as_a_failure(monkeypatch: Any) -> None:
    from django.utils import timezone

    expires_at = timezone.now() + dt.timedelta(hours=1)
    _, secret = ApiToken.issue("lapsing", can_write=False, expires_at=expires_at)
    agent = caller(f"Bearer {secret}")
    with throttled("100/min", anonymous="2/min"):
        assert status(agent) == 200
        monkeypatch.setattr(timezone, "now", lambda: expires_at + dt.timedelta(seconds=1))
        first = agent.get("/api/v1/repos")
        assert first.status_code == 401 and problem(first)["code"] == "token_expired"
        assert [status(agent) for _ in range(2)] == [401, 429]


def test_the_budget_is_per_address() -> None:
    with throttled("100/min", anonymous="2/min"):
        exhaust("10.0.0.1")
        assert status(caller(BAD_TOKEN, "10.0.0.2")) == 401
        assert status(caller(None, "10.0.0.2")) == 401
        assert status(caller(None, "10.0.0.1")) == 429


def test_x_forwarded_for_names_the_address_only_behind_configured_proxies() -> None:
    from django.conf import settings

    with throttled("100/min", anonymous="2/min"):
        exhaust()
        # No proxy configured (CWOM_NUM_PROXIES=0): a client cannot get a fresh budget by naming an address.
        assert status(caller(BAD_TOKEN, HTTP_X_FORWARDED_FOR="203.0.113.7")) == 429
        with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):
            # Behind one proxy, the entry it appended is the client's address, whatever the client sent before it.
            exhaust(HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")
            assert status(caller(BAD_TOKEN, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.7")) == 429
            assert status(caller(BAD_TOKEN, HTTP_X_FORWARDED_FOR="203.0.113.8")) == 401  # another client


def test_the_health_probe_answers_an_address_over_its_budget() -> None:
    with throttled("100/min", anonymous="2/min"):
        exhaust()
        assert status(caller()) == 429
        assert {status(caller(auth), "/api/v1/healthz") for auth in (None, BAD_TOKEN) for _ in range(3)} == {200}


def test_with_no_anonymous_rate_the_address_budget_is_off() -> None:
    from django.conf import settings

    rates = {"principal": "100/min"}  # what the other suites' overrides leave
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        assert {status(caller(BAD_TOKEN)) for _ in range(5)} == {401}
        assert {status(caller()) for _ in range(5)} == {401}


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
    ("field", "value", "code"),
    [
        ("tags", [f"t{i}" for i in range(33)], "too_many"),
        ("tags", ["x" * 65], "too_long"),
        ("tags", [""], "empty_value"),
        ("meta", {"pad": "x" * (16 * 1024 + 1)}, "too_large"),
        ("meta", json.loads('{"a":' * 20 + "1" + "}" * 20), "too_deep"),
        ("links", [f"https://example.com/{i}" for i in range(201)], "too_many"),
        ("owners", [{"actor_kind": "human", "actor_id": str(i), "display": "x"} for i in range(201)], "too_many"),
    ],
    ids=["33-tags", "long-tag", "empty-tag", "meta-over-16k", "meta-too-deep", "201-links", "201-owners"],
)
def test_oversized_tags_meta_and_lists_are_400(writer: Any, field: str, value: Any, code: str) -> None:
    response = writer.post("repos", {"name": "Limits", "slug": "limits", field: value})
    assert response.status_code == 400, response.content[:300]
    body = problem(response)
    assert body["code"] == code  # the specific code, not a generic one (CHANGELOG: 0.2)
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
