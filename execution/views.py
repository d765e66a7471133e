"""The execution endpoints. Thin: each calls one service of this app and shapes the answer.

- ``POST /api/v1/enqueue``: :func:`execution.enqueue.enqueue`, answered 202 before the run ends;
- ``POST /api/v1/runs/{id}/cancel``: :func:`execution.lifecycle.request_cancel` (200 canceled at once,
  202 when the worker holding the run was asked to stop);
- ``PUT|POST /api/v1/artifacts/{id}/content``: upload an artifact's bytes once (:mod:`execution.content`);
- ``GET /api/v1/artifacts/{id}/content``: download them, the digest in ``Digest``/``Content-Digest``/``ETag``.

The views subclass :class:`cwom.api.views.CwomAPIView`: authentication, permissions (writes need a
read-write token), throttling, the problem-details error format, the audit context (principal and declared
actor on every event) and ``Idempotency-Key`` on POST come from there.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from typing import IO, Any, cast

from django.http import FileResponse, HttpResponse, HttpResponseBase
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from cwom import shapes, spec, writes
from cwom.api.auth import principal_of
from cwom.api.components import pascal
from cwom.api.errors import Problem
from cwom.api.schema import component_schema, inlined, named, ref
from cwom.api.views import (
    CwomAPIView,
    declared_actor,
    id_parameter,
    missing,
    object_path,
    parse_id,
    principal_actor,
)
from cwom.enums import Kind, RunMode
from cwom.models import Artifact, Run
from cwom.validation import enum_schema, nullable

from . import content, lifecycle
from .config import conf
from .enqueue import enqueue
from .executors import ExecutorError, available, get_executor_class


def _enqueue_issue() -> dict[str, Any]:
    """A new issue's fields, as ``POST /issues`` takes them, but ``repo`` may also be a slug."""
    issue = component_schema(Kind.ISSUE, "in")
    repo = issue["properties"]["repo"]
    slug = shapes.json_schema(Kind.REPO, "in")["properties"]["slug"]
    issue["properties"]["repo"] = {**repo, "anyOf": [*repo["anyOf"], slug], "description": "a Ref, id or slug"}
    return issue


def _enqueue_context() -> dict[str, Any]:
    """A context packet's fields, as ``POST /context_packets`` takes them, but the service sets ``for_issue`` and
    ``version`` (the issue's next) and the packet is sealed."""
    context = component_schema(Kind.CONTEXT_PACKET, "in")
    for key in ("for_issue", "version"):
        context["properties"].pop(key)
        context["required"] = [name for name in context["required"] if name != key]
    context["properties"]["sealed"] = {
        "type": "boolean",
        "not": {"const": False},
        "default": True,
        "description": "An enqueued packet is sealed (`false` is refused).",
    }
    return context


def _enabled_executors() -> list[str]:
    """The executors an enqueue may name now (a configured one may still lack its settings)."""
    names = []
    for name in available():
        try:
            get_executor_class(name).check_enabled()
        except ExecutorError:
            continue
        names.append(name)
    return names


def _executor_choices() -> list[dict[str, Any]]:
    """One choice per enabled executor: its name and its config's schema (``Executor.config_schema``)."""
    choices = []
    for name in _enabled_executors():
        executor = get_executor_class(name)
        choices.append(
            {
                "title": f"{pascal(name)}Executor",
                "type": "object",
                "description": (executor.__doc__ or name).strip().splitlines()[0],
                "properties": {
                    "name": {"type": "string", "const": name},
                    "config": {**executor.config_schema, "default": {}},
                },
                "required": ["name"],
                "additionalProperties": False,
            }
        )
    return choices


def _enqueue_request() -> dict[str, Any]:
    issue_ref, snapshot_ref = shapes.ref_input_schema(Kind.ISSUE), shapes.ref_input_schema(Kind.CONSTRAINT_SNAPSHOT)
    return {
        "type": "object",
        "description": "Work to run: an issue (existing or new), the context to seal for it, optional constraints "
        "and doctrine refs, and the executor that runs it.",
        "required": ["issue", "context"],
        "additionalProperties": False,
        "properties": {
            "issue": {
                "description": "A Ref or id of an existing Issue, or a new issue's fields (`repo`: a Ref, id or slug).",
                "anyOf": [*issue_ref["anyOf"], ENQUEUE_ISSUE],
            },
            "context": ENQUEUE_CONTEXT,
            "constraints": {
                "description": "A new ConstraintSnapshot's fields, or a Ref/id of an existing snapshot.",
                "anyOf": [*snapshot_ref["anyOf"], ref("ConstraintSnapshotRequest"), {"type": "null"}],
            },
            "doctrine_refs": {
                "type": "array",
                "items": shapes.ref_input_schema(Kind.DOCTRINE_REF),
                "maxItems": 200,
                "uniqueItems": True,
                "default": [],
            },
            "executor": {
                "description": "The executor that runs the work (one of the enabled ones), and its configuration.",
                "anyOf": _executor_choices(),
            },
            "mode": {**enum_schema(RunMode), "default": RunMode.AGENT.value},
        },
    }


def _enqueued() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What one enqueue created or found: Refs to the issue, the sealed packet, the snapshot and "
        "the run (ready), and the run's URL.",
        "required": ["issue", "context_packet", "constraint_snapshot", "run", "executor", "run_url"],
        "properties": {
            "issue": shapes.ref_schema(Kind.ISSUE),
            "context_packet": shapes.ref_schema(Kind.CONTEXT_PACKET),
            "constraint_snapshot": nullable(shapes.ref_schema(Kind.CONSTRAINT_SNAPSHOT)),
            "run": shapes.ref_schema(Kind.RUN),
            "executor": {
                "type": "object",
                "description": "The executor that will run it, and why: `request` (the body named it) or `default` "
                "(the body did not: the service's default executor, CWOM_DEFAULT_EXECUTOR).",
                "properties": {
                    "name": {"type": "string"},
                    "chosen_by": {"type": "string", "enum": ["request", "default"]},
                },
                "required": ["name", "chosen_by"],
                "additionalProperties": False,
            },
            "run_url": {"type": "string", "format": "uri"},
        },
    }


ENQUEUE_ISSUE = named("EnqueueIssue", _enqueue_issue)
ENQUEUE_CONTEXT = named("EnqueueContext", _enqueue_context)
ENQUEUE_REQUEST = named("EnqueueRequest", _enqueue_request)


def enqueue_request_schema() -> dict[str, Any]:
    """The enqueue body's schema standing alone (no references into the OpenAPI document): MCP's ``enqueue``."""
    schema: dict[str, Any] = inlined(_enqueue_request())
    return schema


ENQUEUED = named("Enqueued", _enqueued)
BYTES = {"type": "string", "format": "binary"}
DIGEST_HEADERS = ("HTTP_CONTENT_DIGEST", "HTTP_DIGEST", "HTTP_X_CWOM_DIGEST")


UPLOAD_DESCRIPTION = (
    "The request body is the bytes. `application/octet-stream` is documented; any other Content-Type is taken "
    "as well and becomes the artifact's `media_type`. The same bytes again answer 200 (a safe retry); other bytes "
    "for an artifact that has some are a 409, bytes that do not match a declared digest a 422."
)
DIGEST_PARAMETER = OpenApiParameter(
    "Content-Digest",
    str,
    OpenApiParameter.HEADER,
    description="sha-256=:<base64>: (RFC 9530); `Digest: sha-256=<base64>` and "
    "`X-CWOM-Digest: sha256:<hex>` are accepted too. A mismatch is refused.",
)


class EnqueueView(CwomAPIView):
    """Enqueue work: issue, sealed context packet, optional snapshot and a ready run, in one transaction."""

    @extend_schema(
        operation_id="runs_enqueue",
        summary="Enqueue a run",
        description="Creates (or finds) the issue, seals a context packet at its next version, optionally records "
        "constraints, and creates a `ready` run that a worker of this service executes. Answers 202 at once, with "
        "the run's URL in `Location`.",
        request={"application/json": ENQUEUE_REQUEST},
        responses={202: OpenApiResponse(ENQUEUED, description="Enqueued; the run is ready.")},
        examples=[OpenApiExample("Enqueue", value=spec.example(spec.ENQUEUE_EXAMPLE), request_only=True)],
        tags=["runs"],
    )
    def post(self, request: Request) -> Response:
        result = enqueue(request.data, created_by=declared_actor(request) or principal_actor(request))
        location = object_path(Kind.RUN, result.run.pk) or ""
        body = {**result.refs(), "run_url": request.build_absolute_uri(location)}
        # Location is a path, as on every 201/202 of the API; run_url in the body is the absolute URL.
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class RunCancelView(CwomAPIView):
    """Cancel a run: at once if no worker holds it, otherwise its worker stops at its next check."""

    @extend_schema(
        parameters=[id_parameter("run_id")],
        operation_id="runs_cancel",
        summary="Cancel a run",
        request=None,
        responses={
            200: OpenApiResponse(ref(Kind.RUN), description="Canceled at once; the run."),
            202: OpenApiResponse(ref(Kind.RUN), description="Cancel requested; the worker will stop. The run."),
        },
        tags=["runs"],
    )
    def post(self, request: Request, run_id: str) -> Response:
        try:
            result = lifecycle.request_cancel(parse_id(run_id, Kind.RUN), principal_of(request))
        except Run.DoesNotExist:
            raise missing(Kind.RUN, parse_id(run_id)) from None
        run: Run = writes.reload(result.run)
        code = status.HTTP_200_OK if result.outcome == "canceled" else status.HTTP_202_ACCEPTED
        return Response(shapes.dump(run), status=code)


class RunRetryView(CwomAPIView):
    """Retry a failed or canceled run: a new run with the same inputs and executor, enqueued."""

    @extend_schema(
        parameters=[id_parameter("run_id")],
        operation_id="runs_retry",
        summary="Retry a failed or canceled run",
        request=None,
        responses={
            202: OpenApiResponse(
                ref(Kind.RUN), description="The new run (ready, enqueued); its retry_of names this one."
            )
        },
        tags=["runs"],
    )
    def post(self, request: Request, run_id: str) -> Response:
        try:
            run = lifecycle.retry(parse_id(run_id, Kind.RUN))
        except Run.DoesNotExist:
            raise missing(Kind.RUN, parse_id(run_id)) from None
        return Response(
            shapes.dump(writes.reload(run)),
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": object_path(Kind.RUN, run.pk) or ""},  # a path, as on every 201/202
        )


class RawBodyParser(BaseParser):
    """Any media type: the body as a file of bytes (spooled to disk past 4 MiB), capped at the artifact limit."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        cap = int(conf()["artifact_max_bytes"])
        spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 - handed to the view
        size = 0
        while stream is not None and (chunk := stream.read(content.CHUNK)):
            size += len(chunk)
            if size > cap:
                spool.close()
                raise Problem(f"Artifact content is limited to {cap} bytes.", "payload_too_large")
            spool.write(chunk)
        spool.seek(0)
        return spool


class ArtifactContentView(CwomAPIView):
    """An artifact's bytes: uploaded once (digest computed, a declared digest checked), downloaded with it.

    The upload is the raw request body, any media type (its Content-Type becomes the artifact's media type).
    Uploading the same bytes again answers 200 with the artifact (a safe retry); other bytes are a 409.
    """

    parser_classes = [RawBodyParser]  # type: ignore[list-item]  # bytes, not JSON
    idempotent_methods = ()  # the upload is idempotent by its digest

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # Downloads are bytes whatever the client accepts; errors still render as problem JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[id_parameter("artifact_id")],
        operation_id="artifacts_content_download",
        summary="Download an artifact's bytes",
        description="The bytes as uploaded, with the artifact's `media_type` as Content-Type (any type; "
        "`application/octet-stream` when none was declared) and their digest in `Digest`, `Content-Digest` "
        "and `ETag`. `If-None-Match` with that ETag answers 304.",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(BYTES, description="The stored bytes."),
            (200, "*/*"): OpenApiResponse(BYTES, description="The stored bytes, as their media type."),
            304: OpenApiResponse(None, description="Not modified (If-None-Match matched the digest)."),
        },
        tags=["artifacts"],
    )
    def get(self, request: Request, artifact_id: str) -> HttpResponseBase:
        artifact = Artifact.objects.filter(pk=parse_id(artifact_id, Kind.ARTIFACT)).first()
        if artifact is None:
            raise missing(Kind.ARTIFACT, parse_id(artifact_id))
        if not artifact.stored_name:
            raise Problem("This artifact has no stored content.", "no_content")
        headers = content.http_digest_headers(artifact.digest or "")
        if request.META.get("HTTP_IF_NONE_MATCH") == headers["ETag"]:
            response: HttpResponseBase = HttpResponse(status=304)
        else:
            response = FileResponse(content.open_content(artifact), content_type=artifact.media_type)
            response["Content-Length"] = str(artifact.size_bytes)
        for name, value in headers.items():
            response[name] = value
        return response

    @extend_schema(
        operation_id="artifacts_content_upload",
        summary="Upload an artifact's bytes (once)",
        description=UPLOAD_DESCRIPTION,
        request={"application/octet-stream": BYTES},
        parameters=[id_parameter("artifact_id"), DIGEST_PARAMETER],
        responses={
            201: OpenApiResponse(ref(Kind.ARTIFACT), description="Stored; the artifact, with digest and size."),
            200: OpenApiResponse(ref(Kind.ARTIFACT), description="These bytes were already stored (a retry)."),
        },
        tags=["artifacts"],
    )
    def put(self, request: Request, artifact_id: str) -> Response:
        declared = next((request.META[h] for h in DIGEST_HEADERS if request.META.get(h)), None)
        body: IO[bytes] = io.BytesIO() if isinstance(request.data, dict) else cast(IO[bytes], request.data)
        try:
            artifact, created = content.attach_content(
                parse_id(artifact_id, Kind.ARTIFACT),
                body,
                declared_digest=declared,
                media_type=request.content_type or None,
            )
        except Artifact.DoesNotExist:
            raise missing(Kind.ARTIFACT, parse_id(artifact_id)) from None
        except (content.ContentConflict, content.ContentTooLarge) as error:
            raise Problem(str(error), error.code) from None
        return Response(
            shapes.dump(artifact),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=content.http_digest_headers(artifact.digest or ""),
        )

    @extend_schema(
        operation_id="artifacts_content_upload_post",
        summary="Upload an artifact's bytes (once); same as PUT",
        description=UPLOAD_DESCRIPTION,
        request={"application/octet-stream": BYTES},
        parameters=[id_parameter("artifact_id"), DIGEST_PARAMETER],
        responses={
            201: OpenApiResponse(ref(Kind.ARTIFACT), description="Stored; the artifact, with digest and size."),
            200: OpenApiResponse(ref(Kind.ARTIFACT), description="These bytes were already stored (a retry)."),
        },
        tags=["artifacts"],
    )
    def post(self, request: Request, artifact_id: str) -> Response:
        return self.put(request, artifact_id)
