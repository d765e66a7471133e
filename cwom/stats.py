"""Health numbers of a deployment: counts by kind and status, run success, durations and cost, per repo.

Every figure is computed by the database (counts, sums, and percentiles by ordered offset), so the cost
does not grow with what Python has to hold.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, QuerySet, Sum

from .enums import Status
from .models import KIND_MODELS, Artifact, Issue, Repo, Run

PERCENTILES = (0.5, 0.95)


def percentile(values: QuerySet[Any], column: str, fraction: float, count: int) -> float | None:
    """Nearest-rank percentile of ``column`` over ``values`` (whose non-null rows number ``count``)."""
    if count == 0:
        return None
    rank = max(math.ceil(fraction * count), 1) - 1
    return values.order_by(column).values_list(column, flat=True)[rank]


def run_summary(runs: QuerySet[Run]) -> dict[str, Any]:
    """Counts by status, success rate (done over done + failed), p50/p95 duration of started runs, costs."""
    by_status = {row["status"]: row["n"] for row in runs.order_by().values("status").annotate(n=Count("id"))}
    done, failed = by_status.get(Status.DONE, 0), by_status.get(Status.FAILED, 0)
    timed = runs.filter(started_at__isnull=False, duration_s__isnull=False)
    measured = timed.count()
    costs = runs.aggregate(usd=Sum("cost_usd"), tokens=Sum("cost_tokens"), compute_s=Sum("cost_compute_s"))
    return {
        "total": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "success_rate": round(done / (done + failed), 4) if done + failed else None,
        "duration_s": {
            "measured": measured,
            **{f"p{round(p * 100)}": percentile(timed, "duration_s", p, measured) for p in PERCENTILES},
        },
        "cost": {
            "usd": round(costs["usd"] or 0.0, 6),
            "tokens": costs["tokens"] or 0,
            "compute_s": round(costs["compute_s"] or 0.0, 3),
        },
    }


def collect(repo_slug: str | None = None) -> dict[str, Any]:
    """All the numbers, for the whole deployment and per repo (or for one repo)."""
    repos = Repo.objects.order_by("slug")
    if repo_slug is not None:
        repos = repos.filter(slug=repo_slug)
    result: dict[str, Any] = {}
    if repo_slug is None:
        result["objects"] = {kind: model._default_manager.count() for kind, model in KIND_MODELS.items()}
        result["issues_by_status"] = _by(Issue.objects.all(), "status")
        result["artifacts_by_verification"] = _by(Artifact.objects.all(), "verification_status")
        result["runs"] = run_summary(Run.objects.all())
    result["repos"] = [
        {
            "slug": repo.slug,
            "id": repo.pk,
            "issues_by_status": _by(Issue.objects.filter(repo=repo), "status"),
            "runs": run_summary(Run.objects.filter(repo=repo)),
        }
        for repo in repos
    ]
    return result


def _by(queryset: QuerySet[Any], column: str) -> dict[str, int]:
    rows = queryset.order_by().values(column).annotate(n=Count("pk"))
    return {row[column]: row["n"] for row in sorted(rows, key=lambda row: row[column])}
