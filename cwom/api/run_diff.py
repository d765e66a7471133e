"""``GET /api/v1/runs/{a}/diff/{b}``: what differs between two runs (:mod:`cwom.compare`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from cwom import compare

from .views import CwomAPIView, parse_id


class RunDiffView(CwomAPIView):
    """Compare two runs: issue, repo, packets (text diffs), snapshot, doctrine refs, executor, outcome, artifacts."""

    @extend_schema(
        operation_id="runs_diff",
        summary="Compare two runs",
        responses={200: OpenApiResponse(compare.DIFF_SCHEMA, description="The difference, section by section.")},
        tags=["runs"],
    )
    def get(self, request: Request, run_id: str, other_id: str) -> Response:
        return Response(compare.diff_runs(parse_id(run_id), parse_id(other_id)))
