"""The execution settings (``CWOM_EXECUTION`` in the Execution block of ``cwom_site/settings.py``)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings


def conf() -> dict[str, Any]:
    """``settings.CWOM_EXECUTION``, read at call time so overrides (tests, reloads) apply."""
    return cast("dict[str, Any]", settings.CWOM_EXECUTION)
