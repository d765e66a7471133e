"""Schemathesis against the service's own OpenAPI schema (``/api/v1/schema/``), through the WSGI app.

Every operation of the schema is called with generated data, valid (positive) and invalid (negative),
with a read-write token, and every answer must pass:

- ``not_a_server_error``: never a 5xx;
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the media type is the documented one;
- ``response_schema_conformance``: the body matches the documented schema;
- ``negative_data_rejection``: data that breaks the schema is refused with a 4xx.

A stateful pass then follows the schema's links (create -> read/patch/query) where the schema has them.

Bounded so the whole file stays well under 4 minutes on 2 cores: ``MAX_EXAMPLES`` per operation and
mode, no shrinking beyond Hypothesis' own budget, no example database. ``CWOM_FUZZ_EXAMPLES`` raises the
bound for a longer local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from cwom.models import ApiToken

MAX_EXAMPLES = int(os.environ.get("CWOM_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every CI run: a red build is reproducible
    suppress_health_check=list(HealthCheck),
)

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES)
# A generated body past the documented request limit (CWOM_MAX_BODY_BYTES) is refused with 413, the documented
# answer: a refusal (4xx) like the others, which schemathesis' default list of rejection statuses leaves out.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]

pytestmark = pytest.mark.django_db

# What ran, and the failures of known, reported bugs that were set aside (each has its own strict
# xfail test in test_known_api_bugs.py, which turns red once the bug is fixed, so the filter can go).
RAN: dict[str, int] = {}
SET_ASIDE: dict[str, int] = {}


def known_bug(failure: Any, case: Any, response: Any) -> str | None:
    """The known bug a failure is an instance of, or None (a new finding: it fails the test).

    None is set aside at present (the empty query values and the over-long ``q`` are fixed; their tests in
    test_known_api_bugs.py are plain regression tests now). A finding that must wait for its fix gets a
    branch here returning its name, next to its strict xfail there.
    """
    return None


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    bug = known_bug(failure, case, response)
    if bug:
        SET_ASIDE[bug] = SET_ASIDE.get(bug, 0) + 1
    return bug is None


@pytest.fixture
def token() -> Iterator[str]:
    """A read-write token; throttling lifted so the fuzzer measures the API, not the rate limit.

    Schemathesis calls the WSGI handler directly (not through Django's test client), so the request
    signals would close the test's database connection in the middle of its transaction; like Django's
    test client, the fixture unhooks ``close_old_connections`` while it runs.
    """
    from django.conf import settings as django_settings

    _, secret = ApiToken.issue("schemathesis", can_write=True)
    rates = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"principal": "1000000/min"}}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with override_settings(REST_FRAMEWORK=rates):
            cache.clear()
            yield secret
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        cache.clear()


@schema.parametrize()
@HYPOTHESIS
def test_every_operation_conforms_to_the_schema(case: Any, token: str) -> None:
    RAN[case.operation.label] = RAN.get(case.operation.label, 0) + 1
    # Each case starts from the same database (rolled back after it), so a replayed case behaves the same.
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
        transaction.set_rollback(True)


def test_stateful_chains_follow_the_schema_links(token: str) -> None:
    machine = schema.as_state_machine()

    class Authorized(machine):  # type: ignore[misc, valid-type]
        """Each scenario runs in a savepoint rolled back at its end: Hypothesis replays a scenario against
        the same database state, so responses (and the links they feed) do not drift between replays."""

        def setup(self) -> None:
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            super().setup()

        def teardown(self) -> None:
            try:
                super().teardown()
            finally:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            RAN["stateful steps"] = RAN.get("stateful steps", 0) + 1
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS[:-1])

    run_state_machine_as_test(
        Authorized,
        settings=settings(
            max_examples=MAX_EXAMPLES * 3,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_every_operation_of_the_schema_was_exercised() -> None:
    """Runs after the fuzzing above (file order): every operation got cases; the figures are printed."""
    operations = {operation.label for operation in _operations()}
    missing = operations - set(RAN)
    steps = RAN.pop("stateful steps", 0)
    print(
        f"\nschemathesis: {len(RAN)} operations, {sum(RAN.values())} cases, {steps} stateful steps; "
        f"set aside (known bugs): {SET_ASIDE}"
    )
    if not RAN:
        pytest.skip("the fuzzing test did not run in this session (deselected)")
    assert not missing, f"operations never called: {sorted(missing)}"


def _operations() -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found
