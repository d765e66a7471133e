"""What differs between two runs: their chains (:func:`cwom.lineage.run_bundle`) compared section by section.

Each section is marked ``same``, ``changed``, ``added`` (only in b) or ``removed`` (only in a):

- ``issue``, ``repo``: the same object or not;
- ``context_packets``: paired by role (in order within a role); a changed pair names both versions and
  gives the unified diff of ``summary`` and ``instructions`` and what its lists gained and lost;
- ``constraint_snapshot``: field by field;
- ``doctrine_refs``: by ``namespace/name``: added, removed, or another version;
- ``executor``: mode, actor, runtime, toolchain;
- ``outcome``: status, failure, telemetry, cost, result summary;
- ``artifacts``: by type and title: the same digest, another digest, only in a, only in b.

Two bundles and both runs' artifacts (all of them: a bundle holds the newest 20) are read, a fixed number of
queries whatever their sizes; everything else is computed on the two documents.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from . import lineage, shapes
from .enums import Kind

SAME, CHANGED, ADDED, REMOVED = "same", "changed", "added", "removed"
STATUSES = (SAME, CHANGED, ADDED, REMOVED)
# Bookkeeping that differs between any two objects and says nothing about what a run was given.
_BOOKKEEPING = frozenset({"kind", "id", "created_at", "updated_at", "created_by", "sealed_at", "captured_at"})
# A packet's texts, compared as unified diffs; its lists, compared as what was gained and lost.
PACKET_TEXTS = ("summary", "instructions")
PACKET_LISTS = ("assumptions", "open_questions", "inputs.documents", "inputs.data_blobs", "inputs.links")
EXECUTOR_FIELDS = ("mode", "executor.actor", "executor.runtime", "executor.toolchain")
OUTCOME_FIELDS = (
    "status",
    "failure.category",
    "failure.message",
    "telemetry.started_at",
    "telemetry.ended_at",
    "telemetry.duration_s",
    "cost.usd",
    "cost.tokens",
    "cost.compute_s",
    "outputs.result_summary",
)


def _schema() -> dict[str, Any]:
    """The JSON Schema of :func:`diff_runs`' document."""
    status = {"type": "string", "enum": list(STATUSES)}
    run_ref, nullable = shapes.ref_schema(Kind.RUN), {"type": ["object", "null"]}
    change = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
    changes = {"type": "object", "additionalProperties": change}
    gained_lost = {
        "type": "object",
        "description": "What a list gained (only in b) and lost (only in a), in their order.",
        "properties": {"added": {"type": "array", "items": {}}, "removed": {"type": "array", "items": {}}},
        "required": ["added", "removed"],
        "additionalProperties": False,
    }
    texts = {
        "type": "object",
        "description": "Each text that differs: its unified diff lines (`---`/`+++` headers, `@@` hunks, then "
        "lines starting with ` `, `-` or `+`).",
        "properties": {name: {"type": "array", "items": {"type": "string"}} for name in PACKET_TEXTS},
        "additionalProperties": False,
    }
    lists = {
        "type": "object",
        "description": "Each list that differs, by its dotted path: what it gained and lost.",
        "properties": dict.fromkeys(PACKET_LISTS, gained_lost),
        "additionalProperties": False,
    }

    def section(**properties: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"status": status, **properties},
            "required": ["status", *properties],
        }

    def items(optional: dict[str, Any] | None = None, **properties: Any) -> dict[str, Any]:
        item = section(a=nullable, b=nullable, **properties)
        item["properties"].update(optional or {})
        return section(items={"type": "array", "items": item})

    return {
        "type": "object",
        "properties": {
            "a": run_ref,
            "b": run_ref,
            "status": status,
            "sections": {
                "type": "object",
                "properties": {
                    "issue": section(a=shapes.ref_schema(Kind.ISSUE), b=shapes.ref_schema(Kind.ISSUE)),
                    "repo": section(a=shapes.ref_schema(Kind.REPO), b=shapes.ref_schema(Kind.REPO)),
                    # Only a changed pair carries `texts` and `lists`.
                    "context_packets": items({"texts": texts, "lists": lists}, role={"type": ["string", "null"]}),
                    "constraint_snapshot": section(a=nullable, b=nullable, changes=changes),
                    "doctrine_refs": items(name={"type": "string"}),
                    "executor": section(changes=changes),
                    "outcome": section(changes=changes),
                    "artifacts": items(type={"type": "string"}, title={"type": "string"}),
                },
                "required": [
                    "issue",
                    "repo",
                    "context_packets",
                    "constraint_snapshot",
                    "doctrine_refs",
                    "executor",
                    "outcome",
                    "artifacts",
                ],
            },
        },
        "required": ["a", "b", "status", "sections"],
        "description": "What differs between two runs, section by section; a changed packet adds `texts` "
        "(unified diff lines of "
        + " and ".join(PACKET_TEXTS)
        + ") and `lists` (what each list gained and lost: "
        + ", ".join(PACKET_LISTS)
        + ").",
    }


def diff_runs(a_id: str, b_id: str) -> dict[str, Any]:
    """The difference between runs ``a_id`` and ``b_id``. Raises Run.DoesNotExist for an unknown id."""
    a, b = lineage.run_bundle(a_id), lineage.run_bundle(b_id)
    # Every artifact of both runs (a bundle holds a run's newest 20 only): one query.
    artifacts: dict[str, list[dict[str, Any]]] = {a_id: [], b_id: []}
    rows = shapes.SHAPES[Kind.ARTIFACT].queryset().filter(produced_by_id__in=[a_id, b_id]).order_by("created_at", "id")
    for artifact in shapes.dump_many(rows):
        artifacts[artifact["produced_by"]["id"]].append(artifact)
    sections = {
        "issue": _same_object(a["issue"], b["issue"]),
        "repo": _same_object(a["repo"], b["repo"]),
        "context_packets": _packets(a, b),
        "constraint_snapshot": _snapshot(a["constraint_snapshot"], b["constraint_snapshot"]),
        "doctrine_refs": _doctrine_refs(a["doctrine_refs"], b["doctrine_refs"]),
        "executor": _fields(a["run"], b["run"], EXECUTOR_FIELDS),
        "outcome": _fields(a["run"], b["run"], OUTCOME_FIELDS),
        "artifacts": _artifacts(artifacts[a_id], artifacts[b_id]),
    }
    return {
        "a": shapes.make_ref(Kind.RUN, a_id),
        "b": shapes.make_ref(Kind.RUN, b_id),
        "status": SAME if all(section["status"] == SAME for section in sections.values()) else CHANGED,
        "sections": sections,
    }


# --- helpers ----------------------------------------------------------------------------------------
def _ref(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if obj is None else shapes.make_ref(obj["kind"], obj["id"])


def _status(a: Any, b: Any, same: bool) -> str:
    if a is None:
        return SAME if b is None else ADDED
    if b is None:
        return REMOVED
    return SAME if same else CHANGED


def _overall(items: Iterable[dict[str, Any]]) -> str:
    return SAME if all(item["status"] == SAME for item in items) else CHANGED


def _at(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``doc``'s leaves by dotted path (lists are leaves), bookkeeping left out."""
    found: dict[str, Any] = {}
    for name, value in doc.items():
        if not prefix and name in _BOOKKEEPING:
            continue
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value and "kind" not in value:  # a group; a Ref is a leaf
            found.update(_flat(value, f"{path}."))
        else:
            found[path] = value
    return found


def _changes(a: dict[str, Any], b: dict[str, Any], paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each path whose value differs: ``{path: {"a": ..., "b": ...}}``."""
    return {path: {"a": _at(a, path), "b": _at(b, path)} for path in paths if _at(a, path) != _at(b, path)}


def _described(kind: str, obj: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
    """A Ref to ``obj`` with its ``field`` (a packet's version, an artifact's digest), or None."""
    return None if obj is None else {"kind": kind, "id": obj["id"], "role": None, field: obj[field]}


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None, field: str) -> bool:
    return a is not None and b is not None and a[field] == b[field]


def _same_object(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"status": SAME if a["id"] == b["id"] else CHANGED, "a": _ref(a), "b": _ref(b)}


def _fields(a: dict[str, Any], b: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    changes = _changes(a, b, paths)
    return {"status": CHANGED if changes else SAME, "changes": changes}


def _gained_lost(a: list[Any] | None, b: list[Any] | None) -> dict[str, list[Any]]:
    a, b = a or [], b or []
    return {"added": [item for item in b if item not in a], "removed": [item for item in a if item not in b]}


def _text_diff(a: str | None, b: str | None) -> list[str]:
    lines = difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(), "a", "b", lineterm="", n=2)
    return list(lines)


# --- sections ---------------------------------------------------------------------------------------
def _pairs(
    a: list[dict[str, Any]], b: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """``a``'s and ``b``'s items paired by ``key``, in order within a key; unpaired ones with None."""
    by_key_a: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    by_key_b: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for item in a:
        by_key_a[key(item)].append(item)
    for item in b:
        by_key_b[key(item)].append(item)
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    for k in dict.fromkeys([*by_key_a, *by_key_b]):
        left, right = by_key_a.get(k, []), by_key_b.get(k, [])
        for i in range(max(len(left), len(right))):
            pairs.append((left[i] if i < len(left) else None, right[i] if i < len(right) else None))
    return pairs


def _packets(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    roles = {
        side: {ref["id"]: ref["role"] for ref in bundle["run"]["inputs"]["context_packets"]}
        for side, bundle in (("a", a), ("b", b))
    }
    tagged_a = [{**packet, "_role": roles["a"].get(packet["id"])} for packet in a["context_packets"]]
    tagged_b = [{**packet, "_role": roles["b"].get(packet["id"])} for packet in b["context_packets"]]
    items = []
    for left, right in _pairs(tagged_a, tagged_b, lambda packet: packet["_role"]):
        item: dict[str, Any] = {
            "status": _status(left, right, _same(left, right, "id")),
            "role": (left or right or {}).get("_role"),
            "a": _described(Kind.CONTEXT_PACKET, left, "version"),
            "b": _described(Kind.CONTEXT_PACKET, right, "version"),
        }
        if item["status"] == CHANGED and left is not None and right is not None:
            item["texts"] = {
                name: _text_diff(left.get(name), right.get(name))
                for name in PACKET_TEXTS
                if left.get(name) != right.get(name)
            }
            item["lists"] = {
                path: _gained_lost(_at(left, path), _at(right, path))
                for path in PACKET_LISTS
                if _at(left, path) != _at(right, path)
            }
        items.append(item)
    return {"status": _overall(items), "items": items}


def _snapshot(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    same_id = _same(a, b, "id")
    changes = {} if same_id or a is None or b is None else _flat_changes(a, b)
    return {
        "status": _status(a, b, same_id or not changes),
        "a": _ref(a),
        "b": _ref(b),
        "changes": changes,
    }


def _flat_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flat_a, flat_b = _flat(a), _flat(b)
    return {
        path: {"a": flat_a.get(path), "b": flat_b.get(path)}
        for path in dict.fromkeys([*flat_a, *flat_b])
        if flat_a.get(path) != flat_b.get(path)
    }


def _doctrine_refs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    items = []
    for left, right in _pairs(a, b, lambda doctrine: (doctrine["namespace"], doctrine["name"])):
        named = left or right or {}
        items.append(
            {
                "status": _status(left, right, _same(left, right, "id")),
                "name": f"{named.get('namespace')}/{named.get('name')}",
                "a": _described(Kind.DOCTRINE_REF, left, "version"),
                "b": _described(Kind.DOCTRINE_REF, right, "version"),
            }
        )
    return {"status": _overall(items), "items": items}


def _artifacts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    items = []
    for left, right in _pairs(a, b, lambda artifact: (artifact["type"], artifact["title"])):
        named = left or right or {}
        items.append(
            {
                "status": _status(
                    left, right, left is not None and right is not None and left["digest"] == right["digest"]
                ),
                "type": named.get("type"),
                "title": named.get("title"),
                "a": _described(Kind.ARTIFACT, left, "digest"),
                "b": _described(Kind.ARTIFACT, right, "digest"),
            }
        )
    return {"status": _overall(items), "items": items}


DIFF_SCHEMA = _schema()
