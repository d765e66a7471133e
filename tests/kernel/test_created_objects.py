"""A just-created object is returned ready to dump: no query, and exactly what a fresh read shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cwom import shapes, writes


def _creators(make: Any) -> dict[str, Callable[[], Any]]:
    """One way to create each kind, with links, on top of a full chain."""
    repo = make.repo()
    doctrine = make.doctrine(applicability={"repo_refs": [repo.pk], "issue_types": ["bug"]})
    snapshot = make.snapshot(constraints={"time": {"available_minutes": 45}, "energy": {"score_0_5": 3}})
    issue = make.issue(repo, doctrine_refs=[doctrine.pk], constraints=[snapshot.pk])
    packet = make.packet(issue, doctrine_refs=[doctrine.pk], constraint_snapshot=snapshot.pk)
    run_body = {
        "for_issue": issue.pk,
        "status": "ready",
        "inputs": {
            "context_packets": [{"kind": "ContextPacket", "id": packet.pk, "role": "primary_context"}],
            "doctrine_refs": [doctrine.pk],
        },
        "cost": {"usd": 1, "tokens": 5},
    }
    started = writes.create("Run", run_body)
    writes.transition(started, "running")
    return {
        "Repo": lambda: make.repo(owners=[make.ACTOR], source={"system": "github", "external_id": "7"}),
        "DoctrineRef": lambda: make.doctrine(applicability={"repo_refs": [repo.pk]}),
        "ConstraintSnapshot": lambda: make.snapshot(constraints={"budget": {"usd_available": 20}}),
        "Issue": lambda: make.issue(
            repo, doctrine_refs=[doctrine.pk], relationships={"parent": issue.pk, "blocks": [issue.pk]}
        ),
        "ContextPacket": lambda: make.packet(issue, doctrine_refs=[doctrine.pk]),
        "Run": lambda: writes.create("Run", run_body),
        "Artifact": lambda: make.artifact(started, size_bytes=10),
    }


@pytest.mark.parametrize("kind", list(shapes.SHAPES))
def test_a_created_object_dumps_without_a_query_as_a_fresh_read_would(
    db: None, make: Any, kind: str, django_assert_num_queries: Any
) -> None:
    created = _creators(make)[kind]()
    with django_assert_num_queries(0):
        dumped = shapes.dump(created)
    assert dumped == shapes.dump(writes.reload(created))
