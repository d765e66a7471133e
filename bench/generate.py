"""Generate a realistic CWOM dataset on PostgreSQL, fast, with COPY.

    .venv/bin/python bench/generate.py --scale 10k      # or 100k, 1m

Each scale gets its own database (``cwom_bench_10k``, ``cwom_bench_100k``, ``cwom_bench_1m``; ``--db NAME``
for another, so a private copy never touches the shared one), dropped, re-created and migrated
(``manage.py migrate``) by this script, then filled with psycopg 3 ``COPY``.

At scale N (N = 10k / 100k / 1M): N issues, N runs, 2N artifacts, N/10 context packets, N/100 doctrine refs,
N/50 constraint snapshots, max(20, N/1000) repos, the link tables, one ``cwom_objectindex`` row per object and
one ``create`` event per object (``--no-events`` to skip them).

Skew, as a live deployment sees it: issues per repo follow a Zipf law (a few hot repos), tags are Zipf over a
300-word vocabulary, most issues and runs are ``done``, runs pile up on a Pareto-distributed set of issues.

Invariants are respected by construction (and checked by SQL after the load): a run's repo is its issue's repo;
every run past ``planned`` uses at least one sealed packet of its own issue; artifacts exist only for started
runs and carry their run's issue; terminal runs have ``ended_at >= started_at``; failed runs have a failure;
sealed packets have ``sealed_at``; ids are ULIDs whose timestamp is the row's ``created_at``, unique across kinds.

The load runs with ``SET session_replication_role = replica``: that switches off the CWOM guard triggers and the
foreign-key triggers for the loading sessions only (the data is consistent by construction and verified
afterwards). Plain (non-constraint) indexes are dropped during the load and rebuilt after it, then the database
is VACUUM ANALYZEd. Rows/s are printed and written to ``bench/results/<date>-<scale>-generate.json``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cwom.db_guards import PG_TAG_BACKFILL  # noqa: E402 - plain SQL text, no Django setup needed

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# --- ULIDs ---------------------------------------------------------------------------------------------
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_T2 = [a + b for a in CROCKFORD for b in CROCKFORD]  # 10 bits -> 2 chars
_T4 = [a + b for a in _T2 for b in _T2]  # 20 bits -> 4 chars


def ulid_at(ms: int, rand: Callable[[int], int] = random.getrandbits) -> str:
    """A ULID whose timestamp is ``ms`` (epoch milliseconds) with 80 random bits."""
    r = rand(80)
    return (
        _T4[ms >> 30]
        + _T4[(ms >> 10) & 0xFFFFF]
        + _T2[ms & 0x3FF]
        + _T4[r >> 60]
        + _T4[(r >> 40) & 0xFFFFF]
        + _T4[(r >> 20) & 0xFFFFF]
        + _T4[r & 0xFFFFF]
    )


# --- COPY text format helpers ------------------------------------------------------------------------------
NULL = "\\N"


def esc(value: str) -> str:
    """Escape a string for COPY text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def js(value: Any) -> str:
    """A JSON value as an escaped COPY field."""
    return esc(json.dumps(value, separators=(",", ":")))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_day_cache: dict[int, str] = {}


def ts(ms: int) -> str:
    """Epoch milliseconds as a PostgreSQL timestamptz literal (UTC)."""
    day, rest = divmod(ms, 86_400_000)
    prefix = _day_cache.get(day)
    if prefix is None:
        prefix = _day_cache[day] = (_EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d ")
    secs, milli = divmod(rest, 1000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}+00"


class Zipf:
    """Draw indexes 0..n-1 with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n: int, s: float) -> None:
        self.cum = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))
        self.total = self.cum[-1]

    def draw(self, rnd: random.Random) -> int:
        return bisect.bisect_left(self.cum, rnd.random() * self.total)

    def sample(self, rnd: random.Random, k: int) -> list[int]:
        return [self.draw(rnd) for _ in range(k)]


def weighted(rnd: random.Random, table: dict[str, int], k: int) -> list[str]:
    return rnd.choices(list(table), weights=list(table.values()), k=k)


# --- vocabulary --------------------------------------------------------------------------------------------
WORDS = (
    "api auth billing cache ci cli config db deploy docs email export flaky frontend gateway graphql import infra "
    "k8s latency logging metrics migration mobile monitoring network oauth onboarding payments perf queue "
    "ratelimit redis refactor release search security sso storage sync telemetry terraform tests ui upload "
    "webhook worker backend compliance a11y i18n cost reliability observability"
).split()
TAG_VOCAB = [*WORDS, *(f"{w}-{suffix}" for suffix in ("v2", "eu", "us", "beta", "legacy") for w in WORDS)][:300]
ISSUE_STATUS = {"done": 70, "canceled": 5, "failed": 3, "planned": 8, "ready": 5, "running": 4, "blocked": 5}
ISSUE_TYPE = {"feature": 35, "bug": 30, "chore": 15, "research": 5, "ops": 8, "doc": 5, "incident": 2}
PRIORITY = {"P0": 2, "P1": 10, "P2": 50, "P3": 28, "P4": 10}
# Runs past planned: how they ended up.
RUN_STATUS = {"done": 82, "failed": 8, "canceled": 4, "running": 2, "ready": 2, "blocked": 2}
RUN_MODE = {"agent": 80, "human": 8, "hybrid": 8, "system": 4}
FAILURES = ["policy", "build", "test", "runtime", "dependency", "unknown"]
ARTIFACT_TYPE = {
    "log": 28,
    "code_patch": 18,
    "commit": 10,
    "pr": 8,
    "report": 10,
    "build": 8,
    "trace": 6,
    "doc": 4,
    "container_image": 3,
    "dataset": 2,
    "binary": 1,
    "link": 2,
}
MEDIA = {
    "log": "text/plain",
    "code_patch": "text/x-diff",
    "report": "text/markdown",
    "trace": "application/json",
    "doc": "text/markdown",
    "dataset": "application/parquet",
    "binary": "application/octet-stream",
}
VERIFY = {"unverified": 60, "passed": 35, "failed": 5}


def actor(kind: str, ident: str) -> dict[str, str]:
    return {"actor_kind": kind, "actor_id": ident, "display": ident.replace("-", " ").title()}


AGENTS = [actor("agent", f"agent-{i}") for i in range(40)]
HUMANS = [actor("human", name) for name in ("maria", "li", "sam", "noor", "kofi", "ana", "jon", "ife", "raj", "eva")]
ACTORS = AGENTS + HUMANS


class Counter:
    """Rows written per table, and timing."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    def add(self, table: str, rows: int, seconds: float) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows
        self.seconds[table] = self.seconds.get(table, 0.0) + seconds


class Loader:
    """COPY streams: one main connection for entity tables, side connections for the index and events."""

    CHUNK = 1 << 20

    def __init__(self, url: str, counter: Counter, events: bool) -> None:
        self.url = url
        self.counter = counter
        self.main = self._connect()
        self.side = self._connect()
        self.events_conn = self._connect() if events else None
        # Two long-running COPYs on their own sessions, fed while the entity tables stream on the main one.
        self.streams = contextlib.ExitStack()
        self.index_copy = self.streams.enter_context(
            self.side.cursor().copy("COPY cwom_objectindex (id, kind) FROM STDIN")
        )
        self.index_buf: list[str] = []
        self.event_copy = None
        self.event_buf: list[str] = []
        if self.events_conn is not None:
            self.event_copy = self.streams.enter_context(
                self.events_conn.cursor().copy(
                    "COPY cwom_event (object_id, object_kind, action, changes, principal, actor, at) FROM STDIN"
                )
            )

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url)
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        return conn

    def index(self, object_id: str, kind: str, at: str, actor_json: str) -> None:
        self.index_buf.append(f"{object_id}\t{kind}\n")
        if self.event_copy is not None:
            self.event_buf.append(f"{object_id}\t{kind}\tcreate\t{{}}\ttoken:bench-loader\t{actor_json}\t{at}\n")
        if len(self.index_buf) >= 20_000:
            self.flush_side()

    def flush_side(self) -> None:
        if self.index_buf:
            self.index_copy.write("".join(self.index_buf))
            self.counter.add("cwom_objectindex", len(self.index_buf), 0.0)
            self.index_buf = []
        if self.event_buf and self.event_copy is not None:
            self.event_copy.write("".join(self.event_buf))
            self.counter.add("cwom_event", len(self.event_buf), 0.0)
            self.event_buf = []

    def copy(self, table: str, columns: Iterable[str], rows: Iterator[str]) -> int:
        """COPY text lines (each ending in a newline) into ``table``; returns the row count."""
        started = time.perf_counter()
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        count = 0
        with self.main.cursor().copy(statement) as cp:
            buf: list[str] = []
            size = 0
            for line in rows:
                buf.append(line)
                size += len(line)
                count += 1
                if size >= self.CHUNK:
                    cp.write("".join(buf))
                    buf, size = [], 0
                    self.flush_side()
            if buf:
                cp.write("".join(buf))
        self.flush_side()
        self.counter.add(table, count, time.perf_counter() - started)
        print(f"  {table:32s} {count:>10,d} rows  {time.perf_counter() - started:7.1f}s", flush=True)
        return count

    def abort(self) -> None:
        """Roll every loading session back (an open COPY would otherwise block the index rebuild)."""
        for conn in (self.main, self.side, self.events_conn):
            if conn is not None:
                conn.cancel_safe()
                conn.close()

    def finish(self) -> None:
        self.flush_side()
        self.streams.close()
        for conn in (self.main, self.side, self.events_conn):
            if conn is not None:
                conn.commit()
                conn.close()


# --- the dataset ----------------------------------------------------------------------------------------------
class Dataset:
    """Builds every table's rows in an order that keeps references valid."""

    def __init__(self, n: int, seed: int, loader: Loader) -> None:
        self.n = n
        # Reproducible, not secret: a seeded PRNG is what a data generator wants.
        self.rnd = random.Random(seed)  # noqa: S311
        random.seed(seed)
        self.loader = loader
        self.now_ms = int(time.time() * 1000) - 3_600_000
        self.start_ms = self.now_ms - 365 * 86_400_000
        self.n_repos = max(20, n // 1000)
        self.n_doctrine = max(100, n // 100)
        self.n_snapshots = max(200, n // 50)
        self.n_packets = n // 10
        self.tag_zipf = Zipf(len(TAG_VOCAB), 1.1)
        # Pre-rendered pools keep the per-row cost low while the values stay varied.
        self.tag_pool = [self._tags() for _ in range(20_000)]
        self.actor_json = [js(a) for a in ACTORS]
        self.agent_json = [js(a) for a in AGENTS]

    def _tags(self) -> str:
        count = self.rnd.choices([0, 1, 2, 3, 4], weights=[12, 35, 30, 16, 7])[0]
        tags = sorted({TAG_VOCAB[self.tag_zipf.draw(self.rnd)] for _ in range(count)})
        return js(tags)

    def _time_between(self, lo: int, hi: int) -> int:
        return lo + int(self.rnd.random() * max(1, hi - lo))

    # repos ------------------------------------------------------------------------------------------------
    def repos(self) -> None:
        rnd = self.rnd
        self.repo_ids: list[str] = []
        self.repo_slugs: list[str] = []

        def rows() -> Iterator[str]:
            for i in range(self.n_repos):
                at = self.start_ms - 30 * 86_400_000 + i * 1000
                rid = ulid_at(at)
                slug = f"{rnd.choice(WORDS)}-{rnd.choice(WORDS)}-{i}"
                self.repo_ids.append(rid)
                self.repo_slugs.append(slug)
                owner = rnd.choice(self.actor_json)
                t = ts(at)
                self.loader.index(rid, "Repo", t, owner)
                yield (
                    f"{rid}\t{t}\t{owner}\t{rnd.choice(self.tag_pool)}\t{{}}\t{t}\t{slug.replace('-', ' ').title()}\t"
                    f"{slug}\tgithub\t{100000 + i}\thttps://github.com/acme/{slug}\tmain\t"
                    f"{rnd.choice(['private', 'private', 'internal', 'public'])}\t[{owner}]\t"
                    f'["git","python","pytest"]\t{NULL}\t[]\n'
                )

        self.loader.copy(
            "cwom_repo",
            "id created_at created_by tags meta updated_at name slug source_system source_external_id source_url "
            "default_branch visibility owners policy_allowed_tools policy_secrets_profile links".split(),
            rows(),
        )

    # doctrine refs -------------------------------------------------------------------------------------------
    def doctrine(self) -> None:
        rnd = self.rnd
        self.doctrine_ids: list[str] = []
        links: list[str] = []
        namespaces = ["security", "quality", "ops", "product", "data", "style", "release", "privacy"]

        def rows() -> Iterator[str]:
            for i in range(self.n_doctrine):
                at = self.start_ms - 20 * 86_400_000 + i * 100
                did = ulid_at(at)
                self.doctrine_ids.append(did)
                t = ts(at)
                who = rnd.choice(self.actor_json)
                self.loader.index(did, "DoctrineRef", t, who)
                for repo in {rnd.randrange(self.n_repos) for _ in range(rnd.choice([0, 0, 1, 2]))}:
                    links.append(f"{NULL}\t{did}\t{self.repo_ids[repo]}\n")
                types = js(rnd.sample(list(ISSUE_TYPE), rnd.choice([0, 1, 2])))
                yield (
                    f"{did}\t{t}\t{who}\t{rnd.choice(self.tag_pool)}\t{{}}\t{t}\t{rnd.choice(namespaces)}\t"
                    f"rule-{i // 3}\t1.{i % 3}.0\t"
                    f"{rnd.choice(['principle', 'policy', 'procedure', 'heuristic', 'pattern'])}\t"
                    f"{rnd.choice(['must', 'should', 'may'])}\tRule {i}: prefer small reversible changes.\t"
                    f"Because rollbacks are cheap.\t[]\t{types}\t{rnd.choice(self.tag_pool)}\tt\n"
                )

        self.loader.copy(
            "cwom_doctrineref",
            "id created_at created_by tags meta updated_at namespace name version type priority statement rationale "
            "links applicability_issue_types applicability_tags published".split(),
            rows(),
        )
        self.loader.copy("cwom_doctrineapplicablerepo", ["role", "doctrine_ref_id", "repo_id"], iter(links))

    # constraint snapshots -----------------------------------------------------------------------------------------
    def snapshots(self) -> None:
        rnd = self.rnd
        self.snapshot_ids: list[str] = []
        self.snapshot_ms: list[int] = []

        def rows() -> Iterator[str]:
            step = (self.now_ms - self.start_ms) // self.n_snapshots
            for i in range(self.n_snapshots):
                at = self.start_ms + i * step
                sid = ulid_at(at)
                self.snapshot_ids.append(sid)
                self.snapshot_ms.append(at)
                t = ts(at)
                who = rnd.choice(self.actor_json)
                self.loader.index(sid, "ConstraintSnapshot", t, who)
                yield (
                    f"{sid}\t{t}\t{who}\t[]\t{{}}\t{rnd.choice(['run', 'run', 'repo', 'personal', 'org'])}\t{t}\t"
                    f"{who}\t{rnd.choice([30, 60, 120, 240])}\t{NULL}\t{rnd.randint(0, 5)}\t\t[]\t{NULL}\t"
                    f"{rnd.choice([5, 20, 100])}\t{rnd.choice([1, 5, 20])}\t"
                    f'["git","python","pytest"]\t["curl"]\tremote\tok\tlaptop\t'
                    f"{rnd.choice(['low', 'medium', 'high'])}\t{NULL}\n"
                )

        self.loader.copy(
            "cwom_constraintsnapshot",
            "id created_at created_by tags meta scope captured_at owner time_available_minutes time_deadline "
            "energy_score_0_5 energy_notes health_flags health_notes budget_usd_available budget_burn_limit_usd "
            "tools_allowed tools_blocked environment_location environment_connectivity environment_device "
            "risk_tolerance risk_notes".split(),
            rows(),
        )

    # issues ----------------------------------------------------------------------------------------------------
    def issues(self) -> None:
        rnd = self.rnd
        n = self.n
        repo_zipf = Zipf(self.n_repos, 1.0)
        statuses = weighted(rnd, ISSUE_STATUS, n)
        types = weighted(rnd, ISSUE_TYPE, n)
        priorities = weighted(rnd, PRIORITY, n)
        step = (self.now_ms - self.start_ms - 86_400_000) / n
        self.issue_ids: list[str] = [""] * n
        self.issue_repo: list[int] = [0] * n
        self.issue_ms: list[int] = [0] * n
        titles = [
            esc(f"{verb} {noun}")
            for verb in ("Fix", "Add", "Speed up", "Document", "Remove", "Investigate", "Migrate", "Harden")
            for noun in (
                "login flow",
                "/healthz",
                "export job",
                "flaky test",
                "rate limits",
                "search index",
                "CI cache",
            )
        ]
        descriptions = [
            esc(f"## Context\nSeen in {w} since last release.\n\n- [ ] reproduce\n- [ ] fix") for w in WORDS
        ]
        assignee_pool = ["[]", "[]", *(f"[{a}]" for a in self.actor_json)]
        criteria = js(["All tests pass", "Docs updated"])
        blocks: list[str] = []
        doctrine_links: list[str] = []

        def rows() -> Iterator[str]:
            for i in range(n):
                at = self.start_ms + int(i * step) + rnd.randrange(1000)
                iid = ulid_at(at)
                repo = repo_zipf.draw(rnd)
                self.issue_ids[i] = iid
                self.issue_repo[i] = repo
                self.issue_ms[i] = at
                t = ts(at)
                updated = ts(min(self.now_ms, at + rnd.randrange(30 * 86_400_000)))
                who = rnd.choice(self.actor_json)
                self.loader.index(iid, "Issue", t, who)
                parent = NULL
                if i > 10 and rnd.random() < 0.03:
                    parent = self.issue_ids[rnd.randrange(i)]
                if i > 10 and rnd.random() < 0.01:
                    blocks.append(f"{NULL}\t{iid}\t{self.issue_ids[rnd.randrange(i)]}\n")
                if rnd.random() < 0.10:
                    doctrine_links.append(f"{NULL}\t{rnd.choice(self.doctrine_ids)}\t{iid}\n")
                yield (
                    f"{iid}\t{t}\t{who}\t{rnd.choice(self.tag_pool)}\t{{}}\t{updated}\t{rnd.choice(titles)}\t"
                    f"{rnd.choice(descriptions)}\t{types[i]}\t{priorities[i]}\t{statuses[i]}\t"
                    f"{rnd.choice(assignee_pool)}\t[]\t{criteria}\t{NULL}\t{parent}\t{self.repo_ids[repo]}\n"
                )

        self.loader.copy(
            "cwom_issue",
            "id created_at created_by tags meta updated_at title description type priority status assignees "
            "watchers acceptance_criteria acceptance_tests_expected parent_id repo_id".split(),
            rows(),
        )
        self.loader.copy("cwom_issueblock", ["role", "blocker_id", "blocked_id"], iter(blocks))
        self.loader.copy("cwom_issuedoctrineref", ["role", "doctrine_ref_id", "issue_id"], iter(doctrine_links))

    # context packets --------------------------------------------------------------------------------------------
    def packets(self) -> None:
        rnd = self.rnd
        n_issues_with_packets = max(1, int(self.n_packets * 0.8))
        chosen = sorted(rnd.sample(range(self.n), n_issues_with_packets))
        extra = [rnd.choice(chosen) for _ in range(self.n_packets - n_issues_with_packets)]
        per_issue: dict[int, int] = dict.fromkeys(chosen, 1)
        for i in extra:
            per_issue[i] += 1
        # issue index -> sealed packet ids (runs pick from these); issue index -> its snapshot.
        self.sealed_packets: dict[int, list[str]] = {}
        self.issue_snapshot: dict[int, str] = {}
        issue_links: list[str] = []
        issue_snapshots: list[str] = []
        packet_doctrine: list[str] = []
        docs = js([{"title": "Design notes", "uri": "https://docs.example/design", "digest": None, "excerpt": None}])
        blobs = js([{"name": "env", "media_type": "application/json", "uri": None, "inline": "{}", "digest": None}])

        def rows() -> Iterator[str]:
            for i in chosen:
                iid = self.issue_ids[i]
                snap_index = bisect.bisect_right(self.snapshot_ms, self.issue_ms[i]) - 1
                snapshot = self.snapshot_ids[max(0, snap_index)]
                self.issue_snapshot[i] = snapshot
                issue_snapshots.append(f"{NULL}\t{iid}\t{snapshot}\n")
                at = self.issue_ms[i]
                for version in range(1, per_issue[i] + 1):
                    at = min(self.now_ms, at + rnd.randrange(1, 86_400_000))
                    pid = ulid_at(at)
                    t = ts(at)
                    who = rnd.choice(self.agent_json)
                    self.loader.index(pid, "ContextPacket", t, who)
                    issue_links.append(f"{NULL}\t{iid}\t{pid}\n")
                    sealed = version == 1 or rnd.random() > 0.1
                    if sealed:
                        self.sealed_packets.setdefault(i, []).append(pid)
                    if rnd.random() < 0.3:
                        packet_doctrine.append(f"{NULL}\t{rnd.choice(self.doctrine_ids)}\t{pid}\n")
                    pinned = snapshot if rnd.random() < 0.5 else NULL
                    yield (
                        f"{pid}\t{t}\t{who}\t{rnd.choice(self.tag_pool)}\t{{}}\t{t}\t{version}\t"
                        f"Briefing v{version} for {iid}.\t{docs}\t{blobs}\t[]\t"
                        f'["CI is green on main"]\t["Which region?"]\tKeep the change small.\t'
                        f"{'t' if sealed else 'f'}\t{t if sealed else NULL}\t{pinned}\t{iid}\n"
                    )

        self.loader.copy(
            "cwom_contextpacket",
            "id created_at created_by tags meta updated_at version summary inputs_documents inputs_data_blobs "
            "inputs_links assumptions open_questions instructions sealed sealed_at constraint_snapshot_id "
            "for_issue_id".split(),
            rows(),
        )
        self.loader.copy("cwom_issuecontextpacket", ["role", "issue_id", "packet_id"], iter(issue_links))
        self.loader.copy("cwom_issueconstraintsnapshot", ["role", "issue_id", "snapshot_id"], iter(issue_snapshots))
        self.loader.copy("cwom_packetdoctrineref", ["role", "doctrine_ref_id", "packet_id"], iter(packet_doctrine))

    # runs and artifacts ------------------------------------------------------------------------------------------
    def runs_and_artifacts(self) -> None:
        rnd = self.rnd
        n = self.n
        n_planned = int(n * 0.03)
        worked = sorted(self.sealed_packets)
        # Pareto weights: most issues get a handful of runs, a few get thousands (agents retrying).
        weights = [min(rnd.paretovariate(1.3), 2000.0) for _ in worked]
        assigned = rnd.choices(range(len(worked)), weights=weights, k=n - n_planned)
        counts = [0] * len(worked)
        for a in assigned:
            counts[a] += 1
        plan: list[tuple[int, bool]] = [(worked[k], False) for k in range(len(worked)) for _ in range(counts[k])]
        plan += [(rnd.randrange(n), True) for _ in range(n_planned)]
        plan.sort(key=lambda item: item[0])
        run_statuses = weighted(rnd, RUN_STATUS, len(plan))
        modes = weighted(rnd, RUN_MODE, len(plan))
        started_runs: list[tuple[str, int, int, int, str]] = []  # (run id, issue index, started, ended, run at)
        run_packets: list[str] = []
        run_doctrine: list[str] = []
        plan_steps = js(["Reproduce", "Patch", "Test"])
        decision_log = js(["Chose the smallest fix"])

        def run_rows() -> Iterator[str]:
            for k, (i, planned) in enumerate(plan):
                issue_at = self.issue_ms[i]
                at = min(self.now_ms - 60_000, issue_at + rnd.randrange(1, 30 * 86_400_000))
                if at <= issue_at:
                    at = issue_at + 1
                rid = ulid_at(at)
                t = ts(at)
                who = rnd.choice(self.agent_json)
                self.loader.index(rid, "Run", t, who)
                status = "planned" if planned else run_statuses[k]
                started = ended = None
                if status in ("running", "done", "failed") or (
                    status in ("blocked", "canceled") and rnd.random() < 0.5
                ):
                    started = at + rnd.randrange(1000, 600_000)
                if status in ("done", "failed", "canceled"):
                    ended = (started or at) + rnd.randrange(1000, 1_800_000)
                failure_category = failure_message = NULL
                if status == "failed":
                    failure_category = rnd.choice(FAILURES)
                    failure_message = "Step failed: see the log artifact."
                snapshot = NULL
                if not planned:
                    packets = self.sealed_packets[i]
                    run_packets.append(f"primary_context\t{packets[0]}\t{rid}\n")
                    if len(packets) > 1 and rnd.random() < 0.3:
                        run_packets.append(f"{NULL}\t{packets[-1]}\t{rid}\n")
                    if started is not None:
                        snapshot = self.issue_snapshot[i]
                if rnd.random() < 0.2:
                    run_doctrine.append(f"{NULL}\t{rnd.choice(self.doctrine_ids)}\t{rid}\n")
                if started is not None and status not in ("planned", "ready"):
                    started_runs.append((rid, i, started, ended or self.now_ms, t))
                duration = NULL if ended is None else f"{(ended - (started or at)) / 1000:.3f}"
                done = status == "done"
                yield (
                    f"{rid}\t{t}\t{who}\t{rnd.choice(self.tag_pool)}\t{{}}\t{ts(ended or started or at)}\t{status}\t"
                    f'{modes[k]}\t{who}\tcontainer\t["python3.12","pytest"]\t{plan_steps}\t[]\t'
                    f"{NULL if started is None else ts(started)}\t{NULL if ended is None else ts(ended)}\t{duration}\t"
                    f"{'%.4f' % (rnd.random() * 0.5) if started else NULL}\t"
                    f"{rnd.randrange(100, 200_000) if started else NULL}\t"
                    f"{'%.1f' % (rnd.random() * 600) if started else NULL}\t"
                    f"{'Patched and tested.' if done else NULL}\t{decision_log if done else '[]'}\t"
                    f"{failure_category}\t{failure_message}\t{snapshot}\t{self.issue_ids[i]}\t"
                    f"{self.repo_ids[self.issue_repo[i]]}\tclient\n"
                )

        self.loader.copy(
            "cwom_run",
            "id created_at created_by tags meta updated_at status mode executor_actor executor_runtime "
            "executor_toolchain plan_steps plan_risk_notes started_at ended_at duration_s cost_usd cost_tokens "
            "cost_compute_s result_summary decision_log failure_category failure_message constraint_snapshot_id "
            "for_issue_id repo_id managed_by".split(),
            run_rows(),
        )
        self.loader.copy("cwom_runcontextpacket", ["role", "packet_id", "run_id"], iter(run_packets))
        self.loader.copy("cwom_rundoctrineref", ["role", "doctrine_ref_id", "run_id"], iter(run_doctrine))

        # Artifacts: 2N in all, only for started runs, skewed per run (many logs, a few large bundles).
        target = 2 * n
        per_run = rnd.choices([0, 1, 2, 3, 4, 6, 10], weights=[8, 25, 30, 18, 10, 6, 3], k=len(started_runs))
        total = sum(per_run)
        while total != target:
            k = rnd.randrange(len(per_run))
            if total < target:
                per_run[k] += 1
                total += 1
            elif per_run[k] > 0:
                per_run[k] -= 1
                total -= 1
        types = weighted(rnd, ARTIFACT_TYPE, target)
        verifications = weighted(rnd, VERIFY, target)
        checks_passed = js([{"name": "ci", "status": "passed", "evidence_uri": None}])

        def artifact_rows() -> Iterator[str]:
            a = 0
            for (rid, i, started, ended, _), count in zip(started_runs, per_run, strict=True):
                iid = self.issue_ids[i]
                for _ in range(count):
                    at = self._time_between(started, ended)
                    aid = ulid_at(at)
                    t = ts(at)
                    kind = types[a]
                    verification = verifications[a]
                    a += 1
                    who = rnd.choice(self.agent_json)
                    self.loader.index(aid, "Artifact", t, who)
                    digest = f"sha256:{rnd.getrandbits(256):064x}" if kind != "link" else NULL
                    yield (
                        f"{aid}\t{t}\t{who}\t{rnd.choice(self.tag_pool)}\t{{}}\t{t}\t{kind}\t{kind} of {rid}\t"
                        f"s3://cwom-artifacts/{rid}/{aid}\t{digest}\t{MEDIA.get(kind, NULL)}\t"
                        f"{rnd.randrange(100, 5_000_000)}\t{NULL}\t{verification}\t"
                        f"{checks_passed if verification == 'passed' else '[]'}\t\t{iid}\t{rid}\n"
                    )

        self.loader.copy(
            "cwom_artifact",
            "id created_at created_by tags meta updated_at type title uri digest media_type size_bytes preview "
            "verification_status verification_checks stored_name for_issue_id produced_by_id".split(),
            artifact_rows(),
        )

    def build(self) -> None:
        self.repos()
        self.doctrine()
        self.snapshots()
        self.issues()
        self.packets()
        self.runs_and_artifacts()


# --- database lifecycle ------------------------------------------------------------------------------------------
def database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def recreate_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate(url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdef0123456789"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "0",
    }
    # --skip-checks: the dataset only needs the schema, not every face of the service to be importable.
    subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "--skip-checks", "-v0"],
        check=True,
        env=env,
        cwd=ROOT,
    )


INDEX_QUERY = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename LIKE 'cwom\\_%'
  AND i.indexname NOT IN (SELECT conname FROM pg_constraint)
ORDER BY i.indexname
"""


def drop_plain_indexes(url: str) -> list[tuple[str, str]]:
    """Drop every index that no constraint owns (rebuilt after the load); returns their definitions."""
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = [(name, definition) for name, definition in conn.execute(INDEX_QUERY).fetchall()]
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return indexes


def derive_tag_index(url: str) -> int:
    """Fill ``cwom_issuetag`` from the loaded issues (its triggers were off during the load); returns rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        return conn.execute(PG_TAG_BACKFILL).rowcount


def rebuild_indexes(url: str, indexes: list[tuple[str, str]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        for _name, definition in indexes:
            conn.execute(definition)


CHECKS = {
    "run repo is its issue's repo": (
        "SELECT count(*) FROM cwom_run r JOIN cwom_issue i ON i.id = r.for_issue_id WHERE r.repo_id <> i.repo_id"
    ),
    "runs past planned have a sealed packet of their issue": (
        "SELECT count(*) FROM cwom_run r WHERE r.status <> 'planned' AND NOT EXISTS ("
        "SELECT 1 FROM cwom_runcontextpacket l JOIN cwom_contextpacket p ON p.id = l.packet_id "
        "WHERE l.run_id = r.id AND p.sealed AND p.for_issue_id = r.for_issue_id)"
    ),
    "run packets are for the run's issue": (
        "SELECT count(*) FROM cwom_runcontextpacket l JOIN cwom_run r ON r.id = l.run_id "
        "JOIN cwom_contextpacket p ON p.id = l.packet_id WHERE p.for_issue_id <> r.for_issue_id"
    ),
    "artifacts only for started runs, with the run's issue": (
        "SELECT count(*) FROM cwom_artifact a JOIN cwom_run r ON r.id = a.produced_by_id "
        "WHERE r.status IN ('planned', 'ready') OR r.started_at IS NULL OR a.for_issue_id <> r.for_issue_id"
    ),
    "terminal runs end after they start": (
        "SELECT count(*) FROM cwom_run WHERE status IN ('done','failed','canceled') "
        "AND (ended_at IS NULL OR ended_at < coalesce(started_at, created_at))"
    ),
    "every object is in the id index exactly once": (
        "SELECT (SELECT count(*) FROM cwom_objectindex) - ((SELECT count(*) FROM cwom_repo) + "
        "(SELECT count(*) FROM cwom_issue) + (SELECT count(*) FROM cwom_contextpacket) + "
        "(SELECT count(*) FROM cwom_constraintsnapshot) + (SELECT count(*) FROM cwom_doctrineref) + "
        "(SELECT count(*) FROM cwom_run) + (SELECT count(*) FROM cwom_artifact))"
    ),
    "dangling issue foreign keys": (
        "SELECT count(*) FROM cwom_issue i LEFT JOIN cwom_repo r ON r.id = i.repo_id "
        "LEFT JOIN cwom_issue p ON p.id = i.parent_id WHERE r.id IS NULL OR (i.parent_id IS NOT NULL AND p.id IS NULL)"
    ),
    "dangling artifact foreign keys": (
        "SELECT count(*) FROM cwom_artifact a LEFT JOIN cwom_run r ON r.id = a.produced_by_id WHERE r.id IS NULL"
    ),
    "the issue tag index holds each issue's tags, repo, status and created_at": (
        "SELECT (SELECT count(*) FROM cwom_issuetag g JOIN cwom_issue i ON i.id = g.issue_id "
        "WHERE g.repo_id <> i.repo_id OR g.status <> i.status OR g.created_at <> i.created_at "
        "OR NOT i.tags ? g.tag) + abs((SELECT count(*) FROM cwom_issuetag) - "
        "(SELECT count(*) FROM (SELECT DISTINCT i.id, t FROM cwom_issue i "
        "CROSS JOIN LATERAL jsonb_array_elements_text(i.tags) t) x))"
    ),
    "ids are ULIDs": ("SELECT count(*) FROM cwom_objectindex WHERE id !~ '^[0-7][0-9A-HJKMNP-TV-Z]{25}$'"),
}


def verify(url: str) -> dict[str, int]:
    """Each check counts violating rows: every count must be 0."""
    results = {}
    with psycopg.connect(url) as conn:
        conn.execute("SET work_mem = '256MB'")
        for name, query in CHECKS.items():
            results[name] = conn.execute(query).fetchone()[0]  # type: ignore[index]
    return results


def vacuum_analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("VACUUM (ANALYZE)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="10k")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-events", action="store_true", help="skip the one-create-event-per-object history")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--db", default=None, help="database to (re)create (default cwom_bench_<scale>)")
    args = parser.parse_args(argv)

    n = SCALES[args.scale]
    name = args.db or f"cwom_bench_{args.scale}"
    url = database_url(name)
    report: dict[str, Any] = {"scale": args.scale, "n": n, "database": name, "seed": args.seed, "phases": {}}
    t0 = time.perf_counter()
    print(f"== {name}: drop, create, migrate", flush=True)
    recreate_database(name)
    migrate(url)
    report["phases"]["create_and_migrate_s"] = round(time.perf_counter() - t0, 2)
    indexes = drop_plain_indexes(url)

    print(f"== load (scale {args.scale}: {n:,d} issues; triggers off via session_replication_role)", flush=True)
    t1 = time.perf_counter()
    counter = Counter()
    loader = Loader(url, counter, events=not args.no_events)
    try:
        Dataset(n, args.seed, loader).build()
        loader.finish()
        print("== derive the issue tag index", flush=True)
        counter.add("cwom_issuetag", derive_tag_index(url), 0.0)
    except BaseException:
        loader.abort()
        raise
    finally:
        load_s = time.perf_counter() - t1
        print(f"== rebuild {len(indexes)} indexes", flush=True)
        t2 = time.perf_counter()
        rebuild_indexes(url, indexes)
        index_s = time.perf_counter() - t2
    total_rows = sum(counter.rows.values())
    print("== VACUUM ANALYZE", flush=True)
    t3 = time.perf_counter()
    vacuum_analyze(url)
    vacuum_s = time.perf_counter() - t3
    report["phases"].update(
        load_s=round(load_s, 2), index_build_s=round(index_s, 2), vacuum_analyze_s=round(vacuum_s, 2)
    )
    report["rows"] = counter.rows
    report["total_rows"] = total_rows
    report["load_rows_per_s"] = round(total_rows / load_s)
    report["end_to_end_rows_per_s"] = round(total_rows / (time.perf_counter() - t0))
    report["total_s"] = round(time.perf_counter() - t0, 2)
    if not args.skip_verify:
        t4 = time.perf_counter()
        report["invariant_violations"] = verify(url)
        report["phases"]["verify_s"] = round(time.perf_counter() - t4, 2)
    with psycopg.connect(url) as conn:
        report["database_size"] = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]  # type: ignore[index]

    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-{args.db or args.scale}-generate.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    bad = {k: v for k, v in report.get("invariant_violations", {}).items() if v}
    if bad:
        print(f"INVARIANT VIOLATIONS: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
