"""The admin is read-only for everyone: superusers and viewers look, outsiders see nothing, nobody writes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from cwom.admin.readonly import COUNT_CAP, CappedCountPaginator
from cwom.humanize import duration
from cwom.models import ApiToken, Artifact, Event, Issue, ObjectIndex, Run
from cwom.signals import VIEWERS_GROUP

CWOM_ADMINS = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "cwom"), key=lambda m: m._meta.model_name
)
LOOKERS = ("superuser_client", "viewer_client")


def url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:cwom_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def one_of_each(demo: Run) -> dict[Any, Any]:
    """One object of every registered model."""
    ApiToken.issue("ci-bot", can_write=False)
    return {model: model.objects.order_by("pk").first() for model in CWOM_ADMINS}


def test_every_kind_the_event_log_the_id_index_and_tokens_are_registered() -> None:
    names = {model.__name__ for model in CWOM_ADMINS}
    assert {"Repo", "Issue", "ContextPacket", "ConstraintSnapshot", "DoctrineRef", "Run", "Artifact"} <= names
    assert {"Event", "ObjectIndex", "ApiToken"} <= names


@pytest.mark.parametrize("looker", LOOKERS)
@pytest.mark.parametrize("model", CWOM_ADMINS, ids=lambda m: m.__name__)
def test_lookers_see_lists_and_detail_pages_without_any_control_to_change(
    looker: str, model: Any, one_of_each: dict[Any, Any], request: Any
) -> None:
    client: Client = request.getfixturevalue(looker)
    obj = one_of_each[model]
    listing = client.get(url(model, "changelist"))
    assert listing.status_code == 200
    assert b'name="action"' not in listing.content  # no bulk actions, not even delete_selected
    assert url(model, "add") not in listing.content.decode()
    detail = client.get(url(model, "change", obj.pk))
    assert detail.status_code == 200
    for control in ('name="_save"', 'name="_continue"', 'name="_addanother"', url(model, "delete", obj.pk)):
        assert control not in detail.content.decode()
    assert client.get(url(model, "history", obj.pk)).status_code == 200


@pytest.mark.parametrize("looker", LOOKERS)
@pytest.mark.parametrize("model", CWOM_ADMINS, ids=lambda m: m.__name__)
def test_nobody_can_add_change_or_delete_not_even_a_superuser(
    looker: str, model: Any, one_of_each: dict[Any, Any], request: Any
) -> None:
    client: Client = request.getfixturevalue(looker)
    obj = one_of_each[model]
    assert client.get(url(model, "add")).status_code == 403
    assert client.post(url(model, "add"), {}).status_code == 403
    assert client.post(url(model, "change", obj.pk), {"title": "changed"}).status_code == 403
    assert client.get(url(model, "delete", obj.pk)).status_code == 403
    assert client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    bulk = client.post(
        url(model, "changelist"), {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    )
    assert bulk.status_code == 200
    assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", CWOM_ADMINS, ids=lambda m: m.__name__)
def test_an_outsider_sees_nothing(
    model: Any, one_of_each: dict[Any, Any], outsider_client: Client, anonymous_client: Client
) -> None:
    obj = one_of_each[model]
    for view, args in (("changelist", ()), ("change", (obj.pk,)), ("history", (obj.pk,))):
        assert outsider_client.get(url(model, view, *args)).status_code == 403
        anonymous = anonymous_client.get(url(model, view, *args))
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith(reverse("admin:login"))


def test_the_viewers_group_has_the_view_permission_on_every_cwom_model_and_nothing_else(db: None) -> None:
    group = Group.objects.get(name=VIEWERS_GROUP)
    granted = set(group.permissions.values_list("codename", flat=True))
    expected = set(
        Permission.objects.filter(content_type__app_label="cwom", codename__startswith="view_").values_list(
            "codename", flat=True
        )
    )
    assert granted == expected
    assert {f"view_{m._meta.model_name}" for m in CWOM_ADMINS} <= granted


def test_a_runs_page_shows_its_whole_causality_chain_and_its_events(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(url(Run, "change", demo.pk)).content.decode()
    issue = demo.for_issue
    assert url(Issue, "change", issue.pk) in page and issue.title in page
    assert url(type(demo.repo), "change", demo.repo_id) in page
    for packet in demo.context_packets.all():
        assert reverse("admin:cwom_contextpacket_change", args=[packet.pk]) in page
    assert reverse("admin:cwom_constraintsnapshot_change", args=[demo.constraint_snapshot_id]) in page
    for doctrine_id in demo.doctrine_refs.values_list("id", flat=True):
        assert reverse("admin:cwom_doctrineref_change", args=[doctrine_id]) in page
    for artifact in demo.artifacts.all():
        assert url(Artifact, "change", artifact.pk) in page
        if artifact.digest:
            assert artifact.digest in page
        if artifact.stored_name:
            assert f"/api/v1/artifacts/{artifact.pk}/content" in page
    assert "passed" in page  # verification
    for event in Event.objects.filter(object_id=demo.pk):
        assert reverse("admin:cwom_event_change", args=[event.pk]) in page
    assert "status: running → done" in page


def test_an_issues_page_lists_its_runs_with_status_and_duration(demo: Run, viewer_client: Client) -> None:
    page = viewer_client.get(url(Issue, "change", demo.for_issue_id)).content.decode()
    for run in Run.objects.filter(for_issue_id=demo.for_issue_id):
        assert url(Run, "change", run.pk) in page
    assert duration(demo.duration_s) in page
    assert "planned" in page and "done" in page


def test_every_ref_in_the_contract_document_is_a_link(demo: Run, viewer_client: Client) -> None:
    artifact = demo.artifacts.first()
    page = viewer_client.get(url(Artifact, "change", artifact.pk)).content.decode()
    assert f'<a href="{url(Run, "change", demo.pk)}">{demo.pk}</a>' in page
    assert f'<a href="{url(Issue, "change", demo.for_issue_id)}">{demo.for_issue_id}</a>' in page


def test_lists_filter_and_search(demo: Run, viewer_client: Client) -> None:
    failed = viewer_client.get(url(Run, "changelist"), {"status__exact": "failed"}).content.decode()
    assert "Deploy check does not retry" in failed and "Add /healthz" not in failed
    found = viewer_client.get(url(ObjectIndex, "changelist"), {"q": demo.pk}).content.decode()
    assert url(Run, "change", demo.pk) in found
    tagged = viewer_client.get(url(Issue, "changelist"), {"tag": "ops"})
    assert tagged.status_code == 200


def test_the_paginator_never_counts_past_its_cap(demo: Run) -> None:
    paginator = CappedCountPaginator(Event.objects.order_by("-id"), 10)
    assert paginator.count == Event.objects.count()
    assert COUNT_CAP >= 1000


def test_token_pages_never_show_the_secret_hash(demo: Run, superuser_client: Client) -> None:
    token, _secret = ApiToken.issue("reader", can_write=False)
    page = superuser_client.get(url(ApiToken, "change", token.pk)).content.decode()
    assert token.key_id in page and token.secret_hash not in page
