"""``GET /api/v1/runs/{id}/lineage.svg``: a run's chain as a picture, the one the admin draws on the run's page.

The chain is :func:`cwom.lineage.run_bundle` (what ``GET /runs/{id}/lineage`` serves) and the drawing
:func:`cwom.admin.lineage_svg.run_picture`; this view adds HTTP only. Read scope, like every GET (so never a
403); errors are the API's problem documents whatever the client accepts. The picture carries the ETag of
the chain it draws and answers 304 to ``If-None-Match`` with it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request

from cwom import lineage
from cwom.admin.lineage_svg import run_picture
from cwom.enums import Kind
from cwom.models import Run

from .views import CwomAPIView, etag_of, id_parameter, missing, parse_id

SVG_MEDIA_TYPE = "image/svg+xml"


class RunLineagePictureView(CwomAPIView):
    """A run's lineage drawn as SVG: issue -> packets / snapshot / doctrine refs -> run -> artifacts."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The picture is SVG whatever the client accepts; errors still render as problem JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[id_parameter("id")],
        operation_id="runs_lineage_svg",
        summary="A run's lineage as an SVG picture",
        description="The chain of `GET /runs/{id}/lineage` drawn as a layered graph: the issue, the context "
        "packets, constraint snapshot and doctrine refs, the run and its artifacts; each box is coloured by kind "
        "and status and links to the object's page in the admin.",
        responses={
            (200, SVG_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR, description="The picture; its ETag is that of the chain it draws."
            ),
            304: OpenApiResponse(description="Not modified: the chain is the one of the ETag in If-None-Match."),
        },
        tags=["runs"],
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        run_id = parse_id(pk, Kind.RUN)
        try:
            bundle = lineage.run_bundle(run_id)
        except Run.DoesNotExist:
            raise missing(Kind.RUN, run_id) from None
        tag = etag_of(bundle)
        if request.headers.get("If-None-Match") == tag:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(
                run_picture(bundle, standalone=True), content_type=f"{SVG_MEDIA_TYPE}; charset=utf-8"
            )
        response["ETag"] = tag
        return response
