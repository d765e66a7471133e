"""The subscription endpoints over HTTP: create (the secret once), list, read, change, delete, deliveries and
redelivery; the allowlist and every refusal as a problem document; three principals."""

from __future__ import annotations

from typing import Any

import pytest

from cwom.models import Event
from execution import subscriptions
from execution.models import Delivery, Subscription, SubscriptionEvent
from tests import factories
from tests.subscriptions.conftest import Api, Receiver, problem

pytestmark = pytest.mark.usefixtures("subscription_settings")


def subscribe(writer: Api, receiver: Receiver, **body: Any) -> dict[str, Any]:
    response = writer.post("subscriptions", {"url": receiver.url, **body})
    assert response.status_code == 201, response.content
    return response.json()


def test_a_writer_subscribes_and_sees_the_secret_once(writer: Api, receiver: Receiver) -> None:
    created = subscribe(writer, receiver, kinds=["Run"], actions=["transition"], description="CI bot")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["url"] == receiver.url and created["kinds"] == ["Run"] and created["actions"] == ["transition"]
    assert created["active"] is True and created["created_by"] == "token:writer-agent"
    read = writer.get(f"subscriptions/{created['id']}")
    assert read.status_code == 200 and read["ETag"]
    assert "secret" not in read.json() and "secret" not in writer.get("subscriptions").json()["results"][0]
    # Nothing stored can give it back: the row holds a nonce and a digest, not the secret.
    row = Subscription.objects.filter(pk=created["id"]).values().get()
    assert created["secret"] not in repr(row)
    assert subscriptions.secret_for(Subscription.objects.get(pk=created["id"])) == created["secret"]


def test_a_reader_lists_and_reads_but_cannot_subscribe_and_an_outsider_sees_nothing(
    writer: Api, reader: Api, outsider: Api, receiver: Receiver
) -> None:
    created = subscribe(writer, receiver)
    assert [s["id"] for s in reader.get("subscriptions").json()["results"]] == [created["id"]]
    assert problem(reader.post("subscriptions", {"url": receiver.url}))["code"] == "read_only"
    assert problem(reader.patch(f"subscriptions/{created['id']}", {"active": False}))["code"] == "read_only"
    assert problem(reader.delete(f"subscriptions/{created['id']}"))["code"] == "read_only"
    assert outsider.get("subscriptions").status_code == 401
    assert outsider.get(f"subscriptions/{created['id']}").status_code == 401


def test_a_repo_filter_takes_a_slug_an_id_or_a_ref(writer: Api, receiver: Receiver) -> None:
    repo = factories.repo()
    for value in (repo.slug, repo.pk, {"kind": "Repo", "id": repo.pk}):
        created = subscribe(writer, receiver, repo=value)
        assert created["repo"] == {"kind": "Repo", "id": repo.pk, "role": None}
    body = problem(writer.post("subscriptions", {"url": receiver.url, "repo": "no-such-repo"}))
    assert (body["status"], body["code"]) == (422, "unknown_ref") and body["errors"][0]["path"] == "repo"
    issue = factories.issue(repo)
    body = problem(writer.post("subscriptions", {"url": receiver.url, "repo": issue.pk}))
    assert (body["status"], body["code"]) == (422, "wrong_kind") and "is an Issue" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/hooks",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/hooks",
    ],
)
def test_a_url_off_the_allowlist_is_refused_at_create(writer: Api, url: str) -> None:
    body = problem(writer.post("subscriptions", {"url": url}))
    assert (body["status"], body["code"]) == (422, "not_allowed")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("url", "not_allowed")]
    assert not Subscription.objects.exists()


def test_metadata_and_link_local_urls_are_refused_even_when_allowlisted(writer: Api, settings: Any) -> None:
    for url in ("http://169.254.169.254/latest", "http://[fe80::1]/hook"):
        settings.CWOM_EXECUTION["subscriptions"]["allowlist"] = [url]
        body = problem(writer.post("subscriptions", {"url": url}))
        assert body["errors"][0]["code"] == "not_allowed" and "address" in body["errors"][0]["message"]


def test_with_an_empty_allowlist_subscriptions_are_off(writer: Api, receiver: Receiver, settings: Any) -> None:
    settings.CWOM_EXECUTION["subscriptions"]["allowlist"] = []
    body = problem(writer.post("subscriptions", {"url": receiver.url}))
    assert "CWOM_SUBSCRIPTION_ALLOWLIST is empty" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "url"),
        ({"kinds": ["Nope"]}, "kinds.0"),
        ({"actions": ["explode"]}, "actions.0"),
        ({"kinds": ["Run", "Run"]}, "kinds"),
        ({"description": "x" * 501}, "description"),
        ({"secret": "mine"}, "secret"),
        ({"active": False}, "active"),  # set by PATCH only
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(writer: Api, receiver: Receiver, body: dict[str, Any], path: str) -> None:
    if path != "url":
        body = {"url": receiver.url, **body}
    problem_body = problem(writer.post("subscriptions", body))
    assert problem_body["status"] == 400
    assert path in [e["path"] for e in problem_body["errors"]]


def test_patch_changes_filters_url_and_active_and_records_each_change(writer: Api, receiver: Receiver) -> None:
    created = subscribe(writer, receiver)
    response = writer.patch(
        f"subscriptions/{created['id']}", {"kinds": ["Issue"], "url": receiver.url + "/v2", "active": False}
    )
    assert response.status_code == 200, response.content
    assert response.json()["kinds"] == ["Issue"] and response.json()["active"] is False
    assert response.json()["url"].endswith("/hooks/v2")
    assert (
        problem(writer.patch(f"subscriptions/{created['id']}", {"url": "https://elsewhere.example/"}))["errors"][0][
            "code"
        ]
        == "not_allowed"
    )
    assert problem(writer.patch(f"subscriptions/{created['id']}", {"id": "x"}))["status"] == 400
    history = list(SubscriptionEvent.objects.filter(subscription_id=created["id"]).values_list("action", "principal"))
    assert history == [("create", "token:writer-agent"), ("update", "token:writer-agent")]


def test_delete_removes_the_subscription_and_its_queue_but_keeps_its_history(writer: Api, receiver: Receiver) -> None:
    created = subscribe(writer, receiver)
    factories.repo()
    assert Delivery.objects.filter(subscription_id=created["id"]).count() == 1
    assert writer.delete(f"subscriptions/{created['id']}").status_code == 204
    assert problem(writer.get(f"subscriptions/{created['id']}"))["status"] == 404
    assert not Delivery.objects.exists() and Event.objects.exists()
    assert list(SubscriptionEvent.objects.values_list("action", flat=True)) == ["create", "delete"]
    assert problem(writer.delete(f"subscriptions/{created['id']}"))["code"] == "not_found"


def test_deliveries_list_their_state_and_filter_by_status(writer: Api, receiver: Receiver) -> None:
    created = subscribe(writer, receiver, kinds=["Repo"])
    repo = factories.repo()
    page = writer.get(f"subscriptions/{created['id']}/deliveries").json()
    (delivery,) = page["results"]
    assert delivery["event"]["object"] == {"kind": "Repo", "id": repo.pk, "role": None}
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("pending", 0, None)
    assert delivery["next_attempt_at"] is not None
    assert subscriptions.deliver(created["id"]) == 1
    (delivery,) = writer.get(f"subscriptions/{created['id']}/deliveries").json()["results"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 204)
    assert delivery["last_latency_ms"] is not None and delivery["next_attempt_at"] is None
    assert writer.get(f"subscriptions/{created['id']}/deliveries", {"status": "pending"}).json()["results"] == []
    for value, code in (("lost", "invalid_choice"), ("", "empty_value")):
        body = problem(writer.get(f"subscriptions/{created['id']}/deliveries", {"status": value}))
        assert (body["status"], body["errors"][0]["path"], body["errors"][0]["code"]) == (400, "status", code)


def test_redeliver_queues_a_delivered_event_again_and_it_is_sent_again(writer: Api, receiver: Receiver) -> None:
    created = subscribe(writer, receiver, kinds=["Repo"])
    factories.repo()
    subscriptions.deliver(created["id"])
    delivery_id = Delivery.objects.get().pk
    response = writer.post(f"subscriptions/{created['id']}/deliveries/{delivery_id}/redeliver")
    assert response.status_code == 202, response.content
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    assert subscriptions.deliver(created["id"]) == 1
    assert len(receiver.event_ids()) == 2 and len(set(receiver.event_ids())) == 1
    assert problem(writer.post(f"subscriptions/{created['id']}/deliveries/99999/redeliver"))["status"] == 404
    assert problem(writer.post(f"subscriptions/{created['id']}/deliveries/abc/redeliver"))["status"] == 404
