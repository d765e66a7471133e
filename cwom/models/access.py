"""Credentials and request bookkeeping for the API: agent tokens and idempotency records."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.utils import timezone

TOKEN_PREFIX = "cwom_"  # noqa: S105 - a public prefix, not a secret

# A token's name is a lowercase slug: Django's slug characters (letters, digits, '-', '_') in lowercase
# ASCII, starting with a letter or digit (so it never reads as a command-line option), at most 64 of
# them. The same pattern is the database's CHECK (\A and \Z mean the same in Python and PostgreSQL).
TOKEN_NAME_MAX_LENGTH = 64
TOKEN_NAME_PATTERN = r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"  # noqa: S105 - a name rule, not a secret
TOKEN_NAME_RULE = "1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"  # noqa: S105 - words, not a secret
_token_name = RegexValidator(
    TOKEN_NAME_PATTERN,
    message=f"%(value)r is not a token name: use {TOKEN_NAME_RULE} (e.g. github-importer).",
    code="invalid_token_name",
)


def validate_token_name(value: str) -> None:
    """The field's validator (a function, so migrations refer to it instead of copying its message)."""
    _token_name(value)


class TokenExpired(Exception):
    """The presented secret matches an unrevoked token whose ``expires_at`` has passed."""

    def __init__(self, token: ApiToken) -> None:
        super().__init__(f"token {token.name} expired at {token.expires_at}")
        self.token = token
        self.expired_at: dt.datetime = token.expires_at  # type: ignore[assignment]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """An agent's API token. Only a hash of the secret is stored; the secret is shown once."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=TOKEN_NAME_MAX_LENGTH, unique=True, validators=[validate_token_name])
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    can_write = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # None: the token never expires. Checked on every request (see authenticate()), not when cached.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name__regex=TOKEN_NAME_PATTERN),
                name="apitoken_name_slug",
                violation_error_code="invalid_token_name",
                violation_error_message=f"A token name is {TOKEN_NAME_RULE}.",
            )
        ]

    def __str__(self) -> str:
        return f"token {self.name} ({'read-write' if self.can_write else 'read-only'})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self.forget()

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().delete(*args, **kwargs)
        finally:
            self.forget()

    @property
    def principal(self) -> str:
        return f"token:{self.name}"

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    @property
    def status(self) -> str:
        """``revoked``, ``expired`` or ``active`` (a revoked token is revoked whatever its expiry)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired() else "active"

    @classmethod
    def issue(cls, name: str, can_write: bool, expires_at: dt.datetime | None = None) -> tuple[ApiToken, str]:
        """Create a token; returns it with the plain secret (``cwom_<key_id>_<secret>``), shown once.

        The name must be a token name (:data:`validate_token_name`) and ``expires_at``, when given, in the
        future: ``ValidationError`` otherwise. A taken name is the database's ``IntegrityError``.
        """
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls(name=name, key_id=key_id, secret_hash=hash_secret(secret), can_write=can_write)
        token.expires_at = expires_at
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError(
                {"expires_at": ValidationError("A new token must expire in the future.", code="in_the_past")}
            )
        # Uniqueness is left to the database (one query fewer; the caller tells a taken name apart).
        token.full_clean(validate_unique=False, validate_constraints=False)
        token.save(force_insert=True)
        return token, f"{TOKEN_PREFIX}{key_id}_{secret}"

    @classmethod
    def authenticate(cls, presented: str, now: dt.datetime | None = None) -> ApiToken | None:
        """The active token matching ``presented``, compared in constant time, or None.

        Raises :class:`TokenExpired` when the secret matches an unrevoked token past its ``expires_at``
        (judged at ``now``, the time of the request, never when the row was cached). Only a caller who
        holds the secret learns that the token expired; anyone else gets None.
        """
        if not presented.startswith(TOKEN_PREFIX):
            return None
        key_id, _, secret = presented[len(TOKEN_PREFIX) :].partition("_")
        token = cls.active(key_id)
        if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
            return None
        if token.is_expired(now):
            raise TokenExpired(token)
        return token

    @classmethod
    def active(cls, key_id: str) -> ApiToken | None:
        """The unrevoked token with ``key_id``, from the cache when it was read in the last few seconds.

        The cache holds the row (the secret's hash, never the secret) for ``CWOM_TOKEN_CACHE_SECONDS``;
        saving a token (``revoke()``, the admin) drops its entry, so a revocation is seen at once
        wherever the cache is shared, and at most that many seconds late in a process with its own.
        Expired tokens are returned too (the cached row carries ``expires_at``): expiry is the caller's
        check, at request time.
        """
        seconds = cache_seconds()
        if seconds <= 0 or not key_id:
            return cls.objects.filter(key_id=key_id, revoked_at__isnull=True).first()
        key = cache_key(key_id)
        names = [f.attname for f in cls._meta.concrete_fields]
        row = cache.get(key)
        if row is not None and len(row) == len(names):
            return cls.from_db(None, names, row)
        token = cls.objects.filter(key_id=key_id, revoked_at__isnull=True).first()
        if token is not None:
            cache.set(key, tuple(getattr(token, name) for name in names), seconds)
        return token

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])

    def forget(self) -> None:
        """Drop the cached row now, and again when the transaction commits (a request may have re-read
        the row in between)."""
        key = cache_key(self.key_id)
        cache.delete(key)
        transaction.on_commit(lambda: cache.delete(key))


def cache_seconds() -> float:
    return float(getattr(settings, "CWOM_TOKEN_CACHE_SECONDS", 0))


def cache_key(key_id: str) -> str:
    return f"cwom:token:{hashlib.sha256(key_id.encode()).hexdigest()[:32]}"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for retries of it."""

    id = models.BigAutoField(primary_key=True)
    principal = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_principal_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"

    def replay(self) -> dict[str, Any]:
        return {"status": self.status_code, "body": self.response_body, "headers": self.response_headers}
