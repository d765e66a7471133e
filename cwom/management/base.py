"""What the CWOM management commands share: the ``system:cli`` principal, progress on stderr, time options."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from typing import Any, TextIO

from django.core.management.base import BaseCommand, OutputWrapper
from django.utils.dateparse import parse_date, parse_datetime

from cwom import audit

CLI_PRINCIPAL = "system:cli"
CLI_ACTOR = {"actor_kind": "system", "actor_id": "cli", "display": "Management command"}


# The exit status of a command whose reader went away (`| head`): a process killed by SIGPIPE, as shells report it.
PIPE_CLOSED_EXIT = 128 + 13


class CwomCommand(BaseCommand):
    """A management command whose writes are recorded as made by ``system:cli``.

    Exit codes: 0 success, 1 the work found problems (bad lines, mismatches) or failed, 2 bad usage.
    When the reader of its output goes away (``cwom_stats | head``) it stops quietly with
    ``PIPE_CLOSED_EXIT``, like the Unix tools it is piped with: no traceback.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            with audit.acting_as(CLI_PRINCIPAL, CLI_ACTOR):
                output = super().execute(*args, **options)
                self.stdout.flush()  # a closed pipe shows here, not at interpreter exit
                return output
        except BrokenPipeError:
            if getattr(self.stdout, "_out", None) is sys.stdout and sys.stdout is not None:
                # Python flushes sys.stdout again at exit: point it at /dev/null so that flush is silent too.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            raise SystemExit(PIPE_CLOSED_EXIT) from None


def moment(value: str) -> dt.datetime:
    """An argparse type: an ISO-8601 date or timestamp; naive values are taken as UTC."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 date or timestamp")
        parsed = dt.datetime.combine(day, dt.time.min)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def positive_int(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


class Progress:
    """Progress of long work on stderr: a line at most every ``interval`` seconds, and one at the end.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) each report is its own line.
    """

    def __init__(
        self, stream: TextIO | OutputWrapper, label: str, *, total: int | None = None, interval: float = 2.0
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.interval = interval
        self.count = 0
        self.started = time.monotonic()
        self._last = self.started
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        if self._tty:
            self.interval = min(interval, 0.2)

    @property
    def rate(self) -> float:
        """Items per second so far."""
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1, note: str = "") -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit(note)

    def finish(self, note: str = "") -> None:
        self._emit(note)
        if self._tty:
            self._write("\n")

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()

    def _emit(self, note: str) -> None:
        done = f"{self.count}" if self.total is None else f"{self.count}/{self.total}"
        bar = ""
        if self.total:
            filled = int(20 * min(self.count, self.total) / self.total)
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        text = f"{self.label}: {bar}{done} ({self.rate:,.0f}/s){' ' + note if note else ''}"
        self._write("\r\033[K" + text if self._tty else text + "\n")
