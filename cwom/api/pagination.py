"""Cursor pagination for every list: 50 per page by default, at most 500, always ordered.

Bad input is refused, not silently corrected: ``page_size`` outside 1..500 or not a number is a 400, as is
either parameter given empty (``empty_value``: leave it out for the default size or the first page); a
cursor that cannot be decoded or whose position does not fit the ordering field is a 422 (``invalid_cursor``:
well-formed, but not one of this list's cursors). A view that cannot say how its
rows are ordered is a programming error (``ImproperlyConfigured``): unordered pages repeat or skip rows.

Views tell the paginator their ordering through ``resolve_ordering(request)`` (see
:class:`cwom.api.filters.OrderingBackend`), so the ``ordering`` query parameter and the cursor always agree.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any, NoReturn
from urllib.parse import parse_qs

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from cwom.validation import NOT_BLANK

from .errors import BadRequest
from .filters import ORDERING_ALIASES, empty_parameter, is_blank

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class CwomCursorPagination(CursorPagination):
    """Cursor pages of ``{"next", "previous", "results"}``; see the module docstring for the rules."""

    page_size = DEFAULT_PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    page_size_query_description = f"Results per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."
    cursor_query_description = "Opaque cursor from a previous page's `next` or `previous` link."
    ordering = None  # type: ignore[assignment]  # the view decides; see get_ordering

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if is_blank(raw):
            raise empty_parameter(self.page_size_query_param, "invalid_page_size")
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            message = f"page_size must be an integer from 1 to {self.max_page_size}; got {raw!r}."
            raise BadRequest(
                message,
                "invalid_page_size",
                errors=[{"path": "page_size", "code": "invalid_page_size", "message": message}],
            )
        return size

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        resolver = getattr(view, "resolve_ordering", None)
        ordering = tuple(resolver(request)) if resolver else ()
        if not ordering:
            raise ImproperlyConfigured(
                f"{type(view).__name__} lists rows without an ordering; cursor pagination refuses unordered querysets."
            )
        return ordering

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        if is_blank(encoded):
            raise empty_parameter(self.cursor_query_param, "empty_value")
        try:
            querystring = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse_qs(querystring, keep_blank_values=True, strict_parsing=bool(querystring))
            if not tokens or set(tokens) - {"o", "r", "p"}:
                raise ValueError("unknown cursor fields")
            offset = int(tokens.get("o", ["0"])[0])
            reverse = tokens.get("r", ["0"])[0]
            if not 0 <= offset <= self.offset_cutoff or reverse not in ("0", "1"):
                raise ValueError("cursor out of range")
            position = tokens.get("p", [None])[0]
        except (TypeError, ValueError, binascii.Error):
            self._bad_cursor("The cursor cannot be decoded.")
        if position is not None:
            self._check_position(position)
        return Cursor(offset=offset, reverse=reverse == "1", position=position)  # type: ignore[arg-type]

    def _check_position(self, position: str) -> None:
        name = tuple(self.ordering or ("id",))[0].lstrip("-")
        name = ORDERING_ALIASES.get(name, name)
        try:
            field: models.Field[Any, Any] = self._model._meta.get_field(name)  # type: ignore[assignment]
            if "\x00" in position:
                raise DjangoValidationError("NUL")
            field.to_python(position)
        except (FieldDoesNotExist, DjangoValidationError, ValueError, TypeError):
            self._bad_cursor("The cursor does not belong to this list or ordering.")

    @staticmethod
    def _bad_cursor(message: str) -> NoReturn:
        raise BadRequest(
            message, "invalid_cursor", errors=[{"path": "cursor", "code": "invalid_cursor", "message": message}]
        )

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "example": "https://cwom.example/api/v1/issues?cursor=cD0yMDI2LTExLTIz"},
                "previous": {**link, "example": None},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": str(self.cursor_query_description),
                # Not blank (blank is refused as empty_value), no NUL: str.strip()'s blanks, as the filters say.
                "schema": {"type": "string", "pattern": NOT_BLANK},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": str(self.page_size_query_description),
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
            },
        ]
