"""``manage.py cwom_verify_artifacts``: re-hash stored artifact bytes and report any mismatch."""

from __future__ import annotations

import hashlib
from argparse import ArgumentParser
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import CommandError

from cwom.management.base import CwomCommand, Progress, positive_int
from cwom.models import Artifact
from cwom.portability.exporting import keyset

READ_CHUNK = 1024 * 1024


def hash_stored(name: str, algorithm: str) -> tuple[str, int]:
    """(hex digest, size) of the stored bytes ``name``, read in chunks."""
    hasher = hashlib.new(algorithm)
    size = 0
    with default_storage.open(name, "rb") as stream:
        while chunk := stream.read(READ_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def check(artifact: Artifact) -> str | None:
    """Why ``artifact``'s stored bytes do not match its record, or None when they do."""
    algorithm, _, expected = (artifact.digest or "").partition(":")
    if algorithm not in hashlib.algorithms_guaranteed or not expected:
        return f"digest {artifact.digest!r} is not <algorithm>:<hex>; cannot verify"
    try:
        actual, size = hash_stored(artifact.stored_name, algorithm)
    except FileNotFoundError:
        return f"stored bytes {artifact.stored_name!r} are missing"
    except OSError as error:
        return f"stored bytes {artifact.stored_name!r} cannot be read ({error})"
    problems = []
    if actual != expected.lower():
        problems.append(f"digest is {algorithm}:{actual}, recorded {artifact.digest}")
    if artifact.size_bytes is not None and size != artifact.size_bytes:
        problems.append(f"size is {size} bytes, recorded {artifact.size_bytes}")
    return "; ".join(problems) or None


class Command(CwomCommand):
    help = (
        "Re-hash every artifact's stored bytes (through the configured storage) and compare digest and size "
        "with the artifact's record. Reports each mismatch or missing file. Exit 0 when all match, 1 when any "
        "does not."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="ID", help="check only these artifacts (default: all)")
        parser.add_argument("--chunk-size", type=positive_int, default=500, help="rows per query (default 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        artifacts = Artifact.objects.exclude(stored_name="").only(
            "id", "created_at", "stored_name", "digest", "size_bytes"
        )
        if options["ids"]:
            artifacts = artifacts.filter(pk__in=options["ids"])
            unknown = set(options["ids"]) - set(artifacts.values_list("id", flat=True))
            if unknown:
                raise CommandError(f"No artifact with stored bytes has id {', '.join(sorted(unknown))}.", returncode=1)
        progress = Progress(self.stderr, "verified artifacts", interval=5.0)
        bad = 0
        for chunk in keyset(artifacts, ("created_at", "id"), lambda a: (a.created_at, a.pk), options["chunk_size"]):
            for artifact in chunk:
                problem = check(artifact)
                if problem:
                    bad += 1
                    self.stdout.write(self.style.ERROR(f"MISMATCH {artifact.pk}: {problem}"))
                progress.advance()
        progress.finish()
        if bad:
            raise CommandError(f"{bad} of {progress.count} stored artifacts do not match their records.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"All {progress.count} stored artifacts match their digests and sizes."))
