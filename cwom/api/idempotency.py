"""Safe retries: an ``Idempotency-Key`` header on any POST makes a retry replay the first answer.

How it works (one transaction per keyed POST):

1. After authentication, the key is looked up for the caller's principal (keys are scoped to the
   principal). A stored answer is replayed as is (same status, body, ``Location``/``ETag``) with
   ``Idempotent-Replayed: true``; the same key with a different request (method, path or JSON body)
   is a 422 ``idempotency_key_reused``.
2. Otherwise a transaction opens and an :class:`~cwom.models.IdempotencyRecord` row claiming the key
   is inserted first; the view runs inside that transaction; a successful (2xx/3xx) answer is stored
   on the row and everything commits together. An error answer rolls back the claim with the work, so
   nothing was written and a corrected retry may reuse the key.
3. Two requests racing with one key: the second insert waits on the unique constraint (PostgreSQL) or
   on the write lock (SQLite) until the first commits, then finds the stored answer and replays it.
   There are never two writes.

Records are kept ``CWOM_IDEMPOTENCY_TTL_HOURS`` (default 24) hours; :func:`purge_expired` deletes older ones
(an expired key is treated as new).

Reusing it in another view (e.g. ``execution``'s enqueue): put :class:`IdempotencyMixin` before the DRF
base class, or simply subclass :class:`cwom.api.views.CwomAPIView`, which already includes it::

    class EnqueueView(CwomAPIView):
        def post(self, request): ...   # Idempotency-Key now honoured; events carry the principal

Only POST is covered (``idempotent_methods``); the hash covers the JSON body canonically (key order and
whitespace do not matter) or, for other media types, the raw bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from cwom.models import IdempotencyRecord

from .auth import principal_of
from .errors import BadRequest, IdempotencyKeyReused, Problem

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
STORED_HEADERS = ("Location", "ETag")
MAX_KEY_LENGTH = 255


def ttl() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "CWOM_IDEMPOTENCY_TTL_HOURS", 24)))


def purge_expired() -> int:
    """Delete records older than the TTL; returns how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - ttl()).delete()
    return deleted


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


def request_hash(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path.rstrip('/')}\n".encode())
    if (request.content_type or "").split(";")[0].strip() == "application/json":
        digest.update(json.dumps(request.data, sort_keys=True, separators=(",", ":")).encode())
    else:
        digest.update(request.body)
    return digest.hexdigest()


def replay_response(record: IdempotencyRecord) -> Response:
    headers = {**(record.response_headers or {}), REPLAYED_HEADER: "true"}
    body = record.response_body
    if isinstance(body, str):  # stored as JSON text: jsonb would not keep the key order of the first answer
        body = json.loads(body)
    return Response(body, status=record.status_code, headers=headers)


class IdempotentCall:
    """One keyed request: claims the key in a transaction that also holds the view's work."""

    def __init__(self, request: Request, key: str) -> None:
        self.principal = principal_of(request)
        self.key = key
        self.method = request.method or "POST"
        self.path = request.path[:500]
        self.hash = request_hash(request)
        self.record: IdempotencyRecord | None = None
        self._atomic: Any = None

    def _existing(self) -> IdempotencyRecord | None:
        return IdempotencyRecord.objects.filter(principal=self.principal, key=self.key).first()

    def _answer(self, record: IdempotencyRecord) -> None:
        if record.request_hash != self.hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {self.key!r} was first used for {record.method} {record.path} with another body.",
                errors=[
                    {"path": HEADER, "code": "idempotency_key_reused", "message": "Use a new key for a new request."}
                ],
            )
        if record.status_code is None:  # pragma: no cover - claims are never committed without an answer
            raise Problem("A request with this key is still in progress.", "idempotency_in_progress", status_code=409)
        raise _Replay(record)

    def begin(self) -> None:
        """Replay (raises ``_Replay``), refuse (422), or claim the key and open the transaction."""
        IdempotencyRecord.objects.filter(
            principal=self.principal, key=self.key, created_at__lt=timezone.now() - ttl()
        ).delete()
        existing = self._existing()
        if existing is not None:
            self._answer(existing)
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        try:
            with transaction.atomic():
                self.record = IdempotencyRecord.objects.create(
                    principal=self.principal, key=self.key, method=self.method, path=self.path, request_hash=self.hash
                )
        except IntegrityError:
            # Someone committed this key while we waited: answer as they did.
            self._close_atomic(commit=False)
            existing = self._existing()
            if existing is None:  # pragma: no cover - the winner rolled back between our insert and read
                raise Problem(
                    "A request with this key is being processed; retry.", "idempotency_in_progress", status_code=409
                ) from None
            self._answer(existing)

    def finish(self, response: Response | None) -> None:
        """Store a successful answer and commit, or roll the claim back with the work."""
        if self._atomic is None:
            return
        ok = response is not None and response.status_code < 400 and not transaction.get_rollback()
        if ok and self.record is not None and response is not None:
            self.record.status_code = response.status_code
            self.record.response_body = json.dumps(response.data, cls=DjangoJSONEncoder)
            self.record.response_headers = {name: response[name] for name in STORED_HEADERS if name in response}
            self.record.save(update_fields=["status_code", "response_body", "response_headers"])
        self._close_atomic(commit=ok)

    def _close_atomic(self, commit: bool) -> None:
        atomic, self._atomic = self._atomic, None
        if not commit:
            transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


class IdempotencyMixin:
    """Honour ``Idempotency-Key`` on POST in any DRF view (place it before the DRF base class)."""

    idempotent_methods: tuple[str, ...] = ("POST",)
    _idempotent_call: IdempotentCall | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # authentication, permissions, throttles
        key = request.headers.get(HEADER)
        if key is None or request.method not in self.idempotent_methods:
            return
        if not (0 < len(key) <= MAX_KEY_LENGTH) or not key.isprintable() or not key.isascii():
            message = f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
            raise BadRequest(
                message, "invalid_idempotency_key", errors=[{"path": HEADER, "code": "invalid", "message": message}]
            )
        call = IdempotentCall(request, key)
        self._idempotent_call = call  # set first: dispatch() closes an opened transaction whatever happens
        call.begin()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return replay_response(exc.record)
        return super().handle_exception(exc)  # type: ignore[misc]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._idempotent_call = None
        response = None
        try:
            response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
            return response
        finally:
            call, self._idempotent_call = self._idempotent_call, None
            if call is not None:
                call.finish(response)
