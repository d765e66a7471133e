"""The event subscription endpoints (``/api/v1/subscriptions``). Thin: each calls one function of
:mod:`execution.subscriptions` and shapes the answer.

    GET    /subscriptions                                   list (cursor pages, oldest first)
    POST   /subscriptions                                   create (write scope): 201, the ``secret`` this once
    GET    /subscriptions/{id}                              one subscription (never its secret)
    PATCH  /subscriptions/{id}                              url, kinds, actions, repo, description, active
    DELETE /subscriptions/{id}                              204; its queue goes, its history stays
    GET    /subscriptions/{id}/deliveries                   its deliveries (``?status=``), oldest event first
    POST   /subscriptions/{id}/deliveries/{delivery}/redeliver   queue one again: 202

A create is not covered by ``Idempotency-Key``: a replay would have to keep the secret, which is never stored.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from cwom import shapes
from cwom import validation as v
from cwom.api import filters
from cwom.api.auth import principal_of
from cwom.api.errors import Problem
from cwom.api.pagination import CwomCursorPagination
from cwom.api.views import CwomRequestMixin, etag_of, parse_id
from cwom.enums import EventAction, Kind

from . import subscriptions
from .models import Delivery, DeliveryStatus, Subscription

_KINDS = {"type": "array", "items": {"type": "string", "enum": list(Kind.values)}, "uniqueItems": True}
_ACTIONS = {"type": "array", "items": {"type": "string", "enum": list(EventAction.values)}, "uniqueItems": True}
_REPO_IN = {
    "description": "The repo whose objects' events are delivered: a Ref, an id or a slug (null: every repo).",
    # The write path's own form of a Ref to a Repo (the one resolver reads it).
    "anyOf": [*shapes.ref_input_schema(Kind.REPO)["anyOf"], {"type": "null"}],
}
_URL = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2048,
    "description": "Under a CWOM_SUBSCRIPTION_ALLOWLIST prefix.",
}
_DESCRIPTION = {"type": "string", "maxLength": 500}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {"url": _URL, "kinds": _KINDS, "actions": _ACTIONS, "repo": _REPO_IN, "description": _DESCRIPTION},
}
PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {**CREATE_SCHEMA["properties"], "active": {"type": "boolean"}},
}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"oneOf": [_TIME, {"type": "null"}]}
SUBSCRIPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "kinds": _KINDS,
        "actions": _ACTIONS,
        "repo": {"oneOf": [shapes.ref_schema(Kind.REPO), {"type": "null"}]},
        "description": {"type": "string"},
        "active": {"type": "boolean"},
        "paused_at": _NULLABLE_TIME,
        "paused_reason": {"type": "string"},
        "created_by": {"type": "string"},
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "required": ["id", "url", "kinds", "actions", "repo", "description", "active", "paused_at", "created_at"],
}
CREATED_SCHEMA: dict[str, Any] = {
    **SUBSCRIPTION_SCHEMA,
    "properties": {
        **SUBSCRIPTION_SCHEMA["properties"],
        "secret": {"type": "string", "description": "The signing secret: shown this once, never again."},
    },
    "required": [*SUBSCRIPTION_SCHEMA["required"], "secret"],
}
STATUSES = list(DeliveryStatus.values)
_NULLABLE_INT = {"oneOf": [{"type": "integer"}, {"type": "null"}]}
DELIVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "event": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "object": shapes.ref_schema(None), "action": {"type": "string"}},
            "required": ["id", "object", "action"],
        },
        "status": {"type": "string", "enum": list(DeliveryStatus.values)},
        "attempts": {"type": "integer"},
        "last_status_code": _NULLABLE_INT,
        "last_latency_ms": _NULLABLE_INT,
        "last_error": {"type": "string"},
        "last_attempt_at": _NULLABLE_TIME,
        "next_attempt_at": {**_NULLABLE_TIME, "description": "When it is tried next (null unless pending)."},
        "delivered_at": _NULLABLE_TIME,
        "created_at": _TIME,
    },
    "required": ["id", "event", "status", "attempts", "last_status_code", "last_latency_ms", "next_attempt_at"],
}


def _page(item: dict[str, Any]) -> dict[str, Any]:
    nullable_url = {"oneOf": [{"type": "string"}, {"type": "null"}]}
    return {
        "type": "object",
        "properties": {"next": nullable_url, "previous": nullable_url, "results": {"type": "array", "items": item}},
        "required": ["next", "previous", "results"],
    }


def _iso(value: Any) -> str | None:
    return shapes.iso(value) if value is not None else None


def subscription_document(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "url": subscription.url,
        "kinds": subscription.kinds,
        "actions": subscription.actions,
        "repo": {"kind": Kind.REPO, "id": subscription.repo_id, "role": None} if subscription.repo_id else None,
        "description": subscription.description,
        "active": subscription.active,
        "paused_at": _iso(subscription.paused_at),
        "paused_reason": subscription.paused_reason,
        "created_by": subscription.created_by,
        "created_at": _iso(subscription.created_at),
        "updated_at": _iso(subscription.updated_at),
    }


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    event = delivery.event
    pending = delivery.status == DeliveryStatus.PENDING
    return {
        "id": delivery.pk,
        "event": {
            "id": event.pk,
            "object": {"kind": event.object_kind, "id": event.object_id, "role": None},
            "action": event.action,
        },
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_latency_ms": delivery.last_latency_ms,
        "last_error": delivery.last_error,
        "last_attempt_at": _iso(delivery.last_attempt_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if pending else None,
        "delivered_at": _iso(delivery.delivered_at),
        "created_at": _iso(delivery.created_at),
    }


def checked_body(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    """The body, if it fits ``schema``; a 400 naming each offending field otherwise."""
    if not isinstance(body, dict):
        raise ValidationError({"body": [ValidationError("The body must be a JSON object.", code="invalid_shape")]})
    errors: dict[str, list[ValidationError]] = {}
    for name in schema.get("required", []):
        if name not in body:
            errors[name] = [ValidationError("This field is required.", code="required")]
    for path, message in v.schema_errors(schema, body):
        if path or not errors:
            errors.setdefault(path or "body", []).append(ValidationError(message, code="invalid"))
    if errors:
        raise ValidationError(errors)
    return body


class SubscriptionPagination(CwomCursorPagination):
    """Cursor pages ordered by the view's one ordering (no ``ordering`` parameter)."""


class SubscriptionViewSet(CwomRequestMixin, viewsets.GenericViewSet):
    """Event subscriptions: who is told about which events, and how each delivery went."""

    pagination_class = SubscriptionPagination
    filter_backends: list[Any] = []
    idempotent_methods = ()  # see the module docstring: a create's answer holds the secret
    queryset = Subscription.objects.all()

    def resolve_ordering(self, request: Request) -> tuple[str, ...]:
        return ("id",)

    def _subscription(self, pk: str) -> Subscription:
        found = Subscription.objects.filter(pk=parse_id(pk)).first()
        if found is None:
            raise Problem(f"No subscription has id {pk}.", "not_found", status_code=404)
        return found

    def _detail(self, subscription: Subscription, code: int = 200, **extra: Any) -> Response:
        document = subscription_document(subscription)
        headers = {"ETag": etag_of(document)}
        if code == 201:
            headers["Location"] = f"/api/v1/subscriptions/{subscription.pk}"  # a path, as on every 201
        return Response({**document, **extra}, status=code, headers=headers)

    @extend_schema(
        operation_id="subscriptions_list",
        summary="List event subscriptions",
        responses={200: OpenApiResponse(_page(SUBSCRIPTION_SCHEMA), description="A page of subscriptions.")},
        tags=["subscriptions"],
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(Subscription.objects.all())
        return self.get_paginated_response([subscription_document(s) for s in page or []])

    @extend_schema(
        operation_id="subscriptions_create",
        summary="Subscribe a URL to events",
        description="Each matching event is POSTed to `url`, signed with the `secret` this answer shows once "
        '(`X-CWOM-Signature: sha256=<hex HMAC-SHA256(secret, "<X-CWOM-Timestamp>.<body>")>`). Empty or absent '
        "filters match everything.",
        request={"application/json": CREATE_SCHEMA},
        responses={201: OpenApiResponse(CREATED_SCHEMA, description="Created; `secret` is never shown again.")},
        tags=["subscriptions"],
    )
    def create(self, request: Request) -> Response:
        body = checked_body(CREATE_SCHEMA, request.data)
        subscription, secret = subscriptions.create(body, principal_of(request))
        return self._detail(subscription, 201, secret=secret)

    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="Read an event subscription",
        responses={200: OpenApiResponse(SUBSCRIPTION_SCHEMA, description="The subscription (never its secret).")},
        tags=["subscriptions"],
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(self._subscription(pk))

    @extend_schema(
        operation_id="subscriptions_partial_update",
        summary="Change an event subscription",
        description="`active: true` resumes a subscription that paused itself after dead deliveries.",
        request={"application/json": PATCH_SCHEMA},
        responses={200: OpenApiResponse(SUBSCRIPTION_SCHEMA, description="The changed subscription.")},
        tags=["subscriptions"],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        body = checked_body(PATCH_SCHEMA, request.data)
        subscription = self._subscription(pk)
        return self._detail(subscriptions.update(subscription.pk, body, principal_of(request)))

    @extend_schema(
        operation_id="subscriptions_destroy",
        summary="Delete an event subscription",
        responses={204: OpenApiResponse(description="Deleted, with its queue of deliveries.")},
        tags=["subscriptions"],
    )
    def destroy(self, request: Request, pk: str) -> Response:
        subscriptions.delete(self._subscription(pk).pk, principal_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="subscriptions_deliveries_list",
        summary="List a subscription's deliveries",
        parameters=[OpenApiParameter("status", {"type": "string", "enum": STATUSES}, description="Only these.")],
        responses={200: OpenApiResponse(_page(DELIVERY_SCHEMA), description="A page of deliveries, oldest first.")},
        tags=["subscriptions"],
    )
    def deliveries(self, request: Request, pk: str) -> Response:
        subscription = self._subscription(pk)
        queryset: QuerySet[Delivery] = Delivery.objects.filter(subscription_id=subscription.pk).select_related("event")
        wanted = request.query_params.get("status")
        if wanted is not None:
            # As the list filters answer: a 400 validation_error naming the parameter.
            if filters.is_blank(wanted):
                raise ValidationError({"status": [filters.empty_value_error()]})
            if wanted not in DeliveryStatus.values:
                message = f"One of {', '.join(DeliveryStatus.values)}; got {wanted!r}."
                raise ValidationError({"status": [ValidationError(message, code="invalid_choice")]})
            queryset = queryset.filter(status=wanted)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([delivery_document(d) for d in page or []])

    @extend_schema(
        operation_id="subscriptions_deliveries_redeliver",
        summary="Deliver one event again",
        description="Queues the delivery again (whatever its status), tried at once with a fresh retry window, "
        "in its event's place in the subscription's order.",
        request=None,
        responses={202: OpenApiResponse(DELIVERY_SCHEMA, description="Queued; the delivery.")},
        tags=["subscriptions"],
    )
    def redeliver(self, request: Request, pk: str, delivery_id: str) -> Response:
        subscription = self._subscription(pk)
        if not delivery_id.isdigit() or len(delivery_id) > 18:
            raise Problem(f"No delivery has id {delivery_id}.", "not_found", status_code=404)
        if not Delivery.objects.filter(pk=int(delivery_id), subscription_id=subscription.pk).exists():
            raise Problem(f"No delivery {delivery_id} of this subscription.", "not_found", status_code=404)
        delivery = subscriptions.redeliver(subscription.pk, int(delivery_id), principal_of(request))
        return Response(delivery_document(delivery), status=status.HTTP_202_ACCEPTED)
