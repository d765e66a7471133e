"""Racing writers on PostgreSQL, through the kernel's write path (what the API, worker and reaper call).

Every scenario starts N threads at the same instant (a barrier), each with its own database connection,
and repeats ROUNDS times. The rules under test:

- N different moves of one run, all read from the same status: exactly one wins (the compare-and-set
  UPDATE), every other caller is told it lost (``RunConflictError``), and the run's history shows one
  transition for the round;
- N creates of the same unique key (repo slug; doctrine namespace+name+version; packet issue+version;
  a client-supplied id, even across kinds): exactly one row, every other caller refused cleanly with a
  duplicate code (a ``ValidationError`` when the row was already visible, else an ``IntegrityError`` that
  ``cwom.writes.integrity_code`` maps to ``duplicate``), never anything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from cwom import writes
from cwom.enums import EventAction, Status
from cwom.ids import new_ulid
from cwom.models import ContextPacket, DoctrineRef, Event, ObjectIndex, Repo, Run, RunConflictError, RunTransitionError
from tests import factories
from tests.reliability.conftest import postgres_only
from tests.reliability.helpers import race
from tests.reliability.history import assert_consistent_telemetry, assert_legal_history

pytestmark = [postgres_only, pytest.mark.usefixtures("committed_db")]

ROUNDS = 20
FAILURE = {"failure_category": "runtime", "failure_message": "lost the race"}


def outcome(result: Any) -> str:
    """A racer's result as one word: won, or the reason it was refused (anything else fails the test)."""
    if isinstance(result, RunConflictError):
        return "conflict"
    if isinstance(result, RunTransitionError):
        return "illegal"
    if isinstance(result, IntegrityError):
        return f"integrity:{writes.integrity_code(result)}"
    if isinstance(result, ValidationError):
        codes = (
            {e.code for errors in result.error_dict.values() for e in errors}
            if hasattr(result, "error_dict")
            else {e.code for e in result.error_list}
        )
        return "validation:" + ",".join(sorted(str(c) for c in codes))
    if isinstance(result, BaseException):
        return f"unexpected:{type(result).__name__}: {result}"
    return "won"


def mover(run_id: str, status: str) -> Callable[[], str]:
    """A caller that reads the run now (before the barrier releases it) and then asks for ``status``."""
    copy = Run.objects.get(pk=run_id)

    def move() -> str:
        writes.transition(copy, status, **(FAILURE if status == Status.FAILED else {}))
        return "won"

    return move


@pytest.mark.parametrize(
    ("start", "targets"),
    [
        (Status.RUNNING, [Status.BLOCKED, Status.DONE, Status.FAILED, Status.CANCELED]),
        (Status.READY, [Status.RUNNING, Status.RUNNING, Status.BLOCKED, Status.CANCELED]),
        (Status.BLOCKED, [Status.READY, Status.RUNNING, Status.FAILED, Status.CANCELED]),
    ],
)
def test_n_conflicting_moves_of_one_run_have_exactly_one_winner(start: str, targets: list[str]) -> None:
    issue = factories.issue()
    tally: Counter[str] = Counter()
    for _ in range(ROUNDS):
        run = factories.run(issue, status=Status.READY)
        path = {Status.READY: [], Status.RUNNING: [Status.RUNNING], Status.BLOCKED: [Status.BLOCKED]}[start]
        for status in path:
            writes.transition(Run.objects.get(pk=run.pk), status)
        events_before = len(assert_legal_history(run.pk))
        results = [outcome(r) for r in race([mover(run.pk, status) for status in targets])]
        tally.update(results)
        assert results.count("won") == 1, results
        assert set(results) <= {"won", "conflict"}, results
        winner = targets[results.index("won")]
        moves = assert_legal_history(run.pk)
        assert moves[events_before:] == [(start, winner)], moves
        assert_consistent_telemetry(run.pk)
    assert tally["won"] == ROUNDS and tally["conflict"] == ROUNDS * (len(targets) - 1)


def _assert_one_created(results: list[Any], rows: int) -> Counter[str]:
    words = [outcome(r) for r in results]
    assert rows == 1, f"{rows} rows for one unique key: {words}"
    assert words.count("won") == 1, words
    refusals = [w for w in words if w != "won"]
    allowed = {"integrity:duplicate", "validation:duplicate"}
    assert all(w in allowed for w in refusals), words
    return Counter(words)


N_CREATORS = 4


def test_n_creates_of_one_repo_slug_make_one_row() -> None:
    for round_ in range(ROUNDS):
        slug = f"race-repo-{round_}"
        body = {"name": "Race", "slug": slug}
        results = race([lambda body=body: writes.create("Repo", body) for _ in range(N_CREATORS)])
        _assert_one_created(results, Repo.objects.filter(slug=slug).count())


def test_n_creates_of_one_doctrine_version_make_one_row() -> None:
    for round_ in range(ROUNDS):
        body = {
            "namespace": "race",
            "name": f"rule-{round_}",
            "version": "1.0.0",
            "type": "policy",
            "priority": "must",
            "statement": "One version, one row.",
        }
        results = race([lambda body=body: writes.create("DoctrineRef", body) for _ in range(N_CREATORS)])
        rows = DoctrineRef.objects.filter(namespace="race", name=f"rule-{round_}", version="1.0.0").count()
        _assert_one_created(results, rows)


def test_n_creates_of_one_packet_version_for_one_issue_make_one_row() -> None:
    issue = factories.issue()
    for round_ in range(ROUNDS):
        body = {"for_issue": issue.pk, "version": f"v{round_}", "summary": "Racing briefs."}
        results = race([lambda body=body: writes.create("ContextPacket", body) for _ in range(N_CREATORS)])
        _assert_one_created(results, ContextPacket.objects.filter(for_issue=issue, version=f"v{round_}").count())


def test_n_creates_with_one_client_supplied_id_across_kinds_make_one_object() -> None:
    issue = factories.issue()
    for _ in range(ROUNDS):
        object_id = new_ulid()
        bodies = [
            ("Repo", {"id": object_id, "name": "Same id", "slug": f"same-id-{object_id.lower()}"}),
            ("Issue", {"id": object_id, "repo": issue.repo_id, "title": "Same id"}),
            ("ContextPacket", {"id": object_id, "for_issue": issue.pk, "summary": "Same id"}),
            ("ConstraintSnapshot", {"id": object_id, "scope": "run"}),
        ]
        results = race([lambda kind=kind, body=body: writes.create(kind, body) for kind, body in bodies])
        _assert_one_created(results, ObjectIndex.objects.filter(pk=object_id).count())
        winner_kind = bodies[[outcome(r) for r in results].index("won")][0]
        assert ObjectIndex.objects.get(pk=object_id).kind == winner_kind


def test_a_packet_without_a_version_never_shares_a_version_and_losers_are_refused_cleanly() -> None:
    """Racing creates that leave the version to the server (the issue's next version) never make two
    packets with one version; a loser of that race is refused with a duplicate code, never worse."""
    issue = factories.issue()
    for _ in range(ROUNDS):
        results = race([lambda: writes.create("ContextPacket", {"for_issue": issue.pk}) for _ in range(N_CREATORS)])
        words = [outcome(r) for r in results]
        assert "won" in words, words
        assert set(words) <= {"won", "integrity:duplicate", "validation:duplicate"}, words
    versions = list(ContextPacket.objects.filter(for_issue=issue).values_list("version", flat=True))
    assert len(versions) == len(set(versions))
    assert Event.objects.filter(object_kind="ContextPacket", action=EventAction.CREATE).count() == len(versions)


def test_concurrent_packets_without_a_version_all_succeed_with_distinct_versions() -> None:
    issue = factories.issue()
    for _ in range(ROUNDS):
        results = race([lambda: writes.create("ContextPacket", {"for_issue": issue.pk}) for _ in range(N_CREATORS)])
        assert [outcome(r) for r in results] == ["won"] * N_CREATORS
