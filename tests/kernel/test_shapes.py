"""Contract shapes: the examples (cwom/spec/examples) fit the JSON Schemas, import through the write path
and dump back."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cwom import shapes, writes
from cwom.enums import Kind
from cwom.models import Repo
from tests import factories
from tests.kernel.assertions import Footprint, refused

pytestmark = pytest.mark.django_db

KINDS = list(Kind.values)
# Values the server sets itself; everything else in an example is what a client can send.
SERVER_SET = {"created_at", "updated_at", "sealed_at", "telemetry"}
# What the service derives: an issue's runs, every bounded list's total and URL.
BOUNDED_EXTRAS = {
    f"{name}{suffix}" for name in ("runs", "constraints", "context_packets") for suffix in ("_total", "_url")
}
READ_ONLY_ON_CREATE = SERVER_SET | {"runs"} | BOUNDED_EXTRAS
# The order in which the examples can be imported: each one only refers to those before it.
IMPORT_ORDER = ["Repo", "DoctrineRef", "ConstraintSnapshot", "Issue", "ContextPacket", "Run", "Artifact"]


def keys_tree(value: Any) -> Any:
    """The shape of a JSON value: its keys and their nesting, without the values."""
    if isinstance(value, dict):
        return {key: keys_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [keys_tree(value[0])] if value and isinstance(value[0], dict | list) else []
    return None


def without(value: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if key not in names}


# --- the schemas ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_example_validates_against_its_kind_schema(kind: str) -> None:
    schema = shapes.json_schema(kind)
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(factories.example(kind))]
    assert errors == []


@pytest.mark.parametrize("kind", KINDS)
def test_each_schema_is_json_schema_2020_12_with_a_versioned_id(kind: str) -> None:
    schema = shapes.json_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://cwom.dev/schema/v{shapes.SCHEMA_VERSION}/{kind}.json"
    assert schema["properties"]["kind"] == {"type": "string", "const": kind}
    assert set(schema["required"]) == set(factories.example(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_a_schema_refuses_an_unknown_top_level_field(kind: str) -> None:
    example = {**factories.example(kind), "surprise": 1}
    assert not Draft202012Validator(shapes.json_schema(kind)).is_valid(example)


def test_an_artifact_update_body_may_only_touch_its_verification() -> None:
    schema = shapes.json_schema("Artifact", "patch")
    assert set(schema["properties"]) == {"kind", "verification"}


# --- round trip through the write path --------------------------------------------------------------------
@pytest.fixture
def imported(db: None) -> dict[str, Any]:
    """Every example created through cwom.writes, under its own id, in dependency order."""
    made: dict[str, Any] = {}
    for kind in IMPORT_ORDER:
        body = without(factories.example(kind), READ_ONLY_ON_CREATE)
        if kind == "Issue":
            body.pop("context_packets")  # the packet links itself into its issue when it is created
        if kind == "Run":
            body["status"] = "ready"
            body["outputs"] = without(body["outputs"], {"artifacts", "artifacts_total", "artifacts_url"})
        made[kind] = writes.create(kind, body)
        if kind == "Run":
            writes.transition(made[kind], "running")
    writes.transition(writes.reload(made["Run"]), "done")
    return {kind: writes.reload(obj) for kind, obj in made.items()}


@pytest.mark.parametrize("kind", IMPORT_ORDER)
def test_an_imported_example_dumps_back_to_the_example(imported: dict[str, Any], kind: str) -> None:
    dumped = shapes.dump(imported[kind])
    example = factories.example(kind)
    assert keys_tree(dumped) == keys_tree(example)
    assert without(dumped, SERVER_SET) == without(example, SERVER_SET)
    assert not list(Draft202012Validator(shapes.json_schema(kind)).iter_errors(dumped))


def test_an_imported_example_keeps_its_run_timings_server_side(imported: dict[str, Any]) -> None:
    telemetry = shapes.dump(imported["Run"])["telemetry"]
    assert telemetry["started_at"] <= telemetry["ended_at"]
    assert telemetry["duration_s"] >= 0


# --- bodies ----------------------------------------------------------------------------------------------
def test_a_body_that_is_not_an_object_is_refused() -> None:
    with refused("non_field_errors", "invalid_shape"):
        shapes.parse("Repo", ["not", "an", "object"])


def test_an_empty_update_body_is_refused() -> None:
    with refused("non_field_errors", "empty_patch"):
        shapes.parse("Repo", {}, "patch")


@pytest.mark.parametrize(
    ("field", "value"),
    [("created_at", "2026-01-01T00:00:00Z"), ("updated_at", "2026-01-01T00:00:00Z"), ("runs", [{"id": "x"}])],
)
def test_server_set_fields_are_refused_in_a_create_body(repo: Repo, field: str, value: Any) -> None:
    with refused(field, "unexpected_field") as caught:
        shapes.parse("Issue", {"repo": repo.pk, "title": "t", field: value})
    assert "is read-only" in str(caught.value)


@pytest.mark.parametrize("field", ["created_at", "updated_at", "runs"])
def test_server_set_fields_a_new_object_would_have_empty_are_ignored_in_a_create_body(repo: Repo, field: str) -> None:
    parsed = shapes.parse("Issue", {"repo": repo.pk, "title": "t", field: None if field != "runs" else []})
    assert field not in parsed.columns and parsed.columns["title"] == "t"


def test_an_unknown_enum_value_is_refused_naming_the_allowed_values(repo: Repo) -> None:
    with refused("priority", "invalid_choice") as caught:
        shapes.parse("Issue", {"repo": repo.pk, "title": "t", "priority": "P9"})
    assert "P0, P1, P2, P3, P4" in str(caught.value)


def test_a_nested_unknown_enum_value_is_refused_at_its_path() -> None:
    body = {"constraints": {"environment": {"connectivity": "carrier-pigeon"}}}
    with refused("constraints.environment.connectivity", "invalid_choice"):
        shapes.parse("ConstraintSnapshot", body)


def test_an_actor_with_an_unknown_kind_is_refused() -> None:
    with refused("created_by.actor_kind", "invalid_choice"):
        shapes.parse(
            "Repo", {"name": "n", "slug": "s", "created_by": {"actor_kind": "alien", "actor_id": "x", "display": ""}}
        )


# --- meta and tags limits -------------------------------------------------------------------------------
def test_meta_larger_than_the_cap_is_refused(settings: Any) -> None:
    before = Footprint()
    big = {"blob": "x" * (settings.CWOM_LIMITS["meta_bytes"] + 1)}
    with refused("meta", "too_large"):
        factories.repo(meta=big)
    assert Footprint() == before


def test_meta_nested_too_deeply_is_refused(settings: Any) -> None:
    deep: dict[str, Any] = {}
    level = deep
    for _ in range(settings.CWOM_LIMITS["json_depth"] + 1):
        level["k"] = {}
        level = level["k"]
    with refused("meta", "too_deep"):
        factories.repo(meta=deep)


def test_meta_must_be_an_object() -> None:
    with refused("meta", "invalid_type"):
        shapes.parse("Repo", {"name": "n", "slug": "s", "meta": ["a"]})


def test_too_many_tags_are_refused(settings: Any) -> None:
    many = [f"t{i}" for i in range(settings.CWOM_LIMITS["tags_count"] + 1)]
    with refused("tags", "too_many"):
        factories.repo(tags=many)
    repo = Repo(name="n", slug="s", tags=many)
    with refused("tags", "too_many"):
        repo.full_clean()


def test_a_tag_too_long_or_empty_is_refused(settings: Any) -> None:
    long_tag = "x" * (settings.CWOM_LIMITS["tag_length"] + 1)
    with refused("tags.0", "too_long"):
        factories.repo(tags=[long_tag])
    with refused("tags.0", "invalid"):
        factories.repo(tags=["  "])
    for bad in (long_tag, "  "):
        with refused("tags", "invalid_tag"):
            Repo(name="n", slug="s", tags=[bad]).full_clean()


def test_duplicate_tags_are_refused() -> None:
    with refused("tags", "invalid"):
        factories.repo(tags=["ops", "ops"])
    with refused("tags", "duplicate_tag"):
        Repo(name="n", slug="s", tags=["ops", "ops"]).full_clean()


def test_tags_within_the_limits_are_kept_in_order(settings: Any) -> None:
    tags = [f"t{i}" for i in range(settings.CWOM_LIMITS["tags_count"])]
    assert factories.repo(tags=tags).tags == tags


@pytest.mark.parametrize("moment", ["2024-01-01T12:99:00Z", "2024-02-30T00:00:00Z", "yesterday"])
def test_an_impossible_timestamp_is_refused_at_its_path(moment: str) -> None:
    with refused("captured_at", "invalid_datetime"):
        shapes.parse("ConstraintSnapshot", {"captured_at": moment})


# --- reading many objects ------------------------------------------------------------------------------
def test_a_batch_of_objects_has_its_ref_lists_read_in_one_query(django_assert_num_queries) -> None:
    repo = factories.repo()
    doctrine = factories.doctrine()
    first = factories.issue(repo, doctrine_refs=[doctrine.pk])
    issues = [factories.issue(repo, relationships={"blocked_by": [first.pk]}) for _ in range(3)]
    factories.run(issues[0], status="planned")
    rows = shapes.SHAPES[Kind.ISSUE].queryset().filter(repo=repo).order_by("created_at", "id")
    expected = [shapes.dump(writes.reload(obj)) for obj in [first, *issues]]

    with django_assert_num_queries(2):  # the rows, then every ref list of all of them
        assert shapes.dump_many(rows.all()) == expected
    with django_assert_num_queries(2):
        fetched = shapes.fetch(rows.all())
    with django_assert_num_queries(0):
        assert [shapes.dump(obj) for obj in fetched] == expected
        assert shapes.ref_ids(fetched[0], "block_links") == [obj.pk for obj in issues]
    with django_assert_num_queries(2):  # one row read alone loads its own lists when dumped
        assert shapes.dump(rows.get(pk=first.pk)) == expected[0]


def test_a_text_column_that_may_not_be_blank_needs_a_character_in_its_schema() -> None:
    # The schema refuses what full_clean() refuses ("This field cannot be blank."), so no schema-valid body
    # is refused by the model for it.
    from django.db import models

    from cwom import shapes

    for kind, shape in shapes.SHAPES.items():
        for path, node in shapes.leaves(shape.nodes):
            if type(node) is not shapes.Col:
                continue
            field = shape.model._meta.get_field(node.column)
            if isinstance(field, models.CharField | models.TextField) and not field.blank and not field.null:
                schema = node.schema
                assert schema.get("minLength", 0) >= 1 or "pattern" in schema or "enum" in schema, (kind, path)
