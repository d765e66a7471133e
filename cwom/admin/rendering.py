"""HTML pieces of the admin's detail pages: linked Refs, pretty JSON, a run's chain, timelines, dates."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..enums import Kind
from ..humanize import age, duration, usd, utc
from ..models import KIND_MODELS, Artifact, Event, Run

CONTENT_PATH = "/api/v1/artifacts/{id}/content"
TIMELINE_LIMIT = 200
_KINDS = "|".join(Kind.values)
# A Ref inside escaped, indented JSON: "kind": "<Kind>", "id": "<ULID>".
_REF_IN_JSON = re.compile(
    rf"(&quot;kind&quot;: &quot;(?P<kind>{_KINDS})&quot;,\s*&quot;id&quot;: &quot;)"
    r"(?P<id>[0-9A-HJKMNP-TV-Z]{26})(&quot;)"
)


def admin_url(kind: str, object_id: str) -> str | None:
    """The admin page of the object ``kind``/``object_id``."""
    model = KIND_MODELS.get(kind)
    if model is None:
        return None
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None


def when(moment: datetime | str | None) -> SafeString:
    """A date as the admin shows every date: ISO 8601 in UTC, with how long ago as a tooltip."""
    if not moment:
        return mark_safe("&mdash;")  # noqa: S308 - a constant
    text = utc(moment)
    return format_html('<time datetime="{}" title="{}">{}</time>', text, age(moment), text)


def object_link(kind: str, object_id: str | None, text: Any = None) -> SafeString:
    """A link to the object's admin page (plain text when it has none)."""
    if not object_id:
        return mark_safe("&mdash;")  # noqa: S308 - a constant
    url = admin_url(kind, object_id)
    label = text if text is not None else object_id
    return format_html('<a href="{}">{}</a>', url, label) if url else format_html("{}", label)


def ref_link(ref: dict[str, Any] | None, text: Any = None) -> SafeString:
    return object_link(ref["kind"], ref["id"], text) if ref else object_link("", None)


def pretty_json(value: Any) -> SafeString:
    """``value`` as indented JSON; the id of every Ref in it is a link to that object's admin page."""
    text = escape(json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))

    def link(match: re.Match[str]) -> str:
        url = admin_url(match["kind"], match["id"])
        target = f'<a href="{escape(url)}">{match["id"]}</a>' if url else match["id"]
        return f"{match.group(1)}{target}{match.group(4)}"

    linked = _REF_IN_JSON.sub(link, text)
    return mark_safe(f'<pre class="cwom-json" style="white-space: pre-wrap; margin: 0">{linked}</pre>')  # noqa: S308 - escaped above


LIST_ITEMS = 20


def abridged(value: Any, limit: int = LIST_ITEMS) -> Any:
    """``value`` with every list longer than ``limit`` cut to its first items and a note of how many more
    (an issue's 10,000 run refs would drown its page)."""
    if isinstance(value, dict):
        return {key: abridged(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        kept = [abridged(item, limit) for item in value[:limit]]
        return kept + [f"… and {len(value) - limit:,} more"] if len(value) > limit else kept
    return value


def html_table(headers: Iterable[str], rows: Iterable[Iterable[Any]], empty: str) -> SafeString:
    """A table of escaped cells (``empty`` in a paragraph when there is no row)."""
    rows = list(rows)
    if not rows:
        return format_html('<p class="cwom-empty">{}</p>', empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows)
    )
    return format_html('<table class="cwom-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def _seconds(value: float | None) -> str:
    return "—" if value is None else duration(value)


def _usd(value: float | None) -> str:
    return "—" if value is None else usd(value)


def byte_size(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def content_link(artifact: dict[str, Any], stored: bool) -> SafeString:
    """Where an artifact's bytes are: the service's content URL when it keeps them, else its uri."""
    if stored:
        return format_html('<a href="{}">stored bytes</a>', CONTENT_PATH.format(id=artifact["id"]))
    if artifact.get("uri"):
        return format_html('<a href="{}" rel="noreferrer">{}</a>', artifact["uri"], artifact["uri"])
    return format_html("{}", "—")


def run_chain(bundle: dict[str, Any], stored_ids: set[str]) -> SafeString:
    """A run's whole causality chain from :func:`cwom.lineage.run_bundle`, every object a link."""
    run, issue, repo = bundle["run"], bundle["issue"], bundle["repo"]
    roles = {ref["id"]: ref["role"] for ref in run["inputs"]["context_packets"]}
    own_doctrine = {ref["id"] for ref in run["inputs"]["doctrine_refs"]}
    packets = format_html_join(
        "",
        "<li>{} version {} — {}{}</li>",
        (
            (
                object_link(Kind.CONTEXT_PACKET, p["id"]),
                p["version"],
                "sealed" if p["sealed"] else "draft",
                f" (role {roles[p['id']]})" if roles.get(p["id"]) else "",
            )
            for p in bundle["context_packets"]
        ),
    )
    doctrines = format_html_join(
        "",
        "<li>{} {}/{}@{} ({}, {}) — {}</li>",
        (
            (
                object_link(Kind.DOCTRINE_REF, d["id"]),
                d["namespace"],
                d["name"],
                d["version"],
                d["type"],
                d["priority"],
                "named by the run" if d["id"] in own_doctrine else "via a context packet",
            )
            for d in bundle["doctrine_refs"]
        ),
    )
    snapshot = bundle["constraint_snapshot"]
    telemetry, cost = run["telemetry"], run["cost"]
    artifacts = html_table(
        ("artifact", "type", "title", "digest", "size", "verification", "bytes"),
        (
            (
                object_link(Kind.ARTIFACT, a["id"]),
                a["type"],
                a["title"],
                format_html("<code>{}</code>", a["digest"]) if a["digest"] else "—",
                byte_size(a["size_bytes"]),
                format_html(
                    "{}{}",
                    a["verification"]["status"],
                    format_html_join("", "<br>{}: {}", ((c["name"], c["status"]) for c in a["verification"]["checks"])),
                ),
                content_link(a, a["id"] in stored_ids),
            )
            for a in bundle["artifacts"]
        ),
        "No artifacts.",
    )
    rows = [
        (
            "Issue",
            format_html(
                "{} {} ({}, {}, {})",
                ref_link(run["for_issue"]),
                issue["title"],
                issue["type"],
                issue["priority"],
                issue["status"],
            ),
        ),
        ("Repo", format_html("{} {}", ref_link(run["repo"]), repo["slug"])),
        ("Context packets", format_html("<ul>{}</ul>", packets) if bundle["context_packets"] else "none"),
        (
            "Constraint snapshot",
            format_html(
                "{} {} captured {}",
                object_link(Kind.CONSTRAINT_SNAPSHOT, snapshot["id"]),
                snapshot["scope"],
                when(snapshot["captured_at"]),
            )
            if snapshot
            else "none pinned",
        ),
        ("Doctrine refs", format_html("<ul>{}</ul>", doctrines) if bundle["doctrine_refs"] else "none"),
        (
            "Run",
            format_html(
                "{} ({}) — started {}, ended {}, {}; cost {}, {} tokens",
                run["status"],
                run["mode"],
                when(telemetry["started_at"]),
                when(telemetry["ended_at"]),
                _seconds(telemetry["duration_s"]),
                _usd(cost["usd"]),
                f"{cost['tokens']:,}" if cost["tokens"] is not None else "—",
            ),
        ),
        (
            "Failure",
            format_html("{}: {}", run["failure"]["category"], run["failure"]["message"]) if run["failure"] else "none",
        ),
        ("Artifacts", artifacts),
    ]
    body = format_html_join("", '<tr><th style="width: 12em">{}</th><td>{}</td></tr>', rows)
    return format_html(
        '<div class="cwom-scroll"><table class="cwom-chain" data-run="{}">{}</table></div>', run["id"], body
    )


def run_stored_ids(run: Run) -> set[str]:
    return set(Artifact.objects.filter(produced_by=run).exclude(stored_name="").values_list("id", flat=True))


def timeline(object_ids: list[str]) -> SafeString:
    """The events of these objects, oldest first (at most TIMELINE_LIMIT)."""
    events = Event.objects.filter(object_id__in=object_ids).order_by("at", "id")[:TIMELINE_LIMIT]
    return format_html('<div class="cwom-scroll cwom-timeline">{}</div>', _timeline_table(events))


def _timeline_table(events: Iterable[Event]) -> SafeString:
    return html_table(
        ("at", "action", "object", "principal", "actor", "changes"),
        (
            (
                format_html('<a href="{}">{}</a>', reverse("admin:cwom_event_change", args=[e.pk]), when(e.at)),
                e.action,
                object_link(e.object_kind, e.object_id, f"{e.object_kind} {e.object_id}"),
                e.principal,
                (e.actor or {}).get("display") or (e.actor or {}).get("actor_id") or "—",
                change_summary(e.action, e.changes),
            )
            for e in events
        ),
        "No events.",
    )


VALUE_CHARS = 60
# Set on every object's creation, so naming them in "created with ..." says nothing.
EVERY_OBJECT_HAS = frozenset({"id", "created_at", "updated_at"})


def change_summary(action: str, changes: dict[str, Any]) -> str:
    """What an event did, for people.

    A creation names only the fields it set (``created with title, status, repo``; not the id and
    timestamps every object gets); any other change
    shows each field as before → after (``status: ready → running``), long values shortened.
    """
    if action == "create":
        named = [name for name, values in changes.items() if name not in EVERY_OBJECT_HAS and _is_set(_after(values))]
        return f"created with {', '.join(named)}" if named else "created"
    return "; ".join(
        f"{name}: {_short(_before(values))} → {_short(_after(values))}" for name, values in changes.items()
    )


def _before(values: Any) -> Any:
    return values[0] if isinstance(values, list) and len(values) == 2 else None


def _after(values: Any) -> Any:
    return values[1] if isinstance(values, list) and len(values) == 2 else values


def _is_set(value: Any) -> bool:
    return value not in (None, "", [], {})


def _short(value: Any) -> str:
    if not _is_set(value):
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def runs_table(runs: Iterable[Run]) -> SafeString:
    """Runs with status, duration and cost, in the order given."""
    table = html_table(
        ("run", "status", "mode", "started", "ended", "duration", "cost", "artifacts"),
        (
            (
                object_link(Kind.RUN, r.pk),
                r.status,
                r.mode,
                when(r.started_at),
                when(r.ended_at),
                _seconds(r.duration_s),
                _usd(r.cost_usd),
                getattr(r, "artifact_count", "—"),
            )
            for r in runs
        ),
        "No runs yet.",
    )
    return format_html('<div class="cwom-scroll">{}</div>', table)
