"""Run the CWOM benchmark against one generated dataset (see bench/README.md).

    .venv/bin/python bench/generate.py --scale 10k     # once per scale
    .venv/bin/python bench/run.py --scale 10k          # writes bench/results/<date>-10k.json + <date>-summary.md

Parts (``--parts``, default all), each reported as figures or as ``{"skipped": "<reason>"}``:

  explain   EXPLAIN (ANALYZE, BUFFERS) of each seed query (ORM SQL), hot and typical parameters; Seq Scans flagged
  queries   SQL queries per request for every list endpoint at page_size 1/10/50/200, and for lineage (in-process)
  profile   a pyinstrument profile of POST /issues (in-process), written next to the results
  latency   p50/p95/p99 over HTTP of the seed queries, lineage and deep cursor pages (1 client, after warm-up)
  lists     the filtered lists' and lineage's requests/s with wrk (C, 2 threads, 4 connections), random parameters
  create    POST /issues, /runs, /artifacts, /enqueue throughput at 4 and 16 clients vs raw psycopg INSERTs
  c-clients POST /issues and /enqueue with wrk (C, 2 threads, 4 connections) vs pgbench's single-row INSERT (4 clients)
  enqueue   enqueue -> done latency and runs/s through Redis with the noop executor, 1 and 2 worker processes
  rss       peak RSS of the gunicorn workers and celery worker processes during the HTTP parts
  export    cwom_export objects/s and peak RSS on this dataset; cwom_import objects/s into an empty database
  peer      the same POST /issues and issues-list workload here and at --peer-url (any implementation of the spec)

The app is served as in production: gunicorn ``cwom_site.wsgi`` with 2*cores+1 sync workers, DEBUG=0, a
SECRET_KEY, ALLOWED_HOSTS=127.0.0.1,localhost, SECURE_SSL_REDIRECT=0, the per-principal throttle raised out
of the way. The load comes from this process over HTTP (aiohttp), only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from generate import SCALES, database_url, migrate, recreate_database  # noqa: E402

PARTS = ["explain", "queries", "profile", "latency", "lists", "create", "c-clients", "enqueue", "rss", "export", "peer"]
CORES = os.cpu_count() or 2
SECRET = "bench-only-secret-key-0123456789abcdef0123456789"  # noqa: S105 - a throwaway key for a local benchmark
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
TERMINAL = ("done", "failed", "canceled")
rng = random.Random(7)  # noqa: S311 - parameter sampling, not secrets


def app_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of every process of the service under test (production settings)."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "CWOM_THROTTLE_RATE": "10000000/min",
        "CELERY_BROKER_URL": BROKER,
        "LOG_LEVEL": "WARNING",
        "CWOM_VAR_DIR": str(ROOT / "var" / "bench"),
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50) * 1000, 2),
        "p95_ms": round(pct(values, 95) * 1000, 2),
        "p99_ms": round(pct(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2) if values else None,
    }


def skipped(reason: str) -> dict[str, str]:
    print(f"  skipped: {reason}", flush=True)
    return {"skipped": reason}


# --- in-process Django (query counts, EXPLAIN, profile, parameters) -----------------------------------------------
class InProcess:
    """Django set up in this process against the bench database."""

    def __init__(self, db_url: str) -> None:
        os.environ.update(app_env(db_url))
        import django

        django.setup()
        from django.db import connection

        self.connection = connection
        self.api_error: str | None = None
        try:
            if not routed("/api/v1/issues"):
                self.api_error = "/api/v1/issues is not routed yet"
        except Exception as error:  # noqa: BLE001 - any failure means "no API to measure"
            self.api_error = f"the API cannot be loaded ({type(error).__name__}: {str(error)[:160]})"

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def token(self) -> str:
        from cwom.models import ApiToken

        _, secret = ApiToken.issue(f"bench-{int(time.time() * 1000)}-{rng.randrange(1 << 30)}", can_write=True)
        return secret

    def client(self, token: str) -> Any:
        from django.test import Client

        return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")


def sample_parameters(app: InProcess, count: int = 200) -> dict[str, Any]:
    """Query parameters drawn like production traffic: from random rows, so hot repos and tags dominate."""
    p: dict[str, Any] = {}
    rows = app.sql(
        "SELECT repo_id, status, tags FROM cwom_issue TABLESAMPLE SYSTEM (1) "
        "WHERE jsonb_array_length(tags) > 0 LIMIT %s",
        [count * 3],
    )
    if len(rows) < count:
        rows = app.sql(
            "SELECT repo_id, status, tags FROM cwom_issue WHERE jsonb_array_length(tags) > 0 "
            "ORDER BY random() LIMIT %s",
            [count],
        )
    rng.shuffle(rows)
    p["issues"] = [(r, s, rng.choice(json.loads(t) if isinstance(t, str) else t)) for r, s, t in rows[:count]]
    rows = app.sql("SELECT for_issue_id, status FROM cwom_run TABLESAMPLE SYSTEM (1) LIMIT %s", [count * 3])
    rng.shuffle(rows)
    p["runs"] = rows[:count]
    rows = app.sql("SELECT produced_by_id, type FROM cwom_artifact TABLESAMPLE SYSTEM (1) LIMIT %s", [count * 3])
    rng.shuffle(rows)
    p["artifacts"] = rows[:count]
    p["lineage"] = [r for (r,) in app.sql("SELECT id FROM cwom_run TABLESAMPLE SYSTEM (1) LIMIT %s", [count])]
    # Worst cases: the hottest repo with its rarest tag, the issue with the most runs, the run with most artifacts.
    hot_repo = app.sql("SELECT repo_id FROM cwom_issue GROUP BY repo_id ORDER BY count(*) DESC LIMIT 1")[0][0]
    rare_tag = app.sql(
        "SELECT t FROM (SELECT jsonb_array_elements_text(tags) t FROM cwom_issue TABLESAMPLE SYSTEM (5)) x "
        "GROUP BY t ORDER BY count(*) ASC LIMIT 1"
    )
    common_tag = app.sql(
        "SELECT t FROM (SELECT jsonb_array_elements_text(tags) t FROM cwom_issue TABLESAMPLE SYSTEM (5)) x "
        "GROUP BY t ORDER BY count(*) DESC LIMIT 1"
    )
    p["hot_repo"] = hot_repo
    p["rare_tag"] = rare_tag[0][0] if rare_tag else "api"
    p["common_tag"] = common_tag[0][0] if common_tag else "api"
    p["hot_issue"] = app.sql("SELECT for_issue_id FROM cwom_run GROUP BY for_issue_id ORDER BY count(*) DESC LIMIT 1")[
        0
    ][0]
    p["hot_run"] = app.sql(
        "SELECT produced_by_id FROM cwom_artifact GROUP BY produced_by_id ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    p["small_run"] = app.sql(
        "SELECT r.id FROM cwom_run r WHERE r.status = 'done' AND EXISTS "
        "(SELECT 1 FROM cwom_artifact a WHERE a.produced_by_id = r.id) LIMIT 1"
    )[0][0]
    # Write targets: repos, issues with a sealed packet (runs), started runs (artifacts).
    p["repos"] = [r for (r,) in app.sql("SELECT id FROM cwom_repo ORDER BY random() LIMIT 50")]
    p["packet_issues"] = app.sql(
        "SELECT for_issue_id, id FROM cwom_contextpacket WHERE sealed ORDER BY random() LIMIT 500"
    )
    p["started_runs"] = [
        r
        for (r,) in app.sql(
            "SELECT id FROM cwom_run TABLESAMPLE SYSTEM (1) WHERE status IN ('running', 'done') LIMIT 500"
        )
    ]
    # Deep cursor positions: created_at of random rows (a page that starts anywhere in the table).
    p["deep"] = {
        kind: [
            str(t)
            for (t,) in app.sql(
                f"SELECT created_at FROM {table} TABLESAMPLE SYSTEM (1) LIMIT %s",  # noqa: S608 - fixed table names
                [count],
            )
        ]
        for kind, table in (("issues", "cwom_issue"), ("runs", "cwom_run"), ("artifacts", "cwom_artifact"))
    }
    return p


def drf_cursor(position: str) -> str:
    """A DRF cursor token for a page starting after ``position`` (the ordering's first field)."""
    return base64.b64encode(urlencode({"p": position}).encode("ascii")).decode("ascii")


# --- part: EXPLAIN ---------------------------------------------------------------------------------------------------
def api_queryset(kind: str, params: dict[str, Any], limit: int = 51) -> Any:
    """The queryset a list endpoint runs for ``params``: the API's own FilterSet and the list's order as that
    FilterSet serves it (a list of issues filtered by one tag is ordered by the tag row's copy of
    ``created_at``; see ``IssueFilterSet.ordering_for``)."""
    from cwom.api import filters
    from cwom.models import Artifact, Issue, Run

    model, filterset = {
        "issues": (Issue, filters.IssueFilterSet),
        "runs": (Run, filters.RunFilterSet),
        "artifacts": (Artifact, filters.ArtifactFilterSet),
    }[kind]
    fs = filterset({k: str(v) for k, v in params.items()}, queryset=model.objects.all())
    if not fs.is_valid():
        raise ValueError(f"bad benchmark parameters for {kind}: {fs.errors}")
    return fs.qs.order_by(*fs.ordering_for(("-created_at", "-id")))[:limit]


def deep_page(kind: str, position: Any) -> Any:
    from cwom.models import Artifact, Issue, Run

    model = {"issues": Issue, "runs": Run, "artifacts": Artifact}[kind]
    return model.objects.filter(created_at__lt=position).order_by("-created_at", "-id")[:51]


def seed_querysets(p: dict[str, Any]) -> dict[str, Any]:
    repo, status, tag = p["issues"][0]
    run_issue, run_status = p["runs"][0]
    artifact_run, artifact_type = p["artifacts"][0]
    return {
        "issues by repo+status+tag (typical)": api_queryset("issues", {"repo_id": repo, "status": status, "tag": tag}),
        "issues by repo+status+tag (hot repo, common tag)": api_queryset(
            "issues", {"repo_id": p["hot_repo"], "status": "done", "tag": p["common_tag"]}
        ),
        "issues by repo+status+tag (hot repo, rare tag)": api_queryset(
            "issues", {"repo_id": p["hot_repo"], "status": "done", "tag": p["rare_tag"]}
        ),
        "runs by issue+status (typical)": api_queryset("runs", {"issue_id": run_issue, "status": run_status}),
        "runs by issue+status (hot issue)": api_queryset("runs", {"issue_id": p["hot_issue"], "status": "done"}),
        "artifacts by run+type (typical)": api_queryset("artifacts", {"run_id": artifact_run, "type": artifact_type}),
        "artifacts by run+type (hot run)": api_queryset("artifacts", {"run_id": p["hot_run"], "type": "log"}),
        "deep page: issues (cursor position)": deep_page("issues", p["deep"]["issues"][0]),
        "deep page: runs (cursor position)": deep_page("runs", p["deep"]["runs"][0]),
        "deep page: artifacts (cursor position)": deep_page("artifacts", p["deep"]["artifacts"][0]),
    }


def walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from walk(child)


def part_db_time(app: InProcess, p: dict[str, Any], n: int = 200) -> dict[str, Any]:
    """Each seed query's own time in PostgreSQL (ORM SQL, sampled parameters, rows fetched), no HTTP, no serializer."""

    def issues() -> Any:
        repo, status, tag = rng.choice(p["issues"])
        return api_queryset("issues", {"repo_id": repo, "status": status, "tag": tag})

    def runs() -> Any:
        issue, status = rng.choice(p["runs"])
        return api_queryset("runs", {"issue_id": issue, "status": status})

    def artifacts() -> Any:
        run, kind = rng.choice(p["artifacts"])
        return api_queryset("artifacts", {"run_id": run, "type": kind})

    families: dict[str, Callable[[], Any]] = {
        "issues by repo+status+tag": issues,
        "runs by issue+status": runs,
        "artifacts by run+type": artifacts,
        "deep page: issues": lambda: deep_page("issues", rng.choice(p["deep"]["issues"])),
    }
    out = {}
    with app.connection.cursor() as cursor:
        for name, make in families.items():
            times = []
            for i in range(n + 20):
                query_sql, params = make().query.sql_with_params()
                started = time.perf_counter()
                cursor.execute(query_sql, params)
                cursor.fetchall()
                if i >= 20:
                    times.append(time.perf_counter() - started)
            out[name] = summary_ms(times)
            print(f"  db time {name:40s} p50 {out[name]['p50_ms']:6.2f}  p95 {out[name]['p95_ms']:6.2f} ms", flush=True)
    return out


def part_explain(app: InProcess, p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, queryset in seed_querysets(p).items():
        query_sql, params = queryset.query.sql_with_params()
        text = "\n".join(r[0] for r in app.sql(f"EXPLAIN (ANALYZE, BUFFERS) {query_sql}", params))
        doc = app.sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query_sql}", params)[0][0]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        nodes = list(walk(doc[0]["Plan"]))
        seq = sorted({n.get("Relation Name", "?") for n in nodes if n["Node Type"] == "Seq Scan"})
        out[name] = {
            "execution_ms": round(doc[0]["Execution Time"], 3),
            "planning_ms": round(doc[0]["Planning Time"], 3),
            "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
            "seq_scans": seq,
            "shared_buffers_hit_read": [
                doc[0]["Plan"].get("Shared Hit Blocks"),
                doc[0]["Plan"].get("Shared Read Blocks"),
            ],
            "plan": text,
        }
        flag = f"  SEQ SCAN on {seq}" if seq else ""
        print(f"  {name:50s} {out[name]['execution_ms']:9.2f} ms  {', '.join(out[name]['indexes'])}{flag}", flush=True)
    return out


# --- part: query counts --------------------------------------------------------------------------------------------
def list_endpoints() -> list[str]:
    """The list endpoints: the seven kinds' paths (from the API when it says) and events."""
    try:
        from cwom.api.views import KIND_PATHS

        return [*KIND_PATHS.values(), "events"]
    except ImportError:
        return ["repos", "issues", "context_packets", "constraint_snapshots", "doctrine_refs", "runs", "artifacts"]


def routed(path: str) -> bool:
    """Whether ``path`` reaches a real view (the API answers anything else with its catch-all 404)."""
    from django.urls import Resolver404, resolve

    try:
        return resolve(path).url_name not in (None, "not-found")
    except Resolver404:
        return False


def part_queries(app: InProcess, p: dict[str, Any], token: str) -> dict[str, Any]:
    if app.api_error:
        return skipped(app.api_error)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = app.client(token)
    client.get("/api/v1/repos")  # the token's first use of the run writes last_used_at: keep it out of the counts
    out: dict[str, Any] = {"list": {}, "lineage": {}}
    repo, status, tag = p["issues"][0]
    filtered = {
        "issues": {"repo_id": p["hot_repo"], "status": "done"},
        "runs": {"issue_id": p["hot_issue"]},
        "artifacts": {"run_id": p["hot_run"]},
    }
    for name in list_endpoints():
        path = f"/api/v1/{name}"
        if not routed(path):
            out["list"][name] = {"skipped": f"{path} is not routed"}
            continue
        for variant, params in (("unfiltered", {}), ("filtered", filtered.get(name))):
            if params is None:
                continue
            counts = {}
            for size in (1, 10, 50, 200):
                with CaptureQueriesContext(connection) as ctx:
                    response = client.get(path, {**params, "page_size": size})
                rows = len(response.json().get("results", [])) if response.status_code == 200 else None
                counts[size] = {"queries": len(ctx.captured_queries), "status": response.status_code, "rows": rows}
            distinct = {c["queries"] for c in counts.values()}
            out["list"][f"{name} ({variant})"] = {"by_page_size": counts, "constant": len(distinct) == 1}
            print(
                f"  {name:22s} {variant:10s} queries by page size: { {k: v['queries'] for k, v in counts.items()} }",
                flush=True,
            )
    for label, run_id in (("small run", p["small_run"]), ("run with most artifacts", p["hot_run"])):
        path = f"/api/v1/runs/{run_id}/lineage"
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        body = response.json() if response.status_code == 200 else {}
        out["lineage"][label] = {
            "queries": len(ctx.captured_queries),
            "status": response.status_code,
            "artifacts": len(body.get("artifacts", [])) if isinstance(body, dict) else None,
        }
    lineage_counts = {v["queries"] for v in out["lineage"].values()}
    out["lineage_constant"] = len(lineage_counts) == 1
    print(f"  lineage: {out['lineage']}", flush=True)
    return out


def part_profile(app: InProcess, p: dict[str, Any], token: str, stamp: str) -> dict[str, Any]:
    if app.api_error:
        return skipped(app.api_error)
    try:
        from pyinstrument import Profiler
    except ImportError:
        return skipped("pyinstrument is not installed (pip install -r bench/requirements.txt)")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = app.client(token)

    def post() -> Any:
        body = {"repo": rng.choice(p["repos"]), "title": "Profiled issue", "tags": ["bench", "perf"]}
        return client.post("/api/v1/issues", body, content_type="application/json")

    for _ in range(20):
        post()
    with CaptureQueriesContext(connection) as ctx:
        response = post()
    queries = [q["sql"][:160] for q in ctx.captured_queries]
    profiler = Profiler(interval=0.0005)
    n = 300
    started = time.perf_counter()
    profiler.start()
    for _ in range(n):
        post()
    profiler.stop()
    elapsed = time.perf_counter() - started
    path = RESULTS / f"{stamp}-profile-post-issues.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    result = {
        "status": response.status_code,
        "requests": n,
        "in_process_per_s": round(n / elapsed, 1),
        "ms_per_request": round(elapsed / n * 1000, 2),
        "sql_queries_per_post": len(queries),
        "queries": queries,
        "profile": str(path.relative_to(ROOT)),
    }
    print(f"  POST /issues in-process: {result['ms_per_request']} ms, {len(queries)} SQL queries", flush=True)
    return result


# --- processes -------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in kB, or (0, 0)."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class RssSampler:
    """Samples the RSS of the children of some parent processes, keeping the peak per role."""

    def __init__(self) -> None:
        self.roles: dict[str, int] = {}
        self.peak_kb: dict[str, int] = {}
        self.hwm_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, role: str, parent_pid: int) -> None:
        self.roles[role] = parent_pid

    def unwatch(self, role: str) -> None:
        self._sample()
        self.roles.pop(role, None)

    def _sample(self) -> None:
        for role, parent in list(self.roles.items()):
            for pid in children(parent):
                rss, hwm = rss_kb(pid)
                self.peak_kb[role] = max(self.peak_kb.get(role, 0), rss)
                self.hwm_kb[role] = max(self.hwm_kb.get(role, 0), hwm)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {
            role: {"peak_rss_mb": round(self.peak_kb[role] / 1024, 1), "vm_hwm_mb": round(self.hwm_kb[role] / 1024, 1)}
            for role in self.peak_kb
        }


class Server:
    """gunicorn serving cwom_site.wsgi on 127.0.0.1 with production settings."""

    def __init__(self, db_url: str, workers: int, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "gunicorn.log", "w")  # noqa: SIM115 - closed in stop()
        # Server time per request: gunicorn's access log with the request's X-Bench-Id and %(D)s (microseconds
        # from the request read to the response written), so latency figures come as server time too.
        self.access_log = log_dir / "gunicorn-access.log"
        self.access_log.unlink(missing_ok=True)
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "cwom_site.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--backlog",
                "256",
                "--timeout",
                "60",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                "%({x-bench-id}i)s %(D)s",
            ],
            env=app_env(db_url),
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers = workers

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                if len(children(self.proc.pid)) >= self.workers:
                    time.sleep(0.5)
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Worker:
    """A celery worker with ``concurrency`` prefork processes, on the bench Redis database."""

    def __init__(self, db_url: str, concurrency: int, log_dir: Path) -> None:
        self.log = open(log_dir / f"celery-{concurrency}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "cwom_site",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"bench{concurrency}-{os.getpid()}@%h",
            ],
            env=app_env(db_url),
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.concurrency = concurrency

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery exited with {self.proc.returncode}; see {self.log.name}")
            if len(children(self.proc.pid)) >= self.concurrency:
                time.sleep(1.0)
                return
            time.sleep(0.2)
        raise RuntimeError("celery worker did not start in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def flush_bench_broker() -> None:
    """Drop the tasks left in the benchmark broker's default queue (``celery``) — that key only, nothing else:
    the Redis database may be shared (BENCH_BROKER_URL picks another one)."""
    import redis

    redis.Redis.from_url(BROKER).delete("celery")


# --- HTTP load ---------------------------------------------------------------------------------------------------
async def sequential_latency(
    session: Any, base: str, make_path: Callable[[], str], n: int, warmup: int, tag: str = ""
) -> tuple[list[float], dict[int, int]]:
    statuses: dict[int, int] = {}
    times: list[float] = []
    for i in range(warmup + n):
        path = make_path()
        headers = {"X-Bench-Id": f"{tag}-{i - warmup}"} if tag and i >= warmup else {}
        started = time.perf_counter()
        async with session.get(base + path, headers=headers) as response:
            await response.read()
            status = response.status
        elapsed = time.perf_counter() - started
        if i >= warmup:
            times.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1
    return times, statuses


def server_times(access_log: Path) -> dict[str, float]:
    """X-Bench-Id -> server seconds, from the access log written with ``%({x-bench-id}i)s %(D)s``."""
    times: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in access_log.read_text().splitlines():
            request_id, _, micros = line.rpartition(" ")
            if request_id not in ("", "-") and micros.isdigit():
                times[request_id] = int(micros) / 1e6
    return times


def part_latency(base: str, token: str, p: dict[str, Any], reps: int, n: int, access_log: Path) -> dict[str, Any]:
    import aiohttp

    def issues() -> str:
        repo, status, tag = rng.choice(p["issues"])
        return "/api/v1/issues?" + urlencode({"repo_id": repo, "status": status, "tag": tag})

    def runs() -> str:
        issue, status = rng.choice(p["runs"])
        return "/api/v1/runs?" + urlencode({"issue_id": issue, "status": status})

    def artifacts() -> str:
        run, kind = rng.choice(p["artifacts"])
        return "/api/v1/artifacts?" + urlencode({"run_id": run, "type": kind})

    def lineage() -> str:
        return f"/api/v1/runs/{rng.choice(p['lineage'])}/lineage"

    def deep(kind: str) -> Callable[[], str]:
        return lambda: f"/api/v1/{kind}?" + urlencode({"cursor": drf_cursor(rng.choice(p["deep"][kind]))})

    def hot_rare() -> str:
        return "/api/v1/issues?" + urlencode({"repo_id": p["hot_repo"], "status": "done", "tag": p["rare_tag"]})

    cases = {
        "issues?repo_id&status&tag": issues,
        "runs?issue_id&status": runs,
        "artifacts?run_id&type": artifacts,
        "runs/{id}/lineage": lineage,
        "deep cursor page: issues": deep("issues"),
        "deep cursor page: runs": deep("runs"),
        "deep cursor page: artifacts": deep("artifacts"),
        "issues worst case: hot repo, done, rarest tag": hot_rare,
    }

    async def go() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        out: dict[str, Any] = {}
        async with aiohttp.ClientSession(headers=headers) as session:
            for name, make in cases.items():
                all_times: list[float] = []
                per_rep = []
                statuses: dict[int, int] = {}
                tags = []
                for rep in range(reps):
                    tags.append(f"{len(out)}.{rep}")
                    times, st = await sequential_latency(
                        session, base, make, n, warmup=30 if rep == 0 else 5, tag=tags[-1]
                    )
                    all_times += times
                    per_rep.append(round(pct(times, 95) * 1000, 2))
                    for k, v in st.items():
                        statuses[k] = statuses.get(k, 0) + v
                await asyncio.sleep(0.2)  # let gunicorn flush its access log
                logged = server_times(access_log)
                server = [t for key, t in logged.items() if key.rsplit("-", 1)[0] in tags]
                out[name] = {
                    **summary_ms(all_times),
                    "server": summary_ms(server),
                    "p95_ms_per_rep": per_rep,
                    "statuses": statuses,
                }
                print(
                    f"  {name:48s} p50 {out[name]['p50_ms']:7.2f}  p95 {out[name]['p95_ms']:7.2f}  "
                    f"p99 {out[name]['p99_ms']:7.2f} ms  (server p50 {out[name]['server']['p50_ms']:7.2f}  "
                    f"p95 {out[name]['server']['p95_ms']:7.2f})  {statuses}",
                    flush=True,
                )
        return out

    return asyncio.run(go())


async def closed_loop(
    clients: int, duration: float, action: Callable[[int], Awaitable[bool]]
) -> tuple[int, int, float, list[float]]:
    """``clients`` loops calling ``action`` for ``duration`` seconds: (ok, failed, seconds, latencies)."""
    ok = failed = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def loop(index: int) -> None:
        nonlocal ok, failed
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                success = await action(index)
            except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
                success = False
            latencies.append(time.perf_counter() - started)
            if success:
                ok += 1
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(clients)))
    return ok, failed, time.perf_counter() - started, latencies


def issue_body(p: dict[str, Any], i: int) -> dict[str, Any]:
    return {
        "repo": rng.choice(p["repos"]),
        "title": f"Bench issue {i}",
        "description": "Created by bench/run.py",
        "type": "bug",
        "priority": "P2",
        "status": "planned",
        "tags": rng.choice([["api"], ["api", "perf"], ["bench"]]),
        "assignees": [{"actor_kind": "agent", "actor_id": "bench-agent", "display": "Bench agent"}],
    }


def remove_raw_issues(db_url: str) -> None:
    """Take the raw INSERTs' rows out again (with their tag index rows and the 3-row variant's index rows and
    events), so the dataset stays the generated one. Guard triggers are off for it (events are append-only)."""
    import psycopg

    raw = "SELECT id FROM cwom_issue WHERE title = 'Raw issue' AND description = ''"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM cwom_event WHERE principal = 'token:raw'")
        conn.execute(f"DELETE FROM cwom_objectindex WHERE id IN ({raw})")  # noqa: S608 - fixed text
        conn.execute(f"DELETE FROM cwom_issuetag WHERE issue_id IN ({raw})")  # noqa: S608 - fixed text
        conn.execute("DELETE FROM cwom_issue WHERE title = 'Raw issue' AND description = ''")


def part_create(
    base: str, token: str, p: dict[str, Any], db_url: str, duration: float, reps: int, has_enqueue: bool
) -> dict[str, Any]:
    import aiohttp
    import psycopg

    counter = iter(range(10**9))

    def bodies() -> dict[str, Callable[[], dict[str, Any]]]:
        def run_body() -> dict[str, Any]:
            issue, packet = rng.choice(p["packet_issues"])
            return {"for_issue": issue, "status": "ready", "mode": "agent", "inputs": {"context_packets": [packet]}}

        def artifact_body() -> dict[str, Any]:
            i = next(counter)
            return {
                "produced_by": rng.choice(p["started_runs"]),
                "type": "log",
                "title": f"Bench log {i}",
                "uri": f"s3://bench/{i}.log",
                "media_type": "text/plain",
                "size_bytes": 1234,
            }

        def enqueue_body() -> dict[str, Any]:
            issue, _ = rng.choice(p["packet_issues"])
            return {"issue": issue, "context": {"summary": "Bench enqueue"}, "executor": {"name": "noop"}}

        out = {
            "issues": lambda: issue_body(p, next(counter)),
            "runs": run_body,
            "artifacts": artifact_body,
        }
        if has_enqueue:
            out["enqueue"] = enqueue_body
        return out

    async def http(path: str, make: Callable[[], dict[str, Any]], clients: int) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=clients)
        errors: dict[int, int] = {}
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

            async def action(_: int) -> bool:
                async with session.post(base + path, data=json.dumps(make())) as response:
                    await response.read()
                    if response.status not in (200, 201, 202):
                        errors[response.status] = errors.get(response.status, 0) + 1
                        if len(errors) == 1 and errors[response.status] == 1:
                            print(f"    {path}: HTTP {response.status} {(await response.text())[:300]}", flush=True)
                    return response.status in (200, 201, 202)

            await closed_loop(clients, min(2.0, duration / 2), action)  # warm-up
            rates, lat = [], []
            for _ in range(reps):
                ok, failed, seconds, latencies = await closed_loop(clients, duration, action)
                rates.append(ok / seconds)
                lat += latencies
        return {
            "per_s": round(statistics.median(rates), 1),
            "per_s_reps": [round(r, 1) for r in rates],
            **summary_ms(lat),
            "errors": errors,
        }

    async def raw(clients: int, statements: int) -> dict[str, Any]:
        """Equivalent single-row INSERTs through psycopg, autocommit (one transaction each)."""
        from generate import ts, ulid_at

        conns = [await psycopg.AsyncConnection.connect(db_url, autocommit=True) for _ in range(clients)]
        tags = json.dumps(["api", "perf"])
        assignees = json.dumps([{"actor_kind": "agent", "actor_id": "bench-agent", "display": "Bench agent"}])

        async def action(index: int) -> bool:
            conn = conns[index]
            now_ms = int(time.time() * 1000)
            iid = ulid_at(now_ms)
            at = ts(now_ms)
            repo = rng.choice(p["repos"])
            if statements == 1:
                await conn.execute(
                    "INSERT INTO cwom_issue (id, created_at, updated_at, created_by, tags, meta, title, description, "
                    "type, priority, status, assignees, watchers, acceptance_criteria, repo_id) VALUES "
                    "(%s, %s, %s, NULL, %s, '{}', 'Raw issue', '', 'bug', 'P2', 'planned', %s, '[]', '[]', %s)",
                    (iid, at, at, tags, assignees, repo),
                )
            else:
                async with conn.transaction():
                    await conn.execute("INSERT INTO cwom_objectindex (id, kind) VALUES (%s, 'Issue')", (iid,))
                    await conn.execute(
                        "INSERT INTO cwom_issue (id, created_at, updated_at, created_by, tags, meta, title, "
                        "description, type, priority, status, assignees, watchers, acceptance_criteria, repo_id) "
                        "VALUES (%s, %s, %s, NULL, %s, '{}', 'Raw issue', '', 'bug', 'P2', 'planned', %s, '[]', "
                        "'[]', %s)",
                        (iid, at, at, tags, assignees, repo),
                    )
                    await conn.execute(
                        "INSERT INTO cwom_event (object_id, object_kind, action, changes, principal, actor, at) "
                        "VALUES (%s, 'Issue', 'create', '{}', 'token:raw', NULL, %s)",
                        (iid, at),
                    )
            return True

        try:
            await closed_loop(clients, 1.0, action)
            rates = []
            for _ in range(reps):
                ok, _failed, seconds, _ = await closed_loop(clients, duration, action)
                rates.append(ok / seconds)
        finally:
            for conn in conns:
                await conn.close()
        return {"per_s": round(statistics.median(rates), 1), "per_s_reps": [round(r, 1) for r in rates]}

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        makers = bodies()
        for clients in (4, 16):
            row: dict[str, Any] = {}
            row["raw_insert_1_row"] = await raw(clients, 1)
            row["raw_insert_3_rows_1_tx"] = await raw(clients, 3)
            for name, make in makers.items():
                row[f"POST /{name}"] = await http(f"/api/v1/{name}", make, clients)
            raw_rate = row["raw_insert_1_row"]["per_s"]
            for name in makers:
                api = row[f"POST /{name}"]
                api["ratio_to_raw_insert"] = round(api["per_s"] / raw_rate, 4) if raw_rate else None
            if not has_enqueue:
                row["POST /enqueue"] = {"skipped": "/api/v1/enqueue is not routed"}
            out[f"{clients} clients"] = row
            summary = {k: v.get("per_s") for k, v in row.items()}
            print(f"  {clients:2d} clients: {summary}", flush=True)
        return out

    try:
        return asyncio.run(go())
    finally:
        remove_raw_issues(db_url)


# --- part: c-clients ----------------------------------------------------------------------------------------------
C_CLIENTS = 4
# pgbench's transaction: the single-row INSERT of the raw figure above, its id a fresh 26-character ULID-shaped key
# (a leading 0 and 25 upper-case hex digits: all Crockford base32).
PGBENCH_INSERT = (
    "INSERT INTO cwom_issue (id, created_at, updated_at, created_by, tags, meta, title, description, type, priority, "
    "status, assignees, watchers, acceptance_criteria, repo_id) VALUES ('0' || upper(substr(md5(random()::text || "
    ":client_id), 1, 25)), now(), now(), NULL, '[\"api\", \"perf\"]', '{}', 'Raw issue', '', 'bug', 'P2', 'planned', "
    '\'[{"actor_kind": "agent", "actor_id": "bench-agent", "display": "Bench agent"}]\', \'[]\', \'[]\', '
    ":repo);"
)
WRK_SCRIPT = """-- Generated by bench/run.py: sends the requests below in turn, each wrk thread from its own offset.
local paths = {%(paths)s}
local bodies = {%(bodies)s}
local threads = 0
local i = nil
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end
request = function()
  i = ((i or offset or 0) %% #paths) + 1
  return wrk.format(nil, paths[i], nil, bodies[i])
end
"""


def c_tool(name: str) -> str | None:
    """The path of a Debian tool the c-clients part needs (``make -C bench deps`` installs them)."""
    found = shutil.which(name)
    if found is None and name == "pgbench":  # Debian keeps it beside the server binaries
        found = next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None)
    return found


def run_wrk(
    wrk: str, base: str, token: str, method: str, paths: list[str], bodies: list[str], duration: float
) -> dict[str, Any]:
    """``wrk`` (2 threads, ``C_CLIENTS`` connections) sending ``method`` to ``paths[i]`` with ``bodies[i]`` (none
    for a GET), in turn, for ``duration`` s."""

    def lua(texts: list[str]) -> str:
        return ", ".join(f"[==[{text}]==]" for text in texts)

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"paths": lua(paths), "bodies": lua(bodies), "token": token, "method": method})
    try:
        argv = [wrk, "-t2", f"-c{C_CLIENTS}", "--timeout", "10s", "--latency", "-s", script.name, base]
        for _ in range(15):  # warm-up: until every connection is answered (a cold worker's first request is slow)
            warm = subprocess.run([*argv, "-d2s"], capture_output=True, text=True, timeout=60, check=True)  # noqa: S603
            if wrk_figures(warm.stdout)["per_s"]:
                break
        measured = [*argv, f"-d{max(1, round(duration))}s"]
        out = subprocess.run(measured, capture_output=True, text=True, timeout=duration + 60, check=True).stdout  # noqa: S603
    finally:
        os.unlink(script.name)
    figures = wrk_figures(out)
    if figures["non_2xx"]:
        print(f"    wrk {method} {paths[0]}: {figures['non_2xx']} answers were not 2xx", flush=True)
    return figures


def post_wrk(wrk: str, base: str, token: str, path: str, bodies: list[str], duration: float) -> dict[str, Any]:
    return run_wrk(wrk, base, token, "POST", [path] * len(bodies), bodies, duration)


def wrk_figures(out: str) -> dict[str, Any]:
    """Requests/s, non-2xx answers and the p50/p99 latency from wrk's report."""
    figures: dict[str, Any] = {"per_s": None, "non_2xx": 0}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["per_s"] = float(words[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            figures["non_2xx"] = int(words[-1])
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            figures[f"p{words[0][:-1]}"] = words[1]
    return figures


def run_pgbench(pgbench: str, db_url: str, repo: str, duration: float) -> dict[str, Any]:
    """pgbench, ``C_CLIENTS`` clients on 2 threads, each transaction :data:`PGBENCH_INSERT` (an issue of ``repo``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_INSERT + "\n")
    try:
        argv = [pgbench, "-n", "-c", str(C_CLIENTS), "-j", "2", "-T", str(max(1, round(duration))), "-f", script.name]
        argv += ["-D", f"repo='{repo}'", db_url]  # substituted as text: quoted
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True).stdout  # noqa: S603
    finally:
        os.unlink(script.name)
    tps = [line for line in out.splitlines() if line.startswith("tps =")]
    failed = [line for line in out.splitlines() if "failed" in line]
    return {"per_s": float(tps[-1].split()[2]) if tps else None, "failed": failed[:1]}


def part_c_clients(
    base: str, token: str, p: dict[str, Any], db_url: str, duration: float, reps: int, has_enqueue: bool
) -> dict[str, Any]:
    """POST /issues (and /enqueue) with wrk against the bench's gunicorn, and pgbench's single-row INSERT, in turn,
    ``reps`` times each: C clients on both sides, so the ratio measures the service, not a Python client."""
    wrk, pgbench = c_tool("wrk"), c_tool("pgbench")
    if wrk is None or pgbench is None:
        return skipped("wrk and pgbench are needed (make -C bench deps installs them)")
    issues = [json.dumps(issue_body(p, i)) for i in range(200)]
    enqueues = [
        json.dumps({"issue": issue, "context": {"summary": "Bench enqueue"}, "executor": {"name": "noop"}})
        for issue, _packet in p["packet_issues"][:200]
    ]
    rows: dict[str, list[dict[str, Any]]] = {"pgbench_insert_1_row": [], "wrk POST /issues": []}
    if has_enqueue:
        rows["wrk POST /enqueue"] = []
    try:
        for _ in range(reps):
            rows["pgbench_insert_1_row"].append(run_pgbench(pgbench, db_url, p["repos"][0], duration))
            rows["wrk POST /issues"].append(post_wrk(wrk, base, token, "/api/v1/issues", issues, duration))
            if has_enqueue:
                rows["wrk POST /enqueue"].append(post_wrk(wrk, base, token, "/api/v1/enqueue", enqueues, duration))
    finally:
        remove_raw_issues(db_url)
    out: dict[str, Any] = {"clients": C_CLIENTS, "wrk_threads": 2}
    for name, reps_of in rows.items():
        rates = [r["per_s"] for r in reps_of if r["per_s"] is not None]
        out[name] = {"per_s": round(statistics.median(rates), 1) if rates else None, "reps": reps_of}
    raw = out["pgbench_insert_1_row"]["per_s"]
    api = out["wrk POST /issues"]["per_s"]
    out["ratio_issues_to_pgbench"] = round(api / raw, 4) if raw and api else None
    print(f"  {C_CLIENTS} clients: { {k: v['per_s'] for k, v in out.items() if isinstance(v, dict)} }", flush=True)
    print(f"  POST /issues (wrk) / INSERT (pgbench) = {out['ratio_issues_to_pgbench']}", flush=True)
    return out


# --- part: lists --------------------------------------------------------------------------------------------------
LISTS_TARGET = 400.0  # requests/s at 4 clients, issue 18


def part_lists(base: str, token: str, p: dict[str, Any], duration: float, reps: int) -> dict[str, Any]:
    """The filtered lists' throughput with a C client: wrk (2 threads, ``C_CLIENTS`` connections) cycling through
    1,000 parameter sets drawn as the latency part draws them (hot repos and common tags dominate), ``reps``
    repetitions of ``duration`` s per list, against the bench's gunicorn (its production worker count)."""
    wrk = c_tool("wrk")
    if wrk is None:
        return skipped("wrk is needed (make -C bench deps installs it)")
    draws = 1000
    cases = {
        "issues?repo_id&status&tag": [
            "/api/v1/issues?" + urlencode({"repo_id": repo, "status": status, "tag": tag})
            for repo, status, tag in rng.choices(p["issues"], k=draws)
        ],
        "runs?issue_id&status": [
            "/api/v1/runs?" + urlencode({"issue_id": issue, "status": status})
            for issue, status in rng.choices(p["runs"], k=draws)
        ],
        "artifacts?run_id&type": [
            "/api/v1/artifacts?" + urlencode({"run_id": run, "type": kind})
            for run, kind in rng.choices(p["artifacts"], k=draws)
        ],
        "runs/{id}/lineage": [f"/api/v1/runs/{run}/lineage" for run in rng.choices(p["lineage"], k=draws)],
    }
    out: dict[str, Any] = {
        "clients": C_CLIENTS,
        "wrk_threads": 2,
        "parameter_sets": draws,
        "target_per_s": LISTS_TARGET,
    }
    for name, paths in cases.items():
        measured = [run_wrk(wrk, base, token, "GET", paths, [], duration) for _ in range(reps)]
        rates = [m["per_s"] for m in measured if m["per_s"] is not None]
        rate = round(statistics.median(rates), 1) if rates else None
        out[name] = {"per_s": rate, "reps": measured, "met": rate is not None and rate >= LISTS_TARGET}
        print(f"  {name:32s} {rate} req/s  {[m['per_s'] for m in measured]}", flush=True)
    return out


# --- part: enqueue -> done ---------------------------------------------------------------------------------------
def part_enqueue(
    base: str, token: str, p: dict[str, Any], db_url: str, log_dir: Path, sampler: RssSampler, burst: int
) -> dict[str, Any]:
    import aiohttp
    import psycopg

    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def body() -> str:
        issue, _ = rng.choice(p["packet_issues"])
        return json.dumps({"issue": issue, "context": {"summary": "Bench enqueue"}, "executor": {"name": "noop"}})

    def run_id_of(doc: Any) -> str | None:
        if isinstance(doc, dict):
            run = doc.get("run")
            if isinstance(run, dict):
                return run.get("id")
            if isinstance(run, str):
                return run
            if doc.get("kind") == "Run":
                return doc.get("id")
        return None

    async def wait_done(conn: Any, ids: list[str], timeout: float) -> dict[str, tuple[str, float]]:
        deadline = time.time() + timeout
        found: dict[str, tuple[str, float]] = {}
        while time.time() < deadline:
            rows = await (
                await conn.execute(
                    "SELECT id, status, extract(epoch from ended_at) FROM cwom_run WHERE id = ANY(%s) "
                    "AND status IN ('done', 'failed', 'canceled')",
                    (ids,),
                )
            ).fetchall()
            found = {r[0]: (r[1], float(r[2])) for r in rows}
            if len(found) == len(ids):
                break
            await asyncio.sleep(0.005)
        return found

    async def go(concurrency: int) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn,
        ):

            async def enqueue() -> tuple[str | None, float]:
                sent = time.time()
                async with session.post(base + "/api/v1/enqueue", data=body()) as response:
                    doc = await response.json(content_type=None)
                    if response.status not in (200, 201, 202):
                        raise RuntimeError(f"enqueue answered {response.status}: {str(doc)[:300]}")
                return run_id_of(doc), sent

            # Latency: one at a time, each waited for.
            latencies: list[float] = []
            statuses: dict[str, int] = {}
            for i in range(5 + 40):
                run_id, sent = await enqueue()
                if run_id is None:
                    raise RuntimeError("cannot find the run id in the enqueue response")
                done = await wait_done(conn, [run_id], 20)
                if run_id not in done:
                    row = await (await conn.execute("SELECT status FROM cwom_run WHERE id = %s", (run_id,))).fetchone()
                    raise RuntimeError(
                        f"run {run_id} did not finish within 20 s (still {row[0] if row else '?'}); "
                        f"see {log_dir / f'celery-{concurrency}.log'}"
                    )
                if i >= 5:
                    latencies.append(done[run_id][1] - sent)
                    statuses[done[run_id][0]] = statuses.get(done[run_id][0], 0) + 1
            return {"enqueue_to_done": {**summary_ms(latencies), "statuses": statuses}}

    async def prefill(count: int) -> list[str]:
        """Enqueue ``count`` runs from 8 clients while no worker is running: the queue holds them all."""
        sent_ids: list[str] = []
        async with aiohttp.ClientSession(headers=headers) as session:

            async def client(k: int) -> None:
                for _ in range(k):
                    async with session.post(base + "/api/v1/enqueue", data=body()) as response:
                        run_id = run_id_of(await response.json(content_type=None))
                    if run_id:
                        sent_ids.append(run_id)

            await asyncio.gather(*(client(count // 8) for _ in range(8)))
        return sent_ids

    async def drain(ids: list[str], concurrency: int) -> dict[str, Any]:
        """Worker throughput on a full queue: runs / (last ended_at - first started_at), from the database."""
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            done = await wait_done(conn, ids, 180)
            row = await (
                await conn.execute(
                    "SELECT extract(epoch from min(started_at)), extract(epoch from max(ended_at)) "
                    "FROM cwom_run WHERE id = ANY(%s)",
                    (ids,),
                )
            ).fetchone()
        statuses: dict[str, int] = {}
        for status, _ in done.values():
            statuses[status] = statuses.get(status, 0) + 1
        span = float(row[1]) - float(row[0]) if row and row[0] is not None and row[1] is not None else 0.0
        return {
            "runs": len(ids),
            "finished": len(done),
            "statuses": statuses,
            "drain_s": round(span, 2),
            "runs_per_s": round(len(done) / span, 1) if span else None,
            "runs_per_s_per_process": round(len(done) / span / concurrency, 1) if span else None,
        }

    for concurrency in (1, 2):
        flush_bench_broker()
        queued = asyncio.run(prefill(burst))
        worker = Worker(db_url, concurrency, log_dir)
        try:
            worker.wait_ready()
            sampler.watch("celery worker process", worker.proc.pid)
            burst_result = asyncio.run(drain(queued, concurrency))
            out[f"{concurrency} worker process(es)"] = {**asyncio.run(go(concurrency)), "burst": burst_result}
        except Exception as error:  # noqa: BLE001 - report and go on with the other parts
            out[f"{concurrency} worker process(es)"] = {"error": f"{type(error).__name__}: {error}"[:500]}
            print(f"  error: {error}", flush=True)
        finally:
            sampler.unwatch("celery worker process")
            worker.stop()
        r = out[f"{concurrency} worker process(es)"]
        if "error" in r:
            continue
        # Celery's own ceiling: a task that does nothing, the same burst, settings, broker and processes.
        from worker_burst import bare_ceiling

        r["bare_task"] = bare_ceiling(db_url, burst, concurrency, log_dir)
        r["burst"]["share_of_bare"] = round(r["burst"]["runs_per_s"] / r["bare_task"]["tasks_per_s"], 3)
        print(
            f"  {concurrency} worker(s): enqueue->done p50 {r['enqueue_to_done']['p50_ms']} ms, "
            f"p95 {r['enqueue_to_done']['p95_ms']} ms; burst {r['burst']['runs_per_s']} runs/s "
            f"({r['burst']['share_of_bare']:.0%} of a bare task's {r['bare_task']['tasks_per_s']}/s)",
            flush=True,
        )
    flush_bench_broker()
    return out


# --- part: export / import ---------------------------------------------------------------------------------------
def run_measured(
    argv: list[str],
    env: dict[str, str],
    timeout: float,
    stdout: Any = None,
    on_timeout: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run a command, sampling its RSS; returns seconds, exit code, peak RSS (kB) and RSS over time.

    At ``timeout`` seconds ``on_timeout`` runs (while the command still runs), then the command is interrupted.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    samples: list[tuple[float, int]] = []
    timed_out = False
    while proc.poll() is None:
        samples.append((round(time.perf_counter() - started, 1), rss_kb(proc.pid)[0]))
        if time.perf_counter() - started > timeout:
            timed_out = True
            if on_timeout is not None:
                on_timeout()
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            break
        time.sleep(0.5)
    _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
    stderr = proc.stderr.read().decode(errors="replace")[-1500:] if proc.stderr else ""
    peak = max((s[1] for s in samples), default=0)
    if usage is not None:
        peak = max(peak, usage.ru_maxrss)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "returncode": proc.returncode if proc.returncode is not None else os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_mb_over_time": [(t, round(kb / 1024, 1)) for t, kb in samples[:: max(1, len(samples) // 12)]],
        "stderr_tail": stderr,
    }


def part_export(db_url: str, scale: str, timeout: float, import_lines: int) -> dict[str, Any]:
    manage = [sys.executable, str(ROOT / "manage.py")]
    env = app_env(db_url)
    probe = subprocess.run([*manage, "help", "cwom_export"], env=env, cwd=ROOT, capture_output=True)  # noqa: S603
    if probe.returncode != 0:
        return skipped(f"manage.py cwom_export is not available: {probe.stderr.decode()[-200:]}")
    out: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="cwom-bench-export-"))
    try:
        target = tmp / f"export-{scale}.jsonl"
        partial = target.with_name(target.name + ".partial")
        kept = tmp / "kept.jsonl"
        seen: dict[str, float] = {}

        def keep_partial() -> None:
            # The command deletes its .partial file when interrupted: keep what it wrote so far.
            seen["at"] = time.perf_counter()
            if partial.exists():
                shutil.copyfile(partial, kept)

        started = time.perf_counter()
        result = run_measured([*manage, "cwom_export", "--output", str(target)], env, timeout, on_timeout=keep_partial)
        written = target if target.exists() else kept
        lines = 0
        if written.exists():
            with written.open("rb") as f:
                lines = sum(1 for _ in f)
        elapsed = seen.get("at", started + result["seconds"]) - started
        result["lines"] = lines
        result["objects_per_s"] = round(lines / elapsed) if elapsed else None
        result["complete"] = target.exists()
        out["export"] = result
        print(
            f"  export: {lines:,d} lines in {result['seconds']} s = {result['objects_per_s']}/s, "
            f"peak RSS {result['peak_rss_mb']} MB{' (timed out)' if result['timed_out'] else ''}",
            flush=True,
        )
        probe = subprocess.run([*manage, "help", "cwom_import"], env=env, cwd=ROOT, capture_output=True)  # noqa: S603
        if probe.returncode != 0 or not lines:
            out["import"] = skipped("manage.py cwom_import is not available or nothing was exported")
            return out
        # Import into an empty database: the first ``import_lines`` lines (the file is in dependency order,
        # so a prefix is a consistent dataset), ended with the trailer that counts them: a whole file.
        part = tmp / "import.jsonl"
        kinds: Counter[str] = Counter()
        with written.open("rb") as src, part.open("wb") as dst:
            for i, line in enumerate(src):
                try:
                    kind = json.loads(line)["kind"] if i < import_lines else None
                except ValueError:  # the cut last line of an export stopped by --export-timeout
                    kind = None
                if kind in (None, "CwomExportEnd"):
                    break
                if i:
                    kinds[kind] += 1
                dst.write(line)
            dst.write(json.dumps({"kind": "CwomExportEnd", "counts": dict(sorted(kinds.items()))}).encode() + b"\n")
        name = db_url.rsplit("/", 1)[1] + "_import"
        recreate_database(name)
        import_url = database_url(name)
        migrate(import_url)
        count = min(lines, import_lines)
        result = run_measured([*manage, "cwom_import", str(part)], app_env(import_url), timeout)
        if result["timed_out"] or result["returncode"] != 0:
            # Count what arrived: every line is one object, link or event row.
            import psycopg

            with psycopg.connect(import_url) as conn:
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'cwom\\_%' AND tablename NOT IN "
                        "('cwom_objectindex', 'cwom_apitoken', 'cwom_idempotencyrecord')"
                    ).fetchall()
                ]
                count = sum(
                    conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - catalog names
                    for t in tables
                )
        result["lines"] = count
        result["objects_per_s"] = round(count / result["seconds"]) if result["seconds"] else None
        out["import"] = result
        print(
            f"  import: {count:,d} lines in {result['seconds']} s = {result['objects_per_s']}/s, "
            f"peak RSS {result['peak_rss_mb']} MB, exit {result['returncode']}",
            flush=True,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- part: peer (the same workload against another implementation of the spec) -----------------------------------
def peer_headers(token: str | None, headers: list[str]) -> dict[str, str]:
    """``--peer-token`` as a Bearer credential, plus each ``--peer-header "Name: value"``."""
    out = {"Authorization": f"Bearer {token}"} if token else {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"--peer-header wants 'Name: value', got {header!r}")
        out[name.strip()] = value.strip()
    return out


def part_peer(
    ours: dict[str, Any], peer: dict[str, Any], p: dict[str, Any], duration: float, reps: int
) -> dict[str, Any]:
    """POST /issues and GET /issues?repo_id&status&tag&page_size=50, 4 clients each (closed loop), on two targets.

    A target is ``{"base": ".../api/v1", "headers": {...}, "repo": <repo id>}``. The repetitions alternate
    between the targets so that both see the same machine load; the list reads the issues the create loop
    has just written (status ``planned``, tag ``peer``), so both sides return pages of the same rows.
    """
    import aiohttp

    counter = iter(range(10**9))
    clients = 4

    def create(target: dict[str, Any]) -> tuple[str, str, Callable[[], str] | None]:
        def body() -> str:
            return json.dumps({**issue_body(p, next(counter)), "repo": target["repo"], "tags": ["bench", "peer"]})

        return "POST", "/issues", body

    def listing(target: dict[str, Any]) -> tuple[str, str, Callable[[], str] | None]:
        query = urlencode({"repo_id": target["repo"], "status": "planned", "tag": "peer", "page_size": 50})
        return "GET", f"/issues?{query}", None

    async def measure(target: dict[str, Any], workload: Callable[..., Any], seconds: float) -> dict[str, Any]:
        method, path, body = workload(target)
        headers = {**target["headers"], "Content-Type": "application/json"}
        errors: dict[int, int] = {}
        seen: dict[str, int] = {}  # a list page's row count, to show both sides return the same page
        async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=clients)) as session:

            async def action(_: int) -> bool:
                data = body() if body else None
                async with session.request(method, target["base"] + path, data=data) as response:
                    content = await response.read()
                    if body is None and response.status == 200 and "rows" not in seen:
                        seen["rows"] = len(json.loads(content).get("results", []))
                    if response.status not in (200, 201):
                        errors[response.status] = errors.get(response.status, 0) + 1
                        if sum(errors.values()) == 1:
                            print(f"    {target['base']}{path}: HTTP {response.status} {(await response.text())[:300]}")
                    return response.status in (200, 201)

            ok, _failed, elapsed, latencies = await closed_loop(clients, seconds, action)
        return {"per_s": ok / elapsed, "latencies": latencies, "errors": errors, **seen}

    async def go() -> dict[str, Any]:
        targets = {"this service": ours, "peer": peer}
        out: dict[str, Any] = {}
        for label, workload in (("POST /issues", create), ("GET /issues?repo_id&status&tag&page_size=50", listing)):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for target in targets.values():
                await measure(target, workload, min(2.0, duration / 2))  # warm-up
            for _ in range(reps):
                for name, target in targets.items():
                    runs[name].append(await measure(target, workload, duration))
            row: dict[str, Any] = {}
            for name, measured in runs.items():
                errors: Counter[int] = Counter()
                for m in measured:
                    errors.update(m["errors"])
                row[name] = {
                    "per_s": round(statistics.median(m["per_s"] for m in measured), 1),
                    "per_s_reps": [round(m["per_s"], 1) for m in measured],
                    **summary_ms([t for m in measured for t in m["latencies"]]),
                    "errors": dict(errors),
                }
                if "rows" in measured[-1]:
                    row[name]["rows_per_page"] = measured[-1]["rows"]
            peer_rate = row["peer"]["per_s"]
            row["ratio_this_to_peer"] = round(row["this service"]["per_s"] / peer_rate, 2) if peer_rate else None
            out[label] = row
            print(
                f"  {label:48s} this service {row['this service']['per_s']:8.1f}/s  peer {peer_rate:8.1f}/s  "
                f"ratio {row['ratio_this_to_peer']}",
                flush=True,
            )
        return out

    return {"clients": clients, "peer_base": peer["base"], "repo_here": ours["repo"], **asyncio.run(go())}


# --- summary -----------------------------------------------------------------------------------------------------
def latest_results(date: str, tag: str = "") -> dict[str, dict[str, Any]]:
    found = {}
    for scale in SCALES:
        path = RESULTS / f"{date}-{scale}{tag}.json"
        if path.exists():
            found[scale] = json.loads(path.read_text())
    return found


def write_summary(date: str, tag: str = "") -> Path:
    results = latest_results(date, tag)
    lines = [f"# CWOM benchmark summary, {date}", "", "Generated by `bench/run.py`; raw figures in the JSON files.", ""]
    names: list[str] = []
    for r in results.values():
        for name in r.get("latency", {}):
            if name not in names and isinstance(r["latency"][name], dict):
                names.append(name)
    lines += ["## Seed query latency over HTTP (1 client), ms", ""]
    lines += _latency_table(results, names, lambda v: v)
    lines += ["", "## The same requests, server time (gunicorn's request time), ms", ""]
    lines += _latency_table(results, names, lambda v: v.get("server"))
    lines += ["", "## Seed query time in PostgreSQL (no HTTP, no serializer), ms", ""]
    lines += ["| query | " + " | ".join(f"{s} p50 / p95" for s in results) + " | p95 1M/10k |"]
    lines += ["|---|" + "---|" * (len(results) + 1)]
    db_names: list[str] = []
    for r in results.values():
        db_names += [n for n in r.get("db_time", {}) if n not in db_names]
    for name in db_names:
        cells = []
        for r in results.values():
            v = r.get("db_time", {}).get(name)
            cells.append(f"{v['p50_ms']} / {v['p95_ms']}" if v else "-")
        small, big = results.get("10k", {}).get("db_time", {}), results.get("1m", {}).get("db_time", {})
        ratio = f"{big[name]['p95_ms'] / small[name]['p95_ms']:.2f}x" if name in small and name in big else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    for scale, r in results.items():
        lines += ["", f"## Scale {scale}", ""]
        lines += [
            f"Load average at start / end: {r.get('machine', {}).get('loadavg_at_start')} / {r.get('loadavg_at_end')}",
            "",
        ]
        create = r.get("create", {})
        if create and "skipped" not in create:
            lines += ["### Create throughput (requests/s, ratio to raw single-row INSERT)", ""]
            lines += ["| clients | " + " | ".join(k for k in next(iter(create.values()))) + " |"]
            lines += ["|---|" + "---|" * len(next(iter(create.values())))]
            for clients, row in create.items():
                cells = []
                for v in row.values():
                    if "per_s" in v:
                        ratio = v.get("ratio_to_raw_insert")
                        cells.append(f"{v['per_s']}" + (f" ({ratio:.1%})" if ratio is not None else ""))
                    else:
                        cells.append(v.get("skipped", "-"))
                lines.append(f"| {clients} | " + " | ".join(cells) + " |")
        elif create:
            lines += [f"Create throughput: {create['skipped']}"]
        explain = r.get("explain", {})
        if explain:
            lines += ["", "### EXPLAIN ANALYZE of the seed queries", "", "| query | exec ms | indexes | seq scans |"]
            lines += ["|---|---|---|---|"]
            for name, v in explain.items():
                lines.append(
                    f"| {name} | {v['execution_ms']} | {', '.join(v['indexes'])} | {', '.join(v['seq_scans']) or '-'} |"
                )
        queries = r.get("queries", {})
        if queries and "skipped" not in queries:
            lines += ["", "### SQL queries per request (page_size 1 / 10 / 50 / 200)", ""]
            for name, v in queries.get("list", {}).items():
                if "by_page_size" in v:
                    counts = " / ".join(str(c["queries"]) for c in v["by_page_size"].values())
                    lines.append(f"- {name}: {counts}{'' if v['constant'] else '  **grows with the page**'}")
            for name, v in queries.get("lineage", {}).items():
                lines.append(f"- lineage, {name}: {v['queries']} queries ({v['artifacts']} artifacts)")
        elif queries:
            lines += ["", f"Query counts: {queries['skipped']}"]
        for key in ("lists", "c_clients", "enqueue", "rss", "export", "profile", "peer"):
            value = r.get(key)
            if value:
                lines += ["", f"### {key}", "", "```", json.dumps(_trim(value), indent=1)[:3000], "```"]
    path = RESULTS / f"{date}{tag}-summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _latency_table(
    results: dict[str, Any], names: list[str], pick: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> list[str]:
    """Rows "p50 / p95 / p99" per scale and the p95 growth 1M/10k, of ``pick(latency figure)``."""

    def figure(scale: str, name: str) -> dict[str, Any] | None:
        v = results.get(scale, {}).get("latency", {}).get(name)
        picked = pick(v) if isinstance(v, dict) else None
        return picked if picked and picked.get("n") else None

    lines = ["| query | " + " | ".join(f"{s} p50 / p95 / p99" for s in results) + " | p95 1M/10k |"]
    lines += ["|---|" + "---|" * (len(results) + 1)]
    for name in names:
        cells = []
        for scale in results:
            v = figure(scale, name)
            cells.append(f"{v['p50_ms']} / {v['p95_ms']} / {v['p99_ms']}" if v else "-")
        small, big = figure("10k", name), figure("1m", name)
        ratio = f"{big['p95_ms'] / small['p95_ms']:.2f}x" if small and big else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def _trim(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items() if k not in ("plan", "queries", "stderr_tail")}
    return value


# --- main ----------------------------------------------------------------------------------------------------------
def _exit_on_signal(signum: int, _frame: Any) -> None:
    # SIGTERM/SIGINT unwind through the finally blocks, which stop gunicorn and celery.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="10k")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of: {', '.join(PARTS)}")
    parser.add_argument("--workers", type=int, default=2 * CORES + 1, help="gunicorn workers (default 2*cores+1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput repetition")
    parser.add_argument("--reps", type=int, default=2, help="repetitions per measurement")
    parser.add_argument("--requests", type=int, default=150, help="requests per latency repetition")
    parser.add_argument("--burst", type=int, default=200, help="runs enqueued at once for the runs/s figure")
    parser.add_argument("--tag", default="", help="results as <date>-<scale>-<tag>.json (and <date>-<tag>-summary.md)")
    parser.add_argument("--export-timeout", type=float, default=300.0)
    parser.add_argument("--import-lines", type=int, default=100_000, help="lines of the export to import")
    parser.add_argument(
        "--db", default=None, help="benchmark database (default cwom_bench_<scale>; e.g. a copy made with createdb -T)"
    )
    peer = parser.add_argument_group("peer part (another implementation of the spec, side by side)")
    peer.add_argument("--peer-url", help="the other service's API base, e.g. http://127.0.0.1:9000/api/v1")
    peer.add_argument("--peer-token", help="sent there as 'Authorization: Bearer <token>'")
    peer.add_argument("--peer-header", action="append", default=[], help="'Name: value', repeatable")
    peer.add_argument("--peer-repo", help="the repo id (or slug) the peer's issues are created in and listed by")
    args = parser.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")

    db_name = args.db or f"cwom_bench_{args.scale}"
    db_url = database_url(db_name)
    date = dt.date.today().isoformat()
    tag = f"-{args.tag}" if args.tag else ""
    stamp = f"{date}-{args.scale}{tag}"
    RESULTS.mkdir(exist_ok=True)
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "scale": args.scale,
        "database": db_name,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": CORES, "python": sys.version.split()[0], "loadavg_at_start": os.getloadavg()},
        "settings": {"gunicorn_workers": args.workers, "duration_s": args.duration, "reps": args.reps},
    }
    print(f"== {db_name}: parameters", flush=True)
    app = InProcess(db_url)
    counts = app.sql(
        "SELECT (SELECT count(*) FROM cwom_issue), (SELECT count(*) FROM cwom_run), "
        "(SELECT count(*) FROM cwom_artifact)"
    )[0]
    result["rows"] = {"issues": counts[0], "runs": counts[1], "artifacts": counts[2]}
    p = sample_parameters(app)
    token = app.token()
    from django.db import connection

    has_enqueue = routed("/api/v1/enqueue")

    if "explain" in parts:
        print("== EXPLAIN (ANALYZE, BUFFERS) of the seed queries", flush=True)
        result["explain"] = part_explain(app, p)
        result["db_time"] = part_db_time(app, p)
    if "queries" in parts:
        print("== SQL queries per request", flush=True)
        result["queries"] = part_queries(app, p, token)
    if "profile" in parts:
        print("== profile POST /issues", flush=True)
        result["profile"] = part_profile(app, p, token, stamp)
    connection.close()

    http_parts = [x for x in ("latency", "lists", "create", "c-clients", "enqueue") if x in parts]
    sampler = RssSampler()
    if http_parts and app.api_error:
        for name in http_parts:
            result[name] = skipped(app.api_error)
    elif http_parts:
        print(f"== gunicorn ({args.workers} workers) on {db_name}", flush=True)
        server = Server(db_url, args.workers, log_dir)
        try:
            server.wait_ready()
            sampler.watch("gunicorn worker", server.proc.pid)
            sampler.start()
            if "latency" in parts:
                print("== latency (1 client)", flush=True)
                result["latency"] = part_latency(server.url, token, p, args.reps, args.requests, server.access_log)
            if "lists" in parts:
                print("== list throughput with a C client (wrk)", flush=True)
                result["lists"] = part_lists(server.url, token, p, args.duration, args.reps)
            if "create" in parts:
                print("== create throughput", flush=True)
                flush_bench_broker()
                result["create"] = part_create(server.url, token, p, db_url, args.duration, args.reps, has_enqueue)
                flush_bench_broker()
            if "c-clients" in parts:
                print("== create throughput with C clients (wrk vs pgbench)", flush=True)
                flush_bench_broker()
                result["c_clients"] = part_c_clients(
                    server.url, token, p, db_url, args.duration, args.reps, has_enqueue
                )
                flush_bench_broker()
            if "enqueue" in parts:
                print("== enqueue -> done (noop executor, Redis)", flush=True)
                if has_enqueue:
                    result["enqueue"] = part_enqueue(server.url, token, p, db_url, log_dir, sampler, args.burst)
                else:
                    result["enqueue"] = skipped("/api/v1/enqueue is not routed")
        finally:
            server.stop()
            if "rss" in parts:
                result["rss"] = sampler.stop() if sampler._thread.is_alive() else {}
    if "export" in parts:
        print("== cwom_export / cwom_import", flush=True)
        result["export"] = part_export(db_url, args.scale, args.export_timeout, args.import_lines)

    if "peer" in parts:
        print("== peer: the same create and list workload here and at --peer-url", flush=True)
        if not (args.peer_url and args.peer_repo):
            result["peer"] = skipped("no --peer-url and --peer-repo")
        elif app.api_error:
            result["peer"] = skipped(app.api_error)
        else:
            server = Server(db_url, args.workers, log_dir)
            try:
                server.wait_ready()
                ours = {"base": f"{server.url}/api/v1", "headers": peer_headers(token, []), "repo": p["hot_repo"]}
                there = {
                    "base": args.peer_url.rstrip("/"),
                    "headers": peer_headers(args.peer_token, args.peer_header),
                    "repo": args.peer_repo,
                }
                result["peer"] = part_peer(ours, there, p, args.duration, args.reps)
            finally:
                server.stop()

    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = RESULTS / f"{stamp}.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(result)  # a partial rerun (--parts) keeps the other parts' figures
    out.write_text(json.dumps(previous, indent=1, default=str) + "\n")
    summary = write_summary(date, tag)
    print(f"wrote {out.relative_to(ROOT)} and {summary.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
