"""``manage.py cwom_import``: load a cwom_export file, preserving ids, links, timestamps and events."""

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
        "With --atomic the whole file is refused if any line is bad. --dry-run checks everything "
        "and writes nothing. Exit 0 when every line applied, 1 when some line was refused, 2 when the file "
        "cannot be read or is not a CWOM export."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help="a cwom_export file, or - for stdin")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--atomic", action="store_true", help="all or nothing: refuse the file if any line is bad")
        mode.add_argument("--dry-run", action="store_true", help="check every line, then roll everything back")
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
            raise CommandError(f"{error} Nothing was imported.", returncode=2) from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{options['file']} is not UTF-8 text ({error}).", returncode=2) from error
        progress.finish()
        self._report(result, options)

    def _lines(self, path: str) -> Iterator[str]:
        if path == "-":
            yield from sys.stdin
            return
        try:
            stream = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, read lazily
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.", returncode=2) from error
        with stream:
            yield from stream

    def _report(self, result: ImportResult, options: dict[str, Any]) -> None:
        for problem in result.problems[:SHOWN_PROBLEMS]:
            self.stderr.write(str(problem))
        if result.problem_count > SHOWN_PROBLEMS:
            self.stderr.write(f"... and {result.problem_count - SHOWN_PROBLEMS} more refused lines.")
        if not result.saw_trailer:
            self.stderr.write(self.style.WARNING("The file has no CwomExportEnd line: it may have been cut short."))
        kinds = sorted({*result.created, *result.unchanged})
        for kind in kinds:
            self.stdout.write(f"  {kind}: {result.created[kind]} created, {result.unchanged[kind]} unchanged")
        created, unchanged = sum(result.created.values()), sum(result.unchanged.values())
        if options["dry_run"] and not result.problem_count:
            self.stdout.write(
                f"Dry run: {result.lines} lines would import cleanly ({created} new records). Nothing was written."
            )
            return
        if result.rolled_back:
            raise CommandError(
                f"{result.problem_count} of {result.lines} lines are bad; "
                f"{'dry run' if options['dry_run'] else 'atomic import refused'}: nothing was written.",
                returncode=1,
            )
        summary = f"{result.lines} lines: {created} records created, {unchanged} already here unchanged"
        if result.problem_count:
            raise CommandError(f"{summary}, {result.problem_count} lines refused (see above).", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"Imported {summary}."))
