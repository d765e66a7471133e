"""No lost updates: ETags on objects, If-Match on PATCH."""

from __future__ import annotations

import pytest

from tests.api.conftest import problem

pytestmark = pytest.mark.django_db


def test_a_patch_with_the_current_etag_succeeds_and_returns_the_new_one(writer, issue):
    etag = writer.get(f"issues/{issue.pk}")["ETag"]

    response = writer.patch(f"issues/{issue.pk}", {"status": "ready"}, **{"If-Match": etag})

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert writer.get(f"issues/{issue.pk}")["ETag"] == response["ETag"]


def test_a_patch_with_a_stale_etag_is_412_and_changes_nothing(writer, issue):
    stale = writer.get(f"issues/{issue.pk}")["ETag"]
    writer.patch(f"issues/{issue.pk}", {"priority": "P0"})

    response = writer.patch(f"issues/{issue.pk}", {"status": "ready"}, **{"If-Match": stale})

    assert response.status_code == 412
    body = problem(response)
    assert body["code"] == "precondition_failed"
    assert body["current_etag"] == response["ETag"]
    assert writer.get(f"issues/{issue.pk}").json()["status"] == "planned"


def test_if_match_star_and_lists_and_weak_tags_are_understood(writer, issue):
    etag = writer.get(f"issues/{issue.pk}")["ETag"]
    assert writer.patch(f"issues/{issue.pk}", {"priority": "P1"}, **{"If-Match": "*"}).status_code == 200
    etag = writer.get(f"issues/{issue.pk}")["ETag"]
    assert writer.patch(f"issues/{issue.pk}", {"priority": "P2"}, **{"If-Match": f'"x", W/{etag}'}).status_code == 200


def test_the_etag_stays_when_other_objects_are_created_for_the_object(writer, issue, make):
    """Issue 16: a run, a packet (which links itself to its issue) or an artifact made for an object leaves
    its ETag alone, so a client's If-Match PATCH on a busy issue is not refused for them."""
    before = writer.get(f"issues/{issue.pk}")
    run = make.run(issue, status="planned")
    make.packet(issue)
    after = writer.get(f"issues/{issue.pk}")
    assert after.json()["runs_total"] == 1 and after.json()["context_packets_total"] == 1
    assert after["ETag"] == before["ETag"]
    assert writer.patch(f"issues/{issue.pk}", {"priority": "P1"}, **{"If-Match": before["ETag"]}).status_code == 200
    started = make.started_run(issue_obj=issue)
    tag = writer.get(f"runs/{started.pk}")["ETag"]
    make.artifact(started)
    assert writer.get(f"runs/{started.pk}")["ETag"] == tag
    assert run.pk in [ref["id"] for ref in writer.get(f"issues/{issue.pk}").json()["runs"]]


def test_the_etag_changes_when_the_object_s_own_links_change(writer, issue, make):
    before = writer.get(f"issues/{issue.pk}")["ETag"]
    packet = make.packet(issue)
    response = writer.patch(f"issues/{issue.pk}", {"context_packets": {"remove": [packet.pk]}})
    assert response.status_code == 200, response.content
    assert response["ETag"] != before


def test_a_run_transition_honours_if_match(writer, make):
    run = make.run(status="planned")
    stale = writer.get(f"runs/{run.pk}")["ETag"]
    writer.patch(f"runs/{run.pk}", {"plan": {"steps": ["a"]}})
    assert writer.patch(f"runs/{run.pk}", {"status": "ready"}, **{"If-Match": stale}).status_code == 412


def test_a_patch_of_an_unknown_object_is_404_even_with_if_match(writer):
    response = writer.patch("issues/01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ", {"status": "ready"}, **{"If-Match": '"x"'})
    assert response.status_code == 404
