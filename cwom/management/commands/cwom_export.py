"""``manage.py cwom_export``: every object, link and event as JSON Lines, streamed."""

from __future__ import annotations

import argparse
import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError

from cwom.management.base import CwomCommand, Progress, moment, positive_int
from cwom.portability import OBJECT_ORDER, few_collections
from cwom.portability.exporting import DEFAULT_CHUNK, ExportCounts, Selection, export_lines


def kind_name(value: str) -> str:
    """An argparse type: a kind's name as the contract spells it, in any letter case."""
    for kind in OBJECT_ORDER:
        if value.lower() == str(kind).lower():
            return str(kind)
    raise argparse.ArgumentTypeError(f"{value!r} is not a kind; use one of {', '.join(map(str, OBJECT_ORDER))}")


class Command(CwomCommand):
    help = (
        "Export CWOM objects (in the contract's shape), their links and their events as JSON Lines, in "
        "dependency order, for cwom_import. Rows are read in keyset-paginated chunks, so memory stays flat "
        "however large the database. --since/--until select objects by created_at and events by their time. "
        "Writes to stdout unless --output is given (then to FILE.partial, renamed when complete). "
        "Progress goes to stderr. Exit 0 on success, 1 on failure, 2 on bad arguments."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
        parser.add_argument(
            "--kind",
            action="append",
            type=kind_name,
            metavar="KIND",
            help=f"export only this kind (repeatable; one of {', '.join(map(str, OBJECT_ORDER))}); default: all",
        )
        parser.add_argument("--since", type=moment, metavar="WHEN", help="only objects created at or after WHEN")
        parser.add_argument("--until", type=moment, metavar="WHEN", help="only objects created before WHEN")
        parser.add_argument("--no-events", action="store_true", help="leave the event history out")
        parser.add_argument(
            "--chunk-size", type=positive_int, default=DEFAULT_CHUNK, help=f"rows per query (default {DEFAULT_CHUNK})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = tuple(kind for kind in OBJECT_ORDER if kind in (options["kind"] or OBJECT_ORDER))
        selection = Selection(
            kinds=kinds, since=options["since"], until=options["until"], events=not options["no_events"]
        )
        if selection.since and selection.until and selection.since >= selection.until:
            raise CommandError("--since must be before --until.", returncode=2)
        output = options["output"]
        counts = ExportCounts()
        progress = Progress(self.stderr, "exported", interval=5.0)
        if output in (None, "-"):
            self._write(self.stdout, selection, options, counts, progress)
        else:
            target = Path(output)
            partial = target.with_name(target.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8") as stream:
                    self._write(stream, selection, options, counts, progress)
                os.replace(partial, target)
            except OSError as error:
                partial.unlink(missing_ok=True)
                raise CommandError(f"Cannot write {output}: {error}") from error
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.by_kind.items()) or "nothing"
        progress.finish(f"done: {summary}")

    def _write(
        self, stream: Any, selection: Selection, options: dict[str, Any], counts: ExportCounts, progress: Progress
    ) -> None:
        out: TextIO = getattr(stream, "_out", stream)  # past Django's OutputWrapper: no per-line styling
        with few_collections():
            for line in export_lines(selection, chunk_size=options["chunk_size"], counts=counts):
                out.write(line)
                out.write("\n")
                progress.advance()
        out.flush()
