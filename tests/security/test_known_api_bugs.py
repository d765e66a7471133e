"""API bugs the fuzzer (test_schemathesis.py) found, one deterministic test each.

Fixed ones stay as plain regression tests. Each open one is a strict xfail: it passes (turning the
build red) the day the bug is fixed, which is the signal to drop the xfail here and the matching entry
of ``known_bug()`` in test_schemathesis.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator, FormatChecker

from cwom.api.filters import FILTERSETS, SEARCH_MAX_LENGTH, EventFilterSet
from cwom.api.views import KIND_PATHS
from cwom.validation import parse_timestamp
from execution.models import Subscription
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db

# Every list endpoint with its filters; the events feed too.
LISTS = {f"/api/v1/{KIND_PATHS[kind]}": filterset for kind, filterset in FILTERSETS.items()}
LISTS["/api/v1/events"] = EventFilterSet
PAGING = ("ordering", "cursor", "page_size")
# (list, parameter) for every documented query parameter but q, the one that may be empty.
EMPTY_REFUSED = [
    (path, name) for path, filterset in LISTS.items() for name in [*filterset.base_filters, *PAGING] if name != "q"
]
SEARCHABLE = [path for path, filterset in LISTS.items() if "q" in filterset.base_filters]


@pytest.mark.parametrize(
    "path", ["repos", "issues", "runs", "artifacts", "context_packets", "doctrine_refs", "constraint_snapshots"]
)
def test_options_on_a_list_endpoint_is_refused_not_a_server_error(writer: Any, path: str) -> None:
    # Fixed: the API has no OPTIONS metadata (its OpenAPI schema describes it), so OPTIONS is a 405.
    response = writer.client.options(f"/api/v1/{path}")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/problem+json")


def test_a_path_with_a_newline_is_a_problem_document(writer: Any) -> None:
    response = writer.get("/api/v1/repos/a%0Ab/events")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


# Fixed: an empty value was dropped, so ?created_before= or ?status= listed everything (200) although the
# schema documents a date-time, an enum, a pattern or minLength 1. Found by schemathesis.
@pytest.mark.parametrize(("path", "name"), EMPTY_REFUSED, ids=[f"{p.rsplit('/', 1)[1]}?{n}=" for p, n in EMPTY_REFUSED])
def test_an_empty_filter_value_is_refused_as_the_schema_says(writer: Any, path: str, name: str) -> None:
    response = writer.get(f"{path}?{name}=")

    assert response.status_code == 400
    (error,) = problem(response)["errors"]
    assert (error["path"], error["code"]) == (name, "empty_value")


@pytest.mark.parametrize(
    "query",
    [
        "status=ready,",  # an empty part of a comma-separated list
        "status=ready&status=",  # an empty repetition
        "tag=,",
        "repo_id=%20",  # blank is empty
        "created_after=%20%20",
        "ordering=created_at,",
        "ordering=%20",
    ],
)
def test_an_empty_part_or_a_blank_value_is_refused_too(writer: Any, query: str) -> None:
    response = writer.get(f"/api/v1/issues?{query}")

    assert response.status_code == 400
    assert problem(response)["errors"][0]["path"] == query.split("=")[0]


@pytest.mark.parametrize("name", PAGING)
def test_an_empty_paging_parameter_of_an_object_history_is_refused(writer: Any, make: Any, name: str) -> None:
    issue = make.issue()

    response = writer.get(f"/api/v1/issues/{issue.pk}/events?{name}=")

    assert response.status_code == 400
    (error,) = problem(response)["errors"]
    assert (error["path"], error["code"]) == (name, "empty_value")


@pytest.mark.parametrize("path", SEARCHABLE)
def test_an_empty_search_text_is_allowed_as_the_schema_says(writer: Any, path: str) -> None:
    assert writer.get(f"{path}?q=").status_code == 200


def test_the_schema_refuses_an_empty_value_exactly_where_the_api_does(writer: Any, make: Any) -> None:
    """Every query parameter of every GET in the OpenAPI document: an empty value is a 400 if and only if
    the parameter's schema refuses it (date-time is checked with the API's own parser)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    ids = {
        "repos": make.repo().pk,
        "issues": make.issue().pk,
        "runs": make.run().pk,
        "context_packets": make.packet(make.issue()).pk,
        "constraint_snapshots": make.snapshot().pk,
        "doctrine_refs": make.doctrine().pk,
        "artifacts": make.artifact(make.started_run()).pk,
        "subscriptions": Subscription.objects.create(url="https://hooks.example.com/", secret_nonce="n").pk,
    }
    checker = FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or parse_timestamp(value) is not None)
    checked, disagree = 0, []
    for path, operations in document["paths"].items():
        parameters = [p for p in operations.get("get", {}).get("parameters", []) if p["in"] == "query"]
        url = path.replace("{id}", ids.get(path.split("/")[3], ""))
        for parameter in parameters:
            empty: Any = [""] if parameter["schema"].get("type") == "array" else ""
            # References (#/components/schemas/...) resolve against the document's components.
            schema = {"components": document["components"], "allOf": [parameter["schema"]]}
            schema_allows = Draft202012Validator(schema, format_checker=checker).is_valid(empty)
            status = writer.get(f"{url}?{parameter['name']}=").status_code
            checked += 1
            if status != (200 if schema_allows else 400):
                disagree.append((path, parameter["name"], schema_allows, status))

    assert not disagree
    assert checked > 100  # every list's filters and paging, and each object's history


# Fixed: the schema documents q with maxLength 200 but any length was searched. Found by schemathesis.
@pytest.mark.parametrize("path", SEARCHABLE)
def test_a_search_text_longer_than_documented_is_refused(writer: Any, path: str) -> None:
    too_long = "%s" + "x" * (SEARCH_MAX_LENGTH - 2) + "%d"

    response = writer.get(path, {"q": too_long})

    assert response.status_code == 400
    (error,) = problem(response)["errors"]
    assert (error["path"], error["code"]) == ("q", "too_long")
    assert str(SEARCH_MAX_LENGTH) in error["message"] and too_long not in error["message"]


@pytest.mark.parametrize(
    ("q", "status"),
    [
        ("x" * SEARCH_MAX_LENGTH, 200),
        (" " + "x" * SEARCH_MAX_LENGTH, 400),  # counted as sent, before trimming
        ("é" * SEARCH_MAX_LENGTH, 200),  # characters, not bytes
    ],
)
def test_the_search_text_limit_counts_characters_as_sent(writer: Any, q: str, status: int) -> None:
    assert writer.get("/api/v1/issues", {"q": q}).status_code == status


# Fixed (issue 14, item 1, the status policy): a well-formed request naming an object that does not exist
# breaks a rule the schema cannot express, a 422. Found by schemathesis' positive_data_acceptance.
def test_a_reference_to_an_object_that_does_not_exist_is_a_422(writer: Any) -> None:
    response = writer.post("issues", {"repo": "01JD0Z8K3M5Q7R9T1V3X5Z7REP", "title": "Orphan"})

    assert response.status_code == 422
    assert problem(response)["code"] == "unknown_ref"


# Fixed (issue 14, item 1): an opaque cursor that does not decode is well-formed (any non-empty string, as
# documented) but names no position: a 422. Found by schemathesis' positive_data_acceptance.
@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_cursor_that_does_not_decode_is_a_422(writer: Any, path: str) -> None:
    response = writer.client.get(path, {"cursor": "0"})

    assert response.status_code == 422
    assert problem(response)["code"] == "invalid_cursor"
