"""Faults injected into a running service; after each, nothing may be lost.

- The worker is SIGKILLed mid-run, again and again: every run ends terminal (done, or failed "worker
  lost" once its attempts are spent) or is re-run; none is left ``ready``/``running``; none is executed
  twice (one claim at a time in a legal history, at most one result).
- The broker (a private redis-server) is down while agents enqueue: every enqueue still answers 202 and
  the run is stored ``ready``; once the broker is back, every run completes with no operator action (the
  worker reconnects by itself, its embedded beat runs the reaper, which re-dispatches the lost messages).
- The database is unreachable: the API answers 503 problem documents, ``/readyz`` fails, ``/healthz``
  still answers, and everything recovers by itself when the database is back.

Slow, and needing real processes on PostgreSQL: marked ``slow`` and ``integration``, skipped unless
``CWOM_INTEGRATION=1`` (``.ci/run`` sets it on its PostgreSQL pass). Every wait is a poll with a deadline.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import OperationalError, connection

from cwom.enums import TERMINAL_STATUSES, Status
from cwom.models import ApiToken, Artifact, Run
from execution.enqueue import enqueue
from execution.models import RunExecution
from execution.reaper import reap
from tests import factories
from tests.api.conftest import Api
from tests.conftest import integration_enabled
from tests.reliability.conftest import postgres_only
from tests.reliability.history import assert_legal_history
from tests.reliability.processes import PrivateRedis, Worker, free_port, publishing_to
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration, integration_enabled, postgres_only]

KILLS = 4
RUNS_PER_ROUND = 3
OUTAGE_ENQUEUES = 5


@pytest.fixture(scope="module")
def broker(tmp_path_factory: Any) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(free_port(), tmp_path_factory.mktemp("redis") / "redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def worker_env(django_db_setup: None, broker: PrivateRedis, tmp_path: Path, settings: Any) -> dict[str, str]:
    """A worker's environment: the test database, the private broker, short heartbeats, the scripted executor.
    The test process is given the same executors and media root (it validates enqueues, reads artifacts)."""
    test_db = connection.settings_dict["NAME"]
    url = urlsplit(os.environ["DATABASE_URL"])
    media = tmp_path / "media"
    conf = copy.deepcopy(settings.CWOM_EXECUTION)
    conf["executors"]["scripted"] = "tests.execution.scripted.ScriptedExecutor"
    conf.update(stale_after_seconds=1.0, redispatch_after_seconds=2.0)
    settings.CWOM_EXECUTION = conf
    settings.MEDIA_ROOT = str(media)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.execution.worker_settings",
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{test_db}")),
        "CELERY_BROKER_URL": broker.url,
        "ARTIFACT_ROOT": str(media),
        "CWOM_HEARTBEAT_SECONDS": "0.2",
        "CWOM_STALE_AFTER_SECONDS": "1.0",
        "CWOM_REDISPATCH_AFTER_SECONDS": "2.0",
        "CWOM_REAP_INTERVAL_SECONDS": "1.0",
        "PYTHONUNBUFFERED": "1",
    }


def statuses(run_ids: list[str]) -> dict[str, str]:
    return dict(Run.objects.filter(pk__in=run_ids).values_list("id", "status"))


def all_terminal(run_ids: list[str]) -> bool:
    return all(status in TERMINAL_STATUSES for status in statuses(run_ids).values())


def assert_nothing_lost(run_ids: list[str]) -> dict[str, int]:
    """Every run terminal with a legal history, each claim recorded once, at most one result; returns
    how the runs ended."""
    ended: dict[str, int] = {}
    for run_id in run_ids:
        run = Run.objects.get(pk=run_id)
        assert run.status in TERMINAL_STATUSES, f"run {run_id} is stuck {run.status}"
        moves = assert_legal_history(run_id)
        claims = moves.count(("ready", "running"))
        execution = RunExecution.objects.get(run_id=run_id)
        assert claims == execution.attempt, (moves, execution.attempt)
        # A second claim only ever follows the reaper taking the run back (running -> blocked -> ready).
        assert moves.count(("running", "blocked")) == claims - 1 + (run.status == Status.BLOCKED)
        results = Artifact.objects.filter(produced_by_id=run_id, type="report").count()
        logs = Artifact.objects.filter(produced_by_id=run_id, type="log").count()
        if run.status == Status.DONE:
            assert results == 1, f"run {run_id} finished {results} times"
        else:
            assert run.failure_category == "runtime" and "Worker lost" in (run.failure_message or ""), (
                run.failure_message
            )
            assert results == 0
        assert logs == 1
        ended[run.status] = ended.get(run.status, 0) + 1
    return ended


@pytest.mark.usefixtures("transactional_db")
def test_workers_killed_mid_run_again_and_again_lose_no_run_and_run_none_twice(
    worker_env: dict[str, str], broker: PrivateRedis, tmp_path: Path
) -> None:
    run_ids: list[str] = []
    kills = 0
    with publishing_to(broker.url):
        for round_ in range(KILLS):
            for _ in range(RUNS_PER_ROUND):
                body = {
                    "issue": {"repo": factories.repo().slug, "title": f"Survive kill {round_}"},
                    "context": {"summary": "Keep going."},
                    "executor": {"name": "scripted", "config": {"sleep": 1.0}},
                }
                run_ids.append(enqueue(body).run.pk)
            worker = Worker(worker_env, tmp_path / f"worker-{round_}.log").wait_ready()
            try:
                wait_for(lambda: Status.RUNNING in statuses(run_ids).values(), 30, "a run to be running")
            finally:
                worker.kill()
                kills += 1
            # The reaper (the code beat runs) takes back what the dead worker held.
            wait_for(
                lambda: Status.RUNNING not in statuses(run_ids).values() or (reap() and False),
                20,
                "the reaper to take back the killed worker's run",
            )
        survivor = Worker(worker_env, tmp_path / "survivor.log").wait_ready()
        try:
            wait_for(lambda: all_terminal(run_ids) or (reap() and False), 120, "every run to end")
        finally:
            survivor.kill()
    ended = assert_nothing_lost(run_ids)
    print(f"\nSIGKILL: {kills} kills, {len(run_ids)} runs, ended {ended}")
    assert kills == KILLS and sum(ended.values()) == len(run_ids)


@pytest.mark.usefixtures("transactional_db")
def test_enqueues_during_a_broker_outage_answer_and_complete_when_it_is_back_without_an_operator(
    worker_env: dict[str, str], broker: PrivateRedis, tmp_path: Path
) -> None:
    _, secret = ApiToken.issue("outage-agent", can_write=True)
    agent = Api(secret)
    repo = factories.repo()
    # The worker runs its own beat (the reaper every second): nobody else acts once the broker is back.
    schedule = str(tmp_path / "beat-schedule")
    worker = Worker(worker_env, tmp_path / "worker.log", "-B", "--schedule", schedule).wait_ready()
    try:
        with publishing_to(broker.url):
            broker.stop()
            run_ids = []
            for i in range(OUTAGE_ENQUEUES):
                body = {
                    "issue": {"repo": repo.slug, "title": f"Enqueued during outage {i}"},
                    "context": {"summary": "The broker is down."},
                    "executor": {"name": "noop"},
                }
                started = time.monotonic()
                response = agent.post("enqueue", body)
                assert response.status_code == 202, response.content
                assert time.monotonic() - started < 10, "enqueue hung on the dead broker"
                run_ids.append(response.json()["run"]["id"])
            assert set(statuses(run_ids).values()) == {Status.READY}
            broker.start()
            wait_for(lambda: all_terminal(run_ids), 90, "every run to complete after the outage")
    finally:
        worker.kill()
    ended = assert_nothing_lost(run_ids)
    assert ended == {Status.DONE: OUTAGE_ENQUEUES}
    assert all(RunExecution.objects.get(run_id=r).dispatch_count >= 1 for r in run_ids)
    print(f"\nbroker outage: {OUTAGE_ENQUEUES} enqueues during the outage, ended {ended}")


@pytest.fixture
def database_outage(transactional_db: None) -> Iterator[Any]:
    """Flip the default connection to a closed port (no server answers there) and back."""
    original = connection.settings_dict["PORT"]

    class Outage:
        def begin(self) -> None:
            connection.close()
            connection.settings_dict["PORT"] = str(free_port())

        def end(self) -> None:
            connection.close()
            connection.settings_dict["PORT"] = original

    outage = Outage()
    try:
        yield outage
    finally:
        outage.end()


def test_an_unreachable_database_is_503_problem_and_the_service_recovers_by_itself(database_outage: Any) -> None:
    _, secret = ApiToken.issue("db-outage", can_write=True)
    agent = Api(secret)
    run = factories.run(status=Status.READY)
    assert agent.get(f"runs/{run.pk}").status_code == 200
    database_outage.begin()
    with pytest.raises(OperationalError):
        connection.ensure_connection()
    for response in (
        agent.get(f"runs/{run.pk}"),
        agent.get("runs"),
        agent.post("repos", {"name": "During outage", "slug": "during-outage"}),
        agent.patch(f"runs/{run.pk}", {"status": "canceled"}),
        Api().get("readyz"),
    ):
        assert response.status_code == 503, (response.status_code, response.content[:200])
        body = response.json()
        assert response["Content-Type"].startswith("application/problem+json")
        assert body["code"] == "database_unavailable" and body["status"] == 503
        assert response["Retry-After"]
    assert Api().get("healthz").status_code == 200  # the process itself is up
    database_outage.end()
    # No restart, no operator: the next requests simply work again.
    assert Api().get("readyz").status_code == 200
    assert agent.get(f"runs/{run.pk}").json()["status"] == Status.READY
    assert agent.post("repos", {"name": "After outage", "slug": "after-outage"}).status_code == 201
