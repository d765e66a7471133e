"""Executors: plug-ins behind one interface, chosen per run by name from ``CWOM_EXECUTION["executors"]``."""

from __future__ import annotations

from django.utils.module_loading import import_string

from ..config import conf
from .base import (
    ArtifactSpec,
    ExecutionContext,
    ExecutionResult,
    ExecutionStopped,
    Executor,
    ExecutorError,
)

__all__ = [
    "ArtifactSpec",
    "ExecutionContext",
    "ExecutionResult",
    "ExecutionStopped",
    "Executor",
    "ExecutorError",
    "available",
    "get_executor_class",
]


def available() -> list[str]:
    """The executor names an enqueue may ask for."""
    return sorted(conf()["executors"])


def get_executor_class(name: str) -> type[Executor]:
    """The executor class registered under ``name``; KeyError when there is none."""
    path = conf()["executors"][name]
    cls: type[Executor] = import_string(path)
    return cls
