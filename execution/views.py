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
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from cwom import shapes, spec, writes
from cwom.api.auth import principal_of
from cwom.api.errors import Problem
from cwom.api.views import CwomAPIView, object_path, parse_id
from cwom.enums import Kind
from cwom.models import Artifact, Run

from . import content, lifecycle
from .config import conf
from .enqueue import enqueue

REF_SCHEMA = shapes.ref_schema(None)
ENQUEUE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["issue", "context"],
    "additionalProperties": False,
    "properties": {
        "issue": {
            "description": "A Ref or id of an existing Issue, or a new issue's fields (`repo`: a Ref, id or slug).",
            "oneOf": [{"type": "string"}, {"type": "object"}],
        },
        "context": {"type": "object", "description": "ContextPacket fields; sealed at the issue's next version."},
        "constraints": {
            "description": "ConstraintSnapshot fields, or a Ref/id of an existing snapshot.",
            "oneOf": [{"type": "string"}, {"type": "object"}, {"type": "null"}],
        },
        "doctrine_refs": {"type": "array", "items": {"oneOf": [{"type": "string"}, REF_SCHEMA]}},
        "executor": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "config": {"type": "object"}},
            "required": ["name"],
        },
        "mode": {"type": "string", "enum": ["human", "agent", "hybrid", "system"]},
    },
}
ENQUEUE_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["issue", "context_packet", "constraint_snapshot", "run", "run_url"],
    "properties": {
        "issue": REF_SCHEMA,
        "context_packet": REF_SCHEMA,
        "constraint_snapshot": {"oneOf": [REF_SCHEMA, {"type": "null"}]},
        "run": REF_SCHEMA,
        "run_url": {"type": "string", "format": "uri"},
    },
}
DIGEST_HEADERS = ("HTTP_CONTENT_DIGEST", "HTTP_DIGEST", "HTTP_X_CWOM_DIGEST")


class EnqueueView(CwomAPIView):
    """Enqueue work: issue, sealed context packet, optional snapshot and a ready run, in one transaction."""

    @extend_schema(
        operation_id="enqueue_create",
        summary="Enqueue a run",
        request={"application/json": ENQUEUE_REQUEST_SCHEMA},
        responses={202: OpenApiResponse(ENQUEUE_RESPONSE_SCHEMA, description="Enqueued; the run is ready.")},
        examples=[OpenApiExample("Enqueue", value=spec.example(spec.ENQUEUE_EXAMPLE), request_only=True)],
        tags=["execution"],
    )
    def post(self, request: Request) -> Response:
        result = enqueue(request.data)
        body = {**result.refs(), "run_url": request.build_absolute_uri(object_path(Kind.RUN, result.run.pk))}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["run_url"]})


class RunCancelView(CwomAPIView):
    """Cancel a run: at once if no worker holds it, otherwise its worker stops at its next check."""

    @extend_schema(
        operation_id="runs_cancel",
        summary="Cancel a run",
        request=None,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="Canceled at once; the run."),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="Cancel requested; the worker will stop."),
        },
        tags=["execution"],
    )
    def post(self, request: Request, run_id: str) -> Response:
        result = lifecycle.request_cancel(parse_id(run_id), principal_of(request))
        run: Run = writes.reload(result.run)
        code = status.HTTP_200_OK if result.outcome == "canceled" else status.HTTP_202_ACCEPTED
        return Response(shapes.dump(run), status=code)


class RunRetryView(CwomAPIView):
    """Retry a failed or canceled run: a new run with the same inputs and executor, enqueued."""

    @extend_schema(
        operation_id="runs_retry",
        summary="Retry a failed or canceled run",
        request=None,
        responses={
            202: OpenApiResponse(
                OpenApiTypes.OBJECT, description="The new run (ready, enqueued); its retry_of names this one."
            )
        },
        tags=["execution"],
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = lifecycle.retry(parse_id(run_id))
        return Response(
            shapes.dump(writes.reload(run)),
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": request.build_absolute_uri(object_path(Kind.RUN, run.pk))},
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
                raise Problem(f"Artifact content is limited to {cap} bytes.", "too_large", status_code=413)
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
        operation_id="artifacts_content_retrieve",
        summary="Download an artifact's bytes",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 304: None},
        tags=["execution"],
    )
    def get(self, request: Request, artifact_id: str) -> HttpResponseBase:
        artifact = Artifact.objects.get(pk=parse_id(artifact_id))
        if not artifact.stored_name:
            raise Problem("This artifact has no stored content.", "no_content", status_code=404)
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
        request={"*/*": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "Content-Digest",
                str,
                OpenApiParameter.HEADER,
                description="sha-256=:<base64>: (RFC 9530); `Digest: sha-256=<base64>` and "
                "`X-CWOM-Digest: sha256:<hex>` are accepted too. A mismatch is refused.",
            )
        ],
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored; the artifact, with digest and size."),
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="These bytes were already stored (a retry)."),
        },
        tags=["execution"],
    )
    def put(self, request: Request, artifact_id: str) -> Response:
        declared = next((request.META[h] for h in DIGEST_HEADERS if request.META.get(h)), None)
        body: IO[bytes] = io.BytesIO() if isinstance(request.data, dict) else cast(IO[bytes], request.data)
        try:
            artifact, created = content.attach_content(
                parse_id(artifact_id), body, declared_digest=declared, media_type=request.content_type or None
            )
        except content.ContentConflict as error:
            raise Problem(str(error), error.code, status_code=409) from None
        except content.ContentTooLarge as error:
            raise Problem(str(error), error.code, status_code=413) from None
        return Response(
            shapes.dump(artifact),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=content.http_digest_headers(artifact.digest or ""),
        )

    @extend_schema(
        operation_id="artifacts_content_upload_post",
        summary="Upload an artifact's bytes (once); same as PUT",
        request={"*/*": OpenApiTypes.BINARY},
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="Stored; the artifact, with digest and size."),
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="These bytes were already stored (a retry)."),
        },
        tags=["execution"],
    )
    def post(self, request: Request, artifact_id: str) -> Response:
        return self.put(request, artifact_id)
