"""Where a read request's server time goes: pyinstrument over in-process GETs of one list or lineage request.

    .venv/bin/python bench/profile_get.py --scale 1m --what issues      # issues?repo_id&status&tag
    .venv/bin/python bench/profile_get.py --scale 1m --what lineage     # runs/{id}/lineage

Parameters are sampled as ``run.py`` samples them (from random rows). Writes the text profile to
``bench/results/<date>-<scale>-profile-get-<what>.txt`` and prints ms per request. Not part of the suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import database_url  # noqa: E402
from run import RESULTS, ROOT, InProcess, rng, sample_parameters  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="10k")
    parser.add_argument("--db", default=None, help="database (default cwom_bench_<scale>)")
    parser.add_argument("--what", choices=["issues", "runs", "artifacts", "lineage"], default="issues")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    from pyinstrument import Profiler

    app = InProcess(database_url(args.db or f"cwom_bench_{args.scale}"))
    p = sample_parameters(app)
    client = app.client(app.token())

    def path() -> str:
        if args.what == "issues":
            repo, status, tag = rng.choice(p["issues"])
            return "/api/v1/issues?" + urlencode({"repo_id": repo, "status": status, "tag": tag})
        if args.what == "runs":
            issue, status = rng.choice(p["runs"])
            return "/api/v1/runs?" + urlencode({"issue_id": issue, "status": status})
        if args.what == "artifacts":
            run, kind = rng.choice(p["artifacts"])
            return "/api/v1/artifacts?" + urlencode({"run_id": run, "type": kind})
        return f"/api/v1/runs/{rng.choice(p['lineage'])}/lineage"

    for _ in range(30):
        client.get(path())
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(args.requests):
        response = client.get(path())
        assert response.status_code == 200, response.content[:300]  # noqa: S101 - a benchmark's own sanity check
    profiler.stop()
    elapsed = time.perf_counter() - started
    out = RESULTS / f"{dt.date.today().isoformat()}-{args.scale}-profile-get-{args.what}.txt"
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"GET {args.what}: {elapsed / args.requests * 1000:.2f} ms per request in-process; {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
