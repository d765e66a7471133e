"""Every filter of every list endpoint, against a small world where each filter separates two objects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import django_filters
import pytest
from django.http import QueryDict
from django.utils import timezone

from cwom import writes
from cwom.api.filters import FILTERSETS, EventFilterSet
from cwom.api.views import KIND_PATHS
from tests.api.conftest import problem

pytestmark = pytest.mark.django_db

MARIA = {"actor_kind": "human", "actor_id": "maria", "display": "Maria"}
LI = {"actor_kind": "agent", "actor_id": "li", "display": "Li"}
LONG_AGO = "2020-01-01T00:00:00Z"
FAR_AHEAD = "2099-01-01T00:00:00Z"


@pytest.fixture
def world(db: None, make: Any) -> SimpleNamespace:
    """Objects 'a' are made before ``cut``, objects 'b' after it; each filter tells them apart."""
    w = SimpleNamespace()
    w.repo_a = make.repo(
        name="Alpha tower",
        slug="alpha",
        visibility="public",
        source={"system": "github", "external_id": "42"},
        owners=[MARIA],
        tags=["core"],
    )
    w.issue_a = make.issue(
        w.repo_a,
        title="Fix login",
        description="The login form breaks.",
        status="ready",
        type="bug",
        priority="P1",
        assignees=[MARIA],
        watchers=[LI],
        tags=["urgent"],
    )
    w.snapshot_a = make.snapshot(owner=MARIA, captured_at=LONG_AGO, tags=["old"])
    w.doctrine_a = make.doctrine(
        namespace="security",
        name="no-secrets",
        version="1.0.0",
        type="policy",
        priority="must",
        statement="Never log secrets.",
        applicability={"repo_refs": [w.repo_a.pk], "issue_types": ["bug"], "tags": ["auth"]},
        tags=["sec"],
    )
    w.packet_a = make.packet(
        w.issue_a, doctrine_refs=[w.doctrine_a.pk], constraint_snapshot=w.snapshot_a.pk, tags=["brief"]
    )
    w.run_a = make.run(
        w.issue_a,
        packets=[w.packet_a],
        mode="agent",
        tags=["nightly"],
        inputs={
            "context_packets": [w.packet_a.pk],
            "doctrine_refs": [w.doctrine_a.pk],
            "constraint_snapshot": w.snapshot_a.pk,
        },
    )
    writes.transition(w.run_a, "running")
    w.artifact_a = make.artifact(
        w.run_a,
        type="pr",
        digest="sha256:" + "a" * 64,
        media_type="text/plain",
        verification={"status": "passed"},
        tags=["ship"],
    )
    w.cut = timezone.now().isoformat().replace("+00:00", "Z")

    w.repo_b = make.repo(name="Beta", slug="beta")
    w.issue_b = make.issue(w.repo_b, title="Add feature", relationships={"parent": w.issue_a.pk}, priority="P3")
    w.snapshot_b = make.snapshot(scope="org", owner=LI)
    w.doctrine_b = make.doctrine(
        namespace="style", name="short-names", type="heuristic", priority="may", statement="Keep names short."
    )
    w.packet_b = make.packet(w.issue_b, sealed=False, version="draft-1")
    w.run_b = make.run(w.issue_b, status="planned", mode="human")
    w.packet_c = make.packet(w.issue_a)
    w.run_c = make.run(w.issue_a, packets=[w.packet_c])
    writes.transition(w.run_c, "running")
    w.artifact_b = make.artifact(w.run_c, type="log")
    writes.transition(w.run_c, "failed", failure_category="test", failure_message="red")
    return w


# (path, query, names of the objects expected, in any order)
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # repos
    ("repos", {"id": "{repo_a}"}, {"repo_a"}),
    ("repos", {"slug": "alpha,beta"}, {"repo_a", "repo_b"}),
    ("repos", {"visibility": "public"}, {"repo_a"}),
    ("repos", {"source_system": "github"}, {"repo_a"}),
    ("repos", {"source_external_id": "42"}, {"repo_a"}),
    ("repos", {"owner": "maria"}, {"repo_a"}),
    ("repos", {"tag": "core"}, {"repo_a"}),
    ("repos", {"q": "ALPHA"}, {"repo_a"}),
    ("repos", {"created_after": "{cut}"}, {"repo_b"}),
    ("repos", {"created_before": "{cut}"}, {"repo_a"}),
    ("repos", {"updated_after": "{cut}"}, {"repo_b"}),
    ("repos", {"updated_before": "{cut}"}, {"repo_a"}),
    # issues
    ("issues", {"id": ["{issue_a}", "{issue_b}"]}, {"issue_a", "issue_b"}),
    ("issues", {"repo_id": "{repo_b}"}, {"issue_b"}),
    ("issues", {"status": ["ready", "running"]}, {"issue_a"}),
    ("issues", {"type": "bug"}, {"issue_a"}),
    ("issues", {"priority": "P1,P2"}, {"issue_a"}),
    ("issues", {"tag": ["urgent", "nope"]}, {"issue_a"}),
    ("issues", {"assignee": "maria"}, {"issue_a"}),
    ("issues", {"watcher": "li"}, {"issue_a"}),
    ("issues", {"parent_id": "{issue_a}"}, {"issue_b"}),
    ("issues", {"q": "login"}, {"issue_a"}),
    ("issues", {"q": "form breaks"}, {"issue_a"}),
    ("issues", {"created_after": "{cut}"}, {"issue_b"}),
    ("issues", {"created_before": "{cut}"}, {"issue_a"}),
    ("issues", {"updated_after": "{cut}"}, {"issue_b"}),
    ("issues", {"updated_before": "{cut}"}, {"issue_a"}),
    # context packets
    ("context_packets", {"id": "{packet_b}"}, {"packet_b"}),
    ("context_packets", {"issue_id": "{issue_b}"}, {"packet_b"}),
    ("context_packets", {"version": "draft-1"}, {"packet_b"}),
    ("context_packets", {"sealed": "false"}, {"packet_b"}),
    ("context_packets", {"constraint_snapshot_id": "{snapshot_a}"}, {"packet_a"}),
    ("context_packets", {"doctrine_ref_id": "{doctrine_a}"}, {"packet_a"}),
    ("context_packets", {"tag": "brief"}, {"packet_a"}),
    ("context_packets", {"created_after": "{cut}"}, {"packet_b", "packet_c"}),
    ("context_packets", {"created_before": "{cut}"}, {"packet_a"}),
    # constraint snapshots
    ("constraint_snapshots", {"id": "{snapshot_a}"}, {"snapshot_a"}),
    ("constraint_snapshots", {"scope": "org"}, {"snapshot_b"}),
    ("constraint_snapshots", {"owner": "maria"}, {"snapshot_a"}),
    ("constraint_snapshots", {"captured_before": "2021-01-01T00:00:00Z"}, {"snapshot_a"}),
    ("constraint_snapshots", {"captured_after": "2021-01-01T00:00:00+00:00"}, {"snapshot_b"}),
    ("constraint_snapshots", {"tag": "old"}, {"snapshot_a"}),
    ("constraint_snapshots", {"created_after": "{cut}"}, {"snapshot_b"}),
    ("constraint_snapshots", {"created_before": "{cut}"}, {"snapshot_a"}),
    # doctrine refs
    ("doctrine_refs", {"id": "{doctrine_b}"}, {"doctrine_b"}),
    ("doctrine_refs", {"namespace": "security"}, {"doctrine_a"}),
    ("doctrine_refs", {"name": "no-secrets"}, {"doctrine_a"}),
    ("doctrine_refs", {"version": "1.0.0"}, {"doctrine_a", "doctrine_b"}),
    ("doctrine_refs", {"type": "heuristic"}, {"doctrine_b"}),
    ("doctrine_refs", {"priority": "must"}, {"doctrine_a"}),
    ("doctrine_refs", {"repo_id": "{repo_a}"}, {"doctrine_a"}),
    ("doctrine_refs", {"issue_type": "bug"}, {"doctrine_a"}),
    ("doctrine_refs", {"applicability_tag": "auth"}, {"doctrine_a"}),
    ("doctrine_refs", {"q": "log secrets"}, {"doctrine_a"}),
    ("doctrine_refs", {"tag": "sec"}, {"doctrine_a"}),
    ("doctrine_refs", {"created_after": "{cut}"}, {"doctrine_b"}),
    ("doctrine_refs", {"created_before": "{cut}"}, {"doctrine_a"}),
    # runs
    ("runs", {"id": "{run_b}"}, {"run_b"}),
    ("runs", {"issue_id": "{issue_a}"}, {"run_a", "run_c"}),
    ("runs", {"repo_id": "{repo_b}"}, {"run_b"}),
    ("runs", {"status": "running,planned"}, {"run_a", "run_b"}),
    ("runs", {"mode": "human"}, {"run_b"}),
    ("runs", {"tag": "nightly"}, {"run_a"}),
    ("runs", {"context_packet_id": ["{packet_a}", "{packet_c}"]}, {"run_a", "run_c"}),
    ("runs", {"doctrine_ref_id": "{doctrine_a}"}, {"run_a"}),
    ("runs", {"constraint_snapshot_id": "{snapshot_a}"}, {"run_a"}),
    ("runs", {"failure_category": "test"}, {"run_c"}),
    ("runs", {"started_after": "{cut}"}, {"run_c"}),
    ("runs", {"started_before": "{cut}"}, {"run_a"}),
    ("runs", {"ended_after": "{cut}"}, {"run_c"}),
    ("runs", {"ended_before": "{cut}"}, set()),
    ("runs", {"created_after": "{cut}"}, {"run_b", "run_c"}),
    ("runs", {"created_before": "{cut}"}, {"run_a"}),
    # artifacts
    ("artifacts", {"id": "{artifact_b}"}, {"artifact_b"}),
    ("artifacts", {"run_id": "{run_a}"}, {"artifact_a"}),
    ("artifacts", {"issue_id": "{issue_a}"}, {"artifact_a", "artifact_b"}),
    ("artifacts", {"type": "pr"}, {"artifact_a"}),
    ("artifacts", {"verification_status": "passed"}, {"artifact_a"}),
    ("artifacts", {"digest": "sha256:" + "a" * 64}, {"artifact_a"}),
    ("artifacts", {"media_type": "text/plain"}, {"artifact_a"}),
    ("artifacts", {"tag": "ship"}, {"artifact_a"}),
    ("artifacts", {"created_after": "{cut}"}, {"artifact_b"}),
    ("artifacts", {"created_before": "{cut}"}, {"artifact_a"}),
    # several filters AND together
    ("issues", {"status": "ready", "type": "feature"}, set()),
    ("runs", {"issue_id": "{issue_a}", "status": "failed"}, {"run_c"}),
]


def _fill(value: Any, world: SimpleNamespace) -> Any:
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        found = getattr(world, value[1:-1])
        return found if isinstance(found, str) else found.pk
    return value


def test_each_filter_selects_exactly_the_matching_objects(writer, world, subtests):
    # One world for every case (building it per case would dominate the suite's time).
    for path, query, expected in CASES:
        with subtests.test(msg=f"{path}?{query}"):
            params = {name: _fill(value, world) for name, value in query.items()}

            response = writer.get(path, params)

            assert response.status_code == 200, response.json()
            found = {item["id"] for item in response.json()["results"]}
            assert found == {getattr(world, name).pk for name in expected}


def test_every_filter_has_a_test():
    covered = {(path, name) for path, query, _ in CASES for name in query}
    missing = [
        (KIND_PATHS[kind], name)
        for kind, filterset in FILTERSETS.items()
        for name in filterset.base_filters
        if (KIND_PATHS[kind], name) not in covered
    ]
    missing += [("events", name) for name in EventFilterSet.base_filters if name not in EVENT_FILTERS_TESTED]
    assert missing == []


EVENT_FILTERS_TESTED = {"object_id", "kind", "action", "principal", "at_after", "at_before"}


def test_the_event_feed_filters(writer, world):
    writer.patch(f"issues/{world.issue_b.pk}", {"status": "ready"})

    def ids(**params: Any) -> set[tuple[str, str]]:
        return {(e["object"]["id"], e["action"]) for e in writer.get("events", params).json()["results"]}

    assert ids(object_id=world.issue_b.pk) == {(world.issue_b.pk, "create"), (world.issue_b.pk, "update")}
    assert ids(kind="Artifact") == {(world.artifact_a.pk, "create"), (world.artifact_b.pk, "create")}
    assert ids(action="seal") == set()  # packets sealed at creation record one create event
    assert ids(principal="token:writer-agent") == {(world.issue_b.pk, "update")}
    assert (world.repo_a.pk, "create") in ids(at_before=world.cut)
    assert (world.repo_a.pk, "create") not in ids(at_after=world.cut)
    assert (world.repo_b.pk, "create") in ids(at_after=world.cut)


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("issues", {"status": "unknown"}, "invalid_choice"),
        ("issues", {"repo_id": "not-a-ulid"}, "invalid_id"),
        ("issues", {"created_after": "yesterday"}, "invalid_datetime"),
        ("issues", {"created_after": "2026-01-01T00:00:00"}, "invalid_datetime"),
        ("context_packets", {"sealed": "maybe"}, "invalid_boolean"),
        ("issues", {"stauts": "ready"}, "unknown_parameter"),
        ("issues", {"ordering": "description"}, "invalid_choice"),
        ("issues", {"tag": "x\x00y"}, "invalid_characters"),
        ("issues", {"q": "x\x00y"}, "invalid_characters"),
        ("repos", {"q": "x" * 201}, "too_long"),
        ("issues", {"status": ""}, "empty_value"),
        ("runs", {"started_before": ""}, "empty_value"),
        ("context_packets", {"sealed": ""}, "empty_value"),
        ("artifacts", {"digest": ""}, "empty_value"),
        ("events", {"kind": "Issue,"}, "empty_value"),
    ],
)
def test_a_bad_filter_value_is_400_naming_the_problem(writer, path, query, code):
    response = writer.get(path, query)

    assert response.status_code == 400
    assert problem(response)["errors"][0]["code"] == code


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("constraint_snapshots", {"id": "= ANY(%s::text[])"}, "invalid_id"),
        ("runs", {"status": "%s%(x)s"}, "invalid_choice"),
        ("issues", {"created_after": "100%s"}, "invalid_datetime"),
        ("context_packets", {"sealed": "%d"}, "invalid_boolean"),
    ],
)
def test_a_bad_value_that_looks_like_a_format_string_is_quoted_in_a_400(writer, path, query, code):
    # Found by schemathesis: a value was put into the message itself, which django-filter then %-formats.
    response = writer.get(path, query)

    assert response.status_code == 400
    error = problem(response)["errors"][0]
    assert error["code"] == code
    assert repr(next(iter(query.values()))) in error["message"]


def test_an_unknown_enum_value_in_a_query_names_the_allowed_values(writer):
    message = problem(writer.get("runs", {"status": "ready,sleeping"}))["errors"][0]["message"]
    assert "planned, ready, running, blocked, done, failed, canceled" in message


def test_ordering_is_whitelisted_and_applied(writer, world):
    ascending = writer.get("issues", {"ordering": "priority"}).json()["results"]
    descending = writer.get("issues", {"ordering": "-priority"}).json()["results"]

    assert [i["priority"] for i in ascending] == ["P1", "P3"]
    assert [i["priority"] for i in descending] == ["P3", "P1"]


# --- the form of the given filters means what django-filter's form of every filter means ------------------
QUERIES = [
    {"status": "ready"},
    {"repo_id": "01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ", "status": "ready,done", "tag": "core"},
    {"tag": ["core", "ops"], "priority": "P1", "updated_after": LONG_AGO, "q": "login"},
    {"status": "nope", "repo_id": "not-a-ulid", "created_before": "yesterday", "tag": "x" * 65},
    {"status": "", "created_before": "", "tag": ["core", ""], "q": ""},
    {"q": "x" * 201, "started_after": " "},
    {"q": ""},
    {},
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("kind", ["Issue", "Run"])
def test_a_form_of_the_given_filters_filters_and_fails_as_the_full_form(kind: str, query: dict[str, Any]) -> None:
    filterset_class = FILTERSETS[kind]
    data = QueryDict(mutable=True)
    for name, value in query.items():
        if name in filterset_class.base_filters:
            data.setlist(name, value if isinstance(value, list) else [value])

    class EveryFilter(filterset_class):  # django-filter's own: every filter copied, a field for each
        __init__ = django_filters.FilterSet.__init__
        form = django_filters.FilterSet.form

    full, given = EveryFilter(data), filterset_class(data)

    assert set(full.form.fields) == set(filterset_class.base_filters)
    assert set(given.form.fields) == {name for name in query if name in filterset_class.base_filters}
    assert full.is_valid() == given.is_valid()
    if full.is_valid():
        assert str(full.qs.query) == str(given.qs.query)
    else:
        assert full.errors.get_json_data() == given.errors.get_json_data()


def test_filtersets_keep_no_state_between_requests(world: SimpleNamespace, reader: Any) -> None:
    first = reader.get("issues", {"tag": "urgent", "status": "ready"}).json()["results"]
    reader.get("issues", {"status": "nope"})
    reader.get("issues", {"tag": "", "status": ""})
    again = reader.get("issues", {"tag": "urgent", "status": "ready"}).json()["results"]

    assert [i["id"] for i in first] == [i["id"] for i in again] == [world.issue_a.pk]


def test_too_many_values_repeated_and_comma_separated_together_are_a_422(writer):
    # Each form alone is within what the schema allows (100 repeats; a value with commas); together past 100.
    values = [f"t{i},u{i}" for i in range(60)]

    response = writer.get("repos", {"tag": values})

    assert response.status_code == 422
    assert response.json()["code"] == "too_many_values"


def test_a_timestamp_with_any_rfc3339_offset_is_taken(writer):
    # RFC 3339 (the schema's date-time) allows offsets to ±23:59; PostgreSQL's own parser stops at ±15:59.
    response = writer.get("constraint_snapshots", {"created_before": "0212-03-24T02:07:22.88-22:10"})

    assert response.status_code == 200
