"""The Python evaluation of check constraints agrees with the database's, and saves its queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import CheckConstraint, Q

from cwom.constraints import evaluate
from cwom.models import Artifact, ConstraintSnapshot, Issue, Run

CASES: list[tuple[type, dict[str, Any]]] = [
    (ConstraintSnapshot, {"energy_score_0_5": 3}),
    (ConstraintSnapshot, {"energy_score_0_5": 7}),
    (ConstraintSnapshot, {"energy_score_0_5": -1}),
    (ConstraintSnapshot, {"energy_score_0_5": None, "time_available_minutes": -5}),
    (ConstraintSnapshot, {"environment_connectivity": "carrier-pigeon"}),
    (ConstraintSnapshot, {"environment_connectivity": None, "risk_tolerance": "low"}),
    (Run, {"status": "failed", "failure_category": None}),
    (Run, {"status": "failed", "failure_category": "test"}),
    (Run, {"status": "done", "failure_category": "test"}),
    (Run, {"status": "sleeping"}),
    (Issue, {"id": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE", "parent_id": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE"}),
    (Issue, {"id": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE", "parent_id": None}),
    (Artifact, {"size_bytes": -1, "type": "log"}),
    (Artifact, {"size_bytes": 10, "type": "nonsense"}),
]


@pytest.mark.parametrize(("model", "fields"), CASES)
def test_python_and_database_agree_on_every_check_constraint(db: None, model: type, fields: dict[str, Any]) -> None:
    instance = model(**fields)
    against = instance._get_field_expression_map(meta=model._meta)
    for constraint in model._meta.constraints:
        if isinstance(constraint, CheckConstraint):
            in_python = evaluate(constraint.condition, instance)
            in_database = Q(constraint.condition).check(against)
            assert in_python == in_database, constraint.name


def test_a_run_that_ended_before_it_started_is_refused_in_python() -> None:
    from datetime import UTC, datetime

    run = Run(started_at=datetime(2026, 1, 2, tzinfo=UTC), ended_at=datetime(2026, 1, 1, tzinfo=UTC))
    (constraint,) = [c for c in Run._meta.constraints if c.name == "run_ended_after_started"]
    assert evaluate(constraint.condition, run) is False


def test_a_condition_it_does_not_understand_is_left_to_the_database() -> None:
    assert evaluate(Q(title__icontains="x"), Issue(title="x")) is None


def test_full_clean_of_a_new_issue_asks_the_database_only_what_it_must(
    repo: Any, django_assert_max_num_queries: Any
) -> None:
    # repo exists? (foreign key), id unused across kinds? (object index)
    issue = Issue(repo=repo, title="Check constraints cost no queries")
    with django_assert_max_num_queries(2):
        issue.full_clean()
