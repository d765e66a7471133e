"""Small builders for CWOM objects, going through the same write path as the API."""

from __future__ import annotations

import itertools
from typing import Any

from cwom import spec, writes

_counter = itertools.count(1)

ACTOR = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def example(kind: str) -> dict[str, Any]:
    """The project's example object of ``kind`` (``cwom/spec/examples``, the contract's exact shape)."""
    return spec.example(kind)


def repo(**fields: Any) -> Any:
    return writes.create("Repo", {"name": "Control Tower", "slug": unique("repo"), **fields})


def issue(repo_obj: Any = None, **fields: Any) -> Any:
    repo_obj = repo_obj or repo()
    return writes.create("Issue", {"repo": repo_obj.pk, "title": "Add /healthz", **fields})


def snapshot(**fields: Any) -> Any:
    return writes.create("ConstraintSnapshot", {"scope": "run", "owner": ACTOR, **fields})


def doctrine(**fields: Any) -> Any:
    body = {
        "namespace": "security",
        "name": unique("rule"),
        "version": "1.0.0",
        "type": "policy",
        "priority": "must",
        "statement": "Never log secrets.",
        **fields,
    }
    return writes.create("DoctrineRef", body)


def packet(issue_obj: Any, **fields: Any) -> Any:
    return writes.create("ContextPacket", {"for_issue": issue_obj.pk, "summary": "What we know.", **fields})


def run(issue_obj: Any = None, status: str = "ready", packets: list[Any] | None = None, **fields: Any) -> Any:
    issue_obj = issue_obj or issue()
    if packets is None:
        packets = [packet(issue_obj)] if status != "planned" else []
    body = {
        "for_issue": issue_obj.pk,
        "status": status,
        "inputs": {"context_packets": [p.pk for p in packets]},
        **fields,
    }
    return writes.create("Run", body)


def started_run(**kwargs: Any) -> Any:
    run_obj = run(**kwargs)
    writes.transition(run_obj, "running")
    return writes.reload(run_obj)


def artifact(run_obj: Any, **fields: Any) -> Any:
    return writes.create("Artifact", {"produced_by": run_obj.pk, "type": "report", "title": "Report", **fields})
