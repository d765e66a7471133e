"""The admin for people who would rather look than read: lineage pictures, the home page at a glance,
readable pages, and what each page costs in queries (whatever the tables hold)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cwom import shapes, writes
from cwom.admin import lineage_svg
from cwom.admin.glance import runs_url
from cwom.admin.rendering import change_summary
from cwom.humanize import age, duration, usd, utc
from cwom.lineage import issue_overview, run_bundle
from cwom.models import Artifact, Event, Issue, Run
from tests import factories

SVG = "{http://www.w3.org/2000/svg}"


def url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:cwom_{model._meta.model_name}_{view}", args=args)


def parse_svg(svg: str) -> ET.Element:
    """A picture as XML (parsing it proves it is well-formed)."""
    return ET.fromstring(svg)  # noqa: S314 - the service's own output, no external entities


def svg_nodes(svg: str) -> list[ET.Element]:
    """The linked boxes of a picture."""
    root = parse_svg(svg)
    return [a for a in root.iter(f"{SVG}a") if a.get("class") == "lineage-node"]


def picture_in(page: str, css_class: str = "cwom-lineage") -> str:
    match = re.search(rf'<svg [^>]*class="{css_class}".*?</svg>', page, re.S)
    assert match, f"no {css_class} picture on the page"
    return match.group(0)


def page_queries(client: Client, path: str) -> tuple[int, str]:
    ContentType.objects.clear_cache()  # counted the same whether or not an earlier test filled it
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def many(kind: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """Objects made in one batch through the write path (10,000 runs in a few seconds)."""
    with transaction.atomic():
        return writes.create_many(kind, [shapes.parse(kind, body, "in") for body in bodies])


@pytest.fixture
def run_with_100_artifacts(db: None) -> Run:
    run = factories.started_run()
    many("Artifact", [{"produced_by": run.pk, "type": "log", "title": f"log <{i}> & more"} for i in range(100)])
    return run


# --- the run's picture --------------------------------------------------------------------------------
def test_a_runs_picture_has_one_linked_box_per_object_of_its_chain(demo: Run) -> None:
    bundle = run_bundle(demo.pk)
    nodes = svg_nodes(lineage_svg.run_picture(bundle))
    chain = [
        ("Issue", bundle["issue"]["id"]),
        *(("ContextPacket", p["id"]) for p in bundle["context_packets"]),
        ("ConstraintSnapshot", bundle["constraint_snapshot"]["id"]),
        *(("DoctrineRef", d["id"]) for d in bundle["doctrine_refs"]),
        ("Run", demo.pk),
        *(("Artifact", a["id"]) for a in bundle["artifacts"]),
    ]
    assert sorted((n.get("data-kind"), n.get("data-id")) for n in nodes) == sorted(chain)
    for node in nodes:
        model = {m.KIND: m for m in (Issue, Run, Artifact)}.get(node.get("data-kind"))
        if model is not None:
            assert node.get("href") == url(model, "change", node.get("data-id"))
        assert node.get("href", "").startswith("/admin/cwom/")
    run_node = next(n for n in nodes if n.get("data-kind") == "Run")
    assert run_node.get("data-state") == "done"


def test_a_run_with_100_artifacts_draws_its_newest_20_and_says_how_many(run_with_100_artifacts: Run) -> None:
    svg = lineage_svg.run_picture(run_bundle(run_with_100_artifacts.pk))
    artifacts = [n.get("data-id") for n in svg_nodes(svg) if n.get("data-kind") == "Artifact"]
    newest = Artifact.objects.filter(produced_by=run_with_100_artifacts).order_by("-created_at", "-id")
    assert artifacts == list(newest.values_list("id", flat=True)[:20])  # the run's outputs.artifacts (issue 16)
    assert "Artifacts (newest 20 of 100)" in svg
    root = parse_svg(svg)
    rows = lineage_svg.ROWS_PER_COLUMN
    assert (
        float(root.get("height"))
        <= 2 * lineage_svg.PAD + lineage_svg.HEADER + rows * (lineage_svg.NODE_HEIGHT + 8) + 40
    )
    assert "log &lt;99&gt; &amp; more" in svg and "<99>" not in svg  # every text escaped


def test_text_in_a_picture_is_escaped(db: None) -> None:
    issue = factories.issue(title='</text><script>alert("x")</script>')
    run = factories.run(issue)
    svg = lineage_svg.run_picture(run_bundle(run.pk))
    assert "<script>" not in svg
    parse_svg(svg)  # still well-formed


# --- the issue's picture ------------------------------------------------------------------------------
def test_an_issues_picture_shows_its_inputs_and_runs_linked(demo: Run) -> None:
    overview = issue_overview(demo.for_issue_id)
    nodes = svg_nodes(lineage_svg.issue_picture(overview))
    kinds = [n.get("data-kind") for n in nodes]
    assert kinds.count("Issue") == 1
    assert kinds.count("Run") == Run.objects.filter(for_issue_id=demo.for_issue_id).count()
    assert kinds.count("ContextPacket") == demo.for_issue.context_packets.count()
    assert {n.get("data-id") for n in nodes if n.get("data-kind") == "Run"} == set(
        Run.objects.filter(for_issue_id=demo.for_issue_id).values_list("id", flat=True)
    )


def test_an_issue_with_10000_runs_shows_its_newest_20_and_links_to_all(db: None, viewer_client: Client) -> None:
    issue = factories.issue()
    one = factories.run(issue, status="planned")
    first_count, _ = page_queries(viewer_client, url(Issue, "change", issue.pk))
    many("Run", [{"for_issue": issue.pk, "status": "planned"} for _ in range(9_999)])
    assert Run.objects.filter(for_issue=issue).count() == 10_000

    count, page = page_queries(viewer_client, url(Issue, "change", issue.pk))

    assert count == first_count  # the page's cost does not grow with the issue's runs
    nodes = svg_nodes(picture_in(page))
    newest = list(Run.objects.filter(for_issue=issue).order_by("-created_at", "-id").values_list("id", flat=True)[:20])
    assert [n.get("data-id") for n in nodes if n.get("data-kind") == "Run"] == newest[::-1]  # oldest of them first
    assert one.pk not in {n.get("data-id") for n in nodes}
    assert "20 of 10,000" in page and "all 10,000 runs" in page
    assert f"{url(Run, 'changelist')}?for_issue__id__exact={issue.pk}" in page
    assert "&quot;runs_total&quot;: 10000" in page  # the contract document holds the newest 20 and the total
    assert len(page) < 400_000


# --- pages and their query counts ---------------------------------------------------------------------
def test_a_run_page_costs_the_same_for_1_and_100_artifacts(demo: Run, viewer_client: Client) -> None:
    small, page = page_queries(viewer_client, url(Run, "change", demo.pk))
    assert len(svg_nodes(picture_in(page))) == 1 + 1 + 1 + 2 + 1 + 3  # issue, packet, snapshot, 2 doctrine, run, 3
    many("Artifact", [{"produced_by": demo.pk, "type": "log", "title": f"log {i}"} for i in range(100)])
    big, page = page_queries(viewer_client, url(Run, "change", demo.pk))
    assert len([n for n in svg_nodes(picture_in(page)) if n.get("data-kind") == "Artifact"]) == 20  # the newest
    # Session, user; the run joined to its issue, repo and snapshot; the viewer's permissions (2); the two
    # link inlines; the content types of inline rows; the chain (run_bundle: 8, loaded once for the picture,
    # the table, the contract document and the timeline's ids); stored artifacts; events.
    assert big == small == 18


def test_an_issue_page_costs_a_constant_number_of_queries(demo: Run, viewer_client: Client) -> None:
    count, page = page_queries(viewer_client, url(Issue, "change", demo.for_issue_id))
    assert picture_in(page)
    # Session, user; the issue joined to its repo and parent; permissions (2); the six link inlines; the
    # content types of inline rows; the overview (issue_overview: 6, once for the picture and the table);
    # the contract document (the issue and its ref lists); events.
    assert count == 21


def test_the_home_page_costs_the_same_whatever_the_runs(demo: Run, viewer_client: Client) -> None:
    small, page = page_queries(viewer_client, reverse("admin:index"))
    for _ in range(3):
        factories.run(status="planned")
    big, _ = page_queries(viewer_client, reverse("admin:index"))
    # Session, user, permissions (2), then cwom.stats.glance: status x failure category, runs per day,
    # executors, repos, their slugs.
    assert big == small == 9
    assert picture_in(page, "cwom-chart")


# --- the home page ------------------------------------------------------------------------------------
def test_every_number_on_the_home_page_links_to_the_runs_it_counts(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(reverse("admin:index")).content.decode()
    assert "Recent actions" not in page
    links = re.findall(r'<a href="(/admin/cwom/run/\?[^"]+)">([\d,]+)</a>', page)
    assert len(links) >= 6
    for href, number in links:
        listing = viewer_client.get(href.replace("&amp;", "&"))
        assert listing.status_code == 200, href
        shown = listing.context["cl"].result_count
        assert shown == int(number.replace(",", "")), (href, number, shown)


def test_the_home_page_counts_runs_by_status_failure_executor_repo_and_day(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(reverse("admin:index")).content.decode()
    failed = Run.objects.get(status="failed")
    assert failed.failure_category in page
    assert demo.repo.slug in page and demo.executor_runtime in page
    chart = parse_svg(picture_in(page, "cwom-chart"))
    bars = [a for a in chart.iter(f"{SVG}a")]
    assert len(bars) == 14
    today = datetime.now(UTC).date().isoformat()
    assert f"{today}: {Run.objects.count()} runs, 1 failed" in "".join(t.text or "" for t in chart.iter(f"{SVG}title"))


def test_runs_url_filters_by_time_in_utc() -> None:
    moment = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert runs_url(created_at__gte=moment) == "/admin/cwom/run/?created_at__gte=2026-12-04T12%3A00%3A00Z"


# --- readable pages -----------------------------------------------------------------------------------
def test_every_date_is_iso_8601_utc_with_its_age_as_a_tooltip(demo: Run, viewer_client: Client) -> None:
    for path in (url(Run, "change", demo.pk), url(Run, "changelist"), url(Event, "changelist")):
        page = viewer_client.get(path).content.decode()
        assert not re.search(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\.? \d{1,2}, \d{4}", page), path
        assert not re.search(r"\d[ap]\.m\.", page), path
        assert f'<time datetime="{utc(demo.created_at)}" title="' in page, path


def test_dates_read_the_same_everywhere() -> None:
    moment = datetime(2026, 12, 4, 12, 18, 5, 123456, tzinfo=UTC)
    assert utc(moment) == utc("2026-12-04T12:18:05.123456Z") == "2026-12-04T12:18:05Z"
    assert age(moment, now=moment + timedelta(hours=3)) == "3 h ago"
    assert age(moment, now=moment + timedelta(days=12)) == "12 days ago"
    assert age(moment, now=moment + timedelta(seconds=20)) == "just now"


def test_create_events_name_only_the_fields_they_set_and_changes_read_before_after() -> None:
    created = change_summary(
        "create",
        {
            "id": [None, "01JD0Z8K3M5Q7R9T1V3X5Z7RNN"],
            "title": [None, "Add"],
            "status": [None, "planned"],
            "parent": [None, None],
        },
    )
    assert created == "created with title, status"
    changed = change_summary("transition", {"status": ["running", "done"], "ended_at": [None, "2026-12-04T12:00:00Z"]})
    assert changed == "status: running → done; ended_at: ∅ → 2026-12-04T12:00:00Z"


def test_a_create_event_on_the_page_is_a_summary_not_a_list_of_nulls(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(url(Run, "change", demo.pk)).content.decode()
    assert "created with " in page
    assert "[null, null]" not in page and "∅ → ∅" not in page


def test_durations_and_costs_are_for_people(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(url(Run, "changelist")).content.decode()
    assert duration(demo.duration_s) in page
    assert usd(demo.cost_usd) in page
    assert usd(0.0042) == "$0.0042" and usd(1.25) == "$1.25" and usd(12345) == "$12,345"


def test_the_repo_filter_offers_slugs(demo: Run, viewer_client: Client) -> None:
    factories.run(factories.issue(factories.repo(slug="second-repo")), status="planned")  # a choice to make
    for model in (Run, Issue):
        page = viewer_client.get(url(model, "changelist")).content.decode()
        assert f"?repo__id__exact={demo.repo_id}" in page
        filter_link = re.search(rf'href="\?repo__id__exact={demo.repo_id}"[^>]*>([^<]+)<', page)
        assert filter_link and filter_link.group(1).strip() == demo.repo.slug


@pytest.mark.parametrize("typed", [str.lower, str.upper, lambda s: s[:13].lower() + s[13:]])
def test_the_object_index_finds_an_id_typed_in_any_letter_case(demo: Run, viewer_client: Client, typed: Any) -> None:
    found = viewer_client.get(reverse("admin:cwom_objectindex_changelist"), {"q": typed(demo.pk)})
    assert found.context["cl"].result_count == 1
    assert url(Run, "change", demo.pk) in found.content.decode()
