"""Signal receivers of the CWOM app: the ``cwom viewers`` group, kept in step with the models."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig

VIEWERS_GROUP = "cwom viewers"


def ensure_viewers_group(sender: AppConfig, using: str = "default", apps: Any = None, **kwargs: Any) -> None:
    """After every ``migrate`` (and flush): a ``cwom viewers`` group with the view permission on every
    CWOM model, and no other. Members who are staff can look at everything in the admin and change nothing.
    """
    from django.contrib.auth.models import Group, Permission

    group, _created = Group.objects.using(using).get_or_create(name=VIEWERS_GROUP)
    views = Permission.objects.using(using).filter(content_type__app_label=sender.label, codename__startswith="view_")
    group.permissions.add(*views)
