"""Executors never become a way in: seen from the API an agent uses (``POST /api/v1/enqueue``).

- ``command`` is off by default; when on, only allowlisted programs run, never through a shell (shell
  syntax in arguments arrives verbatim and does nothing), with a scrubbed environment;
- ``webhook`` calls only allowlisted URLs, never link-local or cloud metadata addresses (even when an
  operator allowlisted one, and even when an allowlisted name resolves to one at call time), and does
  not follow redirects.
"""

from __future__ import annotations

import copy
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cwom.models import Run
from execution import runner, tasks
from tests import factories
from tests.security.conftest import problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def execution(settings: Any, tmp_path: Path, monkeypatch: Any) -> dict[str, Any]:
    """A private CWOM_EXECUTION; messages are recorded instead of sent (runs are executed in-process)."""
    conf = copy.deepcopy(settings.CWOM_EXECUTION)
    conf["command"]["scratch_root"] = str(tmp_path / "scratch")
    conf["heartbeat_seconds"] = 0.0
    settings.CWOM_EXECUTION = conf
    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setattr(tasks.execute_run, "apply_async", lambda *a, **k: None)
    return conf


def enqueue(writer: Any, executor: dict[str, Any]) -> Any:
    body = {
        "issue": {"repo": factories.repo().slug, "title": "Executor policy"},
        "context": {"summary": "Try to get out."},
        "executor": executor,
    }
    return writer.post("enqueue", body)


def execute(run_id: str) -> Run:
    runner.execute_run(run_id, worker="security-test:1")
    return Run.objects.get(pk=run_id)


def log_text(run: Run) -> str:
    from django.core.files.storage import default_storage

    log = run.artifacts.get(type="log")
    with default_storage.open(log.stored_name, "rb") as handle:
        return handle.read().decode()


# --- command ----------------------------------------------------------------------------------------
def test_the_command_executor_is_off_unless_an_operator_enables_it(writer: Any, execution: dict[str, Any]) -> None:
    response = enqueue(writer, {"name": "command", "config": {"argv": ["echo", "hi"]}})
    assert response.status_code == 422
    assert problem(response)["code"] == "executor_disabled"
    assert problem(response)["errors"][0]["path"].startswith("executor")


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "id"],
        ["/bin/sh", "-c", "id"],
        ["bash", "-c", "id"],
        ["echo; id"],
        ["echo && id"],
        ["$(id)"],
        ["`id`"],
        ["./echo", "x"],
        ["/bin/../bin/sh", "-c", "id"],
        ["python3", "-c", "import os"],
    ],
    ids=lambda argv: argv[0],
)
def test_only_allowlisted_programs_are_accepted(writer: Any, execution: dict[str, Any], argv: list[str]) -> None:
    execution["command"].update(enabled=True, allowlist=["echo"])
    response = enqueue(writer, {"name": "command", "config": {"argv": argv}})
    assert response.status_code == 422, response.content
    assert problem(response)["code"] == "not_allowed"
    assert any(e["path"] == "executor.config.argv.0" for e in problem(response)["errors"])
    assert not Run.objects.exists()


def test_shell_syntax_in_arguments_arrives_verbatim_and_runs_nothing(
    writer: Any, execution: dict[str, Any], tmp_path: Path
) -> None:
    execution["command"].update(enabled=True, allowlist=["echo"])
    marker = tmp_path / "pwned"
    injections = [f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", f"| touch {marker}", "&& id"]
    response = enqueue(writer, {"name": "command", "config": {"argv": ["echo", *injections]}})
    assert response.status_code == 202, response.content
    run = execute(response.json()["run"]["id"])
    assert run.status == "done"
    assert " ".join(injections) in log_text(run)
    assert not marker.exists()


def test_the_program_sees_a_scrubbed_environment(writer: Any, execution: dict[str, Any], monkeypatch: Any) -> None:
    execution["command"].update(enabled=True, allowlist=["env"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak-me-aws")
    monkeypatch.setenv("DATABASE_URL", "postgres://leak-me-db@127.0.0.1/x")
    response = enqueue(writer, {"name": "command", "config": {"argv": ["env"]}})
    run = execute(response.json()["run"]["id"])
    names = {
        line.split("=", 1)[0]
        for line in log_text(run).split("--- command output ---", 1)[1].splitlines()
        if "=" in line
    }
    assert "leak-me" not in log_text(run)
    assert names <= {"PATH", "HOME", "TMPDIR", "LANG", "CWOM_RUN_ID", "CWOM_ATTEMPT", "CWOM_BUNDLE", "CWOM_OUTPUT_DIR"}
    assert not any(name.startswith(("SECRET", "DJANGO", "AWS", "CELERY")) for name in names)


# --- webhook ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://localhost/hook",
        "http://127.0.0.1:6379/",
        "http://hooks.example.com.evil.example/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
)
def test_webhooks_to_unlisted_hosts_are_refused(writer: Any, execution: dict[str, Any], url: str) -> None:
    execution["webhook"].update(allowlist=["https://hooks.example.com/cwom"], secret="s" * 32)
    response = enqueue(writer, {"name": "webhook", "config": {"url": url}})
    assert response.status_code == 422
    assert problem(response)["code"] == "not_allowed"
    assert any(e["path"] == "executor.config.url" for e in problem(response)["errors"])


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://[fe80::1]/hook"])
def test_metadata_and_link_local_urls_are_refused_even_when_allowlisted(
    writer: Any, execution: dict[str, Any], url: str
) -> None:
    execution["webhook"].update(allowlist=[url], secret="s" * 32)
    response = enqueue(writer, {"name": "webhook", "config": {"url": url}})
    assert response.status_code == 422
    assert problem(response)["code"] == "not_allowed"


def test_an_allowlisted_name_that_resolves_to_the_metadata_address_is_refused_at_call_time(
    writer: Any, execution: dict[str, Any], monkeypatch: Any
) -> None:
    execution["webhook"].update(allowlist=["http://hooks.internal.example/"], secret="s" * 32)
    response = enqueue(writer, {"name": "webhook", "config": {"url": "http://hooks.internal.example/run"}})
    assert response.status_code == 202
    connected: list[Any] = []
    real_connect = socket.create_connection

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connected.append(a) or real_connect(*a, **k))
    run = execute(response.json()["run"]["id"])
    assert (run.status, run.failure_category) == ("failed", "policy")
    assert "169.254.169.254" in run.failure_message
    assert connected == []


class _Redirector(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
        type(self).hits.append(self.path)
        self.send_response(307)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def redirector() -> Iterator[str]:
    _Redirector.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_redirect_is_not_followed(writer: Any, execution: dict[str, Any], redirector: str) -> None:
    execution["webhook"].update(allowlist=[redirector], secret="s" * 32, timeout_seconds=5.0)
    response = enqueue(writer, {"name": "webhook", "config": {"url": redirector + "/run"}})
    assert response.status_code == 202
    run = execute(response.json()["run"]["id"])
    assert (run.status, run.failure_category) == ("failed", "dependency")
    assert "307" in run.failure_message
    assert _Redirector.hits == ["/hooks/run"]  # one call, to the allowlisted URL only


def test_executor_configs_never_reach_a_shell_through_the_environment() -> None:
    """The command executor's source never asks for a shell (a cheap guard against a later refactor)."""
    source = Path(runner.__file__).with_name("executors").joinpath("command.py").read_text()
    assert "shell=True" not in source and "os.system" not in source and "os.popen" not in source
