"""Credentials and request bookkeeping for the API: agent tokens and idempotency records."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone

TOKEN_PREFIX = "cwom_"  # noqa: S105 - a public prefix, not a secret


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """An agent's API token. Only a hash of the secret is stored; the secret is shown once."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100, unique=True)
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    can_write = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

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

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, name: str, can_write: bool) -> tuple[ApiToken, str]:
        """Create a token; returns it with the plain secret (``cwom_<key_id>_<secret>``), shown once."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = cls.objects.create(name=name, key_id=key_id, secret_hash=hash_secret(secret), can_write=can_write)
        return token, f"{TOKEN_PREFIX}{key_id}_{secret}"

    @classmethod
    def authenticate(cls, presented: str) -> ApiToken | None:
        """The active token matching ``presented``, compared in constant time, or None."""
        if not presented.startswith(TOKEN_PREFIX):
            return None
        key_id, _, secret = presented[len(TOKEN_PREFIX) :].partition("_")
        token = cls.active(key_id)
        if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
            return None
        return token

    @classmethod
    def active(cls, key_id: str) -> ApiToken | None:
        """The unrevoked token with ``key_id``, from the cache when it was read in the last few seconds.

        The cache holds the row (the secret's hash, never the secret) for ``CWOM_TOKEN_CACHE_SECONDS``;
        saving a token (``revoke()``, the admin) drops its entry, so a revocation is seen at once
        wherever the cache is shared, and at most that many seconds late in a process with its own.
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
