"""The OpenAPI document is a tested artifact: valid, warning-free, complete, served without auth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from cwom import shapes
from cwom.api.filters import FILTERSETS
from cwom.api.views import KIND_PATHS

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = Path(tmp_path_factory.mktemp("schema")) / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_validates_without_warnings(document):
    assert document["openapi"].startswith("3.1")


def test_every_kind_has_its_endpoints(document):
    paths = document["paths"]
    for kind, segment in KIND_PATHS.items():
        assert {"get", "post"} <= set(paths[f"/api/v1/{segment}"]), kind
        detail = set(paths[f"/api/v1/{segment}/{{id}}"])
        assert "delete" not in detail and "put" not in detail
        assert ("patch" in detail) == shapes.SHAPES[kind].mutable, kind
    for extra in (
        "/api/v1/context_packets/{id}/seal",
        "/api/v1/runs/{id}/lineage",
        "/api/v1/runs/{id}/lineage.svg",
        "/api/v1/objects/{object_id}",
        "/api/v1/events",
        "/api/v1/issues/{id}/events",
        "/api/v1/healthz",
        "/api/v1/readyz",
    ):
        assert extra in paths


def inlined(schema, components):
    """``schema`` with every reference replaced by its component (what sits beside a reference kept)."""
    if isinstance(schema, list):
        return [inlined(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        local = {key: value for key, value in schema.items() if key != "$ref"}
        return {**inlined(components[schema["$ref"].rsplit("/", 1)[1]], components), **local}
    return {key: inlined(value, components) for key, value in schema.items()}


NO_NUL = "^[^\\u0000]*$"


def spelled_alike(schema):
    """The kernel's spellings the document writes otherwise, written its way: a one-value enum as ``const``,
    a nullable enum as the enum or null; and what the document adds left out (strings and keys without NUL,
    which the JSON parser refuses)."""
    if isinstance(schema, list):
        return [spelled_alike(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("propertyNames") == {"pattern": NO_NUL} and "properties" not in schema:  # a free-form object
        schema = {key: value for key, value in schema.items() if key not in ("propertyNames", "additionalProperties")}
    schema = {key: spelled_alike(value) for key, value in schema.items() if not (key == "pattern" and value == NO_NUL)}
    enum = schema.get("enum")
    if enum is not None and None in enum:
        rest = {key: value for key, value in schema.items() if key not in ("type", "enum")}
        return {**rest, "anyOf": [{"type": "string", "enum": [x for x in enum if x is not None]}, {"type": "null"}]}
    if enum is not None and len(enum) == 1:
        return {**{key: value for key, value in schema.items() if key != "enum"}, "const": enum[0]}
    return schema


def test_components_are_the_kernel_json_schemas(document):
    components = document["components"]["schemas"]
    for kind in KIND_PATHS:
        kernel = json.loads(json.dumps(shapes.json_schema(kind, "out")))
        kernel.pop("$schema"), kernel.pop("$id"), kernel.pop("title")
        assert spelled_alike(inlined(components[kind], components)) == spelled_alike(kernel), kind
        assert components[f"{kind}Request"]["properties"].keys() == shapes.json_schema(kind, "in")["properties"].keys()


def test_every_filter_is_documented(document):
    for kind, filterset in FILTERSETS.items():
        parameters = {p["name"] for p in document["paths"][f"/api/v1/{KIND_PATHS[kind]}"]["get"]["parameters"]}
        assert set(filterset.base_filters) | {"cursor", "page_size", "ordering"} <= parameters, kind


def test_every_documented_ordering_is_accepted(document, writer, make):
    # An object's history is ordered by id; its ordering parameter once documented the list's fields.
    ids = {"repos": make.repo().pk, "issues": make.issue().pk, "runs": make.run().pk}
    checked = 0
    for path, operations in document["paths"].items():
        segment = path.split("/")[3]
        if "{id}" in path and segment not in ids:
            continue
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["name"] != "ordering":
                continue
            values = inlined(parameter["schema"], document["components"]["schemas"])["enum"]
            if path.endswith("/events"):
                assert values == ["id", "-id"], path
            for value in values:
                response = writer.get(path.replace("{id}", ids.get(segment, "")), {"ordering": value})
                assert response.status_code == 200, (path, value, response.content)
                checked += 1
    assert checked > 30


def test_every_operation_documents_its_errors_with_the_problem_schema(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.endswith(("/healthz", "/schema", "/docs", "/redoc")):
                continue
            errors = {code for code in operation["responses"] if code >= "400"}
            assert "503" in errors, (path, method)
            for code in errors:
                content = operation["responses"][code]["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
                assert content["examples"], (path, method, code)


def test_writes_document_their_auth_errors_and_headers(document):
    create = document["paths"]["/api/v1/issues"]["post"]
    assert {"401", "403", "409", "413", "415", "422", "429"} <= set(create["responses"])
    assert {"Idempotency-Key", "X-CWOM-Actor"} <= {p["name"] for p in create["parameters"]}
    assert create["security"] == [{"apiToken": []}, {"cookieAuth": []}]
    patch = document["paths"]["/api/v1/runs/{id}"]["patch"]
    assert "412" in patch["responses"]
    assert "If-Match" in {p["name"] for p in patch["parameters"]}
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_operations_carry_examples(document):
    issue_get = document["paths"]["/api/v1/issues/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert issue_get["examples"]["Issue"]["value"]["kind"] == "Issue"
    create = document["paths"]["/api/v1/issues"]["post"]["requestBody"]["content"]["application/json"]
    assert "id" not in next(iter(create["examples"].values()))["value"]


def test_the_docs_are_served_from_local_assets_without_a_credential(outsider):
    for page in ("docs/", "redoc/"):
        html = outsider.get(page).content.decode()
        assert "drf_spectacular_sidecar" in html
        assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    schema = outsider.get("schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200


def test_auth_errors_document_token_expired_and_the_address_throttle(document):
    problem_schema = document["components"]["schemas"]["Problem"]
    assert problem_schema["properties"]["expired_at"]["format"] == "date-time"
    for path, method in (("/api/v1/issues", "get"), ("/api/v1/issues", "post"), ("/api/v1/runs/{id}", "patch")):
        responses = document["paths"][path][method]["responses"]
        unauthorized = responses["401"]
        examples = unauthorized["content"]["application/problem+json"]["examples"]
        assert {example["value"]["code"] for example in examples.values()} == {
            "not_authenticated",
            "authentication_failed",
            "token_expired",
        }
        assert examples["token_expired"]["value"]["expired_at"] in examples["token_expired"]["value"]["detail"]
        assert "token_expired" in unauthorized["description"]
        throttled = responses["429"]
        assert "per client address" in throttled["description"] and "Retry-After" in throttled["headers"]
        assert {e["value"]["code"] for e in throttled["content"]["application/problem+json"]["examples"].values()} == {
            "throttled"
        }
    assert "token_expired" in document["components"]["securitySchemes"]["apiToken"]["description"]


def _inline_types(schema, where, found):
    """Objects and enums written in place (not as a reference to a component) inside ``schema``."""
    if isinstance(schema, list):
        for item in schema:
            _inline_types(item, where, found)
    elif isinstance(schema, dict):
        if "$ref" not in schema and (schema.get("type") == "object" or "enum" in schema):
            found.append(where)
        for key, value in schema.items():
            if key not in ("examples", "example", "default", "const", "enum"):
                _inline_types(value, f"{where}.{key}", found)


def test_every_object_and_enum_is_a_named_component_declared_once(document):
    components = document["components"]["schemas"]
    found: list[str] = []
    for name, schema in components.items():
        top = schema if "$ref" in schema else {key: value for key, value in schema.items() if key != "type"}
        _inline_types({k: v for k, v in top.items() if k != "enum"}, name, found)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _inline_types(operation.get("parameters", []), f"{method} {path} parameters", found)
            _inline_types(operation.get("requestBody", {}), f"{method} {path} body", found)
            _inline_types(operation.get("responses", {}), f"{method} {path} responses", found)
    assert not found
    assert {"Actor", "Ref", "RefById", "Problem", "FieldError", "Kind", "Status", "ActorKind", "EventAction"} <= set(
        components
    )
    assert {f"{kind}Ref" for kind in KIND_PATHS} <= set(components)
    assert components["IssueRef"]["properties"]["kind"] == {"type": "string", "const": "Issue"}
    contents = [json.dumps(schema, sort_keys=True) for schema in components.values()]
    assert len(contents) == len(set(contents))


def test_bodies_declare_defaults_headers_and_media_types(document):
    components = document["components"]["schemas"]
    assert components["ContextPacketRequest"]["properties"]["sealed"]["default"] is True
    assert components["IssueRequest"]["properties"]["status"] == {
        "$ref": "#/components/schemas/Status",
        "default": "planned",
    }
    assert "default" not in components["PatchedContextPacketRequest"]["properties"]["sealed"]  # absent: unchanged
    changes = components[components["Event"]["properties"]["changes"]["$ref"].rsplit("/", 1)[1]]
    pair, edit = changes["additionalProperties"]["anyOf"]  # [before, after], or a bounded list's edit
    assert pair["items"] and pair["maxItems"] == 2
    edit = components[edit["$ref"].rsplit("/", 1)[1]] if "$ref" in edit else edit
    assert edit["required"] == ["added", "removed"]
    enqueue = components["EnqueueRequest"]
    assert enqueue["additionalProperties"] is False
    (noop,) = enqueue["properties"]["executor"]["anyOf"]  # the test settings enable one executor
    assert noop == {"$ref": "#/components/schemas/NoopExecutor"}
    assert components["NoopExecutor"]["additionalProperties"] is False
    assert components["NoopExecutor"]["properties"]["name"] == {"type": "string", "const": "noop"}
    assert {"$ref": "#/components/schemas/RefById"} in enqueue["properties"]["doctrine_refs"]["items"]["anyOf"]
    actor = next(p for p in document["paths"]["/api/v1/issues"]["post"]["parameters"] if p["name"] == "X-CWOM-Actor")
    assert actor["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Actor"}}}
    content = document["paths"]["/api/v1/artifacts/{artifact_id}/content"]
    assert set(content["put"]["requestBody"]["content"]) == {"application/octet-stream"}
    assert set(content["get"]["responses"]["200"]["content"]) == {"application/octet-stream", "*/*"}
    assert {"409", "413", "422"} <= set(content["put"]["responses"])


def test_every_route_declares_what_the_transport_refuses(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"400", "414", "431"} <= set(operation["responses"]), (method, path)
    cancel = document["paths"]["/api/v1/runs/{run_id}/cancel"]["post"]
    assert (cancel["operationId"], cancel["tags"]) == ("runs_cancel", ["runs"])
