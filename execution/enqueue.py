"""The enqueue service: one body in, one transaction, one run ready for a worker.

    {"issue": Ref | id | {new issue fields, "repo": Ref | id | slug},
     "context": {packet fields},
     "constraints": {snapshot fields} | Ref | id | null,
     "doctrine_refs": [Ref | id, ...],
     "executor": {"name": ..., "config": {...}},
     "mode": RunMode}

Refs (``issue``, ``issue.repo``, ``constraints``, ``doctrine_refs``) are resolved by the one resolver of the
service (:class:`cwom.shapes.RefCollector`): a bare id, a Ref, or for a Repo its slug. Without ``executor``
the service's default executor (``CWOM_DEFAULT_EXECUTOR``) runs it, and the answer says so
(:meth:`EnqueueResult.refs`: ``executor.chosen_by``). New objects record ``created_by`` (the caller's actor
when a body declares none).

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
from cwom.enums import Kind, ManagedBy, RunMode, Status
from cwom.models import (
    ConstraintSnapshot,
    ContextPacket,
    CwomObject,
    Issue,
    Run,
)
from cwom.shapes import make_ref
from cwom.validation import unexpected_field_message

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
    executor_chosen_by: str = "request"

    def refs(self) -> dict[str, Any]:
        """The response body's Refs and the executor that will run it, with why (``request``: the body named
        it; ``default``: the body did not, the service's default was used). ``run_url`` is added by the face
        that knows the host."""
        return {
            "issue": make_ref(Kind.ISSUE, self.issue.pk),
            "context_packet": make_ref(Kind.CONTEXT_PACKET, self.context_packet.pk, PRIMARY_CONTEXT_ROLE),
            "constraint_snapshot": make_ref(Kind.CONSTRAINT_SNAPSHOT, self.constraint_snapshot.pk)
            if self.constraint_snapshot
            else None,
            "run": make_ref(Kind.RUN, self.run.pk),
            "executor": {"name": self.execution.executor_name, "chosen_by": self.executor_chosen_by},
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


def _executor(body: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """The executor's name, its config, and why it was chosen (``request`` or ``default``)."""
    spec = body.get("executor")
    chosen_by = "request"
    if spec is None:
        spec, chosen_by = {"name": conf()["default_executor"]}, "default"
    if not isinstance(spec, dict):
        raise _error("executor", 'An object {"name": ..., "config": {...}}.', "invalid_type")
    unknown = sorted(set(spec) - {"name", "config"})
    if unknown:
        message = unexpected_field_message(unknown[0], ["name", "config"])
        raise _error(f"executor.{unknown[0]}", message, "unexpected_field")
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
    return name, config, chosen_by


def validate(body: Any) -> tuple[str, dict[str, Any], str]:
    """The checks that need no transaction: the body's own shape and the executor (its name and config)."""
    if not isinstance(body, dict):
        raise _error("non_field_errors", "The body must be a JSON object.", "invalid_shape")
    unknown = sorted(set(body) - TOP_LEVEL_KEYS)
    if unknown:
        message = unexpected_field_message(unknown[0], sorted(TOP_LEVEL_KEYS))
        raise _error(unknown[0], message, "unexpected_field")
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


def _refs(body: dict[str, Any]) -> dict[str, str]:
    """Every Ref of the body outside the new objects' own fields (``issue``, ``constraints``, ``doctrine_refs``)
    resolved in one look-up by the one resolver: {path: id}. Raises ValidationError keyed by those paths."""
    wanted = [(ref, Kind.DOCTRINE_REF, f"doctrine_refs.{i}") for i, ref in enumerate(body.get("doctrine_refs") or [])]
    if _is_ref(body["issue"]):
        wanted.append((body["issue"], Kind.ISSUE, "issue"))
    if body.get("constraints") is not None and _is_ref(body["constraints"]):
        wanted.append((body["constraints"], Kind.CONSTRAINT_SNAPSHOT, "constraints"))
    ids = shapes.resolve_refs(wanted) if wanted else []
    return {path: object_id for (_value, _kind, path), object_id in zip(wanted, ids, strict=True)}


def _issue(value: Any, issue_id: str | None, created_by: dict[str, Any] | None) -> tuple[Issue, bool]:
    if issue_id is not None:
        # Locked: enqueues against one issue are serialized so two cannot take the same next version.
        return Issue.objects.select_for_update().get(pk=issue_id), False
    try:
        parsed = shapes.parse(Kind.ISSUE, _with_creator(value, created_by))
        created = writes.create_parsed(parsed)
    except ValidationError as error:
        raise _prefixed("issue", writes.contract_error(Kind.ISSUE, error)) from None
    return created, True  # type: ignore[return-value]


def _known(*objs: CwomObject | None) -> dict[str, str]:
    """{id: kind} of the objects this enqueue holds (found or created in its transaction): Refs to them in the
    new objects' bodies are not looked up again."""
    return {obj.pk: obj.KIND for obj in objs if obj is not None}


def _with_creator(fields: dict[str, Any], created_by: dict[str, Any] | None) -> dict[str, Any]:
    """``fields`` of a new object, ``created_by`` the caller's actor when they declare none."""
    if created_by is None or "created_by" in fields:
        return fields
    return {**fields, "created_by": created_by}


def _snapshot(
    value: Any, snapshot_id: str | None, issue: Issue, created_by: dict[str, Any] | None
) -> ConstraintSnapshot | None:
    if value is None:
        return None
    if snapshot_id is not None:
        snapshot = ConstraintSnapshot.objects.get(pk=snapshot_id)
    else:
        try:
            parsed = shapes.parse(Kind.CONSTRAINT_SNAPSHOT, _with_creator(value, created_by), known=_known(issue))
            snapshot = writes.create_parsed(parsed)  # type: ignore[assignment]
        except ValidationError as error:
            raise _prefixed("constraints", writes.contract_error(Kind.CONSTRAINT_SNAPSHOT, error)) from None
    writes.add_links(issue, "constraints", [(snapshot.pk, None)])
    return snapshot


def _packet(
    fields: dict[str, Any],
    issue: Issue,
    issue_created: bool,
    snapshot: ConstraintSnapshot | None,
    created_by: dict[str, Any] | None,
) -> ContextPacket:
    body = {**_with_creator(fields, created_by), "for_issue": issue.pk}
    if snapshot is not None and "constraint_snapshot" not in body:
        body["constraint_snapshot"] = snapshot.pk
    try:
        parsed = shapes.parse(Kind.CONTEXT_PACKET, body, known=_known(issue, snapshot))
        # An issue created in this transaction has no packet yet: its first one is version 1.
        parsed.columns["version"] = "1" if issue_created else ContextPacket.next_version(issue.pk)
        packet: ContextPacket = writes.create_parsed(parsed)  # type: ignore[assignment]
    except ValidationError as error:
        raise _prefixed("context", writes.contract_error(Kind.CONTEXT_PACKET, error)) from None
    return packet


def enqueue(body: Any, created_by: dict[str, Any] | None = None) -> EnqueueResult:
    """Create everything ``body`` asks for in one transaction and dispatch the run after commit.

    ``created_by``: the caller's actor, recorded on the new objects whose fields declare none (and on the run).
    Raises ValidationError keyed by paths of the enqueue body (``issue.title``, ``constraints.scope``,
    ``executor.config.argv``); nothing is written or dispatched then.
    """
    name, config, chosen_by = validate(body)
    with transaction.atomic():
        refs = _refs(body)
        doctrine_ids = [object_id for path, object_id in refs.items() if path.startswith("doctrine_refs.")]
        if len(set(doctrine_ids)) != len(doctrine_ids):
            raise _error("doctrine_refs", "The same doctrine ref is listed twice.", "duplicate_ref")
        issue, issue_created = _issue(body["issue"], refs.get("issue"), created_by)
        snapshot = _snapshot(body.get("constraints"), refs.get("constraints"), issue, created_by)
        packet = _packet(body["context"], issue, issue_created, snapshot, created_by)
        run_body = {
            "created_by": created_by,
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
            known = {**_known(issue, snapshot, packet), **dict.fromkeys(doctrine_ids, Kind.DOCTRINE_REF)}
            parsed_run = shapes.parse(Kind.RUN, run_body, known=known)
            parsed_run.columns["managed_by"] = ManagedBy.SERVICE  # read-only in bodies: the service's own
            # The issue (locked) and the packet are the rows the run's rules read: not read again.
            (run,) = writes.create_many(Kind.RUN, [parsed_run], held=[issue, packet])
        except ValidationError as error:
            raise _prefixed("run", writes.contract_error(Kind.RUN, error)) from None
        execution = lifecycle.start(run, name, config, snapshot)
    return EnqueueResult(issue, packet, snapshot, run, execution, issue_created, chosen_by)
