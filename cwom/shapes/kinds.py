"""Each kind's shape, declared once: the one table (:data:`SHAPES`) that parse, dump, the JSON Schemas,
the export and the link tables (:data:`LINK_TABLES`) all follow from.

Adding a field to a kind is one line here (and the model's column). Adding a link is a :class:`LinkRefs`
line here (and the link model): writes, the bulk import, the export's issue links and the API's link
filters read it through :data:`LINK_TABLES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models

from .. import enums
from .. import validation as v
from ..models import (
    KIND_MODELS,
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineRef,
    Issue,
    Repo,
    Run,
)
from .nodes import REFS_ATTR, Col, FKRef, Group, LinkRefs, LinkTable, ReverseRefs, Time, bounded
from .shape import ACTOR_OR_NULL, TS, Shape


def _enum(choices: type[models.TextChoices], nullable: bool = False) -> dict[str, Any]:
    return v.enum_schema(choices, nullable=nullable)


def _num(minimum: float | None = None, maximum: float | None = None, integer: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return v.nullable(schema)


def _str(max_length: int, nullable: bool = False, required: bool = False) -> dict[str, Any]:
    """A string of at most ``max_length`` characters; ``required``: at least one (the column may not be blank)."""
    schema: dict[str, Any] = (
        {"type": "string", "minLength": 1, "maxLength": max_length}
        if required
        else {
            "type": "string",
            "maxLength": max_length,
        }
    )
    return v.nullable(schema) if nullable else schema


STR_LIST = v.STR_LIST

SHAPES: dict[str, Shape] = {
    enums.Kind.REPO: Shape(
        enums.Kind.REPO,
        Repo,
        {
            "name": Col("name", _str(255, required=True), required=True),
            "slug": Col("slug", {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 100}, required=True),
            "source": Group(
                {
                    "system": Col("source_system", _str(64, required=True)),
                    "external_id": Col("source_external_id", _str(255, nullable=True)),
                    "url": Col("source_url", _str(2048, nullable=True)),
                }
            ),
            "default_branch": Col("default_branch", _str(255, required=True)),
            "visibility": Col("visibility", _enum(enums.Visibility)),
            "owners": Col("owners", v.ACTOR_LIST),
            "policy": Group(
                {
                    "allowed_tools": Col("policy_allowed_tools", STR_LIST),
                    "secrets_profile": Col("policy_secrets_profile", _str(255, nullable=True)),
                }
            ),
            "links": Col("links", STR_LIST),
        },
    ),
    enums.Kind.ISSUE: Shape(
        enums.Kind.ISSUE,
        Issue,
        {
            "repo": FKRef("repo_id", enums.Kind.REPO, required=True),
            "title": Col("title", {"type": "string", "minLength": 1, "maxLength": 500}, required=True),
            "description": Col("description", _str(200_000)),
            "type": Col("type", _enum(enums.IssueType)),
            "priority": Col("priority", _enum(enums.Priority)),
            "status": Col("status", _enum(enums.Status)),
            "assignees": Col("assignees", v.ACTOR_LIST),
            "watchers": Col("watchers", v.ACTOR_LIST),
            "doctrine_refs": LinkRefs("doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF),
            **bounded(
                "constraints",
                LinkRefs("constraints", "constraint_links", "snapshot", enums.Kind.CONSTRAINT_SNAPSHOT),
                "{root}/issues/{id}/constraints",
            ),
            **bounded(
                "context_packets",
                LinkRefs("context_packets", "context_packet_links", "packet", enums.Kind.CONTEXT_PACKET),
                "{root}/issues/{id}/context_packets",
            ),
            "acceptance": Group(
                {
                    "criteria": Col("acceptance_criteria", STR_LIST),
                    "tests_expected": Col("acceptance_tests_expected", v.nullable(STR_LIST)),
                }
            ),
            "relationships": Group(
                {
                    "parent": FKRef("parent_id", enums.Kind.ISSUE, nullable=True),
                    "blocks": LinkRefs("blocks", "block_links", "blocked", enums.Kind.ISSUE),
                    "blocked_by": LinkRefs("blocked_by", "blocked_by_links", "blocker", enums.Kind.ISSUE),
                    "duplicates": LinkRefs("duplicates", "duplicate_links", "duplicate_of", enums.Kind.ISSUE),
                }
            ),
            **bounded("runs", ReverseRefs("runs", enums.Kind.RUN), "{root}/runs?issue_id={id}"),
        },
    ),
    enums.Kind.CONTEXT_PACKET: Shape(
        enums.Kind.CONTEXT_PACKET,
        ContextPacket,
        {
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE, required=True),
            "version": Col("version", {"type": "string", "minLength": 1, "maxLength": 64}),
            "summary": Col("summary", _str(200_000)),
            "inputs": Group(
                {
                    "documents": Col("inputs_documents", v.list_of(v.DOCUMENT)),
                    "data_blobs": Col("inputs_data_blobs", v.list_of(v.DATA_BLOB)),
                    "links": Col("inputs_links", STR_LIST),
                }
            ),
            "assumptions": Col("assumptions", STR_LIST),
            "open_questions": Col("open_questions", STR_LIST),
            "instructions": Col("instructions", _str(200_000)),
            "doctrine_refs": LinkRefs("doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF),
            "constraint_snapshot": FKRef("constraint_snapshot_id", enums.Kind.CONSTRAINT_SNAPSHOT, nullable=True),
            "sealed": Col("sealed", {"type": "boolean"}),
            "sealed_at": Time("sealed_at", v.nullable(TS), read_only=True),
        },
    ),
    enums.Kind.CONSTRAINT_SNAPSHOT: Shape(
        enums.Kind.CONSTRAINT_SNAPSHOT,
        ConstraintSnapshot,
        {
            "scope": Col("scope", _enum(enums.ConstraintScope)),
            "captured_at": Time("captured_at", TS),
            "owner": Col("owner", ACTOR_OR_NULL),
            "constraints": Group(
                {
                    "time": Group(
                        {
                            "available_minutes": Col("time_available_minutes", _num(minimum=0)),
                            "deadline": Time("time_deadline", v.nullable(TS)),
                        }
                    ),
                    "energy": Group(
                        {
                            "score_0_5": Col("energy_score_0_5", _num(0, 5)),
                            "notes": Col("energy_notes", _str(4000, nullable=True)),
                        }
                    ),
                    "health": Group(
                        {
                            "flags": Col("health_flags", STR_LIST),
                            "notes": Col("health_notes", _str(4000, nullable=True)),
                        }
                    ),
                    "budget": Group(
                        {
                            "usd_available": Col("budget_usd_available", _num(minimum=0)),
                            "burn_limit_usd": Col("budget_burn_limit_usd", _num(minimum=0)),
                        }
                    ),
                    "tools": Group(
                        {
                            "allowed": Col("tools_allowed", STR_LIST),
                            "blocked": Col("tools_blocked", STR_LIST),
                        }
                    ),
                    "environment": Group(
                        {
                            "location": Col("environment_location", _str(255, nullable=True)),
                            "connectivity": Col("environment_connectivity", _enum(enums.Connectivity, nullable=True)),
                            "device": Col("environment_device", _str(255, nullable=True)),
                        }
                    ),
                    "risk": Group(
                        {
                            "tolerance": Col("risk_tolerance", _enum(enums.RiskTolerance, nullable=True)),
                            "notes": Col("risk_notes", _str(4000, nullable=True)),
                        }
                    ),
                }
            ),
        },
        mutable=False,
    ),
    enums.Kind.DOCTRINE_REF: Shape(
        enums.Kind.DOCTRINE_REF,
        DoctrineRef,
        {
            "namespace": Col("namespace", {"type": "string", "minLength": 1, "maxLength": 100}, required=True),
            "name": Col("name", {"type": "string", "minLength": 1, "maxLength": 200}, required=True),
            "version": Col("version", {"type": "string", "minLength": 1, "maxLength": 64}, required=True),
            "type": Col("type", _enum(enums.DoctrineType), required=True),
            "priority": Col("priority", _enum(enums.DoctrinePriority), required=True),
            "statement": Col("statement", {"type": "string", "minLength": 1, "maxLength": 200_000}, required=True),
            "rationale": Col("rationale", _str(200_000, nullable=True)),
            "links": Col("links", STR_LIST),
            "applicability": Group(
                {
                    "repo_refs": LinkRefs("repo_refs", "repo_links", "repo", enums.Kind.REPO),
                    "issue_types": Col("applicability_issue_types", v.list_of(_enum(enums.IssueType))),
                    "tags": Col("applicability_tags", STR_LIST),
                }
            ),
        },
        mutable=False,
    ),
    enums.Kind.RUN: Shape(
        enums.Kind.RUN,
        Run,
        {
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE, required=True),
            "repo": FKRef("repo_id", enums.Kind.REPO),
            "status": Col("status", _enum(enums.Status)),
            "mode": Col("mode", _enum(enums.RunMode)),
            "retry_of": FKRef("retry_of_id", enums.Kind.RUN, nullable=True),
            "managed_by": Col(
                "managed_by",
                {
                    **_enum(enums.ManagedBy),
                    "description": "service: enqueued, the service's workers execute it and move its status; "
                    "client: made with POST /runs, whoever made it drives it (PATCH) — a ready client run waits "
                    "for its client.",
                },
                read_only=True,
            ),
            "executor": Group(
                {
                    "actor": Col("executor_actor", ACTOR_OR_NULL),
                    "runtime": Col("executor_runtime", _str(64, required=True)),
                    "toolchain": Col("executor_toolchain", STR_LIST),
                }
            ),
            "inputs": Group(
                {
                    "context_packets": LinkRefs(
                        "context_packets", "context_packet_links", "packet", enums.Kind.CONTEXT_PACKET
                    ),
                    "doctrine_refs": LinkRefs(
                        "doctrine_refs", "doctrine_ref_links", "doctrine_ref", enums.Kind.DOCTRINE_REF
                    ),
                    "constraint_snapshot": FKRef(
                        "constraint_snapshot_id", enums.Kind.CONSTRAINT_SNAPSHOT, nullable=True
                    ),
                }
            ),
            "plan": Group(
                {
                    "steps": Col("plan_steps", STR_LIST),
                    "risk_notes": Col("plan_risk_notes", STR_LIST),
                }
            ),
            "telemetry": Group(
                {
                    "started_at": Time("started_at", v.nullable(TS), read_only=True),
                    "ended_at": Time("ended_at", v.nullable(TS), read_only=True),
                    "duration_s": Col("duration_s", _num(minimum=0), read_only=True),
                }
            ),
            "cost": Group(
                {
                    "usd": Col("cost_usd", _num(minimum=0)),
                    "tokens": Col("cost_tokens", _num(minimum=0, integer=True)),
                    "compute_s": Col("cost_compute_s", _num(minimum=0)),
                }
            ),
            "outputs": Group(
                {
                    **bounded(
                        "artifacts", ReverseRefs("artifacts", enums.Kind.ARTIFACT), "{root}/artifacts?run_id={id}"
                    ),
                    "result_summary": Col("result_summary", _str(200_000, nullable=True)),
                    "decision_log": Col("decision_log", {"type": "array", "items": v.STRING, "maxItems": 10_000}),
                }
            ),
            "failure": Group(
                {
                    "category": Col("failure_category", _enum(enums.FailureCategory)),
                    "message": Col("failure_message", _str(20_000)),
                },
                nullable_via="failure_category",
            ),
        },
    ),
    enums.Kind.ARTIFACT: Shape(
        enums.Kind.ARTIFACT,
        Artifact,
        {
            "produced_by": FKRef("produced_by_id", enums.Kind.RUN, required=True),
            "for_issue": FKRef("for_issue_id", enums.Kind.ISSUE),
            "type": Col("type", _enum(enums.ArtifactType), required=True),
            "title": Col("title", _str(500)),
            "uri": Col("uri", _str(2048, nullable=True)),
            "digest": Col("digest", _str(200, nullable=True)),
            "media_type": Col("media_type", _str(255, nullable=True)),
            "size_bytes": Col("size_bytes", _num(minimum=0, integer=True)),
            "preview": Col("preview", _str(20_000, nullable=True)),
            "verification": Group(
                {
                    "status": Col("verification_status", _enum(enums.VerificationStatus)),
                    "checks": Col("verification_checks", v.list_of(v.CHECK)),
                }
            ),
        },
    ),
}

# Fields a PATCH may touch, per kind (None: every writable field). Snapshots and doctrine refs have no PATCH.
PATCHABLE: dict[str, set[str] | None] = {
    enums.Kind.REPO: None,
    enums.Kind.ISSUE: None,
    enums.Kind.CONTEXT_PACKET: None,
    enums.Kind.RUN: None,
    enums.Kind.ARTIFACT: {"verification"},  # everything else is fixed at creation
}


def shape_for(kind_or_model: str | type[models.Model] | models.Model) -> Shape:
    """The shape of a kind, given by name, model or object."""
    if isinstance(kind_or_model, str):
        return SHAPES[kind_or_model]
    return SHAPES[kind_or_model.KIND]  # type: ignore[union-attr]


def dump(obj: Any) -> dict[str, Any]:
    """``obj`` in the contract's JSON shape (many: :func:`dump_many`, one query for all their ref lists)."""
    return shape_for(obj).dumper(obj)


def own_state(document: dict[str, Any]) -> dict[str, Any]:
    """A contract object without what grows with other objects' creation (see ``Shape.own_state``)."""
    return SHAPES[document["kind"]].own_state(document)


def dump_many(objs: Iterable[Any]) -> list[dict[str, Any]]:
    """Each of ``objs`` in the contract's shape. The ref lists not loaded yet are loaded for all of them
    first (``Shape.load_refs``): one query per kind, not one per object."""
    objs = list(objs)
    unloaded: dict[str, list[Any]] = {}
    for obj in objs:
        if REFS_ATTR not in obj.__dict__:
            unloaded.setdefault(obj.KIND, []).append(obj)
    for kind, batch in unloaded.items():
        SHAPES[kind].load_refs(batch, using=batch[0]._state.db or DEFAULT_DB_ALIAS)
    return [dump(obj) for obj in objs]


# Every link, by (kind, link name): its table, derived from the LinkRefs nodes above.
LINK_TABLES: dict[tuple[str, str], LinkTable] = {
    (shape.kind, node.name): node.table(shape.model) for shape in SHAPES.values() for node in shape.links
}


def _check_declarations() -> None:
    """Programming errors caught at import: a kind without a shape, a link whose node names another kind
    than its table's foreign key does."""
    if set(KIND_MODELS) != set(SHAPES):
        raise RuntimeError("Every kind needs a shape.")
    for shape in SHAPES.values():
        for node in shape.links:
            table = LINK_TABLES[(shape.kind, node.name)]
            target = table.model._meta.get_field(table.target).related_model
            if getattr(target, "KIND", None) != node.kind:
                raise RuntimeError(
                    f"{shape.kind}.{node.name}: {table.model.__name__}.{table.target} is no Ref to a {node.kind}."
                )


_check_declarations()
