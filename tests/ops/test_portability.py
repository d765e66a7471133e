"""Export and import: a round trip is exact, a rerun changes nothing, bad lines never land half-written."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from cwom import shapes, writes
from cwom.ids import new_ulid
from cwom.models import Artifact, ContextPacket, Event, Issue, IssueBlock, ObjectIndex, Repo, Run
from cwom.portability import OBJECT_ORDER, StandardRecord, encode, encode_fast
from cwom.portability.exporting import _row_shape
from cwom.portability.importing import Importer
from tests import factories
from tests.ops.helpers import export_text, wipe_cwom_tables, with_trailer
from tests.statements import sent_statements


@pytest.fixture
def rich(demo: Run) -> Run:
    """The demo plus the harder cases: a parent, a duplicate, a draft packet, roles, a canceled run and its
    retry."""
    healthz, flaky = demo.for_issue, Issue.objects.exclude(pk=demo.for_issue_id).get()
    child = factories.issue(
        healthz.repo,
        title="Report the build sha",
        relationships={"parent": healthz.pk, "duplicates": [flaky.pk]},
    )
    factories.packet(child, sealed=False, summary="Still drafting.")
    doctrine = factories.doctrine(applicability={"repo_refs": [healthz.repo_id]})
    packet = factories.packet(child, doctrine_refs=[doctrine.pk])
    run = factories.run(
        child, packets=[], status="planned", inputs={"doctrine_refs": [{"id": doctrine.pk, "role": "guard"}]}
    )
    writes.transition(run, "canceled")
    factories.run(child, packets=[], status="planned", retry_of=run.pk)
    writes.update(
        child,
        {"context_packets": [{"id": packet.pk, "role": "primary_context"}], "relationships": {"blocks": [flaky.pk]}},
    )
    return demo


def write(tmp_path: Path, text: str, name: str = "export.jsonl") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def import_file(path: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cwom_import", path, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_export_then_import_into_an_empty_database_then_export_again_is_identical(rich: Run, tmp_path: Path) -> None:
    first = export_text()
    wipe_cwom_tables()
    assert not ObjectIndex.objects.exists() and not Event.objects.exists()
    import_file(write(tmp_path, first))
    assert export_text() == first
    imported = Run.objects.get(pk=rich.pk)
    assert (
        imported.status == "done" and imported.started_at == rich.started_at and imported.duration_s == rich.duration_s
    )


def test_who_manages_a_run_survives_export_and_import(rich: Run, tmp_path: Path) -> None:
    Run.objects.filter(pk=rich.pk).update(managed_by="service")  # as an enqueued run is
    first = export_text()
    assert {json.loads(line).get("managed_by") for line in first.splitlines() if json.loads(line)["kind"] == "Run"} == {
        "service",
        "client",
    }
    wipe_cwom_tables()
    import_file(write(tmp_path, first))
    assert export_text() == first
    assert Run.objects.get(pk=rich.pk).managed_by == "service"
    assert set(Run.objects.exclude(pk=rich.pk).values_list("managed_by", flat=True)) == {"client"}


def test_the_export_is_in_dependency_order_with_links_and_events_after_the_objects(rich: Run) -> None:
    kinds = [json.loads(line)["kind"] for line in export_text().splitlines()]
    order = ["CwomExport", "Repo", "DoctrineRef", "ConstraintSnapshot", "Issue", "ContextPacket", "Run", "Artifact"]
    order += ["IssueLink", "Event", "CwomExportEnd"]
    firsts = [kinds.index(kind) for kind in order]
    assert firsts == sorted(firsts)
    assert kinds[-1] == "CwomExportEnd"


def test_importing_the_same_file_twice_changes_nothing(rich: Run, tmp_path: Path) -> None:
    path = write(tmp_path, export_text())
    before = (ObjectIndex.objects.count(), Event.objects.count(), IssueBlock.objects.count())
    out, _err = import_file(path)
    assert " 0 records created" in out
    assert (ObjectIndex.objects.count(), Event.objects.count(), IssueBlock.objects.count()) == before


def test_an_object_that_differs_here_is_reported_as_a_conflict_and_not_overwritten(demo: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    repo_line = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "Repo")
    changed = json.loads(lines[repo_line]) | {"name": "Renamed elsewhere"}
    lines[repo_line] = json.dumps(changed)
    with pytest.raises(CommandError) as refused:
        import_file(write(tmp_path, "\n".join(lines)))
    assert refused.value.returncode == 1
    assert Repo.objects.get().name == "Control Tower"


def test_bad_lines_are_reported_by_number_and_skipped_while_good_lines_land(demo: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    wipe_cwom_tables()
    run_line = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "Run")
    bad_run = json.loads(lines[run_line]) | {"mode": "telepathy"}
    lines[run_line] = json.dumps(bad_run)
    lines.insert(1, "{not json")
    err = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("cwom_import", write(tmp_path, "\n".join(lines)), stdout=io.StringIO(), stderr=err)
    assert refused.value.returncode == 1
    report = err.getvalue()
    assert "line 2: ?: not a JSON document" in report
    assert f"line {run_line + 2}: Run {bad_run['id']}: mode:" in report
    assert not Run.objects.filter(pk=bad_run["id"]).exists()
    assert not ObjectIndex.objects.filter(pk=bad_run["id"]).exists()  # nothing half-written
    assert Repo.objects.exists() and Issue.objects.count() == 2


def test_an_atomic_import_with_a_bad_line_writes_nothing(demo: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    wipe_cwom_tables()
    lines[-1] = '{"kind": "Issue", "id": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE", "title": "no repo"}'  # the trailer's place
    with pytest.raises(
        CommandError, match="1 of .* lines are bad; atomic import refused: nothing was written"
    ) as refused:
        import_file(write(tmp_path, "\n".join(with_trailer(lines))), "--atomic")
    assert refused.value.returncode == 1
    assert not ObjectIndex.objects.exists() and not Event.objects.exists()


def test_a_dry_run_checks_everything_and_writes_nothing(demo: Run, tmp_path: Path) -> None:
    text = export_text()
    wipe_cwom_tables()
    out, _err = import_file(write(tmp_path, text), "--dry-run")
    assert "would import cleanly" in out
    assert not ObjectIndex.objects.exists()


def test_a_file_of_another_format_version_is_refused_whole(db: None, tmp_path: Path) -> None:
    text = '{"kind": "CwomExport", "format_version": 99}\n{"kind": "Repo", "id": "x"}\n'
    with pytest.raises(CommandError, match="format version 99") as refused:
        import_file(write(tmp_path, text))
    assert refused.value.returncode == 2


def test_a_missing_file_is_a_usage_error(db: None) -> None:
    with pytest.raises(CommandError, match="Cannot read") as refused:
        import_file("/nonexistent/export.jsonl")
    assert refused.value.returncode == 2


def test_a_sealed_packet_keeps_its_seal_time_and_a_draft_stays_a_draft(rich: Run, tmp_path: Path) -> None:
    sealed_at = {p.pk: (p.sealed, p.sealed_at) for p in ContextPacket.objects.all()}
    text = export_text()
    wipe_cwom_tables()
    import_file(write(tmp_path, text))
    assert {p.pk: (p.sealed, p.sealed_at) for p in ContextPacket.objects.all()} == sealed_at
    assert not all(sealed for sealed, _ in sealed_at.values())


def test_export_filters_by_kind_and_time(rich: Run) -> None:
    runs_only = [json.loads(line) for line in export_text("--kind", "Run", "--no-events").splitlines()]
    assert {r["kind"] for r in runs_only} == {"CwomExport", "Run", "CwomExportEnd"}
    assert export_text("--since", "2999-01-01").count("\n") == 2  # header and trailer
    everything = export_text("--until", "2999-01-01T00:00:00Z")
    assert everything == export_text()


def test_export_refuses_an_empty_window_and_a_bad_time(db: None) -> None:
    with pytest.raises(CommandError, match="--since must be before --until") as refused:
        export_text("--since", "2026-02-01", "--until", "2026-01-01")
    assert refused.value.returncode == 2
    with pytest.raises(CommandError, match="not an ISO-8601"):
        export_text("--since", "yesterday")


def test_export_to_a_file_is_complete_or_absent(rich: Run, tmp_path: Path) -> None:
    target = tmp_path / "backup.jsonl"
    call_command("cwom_export", "--output", str(target), stdout=io.StringIO(), stderr=io.StringIO())
    assert target.read_text(encoding="utf-8") == export_text()
    assert not (tmp_path / "backup.jsonl.partial").exists()


def test_export_memory_is_chunked(rich: Run, django_assert_max_num_queries: Any) -> None:
    # Smaller chunks mean more, bounded queries: the shape querysets are read a chunk at a time.
    with django_assert_max_num_queries(400):
        small = export_text("--chunk-size", "1")
    assert small == export_text()


# --- the fast paths keep the format ------------------------------------------------------------------------
def test_the_row_exporter_gives_what_shapes_dump_gives_for_every_kind(rich: Run) -> None:
    for kind in OBJECT_ORDER:
        compiled = _row_shape(kind)
        rows = list(compiled.model._default_manager.order_by("created_at", "id").values_list(*compiled.select()))
        expected = [shapes.dump(obj) for obj in shapes.SHAPES[kind].queryset().order_by("created_at", "id")]
        assert expected, kind
        assert [compiled.dump(row) for row in compiled.rows(rows)] == expected, kind


def test_the_export_encodes_every_line_as_the_standard_encoder_does(rich: Run) -> None:
    for line in export_text().splitlines():
        assert encode(json.loads(line)) == line


@pytest.mark.parametrize(
    "value",
    [1e-05, 1.5e-7, -3e-300, 0.0001, 1e16, 123456.789, 2**64, -(2**70), float("nan"), float("inf"), "é\u2028\x7f"],
)
def test_fast_encoding_spells_numbers_and_text_like_the_standard_encoder(value: Any) -> None:
    record = {"kind": "Run", "meta": {"x": [value]}}
    if isinstance(value, float) and value != value or value in (float("inf"),):
        record = StandardRecord(record)  # what the exporter marks for a NaN or infinite float column
    assert encode_fast(record) == encode(record)


def test_a_float_column_holding_nan_is_exported_as_the_standard_encoder_spells_it(demo: Run) -> None:
    Run.objects.filter(pk=demo.pk).update(cost_usd=float("nan"))  # SQLite keeps a null
    line = next(line for line in export_text("--kind", "Run").splitlines() if demo.pk in line)
    assert line == encode(shapes.dump(shapes.SHAPES["Run"].queryset().get(pk=demo.pk)))


def test_a_clean_import_goes_in_bulk_without_a_line_by_line_pass(
    rich: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = export_text()
    wipe_cwom_tables()
    single: list[int] = []
    original = Importer._line
    monkeypatch.setattr(Importer, "_line", lambda self, n, t: (single.append(n), original(self, n, t)))
    import_file(write(tmp_path, text))
    assert single == []
    assert export_text() == text


def test_import_queries_per_chunk_do_not_grow_with_its_objects(
    demo: Run, tmp_path: Path, django_assert_max_num_queries: Any
) -> None:
    lines = export_text().splitlines()
    repo = json.loads(next(line for line in lines if json.loads(line)["kind"] == "Issue"))["repo"]["id"]
    wipe_cwom_tables()
    header, repo_line = lines[0], next(line for line in lines if json.loads(line)["kind"] == "Repo")
    issues = [json.dumps(issue_line(repo, i)) for i in range(300)]
    path = write(tmp_path, "\n".join(with_trailer([header, repo_line, *issues])))
    with django_assert_max_num_queries(30):
        import_file(path)
    assert Issue.objects.count() == 300


def issue_line(repo_id: str, i: int) -> dict[str, Any]:
    """A minimal Issue line (the importer fills the defaults, as a create body would)."""
    return {
        "kind": "Issue",
        "id": new_ulid(),
        "repo": {"kind": "Repo", "id": repo_id, "role": None},
        "title": f"Issue {i}",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def test_a_bad_line_in_a_bulk_chunk_keeps_the_chunks_good_lines(demo: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    wipe_cwom_tables()
    artifact_lines = [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "Artifact"]
    bad = json.loads(lines[artifact_lines[0]]) | {"type": "hologram"}
    lines[artifact_lines[0]] = json.dumps(bad)
    with pytest.raises(CommandError):
        import_file(write(tmp_path, "\n".join(lines)))
    assert not Artifact.objects.filter(pk=bad["id"]).exists()
    assert Artifact.objects.count() == len(artifact_lines) - 1
    assert Event.objects.exists()  # the chunk's later lines landed too


def test_an_issue_link_that_differs_here_is_a_conflict_reported_by_line(rich: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("relation") == "context_packets")
    link = json.loads(lines[at])
    link["target"]["role"] = "another_role"
    lines[at] = json.dumps(link)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("cwom_import", write(tmp_path, "\n".join(lines)), stdout=io.StringIO(), stderr=err)
    assert f"line {at + 1}: IssueLink: conflict: this link exists here with role" in err.getvalue()


def test_issue_links_are_checked_by_the_write_paths_rules_and_refused_by_line(rich: Run, tmp_path: Path) -> None:
    lines = export_text().splitlines()
    links = {json.loads(line)["relation"]: i for i, line in enumerate(lines) if json.loads(line)["kind"] == "IssueLink"}
    flaky = Issue.objects.exclude(pk=rich.for_issue_id).filter(children__isnull=True, parent__isnull=True).first()
    assert flaky is not None
    changed = {
        # another issue's packet: the database's guard (migration 0007)
        links["context_packets"]: lambda link: link | {"issue": flaky.pk},
        # an issue blocking itself: the check constraint
        links["blocks"]: lambda link: link | {"target": link["target"] | {"id": link["issue"]}},
        # a Ref to an object of another kind: the write path's Ref resolver
        links["duplicates"]: lambda link: link | {"target": link["target"] | {"id": rich.pk}},
    }
    for at, change in changed.items():
        lines[at] = json.dumps(change(json.loads(lines[at])))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("cwom_import", write(tmp_path, "\n".join(lines)), stdout=io.StringIO(), stderr=err)
    said = err.getvalue()
    assert f"line {links['context_packets'] + 1}: IssueLink: an issue lists only its own context packets" in said
    assert f"line {links['blocks'] + 1}: IssueLink: " in said
    assert "issue_block_not_self" in said
    assert f"line {links['duplicates'] + 1}: IssueLink: target: {rich.pk} is a Run, not an Issue." in said
    assert not IssueBlock.objects.filter(blocker=F("blocked")).exists()
    assert not ContextPacket.objects.filter(linked_issues=flaky).exclude(for_issue=flaky).exists()


def _import_counting_queries(tmp_path: Path, text: str) -> int:
    wipe_cwom_tables()
    path = write(tmp_path, text, name="counted.jsonl")
    with CaptureQueriesContext(connection) as queries:
        import_file(path)
    return len(queries)


def test_import_queries_do_not_grow_with_packets_and_artifact_contents(demo: Run, tmp_path: Path) -> None:
    # A packet's id check and an artifact's content line are batched per chunk, not a query each.
    run = factories.started_run()

    def add(n: int) -> None:
        for _ in range(n):
            factories.packet(run.for_issue)
            artifact = factories.artifact(run)
            Artifact.objects.filter(pk=artifact.pk).update(stored_name=f"blobs/{artifact.pk}")

    add(1)
    small = export_text()
    add(6)
    large = export_text()
    assert large.count('"kind":"ArtifactContent"') >= small.count('"kind":"ArtifactContent"') + 6
    assert _import_counting_queries(tmp_path, large) == _import_counting_queries(tmp_path, small)
    assert export_text() == small  # the last import, exactly as exported
    _import_counting_queries(tmp_path, large)
    assert export_text() == large


def test_an_artifact_content_line_before_its_artifact_is_refused_as_line_by_line_refuses_it(
    demo: Run, tmp_path: Path
) -> None:
    artifact = Artifact.objects.filter(produced_by=demo).first()
    assert artifact is not None
    Artifact.objects.filter(pk=artifact.pk).update(stored_name="blobs/early")
    lines = export_text().splitlines()
    wipe_cwom_tables()
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("artifact") == artifact.pk)
    content = lines.pop(at)
    first_artifact = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "Artifact")
    lines.insert(first_artifact, content)  # before every artifact, its own included
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("cwom_import", write(tmp_path, "\n".join(lines)), stdout=io.StringIO(), stderr=err)
    assert f"line {first_artifact + 1}: ArtifactContent: artifact: no Artifact has id {artifact.pk!r} here" in (
        err.getvalue()
    )
    assert Artifact.objects.filter(pk=artifact.pk).values_list("stored_name", flat=True).get() == ""


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_ref_lists_bind_one_array_string_per_list_on_postgresql(rich: Run) -> None:
    shape = shapes.SHAPES[Issue.KIND]
    ids = list(Issue.objects.values_list("id", flat=True))
    odd = ['a"b', "c\\d", "e,f}"]  # array-literal metacharacters are quoted, and match nothing
    with sent_statements() as calls:
        lists, totals = shape.ref_rows([*ids, *odd])
    assert len(calls) == 1
    sql, params = calls[0]
    # One array per list, and one for the totals (with the names of the bounded lists).
    arrays = [p for p in params if isinstance(p, str) and p.startswith("{")]
    assert len(arrays) == len(shape.ref_lists) + 1 and len(params) == len(arrays) + len(shape.bounded)
    assert " IN (" not in sql.replace(" AND related IN (", "")
    assert not any(owner in grouped for grouped in lists for owner in odd)
    assert (lists, totals) == shape.ref_rows(ids)
    runs = next(n for n, node in enumerate(shape.ref_lists) if node.related == "runs")
    assert sum(len(refs) for refs in lists[runs].values()) == Run.objects.count()  # fewer than 20 each
    assert sum(total for (_owner, related), total in totals.items() if related == "runs") == Run.objects.count()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_ref_lists_of_a_chunk_bind_the_ids_once_and_read_the_same_rows(rich: Run) -> None:
    for kind in (Issue.KIND, Run.KIND):
        shape = shapes.SHAPES[kind]
        ids = [*shape.model._default_manager.values_list("id", flat=True), 'a"b', "c\\d"]
        with sent_statements() as calls:
            once = shape.ref_rows(ids, once=True)
        assert len(calls) == 1
        sql, params = calls[0]
        assert sql.startswith("WITH owners AS") and [p for p in params if str(p).startswith("{")] == params[:1]
        assert once == shape.ref_rows(ids)


def test_rows_read_as_text_give_what_django_gives(demo: Run) -> None:
    # Timestamps with and without a fraction, integers beyond 64 bits, tiny floats and odd text in JSON.
    issue = Issue.objects.order_by("created_at").first()
    assert issue is not None
    meta = {"big": 2**70, "tiny": 1e-05, "text": 'é\u2028"\\', "nested": [None, True, 1.5, {"k": []}]}
    Issue.objects.filter(pk=issue.pk).update(meta=meta, updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    compiled = _row_shape(Issue.KIND)
    rows = list(Issue.objects.order_by("created_at", "id").values_list(*compiled.select()))
    expected = [shapes.dump(obj) for obj in shapes.SHAPES[Issue.KIND].queryset().order_by("created_at", "id")]
    got = [compiled.dump(row) for row in compiled.rows(rows)]
    assert got == expected
    assert got[0]["meta"] == meta and got[0]["updated_at"] == "2026-01-02T03:04:05Z"


def test_an_integer_beyond_64_bits_round_trips_exactly_through_a_bulk_import(db: None, tmp_path: Path) -> None:
    # orjson would read 2**70 as a float; the bulk path must give json.loads' value, as the line-by-line one does.
    big = 2**70 + 1
    repo = factories.repo()
    issue = factories.issue(repo, meta={"counter": big, "nested": [{"n": -big}]})
    text = export_text()
    wipe_cwom_tables()
    import_file(write(tmp_path, text))
    assert Issue.objects.get(pk=issue.pk).meta == {"counter": big, "nested": [{"n": -big}]}
    assert export_text() == text


def busy_issue() -> Issue:
    """An issue with more links and runs than its representation shows (issue 16)."""
    issue = factories.issue()
    snapshots = [factories.snapshot() for _ in range(shapes.NEWEST + 5)]
    writes.update(issue, {"constraints": [s.pk for s in snapshots]})
    for _ in range(shapes.NEWEST + 3):
        factories.packet(issue)  # each links itself to the issue
    for _ in range(shapes.NEWEST + 1):
        factories.run(issue, packets=[], status="planned")
    return issue


def test_an_issue_with_more_links_than_it_shows_round_trips_exactly(db: None, tmp_path: Path) -> None:
    issue = busy_issue()
    first = export_text()
    line = next(json.loads(x) for x in first.splitlines() if json.loads(x).get("id") == issue.pk)
    assert len(line["constraints"]) == shapes.NEWEST and line["constraints_total"] == shapes.NEWEST + 5
    wipe_cwom_tables()
    import_file(write(tmp_path, first))
    assert export_text() == first
    body = shapes.dump(Issue.objects.get(pk=issue.pk))
    assert (body["constraints_total"], body["context_packets_total"], body["runs_total"]) == (25, 23, 21)


def test_a_file_of_format_version_1_is_read_with_its_constraints_whole(db: None, tmp_path: Path) -> None:
    issue = busy_issue()
    snapshot_ids = [s for s, _role in writes.current_links(issue, "constraints")]
    records = [json.loads(x) for x in export_text().splitlines()]
    older = []
    for record in records[:-1]:  # as format version 1 wrote it: constraints whole, oldest first, no totals
        if record["kind"] == "CwomExport":
            record["format_version"] = 1
        if record["kind"] == "IssueLink" and record["relation"] == "constraints":
            continue
        if record["kind"] == "Issue":
            record = {k: v for k, v in record.items() if not k.endswith(("_total", "_url"))}
            if record["id"] == issue.pk:
                record["constraints"] = [{"kind": "ConstraintSnapshot", "id": s, "role": None} for s in snapshot_ids]
        older.append(json.dumps(record))
    wipe_cwom_tables()
    out, err = import_file(write(tmp_path, "\n".join(with_trailer(older)) + "\n"))
    assert "refused" not in err, err
    assert [s for s, _role in writes.current_links(Issue.objects.get(pk=issue.pk), "constraints")] == snapshot_ids
