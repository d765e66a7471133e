"""Ids: ULIDs, generated or supplied, unique across every kind, resolvable by id alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from cwom.enums import Kind
from cwom.ids import ULID_RE, new_ulid
from cwom.models import KIND_MODELS, ObjectIndex
from tests.kernel.assertions import Footprint, refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_each(make: Any) -> dict[str, Any]:
    """One object of every kind, built through the kernel write path."""
    repo = make.repo()
    issue = make.issue(repo)
    snapshot = make.snapshot()
    doctrine = make.doctrine()
    run = make.started_run(issue_obj=issue)
    return {
        Kind.REPO: repo,
        Kind.ISSUE: issue,
        Kind.CONTEXT_PACKET: run.context_packets.get(),
        Kind.CONSTRAINT_SNAPSHOT: snapshot,
        Kind.DOCTRINE_REF: doctrine,
        Kind.RUN: run,
        Kind.ARTIFACT: make.artifact(run),
    }


def test_every_kind_gets_a_server_generated_ulid_and_its_constant_kind(one_of_each: dict[str, Any]) -> None:
    assert set(one_of_each) == set(KIND_MODELS)
    for kind, obj in one_of_each.items():
        assert ULID_RE.match(obj.pk), obj.pk
        assert obj.kind == kind


def test_object_index_resolves_every_created_object_by_id_alone(one_of_each: dict[str, Any]) -> None:
    for kind, obj in one_of_each.items():
        assert ObjectIndex.objects.get(pk=obj.pk).kind == kind
    assert ObjectIndex.objects.count() == len(one_of_each)


def test_a_client_may_supply_a_ulid_on_create(make: Any) -> None:
    chosen = new_ulid()
    repo = make.repo(id=chosen)
    assert repo.pk == chosen
    assert ObjectIndex.objects.get(pk=chosen).kind == Kind.REPO


def test_a_supplied_id_that_is_not_a_ulid_is_refused(make: Any, db: None) -> None:
    before = Footprint()
    with refused("id", "invalid_id"):
        make.repo(id="not-a-ulid")
    assert Footprint() == before


def test_a_supplied_id_already_used_by_another_kind_is_refused_and_nothing_is_written(make: Any) -> None:
    repo = make.repo()
    before = Footprint()
    with refused("id", "duplicate"):
        make.snapshot(id=repo.pk)
    assert Footprint() == before
    assert ObjectIndex.objects.get(pk=repo.pk).kind == Kind.REPO


def test_a_supplied_id_already_used_by_the_same_kind_is_refused(make: Any) -> None:
    repo = make.repo()
    with refused("id", "duplicate"):
        make.repo(id=repo.pk)


def test_full_clean_refuses_an_id_taken_by_another_kind(make: Any) -> None:
    from cwom.models import ConstraintSnapshot

    issue = make.issue()
    with refused("id", "duplicate"):
        ConstraintSnapshot(id=issue.pk).full_clean()


def test_the_database_refuses_a_second_index_row_for_one_id(make: Any) -> None:
    repo = make.repo()
    with pytest.raises(IntegrityError), transaction.atomic():
        ObjectIndex.objects.create(pk=repo.pk, kind=Kind.ISSUE)


def test_saving_an_object_under_an_id_another_kind_holds_is_refused_by_the_database(make: Any) -> None:
    from cwom.models import ConstraintSnapshot

    repo = make.repo()
    with pytest.raises(IntegrityError), transaction.atomic():
        ConstraintSnapshot(id=repo.pk).save()
    assert not ConstraintSnapshot.objects.filter(pk=repo.pk).exists()


def test_an_existing_object_keeps_its_id(make: Any) -> None:
    repo = make.repo()
    original = repo.pk
    repo.id = new_ulid()
    with refused("id", "immutable"):
        repo.full_clean()
    with refused("id", "immutable"):
        repo.save()
    assert not type(repo).objects.filter(pk=repo.pk).exists()
    assert not ObjectIndex.objects.filter(pk=repo.pk).exists()
    assert type(repo).objects.filter(pk=original).exists()
