"""How a run is executed (which executor, which attempt, the liveness of that attempt), and who is told
about events (subscriptions and their deliveries).

A :class:`RunExecution` sits beside a kernel :class:`~cwom.models.Run` (one to one). The run carries
the contract's state; the execution row carries the worker's bookkeeping: the executor chosen at
enqueue, the attempt number that fences every write of a worker, its heartbeat, and a pending cancel.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from cwom.enums import EventAction, Kind
from cwom.ids import new_ulid
from cwom.models import Event, Repo, Run

from . import outbound
from .config import conf


class RunExecution(models.Model):
    """The worker-side record of a run enqueued for execution.

    ``attempt`` counts claims. A worker holding attempt N may write to the run only while ``attempt``
    is still N and the run is still ``running``: a newer attempt (after the reaper re-queued the run)
    or a cancel fences the older one out.
    """

    run = models.OneToOneField(Run, primary_key=True, on_delete=models.PROTECT, related_name="execution")
    executor_name = models.CharField(max_length=64)
    executor_config = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=255, blank=True, default="")
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["heartbeat_at"], name="execution_heartbeat_idx"),
            models.Index(fields=["dispatched_at"], name="execution_dispatched_idx"),
            models.Index(fields=["cancel_requested_at"], name="execution_cancel_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_attempts__gte=1),
                name="execution_max_attempts_positive",
                violation_error_message="max_attempts must be at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"execution of run {self.run_id} ({self.executor_name}, attempt {self.attempt})"

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempt, 0)


# --- event subscriptions (signed outbound webhooks) -------------------------------------------------------
class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Subscription(models.Model):
    """Someone who wants to be told: every matching event is POSTed, signed, to ``url``.

    Filters (each empty means "any"): ``kinds`` (the event's object kinds), ``actions`` (event actions) and
    ``repo`` (events of objects that belong to that repo: the repo itself, its issues, their packets, its runs
    and their artifacts). The signing secret is shown once at creation and never stored: it is derived from
    ``SECRET_KEY`` and ``secret_nonce`` (:func:`execution.subscriptions.secret_for`); ``secret_digest``, its
    SHA-256, says which key derived it, so a ``SECRET_KEY`` rotated with the old key in
    ``SECRET_KEY_FALLBACKS`` keeps every subscription's secret.

    The database writes a :class:`Delivery` for every matching event in the event's own transaction (a trigger
    on ``cwom_event``, :mod:`execution.outbox`); ``lease_*`` let one worker at a time deliver a subscription's
    events, in event id order.
    """

    id = models.CharField(primary_key=True, max_length=26, default=new_ulid, editable=False)
    url = models.CharField(max_length=2048)
    kinds = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=list, blank=True)
    repo = models.ForeignKey(Repo, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=500, blank=True, default="")
    active = models.BooleanField(default=True)
    secret_nonce = models.CharField(max_length=64, editable=False)
    secret_digest = models.CharField(max_length=64, editable=False)
    created_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Why the service paused it by itself (deliveries dead in a row), and when.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=255, blank=True, default="")
    dead_in_a_row = models.PositiveIntegerField(default=0)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(url=""),
                name="subscription_url_required",
                violation_error_message="A subscription needs a URL.",
            ),
        ]

    def __str__(self) -> str:
        return f"subscription {self.id} -> {self.url}"

    def clean(self) -> None:
        """The URL is allowlisted and not a refused address; the filters name real kinds and actions, once each."""
        errors: dict[str, list[ValidationError]] = {}
        allowlist = conf()["subscriptions"]["allowlist"]
        if not isinstance(self.url, str) or not outbound.url_allowed(self.url, allowlist):
            message = "The URL must be under a prefix of CWOM_SUBSCRIPTION_ALLOWLIST."
            if not allowlist:
                message = "Subscriptions are off: CWOM_SUBSCRIPTION_ALLOWLIST is empty."
            errors["url"] = [ValidationError(message, code="not_allowed")]
        elif reason := outbound.literal_address_refused(self.url):
            errors["url"] = [ValidationError(f"The URL points at {reason}.", code="not_allowed")]
        for name, allowed in (("kinds", Kind.values), ("actions", EventAction.values)):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(item, str) and item in allowed for item in value):
                errors[name] = [ValidationError(f"A list of: {', '.join(allowed)}.", code="invalid_choice")]
            elif len(set(value)) != len(value):
                errors[name] = [ValidationError("Each value once.", code="invalid")]
        if errors:
            raise ValidationError(errors)


class Delivery(models.Model):
    """One event to deliver to one subscription: written by the database with the event, then tried until
    it is ``delivered`` or, after the retry window, ``dead``."""

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # The retry window (retry_hours) runs from the first try (a redeliver starts a new one).
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The head of a subscription's queue: its oldest pending event.
            models.Index(fields=["subscription", "status", "event"], name="delivery_queue_idx"),
            # The sweep: pending deliveries that are due.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"],
                name="delivery_once_per_event",
                violation_error_message="This event is already queued for this subscription.",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values),
                name="delivery_status_valid",
                violation_error_message="Unknown delivery status.",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery of event {self.event_id} to {self.subscription_id} ({self.status})"


class SubscriptionEvent(models.Model):
    """The history of a subscription (created, updated, paused, deleted). Kept after the subscription is
    deleted; never edited."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        PAUSE = "pause"
        DELETE = "delete"
        REDELIVER = "redeliver"

    id = models.BigAutoField(primary_key=True)
    subscription_id = models.CharField(max_length=26, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True)
    principal = models.CharField(max_length=255)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} subscription {self.subscription_id}"
