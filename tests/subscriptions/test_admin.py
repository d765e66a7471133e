"""The subscription pages of the read-only admin render for a superuser and never show a secret's material."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from execution import subscriptions
from tests import factories
from tests.subscriptions.conftest import Receiver

pytestmark = pytest.mark.usefixtures("subscription_settings")


def test_subscriptions_deliveries_and_their_history_are_listed_read_only(db: Any, receiver: Receiver) -> None:
    subscription, secret = subscriptions.create({"url": receiver.url, "description": "ops hook"}, "token:test")
    factories.repo()
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "not-a-real-password-9f3k"))
    for name in ("subscription", "delivery", "subscriptionevent"):
        response = client.get(reverse(f"admin:execution_{name}_changelist"))
        assert response.status_code == 200, name
    page = client.get(reverse("admin:execution_subscription_change", args=[subscription.pk]))
    assert page.status_code == 200 and b"ops hook" in page.content
    assert subscription.secret_nonce.encode() not in page.content and secret.encode() not in page.content
