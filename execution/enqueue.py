"""The enqueue service: one body in, one transaction, one run ready for a worker.

    {"issue": Ref | id | {new issue fields, "repo": Ref | id | slug},
     "context": {packet fields},
     "constraints": {snapshot fields} | Ref | id | null,
     "doctrine_refs": [Ref | id, ...],
     "executor": {"name": ..., "config": {...}},
     "mode": RunMode}

In ONE transaction: find or create the Issue, create a sealed ContextPacket with the issue's next version,
optionally a ConstraintSnapshot (linked to the issue and pinned on the packet), the Run in ``ready`` with
those inputs, and its :class:`~execution.models.RunExecution`. The task is dispatched after commit,
carrying only the run id: a rolled-back enqueue dispatches nothing. Used by ``POST /api/v1/enqueue``
and ``manage.py cwom_enqueue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cwom import shapes, writes
from cwom.enums import EventAction, Kind, RunMode, Status
from cwom.ids import ULID_RE
from cwom.models import (
    ConstraintSnapshot,
    ContextPacket,
    Issue,
    IssueConstraintSnapshot,
    ObjectIndex,
    Repo,
    Run,
    record_event,
)
from cwom.shapes import make_ref

from . import lifecycle
from .config import conf
from .executors import available, get_executor_class
from .executors.base import ExecutorError
from .models import RunExecution

TOP_LEVEL_KEYS = {"issue", "context", "constraints", "doctrine_refs", "executor", "mode"}
REF_KEYS = {"kind", "id", "role"}
PRIMARY_CONTEXT_ROLE = "primary_context"


@dataclass
class EnqueueResult:
    """What one enqueue created or found."""

    issue: Issue
    context_packet: ContextPacket
    constraint_snapshot: ConstraintSnapshot | None
    run: Run
    execution: RunExecution
    issue_created: bool

    def refs(self) -> dict[str, Any]:
        """The response body's Refs (``run_url`` is added by the face that knows the host)."""
        return {
            "issue": make_ref(Kind.ISSUE, self.issue.pk),
            "context_packet": make_ref(Kind.CONTEXT_PACKET, self.context_packet.pk, PRIMARY_CONTEXT_ROLE),
            "constraint_snapshot": make_ref(Kind.CONSTRAINT_SNAPSHOT, self.constraint_snapshot.pk)
            if self.constraint_snapshot
            else None,
            "run": make_ref(Kind.RUN, self.run.pk),
        }


def _error(path: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({path: [ValidationError(message, code=code)]})


def _prefixed(prefix: str, error: ValidationError) -> ValidationError:
    """``error`` (keyed by paths inside one object) re-keyed under ``prefix`` of the enqueue body."""
    if not hasattr(error, "error_dict"):
        return ValidationError({prefix: error.error_list})
    return ValidationError(
        {
            (prefix if name in ("", "non_field_errors", "__all__") else f"{prefix}.{name}"): errors
            for name, errors in error.error_dict.items()
        }
    )


def _is_ref(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and "id" in value and set(value) <= REF_KEYS)


def _ref_form(value: Any, kind: str, path: str) -> str:
    """The id of a Ref or bare id to an object of ``kind``, checked for its form only."""
    object_id = value if isinstance(value, str) else value.get("id")
    declared = kind if isinstance(value, str) else value.get("kind", kind)
    if not isinstance(object_id, str) or not ULID_RE.match(object_id):
        raise _error(path, f"{object_id!r} is not a ULID.", "invalid_id")
    if declared != kind:
        raise _error(path, f"Expected a Ref to a {kind}, got kind {declared}.", "wrong_kind")
    return object_id


def _ref_id(value: Any, kind: str, path: str) -> str:
    """The id of a Ref or bare id that must name an existing object of ``kind``."""
    object_id = _ref_form(value, kind, path)
    actual = ObjectIndex.objects.filter(pk=object_id).values_list("kind", flat=True).first()
    if actual is None:
        raise _error(path, f"No {kind} has id {object_id}.", "unknown_ref")
    if actual != kind:
        raise _error(path, f"{object_id} is a {actual}, not a {kind}.", "wrong_kind")
    return object_id


def _executor(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    spec = body.get("executor")
    if spec is None:
        spec = {"name": conf()["default_executor"]}
    if not isinstance(spec, dict) or set(spec) - {"name", "config"}:
        raise _error("executor", 'An object {"name": ..., "config": {...}}.')
    name, config = spec.get("name"), spec.get("config") or {}
    if name not in available():
        raise _error(
            "executor.name", f"Unknown executor {name!r}; available: {', '.join(available())}.", "invalid_choice"
        )
    if not isinstance(config, dict):
        raise _error("executor.config", "An object.")
    executor_class = get_executor_class(name)
    try:
        executor_class.check_enabled()
    except ExecutorError as error:
        raise _error("executor.name", error.message, "executor_disabled") from None
    try:
        executor_class.validate_config(config)
    except ValidationError as error:
        raise _prefixed("executor.config", error) from None
    return name, config


def validate(body: Any) -> tuple[str, dict[str, Any]]:
    """The checks that need no transaction: the body's own shape and the executor (its name and config)."""
    if not isinstance(body, dict):
        raise _error("non_field_errors", "The body must be a JSON object.", "invalid_shape")
    unknown = sorted(set(body) - TOP_LEVEL_KEYS)
    if unknown:
        raise _error(unknown[0], f"Unknown key; the enqueue body takes {', '.join(sorted(TOP_LEVEL_KEYS))}.", "unknown")
    for key in ("issue", "context"):
        if key not in body or body[key] is None:
            raise _error(key, "This field is required.", "required")
    if not isinstance(body["context"], dict):
        raise _error("context", "The context packet's fields (an object).")
    for key in ("for_issue", "version"):
        if key in body["context"]:
            raise _error(f"context.{key}", "Set by the service (the packet is for the issue, at its next version).")
    if body["context"].get("sealed") is False:
        raise _error("context.sealed", "An enqueued run's packet is sealed; drafts cannot be run.", "sealed")
    if not (_is_ref(body["issue"]) or isinstance(body["issue"], dict)):
        raise _error("issue", "A Ref or id of an existing issue, or the fields of a new one.")
    refs = body.get("doctrine_refs", [])
    if not isinstance(refs, list):
        raise _error("doctrine_refs", "A list of Refs.")
    mode = body.get("mode", RunMode.AGENT)
    if mode not in RunMode.values:
        raise _error("mode", f"One of: {', '.join(RunMode.values)}.", "invalid_choice")
    return _executor(body)


def _issue(value: Any) -> tuple[Issue, bool]:
    if _is_ref(value):
        # Locked: enqueues against one issue are serialized so two cannot take the same next version.
        issue = Issue.objects.select_for_update().filter(pk=_ref_form(value, Kind.ISSUE, "issue")).first()
        if issue is None:  # say why: no such object, or one of another kind
            _ref_id(value, Kind.ISSUE, "issue")
            raise _error("issue", "No Issue has this id.", "unknown_ref")  # pragma: no cover - raised above
        return issue, False
    fields = dict(value)
    repo = fields.get("repo")
    if isinstance(repo, str) and not ULID_RE.match(repo):
        repo_id = Repo.objects.filter(slug=repo).values_list("id", flat=True).first()
        if repo_id is None:
            raise _error("issue.repo", f"No repo has slug {repo!r}.", "unknown_ref")
        fields["repo"] = repo_id
    try:
        parsed = shapes.parse(Kind.ISSUE, fields)
        created = writes.create_parsed(parsed)
    except ValidationError as error:
        raise _prefixed("issue", writes.contract_error(Kind.ISSUE, error)) from None
    return created, True  # type: ignore[return-value]


def _snapshot(value: Any, issue: Issue, issue_created: bool) -> ConstraintSnapshot | None:
    if value is None:
        return None
    if _is_ref(value):
        snapshot = ConstraintSnapshot.objects.get(pk=_ref_id(value, Kind.CONSTRAINT_SNAPSHOT, "constraints"))
    else:
        try:
            snapshot = writes.create_parsed(shapes.parse(Kind.CONSTRAINT_SNAPSHOT, value))  # type: ignore[assignment]
        except ValidationError as error:
            raise _prefixed("constraints", writes.contract_error(Kind.CONSTRAINT_SNAPSHOT, error)) from None
    # An issue created in this transaction has no snapshot yet.
    before = [] if issue_created else list(issue.constraint_links.order_by("id").values_list("snapshot_id", flat=True))
    if snapshot.pk not in before:
        IssueConstraintSnapshot.objects.create(issue=issue, snapshot=snapshot)
        record_event(issue, EventAction.UPDATE, {"constraints": (before, [*before, snapshot.pk])})
    return snapshot


def _packet(
    fields: dict[str, Any], issue: Issue, issue_created: bool, snapshot: ConstraintSnapshot | None
) -> ContextPacket:
    body = {**fields, "for_issue": issue.pk}
    if snapshot is not None and "constraint_snapshot" not in body:
        body["constraint_snapshot"] = snapshot.pk
    try:
        parsed = shapes.parse(Kind.CONTEXT_PACKET, body)
        # An issue created in this transaction has no packet yet: its first one is version 1.
        parsed.columns["version"] = "1" if issue_created else ContextPacket.next_version(issue.pk)
        packet: ContextPacket = writes.create_parsed(parsed)  # type: ignore[assignment]
    except ValidationError as error:
        raise _prefixed("context", writes.contract_error(Kind.CONTEXT_PACKET, error)) from None
    return packet


def enqueue(body: Any) -> EnqueueResult:
    """Create everything ``body`` asks for in one transaction and dispatch the run after commit.

    Raises ValidationError keyed by paths of the enqueue body (``issue.title``, ``constraints.scope``,
    ``executor.config.argv``); nothing is written or dispatched then.
    """
    name, config = validate(body)
    with transaction.atomic():
        issue, issue_created = _issue(body["issue"])
        snapshot = _snapshot(body.get("constraints"), issue, issue_created)
        packet = _packet(body["context"], issue, issue_created, snapshot)
        doctrine_ids = [
            _ref_id(ref, Kind.DOCTRINE_REF, f"doctrine_refs.{i}")
            for i, ref in enumerate(body.get("doctrine_refs") or [])
        ]
        if len(set(doctrine_ids)) != len(doctrine_ids):
            raise _error("doctrine_refs", "The same doctrine ref is listed twice.", "duplicate_ref")
        run_body = {
            "for_issue": issue.pk,
            "status": Status.READY,
            "mode": body.get("mode", RunMode.AGENT),
            "executor": {
                "actor": lifecycle.WORKER_ACTOR,
                "runtime": "cwom-worker",
                "toolchain": [f"cwom-executor:{name}"],
            },
            "inputs": {
                "context_packets": [{"id": packet.pk, "role": PRIMARY_CONTEXT_ROLE}],
                "doctrine_refs": doctrine_ids,
                "constraint_snapshot": snapshot.pk if snapshot else None,
            },
        }
        try:
            run: Run = writes.create_parsed(shapes.parse(Kind.RUN, run_body))  # type: ignore[assignment]
        except ValidationError as error:
            raise _prefixed("run", writes.contract_error(Kind.RUN, error)) from None
        execution = lifecycle.start(run, name, config, snapshot)
    return EnqueueResult(issue, packet, snapshot, run, execution, issue_created)
