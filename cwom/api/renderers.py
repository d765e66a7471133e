"""The API's JSON renderer: DRF's ``JSONRenderer`` output, encoded by orjson.

The bytes mean the same as DRF's (compact, UTF-8, key order kept, ``\\u2028``/``\\u2029`` escaped; datetimes,
decimals, lazy strings and every other non-JSON type go through DRF's own encoder). DRF renders instead
when a client asks for indentation and when orjson cannot encode a value (an integer beyond 64 bits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer

# Datetimes and dataclasses go to DRF's encoder as with json.dumps (str, int and dict subclasses encode as their base).
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LINE_SEPARATORS = ("\u2028".encode(), "\u2029".encode())


class CwomJSONRenderer(JSONRenderer):
    """``application/json`` (and problem+json bodies) through orjson."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", dict(renderer_context or {})) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            encoded = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        if _LINE_SEPARATORS[0] in encoded or _LINE_SEPARATORS[1] in encoded:
            encoded = encoded.replace(_LINE_SEPARATORS[0], b"\\u2028").replace(_LINE_SEPARATORS[1], b"\\u2029")
        return encoded
