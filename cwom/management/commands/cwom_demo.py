"""``manage.py cwom_demo``: a small, realistic chain of CWOM objects for a newcomer to look at."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, cast

from django.core.management.base import CommandError
from django.db import transaction

from cwom import writes
from cwom.management.base import CwomCommand
from cwom.models import ObjectIndex, Repo, Run
from execution import content

DEMO_SLUG = "control-tower"
MARIA = {"actor_kind": "human", "actor_id": "maria", "display": "Maria Lopez"}
BUILDER = {"actor_kind": "agent", "actor_id": "builder-7", "display": "Builder agent 7"}
CI = {"actor_kind": "system", "actor_id": "ci", "display": "CI"}

PATCH = """\
--- a/control_tower/urls.py
+++ b/control_tower/urls.py
@@ -1,6 +1,8 @@
 from django.urls import path
+from .health import healthz

 urlpatterns = [
+    path("healthz", healthz),
     path("", index),
 ]
"""
RUN_LOG = """\
$ python -m pytest tests/test_health.py -q
..                                                                       [100%]
2 passed in 0.41s
"""
FAILED_LOG = """\
$ python -m pytest tests/test_deploy_check.py -q
F.                                                                       [100%]
FAILED tests/test_deploy_check.py::test_retries_on_502 - AssertionError: expected 3 retries, got 1
1 failed, 1 passed in 2.10s
"""


class Command(CwomCommand):
    help = (
        "Load a small, realistic demo: a repo, two doctrine refs, a constraint snapshot, two issues (one blocks "
        "the other), a sealed context packet, a run that succeeded with a patch, a log and a PR, a run that failed "
        "its tests, and a planned follow-up run, all with their events. --if-empty does nothing when the database "
        "already holds CWOM objects (for `make run`). Exit 0 on success, 1 when the demo is already loaded."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="load only into a database without CWOM objects, else do nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and ObjectIndex.objects.exists():
            self.stdout.write("The database already holds CWOM objects: no demo loaded.")
            return
        if Repo.objects.filter(slug=DEMO_SLUG).exists():
            raise CommandError(f"The demo is already loaded (repo {DEMO_SLUG!r} exists).", returncode=1)
        saved: list[str] = []
        try:
            with transaction.atomic():
                run_id = load_demo(saved)
        except BaseException:
            content.delete_stored(saved)
            raise
        self.stdout.write(self.style.SUCCESS(f"Demo loaded: repo {DEMO_SLUG}, see run {run_id} in the admin."))


def load_demo(saved: list[str]) -> str:
    """Create the demo chain (inside the caller's transaction); returns the successful run's id."""
    repo = writes.create(
        "Repo",
        {
            "name": "Control Tower",
            "slug": DEMO_SLUG,
            "source": {
                "system": "github",
                "external_id": "acme/control-tower",
                "url": "https://github.com/acme/control-tower",
            },
            "visibility": "internal",
            "owners": [MARIA],
            "policy": {"allowed_tools": ["python", "pytest", "git"], "secrets_profile": "ci-readonly"},
            "created_by": MARIA,
            "tags": ["demo"],
        },
    )
    secrets_rule = writes.create(
        "DoctrineRef",
        {
            "namespace": "security",
            "name": "no-secrets-in-logs",
            "version": "1.0.0",
            "type": "policy",
            "priority": "must",
            "statement": "Never write credentials, tokens or personal data to logs or artifacts.",
            "rationale": "Logs and artifacts are readable by every agent and reviewer.",
            "applicability": {"repo_refs": [repo.pk], "issue_types": [], "tags": []},
            "created_by": MARIA,
        },
    )
    small_prs = writes.create(
        "DoctrineRef",
        {
            "namespace": "engineering",
            "name": "small-pull-requests",
            "version": "1.2.0",
            "type": "heuristic",
            "priority": "should",
            "statement": "Keep a pull request under 400 changed lines; split larger work.",
            "applicability": {"repo_refs": [repo.pk], "issue_types": ["feature", "bug"], "tags": []},
            "created_by": MARIA,
        },
    )
    snapshot = writes.create(
        "ConstraintSnapshot",
        {
            "scope": "repo",
            "owner": MARIA,
            "constraints": {
                "time": {"available_minutes": 90, "deadline": None},
                "energy": {"score_0_5": 4, "notes": "fresh"},
                "budget": {"usd_available": 5.0, "burn_limit_usd": 2.0},
                "tools": {"allowed": ["python", "pytest", "git"], "blocked": ["curl"]},
                "environment": {"location": "ci", "connectivity": "ok", "device": "container"},
                "risk": {"tolerance": "low", "notes": "production monitor depends on it"},
            },
            "created_by": MARIA,
        },
    )
    healthz = writes.create(
        "Issue",
        {
            "repo": repo.pk,
            "title": "Add /healthz endpoint",
            "description": "Expose an uptime check for the deploy monitor.",
            "type": "feature",
            "priority": "P2",
            "status": "running",
            "assignees": [BUILDER],
            "watchers": [MARIA],
            "doctrine_refs": [secrets_rule.pk, small_prs.pk],
            "constraints": [snapshot.pk],
            "acceptance": {
                "criteria": ['GET /healthz answers 200 with {"ok": true}'],
                "tests_expected": ["test_healthz"],
            },
            "created_by": MARIA,
            "tags": ["ops", "demo"],
        },
    )
    flaky = writes.create(
        "Issue",
        {
            "repo": repo.pk,
            "title": "Deploy check does not retry on 502",
            "description": "The post-deploy check gives up after the first 502 from the load balancer.",
            "type": "bug",
            "priority": "P1",
            "status": "blocked",
            "assignees": [BUILDER],
            "relationships": {"blocked_by": [healthz.pk]},
            "created_by": MARIA,
            "tags": ["ops", "demo"],
        },
    )
    brief = writes.create(
        "ContextPacket",
        {
            "for_issue": healthz.pk,
            "summary": "The deploy monitor polls every service; Control Tower has no cheap probe yet.",
            "inputs": {
                "documents": [
                    {
                        "title": "Monitor contract",
                        "uri": "https://wiki.acme.example/monitor",
                        "digest": None,
                        "excerpt": None,
                    }
                ],
                "data_blobs": [{"name": "expected", "media_type": "application/json", "inline": '{"ok": true}'}],
                "links": ["https://github.com/acme/control-tower/issues/41"],
            },
            "assumptions": ["The probe must not touch the database."],
            "open_questions": ["Should it report the build sha?"],
            "instructions": "Add a view, a URL and a test. Keep the PR small.",
            "doctrine_refs": [secrets_rule.pk],
            "constraint_snapshot": snapshot.pk,
            "created_by": MARIA,
        },
    )
    flaky_brief = writes.create(
        "ContextPacket",
        {"for_issue": flaky.pk, "summary": "The check uses requests without a retry adapter.", "created_by": MARIA},
    )
    done = _run(
        healthz,
        [brief],
        [small_prs],
        snapshot,
        steps=["add view", "add url", "add test"],
        decisions=["No database call in the probe: it must stay cheap."],
    )
    with_bytes = content.create_with_content(
        done,
        type="code_patch",
        title="healthz view and route",
        content=PATCH.encode(),
        media_type="text/x-diff",
        saved=saved,
    )
    content.create_with_content(
        done, type="log", title="pytest output", content=RUN_LOG.encode(), media_type="text/plain", saved=saved
    )
    pr = writes.create(
        "Artifact",
        {
            "produced_by": done.pk,
            "type": "pr",
            "title": "Add /healthz",
            "uri": "https://github.com/acme/control-tower/pull/77",
            "digest": "git:3b4ac4e91395f252de1c18a991b590041c184721",
            "created_by": BUILDER,
        },
    )
    writes.update(
        pr,
        {
            "verification": {
                "status": "passed",
                "checks": [{"name": "ci", "status": "passed", "evidence_uri": "https://ci.acme.example/builds/5512"}],
            }
        },
    )
    writes.transition(
        done,
        "done",
        result_summary="Endpoint, route and test added; PR #77 is green.",
        cost_usd=0.42,
        cost_tokens=18000,
        cost_compute_s=95.0,
    )
    writes.update(
        writes.reload(with_bytes),
        {"verification": {"status": "passed", "checks": [{"name": "applies", "status": "passed"}]}},
    )
    failed = _run(flaky, [flaky_brief], [], None, steps=["wrap requests in a retry adapter"], decisions=[])
    content.create_with_content(
        failed, type="log", title="pytest output", content=FAILED_LOG.encode(), media_type="text/plain", saved=saved
    )
    writes.transition(
        failed,
        "failed",
        failure_category="test",
        failure_message="test_retries_on_502: expected 3 retries, got 1",
        cost_usd=0.11,
        cost_tokens=5200,
        cost_compute_s=31.0,
    )
    writes.create(
        "Run",
        {
            "for_issue": healthz.pk,
            "status": "planned",
            "mode": "hybrid",
            "plan": {"steps": ["report the build sha in /healthz"], "risk_notes": []},
            "created_by": MARIA,
        },
    )
    return done.pk


def _run(
    issue: Any, packets: list[Any], doctrines: list[Any], snapshot: Any, *, steps: list[str], decisions: list[str]
) -> Any:
    """A run of ``issue`` created ready and started by the builder agent."""
    run = writes.create(
        "Run",
        {
            "for_issue": issue.pk,
            "status": "ready",
            "mode": "agent",
            "executor": {"actor": BUILDER, "runtime": "container", "toolchain": ["python3.12", "pytest"]},
            "inputs": {
                "context_packets": [{"id": p.pk, "role": "primary_context"} for p in packets],
                "doctrine_refs": [d.pk for d in doctrines],
                "constraint_snapshot": snapshot.pk if snapshot else None,
            },
            "plan": {"steps": steps, "risk_notes": []},
            "outputs": {"decision_log": decisions},
            "created_by": BUILDER,
            "tags": ["demo"],
        },
    )
    return writes.transition(cast(Run, run), "running")
