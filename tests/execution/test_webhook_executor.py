"""The webhook executor: signed POST of the bundle to an allowlisted URL, the reply recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from cwom import writes
from execution import runner
from execution.enqueue import enqueue
from execution.executors.base import ExecutorError
from execution.executors.webhook import WebhookExecutor, address_refused, check_url, parse_reply, url_allowed
from tests.execution.helpers import artifacts_by_type, assert_digest_matches, enqueue_body

pytestmark = pytest.mark.django_db
SECRET = "webhook-test-secret"


class Receiver:
    """A local HTTP endpoint that records requests and answers what the test tells it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.reply: Any = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                data = receiver.reply if isinstance(receiver.reply, bytes) else json.dumps(receiver.reply).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cwom"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(execution_settings: dict[str, Any]) -> Iterator[Receiver]:
    hook = Receiver()
    execution_settings["webhook"].update(allowlist=[hook.url.rsplit("/", 1)[0]], secret=SECRET)
    yield hook
    hook.server.shutdown()


def run_webhook(url: str) -> Any:
    run = enqueue(enqueue_body(executor={"name": "webhook", "config": {"url": url}})).run
    runner.execute_run(run.pk, worker="test:1")
    return writes.reload(run)


def test_the_bundle_is_posted_signed_and_the_reply_recorded(dispatched, receiver):
    receiver.reply = {
        "summary": "Added /healthz",
        "decision_log": ["kept it dependency-free"],
        "cost": {"usd": 0.12, "tokens": 1500, "compute_s": 3.5},
        "artifacts": [
            {"type": "code_patch", "title": "patch", "content": "diff --git a b\n", "media_type": "text/x-diff"},
            {"type": "pr", "title": "PR #7", "uri": "https://git.example.com/pr/7"},
        ],
    }
    run = run_webhook(receiver.url)
    assert run.status == "done"
    (request,) = receiver.requests
    assert request["path"] == "/hooks/cwom"
    headers = request["headers"]
    expected = hmac.new(
        SECRET.encode(), headers["X-CWOM-Timestamp"].encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    assert headers["X-CWOM-Signature"] == f"sha256={expected}"
    assert (headers["X-CWOM-Run"], headers["X-CWOM-Attempt"]) == (run.pk, "1")
    bundle = json.loads(request["body"])
    assert bundle["run"]["id"] == run.pk and bundle["issue"]["title"] == "Add /healthz endpoint"
    assert (run.result_summary, run.decision_log) == ("Added /healthz", ["kept it dependency-free"])
    assert (run.cost_usd, run.cost_tokens, run.cost_compute_s) == (0.12, 1500, 3.5)
    found = artifacts_by_type(run.pk)
    assert assert_digest_matches(found["code_patch"][0]) == b"diff --git a b\n"
    assert found["pr"][0].uri == "https://git.example.com/pr/7"
    assert {"log", "trace"} <= set(found)


def test_a_reported_failure_fails_the_run(dispatched, receiver):
    receiver.reply = {"status": "failed", "failure": {"category": "build", "message": "compile error"}}
    run = run_webhook(receiver.url)
    assert (run.status, run.failure_category, run.failure_message) == ("failed", "build", "compile error")


@pytest.mark.parametrize(("status", "reply"), [(500, {}), (200, b"not json"), (200, {"artifacts": [{"type": "x"}]})])
def test_an_error_answer_or_a_bad_reply_is_a_dependency_failure(dispatched, receiver, status, reply):
    receiver.status, receiver.reply = status, reply
    run = run_webhook(receiver.url)
    assert (run.status, run.failure_category) == ("failed", "dependency")


def test_only_allowlisted_urls_are_accepted(dispatched, receiver):
    with pytest.raises(ValidationError) as excinfo:
        enqueue(enqueue_body(executor={"name": "webhook", "config": {"url": "http://127.0.0.1:1/elsewhere"}}))
    assert "executor.config.url" in excinfo.value.error_dict
    assert url_allowed(receiver.url, [receiver.url.rsplit("/", 1)[0]])
    assert not url_allowed(receiver.url + "x/../../admin", ["http://127.0.0.1:9/hooks"])
    assert not url_allowed("http://user:pw@127.0.0.1/hooks", ["http://127.0.0.1/hooks"])
    assert not url_allowed("https://127.0.0.1/hooks", ["http://127.0.0.1/hooks"])


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://100.100.100.200/hook",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_when_allowlisted(execution_settings, url):
    execution_settings["webhook"].update(allowlist=[url], secret=SECRET)
    with pytest.raises(ExecutorError) as excinfo:
        check_url(url)
    assert excinfo.value.category == "policy"


def test_addresses_are_checked_after_resolution():
    assert address_refused("169.254.10.1") == "a link-local address"
    assert address_refused("0.0.0.0") == "not a unicast address"  # noqa: S104
    assert address_refused("127.0.0.1") is None


def test_the_webhook_needs_a_secret_and_an_allowlist(execution_settings):
    with pytest.raises(ExecutorError):
        WebhookExecutor.check_enabled()


def test_parse_reply_defaults():
    result = parse_reply(b"{}")
    assert not result.failed and result.artifacts == [] and result.decision_log == []
