"""The tool table: exactly the issue's tools, each argument schema the one its endpoint validates with."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import resolve

from cwom import shapes
from cwom.api import filters, views
from cwom.api.schema import HEADER_PARAMETERS
from cwom.enums import Kind
from cwom.mcp.tools import build
from execution.views import enqueue_request_schema

TOOLS = build()
NAMES = (
    "create_repo create_issue update_issue create_context_packet update_context_packet seal_context_packet "
    "create_constraint_snapshot create_doctrine_ref enqueue cancel_run retry_run create_artifact get_object get_run "
    "get_lineage diff_runs list_issues list_runs list_artifacts list_events get_artifact_content"
).split()
AN_ID = "01" + "A" * 24


def without_header_argument(schema: dict, argument: str) -> dict:
    """``schema`` without the header argument a write tool adds to its endpoint's own schema."""
    assert argument in schema["properties"] and argument not in schema.get("required", [])
    return {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != argument}}


def test_the_tools_are_exactly_the_ones_the_issue_names() -> None:
    assert list(TOOLS) == NAMES


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("create_repo", Kind.REPO),
        ("create_issue", Kind.ISSUE),
        ("create_context_packet", Kind.CONTEXT_PACKET),
        ("create_constraint_snapshot", Kind.CONSTRAINT_SNAPSHOT),
        ("create_doctrine_ref", Kind.DOCTRINE_REF),
        ("create_artifact", Kind.ARTIFACT),
    ],
)
def test_a_create_tool_takes_the_kinds_create_body(name: str, kind: str) -> None:
    published = shapes.json_schema(kind, "in")
    schema = without_header_argument(TOOLS[name].input_schema, "idempotency_key")
    assert schema == {key: value for key, value in published.items() if key != "$id"}
    assert (TOOLS[name].method, TOOLS[name].arguments) == ("POST", "body")


@pytest.mark.parametrize(
    ("name", "kind"), [("update_issue", Kind.ISSUE), ("update_context_packet", Kind.CONTEXT_PACKET)]
)
def test_an_update_tool_takes_the_id_and_the_kinds_patch_body(name: str, kind: str) -> None:
    patch = shapes.json_schema(kind, "patch")
    schema = without_header_argument(TOOLS[name].input_schema, "if_match")
    assert schema["properties"] == {"id": schema["properties"]["id"], **patch["properties"]}
    assert schema["required"] == ["id"] and schema["additionalProperties"] is False
    assert schema["properties"]["id"]["pattern"] == shapes.ID_SCHEMA["pattern"]


def test_enqueue_takes_the_enqueue_request() -> None:
    assert without_header_argument(TOOLS["enqueue"].input_schema, "idempotency_key") == enqueue_request_schema()
    assert "$ref" not in json.dumps(TOOLS["enqueue"].input_schema)  # it stands alone


@pytest.mark.parametrize(
    ("name", "viewset"),
    [
        ("list_issues", views.IssueViewSet),
        ("list_runs", views.RunViewSet),
        ("list_artifacts", views.ArtifactViewSet),
        ("list_events", views.EventViewSet),
    ],
)
def test_a_list_tool_takes_its_endpoints_filters_and_paging(name: str, viewset: type) -> None:
    properties = TOOLS[name].input_schema["properties"]
    assert set(properties) == set(viewset.filterset_class.base_filters) | filters.PAGINATION_PARAMS
    for filter_name, flt in viewset.filterset_class.base_filters.items():
        expected = flt.openapi_schema() if hasattr(flt, "openapi_schema") else {"type": "string"}
        assert {k: v for k, v in properties[filter_name].items() if k != "description"} == expected
    ordering = set(properties["ordering"]["enum"])
    assert ordering == {f"{sign}{field}" for field in viewset.ordering_fields for sign in ("", "-")}
    assert properties["page_size"]["maximum"] == 500
    assert TOOLS[name].page and TOOLS[name].arguments == "query"


def test_a_tool_on_one_object_takes_its_id() -> None:
    for tool in TOOLS.values():
        if tool.takes_id:
            assert "id" in tool.input_schema["required"], tool.name
        else:
            assert tool.name.startswith(("create_", "list_", "enqueue")), tool.name


def test_every_tool_reaches_an_endpoint_of_the_api() -> None:
    for tool in TOOLS.values():
        match = resolve(tool.path.format(**dict.fromkeys(tool.path_arguments, AN_ID)))
        reached = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
        assert reached is not views.NotFoundView, tool.name


def test_descriptions_tell_a_model_when_to_use_the_tool_in_one_or_two_sentences() -> None:
    for tool in TOOLS.values():
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", tool.description.strip()) if s]
        assert 1 <= len(sentences) <= 2, tool.name
        assert len(tool.description) <= 300, tool.name


def test_read_tools_are_the_ones_that_only_read() -> None:
    reads = {name for name, tool in TOOLS.items() if not tool.writes}
    assert reads == {name for name in NAMES if name.startswith(("get_", "list_", "diff_"))}
    assert {tool.method for tool in TOOLS.values() if not tool.writes} == {"GET"}


def test_diff_runs_takes_the_two_run_ids_of_its_path() -> None:
    tool = TOOLS["diff_runs"]
    assert (tool.method, tool.path, tool.writes) == ("GET", "/api/v1/runs/{id}/diff/{other_id}", False)
    schema = tool.input_schema
    assert schema["required"] == ["id", "other_id"] and schema["additionalProperties"] is False
    for name in ("id", "other_id"):
        assert schema["properties"][name]["pattern"] == shapes.ID_SCHEMA["pattern"]


def test_posts_take_an_idempotency_key_and_patches_an_if_match_with_the_apis_header_schema() -> None:
    for tool in TOOLS.values():
        properties = tool.input_schema["properties"]
        takes = {name for name in ("idempotency_key", "if_match") if name in properties}
        if not tool.writes:
            assert takes == set(), tool.name
            continue
        argument, header = {"POST": ("idempotency_key", "Idempotency-Key"), "PATCH": ("if_match", "If-Match")}[
            tool.method
        ]
        assert takes == {argument}, tool.name
        assert argument not in tool.input_schema.get("required", [])
        schema = {k: v for k, v in properties[argument].items() if k != "description"}
        assert schema == HEADER_PARAMETERS[header]["schema"], tool.name
        assert properties[argument]["description"]
