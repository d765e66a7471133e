"""The API's views: one base viewset parameterized by kind, and a few system endpoints.

Viewsets stay thin: reading is ``shapes.SHAPES[kind].queryset()`` (N+1-free) and ``shapes.dump``;
writing is ``cwom.writes``; every rule lives in the kernel. What the views add is HTTP: status codes,
``Location``, ``ETag`` / ``If-Match``, cursor pages, and the per-request audit context.

:class:`CwomAPIView` is the base for any other API view (``execution`` uses it too): it brings the
request's audit context (principal + declared actor on every event), ``Idempotency-Key`` handling for
POST, the strict JSON parser, and the shared auth/permission/throttle/error settings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cwom import audit, lineage, shapes, writes
from cwom import validation as v
from cwom.enums import Kind
from cwom.ids import normalize_ulid
from cwom.models import Event, ObjectIndex, Run
from cwom.shapes.refs import with_article

from . import filters
from .auth import principal_of
from .errors import BadRequest, PreconditionFailed, PreconditionRequired, Problem, ServiceUnavailable, problem_response
from .idempotency import IdempotencyMixin
from .parsers import CwomJSONParser
from .serializers import LINK_LIST_ACTIONS, EventSerializer, serializer_for

ACTOR_HEADER = "X-CWOM-Actor"
# Ids in paths: any segment is routed, so that one that is no ULID gets a 404 saying so (parse_id) rather
# than "no endpoint"; a ULID may come in any letter case.
ID_PATH_REGEX = "[^/.]+"

# URL segment of each kind under /api/v1.
KIND_PATHS: dict[str, str] = {
    Kind.REPO: "repos",
    Kind.ISSUE: "issues",
    Kind.CONTEXT_PACKET: "context_packets",
    Kind.CONSTRAINT_SNAPSHOT: "constraint_snapshots",
    Kind.DOCTRINE_REF: "doctrine_refs",
    Kind.RUN: "runs",
    Kind.ARTIFACT: "artifacts",
}


# --- shared request plumbing --------------------------------------------------------------------------
def declared_actor(request: Request) -> dict[str, Any] | None:
    """The actor the client declares: the ``X-CWOM-Actor`` JSON header, else a POST body's ``created_by``."""
    raw = request.headers.get(ACTOR_HEADER)
    if raw is not None:
        try:
            actor = json.loads(raw)
        except ValueError:
            actor = None
        problems = v.schema_errors(v.ACTOR, actor) if actor is not None else [("", "not JSON")]
        if problems:
            message = f"{ACTOR_HEADER} must be a JSON Actor object (actor_kind, actor_id, display)."
            raise BadRequest(
                message, "invalid_actor", errors=[{"path": ACTOR_HEADER, "code": "invalid", "message": message}]
            )
        return actor
    if request.method == "POST" and (request.content_type or "").startswith("application/json"):
        body = request.data
        created_by = body.get("created_by") if isinstance(body, dict) else None
        if isinstance(created_by, dict) and not v.schema_errors(v.ACTOR, created_by):
            return created_by
    return None


def principal_actor(request: Request) -> dict[str, Any] | None:
    """The Actor of the authenticated principal: a token is an agent named by the token, a user a human."""
    principal = principal_of(request)
    scheme, _, name = principal.partition(":")
    actor_kind = {"token": "agent", "user": "human"}.get(scheme)
    if actor_kind is None or not name:
        return None
    return {"actor_kind": actor_kind, "actor_id": principal, "display": name}


def with_creator(body: Any, request: Request) -> Any:
    """A create body with ``created_by`` filled when the client declares none: the ``X-CWOM-Actor`` actor if
    sent, else the authenticated principal's (:func:`principal_actor`)."""
    if not isinstance(body, dict) or "created_by" in body:
        return body
    actor = declared_actor(request) or principal_actor(request)
    return {**body, "created_by": actor} if actor is not None else body


class AuditMixin:
    """Every event written while the view runs records the authenticated principal and declared actor."""

    _acting: Any = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        acting = audit.acting_as(principal_of(request), declared_actor(request))
        acting.__enter__()
        self._acting = acting

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._acting = None
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        finally:
            acting, self._acting = self._acting, None
            if acting is not None:
                acting.__exit__(None, None, None)


class CwomRequestMixin(IdempotencyMixin, AuditMixin):
    """Audit context + idempotent POSTs + the strict JSON parser: what every API view shares."""

    parser_classes: Any = [CwomJSONParser]


class CwomAPIView(CwomRequestMixin, APIView):
    """Base class for the API's plain views (also the one to reuse in ``execution``)."""


# Keys sorted, so the tag depends on what the object holds, not on the order of keys in its JSON columns.
_ETAG_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def object_etag(document: dict[str, Any]) -> str:
    """The ETag of a CWOM object: over what the object itself holds, so it changes when the object does and
    not when another object is created (a run of an issue, a packet or snapshot linked to it, an artifact of
    a run): its bounded lists and their totals are left out (:func:`cwom.shapes.own_state`)."""
    return etag_of(shapes.own_state(document))


def etag_of(document: Any) -> str:
    """A strong ETag over a representation (changes whenever anything in it does).

    The hash of its compact UTF-8 JSON with sorted keys (orjson; the standard library's encoder for what
    orjson cannot encode, an integer beyond 64 bits): the same representation always gives the same tag.
    """
    try:
        encoded = orjson.dumps(document, default=str, option=_ETAG_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()
    return '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'


def _if_match_tags(request: Request) -> list[str] | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    return [tag.strip().removeprefix("W/") for tag in raw.split(",") if tag.strip()]


def object_path(kind: str, object_id: str) -> str | None:
    try:
        return reverse(f"{KIND_PATHS[kind]}-detail", kwargs={"pk": object_id})
    except NoReverseMatch:  # pragma: no cover - every kind is routed
        return None


def id_parameter(name: str) -> OpenApiParameter:
    """The OpenAPI description of an id in a path (the routes take any segment: see ``ID_PATH_REGEX``)."""
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        description="A ULID (26 characters of Crockford base32); anything else is a 404 saying it is not a valid id.",
    )


def require_body(request: Request) -> None:
    """A write that documents a body needs one: no body at all is a 400 (an empty change is ``{}``)."""
    if request.stream is None:
        message = "The request has no body: send a JSON object."
        raise BadRequest(message, "missing_body", errors=[{"path": "", "code": "missing_body", "message": message}])


def parse_id(raw: str, kind: str | None = None) -> str:
    """A path id as a canonical ULID; anything else cannot name an object: a 404 that says so."""
    try:
        return normalize_ulid(raw)
    except DjangoValidationError:
        where = f"; no {kind} can have it" if kind else ""
        raise Problem(
            f"{raw[:40]!r} is not a valid id (a ULID: 26 characters of Crockford base32){where}.", "not_found"
        ) from None


def missing(kind: str, object_id: str) -> Problem:
    """The 404 for a path naming no ``kind`` with ``object_id``: it says which kind the id is of, if any."""
    actual = ObjectIndex.objects.filter(pk=object_id).values_list("kind", flat=True).first()
    if actual is None or actual == kind:
        return Problem(f"No {kind} has id {object_id}.", "not_found")
    return Problem(
        f"{object_id} is {with_article(actual)}, not {with_article(kind)}: see {object_path(actual, object_id)}.",
        "not_found",
    )


# --- the kinds ----------------------------------------------------------------------------------------


class KindViewSet(CwomRequestMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """List, read and create one kind; ``kind`` and ``filterset_class`` parameterize it.

    Also ``GET /<kind>/{id}/events``: the object's history, oldest first.
    """

    kind: str = ""
    filter_backends = [filters.CwomFilterBackend, filters.OrderingBackend]
    ordering_fields: tuple[str, ...] = ("created_at",)
    ordering: tuple[str, ...] = ("-created_at", "-id")
    lookup_value_regex = ID_PATH_REGEX

    def get_queryset(self) -> Any:
        return shapes.SHAPES[self.kind].queryset()

    def get_serializer_class(self) -> Any:
        return serializer_for(self.kind)

    def ordering_options(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The fields ``ordering`` may name in this action and its default (an object's history: by id).

        Read by :meth:`resolve_ordering` and by the schema (:class:`filters.OrderingBackend`), so the
        documented enum is the accepted one.
        """
        if self.action == "events":
            return ("id",), ("id",)
        if self.action in LINK_LIST_ACTIONS:
            return ("id",), ("-id",)
        return self.ordering_fields, self.ordering

    def resolve_ordering(self, request: Request) -> tuple[str, ...]:
        fields, default = self.ordering_options()
        ordering = filters.parse_ordering(request.query_params.get("ordering"), fields, default)
        return filters.served_ordering(self, ordering)

    def object_id(self) -> str:
        return parse_id(self.kwargs[self.lookup_url_kwarg or self.lookup_field], self.kind)

    def get_object(self) -> Any:
        obj = self.get_queryset().filter(pk=self.object_id()).first()
        if obj is None:
            raise missing(self.kind, self.object_id())
        return obj

    def object_response(self, obj: Any, status: int = 200) -> Response:
        data = shapes.dump(obj)
        headers = {"ETag": object_etag(data)}
        if status == 201:
            headers["Location"] = object_path(self.kind, obj.pk) or ""
        return Response(data, status=status, headers=headers)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.object_response(self.get_object())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        require_body(request)
        # Straight to the kernel, which checks the whole body (a serializer would only carry it there).
        return self.object_response(writes.create(self.kind, with_creator(request.data, request)), status=201)

    @action(detail=True, methods=["get"])
    def events(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(Event.objects.filter(object_id=self.existing_id()))
        return self.get_paginated_response(EventSerializer(page, many=True).data)

    def existing_id(self) -> str:
        """The path's id, of an object of this kind (else a 404); a sub-list takes no query parameter but
        its page's."""
        object_id = self.object_id()
        filters.check_params(self.request, set())
        if not ObjectIndex.objects.filter(pk=object_id, kind=self.kind).exists():
            raise missing(self.kind, object_id)
        return object_id

    def link_page(self, name: str) -> Response:
        """One page of the link list ``name`` of the path's object, newest first: the whole list a bounded
        one (``<name>_url``) shows only the newest of."""
        model, owner, target = shapes.LINK_TABLES[(self.kind, name)]
        rows = model._default_manager.filter(**{owner: self.existing_id()}).only("id", f"{target}_id", "role")
        page: list[Any] = self.paginate_queryset(rows) or []
        kind, column = LINK_LIST_ACTIONS[name], f"{target}_id"
        return self.get_paginated_response([shapes.make_ref(kind, getattr(row, column), row.role) for row in page])

    def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        method = request.method or ""
        if method == "DELETE":
            detail = "CWOM objects are never deleted."
        elif method in ("PUT", "PATCH") and not shapes.SHAPES[self.kind].mutable:
            detail = f"{self.kind} objects never change after creation: create a new one instead."
        elif method == "PUT":
            detail = "Use PATCH to change part of an object."
        else:
            detail = f"{method} is not allowed here."
        raise Problem(
            detail,
            "method_not_allowed",
            status_code=405,
            headers={"Allow": ", ".join(self.allowed_methods)},
        )


class PatchableKindViewSet(KindViewSet):
    """A kind that may be changed with PATCH (only what the kernel allows), guarded by ``If-Match``."""

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        object_id = self.object_id()
        require_body(request)
        wanted = _if_match_tags(request)
        model = shapes.SHAPES[self.kind].model
        with transaction.atomic():
            # The row lock makes the If-Match comparison and the change one step (no lost update).
            locked = model._default_manager.select_for_update().filter(pk=object_id).first()
            if locked is None:
                raise missing(self.kind, object_id)
            if wanted is not None and "*" not in wanted:
                current = object_etag(shapes.dump(self.get_object()))
                if current not in wanted:
                    raise PreconditionFailed(headers={"ETag": current}, current_etag=current)
            context = {**self.get_serializer_context(), "if_match": wanted is not None}
            serializer = self.get_serializer(locked, data=request.data, partial=True, context=context)
            serializer.is_valid(raise_exception=True)
            try:
                obj = serializer.save()
            except writes.ReplaceNeedsVersion as error:
                raise PreconditionRequired(str(error)) from None
        return self.object_response(obj)


class RepoViewSet(PatchableKindViewSet):
    """Repos: work containers. PATCH may change everything but the slug."""

    kind = Kind.REPO
    filterset_class = filters.RepoFilterSet
    ordering_fields = ("created_at", "updated_at", "slug", "name")


class IssueViewSet(PatchableKindViewSet):
    """Issues: units of intent. ``GET .../context_packets`` and ``.../constraints``: the whole link lists
    the issue's representation shows the newest of."""

    kind = Kind.ISSUE
    filterset_class = filters.IssueFilterSet
    ordering_fields = ("created_at", "updated_at", "priority", "title")

    @action(detail=True, methods=["get"])
    def context_packets(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.link_page("context_packets")

    @action(detail=True, methods=["get"])
    def constraints(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.link_page("constraints")


class ContextPacketViewSet(PatchableKindViewSet):
    """Context packets: versioned briefings. PATCH only while a draft; ``POST .../seal`` seals (one-way)."""

    kind = Kind.CONTEXT_PACKET
    filterset_class = filters.ContextPacketFilterSet
    ordering_fields = ("created_at", "updated_at", "version")

    @action(detail=True, methods=["post"])
    def seal(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.object_response(writes.seal(self.get_object()))


class ConstraintSnapshotViewSet(KindViewSet):
    """Constraint snapshots: immutable from creation (no PATCH/PUT/DELETE)."""

    kind = Kind.CONSTRAINT_SNAPSHOT
    filterset_class = filters.ConstraintSnapshotFilterSet
    ordering_fields = ("captured_at", "created_at")
    ordering = ("-captured_at", "-id")


class DoctrineRefViewSet(KindViewSet):
    """Doctrine refs: versioned rules; a published version never changes (no PATCH/PUT/DELETE)."""

    kind = Kind.DOCTRINE_REF
    filterset_class = filters.DoctrineRefFilterSet
    ordering_fields = ("created_at", "namespace", "name")


class RunViewSet(PatchableKindViewSet):
    """Runs: execution attempts. PATCH moves the state machine; ``GET .../lineage`` loads the whole chain."""

    kind = Kind.RUN
    filterset_class = filters.RunFilterSet
    ordering_fields = ("created_at", "updated_at")

    @action(detail=True, methods=["get"])
    def lineage(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return Response(lineage.run_bundle(self.object_id()))
        except Run.DoesNotExist:
            raise missing(self.kind, self.object_id()) from None


class ArtifactViewSet(PatchableKindViewSet):
    """Artifacts: outputs of started runs. PATCH may change ``verification`` (and tags/meta) only."""

    kind = Kind.ARTIFACT
    filterset_class = filters.ArtifactFilterSet
    ordering_fields = ("created_at", "updated_at")


KIND_VIEWSETS: dict[str, type[KindViewSet]] = {
    viewset.kind: viewset
    for viewset in (
        RepoViewSet,
        IssueViewSet,
        ContextPacketViewSet,
        ConstraintSnapshotViewSet,
        DoctrineRefViewSet,
        RunViewSet,
        ArtifactViewSet,
    )
}


# --- history, objects, health ----------------------------------------------------------------------------
class EventViewSet(CwomRequestMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The history feed: every recorded change, oldest first, cursor-paged."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = filters.EventFilterSet
    filter_backends = [filters.CwomFilterBackend, filters.OrderingBackend]
    ordering_fields = ("id",)
    ordering = ("id",)

    def resolve_ordering(self, request: Request) -> tuple[str, ...]:
        ordering = filters.parse_ordering(request.query_params.get("ordering"), self.ordering_fields, self.ordering)
        return filters.served_ordering(self, ordering)


@extend_schema_view(get=extend_schema(parameters=[id_parameter("object_id")]))
class ObjectView(CwomAPIView):
    """``GET /objects/{id}``: any id resolved to its kind and object (``Content-Location`` names its URL)."""

    def get(self, request: Request, object_id: str) -> Response:
        object_id = parse_id(object_id)
        kind = ObjectIndex.objects.filter(pk=object_id).values_list("kind", flat=True).first()
        obj = shapes.SHAPES[kind].queryset().filter(pk=object_id).first() if kind else None
        if kind is None or obj is None:
            raise Problem(f"No object has id {object_id}.", "not_found")
        data = shapes.dump(obj)
        return Response(
            data, headers={"ETag": object_etag(data), "Content-Location": object_path(kind, object_id) or ""}
        )


class OpenView(APIView):
    """A view anyone may call: no credential, no throttle."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []


class HealthView(OpenView):
    """``GET /healthz``: the process is up (touches nothing else)."""

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(OpenView):
    """``GET /readyz``: the database answers (503 problem otherwise)."""

    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as error:
            raise ServiceUnavailable(headers={"Retry-After": "5"}) from error
        return Response({"status": "ok", "database": "ok"})


class NotFoundView(OpenView):
    """Any other path under /api/v1: a 404 problem, whatever the method."""

    def _not_found(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return problem_response(404, "not_found", f"No endpoint at {request.path}.", [], request)

    get = post = put = patch = delete = head = options = _not_found
