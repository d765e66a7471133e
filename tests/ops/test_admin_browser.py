"""A person's view of the admin: headless Chromium logs in as a viewer, follows a run's chain, and finds
no control that would change anything.

Drives Debian's ``chromium`` package through Playwright with the system executable (no browser download).
Skips, saying why, where no browser can be had.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from cwom.models import Artifact, Run
from cwom.signals import VIEWERS_GROUP
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
