"""Three principals: a writer, a read-only reader, an outsider; sessions; throttling; the audit trail."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from cwom.models import ApiToken, Event
from tests.api.conftest import Api, problem

pytestmark = pytest.mark.django_db

READS = ["repos", "issues", "context_packets", "constraint_snapshots", "doctrine_refs", "runs", "artifacts", "events"]
WRITES = ["repos", "issues", "context_packets", "constraint_snapshots", "doctrine_refs", "runs", "artifacts"]


@pytest.mark.parametrize("path", READS)
def test_an_outsider_cannot_read(outsider, path):
    response = outsider.get(path)

    assert response.status_code == 401
    assert problem(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="cwom"'


@pytest.mark.parametrize("path", WRITES)
def test_an_outsider_cannot_write(outsider, path):
    assert outsider.post(path, {}).status_code == 401


@pytest.mark.parametrize("path", READS)
def test_a_reader_reads(reader, path):
    assert reader.get(path).status_code == 200


@pytest.mark.parametrize("path", WRITES)
def test_a_reader_cannot_write(reader, path):
    response = reader.post(path, {})
    assert response.status_code == 403
    assert problem(response)["code"] == "read_only"


def test_a_reader_cannot_patch_seal_or_transition(reader, make):
    run = make.run(status="planned")
    packet = make.packet(run.for_issue, sealed=False)
    assert reader.patch(f"runs/{run.pk}", {"status": "ready"}).status_code == 403
    assert reader.post(f"context_packets/{packet.pk}/seal").status_code == 403


def test_an_outsider_reaches_health_schema_and_docs(outsider):
    for path in ("healthz", "readyz", "schema/", "docs/", "redoc/"):
        assert outsider.get(path).status_code == 200, path


def test_the_token_scheme_is_accepted_too(writer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {writer.secret}")
    assert client.get("/api/v1/repos").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer cwom_nope_nope", "Bearer", "Bearer a b", "Bearer not-a-cwom-token", "Token cwom_\u00e9"],
)
def test_a_bad_token_is_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/repos")
    assert response.status_code == 401
    assert problem(response)["code"] == "authentication_failed"


def test_a_revoked_token_is_refused(db):
    token, secret = ApiToken.issue("soon-gone", can_write=True)
    token.revoke()
    assert Api(secret).get("repos").status_code == 401


def test_a_token_records_when_it_was_last_used(writer):
    writer.get("repos")
    assert ApiToken.objects.get(name="writer-agent").last_used_at is not None


def test_every_event_records_the_authenticated_principal(writer, repo):
    created = writer.post("issues", {"repo": repo.pk, "title": "t"}).json()
    writer.patch(f"issues/{created['id']}", {"status": "ready"})

    principals = set(Event.objects.filter(object_id=created["id"]).values_list("principal", flat=True))

    assert principals == {"token:writer-agent"}


def test_the_declared_actor_comes_from_the_header(writer, issue):
    actor = {"actor_kind": "human", "actor_id": "maria", "display": "Maria"}
    writer.patch(f"issues/{issue.pk}", {"status": "ready"}, **{"X-CWOM-Actor": json.dumps(actor)})
    assert Event.objects.filter(object_id=issue.pk, action="update").get().actor == actor


def test_the_declared_actor_defaults_to_the_body_created_by(writer, repo):
    actor = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder"}
    created = writer.post("issues", {"repo": repo.pk, "title": "t", "created_by": actor}).json()
    assert Event.objects.get(object_id=created["id"]).actor == actor


def test_a_malformed_actor_header_is_400(writer, issue):
    response = writer.patch(f"issues/{issue.pk}", {"status": "ready"}, **{"X-CWOM-Actor": "{nope"})
    assert problem(response)["code"] == "invalid_actor"


def test_a_superuser_session_may_write_and_a_plain_session_may_only_read(db):
    user_model = get_user_model()
    admin = user_model.objects.create_superuser("root", "root@example.com", "pw-1234567")
    viewer = user_model.objects.create_user("viewer", "viewer@example.com", "pw-1234567")
    as_admin, as_viewer = APIClient(), APIClient()
    as_admin.force_login(admin)
    as_viewer.force_login(viewer)

    assert as_viewer.get("/api/v1/repos").status_code == 200
    assert as_viewer.post("/api/v1/repos", {"name": "x", "slug": "x"}, format="json").status_code == 403
    created = as_admin.post("/api/v1/repos", {"name": "x", "slug": "x"}, format="json")
    assert created.status_code == 201
    assert Event.objects.get(object_id=created.json()["id"]).principal == "user:root"


def test_a_principal_over_its_rate_is_throttled_with_retry_after(writer, reader, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": "3/min"}}

    statuses = [writer.get("repos").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = writer.get("repos")
    assert problem(response)["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1
    assert reader.get("repos").status_code == 200  # counted per principal
