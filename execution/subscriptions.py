"""Event subscriptions: signed outbound webhooks, delivered at least once, in event order, never lost.

    event written  ->  the database queues a Delivery per matching subscription, in the event's transaction
                       (the outbox trigger, :mod:`execution.outbox`)
    after commit   ->  a task per subscription that got one (``execution.tasks.deliver_subscription``)
    beat           ->  :func:`sweep`: every subscription with a due delivery and no live lease gets a task
    task           ->  :func:`deliver`: one worker at a time per subscription (a lease), its pending deliveries
                       sent oldest event first; a failure is retried with exponential backoff and jitter for
                       ``retry_hours``, then the delivery is ``dead``; ``pause_after_dead`` dead in a row
                       pause the subscription (recorded as a ``pause`` SubscriptionEvent)

A delivery is ``POST url`` with the event document exactly as ``GET /api/v1/events`` shows it, and the headers
``X-CWOM-Event-Id``, ``X-CWOM-Subscription``, ``X-CWOM-Timestamp`` and
``X-CWOM-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` (:func:`execution.outbound.sign`,
the webhook executor's scheme), through the same allowlist and address checks (:mod:`execution.outbound`).

The secret is never stored. It is derived: ``HMAC-SHA256(SECRET_KEY, "cwom.subscription-secret" + id + nonce)``
(Django's ``salted_hmac``), with a random nonce per subscription kept in its row, and only its SHA-256 digest
is stored beside it. Signing derives it again with ``SECRET_KEY``, then each of ``SECRET_KEY_FALLBACKS``,
and uses the one whose digest matches: rotating ``SECRET_KEY`` with the old key kept as a fallback changes no
subscription's secret. A secret that no configured key derives any more fails its deliveries
(``signing_key_unavailable``) until the old key is configured again or the subscription is re-created.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from cwom import shapes
from cwom.api.renderers import CwomJSONRenderer
from cwom.api.serializers import EventSerializer
from cwom.enums import Kind
from cwom.models import Event, Repo

from . import outbound
from .config import conf
from .models import Delivery, DeliveryStatus, Subscription, SubscriptionEvent

log = logging.getLogger(__name__)

DELIVER_TASK = "execution.tasks.deliver_subscription"
SECRET_SALT = "cwom.subscription-secret"  # noqa: S105 - a salt (a purpose), not a secret
# Set (in the shared cache) while any subscription is active: the write path then asks for a delivery task
# right after commit. Without it (no subscription, or a cold cache) the sweep delivers.
ACTIVE_FLAG = "cwom:subscriptions:active"
USER_AGENT = "cwom-subscriptions/0.1"
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
FIELDS = ("url", "kinds", "actions", "repo", "description", "active")


def settings_() -> dict[str, Any]:
    return dict(conf()["subscriptions"])


# --- the secret ------------------------------------------------------------------------------------------
def _derive(subscription_id: str, nonce: str, key: str) -> str:
    return "whsec_" + salted_hmac(SECRET_SALT, f"{subscription_id}:{nonce}", secret=key, algorithm="sha256").hexdigest()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_secret(subscription: Subscription) -> str:
    """A new secret for ``subscription`` (its nonce and digest set, not saved): shown once, never stored."""
    subscription.secret_nonce = secrets.token_hex(16)
    secret = _derive(subscription.pk, subscription.secret_nonce, str(settings.SECRET_KEY))
    subscription.secret_digest = _digest(secret)
    return secret


def secret_for(subscription: Subscription) -> str | None:
    """The subscription's secret, derived by whichever configured key made it (None if none does)."""
    for key in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        secret = _derive(subscription.pk, subscription.secret_nonce, key)
        if _digest(secret) == subscription.secret_digest:
            return secret
    return None


# --- the service: create, change, delete, redeliver --------------------------------------------------------
def resolve_repo(value: Any) -> Repo | None:
    """A repo named by id, slug or Ref (``{"kind": "Repo", "id": ...}``), resolved by the write path's Ref
    resolver (:class:`cwom.shapes.RefCollector`); None for null."""
    if value is None:
        return None
    refs, errors = shapes.RefCollector(), shapes.Errors()
    if isinstance(value, (str, dict)):
        refs.want(value, Kind.REPO, "repo")
        refs.resolve({"repo": Kind.REPO}, errors)  # a slug is replaced by its repo's id in ``wanted``
    else:
        errors.add("repo", "invalid_id", "A Repo's id, slug or Ref.")
    errors.raise_if_any()
    return Repo.objects.get(pk=refs.wanted[0][0])


def _apply(subscription: Subscription, data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set the fields ``data`` names; returns the changes as [before, after] pairs."""
    changes: dict[str, list[Any]] = {}
    for name in FIELDS:
        if name not in data:
            continue
        if name == "repo":
            repo = resolve_repo(data[name])
            before, after = subscription.repo_id, repo.pk if repo else None
            subscription.repo = repo
        else:
            before, after = getattr(subscription, name), data[name]
            setattr(subscription, name, after)
        if before != after:
            changes[name] = [before, after]
    return changes


def _record(subscription_id: str, action: str, changes: dict[str, Any], principal: str) -> None:
    SubscriptionEvent.objects.create(
        subscription_id=subscription_id, action=action, changes=changes, principal=principal
    )


def _refresh_active_flag() -> None:
    active = Subscription.objects.filter(active=True).exists()
    cache.set(ACTIVE_FLAG, active, timeout=None)
    _flag_memo[:] = [active, time.monotonic() + FLAG_MEMO_SECONDS]


# The flag as this process last read it, and until when that reading is used (a write path that builds many
# events asks the shared cache at most once a second).
FLAG_MEMO_SECONDS = 1.0
_flag_memo: list[Any] = [False, 0.0]


def any_active() -> bool:
    """Whether some subscription is active, as the shared cache says (read at most once a second)."""
    if time.monotonic() >= _flag_memo[1]:
        _flag_memo[:] = [bool(cache.get(ACTIVE_FLAG)), time.monotonic() + FLAG_MEMO_SECONDS]
    return bool(_flag_memo[0])


def forget_active_flag() -> None:
    """Drop the flag here and in the shared cache (tests)."""
    cache.delete(ACTIVE_FLAG)
    _flag_memo[:] = [False, 0.0]


def create(data: Mapping[str, Any], principal: str) -> tuple[Subscription, str]:
    """A new subscription (validated by the model) and its secret, shown this once."""
    subscription = Subscription(created_by=principal)
    changes = _apply(subscription, data)
    secret = issue_secret(subscription)
    subscription.full_clean()
    with transaction.atomic():
        subscription.save(force_insert=True)
        _record(subscription.pk, SubscriptionEvent.Action.CREATE, changes, principal)
        transaction.on_commit(_refresh_active_flag)
    return subscription, secret


def update(subscription_id: str, data: Mapping[str, Any], principal: str) -> Subscription:
    """Change url, filters, description or ``active`` (turning it on again clears a pause)."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        changes = _apply(subscription, data)
        if changes.get("active") == [False, True]:
            subscription.paused_at, subscription.paused_reason, subscription.dead_in_a_row = None, "", 0
        subscription.full_clean()
        if changes:
            subscription.updated_at = timezone.now()
            subscription.save()
            _record(subscription.pk, SubscriptionEvent.Action.UPDATE, changes, principal)
        transaction.on_commit(_refresh_active_flag)
    if subscription.active:
        transaction.on_commit(partial(dispatch_quietly, subscription.pk))
    return subscription


def delete(subscription_id: str, principal: str) -> None:
    """Delete the subscription and its queue (its history stays)."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        subscription.delete()
        _record(subscription_id, SubscriptionEvent.Action.DELETE, {"url": [subscription.url, None]}, principal)
        transaction.on_commit(_refresh_active_flag)


def redeliver(subscription_id: str, delivery_id: int, principal: str) -> Delivery:
    """Queue a delivery again (whatever its status): tried at once, with a fresh retry window."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id, subscription_id=subscription_id)
        before = delivery.status
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), first_attempt_at=None
        )
        _record(
            subscription_id,
            SubscriptionEvent.Action.REDELIVER,
            {"delivery": delivery.pk, "status": [before, "pending"]},
            principal,
        )
        transaction.on_commit(partial(dispatch_quietly, subscription_id))
    return Delivery.objects.select_related("event").get(pk=delivery.pk)


# --- dispatch ----------------------------------------------------------------------------------------------
def dispatch(subscription_id: str) -> None:
    """Send the delivery task of one subscription (the message carries its id only)."""
    options: dict[str, Any] = {"queue": conf()["queue"]} if conf().get("queue") else {}
    current_app.tasks[DELIVER_TASK].apply_async(
        args=[subscription_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options
    )


def dispatch_quietly(subscription_id: str) -> None:
    try:
        dispatch(subscription_id)
    except Exception:
        # The deliveries stay pending; the sweep (beat) sends the task once the broker is back.
        log.warning("Could not send the delivery task of subscription %s; the sweep will.", subscription_id)


class _Written(list[Event]):
    """The events a transaction built, handed to its after-commit callback (``sent`` once it ran)."""

    sent = False


def _after_commit(events: _Written) -> None:
    events.sent = True
    ids = [event.pk for event in events]
    if None in ids:  # written by COPY (a big batch): their ids were not read back
        sweep()
        return
    due = (
        Delivery.objects.filter(event_id__in=ids, status=DeliveryStatus.PENDING)
        .order_by()
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    for subscription_id in due:
        dispatch_quietly(subscription_id)


def on_event_built(sender: Any, event: Event, **kwargs: Any) -> None:
    """Receiver of ``cwom.models.base.event_built``: while a subscription is active, ask for the deliveries of
    this transaction's events right after it commits (nothing if it rolls back; the sweep covers the rest)."""
    if not any_active():
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return  # autocommit: the event is not written yet; the sweep delivers it
    written: _Written | None = getattr(connection, "_cwom_outbox_events", None)
    # A list whose callback ran, or was dropped with a rolled-back transaction, is not this transaction's.
    if (
        written is None
        or written.sent
        or not any(
            isinstance(func, partial) and func.args and func.args[0] is written
            for _sids, func, _robust in connection.run_on_commit
        )
    ):
        written = _Written()
        connection._cwom_outbox_events = written  # type: ignore[attr-defined]
        transaction.on_commit(partial(_after_commit, written), robust=True)
    written.append(event)


# --- the sweep ---------------------------------------------------------------------------------------------
def sweep(now: datetime | None = None) -> list[str]:
    """Send a delivery task for every active subscription with a due delivery and no live lease (beat)."""
    now = now or timezone.now()
    _refresh_active_flag()
    due = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, subscription__active=True)
        .filter(Q(subscription__lease_until__isnull=True) | Q(subscription__lease_until__lt=now))
        .order_by()
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    sent = []
    for subscription_id in list(due[:1000]):
        dispatch_quietly(subscription_id)
        sent.append(subscription_id)
    return sent


# --- delivering --------------------------------------------------------------------------------------------
@dataclass
class Attempt:
    """How one POST went."""

    ok: bool
    status_code: int | None = None
    latency_ms: int | None = None
    error: str = ""


def event_document(event: Event) -> bytes:
    """The event exactly as ``GET /api/v1/events`` shows it (same serializer, same renderer)."""
    return CwomJSONRenderer().render(EventSerializer(event).data)


def post_event(subscription: Subscription, event: Event) -> Attempt:
    """POST the event to the subscription's URL, signed; never raises for the far end's failures."""
    conf_ = settings_()
    secret = secret_for(subscription)
    if secret is None:
        return Attempt(False, error="signing_key_unavailable: no configured SECRET_KEY derives this secret")
    body = event_document(event)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-CWOM-Event-Id": str(event.pk),
        "X-CWOM-Subscription": subscription.pk,
        "X-CWOM-Timestamp": timestamp,
        "X-CWOM-Signature": outbound.sign(secret, timestamp, body),
    }
    started = time.monotonic()
    try:
        if not outbound.url_allowed(subscription.url, conf_["allowlist"]):
            raise outbound.OutboundRefused("the URL is no longer on CWOM_SUBSCRIPTION_ALLOWLIST", policy=True)
        _scheme, host, port, _path = outbound.split_url(subscription.url)
        address = outbound.resolve_checked(host, port, "Subscription")
        status, _reply = outbound.post_pinned(
            subscription.url, address, body, headers, float(conf_["timeout_seconds"]), int(conf_["response_max_bytes"])
        )
    except outbound.OutboundRefused as refused:
        return Attempt(False, error=refused.message)
    except Exception as error:  # noqa: BLE001 - any failure of the call is a failed attempt
        return Attempt(False, latency_ms=_ms(started), error=f"{type(error).__name__}: {error}"[:500])
    ok = 200 <= status < 300
    return Attempt(ok, status, _ms(started), "" if ok else f"HTTP {status}")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base * 2^(attempts-1), at most the cap,
    then a random half of it taken off (so retries of many subscriptions spread out)."""
    conf_ = settings_()
    delay = min(float(conf_["backoff_seconds"]) * 2 ** max(attempts - 1, 0), float(conf_["backoff_max_seconds"]))
    return delay * (0.5 + rng() / 2)


def lease_seconds() -> float:
    return float(settings_()["timeout_seconds"]) + 10.0


def take_lease(subscription_id: str, now: datetime) -> str | None:
    """Hold the subscription (one worker delivers it at a time); None if another worker holds it."""
    token = secrets.token_hex(8)
    taken = (
        Subscription.objects.filter(pk=subscription_id, active=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_token=token, lease_until=now + timedelta(seconds=lease_seconds()))
    )
    return token if taken else None


def release_lease(subscription_id: str, token: str) -> None:
    Subscription.objects.filter(pk=subscription_id, lease_token=token).update(lease_token="", lease_until=None)


def has_due(subscription_id: str, now: datetime) -> bool:
    head = _head(subscription_id)
    return head is not None and head.next_attempt_at <= now


def _head(subscription_id: str) -> Delivery | None:
    return (
        Delivery.objects.filter(subscription_id=subscription_id, status=DeliveryStatus.PENDING)
        .select_related("event")
        .order_by("event_id")
        .first()
    )


def deliver(
    subscription_id: str,
    clock: Callable[[], datetime] = timezone.now,
    send: Callable[[Subscription, Event], Attempt] = post_event,
    rng: Callable[[], float] = random.random,
) -> int:
    """Send the subscription's due deliveries, oldest event first, under its lease; returns how many were
    tried. A second task for the same subscription finds the lease taken and returns 0."""
    tried = 0
    while True:
        token = take_lease(subscription_id, clock())
        if token is None:
            return tried
        try:
            tried += _deliver_leased(subscription_id, token, clock, send, rng)
        finally:
            release_lease(subscription_id, token)
        # Released first, then looked: a delivery queued while the lease was held is never left to the sweep.
        if not has_due(subscription_id, clock()):
            return tried


def _deliver_leased(
    subscription_id: str,
    token: str,
    clock: Callable[[], datetime],
    send: Callable[[Subscription, Event], Attempt],
    rng: Callable[[], float],
) -> int:
    tried = 0
    while True:
        now = clock()
        # Renew the lease before each call; a lost lease (expired, taken over) stops this worker.
        if not Subscription.objects.filter(pk=subscription_id, lease_token=token, active=True).update(
            lease_until=now + timedelta(seconds=lease_seconds())
        ):
            return tried
        head = _head(subscription_id)
        if head is None or head.next_attempt_at > now:
            return tried
        subscription = Subscription.objects.get(pk=subscription_id)
        attempt = send(subscription, head.event)
        tried += 1
        _record_attempt(head, attempt, token, clock(), rng)


def _record_attempt(delivery: Delivery, attempt: Attempt, token: str, now: datetime, rng: Callable[[], float]) -> None:
    """The outcome of one try, written with the subscription's streak (and pause) in one transaction."""
    conf_ = settings_()
    first = delivery.first_attempt_at or now
    fields: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "last_status_code": attempt.status_code,
        "last_latency_ms": attempt.latency_ms,
        "last_error": attempt.error[:500],
    }
    if attempt.ok:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
    elif now >= first + timedelta(hours=float(conf_["retry_hours"])):
        fields.update(status=DeliveryStatus.DEAD)
    else:
        deadline = first + timedelta(hours=float(conf_["retry_hours"]))
        fields["next_attempt_at"] = min(now + timedelta(seconds=backoff(delivery.attempts + 1, rng)), deadline)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(pk=delivery.subscription_id, lease_token=token)
        held = subscription.first()
        if held is None:
            return  # fenced out: another worker holds the subscription now and will try again
        # Compare-and-set on what this worker read: a redeliver in between wins.
        if not Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
        ).update(**fields):
            return
        if attempt.ok:
            if held.dead_in_a_row:
                Subscription.objects.filter(pk=held.pk).update(dead_in_a_row=0)
        elif fields.get("status") == DeliveryStatus.DEAD:
            _count_dead(held, now)


def _count_dead(subscription: Subscription, now: datetime) -> None:
    limit = int(settings_()["pause_after_dead"])
    streak = subscription.dead_in_a_row + 1
    if streak < limit:
        Subscription.objects.filter(pk=subscription.pk).update(dead_in_a_row=streak)
        return
    reason = f"{streak} deliveries in a row were dead"
    Subscription.objects.filter(pk=subscription.pk).update(
        dead_in_a_row=streak, active=False, paused_at=now, paused_reason=reason, updated_at=now
    )
    _record(
        subscription.pk,
        SubscriptionEvent.Action.PAUSE,
        {"active": [True, False], "reason": reason},
        "system:subscriptions",
    )
    transaction.on_commit(_refresh_active_flag)
    log.warning("Subscription %s paused: %s.", subscription.pk, reason)
