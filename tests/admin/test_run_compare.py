"""The admin's comparison of two runs: a run's page links to the previous run of its issue; the compare page
shows :func:`cwom.compare.diff_runs` section by section, takes any run in ``?with=``, refuses a bad or
unknown id with a message, and reads a fixed number of queries whatever the runs' sizes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cwom import shapes, writes
from cwom.models import Run
from tests import factories

pytestmark = pytest.mark.django_db


def compare_url(run: Run, other: Any = None) -> str:
    url = reverse("admin:cwom_run_compare", args=[run.pk])
    return url if other is None else f"{url}?with={other}"


def two_runs(artifacts: int = 1, doctrine: int = 1, new_text: str = "", snapshot: Any = None) -> tuple[Run, Run]:
    """Two runs of one issue, the second briefed otherwise (summary, instructions + ``new_text``,
    assumptions), with other doctrine, mode and artifacts (and ``snapshot``)."""
    issue = factories.issue()
    kept = [factories.doctrine() for _ in range(doctrine)]
    old_packet = factories.packet(
        issue, summary="The monitor polls every 30 s.\nIt logs to stdout.", instructions="Keep it small."
    )
    first = factories.started_run(
        issue_obj=issue,
        packets=[old_packet],
        inputs={"context_packets": [old_packet.pk], "doctrine_refs": [d.pk for d in kept]},
    )
    new_packet = factories.packet(
        issue,
        summary="The monitor polls every 10 s.\nIt logs to stdout." + new_text,
        instructions="Keep it small.",
        assumptions=["the monitor retries"],
    )
    gone = factories.doctrine()
    second = factories.started_run(
        issue_obj=issue,
        packets=[new_packet],
        mode="hybrid",
        inputs={
            "context_packets": [new_packet.pk],
            "doctrine_refs": [d.pk for d in kept] + [gone.pk],
            "constraint_snapshot": snapshot.pk if snapshot else None,
        },
    )
    factories.artifact(first, type="report", title="Review", digest="sha256:" + "a" * 64)
    factories.artifact(second, type="report", title="Review", digest="sha256:" + "b" * 64)
    with transaction.atomic():
        bodies = [{"produced_by": second.pk, "type": "log", "title": f"log {i}"} for i in range(artifacts)]
        writes.create_many("Artifact", [shapes.parse("Artifact", body, "in") for body in bodies])
    return first, second


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def test_a_runs_page_links_to_the_previous_run_of_its_issue(viewer_client: Client) -> None:
    first, second = two_runs()
    later_elsewhere = factories.started_run()  # another issue's run is never "the previous one"
    html = page(viewer_client, reverse("admin:cwom_run_change", args=[second.pk]))
    assert f'href="{compare_url(second, first.pk)}"' in html
    assert "Compare with the previous run of this issue" in html
    html = page(viewer_client, reverse("admin:cwom_run_change", args=[first.pk]))
    assert "cwom-compare-previous" not in html and "The first run of its issue" in html
    assert f'href="{compare_url(first)}"' in html
    assert "This is the first run of its issue" in page(viewer_client, compare_url(later_elsewhere))


def test_the_compare_page_shows_each_section_side_by_side_with_coloured_text_diffs(viewer_client: Client) -> None:
    first, second = two_runs()
    html = page(viewer_client, compare_url(second))  # no ?with=: the previous run of the issue
    statuses = dict(re.findall(r'id="section-(\w+)" data-status="(\w+)"', html))
    assert statuses == {
        "issue": "same",
        "repo": "same",
        "context_packets": "changed",
        "constraint_snapshot": "same",
        "doctrine_refs": "changed",
        "executor": "changed",
        "outcome": "changed",  # started at another moment
        "artifacts": "changed",
    }
    # Sections that changed are open; the same ones are folded.
    assert re.search(r'id="section-executor" data-status="changed" open>', html)
    assert re.search(r'id="section-issue" data-status="same">', html)
    assert '<div class="cwom-del">-The monitor polls every 30 s.</div>' in html
    assert '<div class="cwom-add">+The monitor polls every 10 s.</div>' in html
    assert '<div class="cwom-ctx"> It logs to stdout.</div>' in html
    assert '<div class="cwom-add">+ the monitor retries</div>' in html  # the list gained it
    assert "No field differs." in html  # neither run has a snapshot: the same
    assert re.search(r'<th><code>mode</code></th><td class="cwom-old">agent</td><td class="cwom-new">hybrid</td>', html)
    assert re.search(r'data-status="added">\s*<th><span class="cwom-badge cwom-added">added</span>', html)
    for run in (first, second):
        assert f'href="{reverse("admin:cwom_run_change", args=[run.pk])}"' in html


def test_any_run_can_be_compared_and_a_run_with_itself_is_the_same_everywhere(viewer_client: Client) -> None:
    first, second = two_runs()
    html = page(viewer_client, compare_url(second, second.pk.lower()))  # an id in any letter case
    assert "Nothing differs" in html
    assert set(re.findall(r'id="section-\w+" data-status="(\w+)"', html)) == {"same"}
    html = page(viewer_client, compare_url(first, second.pk))
    assert '<td class="cwom-old">hybrid</td><td class="cwom-new">agent</td>' in html  # a is the run given


def test_a_snapshot_only_one_run_has_is_said_so(viewer_client: Client) -> None:
    _first, second = two_runs(snapshot=factories.snapshot())
    html = page(viewer_client, compare_url(second))
    assert 'id="section-constraint_snapshot" data-status="added"' in html and "Only run b has one." in html


@pytest.mark.parametrize(
    ("typed", "status", "says"),
    [
        ("nope", 400, "is not a run id"),
        ("01" + "0" * 25, 400, "is not a run id"),
        ("<script>alert(1)</script>", 400, "&lt;script&gt;"),
        ("01" + "0" * 24, 404, "No run has the id 01" + "0" * 24),
    ],
)
def test_a_bad_or_unknown_id_is_a_clear_message(viewer_client: Client, typed: str, status: int, says: str) -> None:
    run = factories.started_run()
    html = page(viewer_client, f"{compare_url(run)}?with={typed}", status)
    assert says in html and 'class="errornote"' in html
    assert "<script>alert" not in html


def test_an_unknown_run_redirects_and_only_viewers_see_the_page(
    viewer_client: Client, outsider_client: Client, anonymous_client: Client
) -> None:
    run = factories.started_run()
    missing = reverse("admin:cwom_run_compare", args=["01" + "0" * 24])
    assert viewer_client.get(missing).status_code == 302  # the admin's "does not exist" redirect
    assert outsider_client.get(compare_url(run)).status_code == 403
    assert anonymous_client.get(compare_url(run)).status_code == 302
    assert viewer_client.post(compare_url(run)).status_code == 405


def queries(client: Client, url: str) -> int:
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as ctx:
        page(client, url)
    return len(ctx.captured_queries)


def test_the_compare_page_reads_a_fixed_number_of_queries_whatever_the_sizes(viewer_client: Client) -> None:
    small = two_runs(artifacts=1, doctrine=1)
    large = two_runs(artifacts=300, doctrine=40)
    assert queries(viewer_client, compare_url(small[1])) == queries(viewer_client, compare_url(large[1]))
    with_small = queries(viewer_client, compare_url(small[1], small[0].pk))
    assert with_small == queries(viewer_client, compare_url(large[1], large[0].pk))
    assert page(viewer_client, compare_url(large[1])).count('class="cwom-item') >= 300
