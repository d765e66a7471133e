"""Who is calling, what they may do, and how often.

- :class:`ApiTokenAuthentication`: agents present ``Authorization: Bearer cwom_<key>_<secret>`` (the
  ``Token`` scheme is accepted too). Tokens are created by an operator command, stored hashed, and are
  read-only or read-write, optionally with an expiry (past it: 401 ``token_expired``). Sessions
  (``SessionAuthentication``) serve the admin and the browsable API.
- :class:`TokenScopePermission`: every endpoint needs a credential (anonymous: 401 with
  ``WWW-Authenticate``); reads need any credential; writes need a read-write token or a superuser
  session (read-only: 403 ``read_only``).
- :class:`PrincipalRateThrottle`: a rate per principal (per client address for anonymous callers of the
  open endpoints), counted on the shared cache so every web process sees the same counts.
- :class:`AddressRateThrottle`: callers *without* a valid credential, per client address
  (``DEFAULT_THROTTLE_RATES['anonymous']``). DRF checks throttles after authentication and permissions,
  which such callers never pass, so this one is applied inside them: before the token lookup for a
  presented token (past the budget a guessing loop costs no database query), and before the 401 for a
  caller with no credential. Only failures count; see the class for how valid tokens stay unaffected.
- :func:`principal_of`: the string every event records (``token:<name>``, ``user:<username>``).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request
from rest_framework.settings import api_settings

from cwom.models import ApiToken, TokenExpired
from cwom.shapes import iso

from .errors import Problem

TOKEN_SCHEMES = ("bearer", "token")
# last_used_at is written at most this often per token, so reads do not each cost a write.
TOUCH_INTERVAL_S = 60
# A credential that authenticated is exempt from the per-address budget for this long (see AddressRateThrottle).
VOUCHED_S = 24 * 3600
# When this process last touched each token, (pk, key id) -> time.monotonic().
_touched: dict[tuple[Any, str], float] = {}


class TokenUser:
    """The ``request.user`` of a token-authenticated request (tokens are not Django users)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.username = token.principal

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class ExpiredToken(Problem, exceptions.AuthenticationFailed):
    """401 ``token_expired``: the right secret of a token past its ``expires_at`` (with ``WWW-Authenticate``)."""

    status_code = 401
    default_code = "token_expired"
    default_detail = "This token has expired."


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` (or ``Token <token>``) against hashed :class:`ApiToken` rows."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TokenUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in TOKEN_SCHEMES:
            return None
        guard = AddressRateThrottle()
        credential = header[1] if len(header) == 2 else None
        guard.refuse_if_over(request, credential)  # before any lookup: 429 once this address failed too often
        try:
            token = self._token(header)
        except exceptions.AuthenticationFailed:
            guard.failed(request)
            raise
        guard.succeeded()
        self._touch(token)
        return TokenUser(token), token

    @staticmethod
    def _token(header: list[bytes]) -> ApiToken:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            presented = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        try:
            token = ApiToken.authenticate(presented)
        except TokenExpired as expired:
            when = iso(expired.expired_at)
            raise ExpiredToken(
                f"This token expired at {when}; ask an operator for a new one.", expired_at=when
            ) from None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return token

    @staticmethod
    def _touch(token: ApiToken) -> None:
        # This process remembers its own recent touches, so most requests skip even the cache round trip.
        mark = (token.pk, token.key_id)
        now = time.monotonic()
        if now - _touched.get(mark, -TOUCH_INTERVAL_S) < TOUCH_INTERVAL_S:
            return
        if len(_touched) > 1000:
            _touched.clear()
        _touched[mark] = now
        if cache.add(f"cwom:token-touch:{token.pk}", 1, TOUCH_INTERVAL_S):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="cwom"'


def principal_of(request: Request | Any) -> str:
    """The authenticated principal as recorded on events: ``token:<name>``, ``user:<username>``."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.principal
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.get_username()}"
    return "anonymous"


def can_write(request: Request | Any) -> bool:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.can_write
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_superuser)


class TokenScopePermission(permissions.BasePermission):
    """Reads need a credential; writes need a read-write token (or a superuser session)."""

    message = "This credential is read-only: writing needs a read-write token."
    code = "read_only"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            # Counted per address first: past the budget 429, not 401 (throttles would run too late).
            AddressRateThrottle().refuse_anonymous(request, view)
            # DRF turns this into 401 with WWW-Authenticate (the token scheme answers authenticate_header).
            raise exceptions.NotAuthenticated("Authentication credentials were not provided.")
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_write(request)


class PrincipalRateThrottle(throttling.SimpleRateThrottle):
    """``DEFAULT_THROTTLE_RATES['principal']`` per principal, on the default (shared) cache."""

    scope = "principal"
    num_requests: int  # set by DRF from the rate (absent from the stubs)
    duration: int

    def get_rate(self) -> str | None:
        # Read at request time (not import time) so settings changes apply.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return str(rate) if rate is not None else None

    def get_cache_key(self, request: Request, view: Any) -> str:
        principal = principal_of(request)
        ident = principal if principal != "anonymous" else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    # DRF keeps one timestamp per request of the window: at a high rate that list, read and written on
    # every request, grows to thousands of entries. Here the window is kept as at most BUCKETS + 1
    # [start, count] pairs (newest first), each covering 1/BUCKETS of the duration. A bucket counts
    # until it has left the window entirely, so the limit is never exceeded; at most one bucket's worth
    # of requests is refused early.
    BUCKETS = 60

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        self._load(self.cache.get(self.key, []))
        if self._full():
            return self.throttle_failure()
        self._count()
        return True

    def _load(self, stored: Any) -> None:
        """The window's buckets from their stored form, dropping those that have left it (at ``self.now``)."""
        self.now = self.timer()
        width = self.duration / self.BUCKETS
        self.history = [b for b in stored or [] if b[0] + width > self.now - self.duration]

    def _full(self) -> bool:
        return sum(count for _, count in self.history) >= self.num_requests

    def _count(self) -> None:
        """One more request in the current bucket, stored."""
        width = self.duration / self.BUCKETS
        start = self.now - self.now % width
        if self.history and self.history[0][0] == start:
            self.history[0] = [start, self.history[0][1] + 1]
        else:
            self.history.insert(0, [start, 1])
        self.cache.set(self.key, self.history, self.duration)

    def wait(self) -> float | None:
        width = self.duration / self.BUCKETS
        if self.history:
            # The oldest bucket leaves the window when its end does.
            remaining = min(self.duration, self.history[-1][0] + width + self.duration - self.now)
        else:
            remaining = self.duration
        available = self.num_requests - sum(count for _, count in self.history) + 1
        if available <= 0:
            # Counted past the limit (concurrent requests; failures the address throttle records): at least
            # until the oldest bucket leaves, and never None, so the 429 always carries Retry-After.
            return max(remaining, 0)
        return max(remaining, 0) / available


class AddressRateThrottle(PrincipalRateThrottle):
    """``DEFAULT_THROTTLE_RATES['anonymous']`` per client address, for callers without a valid credential.

    Counted: every request with no credential that reaches a protected endpoint, and every presented
    token that fails (unknown, revoked, expired, malformed). Checked: before the 401 of the former, and
    *before the token lookup* of every presented token, so past the budget a guessing loop is answered
    429 (``throttled``, ``Retry-After``) without touching the database.

    A valid token is never counted, and a credential that authenticated in the last ``VOUCHED_S``
    (remembered in the cache under a hash of the whole credential, which only its holder can present)
    skips the check: an agent keeps working from an address that others push over the budget, under
    its own per-principal rate. A valid token that has not authenticated within ``VOUCHED_S`` (a new
    one, an idle one) is refused like the others while its address is over the budget, for at most one
    window: telling it apart from a guess would take the lookup the budget exists to spare. A vouched
    credential that fails (revoked, expired since) loses the exemption and counts.

    ``get_ident`` is DRF's: ``REMOTE_ADDR``, or the ``X-Forwarded-For`` entry that ``NUM_PROXIES``
    (``CWOM_NUM_PROXIES``) trusts. Like the per-principal count, read-then-write on the shared cache:
    approximate under concurrent requests from one address. No rate (``None``) turns it off.
    """

    scope = "anonymous"

    def __init__(self) -> None:
        super().__init__()
        self._vouch_key: str | None = None
        self._vouched = False

    def get_cache_key(self, request: Request, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def refuse_if_over(self, request: Request, credential: bytes | None) -> None:
        """Before a presented token is looked up: 429 if this address is over its budget, unless the
        credential authenticated recently. One cache round trip."""
        if self.rate is None:
            return
        self.key = self.get_cache_key(request)
        if credential is not None:
            self._vouch_key = "cwom:token-ok:" + hashlib.sha256(b"cwom-vouch:" + credential).hexdigest()[:40]
        keys = [self.key] + ([self._vouch_key] if self._vouch_key else [])
        found = self.cache.get_many(keys)
        self._vouched = self._vouch_key is not None and found.get(self._vouch_key) is not None
        if self._vouched:
            return
        self._load(found.get(self.key))
        if self._full():
            raise exceptions.Throttled(self.wait())

    def failed(self, request: Request) -> None:
        """A presented token failed: one more failure for the address; the credential is no longer vouched for."""
        if self.rate is None:
            return
        if self._vouched and self._vouch_key:
            self.cache.delete(self._vouch_key)
        # Read again: the lookup took a while, and other failures from this address may have been counted.
        self._load(self.cache.get(self.key, []))
        self._count()

    def succeeded(self) -> None:
        """The token authenticated: vouch for the credential (once; the entry lives ``VOUCHED_S``)."""
        if self.rate is not None and self._vouch_key and not self._vouched:
            self.cache.set(self._vouch_key, 1, VOUCHED_S)

    def refuse_anonymous(self, request: Request, view: Any) -> None:
        """A request with no credential at all: counted, and 429 past the budget."""
        if not self.allow_request(request, view):
            raise exceptions.Throttled(self.wait())
