"""What the admin's pages cost at scale: SQL queries and server time of the home page, run pages and issue
pages (the largest and typical ones), and of ``GET /runs/{id}/lineage.svg``, rendered in-process.

    .venv/bin/python bench/admin_pages.py --scale 100k                  # database cwom_bench_100k
    .venv/bin/python bench/admin_pages.py --db cwom_bench_100k_copy     # any generated database

Read-only: the session is ``SET ... TRANSACTION READ ONLY``, the viewer is an unsaved superuser and the API
caller is authenticated in-process, so nothing is written (the database may be the shared one). Prints one
line per page (queries, median and p95 ms over ``--reps`` renders after a warm-up, and the median CPU time of
this process alone, which other load on the machine disturbs less; the database's share is not in it) and
writes them to ``bench/results/<date>-<db>-admin-pages.json``. Not part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import database_url  # noqa: E402
from run import RESULTS, ROOT, InProcess, pct  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="100k")
    parser.add_argument("--db", default=None, help="database (default cwom_bench_<scale>)")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    name = args.db or f"cwom_bench_{args.scale}"
    app = InProcess(database_url(name))

    from django.contrib import admin
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory, force_authenticate

    from cwom.api.pictures import RunLineagePictureView
    from cwom.models import Issue, Run

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    viewer = User(username="bench-viewer", is_staff=True, is_superuser=True, is_active=True)
    factory, api_factory = RequestFactory(), APIRequestFactory()
    picture_view = RunLineagePictureView.as_view()

    def admin_page(view: Any, *view_args: Any) -> Any:
        def render() -> Any:
            request = factory.get("/admin/")
            request.user = viewer
            response = view(request, *view_args)
            response.render()
            assert response.status_code == 200, response.status_code  # noqa: S101 - a benchmark's sanity check
            return response

        return render

    def svg(run_id: str) -> Any:
        def render() -> Any:
            request = api_factory.get(f"/api/v1/runs/{run_id}/lineage.svg")
            force_authenticate(request, user=viewer)
            response = picture_view(request, pk=run_id)
            assert response.status_code == 200, response.content[:300]  # noqa: S101
            return response

        return render

    busiest_issue = app.sql("SELECT for_issue_id FROM cwom_run GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    biggest_run = app.sql("SELECT produced_by_id FROM cwom_artifact GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    typical_run = app.sql("SELECT id FROM cwom_run WHERE status = 'done' ORDER BY id LIMIT 1 OFFSET 5000")[0][0]
    typical_issue = Run.objects.get(pk=typical_run).for_issue_id
    runs_of = {
        row[0]: row[1]
        for row in app.sql(
            "SELECT for_issue_id, count(*) FROM cwom_run WHERE for_issue_id IN (%s, %s) GROUP BY 1",
            [busiest_issue, typical_issue],
        )
    }
    artifacts_of = {
        row[0]: row[1]
        for row in app.sql(
            "SELECT produced_by_id, count(*) FROM cwom_artifact WHERE produced_by_id IN (%s, %s) GROUP BY 1",
            [biggest_run, typical_run],
        )
    }
    run_admin, issue_admin = admin.site._registry[Run], admin.site._registry[Issue]
    pages = {
        "home page (/admin/)": admin_page(admin.site.index),
        f"run page, {artifacts_of.get(biggest_run, 0)} artifacts": admin_page(run_admin.change_view, biggest_run),
        f"run page, {artifacts_of.get(typical_run, 0)} artifacts": admin_page(run_admin.change_view, typical_run),
        f"issue page, {runs_of.get(busiest_issue, 0):,} runs": admin_page(issue_admin.change_view, busiest_issue),
        f"issue page, {runs_of.get(typical_issue, 0):,} runs": admin_page(issue_admin.change_view, typical_issue),
        f"lineage.svg, {artifacts_of.get(biggest_run, 0)} artifacts": svg(biggest_run),
        f"lineage.svg, {artifacts_of.get(typical_run, 0)} artifacts": svg(typical_run),
    }
    counts = app.sql("SELECT (SELECT count(*) FROM cwom_run), (SELECT count(*) FROM cwom_artifact)")[0]
    load = os.getloadavg()[0]
    report: dict[str, Any] = {
        "database": name,
        "runs": counts[0],
        "artifacts": counts[1],
        "reps": args.reps,
        "load_at_start": load,
    }
    print(
        f"{name}: {counts[0]:,} runs, {counts[1]:,} artifacts; {args.reps} renders each after 3 warm-ups; "
        f"load average {load:.2f}"
    )
    for label, render in pages.items():
        for _ in range(3):
            render()
        with CaptureQueriesContext(connection) as ctx:
            response = render()
        times, cpu = [], []
        for _ in range(args.reps):
            started, started_cpu = time.perf_counter(), time.process_time()
            render()
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        sql_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
        row = {
            "queries": len(ctx.captured_queries),
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 95), 1),
            "median_cpu_ms": round(statistics.median(cpu), 1),
            "sql_ms_one_render": round(sql_ms, 1),
            "bytes": len(response.content),
        }
        report[label] = row
        print(
            f"  {label:34} {row['queries']:3} queries  median {row['median_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms"
            f"  CPU {row['median_cpu_ms']:6.1f} ms  (SQL {row['sql_ms_one_render']:.1f} ms, {row['bytes']:,} bytes)"
        )
    report["load_at_end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-{name}-admin-pages.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
