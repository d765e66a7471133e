"""A client generated from the served OpenAPI document, as an agent's author would make one.

openapi-python-client (pinned in requirements/dev.txt) generates a Python package from ``/api/v1/schema/``
into a temporary folder: it must do so without a warning, with at most one model per component. Then that
package, imported as generated, drives the whole chain against a live server: repo -> issue -> draft packet
-> PATCH -> seal -> snapshot -> doctrine ref -> enqueue -> the worker's task runs it -> done -> artifacts ->
content, digest checked -> lineage -> events feed, cursor-paged to the end.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from cwom.models import ApiToken, Event
from execution import tasks
from tests.execution.conftest import dispatched, execution_settings

__all__ = ["dispatched", "execution_settings"]  # the execution suite's fixtures, used here

PACKAGE = "cwom_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
GENERATOR_CONFIG = {"content_type_overrides": {"image/svg+xml": "application/octet-stream"}}


def snake(name: str) -> str:
    """The module name the generator gives a component's model (``PaginatedIssueList``: ``paginated_issue_list``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])", "_", name).lower()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> dict[str, Any]:
    """The served document, the generator's output and the generated package's folder."""
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    folder = tmp_path_factory.mktemp("client")
    document_path = folder / "openapi.json"
    document_path.write_bytes(response.content)
    # The generator reads bodies it knows by their media type; the lineage picture (image/svg+xml) is one it
    # does not know, so it is told to read it as bytes (its documented content_type_overrides).
    config_path = folder / "generator.json"
    config_path.write_text(json.dumps(GENERATOR_CONFIG))
    # The generator formats its output with ruff (a post hook found on PATH): this environment's ruff.
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(  # noqa: S603 - this environment's generator, fixed arguments
        [str(GENERATOR), "generate", "--path", str(document_path), "--output-path", str(folder / PACKAGE)]
        + ["--meta", "none", "--config", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return {
        "document": json.loads(response.content),
        "output": result.stdout + result.stderr,
        "returncode": result.returncode,
        "root": folder,
    }


@pytest.fixture(scope="module")
def client_package(generated: dict[str, Any]) -> ModuleType:
    assert generated["returncode"] == 0, generated["output"]
    sys.path.insert(0, str(generated["root"]))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(generated["root"]))


def test_the_client_generates_without_a_warning(generated):
    assert generated["returncode"] == 0, generated["output"]
    assert "warning" not in generated["output"].lower(), generated["output"]
    assert "error" not in generated["output"].lower(), generated["output"]


def test_the_client_has_one_model_per_component(generated):
    components = generated["document"]["components"]["schemas"]
    models = {path.stem for path in (generated["root"] / PACKAGE / "models").glob("*.py")} - {"__init__"}
    assert models == {snake(name) for name in components}
    # The shared parts are one class each, not one per place they are used (issue 14: 93 `*Kind` enums).
    assert {"actor", "actor_kind", "kind", "issue_ref", "run_ref", "status", "problem"} <= models
    assert not [model for model in models if model.endswith("_kind") and model != "actor_kind"]


def test_operations_read_well_in_the_generated_client(generated):
    api = generated["root"] / PACKAGE / "api"
    modules = {f"{path.parent.name}.{path.stem}" for path in api.glob("*/*.py") if path.stem != "__init__"}
    assert {"runs.runs_cancel", "runs.runs_enqueue", "runs.runs_lineage", "context_packets.context_packets_seal"} <= (
        modules
    )
    assert {"artifacts.artifacts_content_upload", "artifacts.artifacts_content_download", "events.events_list"} <= (
        modules
    )
    assert not (api / "execution").exists()


def _cursor(next_url: Any) -> str | None:
    if not isinstance(next_url, str):
        return None
    return parse_qs(urlsplit(next_url).query)["cursor"][0]


def test_the_generated_client_drives_the_whole_chain(client_package, flushable_db, live_server, dispatched):
    from cwom_client.api.artifacts import (
        artifacts_content_download,
        artifacts_content_upload,
        artifacts_create,
        artifacts_list,
    )
    from cwom_client.api.constraint_snapshots import constraint_snapshots_create
    from cwom_client.api.context_packets import context_packets_create, context_packets_seal, context_packets_update
    from cwom_client.api.doctrine_refs import doctrine_refs_create
    from cwom_client.api.events import events_list
    from cwom_client.api.issues import issues_create, issues_events
    from cwom_client.api.repos import repos_create
    from cwom_client.api.runs import runs_enqueue, runs_get, runs_lineage
    from cwom_client.models import (
        ArtifactRequest,
        ArtifactType,
        ConstraintScope,
        ConstraintSnapshotRequest,
        ContextPacketRequest,
        DoctrinePriority,
        DoctrineRefRequest,
        DoctrineType,
        EnqueueContext,
        EnqueueRequest,
        IssueRequest,
        NoopExecutor,
        PatchedContextPacketRequest,
        RepoRequest,
        Status,
    )
    from cwom_client.types import File

    _, secret = ApiToken.issue("generated-client", can_write=True)
    api = client_package.AuthenticatedClient(base_url=live_server.url, token=secret, raise_on_unexpected_status=True)

    repo = repos_create.sync(client=api, body=RepoRequest(name="Control Tower", slug="control-tower"))
    issue = issues_create.sync(client=api, body=IssueRequest(repo=repo.id, title="Add /healthz"))
    assert (issue.repo.id, issue.status) == (repo.id, Status.PLANNED)

    created = context_packets_create.sync_detailed(
        client=api, body=ContextPacketRequest(for_issue=issue.id, summary="Draft", sealed=False)
    )
    assert created.status_code == 201 and created.parsed.sealed is False
    changed = context_packets_update.sync(
        created.parsed.id,
        client=api,
        body=PatchedContextPacketRequest(summary="What we know."),
        if_match=created.headers["ETag"],
    )
    assert changed.summary == "What we know."
    sealed = context_packets_seal.sync(changed.id, client=api)
    assert sealed.sealed is True and sealed.sealed_at is not None

    snapshot = constraint_snapshots_create.sync(client=api, body=ConstraintSnapshotRequest(scope=ConstraintScope.RUN))
    doctrine = doctrine_refs_create.sync(
        client=api,
        body=DoctrineRefRequest(
            namespace="ops",
            name="cheap-probes",
            version="1",
            type_=DoctrineType.PRINCIPLE,
            priority=DoctrinePriority.SHOULD,
            statement="Health probes touch nothing.",
        ),
    )

    enqueued = runs_enqueue.sync_detailed(
        client=api,
        body=EnqueueRequest(
            issue=issue.id,
            context=EnqueueContext(summary="Run it."),
            constraints=snapshot.id,
            doctrine_refs=[doctrine.id],
            executor=NoopExecutor(name="noop"),
        ),
    )
    assert enqueued.status_code == 202
    run_id = enqueued.parsed.run.id
    assert enqueued.headers["Location"].endswith(run_id)

    # The worker: the task the enqueue dispatched, run as a worker process runs it.
    assert [message["args"] for message in dispatched] == [[run_id]]
    tasks.execute_run.apply(args=[run_id])

    run = runs_get.sync(run_id, client=api)
    assert run.status == Status.DONE
    assert [ref.id for ref in run.inputs.doctrine_refs] == [doctrine.id]

    outputs = artifacts_list.sync(client=api, run_id=[run_id]).results
    assert ArtifactType.TRACE in {artifact.type_ for artifact in outputs}
    for artifact in outputs:  # what the worker stored, byte for byte
        download = artifacts_content_download.sync_detailed(artifact.id, client=api)
        assert download.status_code == 200
        assert artifact.digest == "sha256:" + hashlib.sha256(download.content).hexdigest()
        assert artifact.size_bytes == len(download.content)

    # An artifact of the agent's own, its bytes uploaded through the generated client.
    report = artifacts_create.sync(
        client=api, body=ArtifactRequest(produced_by=run_id, type_=ArtifactType.REPORT, title="Probe report")
    )
    payload = b"all probes answered\n"
    uploaded = artifacts_content_upload.sync_detailed(
        report.id, client=api, body=File(payload=payload, mime_type="application/octet-stream")
    )
    assert uploaded.status_code == 201
    assert uploaded.parsed.digest == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert artifacts_content_download.sync_detailed(report.id, client=api).content == payload

    lineage = runs_lineage.sync(run_id, client=api)
    assert (lineage.run.id, lineage.issue.id, lineage.repo.id) == (run_id, issue.id, repo.id)
    assert lineage.constraint_snapshot.id == snapshot.id
    assert {artifact.id for artifact in lineage.artifacts} == {*(artifact.id for artifact in outputs), report.id}

    history = issues_events.sync(issue.id, client=api)
    assert history.results[0].action.value == "create"

    seen, cursor, pages = [], None, 0
    while True:
        page = (
            events_list.sync(client=api, page_size=3, cursor=cursor)
            if cursor
            else events_list.sync(client=api, page_size=3)
        )
        seen += [event.id for event in page.results]
        pages += 1
        cursor = _cursor(page.next_)
        if cursor is None:
            break
    assert seen == list(Event.objects.order_by("id").values_list("id", flat=True))
    assert pages == -(-len(seen) // 3) and len(seen) > 10
