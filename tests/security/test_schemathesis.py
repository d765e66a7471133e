"""Schemathesis against the service's own OpenAPI schema (``/api/v1/schema/``), through the WSGI app.

Every operation of the schema is called with generated data, valid (positive) and invalid (negative),
with a read-write token, and every answer must pass **every** check schemathesis has (the CLI's
``--checks all``): no 5xx; status code, content type, response headers and response body as documented;
positive data accepted and negative data rejected; a required header left out refused; an undocumented
method answered 405 with ``Allow`` (``allow_header_conformance``); the authentication the operation
declares enforced (``ignored_auth``); created objects readable (``ensure_resource_availability``), none
used after deletion (``use_after_free``) and none of another principal's reachable
(``object_level_authorization``).

"Positive data accepted" allows exactly the refusals of the status policy that the schema cannot
foresee: 404 (the path's own object does not exist), 409 (a state conflict), 412/428 (preconditions) and
422 (a rule the schema cannot express: a referenced object that does not exist or is of another kind, a
rule across objects). "Negative data rejected" accepts any refusal of the policy, 413 included (a body
past the size limit is refused before it is read).

A stateful pass then chains operations through the links schemathesis infers from the schema (create ->
read/patch/query), with every check too.

Bounded so the whole file stays well under 4 minutes on 2 cores: ``MAX_EXAMPLES`` per operation and
mode, no shrinking beyond Hypothesis' own budget, no example database, derandomized (a fixed seed: the
same cases on every run). ``CWOM_FUZZ_EXAMPLES`` raises the bound for a longer local run.
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
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.config._checks import NegativeDataRejectionConfig

from cwom.models import ApiToken

MAX_EXAMPLES = int(os.environ.get("CWOM_FUZZ_EXAMPLES", "12"))
# Schema-valid requests may still be refused, by the status policy, only for what the schema cannot know.
POSITIVE_REFUSALS = ["404", "409", "412", "422", "428"]
# Schema-breaking requests must be refused: any 4xx of the policy (413: a body past the size limit).
NEGATIVE_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every CI run: a red build is reproducible
    suppress_health_check=list(HealthCheck),
)

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES)
# NUL is refused in every string (PostgreSQL cannot store it): the document says so for every string it
# describes, but follows a free-form object (meta) only three containers deep (cwom.api.components); deeper
# strings would be schema-valid NULs the document does not mention, so none is generated.
schema.config.generation.update(allow_x00=False)
schema.config.checks.update(included_check_names=["all"])
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "3xx", *POSITIVE_REFUSALS]
)
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(expected_statuses=NEGATIVE_REFUSALS)

pytestmark = pytest.mark.django_db

# What ran, and the failures of known, reported bugs that were set aside (each has its own strict
# xfail test in test_known_api_bugs.py, which turns red once the bug is fixed, so the filter can go).
RAN: dict[str, int] = {}


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
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
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
            case.validate_response(response, **kwargs)

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
    print(f"\nschemathesis: {len(RAN)} operations, {sum(RAN.values())} cases, {steps} stateful steps")
    if not RAN:
        pytest.skip("the fuzzing test did not run in this session (deselected)")
    assert not missing, f"operations never called: {sorted(missing)}"


def _operations() -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found
