"""The committed spec: JSON Schemas equal what the command writes, and the human spec matches the code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import models
from jsonschema import Draft202012Validator

from cwom import db_guards, shapes
from cwom.enums import RUN_TRANSITIONS, Kind, Status
from cwom.management.commands.cwom_jsonschema import DEFAULT_OUTPUT_DIR, render
from cwom.models import RefTotal
from tests import factories

SPEC = Path(__file__).resolve().parents[2] / "cwom" / "spec" / "cwom_v0_1.md"
KINDS = list(Kind.values)
REPO_ROOT = Path(__file__).resolve().parents[2]


def committed(kind: str) -> dict[str, Any]:
    return json.loads((DEFAULT_OUTPUT_DIR / f"{kind}.json").read_text(encoding="utf-8"))


def run_command(*args: str) -> tuple[str, str]:
    """call_command with its stdout and stderr captured."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("cwom_jsonschema", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the JSON Schemas --------------------------------------------------------------------------------------
def test_the_committed_schemas_are_what_the_command_writes() -> None:
    assert sorted(p.name for p in DEFAULT_OUTPUT_DIR.glob("*.json")) == sorted(f"{k}.json" for k in KINDS)
    for kind in KINDS:
        assert (DEFAULT_OUTPUT_DIR / f"{kind}.json").read_text(encoding="utf-8") == render(kind)
    out, _err = run_command("--check")
    assert "7 JSON Schema files up to date" in out


@pytest.mark.parametrize("kind", KINDS)
def test_every_example_validates_against_the_committed_schema(kind: str) -> None:
    schema = committed(kind)
    Draft202012Validator.check_schema(schema)
    assert [e.message for e in Draft202012Validator(schema).iter_errors(factories.example(kind))] == []
    assert schema["$id"] == f"https://cwom.dev/schema/v0.1/{kind}.json"


def test_a_committed_schema_is_pretty_json_in_the_schema_key_order_with_a_final_newline() -> None:
    text = (DEFAULT_OUTPUT_DIR / "Run.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "$schema": ')
    assert list(json.loads(text)) == list(shapes.json_schema("Run", "out"))


def test_the_command_writes_all_seven_schemas_into_an_output_dir(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    out, _err = run_command("--output-dir", str(target))
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{k}.json" for k in KINDS)
    assert "(7 written)" in out
    assert all((target / f"{k}.json").read_text(encoding="utf-8") == render(k) for k in KINDS)
    out, _err = run_command("--output-dir", str(target))
    assert "(0 written)" in out


def test_check_fails_on_a_modified_copy_lists_it_and_writes_nothing(tmp_path: Path) -> None:
    copy = tmp_path / "jsonschema"
    shutil.copytree(DEFAULT_OUTPUT_DIR, copy)
    modified = copy / "Run.json"
    tampered = modified.read_text(encoding="utf-8").replace('"const": "Run"', '"const": "Walk"')
    modified.write_text(tampered, encoding="utf-8")
    (copy / "Artifact.json").unlink()
    with pytest.raises(CommandError) as caught:
        call_command("cwom_jsonschema", "--check", "--output-dir", str(copy), stderr=(err := _Sink()))
    assert caught.value.returncode == 1
    assert sorted(re.findall(r"differs: \S+/(\w+\.json)", err.text)) == ["Artifact.json", "Run.json"]
    assert modified.read_text(encoding="utf-8") == tampered
    assert not (copy / "Artifact.json").exists()


def test_check_exits_with_status_1_on_the_command_line(tmp_path: Path) -> None:
    copy = tmp_path / "jsonschema"
    shutil.copytree(DEFAULT_OUTPUT_DIR, copy)
    (copy / "Repo.json").write_text("{}\n", encoding="utf-8")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cwom_site.settings_test"}
    command = [sys.executable, "manage.py", "cwom_jsonschema", "--check", "--output-dir", str(copy)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 1, done.stderr
    assert "Repo.json" in done.stderr
    assert (copy / "Repo.json").read_text(encoding="utf-8") == "{}\n"


class _Sink:
    """A stderr for call_command that keeps what was written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# --- the human spec ---------------------------------------------------------------------------------------
def spec_text() -> str:
    return SPEC.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under ``### <title>`` up to the next heading."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", spec_text(), re.S | re.M)
    assert match, f"no section ### {title}"
    return match.group(1)


def field_rows(text: str) -> dict[str, list[str]]:
    """{path: cells} of the markdown table rows whose first cell is a backticked path."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([\w.]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


COMMON = {"kind", "id", "created_by", "tags", "meta", "created_at", "updated_at"}


def leaf_nodes(nodes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found = {}
    for name, node in nodes.items():
        if isinstance(node, shapes.Group):
            found.update(leaf_nodes(node.children, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = node
    return found


def storage_of(kind: str, path: str, node: Any) -> str:
    if isinstance(node, shapes.Total):
        return RefTotal._meta.db_table
    if isinstance(node, (shapes.Derived, shapes.ListURL)):
        return "derived"
    if isinstance(node, shapes.LinkRefs):
        return shapes.LINK_TABLES[(kind, node.name)][0]._meta.db_table
    return node.column


@pytest.mark.parametrize("kind", KINDS)
def test_the_spec_lists_every_field_of_each_kind_with_its_storage(kind: str) -> None:
    rows = field_rows(section(kind))
    expected = {path: node for path, node in leaf_nodes(shapes.SHAPES[kind].nodes).items() if path not in COMMON}
    assert set(rows) == set(expected)
    for path, node in expected.items():
        storage = rows[path][1]
        want = storage_of(kind, path, node)
        assert storage == (want if want == "derived" else f"`{want}`"), (path, storage, want)


def test_the_spec_lists_the_fields_every_object_has() -> None:
    match = re.search(r"^## 2\. What every object has\n(.*?)(?=^##)", spec_text(), re.S | re.M)
    assert match
    assert set(field_rows(match.group(1))) == COMMON


def test_the_state_machine_table_is_the_transition_table() -> None:
    lines = spec_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| from \\ to |"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")][1:]
    assert columns == list(Status.values)
    table = {}
    for line in lines[header + 2 : header + 2 + len(Status.values)]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0].strip("*")] = {to for to, mark in zip(columns, cells[1:], strict=True) if mark == "✓"}
        assert set(cells[1:]) <= {"✓", "·"}
    assert table == {status: set(moves) for status, moves in RUN_TRANSITIONS.items()}


def _cwom_models() -> list[type[models.Model]]:
    return list(apps.get_app_config("cwom").get_models())


def test_the_spec_names_every_guard_trigger_and_no_other() -> None:
    tables = {model._meta.db_table for model in _cwom_models()}
    named = set(re.findall(r"`(cwom_\w+)`", spec_text())) - tables
    assert named == {f"cwom_{name}" for name, *_ in db_guards.all_rules("postgresql")}


def test_the_spec_names_every_check_constraint_and_every_kind_unique_constraint() -> None:
    text = spec_text()
    kinds = {model for model in _cwom_models() if getattr(model, "KIND", None)}
    for model in _cwom_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.CheckConstraint) or model in kinds:
                assert f"`{constraint.name}`" in text, constraint.name


def test_the_spec_lists_every_table() -> None:
    match = re.search(r"^## 7\. Tables\n(.*)", spec_text(), re.S | re.M)
    assert match
    for model in _cwom_models():
        assert f"`{model._meta.db_table}`" in match.group(1), model._meta.db_table


# --- where each invariant lives (section 4) names code that exists ---------------------------------------
def _model_column_names() -> set[str]:
    """The code named in the "model" column of the invariants table: ``Class.member`` and ``module.function``."""
    names: set[str] = set()
    for line in spec_text().splitlines():
        if re.match(r"^\| \d+ \|", line):
            model_cell = [cell.strip() for cell in line.strip("|").split("|")][2]
            names.update(re.findall(r"`([A-Za-z_]\w*\.[A-Za-z_]\w*)(?:\(\))?`", model_cell))
            names.update(re.findall(r"`((?:validate|record)_\w+)`", model_cell))
    return names


def test_the_invariants_table_names_only_code_that_exists() -> None:
    import cwom
    from cwom import ids, models, validation, writes
    from cwom.models import base, briefing

    namespaces = [models, base, briefing, writes, validation, ids, shapes]
    roots = {"cwom": cwom, "writes": writes, "shapes": shapes}
    missing = []
    for name in sorted(_model_column_names()):
        head, _, member = name.partition(".")
        owner = roots.get(head) or next((getattr(ns, head) for ns in namespaces if hasattr(ns, head)), None)
        if owner is None or (member and not hasattr(owner, member)):
            missing.append(name)
    assert len(_model_column_names()) > 20
    assert missing == []
