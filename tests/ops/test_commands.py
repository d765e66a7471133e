"""Each operator command: its happy path, its error path, its exit code and message."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from cwom.models import ApiToken, Artifact, Event, ObjectIndex, Run


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class TestToken:
    def test_create_prints_the_secret_once_and_stores_only_its_hash(self, db: None) -> None:
        out, err = run("cwom_token", "create", "github-importer", "--write")
        secret = out.strip()
        token = ApiToken.objects.get(name="github-importer")
        assert token.can_write and secret.startswith("cwom_") and "not shown again" in err
        assert ApiToken.authenticate(secret) == token
        assert secret not in run("cwom_token", "list")[0]

    def test_tokens_are_read_only_unless_asked(self, db: None) -> None:
        run("cwom_token", "create", "dashboard")
        assert not ApiToken.objects.get(name="dashboard").can_write

    def test_a_duplicate_name_is_refused(self, db: None) -> None:
        run("cwom_token", "create", "ci")
        with pytest.raises(CommandError, match="already exists") as refused:
            run("cwom_token", "create", "ci")
        assert refused.value.returncode == 1

    def test_list_shows_active_tokens_and_all_with_all(self, db: None) -> None:
        run("cwom_token", "create", "alive")
        run("cwom_token", "create", "gone")
        run("cwom_token", "revoke", "gone")
        active = json.loads(run("cwom_token", "list", "--json")[0])
        assert [t["name"] for t in active] == ["alive"]
        everything = json.loads(run("cwom_token", "list", "--all", "--json")[0])
        assert {t["name"]: t["scope"] for t in everything} == {"alive": "read-only", "gone": "read-only"}
        assert "alive" in run("cwom_token", "list")[0]

    def test_revoke_stops_the_token_at_once(self, db: None) -> None:
        secret = run("cwom_token", "create", "agent-7", "--write")[0].strip()
        out, _err = run("cwom_token", "revoke", "agent-7")
        assert "Revoked" in out and ApiToken.authenticate(secret) is None
        assert "already revoked" in run("cwom_token", "revoke", "agent-7")[0]

    def test_revoking_an_unknown_token_fails(self, db: None) -> None:
        with pytest.raises(CommandError, match="No token is named 'nobody'") as refused:
            run("cwom_token", "revoke", "nobody")
        assert refused.value.returncode == 1

    def test_an_action_is_required(self, db: None) -> None:
        with pytest.raises(CommandError):
            run("cwom_token")


class TestStats:
    def test_counts_success_rate_durations_and_cost_overall_and_per_repo(self, demo: Run) -> None:
        numbers = json.loads(run("cwom_stats", "--json")[0])
        assert numbers["objects"]["Run"] == 3 and numbers["objects"]["Artifact"] == 4
        runs = numbers["runs"]
        assert runs["by_status"] == {"done": 1, "failed": 1, "planned": 1}
        assert runs["success_rate"] == 0.5
        assert runs["duration_s"]["measured"] == 2
        durations = sorted(Run.objects.exclude(started_at=None).values_list("duration_s", flat=True))
        assert runs["duration_s"]["p50"] == durations[0] and runs["duration_s"]["p95"] == durations[1]
        assert runs["cost"] == {"usd": 0.53, "tokens": 23200, "compute_s": 126.0}
        assert [r["slug"] for r in numbers["repos"]] == ["control-tower"]
        assert numbers["repos"][0]["runs"]["total"] == 3

    def test_the_text_report_names_the_figures(self, demo: Run) -> None:
        out, _err = run("cwom_stats")
        assert "success rate 50.0%" in out and "Repo control-tower" in out and "p95" in out

    def test_an_empty_database_has_no_rates(self, db: None) -> None:
        numbers = json.loads(run("cwom_stats", "--json")[0])
        assert numbers["runs"]["success_rate"] is None and numbers["runs"]["duration_s"]["p50"] is None

    def test_an_unknown_repo_fails(self, db: None) -> None:
        with pytest.raises(CommandError, match="No repo has slug 'nope'") as refused:
            run("cwom_stats", "--repo", "nope")
        assert refused.value.returncode == 1


class TestVerifyArtifacts:
    def test_matching_bytes_pass(self, demo: Run) -> None:
        out, _err = run("cwom_verify_artifacts")
        assert "All 3 stored artifacts match" in out

    def test_tampered_bytes_are_reported_and_exit_1(self, demo: Run, storage: Path) -> None:
        artifact = Artifact.objects.exclude(stored_name="").order_by("created_at").first()
        (Path(storage) / artifact.stored_name).write_bytes(b"tampered")
        out = io.StringIO()
        with pytest.raises(CommandError, match="1 of 3 stored artifacts do not match") as refused:
            call_command("cwom_verify_artifacts", stdout=out, stderr=io.StringIO())
        assert refused.value.returncode == 1
        assert f"MISMATCH {artifact.pk}: digest is sha256:" in out.getvalue()
        assert "size is 8 bytes" in out.getvalue()

    def test_missing_bytes_are_reported(self, demo: Run) -> None:
        artifact = Artifact.objects.exclude(stored_name="").first()
        default_storage.delete(artifact.stored_name)
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("cwom_verify_artifacts", artifact.pk, stdout=out, stderr=io.StringIO())
        assert "are missing" in out.getvalue()

    def test_an_unknown_id_fails(self, demo: Run) -> None:
        with pytest.raises(CommandError, match="No artifact with stored bytes"):
            run("cwom_verify_artifacts", "01JD0Z8K3M5Q7R9T1V3X5Z7ART")


class TestDemo:
    def test_loads_a_whole_chain_with_its_events(self, demo: Run, storage: Any) -> None:
        assert demo.artifacts.count() == 3 and demo.context_packets.exists() and demo.constraint_snapshot_id
        assert Event.objects.filter(object_id=demo.pk, action="transition").count() == 2
        assert set(Event.objects.values_list("principal", flat=True)) == {"system:cli"}

    def test_if_empty_does_nothing_when_data_exists(self, demo: Run) -> None:
        before = ObjectIndex.objects.count()
        out, _err = run("cwom_demo", "--if-empty")
        assert "no demo loaded" in out and ObjectIndex.objects.count() == before

    def test_loading_it_twice_fails(self, demo: Run) -> None:
        with pytest.raises(CommandError, match="already loaded") as refused:
            run("cwom_demo")
        assert refused.value.returncode == 1


def test_every_command_explains_itself(db: None) -> None:
    for name in ("cwom_token", "cwom_export", "cwom_import", "cwom_stats", "cwom_verify_artifacts", "cwom_demo"):
        command = load_command_class("cwom", name)
        assert len(command.help) > 80
        assert "Exit" in command.help
