"""Outbound HTTP calls to URLs that a client chose: the checks and the signature every one of them gets.

Used by the ``webhook`` executor and by event subscriptions (:mod:`execution.subscriptions`):

- a URL is called only when it is under an allowlisted prefix (same scheme, host, port, path prefix);
- the host is resolved once and every address is checked (link-local, cloud metadata, multicast,
  unspecified and reserved addresses are refused even when allowlisted), then the connection is made to
  that checked address, so a DNS answer cannot change between the check and the call;
- redirects are never followed (``http.client`` does not follow them); every call has a timeout and
  reads at most a capped number of bytes of the reply;
- the body is signed: ``X-CWOM-Signature: sha256=<hex HMAC-SHA256(secret, "<X-CWOM-Timestamp>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("168.63.129.16"),  # Azure wire server
}
DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(Exception):  # noqa: N818 - a refusal, with a reason for the caller to report
    """A call that must not be made (``policy``) or cannot be (the host does not resolve)."""

    def __init__(self, message: str, *, policy: bool) -> None:
        super().__init__(message)
        self.message = message
        self.policy = policy


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-CWOM-Signature`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL; ValueError for anything else or credentials in it."""
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
        scheme, host, port, path = split_url(url)
    except ValueError:
        return False
    for entry in allowlist:
        try:
            e_scheme, e_host, e_port, e_path = split_url(entry)
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


def literal_address_refused(url: str) -> str | None:
    """Why ``url``'s host, when it is a literal address, is refused (None for a name: checked once resolved)."""
    host = urlsplit(url).hostname or ""
    try:
        return address_refused(host)
    except ValueError:
        return None


def resolve_checked(host: str, port: int, what: str = "Webhook") -> str:
    """One address of ``host`` that may be called; OutboundRefused if any of its addresses is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OutboundRefused(f"Cannot resolve {what.lower()} host {host!r}: {error}.", policy=False) from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = address_refused(address)
        if reason:
            raise OutboundRefused(f"{what} host {host!r} resolves to {address}, {reason}.", policy=True)
    return addresses[0]


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand, whatever DNS says now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_pinned(
    url: str, address: str, body: bytes, headers: dict[str, str], timeout: float, cap: int
) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` over a connection to the checked ``address``: (status, at most ``cap + 1``
    bytes of the reply, so a caller can tell a reply longer than ``cap``). Never follows a redirect."""
    scheme, host, port, _path = split_url(url)
    cls = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    conn = cls(host, port, address, timeout)
    try:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(cap + 1)
    finally:
        conn.close()
