"""Health numbers of a deployment: counts by kind and status, run success, durations and cost, per repo.

Every figure is computed by the database (counts, sums, and percentiles by ordered offset), so the cost
does not grow with what Python has to hold.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

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


GLANCE_DAYS = 14  # bars of the runs-per-day chart
GLANCE_TOP = 5  # executors and repos listed


def glance(now: datetime) -> dict[str, Any]:
    """The admin home page's numbers, in five queries whatever the table holds (each reads only the
    runs created in its window, from the covering index ``run_glance_idx`` alone: runs are counted by
    their non-null ``created_at``, which the index holds, rather than by ``id``, which it does not):

    1. runs of the last 7 days by status and failure category, with how many of them in the last 24 h;
    2. runs per day over the last ``GLANCE_DAYS`` days (UTC days), failed ones apart;
    3. the ``GLANCE_TOP`` slowest executor runtimes of the last 7 days by mean duration;
    4. the ``GLANCE_TOP`` repos with the most runs in the last 7 days, and 5. their slugs.
    """
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    first_day = (now - timedelta(days=GLANCE_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    week = Run.objects.filter(created_at__gte=week_ago).order_by()
    failed = Q(status=Status.FAILED)
    statuses: dict[str, dict[str, int]] = {}
    failures: dict[str, int] = {}
    rows = week.values("status", "failure_category").annotate(
        week=Count("created_at"), day=Count("created_at", filter=Q(created_at__gte=day_ago))
    )
    for group in rows:
        tally = statuses.setdefault(group["status"], {"day": 0, "week": 0})
        tally["day"] += group["day"]
        tally["week"] += group["week"]
        if group["failure_category"]:
            failures[group["failure_category"]] = failures.get(group["failure_category"], 0) + group["week"]
    per_day: dict[Any, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in Run.objects.filter(created_at__gte=first_day)
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(runs=Count("created_at"), failed=Count("created_at", filter=failed))
    }
    days = []
    for offset in range(GLANCE_DAYS):
        day = first_day.date() + timedelta(days=offset)
        counted = per_day.get(day, {})
        days.append({"day": day, "runs": counted.get("runs", 0), "failed": counted.get("failed", 0)})
    executors = list(
        week.filter(duration_s__isnull=False)
        .values("executor_runtime")
        .annotate(runs=Count("created_at"), mean_s=Avg("duration_s"), max_s=Max("duration_s"))
        .order_by("-mean_s", "executor_runtime")[:GLANCE_TOP]
    )
    # Grouped by repo id alone (no join: sorting a week of runs by slug costs more than the count), then the
    # slugs of the few repos shown.
    repos: list[dict[str, Any]] = [
        dict(row)
        for row in week.values("repo_id")
        .annotate(runs=Count("created_at"), failed=Count("created_at", filter=failed))
        .order_by("-runs", "repo_id")[:GLANCE_TOP]
    ]
    slugs = dict(Repo.objects.filter(pk__in=[row["repo_id"] for row in repos]).values_list("pk", "slug"))
    for row in repos:
        row["slug"] = slugs.get(row["repo_id"], row["repo_id"])
    return {
        "now": now,
        "day_ago": day_ago,
        "week_ago": week_ago,
        "statuses": dict(sorted(statuses.items(), key=lambda item: -item[1]["week"])),
        "failures": dict(sorted(failures.items(), key=lambda item: -item[1])),
        "days": days,
        "executors": executors,
        "repos": repos,
    }
