"""What the FilterSet machinery costs per list request: the shipped filters against plain django-filter.

    .venv/bin/python bench/profile_filters.py                     # a fresh SQLite file in a temporary directory
    .venv/bin/python bench/profile_filters.py --db postgres://postgres@127.0.0.1:5432/my_bench_db
    .venv/bin/python bench/profile_filters.py --before 3ae2a61 --variants shipped,before   # before/after issue 13

Builds a small dataset through the write path (once per database: ``--db`` must name an empty database or one
this script filled), then sends a few typical list requests through the Django test client, in-process, with
each *variant* of the filter machinery swapped onto the viewsets, round-robin (variant A, B, C, A, B, C, ...) so
that drift in the machine's speed touches every variant alike. A variant is a filter backend and a FilterSet
class per viewset:

- ``shipped``: ``cwom.api.filters`` as it is;
- ``plain``: django-filter's own ``FilterSet`` code paths: every FilterSet subclassed with django-filter's own
  ``__init__``, ``form`` and ``get_form_class`` (so whatever ``cwom.api.filters`` does to build the filters and
  the form is bypassed; its filters and ``filter_queryset`` stay). The shipped backend then does what
  ``DjangoFilterBackend.filter_queryset`` does, plus its unknown-parameter check;
- ``plain+form-class``: ``get_form_class`` (the documented hook) returns one form class per FilterSet class,
  built once (a cache);
- ``plain+given-forms``: ``get_form_class`` returns a form class over the filters the query names, one per set
  of names (a cache);
- ``plain+given-uncached``: the same, built for each request (no cache);
- ``plain+given-fields``: the ``form`` property returns an instance of ``Meta.form`` holding the fields of the
  filters the query names (no cache, no form class per request);
- ``plain+given+shallow``: ``plain+given-forms``, with filters whose ``__deepcopy__`` is a shallow copy (what
  django-filter's per-instance ``copy.deepcopy`` of the class's filters costs);
- ``before`` (with ``--before REV``): ``cwom/api/filters.py`` of commit ``REV`` read from git and loaded beside
  today's, with that commit's issue list ordering: the filters before issue 13 (``PrebuiltFilterSet``) in the
  same process as today's.

For each query and variant: server-side time per request (median over rounds) as CPU time of this process
(``time.process_time``: Python, plus SQLite's own work when the database is SQLite; PostgreSQL's work happens
in another process) and as wall time, and the CPU time inside the filter backend (building the FilterSet,
validating the query, building the queryset; the SQL runs later, in the paginator). Ratios are against
``plain``. Every variant's responses are checked to be byte-identical to ``shipped``'s. Not part of the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A variant: {viewset: (filter backend class, FilterSet class, other viewset attributes to set)}.
Variant = dict[Any, tuple[Any, Any, dict[str, Any]]]
SLUG = "bench-filters"
TAGS = ("api", "ui", "perf", "ops", "db", "docs", "infra", "auth")


def setup_django(db_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "cwom_site.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789",  # noqa: S105 - local benchmark
            "ALLOWED_HOSTS": "testserver,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "CWOM_THROTTLE_RATE": "10000000/min",
            "LOG_LEVEL": "WARNING",
            "CWOM_VAR_DIR": str(ROOT / "var" / "bench-filters"),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(issues: int) -> dict[str, str]:
    """A few repos, ``issues`` issues with 0-3 tags and mixed statuses, runs and artifacts on some issues."""
    from cwom import writes
    from cwom.models import Artifact, Issue, Repo, Run
    from tests import factories

    repos = list(Repo.objects.filter(slug__startswith=SLUG).order_by("slug"))
    if not repos:
        if Repo.objects.exists():
            raise SystemExit("--db holds data this script did not write: give it an empty database")
        repos = [factories.repo(slug=f"{SLUG}-{i}", name=f"Bench {i}") for i in range(4)]
        statuses = ("planned", "ready", "done", "done", "blocked")
        for i in range(issues):
            tags = [TAGS[(i * 7 + k * 3) % len(TAGS)] for k in range(i % 4)]
            factories.issue(
                repos[i % 3], title=f"Issue {i}", status=statuses[i % len(statuses)], tags=sorted(set(tags))
            )
        hot = Issue.objects.filter(repo=repos[0]).order_by("id")[:3]
        for issue in hot:
            for i in range(20):
                run = factories.run(issue, status="ready")
                if i % 2:
                    writes.transition(run, "running")
                    factories.artifact(run, type="log" if i % 4 == 1 else "report")
    repo = repos[0]
    issue = Run.objects.filter(repo=repo).values_list("for_issue_id", flat=True).first()
    run = Artifact.objects.values_list("produced_by_id", flat=True).first()
    assert issue and run  # noqa: S101 - the dataset's own sanity check
    return {"repo": repo.pk, "issue": str(issue), "run": str(run)}


def queries(ids: dict[str, str]) -> dict[str, str]:
    return {
        "issues?repo_id&status&tag (tag index)": "/api/v1/issues?"
        + urlencode({"repo_id": ids["repo"], "status": "ready,done", "tag": "perf", "page_size": 50}),
        "issues?repo_id&status&q": "/api/v1/issues?"
        + urlencode({"repo_id": ids["repo"], "status": "done", "q": "issue", "page_size": 50}),
        "runs?issue_id&status": "/api/v1/runs?" + urlencode({"issue_id": ids["issue"], "status": "running"}),
        "artifacts?run_id&type": "/api/v1/artifacts?" + urlencode({"run_id": ids["run"], "type": "log,report"}),
        "repos (no filter)": "/api/v1/repos",
    }


# --- variants ---------------------------------------------------------------------------------------------
def viewsets() -> list[Any]:
    from cwom.api import views

    return [*views.KIND_VIEWSETS.values(), views.EventViewSet]


def plain_filterset(cls: type) -> type:
    """``cls`` with django-filter's own ``__init__``, ``form`` and ``get_form_class``."""
    import django_filters

    base = django_filters.FilterSet

    def __init__(self: Any, data: Any = None, queryset: Any = None, *, given_only: bool = False, **kwargs: Any) -> None:
        base.__init__(self, data, queryset, **kwargs)  # given_only: what the backend of before issue 13 passed

    attrs = {"__init__": __init__, "form": base.form, "get_form_class": base.get_form_class}
    return type(cls.__name__, (cls,), {**attrs, "__module__": __name__})


def form_class_per_class(cls: type) -> type:
    """A plain FilterSet whose ``get_form_class`` builds its form class once."""
    built: dict[str, Any] = {}

    def get_form_class(self: Any) -> Any:
        if "form" not in built:
            built["form"] = super(subclass, self).get_form_class()
        return built["form"]

    subclass = type(cls.__name__, (cls,), {"get_form_class": get_form_class, "__module__": __name__})
    return subclass


def form_class_per_given_names(cls: type) -> type:
    """A plain FilterSet whose ``get_form_class`` returns a form over the filters the query names (cached)."""
    built: dict[frozenset[str], Any] = {}

    def get_form_class(self: Any) -> Any:
        given = frozenset(name for name in self.filters if name in self.data)
        form_class = built.get(given)
        if form_class is None:
            fields = {name: flt.field for name, flt in self.filters.items() if name in given}
            form_class = built[given] = type(f"{cls.__name__}Form", (self._meta.form,), fields)
        return form_class

    return type(cls.__name__, (cls,), {"get_form_class": get_form_class, "__module__": __name__})


def form_class_per_request_given_names(cls: type) -> type:
    """A plain FilterSet whose ``get_form_class`` builds, for each request, a form over the filters it names."""

    def get_form_class(self: Any) -> Any:
        fields = {name: flt.field for name, flt in self.filters.items() if name in self.data}
        return type(f"{cls.__name__}Form", (self._meta.form,), fields)

    return type(cls.__name__, (cls,), {"get_form_class": get_form_class, "__module__": __name__})


def form_fields_per_request_given_names(cls: type) -> type:
    """A plain FilterSet whose ``form`` is its form class's instance with the fields of the named filters."""

    def form(self: Any) -> Any:
        built = self.__dict__.get("given_form")
        if built is None:
            built = self.__dict__["given_form"] = self._meta.form(self.data, prefix=self.form_prefix)
            built.fields.update({name: flt.field for name, flt in self.filters.items() if name in self.data})
        return built

    return type(cls.__name__, (cls,), {"form": property(form), "__module__": __name__})


def shallow_filter_copies(cls: type) -> type:
    """``cls`` whose filters deep-copy as shallow copies (``__deepcopy__`` on the filter classes)."""

    def shallow(flt: Any) -> Any:
        kind = type(flt)
        clone = copy.copy(flt)
        clone.__class__ = type(kind.__name__, (kind,), {"__deepcopy__": lambda self, memo: copy.copy(self)})
        return clone

    filters = {name: shallow(flt) for name, flt in cls.base_filters.items()}  # type: ignore[attr-defined]
    subclass = type(cls.__name__, (cls,), {"__module__": __name__})
    subclass.base_filters = filters  # type: ignore[attr-defined]
    return subclass


def variants() -> dict[str, Variant]:
    """name -> {viewset: (filter backend class, FilterSet class, other viewset attributes)}."""
    shipped = {view: (view.filter_backends[0], view.filterset_class, {}) for view in viewsets()}

    def on_plain(make: Any) -> Variant:
        return {view: (backend, make(plain_filterset(fs)), {}) for view, (backend, fs, _) in shipped.items()}

    return {
        "shipped": shipped,
        "plain": on_plain(lambda fs: fs),
        "plain+form-class": on_plain(form_class_per_class),
        "plain+given-forms": on_plain(form_class_per_given_names),
        "plain+given-uncached": on_plain(form_class_per_request_given_names),
        "plain+given-fields": on_plain(form_fields_per_request_given_names),
        "plain+given+shallow": on_plain(lambda fs: shallow_filter_copies(form_class_per_given_names(fs))),
    }


def before_variant(rev: str) -> Variant:
    """The filters of commit ``rev``: its ``cwom/api/filters.py``, read from git and loaded beside today's, with
    its issue list ordering (``IssueViewSet.resolve_ordering`` up to issue 13, for ``rev`` before it)."""
    from cwom.api import views

    source = subprocess.run(  # noqa: S603 - a fixed git command on this repository
        ["git", "show", f"{rev}:cwom/api/filters.py"],  # noqa: S607 - git from PATH, on this repository
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    old = types.ModuleType("cwom.api.filters_before")
    old.__package__ = "cwom.api"
    exec(compile(source, f"{rev}:cwom/api/filters.py", "exec"), old.__dict__)  # noqa: S102 - this repository's code

    def resolve_ordering(self: Any, request: Any) -> tuple[str, ...]:
        ordering = views.KindViewSet.resolve_ordering(self, request)
        by_creation = ordering[0].lstrip("-") == "created_at"
        if self.action == "list" and by_creation and old.IssueTagFilter.single_tag(request):
            sign = "-" if ordering[0].startswith("-") else ""
            return (f"{sign}{old.TAG_CREATED_AT}", f"{sign}id")
        return ordering

    return {
        view: (
            old.CwomFilterBackend,
            getattr(old, view.filterset_class.__name__),
            {"resolve_ordering": resolve_ordering} if view is views.IssueViewSet else {},
        )
        for view in viewsets()
    }


class Clock:
    """Time spent inside the filter backend's ``filter_queryset`` (wall and CPU), summed."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def timed(self, backend: type) -> type:
        clock = self

        def filter_queryset(self: Any, request: Any, queryset: Any, view: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return super(timed_backend, self).filter_queryset(request, queryset, view)
            finally:
                clock.wall += time.perf_counter() - wall
                clock.cpu += time.process_time() - cpu

        timed_backend = type(f"Timed{backend.__name__}", (backend,), {"filter_queryset": filter_queryset})
        return timed_backend


@contextlib.contextmanager
def installed(variant: Variant, clock: Clock) -> Iterator[None]:
    saved = {
        view: (view.filter_backends, view.filterset_class, {name: view.__dict__.get(name) for name in extra})
        for view, (_, _, extra) in variant.items()
    }
    try:
        for view, (backend, filterset_class, extra) in variant.items():
            view.filter_backends = [clock.timed(backend), *view.filter_backends[1:]]
            view.filterset_class = filterset_class
            for name, value in extra.items():
                setattr(view, name, value)
        yield
    finally:
        for view, (backends, filterset_class, extra) in saved.items():
            view.filter_backends, view.filterset_class = backends, filterset_class
            for name, value in extra.items():
                if value is None:
                    delattr(view, name)
                else:
                    setattr(view, name, value)


def measure(client: Any, path: str, requests: int, clock: Clock) -> dict[str, float]:
    clock.wall = clock.cpu = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        client.get(path)
    return {
        "cpu": (time.process_time() - cpu) / requests * 1e6,
        "wall": (time.perf_counter() - wall) / requests * 1e6,
        "filter_cpu": clock.cpu / requests * 1e6,
        "filter_wall": clock.wall / requests * 1e6,
    }


def compare(client: Any, label: str, path: str, table: dict[str, Variant], args: Any, clock: Clock) -> dict[str, Any]:
    """Medians over rounds of each variant's figures for one query (after checking they answer alike)."""
    bodies: dict[str, bytes] = {}
    for name, variant in table.items():
        with installed(variant, clock):
            response = client.get(path)
            assert response.status_code == 200, response.content[:300]  # noqa: S101 - the benchmark's own check
            bodies[name] = response.content
            for _ in range(20):  # warm-up: form classes, caches, connection
                client.get(path)
    different = [name for name, body in bodies.items() if body != bodies["shipped"]]
    assert not different, f"{label}: {different} answer differently from shipped"  # noqa: S101
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in table}
    for _ in range(args.rounds):
        for name, variant in table.items():
            with installed(variant, clock):
                rounds[name].append(measure(client, path, args.requests, clock))
    return {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in rounds.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="database URL (default: a new SQLite file in a temp directory)")
    parser.add_argument("--issues", type=int, default=300, help="issues in the generated dataset")
    parser.add_argument("--requests", type=int, default=150, help="requests per query, variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    parser.add_argument("--before", metavar="REV", help="add variant 'before': the filters of git commit REV")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        setup_django(args.db or f"sqlite:///{scratch}/bench.sqlite3")
        from django.db import connection
        from django.test import Client

        from cwom.models import ApiToken

        ids = seed(args.issues)
        _, secret = ApiToken.issue(f"bench-filters-{time.time_ns()}", can_write=False)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        clock = Clock()
        table = variants()
        if args.before:
            table["before"] = before_variant(args.before)
        if args.variants:
            wanted = ["plain", *(name for name in args.variants.split(",") if name != "plain")]
            table = {name: table[name] for name in wanted}
        print(f"database: {connection.vendor}; {args.requests} requests x {args.rounds} rounds per query and variant")
        print("µs per request, median of rounds: CPU (wall); CPU in the filter backend; CPU ratio to plain's")
        results = {}
        for label, path in queries(ids).items():
            medians = results[label] = compare(client, label, path, table, args, clock)
            base = medians["plain"]["cpu"]
            print(f"\n{label}: {path}")
            for name, m in medians.items():
                print(
                    f"  {name:<22} {m['cpu']:7.0f} ({m['wall']:6.0f})   filter {m['filter_cpu']:5.0f}"
                    f"   x{m['cpu'] / base:.3f}"
                )
        names = list(table)
        print(
            "\n| query | "
            + " | ".join(f"{name} µs" for name in names)
            + " | "
            + " | ".join(f"{name} / plain" for name in names if name != "plain")
            + " |"
        )
        print("|---" * (2 * len(names)) + "|")
        for label, medians in results.items():
            base = medians["plain"]["cpu"]
            cells = [f"{medians[name]['cpu']:.0f} ({medians[name]['filter_cpu']:.0f})" for name in names]
            ratios = [f"{medians[name]['cpu'] / base:.2f}" for name in names if name != "plain"]
            print(f"| {label} | " + " | ".join(cells + ratios) + " |")
        print("(each cell: CPU µs per request, in brackets the part spent in the filter backend)")
        if "before" in table and "shipped" in table:
            print(f"\nbefore = {args.before}, after = shipped; CPU µs per request (filter backend's part)")
            print("| query | before µs | after µs | after / before | plain django-filter µs |\n|---|---|---|---|---|")
            for label, medians in results.items():
                before, after, plain = medians["before"], medians["shipped"], medians["plain"]
                print(
                    f"| {label} | {before['cpu']:.0f} ({before['filter_cpu']:.0f}) | {after['cpu']:.0f} "
                    f"({after['filter_cpu']:.0f}) | {after['cpu'] / before['cpu']:.2f} | {plain['cpu']:.0f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
