"""The admin cannot change CWOM data, not even for a superuser (the full matrix lives in
tests/ops/test_admin.py; this is the security suite's own guard, kept short).

Every ModelAdmin registered for a model of the ``cwom`` or ``execution`` apps denies add, change and
delete and offers no bulk action; a superuser's POSTs to the change, delete and bulk-delete views
change nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse

from cwom.models import Run
from tests import factories

pytestmark = pytest.mark.django_db

DATA_APPS = {"cwom", "execution"}
DATA_ADMINS = [
    (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in DATA_APPS
]


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root", "root@example.com", "not-a-real-password-9f3k")


def test_every_cwom_model_in_the_admin_is_covered() -> None:
    names = {model.__name__ for model, _ in DATA_ADMINS}
    assert {"Repo", "Issue", "ContextPacket", "ConstraintSnapshot", "DoctrineRef", "Run", "Artifact", "Event"} <= names


@pytest.mark.parametrize(("model", "model_admin"), DATA_ADMINS, ids=lambda v: getattr(v, "__name__", ""))
def test_no_admin_grants_add_change_delete_or_actions_to_a_superuser(
    model: Any, model_admin: Any, superuser: User
) -> None:
    request = RequestFactory().get("/admin/")
    request.user = superuser
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert not model_admin.get_actions(request)


def test_a_superusers_posts_to_the_admin_change_nothing(superuser: User) -> None:
    run = factories.started_run()
    before = (run.status, run.updated_at)
    client = Client()
    client.force_login(superuser)
    change = reverse("admin:cwom_run_change", args=[run.pk])
    delete = reverse("admin:cwom_run_delete", args=[run.pk])
    changelist = reverse("admin:cwom_run_changelist")
    assert client.post(change, {"status": "done", "result_summary": "forged"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(changelist, {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"})
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.updated_at) == before
