"""``GET /api/v1/runs/{a}/diff/{b}``: what differs between two runs (:mod:`cwom.compare`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from cwom import compare
from cwom.enums import Kind
from cwom.models import Run

from .schema import named
from .views import CwomAPIView, id_parameter, missing, parse_id

RUN_DIFF = named("RunDiff", lambda: compare.DIFF_SCHEMA)


class RunDiffView(CwomAPIView):
    """Compare two runs: issue, repo, packets (text diffs), snapshot, doctrine refs, executor, outcome, artifacts."""

    @extend_schema(
        parameters=[id_parameter("run_id"), id_parameter("other_id")],
        operation_id="runs_diff",
        summary="Compare two runs",
        responses={200: OpenApiResponse(RUN_DIFF, description="The difference, section by section.")},
        tags=["runs"],
    )
    def get(self, request: Request, run_id: str, other_id: str) -> Response:
        ids = parse_id(run_id, Kind.RUN), parse_id(other_id, Kind.RUN)
        try:
            return Response(compare.diff_runs(*ids))
        except Run.DoesNotExist:
            raise next(missing(Kind.RUN, i) for i in ids if not Run.objects.filter(pk=i).exists()) from None
