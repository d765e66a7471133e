"""The contract's files: the spec text, the JSON Schemas and one example object of every kind.

``examples/<Kind>.json`` holds one object of each kind in the exact shape the API returns, forming one
consistent chain (repo, doctrine ref, snapshot, issue, packet, run, artifact), and
``examples/enqueue-request.json`` a ``POST /api/v1/enqueue`` body. The suite checks them against the JSON
Schemas and imports them through the write path; the OpenAPI document shows them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent
JSONSCHEMA_DIR = SPEC_DIR / "jsonschema"
EXAMPLES_DIR = SPEC_DIR / "examples"
ENQUEUE_EXAMPLE = "enqueue-request"


@cache
def _example_text(name: str) -> str:
    return (EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8")


def example(name: str) -> dict[str, Any]:
    """A fresh copy of ``examples/<name>.json``: a kind's name, or ``ENQUEUE_EXAMPLE``."""
    loaded: dict[str, Any] = json.loads(_example_text(name))
    return loaded
