"""Subscriptions against real processes: a Celery worker (prefork, its own beat running the sweep), a private
redis-server as the broker (so stopping it touches nobody else), PostgreSQL, and a local receiver.

- a receiver that is down for a while, then back, receives every event, in event order;
- events written while the broker is unreachable are delivered once it is back (the sweep), with no operator;
- a worker SIGKILLed while a delivery is in flight: the next worker delivers it (at least once) and the rest.

Marked ``slow`` and ``integration``: skipped unless ``CWOM_INTEGRATION=1``. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from cwom.models import Event
from execution import subscriptions
from execution.models import Delivery
from tests import factories
from tests.conftest import integration_enabled
from tests.reliability.conftest import postgres_only
from tests.reliability.processes import PrivateRedis, Worker, free_port, publishing_to
from tests.subscriptions.conftest import Receiver, start_receiver
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration, integration_enabled, postgres_only]
EVENTS = 6


@pytest.fixture(scope="module")
def broker(tmp_path_factory: Any) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(free_port(), tmp_path_factory.mktemp("redis") / "redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def worker_env(django_db_setup: None, broker: PrivateRedis, port: int, settings: Any) -> dict[str, str]:
    """A worker bound to the test database and the private broker, allowed to call the receiver's port, with
    short timeouts and retries and a sweep every half second. The test process gets the same subscription
    settings (it validates subscriptions)."""
    prefix = f"http://127.0.0.1:{port}/hooks"
    conf = {**settings.CWOM_EXECUTION}
    conf["subscriptions"] = {
        **conf["subscriptions"],
        "allowlist": [prefix],
        "timeout_seconds": 1.0,
        "backoff_seconds": 0.2,
        "backoff_max_seconds": 1.0,
    }
    settings.CWOM_EXECUTION = conf
    url = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.execution.worker_settings",
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}")),
        "CELERY_BROKER_URL": broker.url,
        "CWOM_SUBSCRIPTION_ALLOWLIST": prefix,
        "CWOM_SUBSCRIPTION_TIMEOUT_SECONDS": "1",
        "CWOM_SUBSCRIPTION_BACKOFF_SECONDS": "0.2",
        "CWOM_SUBSCRIPTION_BACKOFF_MAX_SECONDS": "1",
        "CWOM_SUBSCRIPTION_SWEEP_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env: dict[str, str], tmp_path: Path, name: str) -> Worker:
    schedule = str(tmp_path / f"{name}-beat-schedule")
    return Worker(env, tmp_path / f"{name}.log", "-B", "--schedule", schedule).wait_ready()


def all_delivered() -> bool:
    return not Delivery.objects.exclude(status="delivered").exists()


def assert_every_event_arrived_in_order(receiver: Receiver) -> None:
    expected = list(Event.objects.order_by("id").values_list("id", flat=True))
    arrived = receiver.event_ids()
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals == expected, (arrived, expected)


@pytest.mark.usefixtures("transactional_db")
def test_a_receiver_down_for_a_while_then_back_gets_every_event_in_order(
    worker_env: dict[str, str], broker: PrivateRedis, port: int, tmp_path: Path
) -> None:
    worker = start_worker(worker_env, tmp_path, "worker")
    server = None
    try:
        with publishing_to(broker.url):
            subscription, secret = subscriptions.create({"url": f"http://127.0.0.1:{port}/hooks"}, "token:test")
            for _ in range(EVENTS):
                factories.repo()  # nothing listens on the port yet
            wait_for(
                lambda: Delivery.objects.filter(attempts__gte=2).exists(), 30, "failed tries while the receiver is down"
            )
            assert not Delivery.objects.filter(status="delivered").exists()
            receiver, server = start_receiver(port)
            wait_for(all_delivered, 60, "every delivery once the receiver is back")
    finally:
        worker.kill()
        if server is not None:
            server.shutdown()
            server.server_close()
    assert Delivery.objects.filter(subscription=subscription).count() == EVENTS
    assert_every_event_arrived_in_order(receiver)
    assert all(r.signature_verifies(secret) for r in receiver.received)


@pytest.mark.usefixtures("transactional_db")
def test_events_written_while_the_broker_is_unreachable_are_delivered_once_it_is_back(
    worker_env: dict[str, str], broker: PrivateRedis, port: int, tmp_path: Path
) -> None:
    receiver, server = start_receiver(port)
    worker = start_worker(worker_env, tmp_path, "worker")
    try:
        with publishing_to(broker.url):
            subscriptions.create({"url": receiver.url}, "token:test")
            broker.stop()
            for _ in range(EVENTS):
                started = time.monotonic()
                factories.repo()  # the write commits; its after-commit dispatch fails quietly
                assert time.monotonic() - started < 10, "a write hung on the dead broker"
            assert Delivery.objects.filter(status="pending").count() == EVENTS
            broker.start()
            # No operator: the worker reconnects, its beat runs the sweep, which sends the tasks.
            wait_for(all_delivered, 90, "every delivery after the broker is back")
    finally:
        worker.kill()
        server.shutdown()
        server.server_close()
    assert_every_event_arrived_in_order(receiver)


@pytest.mark.usefixtures("transactional_db")
def test_a_worker_killed_mid_delivery_loses_nothing(
    worker_env: dict[str, str], broker: PrivateRedis, port: int, tmp_path: Path
) -> None:
    receiver, server = start_receiver(port)
    receiver.hold.set()  # the first POST hangs: the worker is mid-delivery
    first = start_worker(worker_env, tmp_path, "first")
    try:
        with publishing_to(broker.url):
            subscriptions.create({"url": receiver.url}, "token:test")
            for _ in range(EVENTS):
                factories.repo()
            wait_for(lambda: receiver.arrived >= 1, 30, "a delivery in flight")
            first.kill()
            receiver.hold.clear()
            receiver.release.set()
            assert not Delivery.objects.filter(status="delivered").exists()
            # The dead worker's lease runs out; the next worker's sweep takes the subscription over.
            second = start_worker(worker_env, tmp_path, "second")
            try:
                wait_for(all_delivered, 90, "every delivery after the kill")
            finally:
                second.kill()
    finally:
        first.kill()
        server.shutdown()
        server.server_close()
    assert_every_event_arrived_in_order(receiver)
    assert receiver.arrived >= EVENTS + 1  # the one in flight at the kill was sent again
