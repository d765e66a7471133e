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


def test_the_etag_changes_when_a_derived_link_does(writer, issue, make):
    before = writer.get(f"issues/{issue.pk}")["ETag"]
    make.run(issue, status="planned")
    assert writer.get(f"issues/{issue.pk}")["ETag"] != before


def test_a_run_transition_honours_if_match(writer, make):
    run = make.run(status="planned")
    stale = writer.get(f"runs/{run.pk}")["ETag"]
    writer.patch(f"runs/{run.pk}", {"plan": {"steps": ["a"]}})
    assert writer.patch(f"runs/{run.pk}", {"status": "ready"}, **{"If-Match": stale}).status_code == 412


def test_a_patch_of_an_unknown_object_is_404_even_with_if_match(writer):
    response = writer.patch("issues/01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ", {"status": "ready"}, **{"If-Match": '"x"'})
    assert response.status_code == 404
