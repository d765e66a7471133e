"""Enqueue -> done latency and single-worker throughput of the execution engine (``noop`` executor).

    .venv/bin/python bench/enqueue_latency.py                  # 200 sequential runs, 500 for throughput
    .venv/bin/python bench/enqueue_latency.py --runs 50 --burst 100 --concurrency 2

Uses its own PostgreSQL database (``cwom_bench_exec``: dropped, re-created and migrated here) and its own Redis
database (``redis://127.0.0.1:6379/11``, flushed here; ``BENCH_BROKER_URL`` picks another), and starts one
Celery worker with ``--concurrency`` prefork processes (default 1).

Each run is enqueued as in the shared example: a new issue (repo by slug), its packet, a snapshot.

- latency: one run at a time, the time from calling the enqueue service (one transaction + dispatch after
  commit) until the run reads ``done`` (polled every 2 ms), p50/p95/max over ``--runs`` runs;
- throughput: ``--burst`` runs enqueued while no worker runs (the queue holds them all), then a worker is
  started and drains it: runs / (last ``ended_at`` - first ``started_at``), in total and per process.

Each noop run does the full job: claim (compare-and-set), lineage bundle, executor, three artifacts stored
through the storage API with digests (report, log, trace), the terminal transition and its events.
Results are printed and written to ``bench/results/<date>-enqueue-latency.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "cwom_bench_exec"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(int(round(pct / 100 * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


def prepare_environment(media: str) -> dict[str, str]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": BROKER_URL,
        "ARTIFACT_ROOT": media,
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    return env


def start_worker(env: dict[str, str], log_path: Path, concurrency: int) -> subprocess.Popen[bytes]:
    log_file = log_path.open("wb")
    proc = subprocess.Popen(  # noqa: S603 - a fixed argv: this interpreter running celery
        [sys.executable, "-m", "celery", "-A", "cwom_site", "worker", "--pool=prefork", f"--concurrency={concurrency}"]
        + ["--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "bench@%h"],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while b" ready." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("worker did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="sequential runs for the latency figures")
    parser.add_argument("--burst", type=int, default=500, help="runs enqueued back to back for the throughput")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes (prefork)")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="cwom-bench-media-")
    env = prepare_environment(media)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")})
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "ARTIFACT_ROOT", "LOG_LEVEL")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db.models import Max, Min

    from cwom import writes
    from cwom.models import Run
    from execution.enqueue import enqueue

    writes.create("Repo", {"name": "Bench", "slug": "bench"})
    counter = iter(range(10**9))

    def enqueue_one() -> str:
        # The shared example's shape: a new issue (repo by slug), its first packet, a snapshot, the noop executor.
        body = {
            "issue": {"repo": "bench", "title": f"Benchmark issue {next(counter)}", "type": "chore"},
            "context": {"summary": "benchmark run", "instructions": "do nothing"},
            "constraints": {"scope": "run", "constraints": {"time": {"available_minutes": 5}}},
            "executor": {"name": "noop", "config": {}},
        }
        return enqueue(body).run.pk

    def wait_done(run_ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        pending = set(run_ids)
        while pending:
            finished = set(Run.objects.filter(pk__in=pending, status="done").values_list("id", flat=True))
            pending -= finished
            if pending and time.monotonic() > deadline:
                raise SystemExit(f"{len(pending)} runs not done after {timeout}s")
            if pending:
                time.sleep(0.002)

    def stop(worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)

    worker = start_worker(env, Path(media) / "worker.log", args.concurrency)
    try:
        for _ in range(args.warmup):
            wait_done([enqueue_one()])
        latencies = []
        for _ in range(args.runs):
            started = time.perf_counter()
            wait_done([enqueue_one()])
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        stop(worker)
    started = time.perf_counter()
    burst = [enqueue_one() for _ in range(args.burst)]
    enqueue_s = time.perf_counter() - started
    worker = start_worker(env, Path(media) / "worker-drain.log", args.concurrency)
    try:
        wait_done(burst, timeout=600)
    finally:
        stop(worker)
    span = Run.objects.filter(pk__in=burst).aggregate(first=Min("started_at"), last=Max("ended_at"))
    total_s = (span["last"] - span["first"]).total_seconds()

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "broker": BROKER_URL,
        "database": DB_NAME,
        "executor": "noop",
        "worker": f"prefork -c {args.concurrency}",
        "latency_ms": {
            "runs": args.runs,
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 95), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "throughput": {
            "runs": args.burst,
            "enqueue_per_s": round(args.burst / enqueue_s, 1),
            "runs_per_s": round(args.burst / total_s, 1),
            "runs_per_s_per_process": round(args.burst / total_s / args.concurrency, 1),
            "seconds": round(total_s, 2),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-enqueue-latency.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
