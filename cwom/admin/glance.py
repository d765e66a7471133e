"""The admin's home page: the system at a glance, every number on it a link to the run list that holds
exactly those runs.

The numbers come from :func:`cwom.stats.glance` (five queries, whatever the size of the tables); this
module only turns them into tables and a small bar chart drawn as SVG.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from ..humanize import count, duration, utc
from ..stats import glance
from .rendering import html_table

CHART_BAR = 20
CHART_HEIGHT = 110


def home_page(now: datetime) -> dict[str, SafeString]:
    """What the admin's home page shows above the list of models (:class:`cwom.admin_app.CwomAdminSite`)."""
    return at_a_glance(glance(now))


def runs_url(**lookups: Any) -> str:
    """The run list filtered by ``lookups`` (datetimes as ISO 8601 UTC)."""
    params = {name: utc(value) if isinstance(value, datetime) else value for name, value in lookups.items()}
    return reverse("admin:cwom_run_changelist") + "?" + urlencode(params)


def _number(n: int, url: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, count(n)) if n else format_html("{}", "0")


def at_a_glance(numbers: dict[str, Any]) -> dict[str, SafeString]:
    """The HTML pieces of the home page from :func:`cwom.stats.glance`."""
    day_ago, week_ago = numbers["day_ago"], numbers["week_ago"]
    status_rows = [
        (
            status,
            _number(tally["day"], runs_url(status__exact=status, created_at__gte=day_ago)),
            _number(tally["week"], runs_url(status__exact=status, created_at__gte=week_ago)),
        )
        for status, tally in numbers["statuses"].items()
    ]
    total_day = sum(t["day"] for t in numbers["statuses"].values())
    total_week = sum(t["week"] for t in numbers["statuses"].values())
    status_rows.append(
        (
            mark_safe("<strong>all</strong>"),
            _number(total_day, runs_url(created_at__gte=day_ago)),
            _number(total_week, runs_url(created_at__gte=week_ago)),
        )
    )
    failures = [
        (category, _number(n, runs_url(failure_category__exact=category, created_at__gte=week_ago)))
        for category, n in numbers["failures"].items()
    ]
    executors = [
        (
            row["executor_runtime"],
            _number(row["runs"], runs_url(executor_runtime__exact=row["executor_runtime"], created_at__gte=week_ago)),
            duration(row["mean_s"]),
            duration(row["max_s"]),
        )
        for row in numbers["executors"]
    ]
    repos = [
        (
            format_html('<a href="{}">{}</a>', reverse("admin:cwom_repo_change", args=[row["repo_id"]]), row["slug"]),
            _number(row["runs"], runs_url(repo__id__exact=row["repo_id"], created_at__gte=week_ago)),
            _number(
                row["failed"],
                runs_url(repo__id__exact=row["repo_id"], status__exact="failed", created_at__gte=week_ago),
            ),
        )
        for row in numbers["repos"]
    ]
    return {
        "as_of": format_html('<time datetime="{0}">{0}</time>', utc(numbers["now"])),
        "statuses": html_table(("status", "last 24 h", "last 7 days"), status_rows, "No runs in the last 7 days."),
        "failures": html_table(("failure category", "runs, 7 days"), failures, "No failed runs in the last 7 days."),
        "executors": html_table(
            ("executor runtime", "runs, 7 days", "mean", "slowest"), executors, "No timed runs in the last 7 days."
        ),
        "repos": html_table(("repo", "runs, 7 days", "failed"), repos, "No runs in the last 7 days."),
        "chart": runs_per_day_chart(numbers["days"]),
    }


def runs_per_day_chart(days: list[dict[str, Any]]) -> SafeString:
    """Runs per UTC day as an SVG bar chart, failed runs in red at the foot of each bar; each bar and its
    number link to that day's runs."""
    peak = max((d["runs"] for d in days), default=0) or 1
    top, foot = 16, 18
    scale = (CHART_HEIGHT - top - foot) / peak
    width = (len(days) + 1) * CHART_BAR
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cwom-chart" role="img" width="{width}" '
        f'height="{CHART_HEIGHT}" viewBox="0 0 {width} {CHART_HEIGHT}" font-family="system-ui, sans-serif" '
        'font-size="10"><title>Runs per day (UTC), failed in red</title>'
    ]
    base = CHART_HEIGHT - foot
    for index, day in enumerate(days):
        start = datetime(day["day"].year, day["day"].month, day["day"].day, tzinfo=UTC)
        url = runs_url(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        x = index * CHART_BAR + CHART_BAR // 2 + 3  # half a bar of margin each side for the numbers
        bar, failed = day["runs"] * scale, day["failed"] * scale
        label = f"{day['day'].isoformat()}: {count(day['runs'])} runs, {count(day['failed'])} failed"
        parts.append(
            f'<a class="cwom-bar" href="{escape(url)}"><title>{escape(label)}</title>'
            f'<rect x="{x}" y="{base - bar:.1f}" width="{CHART_BAR - 6}" height="{bar:.1f}" fill="#8ab4f8"/>'
            f'<rect x="{x}" y="{base - failed:.1f}" width="{CHART_BAR - 6}" height="{failed:.1f}" fill="#d93025"/>'
            f'<text x="{x + (CHART_BAR - 6) / 2}" y="{base - bar - 3:.1f}" text-anchor="middle" fill="#202124">'
            f"{escape(count(day['runs']) if day['runs'] else '')}</text>"
            f'<text x="{x + (CHART_BAR - 6) / 2}" y="{CHART_HEIGHT - 5}" text-anchor="middle" fill="#5f6368">'
            f"{escape(day['day'].strftime('%d'))}</text></a>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped labels only
