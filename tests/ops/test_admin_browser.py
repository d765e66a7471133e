"""A person's view of the admin: headless Chromium logs in as a viewer, follows a run's chain, and finds
no control that would change anything; at 1024 and 1400 px, nothing on a run page, an issue page or the home
page is cut off, and every box of a lineage picture links to its object. Screenshots of every page looked at
are saved under ``var/screenshots/`` (``<page>-<width>.png``) for a person to look at after a CI run.

Drives Debian's ``chromium`` package through Playwright with the system executable (no browser download).
Skips, saying why, where no browser can be had.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import transaction

from cwom import shapes, writes
from cwom.lineage import issue_overview, run_bundle
from cwom.models import Artifact, Run
from cwom.signals import VIEWERS_GROUP
from tests import factories
from tests.ops.conftest import PASSWORD
from tests.ops.helpers import wipe_cwom_tables

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
    ),
]


@pytest.fixture
def chain(transactional_db: None, storage: Any) -> Iterator[Run]:
    """The demo chain and a viewer account, committed so the live server sees them; emptied afterwards
    (the guard triggers would refuse the test database's own flush)."""
    call_command("cwom_demo", stdout=io.StringIO())
    user = User.objects.create_user("maria", "maria@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWERS_GROUP))
    yield Run.objects.get(status="done")
    wipe_cwom_tables()


def test_a_viewer_follows_a_run_to_its_issue_and_an_artifact_and_can_change_nothing(
    chain: Run, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    run_url = f"/admin/cwom/run/{chain.pk}/change/"
    issue_url = f"/admin/cwom/issue/{chain.for_issue_id}/change/"
    artifact = Artifact.objects.filter(produced_by=chain).exclude(digest=None).order_by("created_at").first()
    artifact_url = f"/admin/cwom/artifact/{artifact.pk}/change/"
    issue_title = chain.for_issue.title
    # Playwright's sync API runs an event loop in this thread; the ORM is done with before it starts.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next={run_url}")
            page.fill("#id_username", "maria")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"**{run_url}")

            chain_table = page.locator("table.cwom-chain")
            assert chain_table.count() == 1
            assert artifact.digest in chain_table.inner_text()
            assert_read_only(page)

            chain_table.locator(f'a[href="{issue_url}"]').first.click()
            page.wait_for_url(f"**{issue_url}")
            assert issue_title in page.content()
            assert page.locator(f'a[href="{run_url}"]').count() >= 1  # the issue lists its runs
            assert_read_only(page)

            page.go_back()
            page.wait_for_url(f"**{run_url}")
            page.locator("table.cwom-chain").locator(f'a[href="{artifact_url}"]').first.click()
            page.wait_for_url(f"**{artifact_url}")
            assert artifact.title in page.content()
            assert_read_only(page)
        finally:
            browser.close()


def assert_read_only(page: Any) -> None:
    """No save, save-and-continue, add-another or delete control anywhere on the page."""
    for selector in (
        '[name="_save"]',
        '[name="_continue"]',
        '[name="_addanother"]',
        "a.deletelink",
        'select[name="action"]',
    ):
        assert page.locator(selector).count() == 0, selector
    assert page.get_by_role("button", name="Save").count() == 0
    assert page.get_by_role("link", name="Delete").count() == 0


# --- pictures and readable pages, at two window widths ---------------------------------------------------
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WIDTHS = (1024, 1400)
# The parts of a page a person reads: the chain and its picture, an issue's lineage and runs, the timeline,
# the home page's numbers and chart.
REGIONS = "fieldset.cwom-wide, #cwom-glance"
# Every element in those parts whose content is wider than its box, and whose box does not scroll.
CLIPPED_JS = """regions => {
  const clipped = [];
  for (const region of document.querySelectorAll(regions)) {
    for (const el of [region, ...region.querySelectorAll('*')]) {
      if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;  // inside a picture: its own box
      const style = getComputedStyle(el);
      if (style.display === 'inline' || el.clientWidth === 0) continue;
      const scrolls = ['auto', 'scroll'].includes(style.overflowX);
      if (el.scrollWidth > el.clientWidth + 1 && !scrolls) {
        clipped.push(`${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className} ` +
                     `${el.scrollWidth} > ${el.clientWidth} (${style.overflowX})`);
      }
    }
  }
  return clipped;
}"""
NODES_JS = """() => [...document.querySelectorAll('svg.cwom-lineage a.lineage-node')].map(a => ({
  kind: a.dataset.kind, id: a.dataset.id, href: a.getAttribute('href')}))"""


@pytest.fixture
def pages(chain: Run) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each page to look at: its URL and the (kind, id) of every object its picture must draw.

    The demo's run and issue, a run with 100 artifacts, an issue with 10,000 runs (its newest 20 drawn).
    """
    bundle = run_bundle(chain.pk)
    run_chain = [
        ("Issue", chain.for_issue_id),
        *(("ContextPacket", p["id"]) for p in bundle["context_packets"]),
        *([("ConstraintSnapshot", bundle["constraint_snapshot"]["id"])] if bundle["constraint_snapshot"] else []),
        *(("DoctrineRef", d["id"]) for d in bundle["doctrine_refs"]),
        ("Run", chain.pk),
        *(("Artifact", a["id"]) for a in bundle["artifacts"]),
    ]
    overview = issue_overview(chain.for_issue_id)
    issue_chain = [
        ("Issue", chain.for_issue_id),
        *(("ContextPacket", p["id"]) for p in overview["context_packets"]),
        *(("ConstraintSnapshot", s["id"]) for s in overview["constraint_snapshots"]),
        *(("DoctrineRef", d["id"]) for d in overview["doctrine_refs"]),
        *(("Run", r.pk) for r in overview["runs"]),
    ]
    big_run = factories.started_run()
    with transaction.atomic():
        bodies = [{"produced_by": big_run.pk, "type": "log", "title": f"log {i}"} for i in range(100)]
        writes.create_many("Artifact", [shapes.parse("Artifact", body, "in") for body in bodies])
    big_bundle = run_bundle(big_run.pk)
    busy_issue = factories.issue(title="An issue retried ten thousand times")
    with transaction.atomic():
        bodies = [{"for_issue": busy_issue.pk, "status": "planned"} for _ in range(10_000)]
        writes.create_many("Run", [shapes.parse("Run", body, "in") for body in bodies])
    newest = Run.objects.filter(for_issue=busy_issue).order_by("-created_at", "-id").values_list("id", flat=True)[:20]
    return {
        "run": (f"/admin/cwom/run/{chain.pk}/change/", run_chain),
        "issue": (f"/admin/cwom/issue/{chain.for_issue_id}/change/", issue_chain),
        "home": ("/admin/", []),
        "run-100-artifacts": (
            f"/admin/cwom/run/{big_run.pk}/change/",
            [
                ("Issue", big_run.for_issue_id),
                *(("ContextPacket", p["id"]) for p in big_bundle["context_packets"]),
                ("Run", big_run.pk),
                *(("Artifact", a["id"]) for a in big_bundle["artifacts"]),
            ],
        ),
        "issue-10000-runs": (
            f"/admin/cwom/issue/{busy_issue.pk}/change/",
            [("Issue", busy_issue.pk), *(("Run", run_id) for run_id in newest)],
        ),
    }


@contextmanager
def signed_in_page(live_server: Any, width: int, monkeypatch: pytest.MonkeyPatch, next_path: str) -> Iterator[Any]:
    """A headless Chromium page ``width`` px wide, signed in to the admin as the viewer ``maria``, at
    ``next_path``; screenshots go to :data:`SCREENSHOTS`. Skips where playwright is not installed."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{live_server.url}/admin/login/?next={next_path}")
            page.fill("#id_username", "maria")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"**{next_path}")
            yield page
        finally:
            browser.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_pictures_and_pages_are_whole_at_1024_and_1400_px_and_every_box_links_to_its_object(
    pages: dict[str, tuple[str, list[tuple[str, str]]]], width: int, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with signed_in_page(live_server, width, monkeypatch, "/admin/") as page:
        for name, (path, expected) in pages.items():
            page.goto(f"{live_server.url}{path}")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)

            assert page.evaluate(CLIPPED_JS, REGIONS) == [], name
            # Wide content scrolls inside its box: the page itself never gets wider than the window.
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            nodes = page.evaluate(NODES_JS)
            assert sorted((n["kind"], n["id"]) for n in nodes) == sorted(expected), name
            assert_links_open(page, live_server.url, [n["href"] for n in nodes])
            if name == "home":
                assert page.locator("#cwom-glance").count() == 1
                assert page.get_by_text("Recent actions").count() == 0
                bars = page.locator("svg.cwom-chart a").evaluate_all("bars => bars.map(a => a.getAttribute('href'))")
                assert len(bars) == 14
                assert_links_open(page, live_server.url, bars)
                numbers = page.locator("#cwom-glance td a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
                assert numbers
                assert_links_open(page, live_server.url, numbers)

        # A box in the picture is a link a person can click.
        page.goto(f"{live_server.url}{pages['run'][0]}")
        page.locator('svg.cwom-lineage a.lineage-node[data-kind="Issue"]').click()
        page.wait_for_url(f"**{pages['issue'][0]}")


def assert_links_open(page: Any, base: str, hrefs: list[str]) -> None:
    """Every link answers 200 to the logged-in viewer (a sample of at most 30, first and last included)."""
    if len(hrefs) > 30:
        hrefs = [*hrefs[:15], *hrefs[-15:]]
    for href in hrefs:
        assert href.startswith("/admin/"), href
        response = page.request.get(f"{base}{href}")
        assert response.status == 200, href
