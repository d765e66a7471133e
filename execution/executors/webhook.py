"""The ``webhook`` executor: POST the run's bundle to an allowlisted URL and record the reply.

Only URLs under a prefix in ``CWOM_WEBHOOK_ALLOWLIST`` are called. The host is resolved once, every
address is checked (link-local, cloud metadata, multicast, unspecified and reserved addresses are refused
even when allowlisted) and the connection is made to that checked address, so a DNS answer cannot change
between the check and the call. Redirects are not followed.

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
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cwom.enums import ArtifactType, FailureCategory

from ..config import conf
from .base import ArtifactSpec, ExecutionContext, ExecutionResult, Executor, ExecutorError, config_error

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("168.63.129.16"),  # Azure wire server
}
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REPLY_ARTIFACTS = 50


def webhook_settings() -> dict[str, Any]:
    return dict(conf()["webhook"])


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-CWOM-Signature`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("only http(s) URLs with a host")
    if parts.username or parts.password:
        raise ValueError("no credentials in the URL")
    return scheme, parts.hostname.lower(), parts.port or DEFAULT_PORTS[scheme], parts.path or "/"


def url_allowed(url: str, allowlist: list[str]) -> bool:
    """True when ``url`` is under one of the allowlisted prefixes (same scheme, host, port, path prefix)."""
    try:
        scheme, host, port, path = _split(url)
    except ValueError:
        return False
    for entry in allowlist:
        try:
            e_scheme, e_host, e_port, e_path = _split(entry)
        except ValueError:
            continue
        if (scheme, host, port) != (e_scheme, e_host, e_port):
            continue
        prefix = e_path.rstrip("/")
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def address_refused(address: str) -> str | None:
    """Why a connection to ``address`` is refused, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not a unicast address"
    return None


def resolve_checked(host: str, port: int) -> str:
    """One address of ``host`` that may be called; ExecutorError(policy) if any address is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ExecutorError(f"Cannot resolve webhook host {host!r}: {error}.", FailureCategory.DEPENDENCY) from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = address_refused(address)
        if reason:
            raise ExecutorError(f"Webhook host {host!r} resolves to {address}, {reason}.", FailureCategory.POLICY)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand, whatever DNS says now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def check_url(url: str) -> None:
    """ExecutorError(policy) unless ``url`` is allowlisted and not a literal refused address."""
    conf = webhook_settings()
    if not url_allowed(url, conf["allowlist"]):
        raise ExecutorError(f"Webhook URL {url!r} is not on the webhook allowlist.", FailureCategory.POLICY)
    host = urlsplit(url).hostname or ""
    try:
        reason = address_refused(host)
    except ValueError:
        reason = None  # a name, checked once resolved
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
        scheme, host, port, _path = _split(url)
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
        status, reply = self._post(scheme, host, port, address, url, body, headers, timeout, conf, ctx)
        ctx.trace("webhook.reply", status=status, bytes=len(reply))
        ctx.log(f"webhook: HTTP {status}, {len(reply)} bytes")
        if not 200 <= status < 300:
            raise ExecutorError(f"Webhook answered HTTP {status}.", FailureCategory.DEPENDENCY)
        return parse_reply(reply)

    @staticmethod
    def _post(
        scheme: str,
        host: str,
        port: int,
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
            cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
            conn = cls(host, port, address, timeout)
            try:
                parts = urlsplit(url)
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(cap + 1)
                outcome["result"] = (response.status, data)
            except Exception as error:  # noqa: BLE001 - reported to the waiting thread
                outcome["error"] = error
            finally:
                conn.close()

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
