"""Delivering events: the outbox the database keeps, the signed POST, order, backoff, dead, pause, the lease,
the sweep and the after-commit dispatch. The clock is a parameter (no test waits for time to pass)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cwom import writes
from cwom.models import Event
from execution import subscriptions
from execution.models import Delivery, Subscription, SubscriptionEvent
from tests import factories
from tests.ops.helpers import run as command
from tests.ops.helpers import wipe_cwom_tables
from tests.subscriptions.conftest import Api, Receiver

pytestmark = pytest.mark.usefixtures("subscription_settings")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def subscribe(receiver: Receiver, **filters: Any) -> tuple[Subscription, str]:
    return subscriptions.create({"url": receiver.url, **filters}, "token:test")


def queued(subscription: Subscription) -> list[tuple[str, str]]:
    return list(
        Delivery.objects.filter(subscription=subscription)
        .order_by("event_id")
        .values_list("event__object_kind", "event__action")
    )


# --- the outbox --------------------------------------------------------------------------------------------
def test_every_matching_event_is_queued_in_its_own_transaction(db: None, receiver: Receiver) -> None:
    everything, _ = subscribe(receiver)
    runs, _ = subscribe(receiver, kinds=["Run"], actions=["transition"])
    run = factories.run()  # a repo, an issue, its packet, a run: four create events
    writes.transition(run, "running")
    assert queued(everything) == [
        ("Repo", "create"),
        ("Issue", "create"),
        ("ContextPacket", "create"),
        ("Run", "create"),
        ("Run", "transition"),
    ]
    assert list(Delivery.objects.filter(subscription=everything).values_list("event_id", flat=True)) == list(
        Event.objects.order_by("id").values_list("id", flat=True)
    )
    assert queued(runs) == [("Run", "transition")]


def test_events_written_by_any_path_are_queued_bulk_copy_and_raw_sql_included(db: None, receiver: Receiver) -> None:
    from cwom.db import bulk

    subscription, _ = subscribe(receiver, kinds=["Repo"])
    repo = factories.repo()
    many = [
        Event(object_id=repo.pk, object_kind="Repo", action="update", changes={}, principal="system")
        for _ in range(100)
    ]
    bulk.load(many)  # COPY on PostgreSQL, a multi-row INSERT on SQLite
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cwom_event (object_id, object_kind, action, changes, principal, at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [repo.pk, "Repo", "update", "{}", "raw", timezone.now()],
        )
    assert len(queued(subscription)) == 1 + 100 + 1


def test_a_rolled_back_change_queues_nothing(db: None, receiver: Receiver) -> None:
    subscribe(receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        factories.repo()
        assert Delivery.objects.count() == 1
        raise RuntimeError("roll back")
    assert not Delivery.objects.exists()


def test_a_repo_filter_takes_the_repos_objects_and_no_others(db: None, receiver: Receiver) -> None:
    mine, other = factories.repo(), factories.repo()
    subscription, _ = subscribe(receiver, repo=mine.slug)
    run = factories.run(factories.issue(mine))
    factories.run(factories.issue(other))
    writes.transition(run, "running")
    factories.artifact(run)
    factories.snapshot()
    kinds = {kind for kind, _action in queued(subscription)}
    assert {"Issue", "Run", "Artifact"} <= kinds <= {"Issue", "ContextPacket", "Run", "Artifact"}
    object_ids = set(Delivery.objects.filter(subscription=subscription).values_list("event__object_id", flat=True))
    assert run.pk in object_ids and run.for_issue_id in object_ids
    assert not object_ids & {other.pk, *other.issues.values_list("id", flat=True)}


def test_an_inactive_subscription_queues_nothing(db: None, receiver: Receiver) -> None:
    subscription, _ = subscribe(receiver)
    subscriptions.update(subscription.pk, {"active": False}, "token:test")
    factories.repo()
    assert queued(subscription) == []


def test_events_from_before_a_subscription_are_not_delivered_so_an_import_of_history_sends_nothing(
    db: None, receiver: Receiver, tmp_path: Path
) -> None:
    writes.transition(factories.run(), "running")
    export = tmp_path / "export.jsonl"
    command("cwom_export", "-o", str(export))
    wipe_cwom_tables()
    subscription, _ = subscribe(receiver)
    command("cwom_import", str(export))
    assert Event.objects.count() >= 4  # the history is back ...
    assert queued(subscription) == []  # ... and was not delivered: it happened before the subscription
    factories.repo()  # what happens from now on is
    assert queued(subscription) == [("Repo", "create")]


# --- the POST --------------------------------------------------------------------------------------------
def test_the_receiver_gets_the_event_as_the_feed_shows_it_signed_with_the_secret(
    db: None, receiver: Receiver, writer: Api
) -> None:
    subscription, secret = subscribe(receiver)
    repo = factories.repo()
    assert subscriptions.deliver(subscription.pk) == 1
    (got,) = receiver.received
    (event,) = Event.objects.filter(object_id=repo.pk)
    feed = writer.get("events", {"object_id": repo.pk})
    assert got.body == feed.content.split(b'"results":[', 1)[1].rsplit(b"]}", 1)[0]  # byte for byte
    assert got.document == feed.json()["results"][0]
    assert got.headers["X-CWOM-Event-Id"] == str(event.pk)
    assert got.headers["X-CWOM-Subscription"] == subscription.pk
    assert got.headers["Content-Type"] == "application/json" and got.path == "/hooks"
    assert got.signature_verifies(secret)
    assert not got.signature_verifies(secret + "x")


def test_each_subscription_gets_the_events_in_event_id_order(db: None, receiver: Receiver) -> None:
    subscription, _ = subscribe(receiver)
    for _ in range(3):
        writes.transition(factories.run(), "running")
    assert subscriptions.deliver(subscription.pk) == Delivery.objects.count() == 15
    assert receiver.event_ids() == list(Event.objects.order_by("id").values_list("id", flat=True))


def test_a_rotated_secret_key_kept_as_a_fallback_keeps_the_secret(db: None, receiver: Receiver, settings: Any) -> None:
    subscription, secret = subscribe(receiver)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 40, [old]
    assert subscriptions.secret_for(subscription) == secret
    factories.repo()
    subscriptions.deliver(subscription.pk)
    assert receiver.received[0].signature_verifies(secret)
    settings.SECRET_KEY_FALLBACKS = []  # the old key dropped: the secret cannot be derived any more
    factories.repo()
    subscriptions.deliver(subscription.pk)
    failed = Delivery.objects.filter(status="pending").get()
    assert failed.attempts == 1 and failed.last_error.startswith("signing_key_unavailable")
    assert len(receiver.received) == 1  # nothing unsigned or wrongly signed was sent


# --- retries, dead, pause ----------------------------------------------------------------------------------
def test_a_failing_receiver_is_retried_with_exponential_backoff_then_the_delivery_is_dead(
    db: None, receiver: Receiver, subscription_settings: dict[str, Any]
) -> None:
    subscription_settings.update(backoff_seconds=10.0, backoff_max_seconds=3600.0, retry_hours=24.0)
    subscription, _ = subscribe(receiver)
    factories.repo()
    receiver.status = 500
    clock = Clock()
    delays = []
    while (delivery := Delivery.objects.get()).status == "pending":
        clock.now = max(clock.now, delivery.next_attempt_at)
        before = delivery.attempts
        assert subscriptions.deliver(subscription.pk, clock=clock, rng=lambda: 1.0) == 1
        delivery.refresh_from_db()
        assert delivery.attempts == before + 1 and delivery.last_status_code == 500
        if delivery.status == "pending":
            delays.append((delivery.next_attempt_at - clock.now).total_seconds())
        # Not due yet: a task now sends nothing.
        assert subscriptions.deliver(subscription.pk, clock=clock) == 0 or delivery.status != "pending"
    assert delays[:5] == [10.0, 20.0, 40.0, 80.0, 160.0]
    assert max(delays) == 3600.0
    assert delivery.status == "dead" and delivery.last_error == "HTTP 500"
    assert delivery.last_attempt_at - delivery.first_attempt_at >= timedelta(hours=24)
    assert delivery.last_attempt_at - delivery.first_attempt_at < timedelta(hours=25)


def test_jitter_takes_up_to_half_of_the_delay_off() -> None:
    assert subscriptions.backoff(3, rng=lambda: 0.0) == pytest.approx(20.0)
    assert subscriptions.backoff(3, rng=lambda: 0.999999) == pytest.approx(40.0, abs=1e-3)


def test_a_failing_head_holds_back_later_events_and_a_dead_one_lets_them_go(
    db: None, receiver: Receiver, subscription_settings: dict[str, Any]
) -> None:
    subscription_settings.update(retry_hours=1.0)
    subscription, _ = subscribe(receiver, kinds=["Repo"])
    first, second = factories.repo(), factories.repo()
    receiver.status = 503
    clock = Clock()
    subscriptions.deliver(subscription.pk, clock=clock)
    assert Delivery.objects.filter(status="pending", attempts=0).count() == 1  # the second waits its turn
    receiver.status = 204
    clock.advance(hours=2)
    receiver.status = 503
    subscriptions.deliver(subscription.pk, clock=clock)  # the head's last try, past its window: dead
    assert Delivery.objects.get(event__object_id=first.pk).status == "dead"
    assert Delivery.objects.get(event__object_id=second.pk).attempts == 1  # then the next one went
    receiver.status = 204
    clock.advance(hours=1)
    subscriptions.deliver(subscription.pk, clock=clock)
    assert Delivery.objects.get(event__object_id=second.pk).status == "delivered"
    assert receiver.event_ids() == [Event.objects.get(object_id=second.pk).pk]


def test_n_dead_deliveries_in_a_row_pause_the_subscription_and_an_event_records_it(
    db: None, receiver: Receiver, subscription_settings: dict[str, Any], writer: Api
) -> None:
    subscription_settings.update(retry_hours=1.0, pause_after_dead=2)
    subscription, _ = subscribe(receiver, kinds=["Repo"])
    for _ in range(3):
        factories.repo()
    receiver.status = 500
    clock = Clock()
    for _ in range(3):
        subscriptions.deliver(subscription.pk, clock=clock)
        clock.advance(hours=2)
    subscription.refresh_from_db()
    assert not subscription.active and "2 deliveries in a row were dead" in subscription.paused_reason
    assert list(Delivery.objects.order_by("event_id").values_list("status", flat=True)) == ["dead", "dead", "pending"]
    (pause,) = SubscriptionEvent.objects.filter(subscription_id=subscription.pk, action="pause")
    assert pause.changes["active"] == [True, False] and pause.principal == "system:subscriptions"
    factories.repo()  # paused: new events are not queued
    assert Delivery.objects.count() == 3
    # Resumed by PATCH: the pause is cleared and what was queued goes.
    receiver.status = 204
    response = writer.patch(f"subscriptions/{subscription.pk}", {"active": True})
    assert response.json()["paused_at"] is None and response.json()["active"] is True
    subscriptions.deliver(subscription.pk, clock=clock)
    assert list(Delivery.objects.order_by("event_id").values_list("status", flat=True)) == ["dead", "dead", "delivered"]


def test_a_delivery_between_dead_ones_resets_the_streak(
    db: None, receiver: Receiver, subscription_settings: dict[str, Any]
) -> None:
    subscription_settings.update(retry_hours=1.0, pause_after_dead=2)
    subscription, _ = subscribe(receiver, kinds=["Repo"])
    clock = Clock()
    for status in (500, 204, 500):
        factories.repo()
        receiver.status = status
        subscriptions.deliver(subscription.pk, clock=clock)
        clock.advance(hours=2)
        subscriptions.deliver(subscription.pk, clock=clock)
    subscription.refresh_from_db()
    assert subscription.active and subscription.dead_in_a_row == 1


# --- one worker per subscription, the sweep, the dispatch after commit ------------------------------------
def test_a_second_task_for_a_subscription_being_delivered_sends_nothing(db: None, receiver: Receiver) -> None:
    subscription, _ = subscribe(receiver)
    factories.repo()
    clock = Clock()
    assert subscriptions.take_lease(subscription.pk, clock()) is not None
    assert subscriptions.deliver(subscription.pk, clock=clock) == 0
    clock.advance(seconds=subscriptions.lease_seconds() + 1)  # the holder died: its lease runs out
    assert subscriptions.deliver(subscription.pk, clock=clock) == 1


def test_the_sweep_sends_a_task_for_each_subscription_with_a_due_delivery(
    db: None, receiver: Receiver, monkeypatch: Any
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(subscriptions, "dispatch", sent.append)
    due, _ = subscribe(receiver)
    held, _ = subscribe(receiver)
    idle, _ = subscribe(receiver, kinds=["Run"])
    factories.repo()
    subscriptions.take_lease(held.pk, timezone.now())
    assert subscriptions.sweep() == [due.pk] and sent == [due.pk]
    assert idle.pk not in subscriptions.sweep(now=timezone.now() + timedelta(minutes=5))
    assert held.pk in subscriptions.sweep(now=timezone.now() + timedelta(minutes=5))  # its lease ran out


def test_after_commit_the_subscriptions_that_got_deliveries_are_dispatched_once(
    db: None, receiver: Receiver, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(subscriptions, "dispatch", sent.append)
    with django_capture_on_commit_callbacks(execute=True):  # the commit that sets the "any active" flag
        repos, _ = subscribe(receiver, kinds=["Repo"])
        subscribe(receiver, kinds=["Run"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        factories.repo()
        factories.repo()  # the same transaction: one callback, one task per subscription that got something
    assert sent == [repos.pk]
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            factories.repo()
            raise RuntimeError("roll back")
    assert callbacks == [] and sent == [repos.pk]
    subscriptions.update(repos.pk, {"kinds": ["Issue"]}, "token:test")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        factories.repo()  # queued for nobody: nothing sent
    assert len(callbacks) == 1 and sent == [repos.pk]


def test_a_broker_down_at_commit_loses_nothing(
    db: None, receiver: Receiver, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        subscription, _ = subscribe(receiver)

    def broker_down(subscription_id: str) -> None:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(subscriptions, "dispatch", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        factories.repo()  # the write succeeds; its delivery waits
    assert Delivery.objects.get().status == "pending"
    monkeypatch.undo()
    sent: list[str] = []
    monkeypatch.setattr(subscriptions, "dispatch", sent.append)
    assert subscriptions.sweep() == [subscription.pk] and sent == [subscription.pk]


# --- the deliveries list ----------------------------------------------------------------------------------
def test_the_deliveries_list_costs_the_same_queries_for_1_and_20_rows(
    db: None, receiver: Receiver, writer: Api
) -> None:
    subscription, _ = subscribe(receiver, kinds=["Repo"])

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = writer.get(f"subscriptions/{subscription.pk}/deliveries")
        assert response.status_code == 200
        return len(queries)

    factories.repo()
    writer.get("subscriptions")  # the token's row is cached from here on
    one = count()
    for _ in range(19):
        factories.repo()
    assert len(writer.get(f"subscriptions/{subscription.pk}/deliveries").json()["results"]) == 20
    # 1. the subscription; 2. one page of deliveries joined with their events.
    assert count() == one == 2


_EVENTS_2000 = (
    "EXPLAIN (ANALYZE, COSTS OFF) INSERT INTO cwom_event (object_id, object_kind, action, changes, principal, at) "
    "SELECT 'x', 'Issue', 'create', '{}', 'system', now() FROM generate_series(1, 2000)"
)


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_statement_of_events_runs_the_outbox_once_not_per_row(db: None, receiver: Receiver) -> None:
    """Issue 18: the outbox is one statement-level trigger (migration 0004), so a statement of 2,000 events
    pays for it once; with no active subscription it queues nothing and reads nothing more."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_EVENTS_2000)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    outbox = plan.split("Trigger execution_outbox:")[1].split("\n")[0]
    assert outbox.endswith(" calls=1"), plan
    assert not Delivery.objects.exists()
