"""Export and import: a round trip is exact, a rerun changes nothing, bad lines never land half-written."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cwom import writes
from cwom.models import ContextPacket, Event, Issue, IssueBlock, ObjectIndex, Repo, Run
from tests import factories
from tests.ops.helpers import export_text, wipe_cwom_tables


@pytest.fixture
def rich(demo: Run) -> Run:
    """The demo plus the harder cases: a parent, a duplicate, a draft packet, roles, a canceled run."""
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
    lines.append('{"kind": "Issue", "id": "01JD0Z8K3M5Q7R9T1V3X5Z7SSE", "title": "no repo"}')
    with pytest.raises(CommandError, match="atomic import refused: nothing was written") as refused:
        import_file(write(tmp_path, "\n".join(lines)), "--atomic")
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
