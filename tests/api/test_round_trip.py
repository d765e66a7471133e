"""GET -> modify -> PATCH: a document read from the API can be changed and sent back whole.

Read-only fields (and, for an artifact, the fields fixed at creation) sent back unchanged are ignored; one
sent with another value is refused with 409 ``read_only_field``, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import problem

pytestmark = pytest.mark.django_db


def _draft_packet(make: Any) -> Any:
    return make.packet(make.issue(), sealed=False)


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document[part]
    document[last] = value


CASES: list[tuple[str, Callable[[Any], Any], str, Any]] = [
    ("repos", lambda make: make.repo(), "name", "Renamed"),
    ("issues", lambda make: make.issue(), "title", "Retitled"),
    ("context_packets", _draft_packet, "summary", "Redrafted."),
    ("runs", lambda make: make.run(), "plan.steps", ["look", "change"]),
    ("artifacts", lambda make: make.artifact(make.started_run()), "verification.status", "passed"),
]


@pytest.mark.parametrize(("path", "build", "field", "value"), CASES, ids=[case[0] for case in CASES])
def test_a_document_read_can_be_changed_and_sent_back_whole(writer, make, path, build, field, value):
    obj = build(make)
    document = writer.get(f"{path}/{obj.pk}").json()
    _set(document, field, value)

    response = writer.patch(f"{path}/{obj.pk}", document)

    assert response.status_code == 200, response.content[:600]
    changed = response.json()
    _set(document, field, value)
    assert {k: v for k, v in changed.items() if k != "updated_at"} == {
        k: v for k, v in document.items() if k != "updated_at"
    }


@pytest.mark.parametrize(("path", "build", "field", "value"), CASES, ids=[case[0] for case in CASES])
def test_a_read_only_field_sent_with_another_value_is_refused_naming_it(writer, make, path, build, field, value):
    obj = build(make)
    document = writer.get(f"{path}/{obj.pk}").json()
    document["created_at"] = "2020-01-01T00:00:00Z"

    response = writer.patch(f"{path}/{obj.pk}", document)

    assert response.status_code == 409, response.content[:600]
    body = problem(response)
    assert body["code"] == "read_only_field"
    assert body["errors"] == [
        {
            "path": "created_at",
            "code": "read_only_field",
            "message": "created_at is read-only (set by the service): send it unchanged or leave it out.",
        }
    ]


def test_a_changed_id_is_refused_naming_it(writer, make):
    repo = make.repo()
    document = writer.get(f"repos/{repo.pk}").json()
    document["id"] = make.repo().pk
    body = problem(writer.patch(f"repos/{repo.pk}", document))
    assert (body["status"], body["errors"][0]["path"], body["errors"][0]["code"]) == (409, "id", "read_only_field")


def test_a_changed_nested_read_only_field_is_refused_at_its_path(writer, make):
    run = make.started_run()
    document = writer.get(f"runs/{run.pk}").json()
    document["telemetry"]["started_at"] = "2020-01-01T00:00:00Z"
    body = problem(writer.patch(f"runs/{run.pk}", document))
    assert (body["status"], body["errors"][0]["path"]) == (409, "telemetry")


def test_an_artifact_field_fixed_at_creation_sent_unchanged_is_ignored_and_changed_is_refused(writer, make):
    artifact = make.artifact(make.started_run())
    document = writer.get(f"artifacts/{artifact.pk}").json()
    assert writer.patch(f"artifacts/{artifact.pk}", {"title": document["title"]}).status_code == 200
    body = problem(writer.patch(f"artifacts/{artifact.pk}", {"title": "Renamed"}))
    assert (body["status"], body["code"], body["errors"][0]["path"]) == (409, "read_only_field", "title")


def test_a_patch_of_read_only_fields_only_changes_nothing(writer, make):
    repo = make.repo()
    document = writer.get(f"repos/{repo.pk}").json()
    response = writer.patch(f"repos/{repo.pk}", {"created_at": document["created_at"], "id": repo.pk})
    assert response.status_code == 200
    assert response.json() == document
