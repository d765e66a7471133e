"""The ``webhook`` executor: POST the run's bundle to an allowlisted URL and record the reply.

Only URLs under a prefix in ``CWOM_WEBHOOK_ALLOWLIST`` are called. The host is resolved once, every
address is checked (link-local, cloud metadata, multicast, unspecified and reserved addresses are refused
even when allowlisted) and the connection is made to that checked address, so a DNS answer cannot change
between the check and the call. Redirects are not followed. (Those checks and the signature are
:mod:`execution.outbound`'s, shared with event subscriptions.)

The body is the bundle as JSON, signed: ``X-CWOM-Signature: sha256=<hex>`` is the HMAC-SHA256, keyed by
``CWOM_WEBHOOK_SECRET``, of ``<X-CWOM-Timestamp>.<body>``. The reply is a JSON object::

    {"status": "done" | "failed", "summary": str, "decision_log": [str],
     "cost": {"usd": n, "tokens": n, "compute_s": n},
     "failure": {"category": ..., "message": ...},
     "artifacts": [{"type": ..., "title": ..., "uri": ... | "content": text | "content_base64": ...,
                    "media_type": ..., "digest": ..., "preview": ...}]}
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from cwom.enums import ArtifactType, FailureCategory

from ..config import conf
from ..outbound import (
    OutboundRefused,
    address_refused,
    literal_address_refused,
    post_pinned,
    sign,
    split_url,
    url_allowed,
)
from ..outbound import resolve_checked as outbound_resolve
from .base import ArtifactSpec, ExecutionContext, ExecutionResult, Executor, ExecutorError, config_error

__all__ = ["WebhookExecutor", "address_refused", "check_url", "parse_reply", "sign", "url_allowed"]

MAX_REPLY_ARTIFACTS = 50


def webhook_settings() -> dict[str, Any]:
    return dict(conf()["webhook"])


def resolve_checked(host: str, port: int) -> str:
    """One address of ``host`` that may be called; ExecutorError(policy) if any address is refused."""
    try:
        return outbound_resolve(host, port)
    except OutboundRefused as refused:
        category = FailureCategory.POLICY if refused.policy else FailureCategory.DEPENDENCY
        raise ExecutorError(refused.message, category) from None


def check_url(url: str) -> None:
    """ExecutorError(policy) unless ``url`` is allowlisted and not a literal refused address."""
    conf = webhook_settings()
    if not url_allowed(url, conf["allowlist"]):
        raise ExecutorError(f"Webhook URL {url!r} is not on the webhook allowlist.", FailureCategory.POLICY)
    reason = literal_address_refused(url)
    if reason:
        raise ExecutorError(f"Webhook URL {url!r} points at {reason}.", FailureCategory.POLICY)


class WebhookExecutor(Executor):
    """POSTs the bundle to ``config["url"]`` and turns the JSON reply into the run's outputs.

    Config: ``url`` (required, allowlisted), ``timeout_seconds`` (optional, capped by the setting).
    """

    name = "webhook"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "maxLength": 2048, "description": "Where the bundle is POSTed (allowlisted)."},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    @classmethod
    def check_enabled(cls) -> None:
        conf = webhook_settings()
        if not conf["allowlist"] or not conf["secret"]:
            raise ExecutorError(
                "The webhook executor needs CWOM_WEBHOOK_ALLOWLIST and CWOM_WEBHOOK_SECRET.", FailureCategory.POLICY
            )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - {"url", "timeout_seconds"})
        if unknown:
            raise config_error(unknown[0], "Unknown webhook executor option.", "unknown_field")
        url = config.get("url")
        if not isinstance(url, str) or len(url) > 2048:
            raise config_error("url", "The URL to POST the run bundle to.")
        timeout = config.get("timeout_seconds")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise config_error("timeout_seconds", "A positive number of seconds.")
        try:
            check_url(url)
        except ExecutorError as error:
            raise config_error("url", error.message, "not_allowed") from None

    def execute(self, bundle: Mapping[str, Any], ctx: ExecutionContext) -> ExecutionResult:
        self.check_enabled()
        conf = webhook_settings()
        url = self.config["url"]
        check_url(url)
        _scheme, host, port, _path = split_url(url)
        address = resolve_checked(host, port)
        timeout = min(float(self.config.get("timeout_seconds") or conf["timeout_seconds"]), conf["timeout_seconds"])
        timeout = max(min(timeout, ctx.time_left()), 0.1)
        body = json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cwom-webhook/0.1",
            "X-CWOM-Run": ctx.run_id,
            "X-CWOM-Attempt": str(ctx.attempt),
            "X-CWOM-Timestamp": timestamp,
            "X-CWOM-Signature": sign(conf["secret"], timestamp, body),
        }
        ctx.trace("webhook.request", url=url, address=address, bytes=len(body), timeout_s=round(timeout, 3))
        ctx.log(f"webhook: POST {url} ({len(body)} bytes, timeout {timeout:.1f}s)")
        status, reply = self._post(address, url, body, headers, timeout, conf, ctx)
        ctx.trace("webhook.reply", status=status, bytes=len(reply))
        ctx.log(f"webhook: HTTP {status}, {len(reply)} bytes")
        if not 200 <= status < 300:
            raise ExecutorError(f"Webhook answered HTTP {status}.", FailureCategory.DEPENDENCY)
        return parse_reply(reply)

    @staticmethod
    def _post(
        address: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
        conf: dict[str, Any],
        ctx: ExecutionContext,
    ) -> tuple[int, bytes]:
        # The request runs in a helper thread (no database access there) so this thread keeps
        # heartbeating and notices a cancel while the far end works.
        outcome: dict[str, Any] = {}
        cap = int(conf["response_max_bytes"])

        def call() -> None:
            try:
                outcome["result"] = post_pinned(url, address, body, headers, timeout, cap)
            except Exception as error:  # noqa: BLE001 - reported to the waiting thread
                outcome["error"] = error

        thread = threading.Thread(target=call, name=f"webhook-{ctx.run_id}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout + 1.0
        while thread.is_alive():
            thread.join(timeout=0.2)
            if time.monotonic() > deadline:
                raise ExecutorError(f"Webhook did not answer within {timeout:.1f}s.", FailureCategory.DEPENDENCY)
            ctx.checkpoint()
        if "error" in outcome:
            error = outcome["error"]
            raise ExecutorError(f"Webhook call failed: {type(error).__name__}: {error}.", FailureCategory.DEPENDENCY)
        status, data = outcome["result"]
        if len(data) > cap:
            raise ExecutorError(f"Webhook reply is larger than {cap} bytes.", FailureCategory.DEPENDENCY)
        return status, data


def _reply_error(message: str) -> ExecutorError:
    return ExecutorError(f"Webhook reply is invalid: {message}", FailureCategory.DEPENDENCY)


def _optional_number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _reply_error(f"cost.{name} must be a non-negative number.")
    return float(value)


def parse_reply(data: bytes) -> ExecutionResult:
    """The webhook's JSON reply as an :class:`ExecutionResult` (ExecutorError if it is not one)."""
    try:
        reply = json.loads(data or b"{}")
    except ValueError:
        raise _reply_error("not JSON.") from None
    if not isinstance(reply, dict):
        raise _reply_error("not a JSON object.")
    summary = reply.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise _reply_error("summary must be a string.")
    decisions = reply.get("decision_log") or []
    if not isinstance(decisions, list) or not all(isinstance(d, str) for d in decisions):
        raise _reply_error("decision_log must be a list of strings.")
    cost = reply.get("cost") or {}
    if not isinstance(cost, dict):
        raise _reply_error("cost must be an object.")
    tokens = _optional_number(cost.get("tokens"), "tokens")
    result = ExecutionResult(
        summary=summary,
        decision_log=list(decisions),
        cost_usd=_optional_number(cost.get("usd"), "usd"),
        cost_tokens=int(tokens) if tokens is not None else None,
        cost_compute_s=_optional_number(cost.get("compute_s"), "compute_s"),
        artifacts=[_reply_artifact(item, i) for i, item in enumerate(_artifact_list(reply.get("artifacts")))],
    )
    status = reply.get("status", "done")
    if status == "failed":
        failure = reply.get("failure") or {}
        category = failure.get("category", FailureCategory.UNKNOWN) if isinstance(failure, dict) else None
        if category not in FailureCategory.values:
            raise _reply_error(f"failure.category must be one of {', '.join(FailureCategory.values)}.")
        result.failure_category = category
        result.failure_message = str(failure.get("message") or "The webhook reported a failure.")
    elif status != "done":
        raise _reply_error("status must be 'done' or 'failed'.")
    return result


def _artifact_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_REPLY_ARTIFACTS:
        raise _reply_error(f"artifacts must be a list of at most {MAX_REPLY_ARTIFACTS} objects.")
    return value


def _reply_artifact(item: Any, index: int) -> ArtifactSpec:
    where = f"artifacts.{index}"
    if not isinstance(item, dict):
        raise _reply_error(f"{where} must be an object.")
    if item.get("type") not in ArtifactType.values:
        raise _reply_error(f"{where}.type must be one of {', '.join(ArtifactType.values)}.")
    for key in ("title", "uri", "media_type", "digest", "preview", "content", "content_base64"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise _reply_error(f"{where}.{key} must be a string.")
    content: bytes | None = None
    if item.get("content") is not None:
        content = item["content"].encode()
    elif item.get("content_base64") is not None:
        try:
            content = base64.b64decode(item["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise _reply_error(f"{where}.content_base64 is not base64.") from None
    if (content is None) == (item.get("uri") is None):
        raise _reply_error(f"{where} needs exactly one of uri, content, content_base64.")
    return ArtifactSpec(
        type=item["type"],
        title=item.get("title") or "",
        content=content,
        uri=item.get("uri"),
        media_type=item.get("media_type"),
        digest=item.get("digest") if content is None else None,
        preview=item.get("preview"),
    )
