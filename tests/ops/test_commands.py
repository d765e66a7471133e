"""Each operator command: its happy path, its error path, its exit code and message."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.utils import timezone

from cwom.models import ApiToken, Artifact, Event, ObjectIndex, Run
from cwom.shapes import iso
from tests.ops.helpers import run


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

    @pytest.mark.parametrize("name", ["bad name!", "CI", "x" * 65, "-x", "naïve"], ids=repr)
    def test_a_name_that_is_not_a_lowercase_slug_is_bad_usage(self, db: None, name: str) -> None:
        with pytest.raises(CommandError, match="is not a token name: use 1 to 64 lowercase letters") as refused:
            run("cwom_token", "create", "--", name)  # "--": so that "-x" is a name, not an option
        assert refused.value.returncode == 2
        assert not ApiToken.objects.exists()

    @pytest.mark.parametrize(
        ("given", "length"),
        [
            ("30d", dt.timedelta(days=30)),
            ("12h", dt.timedelta(hours=12)),
            ("90m", dt.timedelta(minutes=90)),
            ("2w", dt.timedelta(weeks=2)),
            ("1d12h", dt.timedelta(days=1, hours=12)),
            ("45s", dt.timedelta(seconds=45)),
        ],
    )
    def test_expires_in_sets_the_expiry_from_now(self, db: None, given: str, length: dt.timedelta) -> None:
        before = timezone.now()
        _out, err = run("cwom_token", "create", "short", "--expires-in", given)
        expires_at = ApiToken.objects.get(name="short").expires_at
        assert expires_at is not None and before + length <= expires_at <= timezone.now() + length
        assert f"expiring at {iso(expires_at)}" in err

    def test_expires_at_takes_an_iso_time_naive_meaning_utc(self, db: None) -> None:
        run("cwom_token", "create", "zoned", "--expires-at", "2999-01-31T18:00:00+02:00")
        run("cwom_token", "create", "naive", "--expires-at", "2999-01-31T18:00:00")
        run("cwom_token", "create", "day", "--expires-at", "2999-01-31")
        expiries = dict(ApiToken.objects.values_list("name", "expires_at"))
        assert expiries["zoned"] == dt.datetime(2999, 1, 31, 16, tzinfo=dt.UTC)
        assert expiries["naive"] == dt.datetime(2999, 1, 31, 18, tzinfo=dt.UTC)
        assert expiries["day"] == dt.datetime(2999, 1, 31, tzinfo=dt.UTC)

    def test_without_an_expiry_a_token_never_expires(self, db: None) -> None:
        _out, err = run("cwom_token", "create", "forever")
        assert ApiToken.objects.get(name="forever").expires_at is None and "never expiring" in err

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--expires-in", "30d", "--expires-at", "2999-01-01"], "not both"),
            (["--expires-at", "2020-01-01T00:00:00Z"], "is in the past"),
            (["--expires-at", "tomorrow"], "is not an ISO-8601 date or timestamp"),
            (["--expires-at", "2999-13-45"], "is not an ISO-8601 date or timestamp"),
            (["--expires-in", "0d"], "is not in the future"),
            (["--expires-in", "30"], "is not a duration"),
            (["--expires-in", "30x"], "is not a duration"),
            (["--expires-in=-5m"], "is not a duration"),
            (["--expires-in", "99999999999d"], "too long"),
        ],
        ids=lambda value: " ".join(value) if isinstance(value, list) else value,
    )
    def test_a_bad_or_past_expiry_is_bad_usage(self, db: None, args: list[str], message: str) -> None:
        with pytest.raises(CommandError, match=message) as refused:
            run("cwom_token", "create", "never-made", *args)
        assert refused.value.returncode == 2
        assert not ApiToken.objects.exists()

    def test_list_marks_expired_tokens_and_shows_every_expiry(self, db: None) -> None:
        run("cwom_token", "create", "alive", "--expires-in", "30d")
        run("cwom_token", "create", "forever")
        run("cwom_token", "create", "lapsed", "--expires-in", "1h")
        run("cwom_token", "create", "gone")
        run("cwom_token", "revoke", "gone")
        ApiToken.objects.filter(name="lapsed").update(expires_at=timezone.now() - dt.timedelta(minutes=1))
        listed = {t["name"]: t for t in json.loads(run("cwom_token", "list", "--json")[0])}
        assert {name: t["status"] for name, t in listed.items()} == {
            "alive": "active",
            "forever": "active",
            "lapsed": "expired",  # shown by default: an agent's failing token should not vanish from view
        }
        assert listed["forever"]["expires_at"] is None
        assert listed["alive"]["expires_at"] == iso(ApiToken.objects.get(name="alive").expires_at)
        everything = json.loads(run("cwom_token", "list", "--all", "--json")[0])
        assert {t["name"]: t["status"] for t in everything}["gone"] == "revoked"
        table = run("cwom_token", "list", "--all")[0].splitlines()
        assert table[0].split() == [
            "name", "key_id", "scope", "status", "created_at", "expires_at", "last_used_at", "revoked_at"
        ]  # fmt: skip
        assert {line.split()[0]: line.split()[3] for line in table[1:]} == {
            "alive": "active",
            "forever": "active",
            "gone": "revoked",
            "lapsed": "expired",
        }


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
