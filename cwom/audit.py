"""Who is acting: the authenticated principal and the declared actor recorded on every event.

The API sets them per request from the credential, the worker and the management commands set
them for their own work; everything else records the principal ``system``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_principal: ContextVar[str] = ContextVar("cwom_principal", default="system")
_actor: ContextVar[dict[str, Any] | None] = ContextVar("cwom_actor", default=None)


def current_principal() -> str:
    return _principal.get()


def current_actor() -> dict[str, Any] | None:
    return _actor.get()


@contextlib.contextmanager
def acting_as(principal: str, actor: dict[str, Any] | None = None) -> Iterator[None]:
    """Attribute every event written inside the block to ``principal`` (and the declared ``actor``)."""
    principal_token = _principal.set(principal)
    actor_token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(actor_token)
        _principal.reset(principal_token)
