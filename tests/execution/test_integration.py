"""The execution engine against a real Redis broker and a real Celery worker process (prefork, -c 1).

Skipped unless CWOM_INTEGRATION=1 (``.ci/run`` sets it with a Redis broker and PostgreSQL). The worker
is a subprocess using the test database (committed data: ``transactional_db``), the test settings plus the
scripted executor (``tests.execution.worker_settings``) and short heartbeats. Every wait is bounded.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cwom.models import Run
from execution import lifecycle, tasks
from execution.enqueue import enqueue
from execution.models import RunExecution
from execution.reaper import reap
from tests.conftest import integration_enabled
from tests.execution.helpers import (
    artifacts_by_type,
    assert_digest_matches,
    enqueue_body,
    status_moves,
    trace_of,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, integration_enabled]
PYTHON = os.path.realpath(sys.executable)
ROOT = Path(__file__).resolve().parents[2]


def status(run_id: str) -> str:
    return Run.objects.filter(pk=run_id).values_list("status", flat=True).get()


def wait_status(run_id: str, wanted: set[str], timeout: float = 15) -> str:
    return wait_for(lambda: (s := status(run_id)) in wanted and s, timeout, f"run {run_id} to be one of {wanted}")


class Worker:
    """A `celery worker` subprocess in its own process group (so it can be SIGKILLed whole)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        queue = env["CWOM_RUN_QUEUE"]
        self.log_path = log_path
        self.log_file = log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed argv: this interpreter running celery
            [
                *(sys.executable, "-m", "celery", "-A", "cwom_site", "worker"),
                *("--pool=prefork", "--concurrency=1", "--loglevel=INFO"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("-n", f"itest-{uuid.uuid4().hex[:8]}@%h", "-Q", queue),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: b" ready." in log_path.read_bytes() or self.proc.poll() is not None, 60, "worker start")
        if self.proc.poll() is not None:
            raise AssertionError("worker died at start:\n" + log_path.read_text()[-4000:])

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (they share its process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log_file.close()


@pytest.fixture(scope="module")
def worker_env(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> dict[str, str]:
    """The environment of a worker bound to the test database, the test broker and a shared media root."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("the worker integration tests run on PostgreSQL (a SQLite test database is in memory)")
        test_db = connection.settings_dict["NAME"]
    url = urlsplit(os.environ["DATABASE_URL"])
    media = tmp_path_factory.mktemp("media")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.execution.worker_settings",
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{test_db}")),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ARTIFACT_ROOT": str(media),
        # A queue of this session's own: another session sharing the Redis database cannot take its messages.
        "CWOM_RUN_QUEUE": f"cwom-itest-{uuid.uuid4().hex[:12]}",
        "CWOM_HEARTBEAT_SECONDS": "0.2",
        "CWOM_COMMAND_EXECUTOR_ENABLED": "1",
        "CWOM_COMMAND_ALLOWLIST": f"sleep,echo,{PYTHON}",
        "CWOM_COMMAND_SCRATCH_ROOT": str(tmp_path_factory.mktemp("scratch")),
        "PYTHONUNBUFFERED": "1",
    }
    return env


@pytest.fixture(scope="class")
def worker(worker_env: dict[str, str], tmp_path_factory: Any) -> Iterator[Worker]:
    """One worker shared by a class's tests (each test waits until its runs are finished); no other
    worker of this module runs beside it."""
    started = Worker(worker_env, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        yield started
    finally:
        started.kill()


@pytest.fixture
def shared_media(settings: Any, worker_env: dict[str, str]) -> None:
    """The test process sees what the worker sees: the same media root and executors (it validates
    enqueues and reads artifact bytes)."""
    conf = copy.deepcopy(settings.CWOM_EXECUTION)
    conf["executors"]["scripted"] = "tests.execution.scripted.ScriptedExecutor"
    conf["command"].update(enabled=True, allowlist=worker_env["CWOM_COMMAND_ALLOWLIST"].split(","))
    conf["queue"] = worker_env["CWOM_RUN_QUEUE"]
    settings.CWOM_EXECUTION = conf
    settings.MEDIA_ROOT = worker_env["ARTIFACT_ROOT"]


def enqueue_committed(executor: str = "noop", config: dict[str, Any] | None = None, **body: Any) -> str:
    return enqueue(enqueue_body(executor={"name": executor, "config": config or {}}, **body)).run.pk


def drain(timeout: float = 15) -> None:
    """Wait until the worker has consumed everything queued so far (a sentinel run behind it is done)."""
    wait_status(enqueue_committed(), {"done"}, timeout)


@pytest.mark.usefixtures("transactional_db", "shared_media")
class TestWithOneWorker:
    def test_enqueue_runs_to_done_with_log_and_trace_whose_digests_match(self, worker):
        run_id = enqueue_committed()
        assert wait_status(run_id, {"done", "failed", "canceled"}) == "done"
        found = artifacts_by_type(run_id)
        assert sorted(found) == ["log", "report", "trace"]
        for artifact in (*found["log"], *found["trace"], *found["report"]):
            assert_digest_matches(artifact)
        assert "attempt 1 claimed by" in assert_digest_matches(found["log"][0]).decode()
        assert [e.get("to") for e in trace_of(run_id)["timeline"] if "to" in e] == ["ready", "running", "done"]

    def test_an_executor_error_fails_the_run_with_category_message_and_log(self, worker):
        argv = [PYTHON, "-c", "print('boom: 2 tests failed'); raise SystemExit(3)"]
        run_id = enqueue_committed("command", {"argv": argv, "failure_category": "test"})
        assert wait_status(run_id, {"done", "failed", "canceled"}) == "failed"
        run = Run.objects.get(pk=run_id)
        assert run.failure_category == "test" and "status 3" in run.failure_message
        assert "boom: 2 tests failed" in assert_digest_matches(artifacts_by_type(run_id)["log"][0]).decode()

    def test_a_command_timeout_fails_the_run(self, worker):
        run_id = enqueue_committed("command", {"argv": ["sleep", "30"], "timeout_seconds": 0.5})
        assert wait_status(run_id, {"done", "failed", "canceled"}, timeout=10) == "failed"
        assert "timed out" in Run.objects.get(pk=run_id).failure_message

    def test_the_celery_soft_time_limit_from_the_snapshot_fails_the_run(self, worker):
        # 0.02 min = 1.2 s soft limit; the executor blocks for 20 s without checkpointing.
        constraints = {"scope": "run", "constraints": {"time": {"available_minutes": 0.02}}}
        run_id = enqueue_committed("scripted", {"sleep": 20, "checkpoint": False}, constraints=constraints)
        assert wait_status(run_id, {"done", "failed", "canceled"}, timeout=10) == "failed"
        run = Run.objects.get(pk=run_id)
        assert run.failure_category == "runtime" and "time limit of 1.2s exceeded" in run.failure_message
        assert "log" in artifacts_by_type(run_id)

    def test_the_same_task_delivered_twice_is_executed_once(self, worker, worker_env):
        run_id = enqueue_committed("scripted", {"sleep": 0.3})
        tasks.execute_run.apply_async(args=[run_id], queue=worker_env["CWOM_RUN_QUEUE"])
        tasks.execute_run.apply_async(args=[run_id], queue=worker_env["CWOM_RUN_QUEUE"])
        assert wait_status(run_id, {"done", "failed", "canceled"}) == "done"
        drain()
        assert status_moves(run_id) == [["ready", "running"], ["running", "done"]]
        assert RunExecution.objects.get(run_id=run_id).attempt == 1
        assert len(artifacts_by_type(run_id)["log"]) == 1

    def test_cancel_before_start(self, worker):
        busy = enqueue_committed("scripted", {"sleep": 1.0})
        queued = enqueue_committed()
        assert lifecycle.request_cancel(queued, "test").outcome == "canceled"
        assert wait_status(busy, {"done"}) == "done"
        drain()
        assert status(queued) == "canceled"
        assert status_moves(queued) == [["ready", "canceled"]]

    def test_cancel_while_running_ends_canceled_not_done(self, worker):
        run_id = enqueue_committed("command", {"argv": ["sleep", "20"]})
        wait_status(run_id, {"running"})
        asked = time.monotonic()
        assert lifecycle.request_cancel(run_id, "test").outcome == "requested"
        assert wait_status(run_id, {"done", "failed", "canceled"}, timeout=10) == "canceled"
        assert time.monotonic() - asked < 5
        assert status_moves(run_id)[-1] == ["running", "canceled"]
        assert "a cancel was requested" in assert_digest_matches(artifacts_by_type(run_id)["log"][0]).decode()

    def test_a_rolled_back_enqueue_dispatches_nothing(self, worker, worker_env):
        import redis

        before = Run.objects.count()
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_committed()
            raise RuntimeError("roll back")
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        assert broker.llen(worker_env["CWOM_RUN_QUEUE"]) == 0
        drain()
        assert Run.objects.count() == before + 1  # the sentinel only

    def test_a_lost_message_is_dispatched_again_by_the_reaper(self, worker, monkeypatch, settings):
        with monkeypatch.context() as patch:
            patch.setattr(tasks.execute_run, "apply_async", lambda *a, **k: None)  # the message is lost
            run_id = enqueue_committed()
        time.sleep(0.5)
        assert status(run_id) == "ready"
        later = timezone.now() + timedelta(seconds=settings.CWOM_EXECUTION["redispatch_after_seconds"] + 1)
        assert reap(now=later).redispatched == [run_id]
        assert wait_status(run_id, {"done", "failed", "canceled"}) == "done"
        assert RunExecution.objects.get(run_id=run_id).dispatch_count == 2


@pytest.mark.usefixtures("transactional_db", "shared_media")
def test_a_worker_killed_mid_run_is_rerun_after_the_reaper_requeues_it(worker_env, tmp_path, settings):
    settings.CWOM_EXECUTION = {**settings.CWOM_EXECUTION, "stale_after_seconds": 1.0}  # after shared_media
    first = Worker(worker_env, tmp_path / "first.log")
    try:
        run_id = enqueue_committed("scripted", {"sleep": 2})
        wait_status(run_id, {"running"})
        first.kill()
    finally:
        first.kill()
    # Nobody heartbeats any more; the reaper sees it once the heartbeat is stale.
    report = wait_for(lambda: (r := reap()).requeued and r, 10, "the reaper to requeue the run")
    assert report.requeued == [run_id]
    assert status(run_id) == "ready"
    second = Worker(worker_env, tmp_path / "second.log")
    try:
        assert wait_status(run_id, {"done", "failed", "canceled"}, timeout=20) == "done"
    finally:
        second.kill()
    assert RunExecution.objects.get(run_id=run_id).attempt == 2
    assert status_moves(run_id) == [
        ["ready", "running"],
        ["running", "blocked"],
        ["blocked", "ready"],
        ["ready", "running"],
        ["running", "done"],
    ]
    assert len(artifacts_by_type(run_id)["log"]) == 1
