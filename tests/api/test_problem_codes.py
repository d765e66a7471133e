"""The problem-code table cannot drift: every code the service can answer is in ``PROBLEM_CODES`` (found by
reading the source), every entry is answered somewhere, and ``docs/api.md`` shows exactly the table."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from rest_framework import exceptions

from cwom import db_guards
from cwom.api.errors import PROBLEM_CODES, STATUS_PRECEDENCE, problem_code_table, status_of
from cwom_site import gunicorn_problems

ROOT = Path(__file__).resolve().parents[2]
# What the API can answer with: the kernel, the API and the execution app (not the importer's own report,
# the admin or the commands, which never answer an HTTP request).
SOURCES = [
    path
    for folder in ("cwom", "execution")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if not {"migrations", "management", "portability", "admin"} & set(path.relative_to(ROOT).parts)
]
# Callables that take a problem code as a positional argument, and where.
CODE_ARGUMENT = {"Problem": 1, "BadRequest": 1, "add": 1, "empty_parameter": 1, "_error": 2, "config_error": 2}
CODE_NAMES = {"code", "violation_error_code", "default_code"}
SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _constant(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def raised_codes(path: Path) -> set[str]:
    """The problem codes ``path`` writes: ``code=``/``violation_error_code=`` arguments, ``code``/``default_code``
    assignments, the code argument of the helpers above, and in validation.py the codes its explanations give."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            found |= {c for k in node.keywords if k.arg in CODE_NAMES and (c := _constant(k.value))}
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            index = CODE_ARGUMENT.get(name)
            if index is not None and len(node.args) > index and (code := _constant(node.args[index])):
                found.add(code)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in CODE_NAMES for t in targets) and (code := _constant(node.value)):
                found.add(code)
        elif path.name == "validation.py" and isinstance(node, ast.Tuple) and node.elts:
            # (code, message) and (path, code, message) answers of the schema explanations
            for element in node.elts[:2]:
                if (code := _constant(element)) and SNAKE.match(code) and code in _SCHEMA_CODES_HINT:
                    found.add(code)
    return {code for code in found if SNAKE.match(code)}


# The schema explanations' codes (validation.py returns them in tuples among other strings).
_SCHEMA_CODES_HINT = {
    "invalid",
    "invalid_type",
    "invalid_choice",
    "invalid_id",
    "empty_value",
    "too_long",
    "too_short",
    "too_many",
    "too_few",
    "out_of_range",
    "invalid_datetime",
    "unexpected_field",
    "required",
}

GUARD_CODES = {rule[4] for rule in [*db_guards.RULES, db_guards.PARENT_CYCLE, *db_guards.rules_0006("sqlite")]}
# Codes of DRF's own exceptions the handler passes on (parse_error is renamed malformed_body).
DRF_CODES = {
    exc.default_code
    for exc in (
        exceptions.NotAuthenticated,
        exceptions.AuthenticationFailed,
        exceptions.PermissionDenied,
        exceptions.NotFound,
        exceptions.MethodNotAllowed,
        exceptions.NotAcceptable,
        exceptions.UnsupportedMediaType,
        exceptions.Throttled,
    )
}


def every_raised_code() -> set[str]:
    return set().union(*(raised_codes(path) for path in SOURCES)) | GUARD_CODES


def test_every_code_the_service_raises_is_in_the_table() -> None:
    missing = every_raised_code() - set(PROBLEM_CODES)
    assert not missing, f"add these to cwom.api.errors.PROBLEM_CODES: {sorted(missing)}"


def test_every_code_of_the_database_guards_is_in_the_table_with_the_model_layers_status() -> None:
    for code in GUARD_CODES:
        assert code in PROBLEM_CODES, code


def test_drf_and_gunicorn_codes_are_in_the_table_with_their_status() -> None:
    assert DRF_CODES <= set(PROBLEM_CODES)
    for status, code in gunicorn_problems.CODES.items():
        assert PROBLEM_CODES[code].status == status, code


def test_every_entry_of_the_table_is_answered_somewhere() -> None:
    text = "\n".join(path.read_text() for path in SOURCES)
    handled = DRF_CODES | set(gunicorn_problems.CODES.values()) | {"blank", "null", "max_length"}
    unused = {code for code in PROBLEM_CODES if code not in handled and f'"{code}"' not in text}
    assert not unused, f"no source answers these: {sorted(unused)}"


def test_every_status_of_the_table_is_a_client_or_server_error_and_refusals_have_a_precedence() -> None:
    assert {entry.status for entry in PROBLEM_CODES.values()} >= set(STATUS_PRECEDENCE)
    assert all(400 <= entry.status < 600 and entry.meaning.endswith(".") for entry in PROBLEM_CODES.values())
    assert status_of("no_such_code") == 400 and status_of("sealed") == 409


def test_docs_api_md_shows_exactly_the_table() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    start, end = "<!-- problem-codes:start -->\n", "<!-- problem-codes:end -->"
    assert start in text and end in text
    shown = text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"
    assert shown == problem_code_table(), (
        "docs/api.md's problem-code table differs from cwom.api.errors.PROBLEM_CODES; replace it with:\n"
        + problem_code_table()
    )


def test_docs_api_md_says_how_many_codes_there_are() -> None:
    assert f"{len(PROBLEM_CODES)} codes" in (ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize(("status", "code"), sorted(gunicorn_problems.CODES.items()))
def test_gunicorns_own_errors_are_problem_documents(status: int, code: str) -> None:
    answer = gunicorn_problems.problem_bytes(status, "Reason", "what happened")
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(f"HTTP/1.1 {status} Reason\r\n".encode())
    assert b"Content-Type: application/problem+json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "type": f"https://cwom.dev/problems/{code}",
        "title": "Reason",
        "status": status,
        "detail": "what happened",
        "code": code,
        "errors": [],
    }


def test_the_gunicorn_config_installs_the_problem_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn import util

    monkeypatch.setattr(util, "write_error", util.write_error)
    namespace: dict[str, object] = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    assert util.write_error is gunicorn_problems.write_problem
