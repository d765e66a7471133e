"""Write the committed JSON Schemas of the seven kinds: ``cwom/spec/jsonschema/<Kind>.json``.

    python manage.py cwom_jsonschema            # (re)write the files
    python manage.py cwom_jsonschema --check    # exit 1 and list the files that differ; write nothing
    python manage.py cwom_jsonschema --output-dir /tmp/schemas

The schemas come from ``cwom.shapes.json_schema(kind, "out")``: the object as the service emits it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from cwom import shapes
from cwom.enums import Kind
from cwom.management.base import CwomCommand
from cwom.spec import JSONSCHEMA_DIR

DEFAULT_OUTPUT_DIR = JSONSCHEMA_DIR


def render(kind: str) -> str:
    """The committed text of ``kind``'s schema: indented JSON in the schema's own key order, one final newline."""
    return json.dumps(shapes.json_schema(kind, "out"), indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """{file name: text} for the seven kinds."""
    return {f"{kind}.json": render(kind) for kind in Kind.values}


class Command(CwomCommand):
    help = (
        "Write cwom/spec/jsonschema/<Kind>.json for the seven kinds (--check: only compare, write nothing). "
        "Exit 0 when written or up to date, 1 when --check finds a file that differs, 2 on bad usage."
    )
    # Schemas come from code alone: no database, no need for the project's system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit 1 listing the files that are missing or differ from what would be written.",
        )
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=DEFAULT_OUTPUT_DIR,
            help=f"Directory of the schema files (default: {DEFAULT_OUTPUT_DIR}).",
        )

    def handle(self, *args: Any, check: bool, output_dir: Path, **options: Any) -> None:
        files = rendered()
        stale = [
            name
            for name, text in files.items()
            if not (output_dir / name).is_file() or (output_dir / name).read_text(encoding="utf-8") != text
        ]
        if check:
            if stale:
                for name in stale:
                    self.stderr.write(f"differs: {output_dir / name}")
                raise CommandError(
                    f"{len(stale)} JSON Schema file(s) out of date; run `python manage.py cwom_jsonschema`.",
                    returncode=1,
                )
            self.stdout.write(f"{len(files)} JSON Schema files up to date in {output_dir}")
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        for name in stale:
            (output_dir / name).write_text(files[name], encoding="utf-8")
            self.stdout.write(f"wrote {output_dir / name}")
        self.stdout.write(f"{len(files)} JSON Schema files in {output_dir} ({len(stale)} written)")
