"""Property tests of the run state machine: any sequence of transition requests, from any number of
clients, leaves only legal histories.

Hypothesis drives a few simulated clients against one run through ``cwom.writes.transition`` (the
path the API, the worker and the reaper all take). Each client holds its own copy of the run, which
goes stale whenever another client moves the run. Whatever they ask, in whatever order:

- the outcome is the one the table predicts: an illegal move from the client's view is
  ``RunTransitionError``, a failure on the wrong status is a ``ValidationError``, a stale view is
  ``RunConflictError`` (the compare-and-set lost), and only a legal move from the current status wins;
- every win leaves exactly one ``transition`` event, and the events form a legal path through
  ``RUN_TRANSITIONS`` that ends in the stored status; nothing follows a terminal status;
- telemetry agrees with the history (started on the first move into running, ended exactly when
  terminal, ``duration_s = ended_at - started_at``).

Two kinds of client are modelled: *locking* clients re-read the run under a row lock before each
request (what the API's PATCH, the worker's claim and the reaper do), *stale* clients act on whatever
copy they last read (an in-process caller holding an old object).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cwom import writes
from cwom.enums import RUN_TRANSITIONS, TERMINAL_STATUSES, EventAction, FailureCategory, Status
from cwom.models import Event, Run, RunConflictError, RunTransitionError
from tests import factories
from tests.reliability.history import assert_consistent_telemetry, assert_legal_history

STATUSES = list(Status.values)
MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree; failures print their reproduction
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class RunClients(RuleBasedStateMachine):
    """Several clients, each with its own copy of one run, asking for arbitrary moves."""

    locking = False

    def __init__(self) -> None:
        super().__init__()
        self.run_id = ""
        self.truth = ""
        self.copies: list[Run] = []
        self.wins = 0
        self.outcomes: dict[str, int] = {}

    @initialize(initial=st.sampled_from([Status.PLANNED, Status.READY]), clients=st.integers(2, 4))
    def create_run(self, initial: str, clients: int) -> None:
        issue = factories.issue()
        # A planned run gets its sealed packet too, so the packet rules never decide the outcome.
        run = factories.run(issue, status=initial, packets=[factories.packet(issue)])
        self.run_id, self.truth = run.pk, initial
        self.copies = [Run.objects.get(pk=run.pk) for _ in range(clients)]

    def _copy(self, client: int) -> Run:
        index = client % len(self.copies)
        if self.locking:
            self.copies[index] = Run.objects.get(pk=self.run_id)
        return self.copies[index]

    @rule(client=st.integers(0, 3))
    def refresh(self, client: int) -> None:
        self.copies[client % len(self.copies)] = Run.objects.get(pk=self.run_id)

    @rule(client=st.integers(0, 3), wanted=st.sampled_from(STATUSES), failure=st.booleans())
    def request(self, client: int, wanted: str, failure: bool) -> None:
        copy = self._copy(client)
        seen = copy.status
        failure_kwargs = {"failure_category": FailureCategory.RUNTIME, "failure_message": "boom"} if failure else {}
        events_before = Event.objects.filter(object_id=self.run_id, action=EventAction.TRANSITION).count()
        if wanted not in RUN_TRANSITIONS[seen]:
            expected = "illegal"
        elif (wanted == Status.FAILED) != failure:
            expected = "invalid"
        elif seen != self.truth:
            expected = "conflict"
        else:
            expected = "won"
        try:
            with transaction.atomic():
                if self.locking:
                    Run.objects.select_for_update().filter(pk=self.run_id).get()
                writes.transition(copy, wanted, **failure_kwargs)
        except RunTransitionError as error:
            outcome = "illegal"
            assert error.current == seen and error.requested == wanted
            assert error.legal == sorted(RUN_TRANSITIONS[seen])
        except RunConflictError as error:
            outcome = "conflict"
            assert error.expected == seen and error.actual == self.truth
        except ValidationError as error:
            outcome = "invalid"
            assert "failure" in error.message_dict, error
        else:
            outcome = "won"
            self.truth = wanted
            self.wins += 1
        assert outcome == expected, f"{seen} -> {wanted} (failure={failure}, truth={self.truth}): {outcome}"
        # A refused request leaves the client's copy as it was (it may retry after a refresh).
        if outcome != "won":
            assert copy.status == seen
        events_after = Event.objects.filter(object_id=self.run_id, action=EventAction.TRANSITION).count()
        assert events_after - events_before == (1 if outcome == "won" else 0)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @precondition(lambda self: self.run_id and self.truth in TERMINAL_STATUSES)
    @rule(wanted=st.sampled_from(STATUSES))
    def terminal_is_final(self, wanted: str) -> None:
        """A fresh copy of a finished run cannot be moved anywhere, whatever is asked."""
        copy = Run.objects.get(pk=self.run_id)
        with pytest.raises(RunTransitionError):
            writes.transition(copy, wanted, failure_category="runtime" if wanted == Status.FAILED else None)

    @invariant()
    def stored_status_is_the_last_winner(self) -> None:
        if not self.run_id:
            return
        assert Run.objects.filter(pk=self.run_id).values_list("status", flat=True).get() == self.truth

    @invariant()
    def history_is_a_legal_path_with_one_event_per_win(self) -> None:
        if not self.run_id:
            return
        moves = assert_legal_history(self.run_id)
        assert len(moves) == self.wins

    @invariant()
    def telemetry_agrees_with_history(self) -> None:
        if self.run_id:
            # Stale clients are held to the start time too; see the stale-copy test below for that case.
            assert_consistent_telemetry(self.run_id, check_start=True)


class LockingClients(RunClients):
    locking = True


@pytest.mark.django_db
def test_locking_clients_leave_only_legal_histories_and_consistent_telemetry() -> None:
    run_state_machine_as_test(LockingClients, settings=MACHINE_SETTINGS)


@pytest.mark.django_db
def test_stale_clients_leave_only_legal_histories_one_event_per_win() -> None:
    run_state_machine_as_test(RunClients, settings=MACHINE_SETTINGS)


@pytest.mark.django_db
def test_a_stale_copy_never_rewrites_started_at_or_duration() -> None:
    issue = factories.issue()
    run = factories.run(issue, status=Status.READY)
    stale = Run.objects.get(pk=run.pk)  # read while ready: started_at is None
    fresh = Run.objects.get(pk=run.pk)
    writes.transition(fresh, Status.BLOCKED)
    writes.transition(fresh, Status.RUNNING)  # the real start
    writes.transition(fresh, Status.BLOCKED)
    writes.transition(fresh, Status.READY)
    # The stale copy's status agrees with the stored one again (ABA); its started_at does not.
    writes.transition(stale, Status.RUNNING)
    writes.transition(Run.objects.get(pk=run.pk), Status.DONE)
    assert_legal_history(run.pk)
    assert_consistent_telemetry(run.pk)


@pytest.mark.django_db
def test_a_fresh_copy_keeps_the_first_start_through_block_and_resume() -> None:
    run = factories.run(factories.issue(), status=Status.READY)
    writes.transition(run, Status.RUNNING)
    first_start = Run.objects.get(pk=run.pk).started_at
    for status in (Status.BLOCKED, Status.READY, Status.RUNNING, Status.BLOCKED, Status.RUNNING, Status.DONE):
        writes.transition(Run.objects.get(pk=run.pk), status)
    assert Run.objects.get(pk=run.pk).started_at == first_start
    assert len(assert_legal_history(run.pk)) == 7
    assert_consistent_telemetry(run.pk)
