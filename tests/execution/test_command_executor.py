"""The command executor: allowlisted programs only, no shell, scrubbed env, timeout, capped output."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

from cwom import writes
from execution import runner
from execution.enqueue import enqueue
from execution.executors.base import ExecutorError
from execution.executors.command import CommandExecutor, allowed_program
from tests.execution.helpers import artifacts_by_type, assert_digest_matches, enqueue_body

pytestmark = pytest.mark.django_db
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def command_enabled(execution_settings: dict[str, Any]) -> dict[str, Any]:
    execution_settings["command"].update(enabled=True, allowlist=["echo", "sleep", "env", PYTHON])
    return execution_settings["command"]


def run_command(argv: list[str], **config: Any) -> Any:
    run = enqueue(enqueue_body(executor={"name": "command", "config": {"argv": argv, **config}})).run
    runner.execute_run(run.pk, worker="test:1")
    return writes.reload(run)


def log_of(run: Any) -> str:
    return assert_digest_matches(artifacts_by_type(run.pk)["log"][0]).decode()


def test_an_allowlisted_program_runs_and_its_output_is_logged(dispatched, command_enabled):
    run = run_command(["echo", "hello", "$HOME;", "rm -rf /"])
    assert run.status == "done"
    # No shell: the arguments arrive verbatim.
    assert "hello $HOME; rm -rf /" in log_of(run)


def test_a_non_zero_exit_fails_with_the_configured_category(dispatched, command_enabled):
    run = run_command([PYTHON, "-c", "print('2 failed'); raise SystemExit(3)"], failure_category="test")
    assert (run.status, run.failure_category) == ("failed", "test")
    assert "exited with status 3" in run.failure_message
    assert "2 failed" in log_of(run)


def test_a_command_past_its_timeout_is_killed_and_the_run_fails(dispatched, command_enabled):
    started = time.monotonic()
    run = run_command(["sleep", "30"], timeout_seconds=0.5)
    assert time.monotonic() - started < 10
    assert (run.status, run.failure_category) == ("failed", "runtime")
    assert "timed out" in run.failure_message


def test_the_environment_is_scrubbed(dispatched, command_enabled, monkeypatch):
    monkeypatch.setenv("CWOM_TEST_SECRET", "s3cr3t")
    run = run_command(["env"])
    log = log_of(run)
    assert "s3cr3t" not in log and "DATABASE_URL" not in log
    assert "CWOM_RUN_ID=" + run.pk in log and "CWOM_BUNDLE=" in log


def test_output_is_capped(dispatched, command_enabled):
    command_enabled["output_max_bytes"] = 1000
    run = run_command([PYTHON, "-c", "print('x' * 100000)"])
    assert run.status == "done"
    assert "more bytes of output dropped (cap 1000)" in log_of(run)


def test_files_left_in_the_output_dir_become_artifacts_and_the_bundle_is_readable(dispatched, command_enabled):
    script = (
        "import json, os; b = json.load(open(os.environ['CWOM_BUNDLE']));"
        "open(os.path.join(os.environ['CWOM_OUTPUT_DIR'], 'title.txt'), 'w').write(b['issue']['title'])"
    )
    run = run_command([PYTHON, "-c", script])
    (report,) = artifacts_by_type(run.pk)["report"]
    assert (report.title, assert_digest_matches(report)) == ("title.txt", b"Add /healthz endpoint")


def test_a_program_off_the_allowlist_is_refused_at_run_time_too(dispatched, command_enabled):
    with pytest.raises(ExecutorError) as excinfo:
        allowed_program("/bin/rm")
    assert excinfo.value.category == "policy"
    with pytest.raises(ExecutorError):
        allowed_program("./echo")
    run = enqueue(enqueue_body(executor={"name": "command", "config": {"argv": ["echo", "x"]}})).run
    command_enabled["allowlist"] = []
    runner.execute_run(run.pk, worker="test:1")
    run = writes.reload(run)
    assert (run.status, run.failure_category) == ("failed", "policy")


def test_disabled_by_default(execution_settings):
    with pytest.raises(ExecutorError) as excinfo:
        CommandExecutor.check_enabled()
    assert excinfo.value.category == "policy"
