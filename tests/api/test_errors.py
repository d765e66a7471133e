"""The one exception handler: each kind of error maps to its status and stable code."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from cwom.api.errors import problem_exception_handler
from cwom.models import RunConflictError, RunTransitionError


def handle(exc: Exception) -> tuple[int, dict]:
    response = problem_exception_handler(exc, {})
    assert response.content_type == "application/problem+json"
    return response.status_code, response.data


def test_a_lost_compare_and_set_is_409_transition_conflict():
    status, body = handle(RunConflictError("01JD0Z8K3M5Q7R9T1V3X5Z7RNN", "ready", "running"))
    assert (status, body["code"], body["current_status"]) == (409, "transition_conflict", "running")


def test_an_illegal_move_lists_the_legal_ones():
    status, body = handle(RunTransitionError("running", "planned", {"done", "failed", "blocked", "canceled"}))
    assert (status, body["legal_moves"]) == (409, ["blocked", "canceled", "done", "failed"])


def test_a_guard_trigger_refusal_is_409_with_its_code():
    status, body = handle(IntegrityError("cwom:sealed: a sealed context packet never changes\nCONTEXT: PL/pgSQL"))
    assert (status, body["code"], body["detail"]) == (409, "sealed", "a sealed context packet never changes")


def test_a_unique_violation_is_409_duplicate():
    status, body = handle(IntegrityError("UNIQUE constraint failed: cwom_repo.slug"))
    assert (status, body["code"]) == (409, "duplicate")


@pytest.mark.parametrize("code", ["immutable", "sealed", "duplicate", "inputs_frozen", "append_only"])
def test_conflict_codes_are_409(code):
    status, body = handle(ValidationError({"field": [ValidationError("no", code=code)]}))
    assert (status, body["code"], body["errors"][0]["path"]) == (409, code, "field")


def test_other_validation_errors_are_400_with_every_field_listed():
    error = ValidationError(
        {"a": [ValidationError("bad %(x)s", code="invalid", params={"x": 1})], "__all__": [ValidationError("whole")]}
    )
    status, body = handle(error)
    assert status == 400
    assert body["errors"] == [
        {"path": "a", "code": "invalid", "message": "bad 1"},
        {"path": "", "code": "invalid", "message": "whole"},
    ]
    assert body["detail"] == "a: bad 1 (and 1 more)"
