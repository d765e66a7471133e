"""The operator commands: cwom_enqueue reads the enqueue body from a file or stdin."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from cwom.models import Event, Run
from tests.execution.helpers import enqueue_body

pytestmark = pytest.mark.django_db


def test_cwom_enqueue_reads_a_file(dispatched, tmp_path):
    path = tmp_path / "body.json"
    path.write_text(json.dumps(enqueue_body()))
    out = io.StringIO()
    call_command("cwom_enqueue", str(path), stdout=out)
    answer = json.loads(out.getvalue())
    run = Run.objects.get(pk=answer["run"]["id"])
    assert run.status == "ready"
    assert answer["run_url"] == f"/api/v1/runs/{run.pk}"
    assert set(Event.objects.filter(object_id=run.pk).values_list("principal", flat=True)) == {"system:cli"}


def test_cwom_enqueue_reads_stdin(dispatched, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(enqueue_body())))
    out = io.StringIO()
    call_command("cwom_enqueue", stdout=out)
    assert json.loads(out.getvalue())["context_packet"]["role"] == "primary_context"


@pytest.mark.parametrize(
    ("text", "message", "returncode"), [("{", "- is not JSON", 2), ('{"context": {}}', "Refused: .*issue", 1)]
)
def test_cwom_enqueue_refuses_bad_input(dispatched, monkeypatch, text, message, returncode):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    with pytest.raises(CommandError, match=message) as refused:
        call_command("cwom_enqueue", "-")
    assert refused.value.returncode == returncode


def test_cwom_enqueue_of_a_missing_file_is_exit_2(dispatched, tmp_path):
    with pytest.raises(CommandError, match="Cannot read") as refused:
        call_command("cwom_enqueue", str(tmp_path / "absent.json"))
    assert refused.value.returncode == 2
