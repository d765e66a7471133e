"""``manage.py cwom_stats``: counts, run success rate, durations and cost, overall and per repo."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from cwom import stats
from cwom.humanize import duration
from cwom.management.base import CwomCommand
from cwom.models import Repo


class Command(CwomCommand):
    help = (
        "Print health numbers: objects by kind, issues by status, artifacts by verification, and for runs the "
        "counts by status, success rate (done / (done + failed)), p50/p95 duration of started runs and the "
        "sums of cost; then the same per repo. --json for machines, --repo SLUG for one repo. "
        "Exit 0 on success, 1 for an unknown repo."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.add_argument("--repo", metavar="SLUG", help="only this repo")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["repo"] and not Repo.objects.filter(slug=options["repo"]).exists():
            raise CommandError(f"No repo has slug {options['repo']!r}.", returncode=1)
        numbers = stats.collect(options["repo"])
        if options["json"]:
            self.stdout.write(json.dumps(numbers, indent=2))
            return
        if "objects" in numbers:
            self.stdout.write("Objects: " + ", ".join(f"{kind} {n}" for kind, n in numbers["objects"].items()))
            self.stdout.write("Issues by status: " + _pairs(numbers["issues_by_status"]))
            self.stdout.write("Artifacts by verification: " + _pairs(numbers["artifacts_by_verification"]))
            self._runs("All runs", numbers["runs"])
        for repo in numbers["repos"]:
            self.stdout.write("")
            self.stdout.write(self.style.MIGRATE_HEADING(f"Repo {repo['slug']} ({repo['id']})"))
            self.stdout.write("  Issues by status: " + _pairs(repo["issues_by_status"]))
            self._runs("  Runs", repo["runs"])

    def _runs(self, title: str, runs: dict[str, Any]) -> None:
        rate = "n/a" if runs["success_rate"] is None else f"{runs['success_rate']:.1%}"
        duration = runs["duration_s"]
        cost = runs["cost"]
        self.stdout.write(f"{title}: {runs['total']} ({_pairs(runs['by_status'])}); success rate {rate}")
        self.stdout.write(
            f"{' ' * (len(title) - len(title.lstrip()))}  duration p50 {_seconds(duration['p50'])}, "
            f"p95 {_seconds(duration['p95'])} over {duration['measured']} started runs; "
            f"cost ${cost['usd']:.2f}, {cost['tokens']} tokens, {cost['compute_s']:.0f} compute-s"
        )


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else duration(value)
