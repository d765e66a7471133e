"""Event subscriptions: event -> receiver latency and deliveries per second of one worker process.

    .venv/bin/python bench/webhooks.py                         # 200 sequential events, a burst of 1000
    .venv/bin/python bench/webhooks.py --events 50 --burst 200 --concurrency 2

Uses its own PostgreSQL database (``cwom_bench_webhooks``: dropped, re-created and migrated here) and its own
Redis database (``redis://127.0.0.1:6379/12``, flushed here; ``BENCH_BROKER_URL`` picks another), a receiver
in this process (a threading HTTP server on 127.0.0.1 answering 204) and one Celery worker with
``--concurrency`` prefork processes (default 1). One subscription with no filters receives every event.

- latency: one event at a time (a new repo through the write path: one transaction, the outbox trigger, the
  dispatch after commit), the time from the call until the receiver has read the signed POST, p50/p95/max;
- throughput: ``--burst`` events written while no worker runs (their deliveries queued), then a worker is
  started and delivers them: deliveries / (last arrival - first arrival), in total and per process. One
  subscription is delivered by one worker at a time, in event order, so this is the rate of one ordered queue.

Results are printed and written to ``bench/results/<date>-webhooks.json``. Not part of the test suite.
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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "cwom_bench_webhooks"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")

arrivals: dict[int, float] = {}
arrived = threading.Condition()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = time.perf_counter()
        with arrived:
            arrivals.setdefault(int(self.headers["X-CWOM-Event-Id"]), now)
            arrived.notify_all()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(pct / 100 * (len(ordered) - 1))), len(ordered) - 1)]


def prepare_environment(port: int) -> dict[str, str]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}",
        "CELERY_BROKER_URL": BROKER_URL,
        "CWOM_SUBSCRIPTION_ALLOWLIST": f"http://127.0.0.1:{port}/hooks",
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


def stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)


def wait_arrived(event_ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with arrived:
        while not all(i in arrivals for i in event_ids):
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"{sum(i not in arrivals for i in event_ids)} deliveries missing after {timeout}s")
            arrived.wait(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="sequential events for the latency figures")
    parser.add_argument("--burst", type=int, default=1000, help="events written back to back for the throughput")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes (prefork)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    env = prepare_environment(port)
    for name in ("DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"):
        os.environ[name] = env[name]
    for name in ("CELERY_BROKER_URL", "CWOM_SUBSCRIPTION_ALLOWLIST", "LOG_LEVEL"):
        os.environ[name] = env[name]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from cwom import writes
    from cwom.models import Event
    from execution import subscriptions

    subscriptions.create({"url": f"http://127.0.0.1:{port}/hooks/bench"}, "system:bench")
    counter = iter(range(10**9))

    def write_one() -> int:
        repo = writes.create("Repo", {"name": "Bench", "slug": f"bench-{next(counter)}"})
        return int(Event.objects.filter(object_id=repo.pk).values_list("id", flat=True).get())

    media = Path(tempfile.mkdtemp(prefix="cwom-bench-webhooks-"))
    worker = start_worker(env, media / "worker.log", args.concurrency)
    try:
        for _ in range(args.warmup):
            wait_arrived([write_one()], 30)
        latencies = []
        for _ in range(args.events):
            started = time.perf_counter()
            event_id = write_one()
            wait_arrived([event_id], 30)
            latencies.append((arrivals[event_id] - started) * 1000)
    finally:
        stop(worker)
    started = time.perf_counter()
    burst = [write_one() for _ in range(args.burst)]
    write_s = time.perf_counter() - started
    worker = start_worker(env, media / "worker-drain.log", args.concurrency)
    try:
        wait_arrived(burst, 600)
    finally:
        stop(worker)
        server.shutdown()
    times = [arrivals[i] for i in burst]
    span = max(times) - min(times)
    in_order = [i for i, _t in sorted(((i, arrivals[i]) for i in burst), key=lambda pair: pair[1])] == sorted(burst)

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "broker": BROKER_URL,
        "database": DB_NAME,
        "worker": f"prefork -c {args.concurrency}",
        "latency_ms": {
            "events": args.events,
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 95), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "throughput": {
            "deliveries": args.burst,
            "events_written_per_s": round(args.burst / write_s, 1),
            "deliveries_per_s": round(args.burst / span, 1),
            "deliveries_per_s_per_process": round(args.burst / span / args.concurrency, 1),
            "seconds": round(span, 2),
            "arrived_in_event_order": in_order,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-webhooks.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
