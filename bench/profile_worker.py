"""Where a noop run's worker time goes: pyinstrument over the worker's code, in-process, without Celery.

    .venv/bin/python bench/profile_worker.py --scale 10k --runs 300

It writes runs, so it works on a copy of ``cwom_bench_<scale>`` made for it and dropped afterwards (or on
``--db``, left as it is). Enqueues ``--runs`` noop runs through the API's enqueue function (the dispatch is
held back: no broker is involved), then calls the task body (:func:`execution.runner.execute_run`) on each,
as one worker process does: half timed as they are, half under pyinstrument. Prints ms, CPU ms and SQL
statements per run and writes the text profile to ``bench/results/<date>-<scale>-profile-worker.txt``. Not
part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from generate import PG_ADMIN_URL, database_url  # noqa: E402
from psycopg import sql  # noqa: E402
from run import RESULTS, ROOT, InProcess, rng, sample_parameters  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="10k")
    parser.add_argument("--db", default=None, help="database to write into (default: a copy of cwom_bench_<scale>)")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    if args.db:
        return profile(args.db, args.scale, args.runs)
    copy = f"cwom_profile_worker_{args.scale}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(copy)))
        template = sql.Identifier(f"cwom_bench_{args.scale}")
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), template))
    try:
        return profile(copy, args.scale, args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))


def profile(db: str, scale: str, runs: int) -> int:

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

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
    half = len(measured) // 2
    # Half the runs timed as they are (the figure), the other half under the profiler (where the time goes).
    started = time.perf_counter()
    cpu_started = time.process_time()
    for run_id in measured[1:half]:
        final = runner.execute_run(run_id, worker="bench:profile")
        assert final == "done", final  # noqa: S101 - a benchmark's own sanity check
    per_run = (time.perf_counter() - started) / (half - 1) * 1000
    cpu_per_run = (time.process_time() - cpu_started) / (half - 1) * 1000
    profiler = Profiler(interval=0.001)
    profiler.start()
    for run_id in measured[half:]:
        runner.execute_run(run_id, worker="bench:profile")
    profiler.stop()
    out = RESULTS / f"{dt.date.today().isoformat()}-{scale}-profile-worker.txt"
    sql = "\n".join(q["sql"][:300] for q in queries.captured_queries)
    out.write_text(
        profiler.output_text(unicode=False, color=False, show_all=False)
        + f"\nSQL of one run ({len(queries.captured_queries)} statements):\n{sql}\n"
    )
    print(
        f"noop run: {per_run:.2f} ms per run in-process ({1000 / per_run:.0f} runs/s; "
        f"{cpu_per_run:.2f} ms of it on this process's CPU), "
        f"{len(queries.captured_queries)} SQL statements; {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
