"""The status policy over HTTP: each status answers one kind of refusal, with the specific code on top, and
the refusal says what to do.

400 the documented shape, 422 a rule the schema cannot express, 404 the path's own object, 409 the
object's state; the table is ``cwom.api.errors.PROBLEM_CODES`` (and ``docs/api.md``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from cwom.api.errors import PROBLEM_CODES, problem_exception_handler
from cwom.ids import new_ulid
from cwom.models import Issue, Run

from .conftest import problem

pytestmark = pytest.mark.django_db


def refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem of ``response``, checked to answer ``status`` with top-level ``code``."""
    assert response.status_code == status, response.content[:400]
    body = problem(response)
    assert body["code"] == code, body
    assert PROBLEM_CODES[code].status == status
    return body


# --- 400: the documented shape ---------------------------------------------------------------------------
def test_a_misspelt_field_is_400_suggesting_the_close_name_and_the_missing_one_at_its_own_path(writer, repo):
    body = refusal(writer.post("issues", {"repo": repo.pk, "titel": "Add /healthz"}), 400, "unexpected_field")
    assert body["errors"] == [
        {"path": "titel", "code": "unexpected_field", "message": "Unexpected field 'titel'. Did you mean 'title'?"},
        {"path": "title", "code": "required", "message": "This field is required."},
    ]


def test_a_field_with_no_close_name_lists_the_allowed_ones(writer):
    body = refusal(writer.post("repos", {"name": "R", "slug": "r", "colour": "red"}), 400, "unexpected_field")
    assert body["errors"][0]["message"].startswith("Unexpected field 'colour'; allowed: created_by, default_branch,")


def test_no_message_is_raw_validator_text(writer, repo):
    body = refusal(writer.post("issues", {"repo": repo.pk, "title": 5, "priority": "P9"}), 400, "invalid_choice")
    assert [(e["path"], e["code"], e["message"]) for e in body["errors"]] == [
        ("priority", "invalid_choice", "'P9' is not one of the allowed values: P0, P1, P2, P3, P4."),
        ("title", "invalid_type", "Expected string, got a number."),
    ]


def test_an_unknown_query_parameter_is_400(reader):
    body = refusal(reader.get("issues", {"titel": "x"}), 400, "unknown_parameter")
    assert body["errors"][0]["path"] == "titel"


def test_a_malformed_id_in_a_body_field_is_400_saying_it_is_not_a_valid_id(writer):
    body = refusal(writer.post("runs", {"for_issue": "NOTAULID"}), 400, "invalid_id")
    assert body["errors"][0] == {
        "path": "for_issue",
        "code": "invalid_id",
        "message": "'NOTAULID' is not a valid id (a ULID: 26 characters of Crockford base32).",
    }


def test_a_malformed_id_in_a_ref_object_is_400_at_the_id(writer):
    body = refusal(writer.post("runs", {"for_issue": {"id": "NOTAULID"}}), 400, "invalid_id")
    assert body["errors"][0]["path"] == "for_issue.id"


def test_a_string_that_is_neither_an_id_nor_a_slug_where_a_repo_is_wanted_is_400(writer):
    body = refusal(writer.post("issues", {"repo": "not a slug!", "title": "t"}), 400, "invalid_id")
    assert "not a valid id" in body["errors"][0]["message"] and "nor a repo slug" in body["errors"][0]["message"]


# --- 422: a rule the schema cannot express ---------------------------------------------------------------
def test_an_unknown_id_is_422(writer):
    missing = new_ulid()
    body = refusal(writer.post("issues", {"repo": missing, "title": "t"}), 422, "unknown_ref")
    assert body["detail"] == f"repo: No Repo has id {missing}."


def test_an_id_of_another_kind_is_422_saying_which_kind_it_is(writer, issue):
    body = refusal(writer.post("runs", {"for_issue": issue.repo_id}), 422, "wrong_kind")
    assert body["errors"][0]["message"] == f"{issue.repo_id} is a Repo, not an Issue."


def test_an_unknown_slug_is_422(writer):
    body = refusal(writer.post("issues", {"repo": "no-such-repo", "title": "t"}), 422, "unknown_ref")
    assert body["errors"][0]["message"] == "No Repo has slug 'no-such-repo'."


def test_a_packet_of_another_issue_is_422(writer, make, issue):
    foreign = make.packet(make.issue())
    change = {"context_packets": {"add": [foreign.pk]}}
    body = refusal(writer.patch(f"issues/{issue.pk}", change), 422, "packet_issue_mismatch")
    assert body["errors"][0]["path"] == "context_packets"


def test_a_cursor_that_does_not_decode_is_422(reader):
    refusal(reader.get("issues", {"cursor": "garbage"}), 422, "invalid_cursor")


def test_a_rule_answers_one_status_whichever_layer_refuses_it(writer, make):
    """repo_mismatch from the model layer (HTTP) and from the database's guard trigger: the same status."""
    issue = make.issue()
    other = make.repo()
    by_model = refusal(writer.post("runs", {"for_issue": issue.pk, "repo": other.pk}), 422, "repo_mismatch")
    by_database = problem_exception_handler(IntegrityError("cwom:repo_mismatch: a run's repo is its issue's"), {})
    assert (by_database.status_code, by_database.data["code"]) == (422, by_model["code"])


# --- 404: the path's own object --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "runs/NOTAULID"),
        ("patch", "runs/NOTAULID"),
        ("get", "runs/NOTAULID/events"),
        ("get", "runs/NOTAULID/lineage"),
        ("post", "runs/NOTAULID/cancel"),
        ("get", "artifacts/NOTAULID/content"),
        ("get", "objects/NOTAULID"),
    ],
)
def test_a_malformed_id_in_a_path_is_a_404_saying_it_is_not_a_valid_id(writer, method, path):
    response = getattr(writer, method)(path, {} if method == "patch" else None)
    body = refusal(response, 404, "not_found")
    assert body["detail"].startswith("'NOTAULID' is not a valid id (a ULID")
    assert "No endpoint" not in body["detail"]


@pytest.mark.parametrize("suffix", ["", "/events", "/lineage", "/cancel"])
def test_an_id_of_another_kind_in_a_path_says_which_kind_it_is(writer, issue, suffix):
    method = writer.post if suffix == "/cancel" else writer.get
    body = refusal(method(f"runs/{issue.pk}{suffix}"), 404, "not_found")
    assert body["detail"] == f"{issue.pk} is an Issue, not a Run: see /api/v1/issues/{issue.pk}."


def test_an_unknown_id_in_a_path_is_a_plain_404(reader):
    missing = new_ulid()
    assert refusal(reader.get(f"runs/{missing}"), 404, "not_found")["detail"] == f"No Run has id {missing}."


def test_a_lower_case_id_in_a_path_still_names_its_object(reader, issue):
    assert reader.get(f"issues/{issue.pk.lower()}").json()["id"] == issue.pk


# --- 409: the object's state -----------------------------------------------------------------------------
def test_editing_a_sealed_packet_is_409_saying_it_is_sealed_and_how_to_make_a_new_version(writer, make, issue):
    packet = make.packet(issue)
    body = refusal(writer.patch(f"context_packets/{packet.pk}", {"summary": "Rewritten."}), 409, "sealed")
    message = body["errors"][0]["message"]
    assert body["errors"][0]["path"] == "summary"
    assert message.startswith(f"ContextPacket {packet.pk} is sealed: its summary never changes.")
    assert "create a new ContextPacket for the same issue" in message and "next version" in message


def test_a_sealed_packets_message_names_the_field_by_its_contract_path(writer, make, issue):
    packet = make.packet(issue)
    response = writer.patch(f"context_packets/{packet.pk}", {"inputs": {"links": ["https://example.com"]}})
    error = refusal(response, 409, "sealed")["errors"][0]
    assert error["path"] == "inputs.links"
    assert f"ContextPacket {packet.pk} is sealed: its inputs.links never changes." in error["message"]


def test_unsealing_a_packet_says_sealing_is_one_way(writer, make, issue):
    packet = make.packet(issue)
    body = refusal(writer.patch(f"context_packets/{packet.pk}", {"sealed": False}), 409, "sealed")
    assert "sealing is one-way" in body["errors"][0]["message"]


def test_a_taken_slug_is_409(writer, repo):
    refusal(writer.post("repos", {"name": "Again", "slug": repo.slug}), 409, "duplicate")


def test_a_conflict_answers_before_other_errors_of_one_refusal():
    """Changing the body cannot fix a conflict with the object's state: its 409 answers, every error is listed."""
    error = ValidationError(
        {
            "title": [ValidationError("bad", code="invalid_type")],
            "repo": [ValidationError("gone", code="unknown_ref")],
            "summary": [ValidationError("sealed", code="sealed")],
        }
    )
    response = problem_exception_handler(error, {})
    assert (response.status_code, response.data["code"]) == (409, "sealed")
    assert [e["code"] for e in response.data["errors"]] == ["invalid_type", "unknown_ref", "sealed"]
    without_conflict = problem_exception_handler(
        ValidationError({"title": error.error_dict["title"], "repo": error.error_dict["repo"]}), {}
    )
    assert (without_conflict.status_code, without_conflict.data["code"]) == (422, "unknown_ref")


# --- Repo slugs wherever a Repo Ref is ------------------------------------------------------------------
def test_issues_take_a_repo_slug(writer, repo):
    response = writer.post("issues", {"repo": repo.slug, "title": "By slug"})
    assert response.status_code == 201, response.content
    assert response.json()["repo"] == {"kind": "Repo", "id": repo.pk, "role": None}


def test_runs_take_a_repo_slug(writer, issue):
    response = writer.post("runs", {"for_issue": issue.pk, "repo": issue.repo.slug})
    assert response.status_code == 201, response.content
    assert Run.objects.get(pk=response.json()["id"]).repo_id == issue.repo_id


def test_a_patch_takes_a_repo_slug(writer, issue, make):
    doctrine = writer.post(
        "doctrine_refs",
        {
            "namespace": "n",
            "name": "slugged",
            "version": "1",
            "type": "policy",
            "priority": "must",
            "statement": "s",
            "applicability": {"repo_refs": [issue.repo.slug]},
        },
    )
    assert doctrine.status_code == 201, doctrine.content
    assert doctrine.json()["applicability"]["repo_refs"][0]["id"] == issue.repo_id


# --- created_by -----------------------------------------------------------------------------------------
def test_created_by_defaults_to_the_token_as_an_agent(writer, repo):
    response = writer.post("issues", {"repo": repo.pk, "title": "Mine"})
    assert response.json()["created_by"] == {
        "actor_kind": "agent",
        "actor_id": "token:writer-agent",
        "display": "writer-agent",
    }
    assert Issue.objects.get(pk=response.json()["id"]).created_by["actor_id"] == "token:writer-agent"


def test_created_by_defaults_to_the_declared_actor_header(writer, repo):
    actor = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder 7"}
    response = writer.post("issues", {"repo": repo.pk, "title": "Theirs"}, **{"X-CWOM-Actor": _json(actor)})
    assert response.json()["created_by"] == actor


def test_a_created_by_the_client_declares_is_kept(writer, repo):
    actor = {"actor_kind": "human", "actor_id": "ada", "display": "Ada"}
    assert writer.post("issues", {"repo": repo.pk, "title": "t", "created_by": actor}).json()["created_by"] == actor
    assert writer.post("issues", {"repo": repo.pk, "title": "t", "created_by": None}).json()["created_by"] is None


# --- Location --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind_path", ["repos", "issues"])
def test_location_is_the_path_of_the_new_object(writer, repo, kind_path):
    body = {"name": "L", "slug": "located"} if kind_path == "repos" else {"repo": repo.slug, "title": "t"}
    response = writer.post(kind_path, body)
    assert response.status_code == 201
    assert response["Location"] == f"/api/v1/{kind_path}/{response.json()['id']}"


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# --- who drives a run -----------------------------------------------------------------------------------
def test_a_run_made_with_post_says_its_client_manages_it(writer, issue):
    run = writer.post("runs", {"for_issue": issue.pk}).json()
    assert run["managed_by"] == "client"
    echoed = writer.post("runs", {"for_issue": issue.pk, "managed_by": "client"})
    assert echoed.status_code == 201 and echoed.json()["managed_by"] == "client"


def test_a_client_cannot_claim_the_service_manages_its_run(writer, issue):
    body = refusal(writer.post("runs", {"for_issue": issue.pk, "managed_by": "service"}), 400, "unexpected_field")
    assert (
        body["errors"][0]["message"] == "managed_by is read-only (set by the service): leave it out of a create body."
    )
    run = writer.post("runs", {"for_issue": issue.pk}).json()
    refusal(writer.patch(f"runs/{run['id']}", {"managed_by": "service"}), 409, "read_only_field")


# --- errors Django answers itself -----------------------------------------------------------------------
def test_a_host_not_allowed_is_a_400_problem_document_not_an_html_page(writer, settings):
    settings.ALLOWED_HOSTS = ["cwom.example"]
    response = writer.client.get("/api/v1/repos", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "bad_request"


def test_the_admin_keeps_djangos_own_pages(writer, settings):
    settings.ALLOWED_HOSTS = ["cwom.example"]
    response = writer.client.get("/admin/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/problem+json")


def test_a_misspelt_query_parameter_suggests_the_close_name(reader):
    body = refusal(reader.get("runs", {"stauts": "ready"}), 400, "unknown_parameter")
    assert body["errors"] == [
        {
            "path": "stauts",
            "code": "unknown_parameter",
            "message": "Unknown query parameter 'stauts'. Did you mean 'status'?",
        }
    ]


def test_a_diff_against_an_id_of_another_kind_says_which_kind_it_is(reader, make, issue):
    run = make.run()
    body = refusal(reader.get(f"runs/{run.pk}/diff/{issue.pk}"), 404, "not_found")
    assert body["detail"] == f"{issue.pk} is an Issue, not a Run: see /api/v1/issues/{issue.pk}."
    assert refusal(reader.get(f"runs/NOTAULID/diff/{run.pk}"), 404, "not_found")["detail"].startswith(
        "'NOTAULID' is not"
    )
