"""``manage.py cwom_import``: load a cwom_export file, preserving ids, links, timestamps and events.

Exit codes and messages, case by case: docs/operations.md (a test holds the two to each other).
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError

from cwom.management.base import CwomCommand, Progress, positive_int
from cwom.portability.importing import DEFAULT_BATCH, Importer, ImportResult, UnsupportedFormat

SHOWN_PROBLEMS = 100


class Command(CwomCommand):
    help = (
        "Import a file written by cwom_export (JSON Lines; '-' reads stdin). Ids, timestamps, links and events "
        "are preserved; every object is validated by the model's rules. Idempotent: what is already here "
        "unchanged is skipped, what differs is reported and never overwritten. Lines are applied in chunks of "
        "--batch-size, each table of a chunk written at once in one transaction (the database's constraints and "
        "triggers check every row); a chunk with a bad line is applied again line by line, each line in its own "
        "savepoint, so a bad line is reported with its line number and skipped while the chunk's good lines land. "
        "The file must be whole: line 1 its CwomExport header, the last line its CwomExportEnd trailer, whose "
        "counts must match the lines read; a file without it was cut short, and what it held is imported and "
        "reported as INCOMPLETE. With --atomic nothing is written unless the file is whole and every line is good. "
        "--dry-run checks everything, writes nothing, and ends as the import would. "
        "Exit 0 when the whole file was imported (with --dry-run: would be); "
        "1 when some line was refused or the file is incomplete (cut short, or not the lines its trailer counts); "
        "2 when nothing was imported because the file cannot be read or is not a CWOM export (empty, line 1 not "
        "the CwomExport header of format version 1, not UTF-8 or not JSON Lines). "
        "Every case, with its message: docs/operations.md."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help="a cwom_export file, or - for stdin")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--atomic", action="store_true", help="all or nothing: refuse the file if any line is bad or it is cut"
        )
        mode.add_argument(
            "--dry-run", action="store_true", help="check every line, roll everything back, exit as the import would"
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH,
            help=f"lines per chunk, one transaction each without --atomic (default {DEFAULT_BATCH})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        progress = Progress(self.stderr, "imported lines", interval=5.0)
        importer = Importer(batch_size=options["batch_size"], on_line=lambda _n: progress.advance())
        try:
            result = importer.load(self._lines(options["file"]), atomic=options["atomic"], dry_run=options["dry_run"])
        except UnsupportedFormat as error:
            raise CommandError(f"{options['file']}: {error} Nothing was imported.", returncode=2) from error
        progress.finish()
        self._report(result, options)

    def _lines(self, path: str) -> Iterator[str | bytes]:
        """The file's lines as bytes: the importer decodes each, so a line that is not UTF-8 is named."""
        if path == "-":
            yield from getattr(sys.stdin, "buffer", sys.stdin)
            return
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below, read lazily
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.", returncode=2) from error
        with stream:
            yield from stream

    def _report(self, result: ImportResult, options: dict[str, Any]) -> None:
        for problem in result.problems[:SHOWN_PROBLEMS]:
            self.stderr.write(str(problem))
        if result.problem_count > SHOWN_PROBLEMS:
            self.stderr.write(f"... and {result.problem_count - SHOWN_PROBLEMS} more refused lines.")
        if result.rolled_back:
            self.stdout.write("Checked, then rolled back:")
        for kind in sorted({*result.created, *result.unchanged}):
            self.stdout.write(f"  {kind}: {result.created[kind]} created, {result.unchanged[kind]} unchanged")
        created, unchanged = sum(result.created.values()), sum(result.unchanged.values())
        if result.clean:
            if options["dry_run"]:
                self.stdout.write(
                    f"Dry run: {result.lines} lines would import cleanly ({created} new records). Nothing was written."
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Imported {result.lines} lines: {created} records created, {unchanged} already here unchanged."
                    )
                )
            return
        why = [f"{result.problem_count} of {result.lines} lines are bad"] if result.problem_count else []
        if result.incomplete:
            why.append(f"INCOMPLETE: {result.incomplete}")
        if result.rolled_back:
            done = "dry run" if options["dry_run"] else "atomic import refused"
            raise CommandError(f"{'; '.join(why)}; {done}: nothing was written.", returncode=1)
        summary = (
            f"{result.lines} lines read: {created} records created, {unchanged} already here unchanged, "
            f"{result.problem_count} lines refused"
        )
        if result.incomplete:
            raise CommandError(
                f"INCOMPLETE import: {result.incomplete}. What the file held was imported and committed ({summary}). "
                "Import a whole export to complete the restore (an import is idempotent).",
                returncode=1,
            )
        raise CommandError(f"{summary} (see above).", returncode=1)
