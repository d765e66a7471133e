"""cwom_import's verdict on whole, damaged, cut and foreign files: what is written, the exit code, the message.

The cases are the rows of the table in docs/operations.md. The tests read that table: every row has a
case here and every case a row, and each row's written column, exit code and message excerpts are
checked against the command. The doc cannot drift from the behaviour, nor the behaviour from the doc.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from cwom.models import Event, ObjectIndex, Run
from cwom.portability.importing import Importer, UnsupportedFormat
from tests.ops.helpers import export_text, wipe_cwom_tables

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"


# --- the table ------------------------------------------------------------------------------------------
class Row(NamedTuple):
    case: str
    written: str  # everything, nothing or part
    exit: int
    says: list[str]  # message excerpts: N a number, … any text


def table() -> dict[str, Row]:
    """The rows of the table under '## Cases' in docs/operations.md, by case id."""
    section = DOC.read_text(encoding="utf-8").split("\n## Cases\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, Row] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 5 or not cells[0].startswith("`"):
            continue
        case, _input, written, code, message = cells
        kind = re.match(r"\*\*(everything|nothing|part)\*\*", written)
        assert kind, f"{case}: the written column starts with **everything**, **nothing** or **part**"
        assert case.strip("`") not in rows, f"{case} is in the table twice"
        rows[case.strip("`")] = Row(case.strip("`"), kind.group(1), int(code), re.findall(r"`([^`]+)`", message))
    return rows


def pattern(excerpt: str) -> re.Pattern[str]:
    """A message excerpt of the table as a regular expression: N a number, … any text."""
    parts = [
        r"\d+" if part == "N" else ".*?" if part == "…" else re.escape(part) for part in re.split(r"(\bN\b|…)", excerpt)
    ]
    return re.compile("".join(parts))


# --- the cases --------------------------------------------------------------------------------------------
class Built(NamedTuple):
    data: bytes  # the file
    landed: list[str]  # the export's lines that a plain (not atomic, not dry) import writes
    says: tuple[str, ...] = ()  # exact message fragments, beyond the table's excerpts


def text(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def body(lines: list[str]) -> list[str]:
    """An export's record lines: without its header and trailer."""
    return lines[1:-1]


def events(lines: list[str]) -> list[int]:
    """The indexes of the export's Event lines (the last section: a cut there leaves every object whole)."""
    return [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "Event"]


def whole(lines: list[str]) -> Built:
    return Built(text(lines), body(lines))


def refused_line(lines: list[str]) -> Built:
    at = events(lines)[3]
    bad = json.loads(lines[at]) | {"action": "teleport"}
    changed = [*lines[:at], json.dumps(bad), *lines[at + 1 :]]
    return Built(text(changed), [line for i, line in enumerate(body(lines), 1) if i != at], (f"line {at + 1}: Event",))


def stray_line(lines: list[str]) -> Built:
    at = events(lines)[3]
    return Built(text([*lines[:at], "not json at all", *lines[at:]]), body(lines), (f"line {at + 1}: ?",))


def garbled_line(lines: list[str]) -> Built:
    at = events(lines)[3]
    damaged = [*lines[:at], lines[at][len(lines[at]) // 2 :], *lines[at + 1 :]]
    return Built(text(damaged), [line for i, line in enumerate(body(lines), 1) if i != at], (f"line {at + 1}: ?",))


def not_utf8_line(lines: list[str]) -> Built:
    at = events(lines)[3]
    data = text(lines[:at]) + b"\xff" + lines[at].encode()[1:] + b"\n" + text(lines[at + 1 :])
    return Built(data, [line for i, line in enumerate(body(lines), 1) if i != at], (f"line {at + 1}: ?",))


def lines_lost(lines: list[str]) -> Built:
    at = events(lines)[3]
    kept = [*lines[:at], *lines[at + 1 :]]
    return Built(text(kept), body(kept), ("Event 21 in the trailer, 20 in the file",))


def cut_short(lines: list[str]) -> Built:
    cut = events(lines)[-4]  # lines[:cut] are the file's lines 1..cut
    return Built(text(lines[:cut]), lines[1:cut], (f"the file ends at line {cut} without",))


def cut_mid_line(lines: list[str]) -> Built:
    cut = events(lines)[-4]
    data = text(lines[:cut]) + lines[cut][: len(lines[cut]) // 2].encode()  # no newline: where the copy stopped
    return Built(data, lines[1:cut], (f"line {cut + 1}: ?: not a JSON document", f"ends at line {cut + 1} without"))


def trailer_without_counts(lines: list[str]) -> Built:
    return Built(text([*lines[:-1], '{"kind":"CwomExportEnd"}']), body(lines))


def after_trailer(lines: list[str]) -> Built:
    return Built(text(lines + lines), body(lines), (f"line {len(lines) + 1}: ?: after the CwomExportEnd trailer",))


def second_header(lines: list[str]) -> Built:
    return Built(text([*lines[:-1], lines[0], lines[-1]]), body(lines), (f"line {len(lines)}: CwomExport",))


def empty(lines: list[str]) -> Built:
    return Built(b"", [])


def no_header(lines: list[str]) -> Built:
    return Built(text(lines[1:]), [])


def other_version(lines: list[str]) -> Built:
    header = json.loads(lines[0]) | {"format_version": 99}
    return Built(text([json.dumps(header), *lines[1:]]), [])


def not_json_lines(lines: list[str]) -> Built:
    records = [record for record in map(json.loads, body(lines)) if "id" in record]
    return Built(text(["id,kind,title", *(f"{r['id']},{r['kind']},{r.get('title', '')}" for r in records)]), [])


def binary(lines: list[str]) -> Built:
    return Built(gzip.compress(text(lines)), [])


def no_file(lines: list[str]) -> Built:
    return Built(b"", [])


@dataclass(frozen=True)
class Case:
    build: Callable[[list[str]], Built]
    args: tuple[str, ...] = ()
    missing: bool = False  # the path names no file


CASES: dict[str, Case] = {
    "whole": Case(whole),
    "whole-dry-run": Case(whole, ("--dry-run",)),
    "refused-line": Case(refused_line),
    "refused-line-atomic": Case(refused_line, ("--atomic",)),
    "stray-line": Case(stray_line),
    "garbled-line": Case(garbled_line),
    "not-utf8-line": Case(not_utf8_line),
    "lines-lost": Case(lines_lost),
    "cut-short": Case(cut_short),
    "cut-mid-line": Case(cut_mid_line),
    "cut-short-atomic": Case(cut_short, ("--atomic",)),
    "cut-short-dry-run": Case(cut_short, ("--dry-run",)),
    "trailer-without-counts": Case(trailer_without_counts),
    "after-trailer": Case(after_trailer),
    "second-header": Case(second_header),
    "empty": Case(empty),
    "no-header": Case(no_header),
    "other-version": Case(other_version),
    "not-json-lines": Case(not_json_lines),
    "binary": Case(binary),
    "unreadable": Case(no_file, missing=True),
}
ROWS = table()


class Outcome(NamedTuple):
    exit: int
    output: str  # stdout, stderr and the CommandError's message


def cwom_import(path: Path, *args: str) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("cwom_import", str(path), *args, stdout=out, stderr=err)
    except CommandError as error:
        return Outcome(error.returncode, f"{out.getvalue()}{err.getvalue()}CommandError: {error}\n")
    return Outcome(0, out.getvalue() + err.getvalue())


@pytest.fixture
def export(demo: Run) -> Iterator[list[str]]:
    """The demo's export, its lines; the database emptied, as for a restore."""
    lines = export_text().splitlines()
    assert len(events(lines)) == 21  # the cases cut and damage lines among these
    wipe_cwom_tables()
    yield lines


def prepare(case: Case, lines: list[str], tmp_path: Path) -> tuple[Path, Built]:
    built = case.build(lines)
    path = tmp_path / "export.jsonl"
    if not case.missing:
        path.write_bytes(built.data)
    else:
        path = tmp_path / "no-such-export.jsonl"
    return path, built


def written() -> list[str]:
    """What the database holds now, as its export's record lines."""
    return body(export_text().splitlines()) if ObjectIndex.objects.exists() or Event.objects.exists() else []


# --- the tests ----------------------------------------------------------------------------------------------
def test_the_table_in_docs_operations_has_a_case_for_each_row_and_a_row_for_each_case() -> None:
    assert list(ROWS) == list(CASES)
    assert {row.exit for row in ROWS.values()} == {0, 1, 2}
    assert all(row.says for row in ROWS.values())


@pytest.mark.parametrize("name", list(CASES))
def test_each_row_of_the_table_holds(name: str, export: list[str], tmp_path: Path) -> None:
    row, case = ROWS[name], CASES[name]
    path, built = prepare(case, export, tmp_path)
    outcome = cwom_import(path, *case.args)
    assert outcome.exit == row.exit, outcome.output
    for excerpt in row.says:
        assert pattern(excerpt).search(outcome.output), f"{excerpt!r} not in:\n{outcome.output}"
    for fragment in built.says:
        assert fragment in outcome.output, f"{fragment!r} not in:\n{outcome.output}"
    assert ("INCOMPLETE" in outcome.output) == any("INCOMPLETE" in excerpt for excerpt in row.says), outcome.output
    assert "Traceback" not in outcome.output
    # What is written: a dry run nothing, an atomic import all or nothing, a plain import what the case says.
    rolled_back = "--dry-run" in case.args or ("--atomic" in case.args and outcome.exit != 0)
    landed = [] if rolled_back else built.landed
    assert written() == landed
    if row.written == "everything":
        assert landed == body(export)
    elif row.written == "nothing":
        assert landed == []
    else:
        assert landed and landed != body(export)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if not case.args])
def test_a_dry_run_and_an_atomic_import_end_as_the_import_does(name: str, export: list[str], tmp_path: Path) -> None:
    path, _built = prepare(CASES[name], export, tmp_path)
    dry = cwom_import(path, "--dry-run")
    assert written() == []
    atomic = cwom_import(path, "--atomic")
    assert written() == (body(export) if atomic.exit == 0 else [])
    wipe_cwom_tables()
    plain = cwom_import(path)
    assert dry.exit == atomic.exit == plain.exit == ROWS[name].exit


def test_the_help_documents_the_exit_codes_of_the_table() -> None:
    help_text = load_command_class("cwom", "cwom_import").help
    documented = re.findall(r"(?:Exit |; )(\d) when", help_text)
    assert documented == ["0", "1", "2"]
    assert {str(row.exit) for row in ROWS.values()} == set(documented)


def test_a_read_error_in_the_middle_makes_the_import_incomplete(export: list[str]) -> None:
    def failing() -> Iterator[str]:
        yield from export[:-5]
        raise OSError(5, "Input/output error")

    result = Importer().load(failing())
    assert result.incomplete == f"reading the file failed after line {len(export) - 5} (Input/output error)"
    assert written() == export[1:-5]
    assert Importer().load(failing(), atomic=True).rolled_back


def test_a_read_error_on_line_1_is_an_unreadable_file(db: None) -> None:
    def failing() -> Iterator[str]:
        raise OSError(5, "Input/output error")
        yield ""

    with pytest.raises(UnsupportedFormat, match="line 1: the file cannot be read"):
        Importer().load(failing())


def test_the_bulk_and_the_line_by_line_engines_give_one_verdict(export: list[str], tmp_path: Path) -> None:
    # --batch-size 1: every line is its own chunk; a bad one is replayed alone through the line engine.
    for name in ("whole", "refused-line", "lines-lost", "cut-short"):
        path, built = prepare(CASES[name], export, tmp_path)
        wipe_cwom_tables()
        outcome = cwom_import(path, "--batch-size", "1")
        assert outcome.exit == ROWS[name].exit, (name, outcome.output)
        assert ("INCOMPLETE" in outcome.output) == (name in ("lines-lost", "cut-short")), (name, outcome.output)
        assert written() == built.landed, name


def test_stdin_is_read_line_by_line_as_bytes(export: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(cut_short(export).data)))
    outcome = cwom_import(Path("-"))
    assert outcome.exit == 1 and "INCOMPLETE import" in outcome.output


def test_on_the_command_line_a_foreign_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    env: dict[str, Any] = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cwom_site.settings_test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",  # never opened: line 1 decides
    }
    command = [sys.executable, "manage.py", "cwom_import", str(path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "line 1: expected the CwomExport header, got bytes that are not UTF-8 text" in done.stderr
    assert "Nothing was imported." in done.stderr
