"""Artifact bytes kept by the service, through Django's storage API (``default_storage``).

Whoever stores the bytes, the service computes ``digest`` (``sha256:<hex>``) and ``size_bytes`` from
them. Bytes are attached to an artifact once: by the worker when it records an output, or by an agent
uploading to ``/api/v1/artifacts/{id}/content``; a declared digest that does not match is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
from collections.abc import Sequence
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from cwom import shapes, writes
from cwom.enums import Kind
from cwom.ids import new_ulid
from cwom.models import Artifact, Run

from .config import conf
from .executors.base import ArtifactSpec

CONTENT_PATH = "/api/v1/artifacts/{id}/content"
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 64 * 1024


class ContentConflict(Exception):
    """The artifact already has stored bytes (they are attached once)."""

    code = "content_exists"


class ContentTooLarge(Exception):
    """The upload is larger than ``CWOM_ARTIFACT_MAX_BYTES``."""

    code = "payload_too_large"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def content_uri(artifact_id: str) -> str:
    """Where the service serves an artifact's bytes."""
    return CONTENT_PATH.format(id=artifact_id)


def parse_declared_digest(value: str) -> str:
    """A declared digest as ``sha256:<hex>``. Accepts that form, ``sha-256=<base64>`` (RFC 3230 Digest)
    and ``sha-256=:<base64>:`` (RFC 9530 Content-Digest); anything else is a ValidationError."""
    text = value.strip()
    if SHA256_RE.match(text.lower()):
        return text.lower()
    for item in text.split(","):
        algorithm, _, encoded = item.strip().partition("=")
        if algorithm.strip().lower() == "sha-256" and encoded:
            try:
                raw = base64.b64decode(encoded.strip().strip(":"), validate=True)
            except (binascii.Error, ValueError):
                break
            if len(raw) == 32:
                return "sha256:" + raw.hex()
    raise ValidationError(
        {"digest": [ValidationError("Give the digest as sha256:<64 hex> or sha-256=<base64>.", code="invalid")]}
    )


def http_digest_headers(digest: str) -> dict[str, str]:
    """``Digest``, ``Content-Digest`` and ``ETag`` headers for a ``sha256:<hex>`` digest."""
    b64 = base64.b64encode(bytes.fromhex(digest.split(":", 1)[1])).decode()
    return {"Digest": f"sha-256={b64}", "Content-Digest": f"sha-256=:{b64}:", "ETag": f'"{digest}"'}


def storage_name(run_id: str, artifact_id: str) -> str:
    return f"runs/{run_id}/{artifact_id}"


def create_with_content(
    run: Run,
    *,
    type: str,  # noqa: A002 - the contract's field name
    title: str,
    content: bytes,
    media_type: str | None = None,
    preview: str | None = None,
    saved: list[str] | None = None,
) -> Artifact:
    """Store ``content`` and record an Artifact of ``run`` for it (call inside the caller's transaction).

    The stored name is appended to ``saved`` first, so the caller can delete the bytes if its
    transaction rolls back.
    """
    artifact_id = new_ulid()
    name = default_storage.save(storage_name(run.pk, artifact_id), ContentFile(content))
    if saved is not None:
        saved.append(name)
    body: dict[str, Any] = {
        "id": artifact_id,
        "produced_by": run.pk,
        "type": type,
        "title": title[:500],
        "uri": content_uri(artifact_id),
        "digest": sha256_digest(content),
        "size_bytes": len(content),
        "media_type": media_type or "application/octet-stream",
        "preview": preview,
    }
    parsed = shapes.parse(Kind.ARTIFACT, body)
    parsed.columns["stored_name"] = name
    artifact: Artifact = writes.create_parsed(parsed)  # type: ignore[assignment]
    return artifact


def create_many(
    run: Run, items: Sequence[ArtifactSpec], saved: list[str], own: Sequence[ArtifactSpec] = ()
) -> list[Artifact]:
    """Record the artifacts ``items`` of ``run``, then ``own`` (the worker's own: its log, its trace), through
    :func:`cwom.writes.create_many` (their index rows, rows and create events in one statement on PostgreSQL, three
    elsewhere), storing the bytes of each once they are found valid; call inside the caller's transaction, holding
    ``run`` locked (it answers the artifacts' run rules: no query). Stored names are appended to ``saved`` first.

    The worker's bulk form of :func:`create_with_content` (and of a link artifact): each body of ``items`` (an
    executor's) is parsed as a create body of the contract, each of ``own`` loaded by the shape as the worker wrote
    it (``shapes.parse_own``); every artifact is validated by the model layer.
    """
    items = [*items, *own]
    if not items:
        return []
    bodies: list[dict[str, Any]] = []
    for item in items:
        body: dict[str, Any] = {"produced_by": run.pk, "type": item.type, "title": item.title[:500]}
        if item.content is not None:
            artifact_id = new_ulid()
            body.update(
                id=artifact_id,
                uri=content_uri(artifact_id),
                digest=sha256_digest(item.content),
                size_bytes=len(item.content),
                media_type=item.media_type or "application/octet-stream",
                preview=item.preview,
            )
        else:
            fields = {"uri": item.uri, "digest": item.digest, "media_type": item.media_type, "preview": item.preview}
            body.update({k: v for k, v in fields.items() if v is not None})
        bodies.append(body)
    known = {run.pk: Kind.RUN}
    executors = len(items) - len(own)
    parsed = [shapes.parse(Kind.ARTIFACT, body, known=known) for body in bodies[:executors]]
    parsed += [shapes.parse_own(Kind.ARTIFACT, body, known) for body in bodies[executors:]]

    def store(artifacts: list[Artifact]) -> None:
        for artifact, item in zip(artifacts, items, strict=True):
            if item.content is not None:
                artifact.stored_name = default_storage.save(
                    storage_name(run.pk, artifact.pk), ContentFile(item.content)
                )
                saved.append(artifact.stored_name)

    created: list[Artifact] = writes.create_many(Kind.ARTIFACT, parsed, held=[run], drawn_ids=True, before_write=store)
    return created


def delete_stored(names: list[str]) -> None:
    """Best-effort removal of bytes whose artifact rows were never committed."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            pass


def attach_content(
    artifact_id: str, stream: IO[bytes], *, declared_digest: str | None = None, media_type: str | None = None
) -> tuple[Artifact, bool]:
    """Store uploaded bytes for an artifact that has none; returns (the artifact reloaded, stored now?).

    The same bytes uploaded again are a no-op (a safe retry: ``False``). Refuses with ValidationError (code
    ``digest_mismatch``) bytes that do not match a digest declared in the request or on the artifact,
    with ContentConflict other bytes for an artifact that has some, with ContentTooLarge past the size cap.
    Artifact.DoesNotExist for an unknown id.
    """
    artifact = Artifact.objects.get(pk=artifact_id)
    cap = int(conf()["artifact_max_bytes"])
    expected = [parse_declared_digest(declared_digest)] if declared_digest else []
    if artifact.digest and SHA256_RE.match(artifact.digest) and not artifact.stored_name:
        expected.append(artifact.digest)
    hasher = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > cap:
                raise ContentTooLarge(f"Artifact content is limited to {cap} bytes.")
            hasher.update(chunk)
            spool.write(chunk)
        digest = "sha256:" + hasher.hexdigest()
        for want in expected:
            if want != digest:
                raise ValidationError(
                    {
                        "digest": [
                            ValidationError(
                                "The bytes' digest is %(actual)s, not the declared %(declared)s.",
                                code="digest_mismatch",
                                params={"actual": digest, "declared": want},
                            )
                        ]
                    }
                )
        if artifact.stored_name:
            return _already_stored(artifact, digest), False
        spool.seek(0)
        name = default_storage.save(storage_name(artifact.produced_by_id, artifact.pk), File(spool))
    try:
        with transaction.atomic():
            locked = Artifact.objects.select_for_update().get(pk=artifact_id)
            if locked.stored_name:
                delete_stored([name])
                return _already_stored(locked, digest), False
            locked.stored_name = name
            locked.digest = digest
            locked.size_bytes = size
            locked.media_type = media_type or locked.media_type or "application/octet-stream"
            locked.full_clean()
            locked.save()
    except BaseException:
        delete_stored([name])
        raise
    return writes.reload(locked), True


def _already_stored(artifact: Artifact, digest: str) -> Artifact:
    if artifact.digest != digest:
        raise ContentConflict(f"Artifact {artifact.pk} already has other stored content; it is attached once.")
    return writes.reload(artifact)


def open_content(artifact: Artifact) -> IO[bytes]:
    """The stored bytes of ``artifact`` (FileNotFoundError when it has none)."""
    if not artifact.stored_name:
        raise FileNotFoundError(f"Artifact {artifact.pk} has no stored content.")
    return default_storage.open(artifact.stored_name, "rb")
