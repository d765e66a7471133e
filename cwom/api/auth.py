"""Who is calling, what they may do, and how often.

- :class:`ApiTokenAuthentication`: agents present ``Authorization: Bearer cwom_<key>_<secret>`` (the
  ``Token`` scheme is accepted too). Tokens are created by an operator command, stored hashed, and are
  read-only or read-write, optionally with an expiry (past it: 401 ``token_expired``). Sessions
  (``SessionAuthentication``) serve the admin and the browsable API.
- :class:`TokenScopePermission`: every endpoint needs a credential (anonymous: 401 with
  ``WWW-Authenticate``); reads need any credential; writes need a read-write token or a superuser
  session (read-only: 403 ``read_only``).
- :class:`PrincipalRateThrottle`: a rate per principal (per client address for anonymous callers),
  counted on the shared cache so every web process sees the same counts.
- :func:`principal_of`: the string every event records (``token:<name>``, ``user:<username>``).
"""

from __future__ import annotations

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
        token = self._token(header)
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
        self.now = self.timer()
        width = self.duration / self.BUCKETS
        self.history = [b for b in self.cache.get(self.key, []) if b[0] + width > self.now - self.duration]
        if sum(count for _, count in self.history) >= self.num_requests:
            return self.throttle_failure()
        start = self.now - self.now % width
        if self.history and self.history[0][0] == start:
            self.history[0] = [start, self.history[0][1] + 1]
        else:
            self.history.insert(0, [start, 1])
        self.cache.set(self.key, self.history, self.duration)
        return True

    def wait(self) -> float | None:
        width = self.duration / self.BUCKETS
        if self.history:
            # The oldest bucket leaves the window when its end does.
            remaining = min(self.duration, self.history[-1][0] + width + self.duration - self.now)
        else:
            remaining = self.duration
        available = self.num_requests - sum(count for _, count in self.history) + 1
        if available <= 0:
            return None
        return max(remaining, 0) / available
