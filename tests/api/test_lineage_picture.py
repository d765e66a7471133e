"""``GET /runs/{id}/lineage.svg``: the run's chain as a picture, for any reader, errors as problem documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from cwom import writes
from cwom.lineage import run_bundle
from tests import factories as make
from tests.api.conftest import problem

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def run(db: None):
    issue = make.issue(title="Ship <it> & tell")
    run = make.run(issue)
    writes.transition(run, "running")
    make.artifact(run, title="the report")
    return run


def nodes(body: bytes) -> list[ET.Element]:
    root = ET.fromstring(body)  # noqa: S314 - the service's own output
    return [a for a in root.iter(f"{SVG}a") if a.get("class") == "lineage-node"]


def test_a_reader_gets_the_picture_of_a_runs_chain(reader, run):
    response = reader.get(f"runs/{run.pk}/lineage.svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    bundle = run_bundle(run.pk)
    drawn = {(n.get("data-kind"), n.get("data-id")) for n in nodes(response.content)}
    assert drawn == {
        ("Issue", run.for_issue_id),
        *(("ContextPacket", p["id"]) for p in bundle["context_packets"]),
        ("Run", run.pk),
        *(("Artifact", a["id"]) for a in bundle["artifacts"]),
    }
    assert b"Ship &lt;it&gt; &amp; tell" in response.content
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')


def test_the_id_may_be_typed_in_any_letter_case_and_the_etag_answers_304(reader, run):
    first = reader.get(f"runs/{run.pk.lower()}/lineage.svg")
    assert first.status_code == 200 and first["ETag"]
    again = reader.get(f"runs/{run.pk}/lineage.svg", **{"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_an_unknown_run_is_a_404_problem_even_when_the_client_asks_for_svg(reader):
    response = reader.get("runs/01JD0Z8K3M5Q7R9T1V3X5Z7ZZZ/lineage.svg", **{"Accept": "image/svg+xml"})
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


def test_without_a_credential_it_is_a_401_problem(outsider, run):
    response = outsider.get(f"runs/{run.pk}/lineage.svg")
    assert response.status_code == 401
    assert problem(response)["code"] == "not_authenticated"


def test_writing_to_it_is_refused_as_a_problem(reader, writer, run):
    assert problem(reader.post(f"runs/{run.pk}/lineage.svg", {}))["code"] == "read_only"
    assert problem(writer.post(f"runs/{run.pk}/lineage.svg", {}))["status"] == 405


@pytest.mark.parametrize("n", [1, 40])
def test_the_picture_costs_the_same_for_1_and_40_artifacts(reader, django_assert_num_queries, n):
    issue = make.issue(constraints=[make.snapshot().pk])
    run = make.run(issue)
    writes.transition(run, "running")
    for _ in range(n):
        make.artifact(run)
    reader.get("events")  # the token's row is cached from here on

    # run_bundle, as for GET /runs/{id}/lineage (the token is cached; no doctrine refs here): the run with
    # its issue, repo and snapshot; the run's ref lists; the issue's; packets + their links; artifacts
    with django_assert_num_queries(6):
        response = reader.get(f"runs/{run.pk}/lineage.svg")

    # The run's outputs.artifacts: the newest 20 (issue 16), the layer's title says how many in all.
    assert len([x for x in nodes(response.content) if x.get("data-kind") == "Artifact"]) == min(n, 20)
    assert (b"Artifacts (newest 20 of 40)" in response.content) == (n == 40)
