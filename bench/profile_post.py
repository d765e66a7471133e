"""Where a write request's server time goes: in-process POSTs of the bench's create bodies (issue 18).

    .venv/bin/python bench/profile_post.py --scale 10k --what issues        # POST /issues
    .venv/bin/python bench/profile_post.py --scale 10k --what enqueue       # POST /enqueue (noop, existing issue)
    .venv/bin/python bench/profile_post.py --scale 10k --what enqueue --cpu # no profiler: CPU µs per request

Bodies are drawn as ``run.py``'s ``create`` part draws them. Prints ms and CPU µs per request and the SQL of
one request; with pyinstrument (default) writes ``bench/results/<date>-<scale>-profile-post-<what>.txt``.
Runs on a broker nobody listens to (``BENCH_BROKER_URL``): enqueued runs stay ready. Not part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import database_url  # noqa: E402
from run import RESULTS, ROOT, InProcess, issue_body, rng, sample_parameters  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="10k")
    parser.add_argument("--db", default=None, help="database (default cwom_bench_<scale>)")
    parser.add_argument("--what", choices=["issues", "enqueue"], default="issues")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--cpu", action="store_true", help="no profiler: median CPU µs per request over 5 rounds")
    args = parser.parse_args()

    app = InProcess(database_url(args.db or f"cwom_bench_{args.scale}"))
    p = sample_parameters(app)
    client = app.client(app.token())
    counter = iter(range(10**9))

    def body() -> dict[str, Any]:
        if args.what == "issues":
            return issue_body(p, next(counter))
        issue, _ = rng.choice(p["packet_issues"])
        return {"issue": issue, "context": {"summary": "Bench enqueue"}, "executor": {"name": "noop"}}

    def post() -> Any:
        response = client.post(f"/api/v1/{args.what}", body(), content_type="application/json")
        assert response.status_code in (201, 202), response.content[:300]  # noqa: S101 - the benchmark's own check
        return response

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(30):
        post()
    with CaptureQueriesContext(connection) as ctx:
        post()
    for query in ctx.captured_queries:
        print("  ", query["sql"][:150])
    print(f"POST /{args.what}: {len(ctx.captured_queries)} SQL statements")

    if args.cpu:
        rounds = []
        for _ in range(5):
            cpu = time.process_time()
            for _ in range(args.requests):
                post()
            rounds.append((time.process_time() - cpu) / args.requests * 1e6)
        print(f"POST /{args.what}: {statistics.median(rounds):.0f} CPU µs per request (rounds {rounds})")
        return 0

    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(args.requests):
        post()
    profiler.stop()
    elapsed = time.perf_counter() - started
    out = RESULTS / f"{dt.date.today().isoformat()}-{args.scale}-profile-post-{args.what}.txt"
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"POST /{args.what}: {elapsed / args.requests * 1000:.2f} ms per request in-process; {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
