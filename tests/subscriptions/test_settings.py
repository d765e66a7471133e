"""The subscription settings refuse to start on a bad value, naming the variable and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.test_deploy import PRODUCTION, manage


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CWOM_SUBSCRIPTION_ALLOWLIST", "ftp://hooks.example.com/"),
        ("CWOM_SUBSCRIPTION_ALLOWLIST", "https://hooks.example.com/,hooks.example.org"),
        ("CWOM_SUBSCRIPTION_ALLOWLIST", "https://user@hooks.example.com/"),
        ("CWOM_SUBSCRIPTION_TIMEOUT_SECONDS", "0"),
        ("CWOM_SUBSCRIPTION_TIMEOUT_SECONDS", "soon"),
        ("CWOM_SUBSCRIPTION_RETRY_HOURS", "-1"),
        ("CWOM_SUBSCRIPTION_PAUSE_AFTER_DEAD", "0"),
        ("CWOM_SUBSCRIPTION_SWEEP_SECONDS", "0"),
    ],
)
def test_a_bad_subscription_setting_refuses_to_start(tmp_path: Path, name: str, value: str) -> None:
    result = manage(tmp_path, "check", **PRODUCTION, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_good_subscription_settings_start(tmp_path: Path) -> None:
    env = {
        "CWOM_SUBSCRIPTION_ALLOWLIST": "https://hooks.example.com/cwom,http://10.0.0.5:8080/",
        "CWOM_SUBSCRIPTION_RETRY_HOURS": "1.5",
    }
    result = manage(tmp_path, "check", **PRODUCTION, **env)
    assert result.returncode == 0, result.stderr
