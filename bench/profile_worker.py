"""Where a noop run's worker time goes: the worker's code in-process, without Celery.

    .venv/bin/python bench/profile_worker.py --scale 10k --runs 300
    .venv/bin/python bench/profile_worker.py --source cwom_bench_wk_100k --runs 300 --cpu

It writes runs, so it works on a copy of ``--source`` (default ``cwom_bench_<scale>``) made for it and dropped
afterwards (or on ``--db``, left as it is). Enqueues ``--runs`` noop runs through the API's enqueue function
(the dispatch is held back: no broker is involved), then calls the task body (:func:`execution.runner.execute_run`)
on each, as one worker process does: half timed as they are, half under a profiler (pyinstrument, wall time; with
``--cpu`` cProfile on this process's CPU time, which leaves out the waits for PostgreSQL). Prints ms, CPU ms
and SQL statements per run (all, and without BEGIN/COMMIT/SAVEPOINT) and writes the profile with the SQL of one
run to ``bench/results/<date>-<name>-profile-worker[-cpu].txt`` and the figures to ``...-profile-worker.json``
(``<name>``: the scale, or ``--source``). Not part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from generate import PG_ADMIN_URL, database_url  # noqa: E402
from psycopg import sql  # noqa: E402
from run import RESULTS, ROOT, InProcess, rng, sample_parameters  # noqa: E402

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="10k")
    parser.add_argument("--source", default=None, help="database to copy (default: cwom_bench_<scale>)")
    parser.add_argument("--db", default=None, help="database to write into (default: a copy of --source)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--cpu", action="store_true", help="profile CPU time (cProfile on process time)")
    args = parser.parse_args()
    source = args.source or f"cwom_bench_{args.scale}"
    name = args.scale if args.source is None else source
    if args.db:
        return profile(args.db, name, args.runs, args.cpu)
    copy = f"{source}_profile_worker"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(copy)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(source)))
    try:
        return profile(copy, name, args.runs, args.cpu)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))


def profile(db: str, name: str, runs: int, cpu: bool) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    app = InProcess(database_url(db))
    p = sample_parameters(app)

    from execution import enqueue, lifecycle, runner

    def enqueue_runs(count: int) -> list[str]:
        ids = []
        with mock.patch.object(lifecycle, "dispatch_on_commit"):
            for _ in range(count):
                issue, _ = rng.choice(p["packet_issues"])
                body = {"issue": issue, "context": {"summary": "Bench worker profile"}, "executor": {"name": "noop"}}
                ids.append(enqueue.enqueue(body).run.pk)
        return ids

    warm, measured = enqueue_runs(20), enqueue_runs(runs)
    for run_id in warm:
        runner.execute_run(run_id, worker="bench:profile")
    with CaptureQueriesContext(connection) as queries:
        runner.execute_run(measured[0], worker="bench:profile")
    statements = [q["sql"] for q in queries.captured_queries]
    work = [s for s in statements if s.split()[0].upper() not in CONTROL]
    half = len(measured) // 2
    # Half the runs timed as they are (the figure), the other half under the profiler (where the time goes).
    started = time.perf_counter()
    cpu_started = time.process_time()
    for run_id in measured[1:half]:
        final = runner.execute_run(run_id, worker="bench:profile")
        assert final == "done", final  # noqa: S101 - a benchmark's own sanity check
    per_run = (time.perf_counter() - started) / (half - 1) * 1000
    cpu_per_run = (time.process_time() - cpu_started) / (half - 1) * 1000
    if cpu:
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for run_id in measured[half:]:
            runner.execute_run(run_id, worker="bench:profile")
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(150)
        stats.sort_stats("tottime").print_stats(30)
        report = text.getvalue()
    else:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
        for run_id in measured[half:]:
            runner.execute_run(run_id, worker="bench:profile")
        profiler.stop()
        report = profiler.output_text(unicode=False, color=False, show_all=False)
    stem = f"{dt.date.today().isoformat()}-{name}-profile-worker"
    out = RESULTS / f"{stem}{'-cpu' if cpu else ''}.txt"
    listing = "\n".join(s[:300] for s in statements)
    out.write_text(
        report + f"\nSQL of one run ({len(statements)} statements, {len(work)} without BEGIN/COMMIT):\n{listing}\n"
    )
    figures = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": db,
        "runs_timed": half - 1,
        "ms_per_run": round(per_run, 2),
        "cpu_ms_per_run": round(cpu_per_run, 2),
        "statements_per_run": len(statements),
        "statements_per_run_without_transaction_control": len(work),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(
        f"noop run: {per_run:.2f} ms per run in-process ({1000 / per_run:.0f} runs/s; "
        f"{cpu_per_run:.2f} ms of it on this process's CPU), {len(statements)} SQL statements "
        f"({len(work)} without transaction control); load {figures['loadavg']}; {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
