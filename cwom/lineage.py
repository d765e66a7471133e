"""A run's whole chain in one document: what the lineage endpoint serves and what an executor receives.

    Issue + ContextPacket + ConstraintSnapshot + DoctrineRef  ->  Run  ->  Artifact

Loaded in a fixed number of queries whatever the number of packets, doctrine refs or artifacts: the run
with its issue, repo and snapshot (one joined query), the run's and the issue's ref lists, the packets and
theirs, the doctrine refs and theirs, the artifacts.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from . import shapes
from .enums import Kind
from .models import Artifact, Issue, IssueConstraintSnapshot, IssueContextPacket, IssueDoctrineRef, Run


def run_bundle(run_id: str) -> dict[str, Any]:
    """The run and everything it links to, each object in the contract's shape.

    ``doctrine_refs`` holds the run's own doctrine refs followed by those its packets name, once each;
    ``artifacts`` the run's ``outputs.artifacts``: the newest 20, newest first (``outputs.artifacts_total`` and
    ``outputs.artifacts_url`` in the run say how many there are and where they all are).
    Raises Run.DoesNotExist for an unknown id.
    """
    run = shapes.SHAPES[Kind.RUN].queryset().select_related("for_issue", "repo", "constraint_snapshot").get(pk=run_id)
    issue, repo, snapshot = run.for_issue, run.repo, run.constraint_snapshot
    # The ref lists of the run and of the objects joined to it: a query each (a repo or a snapshot has none).
    for obj in (run, issue, repo, snapshot):
        if obj is not None:
            shapes.shape_for(obj).load_refs([obj])
    packet_ids = shapes.ref_ids(run, "context_packet_links")
    packets = {p.pk: p for p in shapes.fetch(shapes.SHAPES[Kind.CONTEXT_PACKET].queryset().filter(pk__in=packet_ids))}
    doctrine_ids = shapes.ref_ids(run, "doctrine_ref_links")
    for packet in packets.values():
        doctrine_ids += shapes.ref_ids(packet, "doctrine_ref_links")
    doctrine_ids = list(dict.fromkeys(doctrine_ids))
    # Put in the order of doctrine_ids: no ORDER BY. (The packets' order decides that of their doctrine refs.)
    doctrine_rows = shapes.SHAPES[Kind.DOCTRINE_REF].queryset().filter(pk__in=doctrine_ids).order_by()
    doctrines = {d.pk: d for d in shapes.fetch(doctrine_rows)}
    # The run's outputs.artifacts: the newest, newest first (its outputs.artifacts_total says how many in all).
    artifact_ids = shapes.ref_ids(run, "artifacts")
    artifacts = {a.pk: a for a in shapes.SHAPES[Kind.ARTIFACT].queryset().filter(pk__in=artifact_ids).order_by()}
    return {
        "run": shapes.dump(run),
        "repo": shapes.dump(repo),
        "issue": shapes.dump(issue),
        "context_packets": [shapes.dump(packets[pk]) for pk in packet_ids if pk in packets],
        "constraint_snapshot": shapes.dump(snapshot) if snapshot else None,
        "doctrine_refs": [shapes.dump(doctrines[pk]) for pk in doctrine_ids if pk in doctrines],
        "artifacts": shapes.dump_many([artifacts[pk] for pk in artifact_ids if pk in artifacts]),
    }


def issue_overview(issue_id: str, newest: int = 20, inputs: int = 20) -> dict[str, Any]:
    """An issue, what it links to and its newest runs: what a person sees of it at a glance.

    Six queries whatever the issue holds: the issue with its repo; its context packets, constraint
    snapshots and doctrine refs (each at most ``inputs``, plus one to tell whether there are more); its
    ``newest`` runs with their artifact counts; the number of all its runs. Rows are plain dicts of the
    columns a picture or a table shows. Raises Issue.DoesNotExist for an unknown id.
    """
    issue = Issue.objects.select_related("repo").get(pk=issue_id)
    # (link table, its target column, the target's columns shown): read as a row per link, target joined.
    links: dict[str, tuple[Any, str, tuple[str, ...]]] = {
        "context_packets": (IssueContextPacket, "packet", ("version", "sealed")),
        "constraint_snapshots": (IssueConstraintSnapshot, "snapshot", ("scope", "captured_at")),
        "doctrine_refs": (IssueDoctrineRef, "doctrine_ref", ("namespace", "name", "priority")),
    }
    overview: dict[str, Any] = {"issue": issue, "repo": issue.repo}
    for name, (table, target, columns) in links.items():
        rows = table.objects.filter(issue_id=issue_id).order_by("id")
        found = list(rows.values_list("role", f"{target}_id", *(f"{target}__{c}" for c in columns))[: inputs + 1])
        overview[name] = [{"role": row[0], "id": row[1], **dict(zip(columns, row[2:], strict=True))} for row in found]
        overview[name] = overview[name][:inputs]
        overview[f"more_{name}"] = len(found) > inputs
    runs = Run.objects.filter(for_issue_id=issue_id)
    # Artifacts counted per shown run (a subquery for each of the `newest` rows), not grouped over every run.
    artifacts = Artifact.objects.filter(produced_by=OuterRef("pk")).order_by().values("produced_by")
    artifact_count = Subquery(artifacts.annotate(n=Count("id")).values("n"), output_field=IntegerField())
    newest_runs = runs.annotate(artifact_count=Coalesce(artifact_count, 0)).order_by("-created_at", "-id")
    overview["runs"] = list(newest_runs[:newest])
    overview["run_count"] = runs.count()
    return overview
