"""Fixtures for the execution engine's tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from execution import tasks


@pytest.fixture
def execution_settings(settings: Any, tmp_path: Any) -> dict[str, Any]:
    """A private copy of CWOM_EXECUTION (tests change it freely), the scripted executor registered,
    artifact bytes under a temporary MEDIA_ROOT, heartbeats on every checkpoint."""
    conf = copy.deepcopy(settings.CWOM_EXECUTION)
    conf["executors"]["scripted"] = "tests.execution.scripted.ScriptedExecutor"
    conf["heartbeat_seconds"] = 0.0
    conf["command"]["scratch_root"] = str(tmp_path / "scratch")
    settings.CWOM_EXECUTION = conf
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return conf


@pytest.fixture
def dispatched(monkeypatch: Any, execution_settings: Any) -> list[dict[str, Any]]:
    """Messages sent to the broker, recorded instead of sent (args and options of each)."""
    sent: list[dict[str, Any]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        sent.append({"args": kwargs.get("args", args[0] if args else None), **kwargs})

    monkeypatch.setattr(tasks.execute_run, "apply_async", record)
    return sent
