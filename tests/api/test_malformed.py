"""Hostile and broken input is a 4xx problem, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import problem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "malformed_body"),
        ('{"name": "x",}', "malformed_body"),
        ("   ", "malformed_body"),
        ('{"name": NaN, "slug": "x"}', "malformed_body"),
        ('{"name": "x", "slug": "y", "meta": {"n": 1e999}}', "malformed_body"),
        ('{"name": "x", "slug": "y", "meta": {"n": ' + "9" * 5000 + "}}", "malformed_body"),
        (b"\xff\xfe{}", "malformed_body"),
        ('{"name": "nul\\u0000byte", "slug": "x"}', "invalid_characters"),
        ('{"name": "x", "slug": "y", "meta": {"k\\u0000": 1}}', "invalid_characters"),
        ('{"name": "lone \\ud800 surrogate", "slug": "x"}', "invalid_characters"),
        ("[" * 100 + "]" * 100, "too_deep"),
        ("[" * 100_000 + "]" * 100_000, "too_deep"),
        ('{"name": "x", "slug": "y", "meta": ' + '{"a":' * 40 + "1" + "}" * 40 + "}", "too_deep"),
    ],
)
def test_a_malformed_body_is_400(writer, raw, code):
    response = writer.raw("POST", "repos", raw)

    assert response.status_code == 400
    assert problem(response)["code"] == code


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_a_body_that_is_not_an_object_is_400(writer, body):
    response = writer.raw("POST", "repos", body)
    assert response.status_code == 400
    assert problem(response)["errors"][0]["code"] == "invalid_shape"


def test_an_oversize_body_is_413(writer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = writer.raw("POST", "repos", json.dumps({"name": "x" * 2000, "slug": "x"}))
    assert response.status_code == 413
    assert problem(response)["code"] == "payload_too_large"


def test_an_oversize_content_length_is_refused_before_reading(writer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = writer.raw("POST", "repos", "{}", CONTENT_LENGTH="10000000")
    assert response.status_code == 413


def test_a_body_that_is_not_json_is_415(writer):
    response = writer.raw("POST", "repos", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert problem(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "slug": "has spaces"},
        {"name": "x" * 300, "slug": "x"},
        {"name": "x", "slug": "x", "tags": ["a"] * 40},
        {"name": "x", "slug": "x", "meta": {"blob": "x" * 20_000}},
        {"name": "x", "slug": "x", "owners": [{"actor_kind": "robot", "actor_id": "r", "display": "R"}]},
        {"name": 5, "slug": "x"},
        {"name": "x", "slug": "x", "unknown": 1},
    ],
)
def test_invalid_repo_bodies_are_400(writer, body):
    response = writer.post("repos", body)
    assert response.status_code == 400, response.content
    assert problem(response)["errors"]


def test_big_numbers_in_meta_are_kept(writer):
    response = writer.post("repos", {"name": "x", "slug": "x", "meta": {"big": 10**30}})
    assert response.status_code == 201
    assert response.json()["meta"]["big"] == 10**30


def test_huge_numbers_in_columns_are_400_not_500(writer, make):
    run = make.run(status="planned")
    for field in ({"cost": {"tokens": 10**30}}, {"cost": {"tokens": -1}}):
        response = writer.patch(f"runs/{run.pk}", field)
        assert response.status_code == 400, (field, response.content)
    assert writer.patch(f"runs/{run.pk}", {"cost": {"usd": 1e308}}).status_code == 200
    artifact_run = make.started_run()
    response = writer.post("artifacts", {"produced_by": artifact_run.pk, "type": "log", "size_bytes": 2**70})
    assert response.status_code == 400


def test_odd_query_strings_are_handled(writer):
    assert writer.get("issues", {"q": "x" * 5000}).status_code == 400  # the schema's maxLength is 200
    assert writer.get("issues", {"q": "nul\x00"}).status_code == 400
    assert writer.get("issues", {"repo_id": ",".join(["01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ"] * 101)}).status_code == 200
    ids = ",".join(f"01JD0Z8K3M5Q7R9T1V3X5Z{i:04d}" for i in range(101))
    too_many = writer.get("issues", {"repo_id": ids})  # a rule no schema of the parameter can state: a 422
    assert (too_many.status_code, too_many.json()["code"]) == (422, "too_many_values")
