"""Real parallel requests against a live server on PostgreSQL.

pytest-django's ``live_server`` is a threaded WSGI server: every request runs on its own thread with its
own database connection, so the racing requests below really do meet in the database. Each scenario
starts its N requests at the same instant (a barrier) and is repeated ROUNDS times:

- N conflicting moves of one run -> exactly one 200, the others 409 (or 412 with a stale If-Match);
  the run's history shows one transition for the round;
- N creates of one unique key (repo slug; doctrine namespace+name+version; packet issue+version)
  -> one 201, the others 409 (``duplicate``/``unique``); never a 500, never two rows;
- N POSTs with one Idempotency-Key -> one write; every answer is the first 201 replayed (or 409
  ``idempotency_in_progress``), and replays are byte-for-byte the first answer;
- N read-modify-write PATCHes of one issue with If-Match, retried on 412 -> no lost update.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cwom.enums import Status
from cwom.models import ApiToken, ContextPacket, DoctrineRef, Event, IdempotencyRecord, Issue, Repo, Run
from execution import tasks
from tests import factories
from tests.reliability.conftest import postgres_only
from tests.reliability.helpers import Reply, http, race
from tests.reliability.history import assert_legal_history

pytestmark = [postgres_only, pytest.mark.usefixtures("fresh_cache")]

ROUNDS = 20
N = 4


@pytest.fixture
def api(live_server: Any) -> Any:
    """Speak to the live server with a read-write token."""
    _, secret = ApiToken.issue("race-writer", can_write=True)

    class Api:
        base = f"{live_server.url}/api/v1/"

        def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
            return http(method, self.base + path, body, token=secret, headers=headers)

    return Api()


@pytest.fixture
def no_broker(monkeypatch: Any) -> list[Any]:
    """Enqueued runs stay ``ready``: the messages are recorded instead of sent to a broker."""
    sent: list[Any] = []
    monkeypatch.setattr(tasks.execute_run, "apply_async", lambda *a, **k: sent.append(k.get("args")))
    return sent


def assert_no_server_error(replies: list[Any]) -> None:
    for reply in replies:
        assert isinstance(reply, Reply), f"a request raised instead of answering: {reply!r}"
        assert reply.status < 500, f"server error: {reply.status} {reply.body}"


def test_n_conflicting_run_patches_have_one_winner_and_the_rest_409(api: Any) -> None:
    issue = factories.issue()
    tally: Counter[int] = Counter()
    targets = [
        {"status": Status.DONE},
        {"status": Status.CANCELED},
        {"status": Status.FAILED, "failure": {"category": "runtime", "message": "lost"}},
    ]
    for _ in range(ROUNDS):
        run = factories.started_run(issue_obj=issue)
        replies = race([lambda body=body, run=run: api("PATCH", f"runs/{run.pk}", body) for body in targets])
        assert_no_server_error(replies)
        statuses = [r.status for r in replies]
        tally.update(statuses)
        assert statuses.count(200) == 1, replies
        assert all(r.status == 409 and r.code == "illegal_transition" for r in replies if r.status != 200), replies
        winner = replies[statuses.index(200)].body["status"]
        assert assert_legal_history(run.pk) == [("ready", "running"), ("running", winner)]
    assert tally == {200: ROUNDS, 409: ROUNDS * (len(targets) - 1)}


def test_n_claims_with_one_if_match_have_one_winner_and_the_rest_412(api: Any) -> None:
    issue = factories.issue()
    for _ in range(ROUNDS):
        run = factories.run(issue, status=Status.READY)
        etag = api("GET", f"runs/{run.pk}").headers["etag"]
        replies = race(
            [
                lambda run=run, etag=etag: api(
                    "PATCH", f"runs/{run.pk}", {"status": Status.RUNNING}, **{"If-Match": etag}
                )
            ]
            * N
        )
        assert_no_server_error(replies)
        statuses = sorted(r.status for r in replies)
        assert statuses == [200] + [412] * (N - 1), replies
        assert all(r.code == "precondition_failed" for r in replies if r.status == 412)
        assert assert_legal_history(run.pk) == [("ready", "running")]


def test_a_cancel_racing_a_finish_leaves_one_terminal_status(api: Any) -> None:
    issue = factories.issue()
    for _ in range(ROUNDS):
        run = factories.started_run(issue_obj=issue)
        replies = race(
            [
                lambda run=run: api("PATCH", f"runs/{run.pk}", {"status": Status.DONE}),
                lambda run=run: api("PATCH", f"runs/{run.pk}", {"status": Status.CANCELED}),
            ]
        )
        assert_no_server_error(replies)
        assert sorted(r.status for r in replies) == [200, 409], replies
        moves = assert_legal_history(run.pk)
        assert len(moves) == 2 and moves[-1][1] == Run.objects.get(pk=run.pk).status


def _one_created(replies: list[Any], rows: int) -> None:
    assert_no_server_error(replies)
    statuses = sorted(r.status for r in replies)
    assert rows == 1, f"{rows} rows for one key: {replies}"
    assert statuses == [201] + [409] * (len(replies) - 1), replies
    # One code whichever layer refused the loser: model validation or the database's unique index.
    codes = {r.code for r in replies if r.status == 409}
    assert codes <= {"duplicate"}, [r.body for r in replies if r.status == 409]


def test_n_creates_of_one_repo_slug_answer_one_201_and_409s(api: Any) -> None:
    for round_ in range(ROUNDS):
        body = {"name": "Race", "slug": f"api-race-{round_}"}
        _one_created(
            race([lambda body=body: api("POST", "repos", body)] * N), Repo.objects.filter(slug=body["slug"]).count()
        )


def test_n_creates_of_one_doctrine_version_answer_one_201_and_409s(api: Any) -> None:
    for round_ in range(ROUNDS):
        body = {
            "namespace": "race",
            "name": f"api-rule-{round_}",
            "version": "2.0.0",
            "type": "policy",
            "priority": "must",
            "statement": "One version, one row.",
        }
        replies = race([lambda body=body: api("POST", "doctrine_refs", body)] * N)
        _one_created(replies, DoctrineRef.objects.filter(namespace="race", name=body["name"]).count())


def test_n_creates_of_one_packet_version_answer_one_201_and_409s(api: Any) -> None:
    issue = factories.issue()
    for round_ in range(ROUNDS):
        body = {"for_issue": issue.pk, "version": f"api-{round_}", "summary": "Racing briefs."}
        replies = race([lambda body=body: api("POST", "context_packets", body)] * N)
        _one_created(replies, ContextPacket.objects.filter(for_issue=issue, version=body["version"]).count())


def test_n_posts_with_one_idempotency_key_write_once_and_replay_the_first_answer(api: Any) -> None:
    for round_ in range(ROUNDS):
        key = f"race-key-{round_}"
        body = {"name": "Once", "slug": f"idem-{round_}"}
        replies = race([lambda body=body, key=key: api("POST", "repos", body, **{"Idempotency-Key": key})] * N)
        assert_no_server_error(replies)
        assert Repo.objects.filter(slug=body["slug"]).count() == 1
        assert IdempotencyRecord.objects.filter(key=key).count() == 1
        created = [r for r in replies if r.status == 201]
        assert created and all(r.status in (201, 409) for r in replies), replies
        assert all(r.code == "idempotency_in_progress" for r in replies if r.status == 409)
        assert len({r.raw for r in created}) == 1, "a replay differs from the first answer"
        assert sum(1 for r in created if r.headers.get("idempotent-replayed") != "true") == 1
        repo_id = created[0].body["id"]
        assert Event.objects.filter(object_id=repo_id, action="create").count() == 1


def test_n_enqueues_with_one_idempotency_key_make_one_run(api: Any, no_broker: list[Any]) -> None:
    repo = factories.repo()
    for round_ in range(ROUNDS):
        body = {
            "issue": {"repo": repo.slug, "title": f"Enqueued once {round_}"},
            "context": {"summary": "Do it once."},
            "executor": {"name": "noop", "config": {}},
        }
        replies = race(
            [lambda body=body, key=f"enq-{round_}": api("POST", "enqueue", body, **{"Idempotency-Key": key})] * N
        )
        assert_no_server_error(replies)
        accepted = [r for r in replies if r.status == 202]
        assert accepted and all(r.status in (202, 409) for r in replies), replies
        assert len({json.dumps(r.body, sort_keys=True) for r in accepted}) == 1
        assert Issue.objects.filter(title=f"Enqueued once {round_}").count() == 1
        assert Run.objects.filter(for_issue__title=f"Enqueued once {round_}").count() == 1
    assert len(no_broker) == ROUNDS  # one dispatch per enqueue that was written


def test_concurrent_enqueues_on_one_issue_all_succeed_with_distinct_packet_versions(
    api: Any, no_broker: list[Any]
) -> None:
    issue = factories.issue()
    for _ in range(ROUNDS // 4):
        body = {"issue": issue.pk, "context": {"summary": "Another attempt."}, "executor": {"name": "noop"}}
        replies = race([lambda body=body: api("POST", "enqueue", body)] * N)
        assert_no_server_error(replies)
        assert [r.status for r in replies] == [202] * N, replies
    versions = list(ContextPacket.objects.filter(for_issue=issue).values_list("version", flat=True))
    assert len(versions) == len(set(versions)) == (ROUNDS // 4) * N


def test_if_match_read_modify_write_patches_lose_no_update(api: Any) -> None:
    """Each client adds its own tag by reading the issue, appending, and PATCHing with If-Match; on 412 it
    reads again and retries. Whatever the interleaving, every tag ends up on the issue."""
    for round_ in range(ROUNDS // 2):
        issue = factories.issue()

        def add_tag(tag: str, issue_id: str = issue.pk) -> int:
            for attempt in range(50):
                current = api("GET", f"issues/{issue_id}")
                tags = [*current.body["tags"], tag]
                reply = api("PATCH", f"issues/{issue_id}", {"tags": tags}, **{"If-Match": current.headers["etag"]})
                if reply.status == 200:
                    return attempt
                assert reply.status == 412, reply.body
            raise AssertionError(f"{tag} never got through")

        tags = [f"client-{round_}-{i}" for i in range(N)]
        retries = race([lambda tag=tag: add_tag(tag) for tag in tags])
        assert all(isinstance(r, int) for r in retries), retries
        assert sorted(Issue.objects.get(pk=issue.pk).tags) == sorted(tags)
        updates = Event.objects.filter(object_id=issue.pk, action="update").count()
        assert updates == N
