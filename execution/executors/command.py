"""The ``command`` executor: one allowlisted program, no shell, a scratch directory, a timeout.

Disabled unless an operator sets ``CWOM_COMMAND_EXECUTOR_ENABLED=1`` and names the programs in
``CWOM_COMMAND_ALLOWLIST``. The program runs in a fresh scratch directory holding ``bundle.json``
(the run's input bundle), with a scrubbed environment (a fixed PATH, HOME = the scratch directory,
``CWOM_RUN_ID``, ``CWOM_BUNDLE``, ``CWOM_OUTPUT_DIR``), in its own process group so a timeout or a
cancel kills everything it started. Its output (stdout + stderr) goes to the run's log, capped.
Regular files it leaves in ``$CWOM_OUTPUT_DIR`` become artifacts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from cwom.enums import FailureCategory

from ..config import conf
from .base import (
    ArtifactSpec,
    ExecutionContext,
    ExecutionResult,
    Executor,
    ExecutorError,
    config_error,
)

MAX_ARGS = 100
MAX_ARG_LENGTH = 4096
MAX_OUTPUT_FILES = 20
TEXT_SUFFIXES = {".txt": "text/plain", ".md": "text/markdown", ".json": "application/json", ".log": "text/plain"}


def command_settings() -> dict[str, Any]:
    return dict(conf()["command"])


def resolve_program(program: str, search_path: str) -> str | None:
    """``program`` as an absolute, symlink-free path (names are looked up on ``search_path``)."""
    if os.path.isabs(program):
        found = program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    else:
        if os.sep in program:
            return None  # relative paths would depend on the scratch directory
        found = shutil.which(program, path=search_path)
    return os.path.realpath(found) if found else None


def allowed_program(program: str) -> str:
    """The absolute path to run for ``program``, or ExecutorError(policy) if it is not allowlisted."""
    conf = command_settings()
    resolved = resolve_program(program, conf["path"])
    allowed = {resolve_program(entry, conf["path"]) for entry in conf["allowlist"]}
    allowed.discard(None)
    if resolved is None or resolved not in allowed:
        raise ExecutorError(f"Program {program!r} is not on the command allowlist.", FailureCategory.POLICY)
    return resolved


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping the first ``cap`` bytes and counting the rest (so the child never blocks)."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.kept = bytearray()
        self.dropped = 0

    def run(self) -> None:
        while chunk := self.stream.read(65536):
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            self.dropped += max(len(chunk) - max(room, 0), 0)
        self.stream.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """TERM the process group, then KILL what is left after a short grace."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


class CommandExecutor(Executor):
    """Runs ``config["argv"]`` (argv[0] allowlisted) with a timeout and capped output.

    Config: ``argv`` (list of strings, required), ``timeout_seconds`` (number, optional, capped by the
    setting and the run's time limit), ``failure_category`` for a non-zero exit (default ``runtime``).
    """

    name = "command"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "argv": {
                "type": "array",
                "description": "The program (on the operator's allowlist), then its arguments.",
                "items": {"type": "string", "maxLength": MAX_ARG_LENGTH, "pattern": "^[^\\u0000]*$"},
                "minItems": 1,
                "maxItems": MAX_ARGS,
            },
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            "failure_category": {"type": "string", "enum": list(FailureCategory.values)},
        },
        "required": ["argv"],
        "additionalProperties": False,
    }

    @classmethod
    def check_enabled(cls) -> None:
        if not command_settings()["enabled"]:
            raise ExecutorError(
                "The command executor is disabled (an operator enables it with CWOM_COMMAND_EXECUTOR_ENABLED=1).",
                FailureCategory.POLICY,
            )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - {"argv", "timeout_seconds", "failure_category"})
        if unknown:
            raise config_error(unknown[0], "Unknown command executor option.", "unknown_field")
        argv = config.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise config_error("argv", "A non-empty list of strings: the program, then its arguments.")
        if len(argv) > MAX_ARGS or any(len(a) > MAX_ARG_LENGTH or "\x00" in a for a in argv):
            raise config_error("argv", f"At most {MAX_ARGS} arguments of {MAX_ARG_LENGTH} characters, no NUL.")
        timeout = config.get("timeout_seconds")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise config_error("timeout_seconds", "A positive number of seconds.")
        category = config.get("failure_category", FailureCategory.RUNTIME)
        if category not in FailureCategory.values:
            raise config_error(
                "failure_category", f"One of: {', '.join(FailureCategory.values)}.", code="invalid_choice"
            )
        try:
            allowed_program(argv[0])
        except ExecutorError as error:
            raise config_error("argv.0", error.message, "not_allowed") from None

    def execute(self, bundle: Mapping[str, Any], ctx: ExecutionContext) -> ExecutionResult:
        self.check_enabled()
        conf = command_settings()
        argv = list(self.config["argv"])
        program = allowed_program(argv[0])
        timeout = min(float(self.config.get("timeout_seconds") or conf["timeout_seconds"]), conf["timeout_seconds"])
        timeout = max(min(timeout, ctx.time_left()), 0.1)
        Path(conf["scratch_root"]).mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"run-{ctx.run_id}-{ctx.attempt}-", dir=conf["scratch_root"]))
        try:
            return self._run(program, argv, scratch, timeout, bundle, ctx, conf)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(
        self,
        program: str,
        argv: list[str],
        scratch: Path,
        timeout: float,
        bundle: Mapping[str, Any],
        ctx: ExecutionContext,
        conf: dict[str, Any],
    ) -> ExecutionResult:
        bundle_path = scratch / "bundle.json"
        bundle_path.write_text(json.dumps(bundle))
        output_dir = scratch / "out"
        output_dir.mkdir()
        env = {
            "PATH": conf["path"],
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "LANG": "C.UTF-8",
            "CWOM_RUN_ID": ctx.run_id,
            "CWOM_ATTEMPT": str(ctx.attempt),
            "CWOM_BUNDLE": str(bundle_path),
            "CWOM_OUTPUT_DIR": str(output_dir),
        }
        ctx.trace("command.start", argv=argv, timeout_s=round(timeout, 3))
        ctx.log(f"command: {' '.join(argv)} (timeout {timeout:.1f}s)")
        started = time.monotonic()
        proc = subprocess.Popen(
            [argv[0], *argv[1:]],
            executable=program,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            shell=False,
        )
        assert proc.stdout is not None  # noqa: S101 - stdout=PIPE above
        reader = _CappedReader(proc.stdout, int(conf["output_max_bytes"]))
        reader.start()
        timed_out = False
        try:
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - started > timeout:
                    timed_out = True
                    _kill_group(proc)
                    break
                ctx.checkpoint()
        except BaseException:
            # Cancel, fence, the soft time limit or anything else: nothing we started may outlive us.
            _kill_group(proc)
            reader.join(timeout=5)
            self._log_output(reader, ctx)
            raise
        reader.join(timeout=5)
        elapsed = round(time.monotonic() - started, 3)
        self._log_output(reader, ctx)
        ctx.trace("command.exit", returncode=proc.returncode, elapsed_s=elapsed, timed_out=timed_out)
        if timed_out:
            raise ExecutorError(f"Command timed out after {timeout:.1f}s and was killed.", FailureCategory.RUNTIME)
        artifacts = self._collect_outputs(output_dir)
        if proc.returncode != 0:
            category = self.config.get("failure_category", FailureCategory.RUNTIME)
            return ExecutionResult(
                summary=f"{Path(argv[0]).name} exited with status {proc.returncode}.",
                decision_log=[f"command exited {proc.returncode}"],
                cost_compute_s=elapsed,
                artifacts=artifacts,
                failure_category=category,
                failure_message=f"Command {argv[0]!r} exited with status {proc.returncode}.",
            )
        return ExecutionResult(
            summary=f"{Path(argv[0]).name} exited with status 0.",
            decision_log=["command exited 0"],
            cost_compute_s=elapsed,
            artifacts=artifacts,
        )

    @staticmethod
    def _log_output(reader: _CappedReader, ctx: ExecutionContext) -> None:
        text = bytes(reader.kept).decode("utf-8", errors="replace")
        if text:
            ctx.log("--- command output ---\n" + text.rstrip("\n"))
        if reader.dropped:
            ctx.log(f"--- {reader.dropped} more bytes of output dropped (cap {reader.cap}) ---")

    @staticmethod
    def _collect_outputs(output_dir: Path) -> list[ArtifactSpec]:
        cap = int(conf()["artifact_max_bytes"])
        found: list[ArtifactSpec] = []
        for path in sorted(output_dir.iterdir())[:MAX_OUTPUT_FILES]:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > cap:
                continue
            media_type = TEXT_SUFFIXES.get(path.suffix.lower(), "application/octet-stream")
            kind = "report" if path.suffix.lower() in TEXT_SUFFIXES else "binary"
            found.append(ArtifactSpec(type=kind, title=path.name, content=path.read_bytes(), media_type=media_type))
        return found
