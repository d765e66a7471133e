"""Artifact bytes: stored once through the storage API, digest and size computed, mismatches refused."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from django.core.exceptions import ValidationError

from cwom.models import Event
from execution import content
from tests import factories
from tests.execution.helpers import assert_digest_matches

pytestmark = pytest.mark.django_db
DATA = b"build output\n" * 100
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def artifact(execution_settings):
    return factories.artifact(factories.started_run(), type="build", title="build log")


def test_uploaded_bytes_get_their_digest_and_size_computed(artifact):
    stored, created = content.attach_content(artifact.pk, io.BytesIO(DATA), media_type="text/plain")
    assert created
    assert assert_digest_matches(stored) == DATA
    assert (stored.digest, stored.size_bytes, stored.media_type) == (DIGEST, len(DATA), "text/plain")
    assert Event.objects.filter(object_id=artifact.pk, action="update", changes__has_key="stored_name").exists()


@pytest.mark.parametrize(
    "declared",
    [
        DIGEST,
        DIGEST.upper().replace("SHA256", "sha256"),
        "sha-256=" + base64.b64encode(bytes.fromhex(DIGEST[7:])).decode(),
    ],
)
def test_a_matching_declared_digest_is_accepted_in_any_spelling(artifact, declared):
    assert content.attach_content(artifact.pk, io.BytesIO(DATA), declared_digest=declared)[0].digest == DIGEST


def test_a_declared_digest_that_does_not_match_is_refused(artifact):
    with pytest.raises(ValidationError) as excinfo:
        content.attach_content(artifact.pk, io.BytesIO(DATA), declared_digest="sha256:" + "0" * 64)
    assert [e.code for e in excinfo.value.error_dict["digest"]] == ["digest_mismatch"]
    artifact.refresh_from_db()
    assert artifact.stored_name == "" and artifact.digest is None


def test_the_digest_on_the_artifact_must_match_too(execution_settings):
    artifact = factories.artifact(factories.started_run(), digest="sha256:" + "1" * 64)
    with pytest.raises(ValidationError):
        content.attach_content(artifact.pk, io.BytesIO(DATA))


def test_bytes_are_attached_once_and_the_same_bytes_again_are_a_no_op(artifact):
    content.attach_content(artifact.pk, io.BytesIO(DATA))
    again, created = content.attach_content(artifact.pk, io.BytesIO(DATA))
    assert not created and again.digest == DIGEST
    with pytest.raises(content.ContentConflict):
        content.attach_content(artifact.pk, io.BytesIO(b"other"))


def test_uploads_are_size_capped(artifact, execution_settings):
    execution_settings["artifact_max_bytes"] = 10
    with pytest.raises(content.ContentTooLarge):
        content.attach_content(artifact.pk, io.BytesIO(DATA))


def test_an_unreadable_digest_is_a_validation_error():
    with pytest.raises(ValidationError):
        content.parse_declared_digest("md5=abc")


def test_http_headers_carry_the_digest():
    headers = content.http_digest_headers(DIGEST)
    assert headers["ETag"] == f'"{DIGEST}"'
    assert base64.b64decode(headers["Digest"].removeprefix("sha-256=")).hex() == DIGEST[7:]
