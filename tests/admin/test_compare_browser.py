"""A person comparing two runs in the admin: headless Chromium follows a run's "compare with the previous
run" link; at 1024 and 1400 px nothing on the compare page is cut off, the page is no wider than the window,
changed sections are open and the same ones folded, and text diffs are coloured (added and removed lines
on different backgrounds). Screenshots: ``var/screenshots/compare-<width>.png``.

The browser and the helpers are those of :mod:`tests.ops.test_admin_browser`; skips where no browser can
be had.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from cwom.models import Run
from cwom.signals import VIEWERS_GROUP
from tests import factories
from tests.admin.test_run_compare import two_runs
from tests.ops.conftest import PASSWORD
from tests.ops.helpers import wipe_cwom_tables
from tests.ops.test_admin_browser import CHROMIUM, CLIPPED_JS, SCREENSHOTS, WIDTHS, signed_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
    ),
]

LONG_WORD = "x" * 300  # one word wider than any window: it must wrap, not widen the page
BACKGROUNDS_JS = """() => ['cwom-add', 'cwom-del', 'cwom-ctx'].map(
  css => getComputedStyle(document.querySelector('.cwom-textdiff .' + css)).backgroundColor)"""
OPEN_JS = """() => Object.fromEntries([...document.querySelectorAll('details.cwom-diff-section')].map(
  d => [d.id, d.open]))"""


@pytest.fixture
def runs(transactional_db: None, storage: Any) -> Iterator[tuple[Run, Run]]:
    """Two runs of one issue whose packets, snapshots and artifacts differ (long texts and values
    included), and a viewer account, committed for the live server; emptied afterwards."""
    snapshot = factories.snapshot(
        constraints={"time": {"available_minutes": 45}, "tools": {"allowed": ["git", "make", LONG_WORD]}}
    )
    long_text = f"\nA long line: {LONG_WORD} " + "and more words " * 30
    first, second = two_runs(artifacts=30, doctrine=3, new_text=long_text, snapshot=snapshot)
    user = User.objects.create_user("maria", "maria@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWERS_GROUP))
    yield first, second
    wipe_cwom_tables()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_compare_page_is_whole_and_readable_at_1024_and_1400_px(
    runs: tuple[Run, Run], width: int, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = runs
    run_url = reverse("admin:cwom_run_change", args=[second.pk])
    with signed_in_page(live_server, width, monkeypatch, run_url) as page:
        page.get_by_role("link", name="Compare with the previous run of this issue").click()
        page.wait_for_url(f"**/compare/?with={first.pk}")
        page.screenshot(path=str(SCREENSHOTS / f"compare-{width}.png"), full_page=True)

        assert page.evaluate(CLIPPED_JS, "#cwom-compare") == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        opened = page.evaluate(OPEN_JS)
        assert opened["section-context_packets"] and opened["section-executor"] and opened["section-artifacts"]
        assert not opened["section-issue"] and not opened["section-repo"]
        added, removed, context = page.evaluate(BACKGROUNDS_JS)
        assert len({added, removed, context}) == 3, (added, removed, context)

        # A folded section opens with a click, and is whole too.
        page.locator("#section-issue > summary").click()
        assert page.evaluate(OPEN_JS)["section-issue"]
        assert page.evaluate(CLIPPED_JS, "#cwom-compare") == []

        # A mistyped id answers a message on the same page, not an error page.
        page.fill("#cwom-with", "not-a-run")
        page.click(".cwom-compare-form input[type=submit]")
        page.wait_for_url("**/compare/?with=not-a-run")
        assert "is not a run id" in page.locator(".errornote").inner_text()
