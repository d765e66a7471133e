"""Worker throughput on a burst of noop runs, against Celery's own ceiling, old and new code side by side.

    BENCH_BROKER_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/worker_burst.py \
        --source cwom_bench_100k --burst 2000 --rounds 2 --bare --code base=/tmp/cwom-base --code head=.

Works on a copy of ``--source`` made for it (``<source>_burst``, dropped afterwards). Each round, for each
``--code`` tree (a checkout of the service: ``git archive <commit> | tar -x -C <dir>``; default this one) and
then for the bare task: ``--burst`` runs are enqueued in-process through the enqueue service (its real dispatch
publishes them to the broker) while no worker runs, then a Celery worker (prefork, ``--concurrency``
processes, run from that tree) is started and drains the queue. Figures per drain:

- runs/s = finished runs / (last ``ended_at`` - first ``started_at``), per process too;
- worker CPU ms per run: user + system time of the worker's processes (the pool process and the main process
  that reads the broker) over the drain, from ``/proc``, divided by the runs;
- the bare task (``bench/celery_bare.py``, ``--bare``): the same app, settings, broker, concurrency and
  per-message time limits, a task that does nothing: tasks/s from the first task's start to the last one's
  end. That is the ceiling a run cannot pass; each code's ratio to it is reported.

Trees alternate within a round, so a ratio between them is taken under the same load. The broker's ``celery``
queue key (only that key, and this script's own keys) is deleted before each drain. Results:
``bench/results/<date>-<source>-worker-burst.json``. Not part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from generate import PG_ADMIN_URL, database_url  # noqa: E402
from psycopg import sql  # noqa: E402
from run import BROKER, RESULTS, ROOT, InProcess, app_env, rng, sample_parameters  # noqa: E402

BARE_TASK = "bench.celery_bare.bare"  # bench/celery_bare.py

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


class CeleryWorker:
    def __init__(self, code: Path, db_url: str, concurrency: int, log: Path, include: str | None = None) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "cwom_site", "worker", "--pool", "prefork"]
        argv += ["--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        argv += ["--without-heartbeat", "-n", f"wkburst{os.getpid()}-{log.stem}@%h"]
        if include:
            argv += ["--include", include]
        env = app_env(db_url, PYTHONPATH=str(code))
        self.log = log.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter running celery
            argv, cwd=code, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.cpu_start = 0.0

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery exited with {self.proc.returncode}; see {self.log.name}")
            if " ready." in Path(self.log.name).read_text() or self._children():
                self.cpu_start = cpu_seconds(self.proc.pid)
                return
            time.sleep(0.05)
        raise RuntimeError("celery worker did not start in time")

    def _children(self) -> bool:
        try:
            return bool(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split())
        except OSError:
            return False

    def cpu_used(self) -> float:
        return cpu_seconds(self.proc.pid) - self.cpu_start

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def bare_ceiling(db_url: str, burst: int, concurrency: int, log_dir: Path) -> dict[str, Any]:
    """Drain ``burst`` bare tasks (``bench/celery_bare.py``) sent as a run's task is sent (the same per-message
    time limits and publish retry policy) with a worker of ``concurrency`` processes: tasks/s and worker CPU."""
    import redis

    from cwom_site.celery import app as celery_app
    from execution import lifecycle

    broker = redis.Redis.from_url(BROKER)
    broker.delete("celery")
    key = f"cwom-bench-bare:{os.getpid()}"
    broker.delete(f"{key}:first", f"{key}:last")
    soft, hard = lifecycle.limits_for_minutes(None)
    for index in range(burst):
        celery_app.send_task(
            BARE_TASK,
            args=[index, burst - 1, key],
            soft_time_limit=soft,
            time_limit=hard,
            retry=True,
            retry_policy=lifecycle.PUBLISH_RETRY_POLICY,
        )
    worker = CeleryWorker(ROOT, db_url, concurrency, log_dir / "worker-burst-bare.log", "bench.celery_bare")
    try:
        worker.wait_ready()
        deadline = time.time() + 300
        while broker.get(f"{key}:last") is None and time.time() < deadline:
            time.sleep(0.05)
        cpu = worker.cpu_used()
    finally:
        worker.stop()
    first, last = (float(broker.get(f"{key}:{stamp}") or "nan") for stamp in ("first", "last"))
    broker.delete(f"{key}:first", f"{key}:last", "celery")
    return {
        "tasks": burst,
        "seconds": round(last - first, 2),
        "tasks_per_s": round(burst / (last - first), 1),
        "tasks_per_s_per_process": round(burst / (last - first) / concurrency, 1),
        "worker_cpu_ms_per_task": round(cpu * 1000 / burst, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="cwom_bench_100k", help="database to copy")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--bare", action="store_true", help="also drain a burst of bare tasks (Celery's ceiling)")
    parser.add_argument("--code", action="append", default=[], help="name=path of a checkout (default: this one)")
    args = parser.parse_args()
    codes = dict(item.split("=", 1) for item in args.code) or {"head": str(ROOT)}
    copy = f"{args.source}_burst"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(args.source))
        )
    try:
        return measure(copy, args, {name: Path(path).resolve() for name, path in codes.items()})
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))


def measure(db: str, args: argparse.Namespace, codes: dict[str, Path]) -> int:
    import redis

    db_url = database_url(db)
    app = InProcess(db_url)
    p = sample_parameters(app)
    broker = redis.Redis.from_url(BROKER)
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)

    from django.db import connection

    from execution import enqueue

    def enqueue_burst() -> list[str]:
        ids = []
        for _ in range(args.burst):
            issue, _ = rng.choice(p["packet_issues"])
            body = {"issue": issue, "context": {"summary": "Bench worker burst"}, "executor": {"name": "noop"}}
            ids.append(enqueue.enqueue(body).run.pk)
        return ids

    def drain_runs(code: Path, name: str) -> dict[str, Any]:
        broker.delete("celery")
        ids = enqueue_burst()
        connection.close()
        worker = CeleryWorker(code, db_url, args.concurrency, log_dir / f"worker-burst-{name}.log")
        try:
            worker.wait_ready()
            deadline = time.time() + max(120, args.burst)
            with psycopg.connect(db_url, autocommit=True) as conn:
                while time.time() < deadline:
                    left = conn.execute(
                        "SELECT count(*) FROM cwom_run WHERE id = ANY(%s) "
                        "AND status NOT IN ('done', 'failed', 'canceled')",
                        (ids,),
                    ).fetchone()[0]
                    if not left:
                        break
                    time.sleep(0.1)
                cpu = worker.cpu_used()
                first, last, done = conn.execute(
                    "SELECT extract(epoch from min(started_at)), extract(epoch from max(ended_at)), "
                    "count(*) FILTER (WHERE status = 'done') FROM cwom_run WHERE id = ANY(%s)",
                    (ids,),
                ).fetchone()
        finally:
            worker.stop()
        span = float(last) - float(first)
        return {
            "runs": len(ids),
            "done": done,
            "seconds": round(span, 2),
            "runs_per_s": round(done / span, 1),
            "runs_per_s_per_process": round(done / span / args.concurrency, 1),
            "worker_cpu_ms_per_run": round(cpu * 1000 / max(done, 1), 2),
        }

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": args.source,
        "burst": args.burst,
        "concurrency": args.concurrency,
        "broker": BROKER,
        "codes": {name: str(path) for name, path in codes.items()},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "rounds": [],
    }
    for round_ in range(args.rounds):
        figures: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
        for name, code in codes.items():
            figures[name] = drain_runs(code, name)
            print(f"round {round_ + 1}, {name}: {figures[name]}", flush=True)
        if args.bare:
            figures["bare"] = bare_ceiling(db_url, args.burst, args.concurrency, log_dir)
            print(f"round {round_ + 1}, bare task: {figures['bare']}", flush=True)
        result["rounds"].append(figures)
    broker.delete("celery")
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    medians: dict[str, Any] = {}
    for name in codes:
        medians[name] = {
            key: statistics.median(r[name][key] for r in result["rounds"])
            for key in ("runs_per_s_per_process", "worker_cpu_ms_per_run")
        }
    if args.bare:
        medians["bare"] = {
            key: statistics.median(r["bare"][key] for r in result["rounds"])
            for key in ("tasks_per_s_per_process", "worker_cpu_ms_per_task")
        }
        for name in codes:
            medians[name]["share_of_bare"] = round(
                statistics.median(
                    r[name]["runs_per_s_per_process"] / r["bare"]["tasks_per_s_per_process"] for r in result["rounds"]
                ),
                3,
            )
    names = list(codes)
    if len(names) > 1:
        first = names[0]
        for name in names[1:]:
            medians[name][f"ratio_to_{first}"] = round(
                statistics.median(
                    r[name]["runs_per_s_per_process"] / r[first]["runs_per_s_per_process"] for r in result["rounds"]
                ),
                3,
            )
    result["medians"] = medians
    out = RESULTS / f"{dt.date.today().isoformat()}-{args.source}-worker-burst.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(medians, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
