"""Fixtures of the operations tests: the demo chain, and the three principals of the admin."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from cwom.models import Run
from cwom.signals import VIEWERS_GROUP

PASSWORD = "correct horse battery staple"


@pytest.fixture
def storage(settings: Any, tmp_path: Any) -> Any:
    """Artifact bytes go to a fresh directory."""
    settings.MEDIA_ROOT = tmp_path / "artifacts"
    return settings.MEDIA_ROOT


@pytest.fixture
def demo(db: None, storage: Any) -> Run:
    """The demo chain; returns its successful run."""
    call_command("cwom_demo", stdout=io.StringIO())
    return Run.objects.get(status="done")


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def superuser_client(db: None) -> Client:
    return _client(User.objects.create_superuser("root", "root@example.com", PASSWORD))


@pytest.fixture
def viewer(db: None) -> User:
    user = User.objects.create_user("maria", "maria@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWERS_GROUP))
    return user


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    return _client(viewer)


@pytest.fixture
def outsider_client(db: None) -> Client:
    """Staff, so the admin lets them in, but in no group and with no permission."""
    return _client(User.objects.create_user("eve", "eve@example.com", PASSWORD, is_staff=True))


@pytest.fixture
def anonymous_client() -> Client:
    return _client(None)
