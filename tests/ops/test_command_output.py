"""What the operator commands print: kinds as typed, durations for people, a quiet stop when the reader leaves."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cwom import writes
from cwom.humanize import duration
from cwom.management.base import PIPE_CLOSED_EXIT, CwomCommand
from tests import factories
from tests.ops.helpers import run

ROOT = Path(__file__).resolve().parents[2]


# --- --kind --------------------------------------------------------------------------------------------
def test_a_bad_kind_is_refused_naming_the_values_to_type(db: None) -> None:
    with pytest.raises(CommandError) as refused:
        run("cwom_export", "--kind", "Runs")
    message = str(refused.value)
    assert "'Runs' is not a kind; use one of Repo, DoctrineRef, ConstraintSnapshot, Issue" in message
    assert "Kind." not in message


def test_a_kind_is_taken_in_any_letter_case(db: None) -> None:
    factories.repo(slug="only-repo")
    lines = run("cwom_export", "--kind", "repo", "--no-events")[0].splitlines()
    assert [line.split('"kind":"')[1].split('"')[0] for line in lines] == ["CwomExport", "Repo", "CwomExportEnd"]


# --- durations -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0 ms"), (0.0042, "4 ms"), (0.999, "999 ms"), (1.0, "1.0 s"), (59.94, "59.9 s"), (61, "1 min 01 s")]
    + [(3600, "1 h 00 min"), (7620.4, "2 h 07 min")],
)
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_stats_print_a_sub_second_run_in_milliseconds(db: None) -> None:
    run_obj = factories.run()
    writes.transition(run_obj, "running")
    writes.transition(writes.reload(run_obj), "done")
    text = run("cwom_stats")[0]
    assert " ms, p95 " in text and "p50 0.0s" not in text


# --- a closed pipe ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose database is a migrated SQLite file holding the demo chain."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('pipe')}/cwom.sqlite3"}
    for command in (["migrate", "-v0"], ["cwom_demo", "-v0"]):
        subprocess.run(  # noqa: S603 - this interpreter running manage.py with fixed arguments
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
        )
    return env


@pytest.mark.parametrize("command", [["cwom_export"], ["cwom_stats"], ["cwom_token", "list"]])
def test_a_command_whose_reader_goes_away_stops_quietly(database_file: dict[str, str], command: list[str]) -> None:
    process = subprocess.Popen(  # noqa: S603 - this interpreter running manage.py with fixed arguments
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=database_file,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head -c 0`: the reader hangs up before the first line is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == PIPE_CLOSED_EXIT
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_a_closed_output_stream_ends_the_command_with_the_sigpipe_status(db: None) -> None:
    class HungUp(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    factories.repo()
    with pytest.raises(SystemExit) as stopped:
        call_command("cwom_export", stdout=HungUp(), stderr=io.StringIO())
    assert stopped.value.code == PIPE_CLOSED_EXIT


# --- the README's list ----------------------------------------------------------------------------------
def test_the_readme_lists_every_command_and_each_states_its_exit_codes() -> None:
    from django.core.management import get_commands, load_command_class

    ours = {name: app for name, app in get_commands().items() if name.startswith("cwom_")}
    assert {"cwom_enqueue", "cwom_reap", "cwom_jsonschema", "cwom_import"} <= set(ours)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = {line.split("`")[1].split()[0] for line in readme.splitlines() if line.startswith("| `cwom_")}
    assert listed == set(ours)
    for name, app in ours.items():
        command = load_command_class(app, name)
        assert isinstance(command, CwomCommand), name  # quiet on a closed pipe
        assert "Exit 0" in command.help, name
