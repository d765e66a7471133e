"""Builders and checks shared by the execution tests."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from cwom import spec
from cwom.models import ApiToken, Artifact, Event
from tests import factories

# The example enqueue request (cwom/spec/examples/enqueue-request.json), minus its doctrine ref, which
# names an object that does not exist in a test database.
EXAMPLE_ENQUEUE: dict[str, Any] = {
    key: value for key, value in spec.example(spec.ENQUEUE_EXAMPLE).items() if key != "doctrine_refs"
}


def enqueue_body(repo: Any = None, **overrides: Any) -> dict[str, Any]:
    """The example enqueue request, its issue in ``repo`` (created when not given), with ``overrides``."""
    body = copy.deepcopy(EXAMPLE_ENQUEUE)
    body["issue"]["repo"] = (repo or factories.repo()).slug
    body.update(overrides)
    return body


def stored_bytes(artifact: Artifact) -> bytes:
    with default_storage.open(artifact.stored_name, "rb") as handle:
        return handle.read()


def assert_digest_matches(artifact: Artifact) -> bytes:
    """The artifact's bytes, after checking its digest and size were computed from them."""
    data = stored_bytes(artifact)
    assert artifact.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert artifact.size_bytes == len(data)
    return data


def artifacts_by_type(run_id: str) -> dict[str, list[Artifact]]:
    found: dict[str, list[Artifact]] = {}
    for artifact in Artifact.objects.filter(produced_by_id=run_id).order_by("created_at", "id"):
        found.setdefault(artifact.type, []).append(artifact)
    return found


def trace_of(run_id: str) -> dict[str, Any]:
    (trace,) = artifacts_by_type(run_id)["trace"]
    return json.loads(assert_digest_matches(trace))


def status_moves(run_id: str) -> list[list[str]]:
    """The run's recorded status changes, in order."""
    return [
        event.changes["status"]
        for event in Event.objects.filter(object_id=run_id, action="transition").order_by("id")
        if "status" in event.changes
    ]


def client_with(can_write: bool | None) -> APIClient:
    """An API client holding a new token (read-write or read-only), or none at all (``None``)."""
    client = APIClient()
    if can_write is not None:
        _token, secret = ApiToken.issue(factories.unique("agent"), can_write=can_write)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
