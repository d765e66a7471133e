"""What ``POST /api/v1/enqueue`` tells the client: which executor runs the work and why, where the run is,
who created what, and refusals by the status policy (Refs through the one resolver)."""

from __future__ import annotations

from typing import Any

import pytest

from cwom.ids import new_ulid
from cwom.models import ContextPacket, Issue, Run
from tests.api.conftest import Api, problem
from tests.execution.helpers import enqueue_body

pytestmark = pytest.mark.django_db

TOKEN_ACTOR = {"actor_kind": "agent", "actor_id": "token:enqueuer", "display": "enqueuer"}


@pytest.fixture
def agent(db: None) -> Api:
    from cwom.models import ApiToken

    _, secret = ApiToken.issue("enqueuer", can_write=True)
    return Api(secret, "enqueuer")


def test_without_an_executor_the_answer_says_the_default_was_chosen(agent, dispatched, execution_settings):
    body = enqueue_body()
    body.pop("executor", None)
    response = agent.post("enqueue", body)
    assert response.status_code == 202, response.content
    assert response.json()["executor"] == {"name": execution_settings["default_executor"], "chosen_by": "default"}


def test_a_named_executor_is_reported_as_requested(agent, dispatched):
    response = agent.post("enqueue", enqueue_body(executor={"name": "noop"}))
    assert response.json()["executor"] == {"name": "noop", "chosen_by": "request"}


def test_location_is_the_path_of_the_run_and_run_url_its_absolute_url(agent, dispatched):
    response = agent.post("enqueue", enqueue_body())
    run_id = response.json()["run"]["id"]
    assert response["Location"] == f"/api/v1/runs/{run_id}"
    assert response.json()["run_url"] == f"http://testserver/api/v1/runs/{run_id}"


def test_what_enqueue_creates_records_the_caller_as_created_by(agent, dispatched):
    body = enqueue_body()
    body["issue"].pop("created_by", None)
    body["context"].pop("created_by", None)
    refs = agent.post("enqueue", body).json()
    assert Issue.objects.get(pk=refs["issue"]["id"]).created_by == TOKEN_ACTOR
    assert ContextPacket.objects.get(pk=refs["context_packet"]["id"]).created_by == TOKEN_ACTOR
    assert Run.objects.get(pk=refs["run"]["id"]).created_by == TOKEN_ACTOR


def test_an_issue_id_that_is_malformed_is_400(agent, dispatched):
    response = agent.post("enqueue", enqueue_body(issue="NOTAULID"))
    assert response.status_code == 400
    body = problem(response)
    assert (body["code"], body["errors"][0]["path"]) == ("invalid_id", "issue")
    assert "'NOTAULID' is not a valid id" in body["errors"][0]["message"]


def test_an_issue_id_of_another_kind_is_422_saying_which_kind_it_is(agent, dispatched, repo):
    response = agent.post("enqueue", enqueue_body(issue=repo.pk))
    assert response.status_code == 422
    assert problem(response)["errors"][0]["message"] == f"{repo.pk} is a Repo, not an Issue."


def test_an_unknown_doctrine_ref_is_422(agent, dispatched):
    missing = new_ulid()
    response = agent.post("enqueue", enqueue_body(doctrine_refs=[{"id": missing}]))
    assert response.status_code == 422
    assert problem(response)["errors"][0] == {
        "path": "doctrine_refs.0",
        "code": "unknown_ref",
        "message": f"No DoctrineRef has id {missing}.",
    }
    assert dispatched == []


def test_an_unknown_repo_slug_is_422_at_its_path(agent, dispatched):
    body = enqueue_body()
    body["issue"]["repo"] = "no-such-repo"
    response = agent.post("enqueue", body)
    assert response.status_code == 422
    assert problem(response)["errors"][0] == {
        "path": "issue.repo",
        "code": "unknown_ref",
        "message": "No Repo has slug 'no-such-repo'.",
    }


def test_a_misspelt_top_level_key_is_400_suggesting_the_right_one(agent, dispatched):
    body: dict[str, Any] = enqueue_body()
    body["contxt"] = body.pop("context")
    response = agent.post("enqueue", body)
    assert response.status_code == 400
    errors = problem(response)["errors"]
    assert errors[0] == {
        "path": "contxt",
        "code": "unexpected_field",
        "message": "Unexpected field 'contxt'. Did you mean 'context'?",
    }


def test_an_enqueued_run_says_the_service_manages_it(agent, dispatched):
    run_id = agent.post("enqueue", enqueue_body()).json()["run"]["id"]
    assert agent.get(f"runs/{run_id}").json()["managed_by"] == "service"


def test_a_misspelt_executor_key_is_400_suggesting_the_right_one(agent, dispatched):
    response = agent.post("enqueue", enqueue_body(executor={"name": "noop", "confg": {}}))
    assert response.status_code == 400
    assert problem(response)["errors"][0] == {
        "path": "executor.confg",
        "code": "unexpected_field",
        "message": "Unexpected field 'confg'. Did you mean 'config'?",
    }
