"""The execution endpoints: enqueue, cancel, artifact content. Three principals: writer, reader, outsider."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from rest_framework.test import APIClient

from cwom import shapes, spec, writes
from cwom.models import Event, Run
from execution import lifecycle, runner
from tests import factories
from tests.execution.helpers import artifacts_by_type, client_with, enqueue_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer() -> APIClient:
    return client_with(True)


@pytest.fixture
def reader() -> APIClient:
    return client_with(False)


@pytest.fixture
def outsider() -> APIClient:
    return client_with(None)


def test_enqueue_answers_202_with_refs_and_the_run_url(writer, dispatched, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = writer.post("/api/v1/enqueue", enqueue_body(), format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    run = Run.objects.get(pk=body["run"]["id"])
    assert run.status == "ready"
    assert body["issue"]["kind"] == "Issue" and body["constraint_snapshot"]["kind"] == "ConstraintSnapshot"
    assert body["context_packet"] == {
        "kind": "ContextPacket",
        "id": body["context_packet"]["id"],
        "role": "primary_context",
    }
    assert body["run_url"] == f"http://testserver/api/v1/runs/{run.pk}"
    # Location is a path on every 201/202 of the API; run_url is the absolute URL of the same run.
    assert response["Location"] == f"/api/v1/runs/{run.pk}"
    assert [m["args"] for m in dispatched] == [[run.pk]]
    principals = set(Event.objects.filter(object_id=run.pk).values_list("principal", flat=True))
    assert len(principals) == 1 and principals.pop().startswith("token:agent-")


def test_the_example_enqueue_request_is_accepted_as_written(writer, dispatched):
    # The request names the example repo by slug and the example doctrine ref by id: create both first.
    for kind in ("Repo", "DoctrineRef"):
        example = factories.example(kind)
        writes.create(kind, {k: v for k, v in example.items() if k not in ("created_at", "updated_at")})
    response = writer.post("/api/v1/enqueue", spec.example(spec.ENQUEUE_EXAMPLE), format="json")
    assert response.status_code == 202, response.json()
    run = Run.objects.get(pk=response.json()["run"]["id"])
    assert [ref["id"] for ref in shapes.dump(run)["inputs"]["doctrine_refs"]] == [
        factories.example("DoctrineRef")["id"]
    ]


def test_enqueue_errors_use_the_problem_format_with_contract_paths(writer, dispatched):
    response = writer.post("/api/v1/enqueue", enqueue_body(executor={"name": "teleport"}), format="json")
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "invalid_choice"
    assert problem["errors"][0]["path"] == "executor.name"
    assert dispatched == []


def test_enqueue_needs_a_read_write_token(reader, outsider, dispatched):
    assert reader.post("/api/v1/enqueue", enqueue_body(), format="json").status_code == 403
    assert outsider.post("/api/v1/enqueue", enqueue_body(), format="json").status_code == 401
    assert dispatched == []


def test_cancel_a_ready_run_is_200_canceled(writer, reader, dispatched):
    run = writer.post("/api/v1/enqueue", enqueue_body(), format="json").json()["run"]
    assert reader.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 403
    response = writer.post(f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    again = writer.post(f"/api/v1/runs/{run['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"


def test_cancel_a_running_run_is_202_requested(writer, dispatched):
    run_id = writer.post("/api/v1/enqueue", enqueue_body(), format="json").json()["run"]["id"]
    lifecycle.claim(run_id, "w:1")
    response = writer.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "running"
    assert Run.objects.get(pk=run_id).execution.cancel_requested_at is not None


def test_cancel_an_unknown_run_is_404(writer):
    assert writer.post("/api/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel").status_code == 404


def test_download_carries_the_digest(writer, reader, outsider, dispatched):
    run_id = writer.post("/api/v1/enqueue", enqueue_body(), format="json").json()["run"]["id"]
    runner.execute_run(run_id, worker="w:1")
    (log,) = artifacts_by_type(run_id)["log"]
    assert outsider.get(f"/api/v1/artifacts/{log.pk}/content").status_code == 401
    response = reader.get(f"/api/v1/artifacts/{log.pk}/content", HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == log.digest
    assert response["ETag"] == f'"{log.digest}"'
    assert base64.b64decode(response["Digest"].removeprefix("sha-256=")).hex() == log.digest[7:]
    assert response["Content-Type"].startswith("text/plain")
    cached = reader.get(f"/api/v1/artifacts/{log.pk}/content", HTTP_IF_NONE_MATCH=response["ETag"])
    assert cached.status_code == 304


def put_bytes(client: APIClient, artifact: Any, data: bytes, method: str = "put", **headers: Any) -> Any:
    return getattr(client, method)(
        f"/api/v1/artifacts/{artifact.pk}/content", data=data, content_type="text/plain", **headers
    )


@pytest.fixture
def bare_artifact(execution_settings: Any) -> Any:
    return factories.artifact(factories.started_run(), type="build", title="build log")


def test_upload_once_with_the_digest_computed(writer, reader, bare_artifact):
    data = b"compiled 42 files\n"
    assert put_bytes(reader, bare_artifact, data).status_code == 403
    response = put_bytes(writer, bare_artifact, data)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert body["size_bytes"] == len(data) and body["media_type"] == "text/plain"
    retry = put_bytes(writer, bare_artifact, data, method="post")
    assert retry.status_code == 200 and retry.json()["digest"] == body["digest"]
    other = put_bytes(writer, bare_artifact, b"other bytes", method="post")
    assert other.status_code == 409 and other.json()["code"] == "content_exists"
    download = reader.get(f"/api/v1/artifacts/{bare_artifact.pk}/content")
    assert b"".join(download.streaming_content) == data


def test_upload_with_a_wrong_declared_digest_is_refused(writer, bare_artifact):
    response = put_bytes(writer, bare_artifact, b"abc", HTTP_CONTENT_DIGEST="sha-256=:" + "A" * 43 + "=:")
    assert response.status_code == 422
    assert response.json()["code"] == "digest_mismatch"
    assert response.json()["errors"][0]["code"] == "digest_mismatch"
    assert writes.reload(bare_artifact).stored_name == ""
    ok = put_bytes(writer, bare_artifact, b"abc", HTTP_X_CWOM_DIGEST="sha256:" + hashlib.sha256(b"abc").hexdigest())
    assert ok.status_code == 201


def test_an_artifact_without_bytes_has_no_content(reader, bare_artifact):
    response = reader.get(f"/api/v1/artifacts/{bare_artifact.pk}/content")
    assert response.status_code == 404 and response.json()["code"] == "no_content"


def test_a_json_artifact_is_stored_as_bytes_not_parsed(writer, reader, bare_artifact):
    data = b'{"coverage": 0.93,\n "files": 42}'
    response = writer.put(f"/api/v1/artifacts/{bare_artifact.pk}/content", data=data, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["media_type"] == "application/json"
    assert b"".join(reader.get(f"/api/v1/artifacts/{bare_artifact.pk}/content").streaming_content) == data


def test_enqueue_honours_idempotency_key(writer, dispatched, django_capture_on_commit_callbacks):
    body = enqueue_body()
    with django_capture_on_commit_callbacks(execute=True):
        first = writer.post("/api/v1/enqueue", body, format="json", HTTP_IDEMPOTENCY_KEY="enqueue-1")
        second = writer.post("/api/v1/enqueue", body, format="json", HTTP_IDEMPOTENCY_KEY="enqueue-1")
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert Run.objects.filter(pk=first.json()["run"]["id"]).count() == 1
    assert len(dispatched) == 1


def test_enqueue_events_carry_the_declared_actor(writer, dispatched):
    actor = '{"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder 7"}'
    run_id = writer.post("/api/v1/enqueue", enqueue_body(), format="json", HTTP_X_CWOM_ACTOR=actor).json()["run"]["id"]
    assert Event.objects.get(object_id=run_id, action="create").actor["actor_id"] == "builder-7"
