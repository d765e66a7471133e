"""How big and how slow the representations with embedded lists are (issue 16), on one generated dataset.

    .venv/bin/python bench/representation.py --scale 1m --label before  # results/<date>-1m-representation-before.json
    .venv/bin/python bench/representation.py --scale 1m --label after \
        --targets-from bench/results/2026-12-04-1m-representation-before.json   # the same objects as before

Measured against the app served as ``run.py`` serves it (its ``Server``: gunicorn, production settings), for

  GET /issues/{id}      the busiest issue (most rows in cwom_run) and the median issue (median run count)
  GET /runs/{id}        the run with most artifacts (most rows in cwom_artifact)
  GET /issues           page_size=50, page_size=200, and the hottest repo's issues (?repo_id=...&page_size=500)

the response bytes, p50/p95 ms over HTTP at 1 client with the server time from gunicorn's access log, the SQL
queries per request (in-process, ``CaptureQueriesContext``, a warm request), the length of every embedded list
and every ``*_total`` of the representation, and req/s at 4 clients (closed loop) for the busiest issue's GET
and the list at page_size=50. The targets are picked by SQL on the tables, never from a representation, so
the script measures the same objects before and after a change of shape; ``--targets-from`` reuses the ids
of an earlier result file (e.g. after the benchmark's create part has added runs to the database), and
``--markdown FILE...`` prints result files as one table, per scale before, after and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import SCALES, database_url  # noqa: E402
from run import (  # noqa: E402
    CORES,
    RESULTS,
    ROOT,
    InProcess,
    Server,
    closed_loop,
    sequential_latency,
    server_times,
    summary_ms,
)


def pick_targets(app: InProcess) -> dict[str, Any]:
    """The objects to measure, chosen by SQL on the tables (ties broken by id, so a rerun picks the same)."""
    busiest_issue, busiest_runs = app.sql(
        "SELECT for_issue_id, count(*) FROM cwom_run GROUP BY for_issue_id ORDER BY count(*) DESC, for_issue_id LIMIT 1"
    )[0]
    # The median of the run counts over the issues that have runs (most generated issues have none).
    median_issue, median_runs = app.sql(
        "SELECT for_issue_id, n FROM (SELECT for_issue_id, count(*) n FROM cwom_run GROUP BY for_issue_id) x "
        "ORDER BY n, for_issue_id OFFSET (SELECT count(DISTINCT for_issue_id) / 2 FROM cwom_run) LIMIT 1"
    )[0]
    busiest_run, artifacts = app.sql(
        "SELECT produced_by_id, count(*) FROM cwom_artifact GROUP BY produced_by_id "
        "ORDER BY count(*) DESC, produced_by_id LIMIT 1"
    )[0]
    hot_repo, repo_issues = app.sql(
        "SELECT repo_id, count(*) FROM cwom_issue GROUP BY repo_id ORDER BY count(*) DESC, repo_id LIMIT 1"
    )[0]
    return {
        "busiest_issue": {"id": busiest_issue, "runs": busiest_runs},
        "median_issue": {"id": median_issue, "runs": median_runs},
        "busiest_run": {"id": busiest_run, "artifacts": artifacts},
        "hot_repo": {"id": hot_repo, "issues": repo_issues},
    }


def cases(t: dict[str, Any]) -> dict[str, str]:
    return {
        "GET /issues/{id} busiest": f"/api/v1/issues/{t['busiest_issue']['id']}",
        "GET /issues/{id} median": f"/api/v1/issues/{t['median_issue']['id']}",
        "GET /runs/{id} most artifacts": f"/api/v1/runs/{t['busiest_run']['id']}",
        "GET /issues?page_size=50": "/api/v1/issues?page_size=50",
        "GET /issues?page_size=200": "/api/v1/issues?page_size=200",
        "GET /issues?repo_id=hot&page_size=500": f"/api/v1/issues?repo_id={t['hot_repo']['id']}&page_size=500",
    }


THROUGHPUT = ("GET /issues/{id} busiest", "GET /issues?page_size=50")


def embedded(body: Any) -> dict[str, Any]:
    """Lengths of the embedded lists and the ``*_total`` counts of one object (top level and ``outputs``)."""
    out: dict[str, Any] = {}
    for prefix, node in (("", body), ("outputs.", body.get("outputs") if isinstance(body, dict) else None)):
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if isinstance(value, list):
                out[prefix + key] = len(value)
            elif key.endswith("_total"):
                out[prefix + key] = value
    return out


def shape(body: Any) -> dict[str, Any]:
    """What one response holds: an object's embedded lists, or a page's rows and the largest row's lists."""
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        rows = body["results"]
        lists = [embedded(row) for row in rows]
        largest = {key: max(row.get(key, 0) or 0 for row in lists) for key in {k for row in lists for k in row}}
        return {"rows": len(rows), "largest_row": dict(sorted(largest.items()))}
    return embedded(body)


def measure_in_process(app: InProcess, token: str, paths: dict[str, str]) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = app.client(token)
    client.get("/api/v1/repos")  # the token's first use writes last_used_at: keep it out of the counts
    out: dict[str, Any] = {}
    for name, path in paths.items():
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        out[name] = {
            "status": response.status_code,
            "bytes": len(response.content),
            "queries": len(ctx.captured_queries),
            "shape": shape(response.json()) if response.status_code == 200 else None,
        }
    return out


def always(path: str) -> Callable[[], str]:
    return lambda: path


def measure_http(base: str, token: str, paths: dict[str, str], n: int, duration: float, reps: int, log: Path) -> dict:
    import aiohttp

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for index, (name, path) in enumerate(paths.items()):
                times, statuses = await sequential_latency(session, base, always(path), n, warmup=5, tag=f"r{index}")
                await asyncio.sleep(0.2)  # let gunicorn flush its access log
                server = [t for key, t in server_times(log).items() if key.rsplit("-", 1)[0] == f"r{index}"]
                out[name] = {**summary_ms(times), "server": summary_ms(server), "statuses": statuses}
        connector = aiohttp.TCPConnector(limit=4)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}, connector=connector) as session:
            for name in THROUGHPUT:

                async def action(_: int, path: str = paths[name]) -> bool:
                    async with session.get(base + path) as response:
                        await response.read()
                        return response.status == 200

                await closed_loop(4, min(2.0, duration / 2), action)  # warm-up
                rates = []
                for _ in range(reps):
                    ok, _failed, seconds, _ = await closed_loop(4, duration, action)
                    rates.append(ok / seconds)
                out[name]["req_per_s_4_clients"] = round(statistics.median(rates), 1)
                out[name]["req_per_s_4_clients_reps"] = [round(r, 1) for r in rates]
        return out

    return asyncio.run(go())


APP = ("cwom", "cwom_site", "execution")


def git_commit() -> dict[str, Any]:
    """HEAD, the last commit that changed the application's code, and whether that code has local changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603, S607

    return {
        "head": git("rev-parse", "HEAD"),
        "app": git("log", "-1", "--format=%H", "--", *APP),
        "app_modified": bool(git("status", "--porcelain", "--", *APP)),
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{'case':40s} {'bytes':>10s} {'queries':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'srv p50':>8s} "
        f"{'srv p95':>8s} {'req/s@4':>8s}  embedded"
    )
    for name, row in result["cases"].items():
        http = row["http"]
        rate = http.get("req_per_s_4_clients")
        print(
            f"{name:40s} {row['bytes']:>10,d} {row['queries']:>7d} {http['p50_ms']:>8.2f} {http['p95_ms']:>8.2f} "
            f"{http['server']['p50_ms']:>8.2f} {http['server']['p95_ms']:>8.2f} "
            f"{(f'{rate:.1f}' if rate is not None else '-'):>8s}  {row['shape']}"
        )


FIGURES = (
    ("bytes", lambda row: row["bytes"]),
    ("SQL queries", lambda row: row["queries"]),
    ("p50 / p95 ms, HTTP", lambda row: (row["http"]["p50_ms"], row["http"]["p95_ms"])),
    ("p50 / p95 ms, server", lambda row: (row["http"]["server"]["p50_ms"], row["http"]["server"]["p95_ms"])),
    ("req/s, 4 clients", lambda row: row["http"].get("req_per_s_4_clients")),
)


def markdown(results: list[dict[str, Any]]) -> str:
    """One table of result files: per scale (in the order given) a before column, an after column and their
    ratio, from the first and the second file of that scale (a single file leaves after and ratio empty)."""

    def cell(value: Any) -> str:
        if isinstance(value, tuple):
            return " / ".join(cell(v) for v in value)
        return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"

    def ratio(old: Any, new: Any) -> str:
        if isinstance(old, tuple):
            return " / ".join(ratio(o, n) for o, n in zip(old, new, strict=True))
        return f"{new / old:.2f}x" if old and new is not None else "-"

    scales: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        scales.setdefault(result["scale"], []).append(result)
    header = ["case", "figure"]
    for scale in scales:
        header += [f"{scale} before", f"{scale} after", "after / before"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name in results[0]["cases"]:
        for label, pick in FIGURES:
            cells = [name, label]
            for before, *after in scales.values():
                old = pick(before["cases"][name])
                new = pick(after[0]["cases"][name]) if after else None
                cells += [cell(old), cell(new) if after else "", ratio(old, new) if after else ""]
            if any(c != "-" for c in cells[2::3]):
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="10k")
    parser.add_argument("--db", default=None, help="benchmark database (default cwom_bench_<scale>)")
    parser.add_argument("--workers", type=int, default=2 * CORES + 1, help="gunicorn workers (default 2*cores+1)")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per case (after 5 warm-up)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per req/s repetition")
    parser.add_argument("--reps", type=int, default=2, help="req/s repetitions (the median is reported)")
    parser.add_argument("--targets-from", type=Path, default=None, help="reuse the objects of an earlier result file")
    parser.add_argument("--label", default="", help="appended to the result file's name, e.g. before / after")
    parser.add_argument(
        "--markdown",
        nargs="+",
        type=Path,
        metavar="RESULT",
        help="print result files as one Markdown table (per scale: the first file is before, the second after); no run",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown([json.loads(path.read_text()) for path in args.markdown]))
        return 0

    db_name = args.db or f"cwom_bench_{args.scale}"
    db_url = database_url(db_name)
    date = dt.date.today().isoformat()
    result: dict[str, Any] = {
        "scale": args.scale,
        "database": db_name,
        "label": args.label,
        "commit": git_commit(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": CORES, "python": sys.version.split()[0]},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "settings": {"gunicorn_workers": args.workers, "requests": args.requests, "duration_s": args.duration},
    }
    app = InProcess(db_url)
    if app.api_error:
        print(app.api_error, file=sys.stderr)
        return 1
    if args.targets_from:
        result["targets"] = json.loads(args.targets_from.read_text())["targets"]
    else:
        result["targets"] = pick_targets(app)
    print(f"== {db_name}: targets {json.dumps(result['targets'])}", flush=True)
    paths = cases(result["targets"])
    token = app.token()
    in_process = measure_in_process(app, token, paths)
    app.connection.close()

    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = Server(db_url, args.workers, log_dir)
    try:
        server.wait_ready()
        http = measure_http(server.url, token, paths, args.requests, args.duration, args.reps, server.access_log)
    finally:
        server.stop()
    result["cases"] = {name: {"path": paths[name], **in_process[name], "http": http[name]} for name in paths}
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    label = f"-{args.label}" if args.label else ""
    out = RESULTS / f"{date}-{args.db or args.scale}-representation{label}.json"
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nloadavg {result['loadavg_at_start']} -> {result['loadavg_at_end']}; wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
