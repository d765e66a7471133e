"""A strict JSON body parser: every bad body is a 4xx problem, never a 500.

Refused before the kernel sees the body:

- bodies larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413, checked on ``Content-Length`` before
  reading, and again while reading for bodies without one);
- bytes that are not UTF-8, text that is not JSON, ``NaN``/``Infinity``, numbers too large to hold
  (400 ``malformed_body``);
- NUL characters and lone UTF-16 surrogates in any string or key: PostgreSQL cannot store the first and
  UTF-8 cannot encode the second (400 ``invalid_characters``);
- nesting deeper than ``MAX_DEPTH`` (400 ``too_deep``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from .errors import BadRequest, PayloadTooLarge

MAX_DEPTH = 32


def max_body_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**31)


def check_content_length(meta: dict[str, Any]) -> None:
    """413 when the declared ``Content-Length`` is over the limit (before any byte is read)."""
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Content-Length is not a number.", "invalid_content_length") from None
    if declared > max_body_bytes():
        raise PayloadTooLarge(f"The request body is {declared} bytes; the limit is {max_body_bytes()} bytes.")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# A run of 19 digits may be an integer beyond 64 bits, which orjson would turn into a float.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def loads(raw: bytes) -> Any:
    """Decode a JSON body strictly, raising BadRequest with a stable code.

    orjson decodes what it can; anything it refuses (or might read differently: very long numbers) goes
    through the standard parser, whose verdict and messages are the reference.
    """
    if not _LONG_NUMBER.search(raw):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # bad bytes, bad JSON, too deep, a lone surrogate: the standard parser says which
        else:
            check_values(data)
            return data
    return _standard_loads(raw)


def _standard_loads(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"The body is not UTF-8: {error.reason} at byte {error.start}.", "malformed_body") from None
    try:
        data = json.loads(text, parse_float=_finite, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply.", "too_deep") from None
    except json.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error.msg} (line {error.lineno}).", "malformed_body") from None
    except ValueError as error:
        raise BadRequest(f"The body is not valid JSON: {error}.", "malformed_body") from None
    check_values(data)
    return data


def _bad_string(value: str) -> str | None:
    if "\x00" in value:
        return "NUL characters (\\u0000) are not allowed in strings."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Lone UTF-16 surrogates are not allowed in strings."
    return None


def check_values(data: Any) -> None:
    """Walk the document (iteratively) refusing bad strings and absurd nesting, naming the path."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"The JSON body is nested deeper than {MAX_DEPTH} levels.", "too_deep")
        if isinstance(value, str):
            problem = _bad_string(value)
            if problem:
                raise BadRequest(
                    problem,
                    "invalid_characters",
                    errors=[{"path": path, "code": "invalid_characters", "message": problem}],
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _bad_string(key)
                if problem:
                    raise BadRequest(
                        problem,
                        "invalid_characters",
                        errors=[{"path": path, "code": "invalid_characters", "message": f"In a key: {problem}"}],
                    )
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value))


class CwomJSONParser(BaseParser):
    """``application/json`` bodies, checked as described in the module docstring."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        request = (parser_context or {}).get("request")
        if request is not None:
            check_content_length(request.META)
        limit = max_body_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if not raw:
            return {}
        return loads(raw)
