"""Content negotiation: DRF's, with its commonest case answered without parsing anything.

A request that names no format (no ``Accept`` header, or ``*/*``; no ``?format=``) gets the first renderer with its
own media type, which is what DRF's negotiation picks for it; every other request goes through DRF's.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation


class CwomContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        if (
            format_suffix is None
            and request.META.get("HTTP_ACCEPT", "*/*") == "*/*"
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
