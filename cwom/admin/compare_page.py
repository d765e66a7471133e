"""The admin's page comparing two runs: :func:`cwom.compare.diff_runs` laid out for a person.

A run's page links to it for the previous run of its issue (:func:`previous_run`, read with the run); the
page itself takes ``?with=<run id>`` to compare with any run. Every section is marked same / changed / added / removed;
changed values are side by side (a, then b), a packet's text diffs are coloured line by line, and a
section that is the same is folded away (a ``<details>`` element: no script).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q, Subquery

from .. import compare
from ..ids import normalize_ulid
from ..models import Run
from .rendering import admin_url

# The sections in the order a person reads them, with their titles.
SECTIONS = (
    ("issue", "Issue"),
    ("repo", "Repo"),
    ("context_packets", "Context packets"),
    ("constraint_snapshot", "Constraint snapshot"),
    ("doctrine_refs", "Doctrine refs"),
    ("executor", "Executor and mode"),
    ("outcome", "Outcome"),
    ("artifacts", "Artifacts"),
)
# The annotation of a loaded run naming the previous run of its issue.
PREVIOUS = "previous_run_id"
# How a line of a unified diff is shown: its CSS class by its first character.
_LINE_CLASSES = {"+": "cwom-add", "-": "cwom-del", "@": "cwom-hunk"}


def previous_run() -> Subquery:
    """The id of the newest run of the same issue created before the outer run (an index range scan), or
    NULL: annotated on the run a page loads, so the link costs no query of its own."""
    earlier = Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
    runs = Run.objects.filter(earlier, for_issue_id=OuterRef("for_issue_id")).order_by("-created_at", "-id")
    return Subquery(runs.values("id")[:1])


class NoSuchRun(Exception):
    """The run to compare with is not a run id, or no run has it: ``status`` and a message for a person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def other_run_id(typed: str) -> str:
    """The id of the run typed in ``?with=`` (any letter case), or NoSuchRun saying why not."""
    try:
        run_id = normalize_ulid(typed.strip())
    except ValidationError:
        raise NoSuchRun(400, f"“{typed}” is not a run id: a run id is 26 letters and digits (a ULID).") from None
    if not Run.objects.filter(pk=run_id).exists():
        raise NoSuchRun(404, f"No run has the id {run_id}.")
    return run_id


def shown(value: Any) -> str:
    """A value of the diff as text: ``—`` for nothing, strings as they are, anything else as JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _link(ref: dict[str, Any] | None, field: str | None = None) -> dict[str, Any] | None:
    """A described Ref of the diff (a packet's version, an artifact's digest) as a link for the template."""
    if ref is None:
        return None
    value = ref.get(field) if field else None
    text = ref["id"] if value is None else f"{field} {value}" if field == "version" else shown(value)
    return {"url": admin_url(ref["kind"], ref["id"]), "id": ref["id"], "text": text}


def _changes(changes: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    return [{"path": path, "a": shown(pair["a"]), "b": shown(pair["b"])} for path, pair in changes.items()]


def _diff_lines(lines: list[str]) -> list[dict[str, str]]:
    """A unified diff's lines (its ``---``/``+++`` header left out), each with its CSS class."""
    body = [line for line in lines if not line.startswith(("--- ", "+++ "))]
    return [{"text": line, "css": _LINE_CLASSES.get(line[:1], "cwom-ctx")} for line in body]


def _packet(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": item["status"],
        "label": item["role"] or "context packet",
        "a": _link(item["a"], "version"),
        "b": _link(item["b"], "version"),
        "texts": [(name, _diff_lines(lines)) for name, lines in item.get("texts", {}).items()],
        "lists": [
            (path, [shown(v) for v in change["added"]], [shown(v) for v in change["removed"]])
            for path, change in item.get("lists", {}).items()
        ],
    }


def _items(section: dict[str, Any], label: Any, field: str) -> list[dict[str, Any]]:
    return [
        {"status": item["status"], "label": label(item), "a": _link(item["a"], field), "b": _link(item["b"], field)}
        for item in section["items"]
    ]


def sections(diff: dict[str, Any]) -> list[dict[str, Any]]:
    """The diff's sections as the template shows them."""
    found = diff["sections"]
    shaped: dict[str, dict[str, Any]] = {
        "issue": {"pair": (_link(found["issue"]["a"]), _link(found["issue"]["b"]))},
        "repo": {"pair": (_link(found["repo"]["a"]), _link(found["repo"]["b"]))},
        "context_packets": {"items": [_packet(item) for item in found["context_packets"]["items"]]},
        "constraint_snapshot": {
            "pair": (_link(found["constraint_snapshot"]["a"]), _link(found["constraint_snapshot"]["b"])),
            "changes": _changes(found["constraint_snapshot"]["changes"]),
        },
        "doctrine_refs": {"items": _items(found["doctrine_refs"], lambda item: item["name"], "version")},
        "executor": {"changes": _changes(found["executor"]["changes"])},
        "outcome": {"changes": _changes(found["outcome"]["changes"])},
        "artifacts": {"items": _items(found["artifacts"], lambda item: f"{item['type']} · {item['title']}", "digest")},
    }
    empty = {"pair": None, "changes": None, "items": None}  # what a section does not show
    return [
        {"name": name, "title": title, "status": found[name]["status"], **empty, **shaped[name]}
        for name, title in SECTIONS
    ]


def page_context(run: Run, typed: str | None) -> tuple[int, dict[str, Any]]:
    """The page's status and context: ``run`` (b, loaded annotated with :func:`previous_run`) compared with
    the run typed (or else the previous one, a)."""
    context: dict[str, Any] = {"run": run, "typed": typed or "", "error": None, "diff": None}
    try:
        other = other_run_id(typed) if typed else getattr(run, PREVIOUS)
    except NoSuchRun as refused:
        return refused.status, {**context, "error": refused.message}
    context["other"] = other
    if other is None:
        return 200, context
    diff = compare.diff_runs(other, run.pk)
    context.update(
        diff=diff,
        sections=sections(diff),
        a_url=admin_url("Run", other),
        b_url=admin_url("Run", run.pk),
        counts={status: sum(s["status"] == status for s in diff["sections"].values()) for status in compare.STATUSES},
    )
    return 200, context
