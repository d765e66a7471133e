"""One error format for the whole API: RFC 9457 problem details (``application/problem+json``).

Every 4xx/5xx answer has the same body::

    {"type": "https://cwom.dev/problems/<code>", "title": "...", "status": 409, "detail": "...",
     "code": "<code>", "instance": "/api/v1/...", "errors": [{"path": "...", "code": "...", "message": "..."}]}

``code`` is the stable, machine-readable part; ``errors`` names each offending field by its contract
path (``constraints.energy.score_0_5``) or query parameter. Some problems add members (an illegal run
transition lists ``legal_moves``).

:func:`problem_exception_handler` is DRF's ``EXCEPTION_HANDLER``: it maps the kernel's errors
(Django ``ValidationError`` with codes, ``RunTransitionError``, ``RunConflictError``, database
refusals) and DRF's own exceptions onto that body. Anything unexpected is logged and answered as a
500 problem, never as an HTML page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from cwom import writes
from cwom.models import RunConflictError, RunTransitionError

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger("cwom.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://cwom.dev/problems/"

# Kernel ValidationError codes that describe a state conflict rather than a bad body: answered 409.
CONFLICT_CODES = frozenset(
    {
        "immutable",
        "sealed",
        "duplicate",
        "unique",
        "illegal_transition",
        "transition_conflict",
        "inputs_frozen",
        "append_only",
        "not_retryable",
        "no_executor",
    }
)

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


# --- problems the API raises itself ---------------------------------------------------------------
class Problem(exceptions.APIException):
    """An API error with a stable ``code``, optional per-field ``errors`` and extra members."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request cannot be processed."

    def __init__(
        self,
        detail: str | None = None,
        code: str | None = None,
        *,
        status_code: int | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.default_detail, code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.problem_code = code or self.default_code
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra


class BadRequest(Problem):
    """400 for malformed input the kernel never sees (bodies, headers, query strings)."""


class PayloadTooLarge(Problem):
    """413: the body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class PreconditionFailed(Problem):
    """412: ``If-Match`` names a version of the object that is no longer current."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The object changed since you read it (If-Match does not match its ETag)."


class IdempotencyKeyReused(Problem):
    """422: an ``Idempotency-Key`` already used with a different request."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request."


class ServiceUnavailable(Problem):
    """503: a dependency (the database) cannot be reached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = "The database cannot be reached; try again shortly."


# --- building bodies ------------------------------------------------------------------------------
def problem_body(
    status_code: int,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The problem-details document for one error."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_BASE}{code}",
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body["errors"] = errors or []
    body.update(extra)
    return body


def problem_response(
    status_code: int,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    request: Any = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A DRF Response carrying a problem document with the problem media type."""
    instance = getattr(request, "path", None)
    response = Response(
        problem_body(status_code, code, detail, errors, instance, **extra),
        status=status_code,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    return response


def _message(error: DjangoValidationError) -> str:
    message = str(error.message)
    if error.params:
        try:
            message = message % error.params
        except (TypeError, KeyError, ValueError):
            pass
    return message


def validation_errors(error: DjangoValidationError) -> list[dict[str, str]]:
    """Flatten a kernel ValidationError into ``[{path, code, message}]`` (paths are contract paths)."""
    found: list[dict[str, str]] = []
    if hasattr(error, "error_dict"):
        for path, items in error.error_dict.items():
            key = "" if path in ("non_field_errors", "__all__") else path
            for item in items:
                for leaf in item.error_list:
                    found.append({"path": key, "code": leaf.code or "invalid", "message": _message(leaf)})
    else:
        for leaf in error.error_list:
            found.append({"path": "", "code": leaf.code or "invalid", "message": _message(leaf)})
    return found


def drf_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Flatten a DRF ``ValidationError.detail`` (dicts/lists of ErrorDetail) the same way."""
    if isinstance(detail, dict):
        found: list[dict[str, str]] = []
        for key, value in detail.items():
            key = "" if key in ("non_field_errors", "__all__") else str(key)
            found += drf_errors(value, f"{path}.{key}" if path and key else path or key)
        return found
    if isinstance(detail, list):
        return [item for value in detail for item in drf_errors(value, path)]
    return [{"path": path, "code": getattr(detail, "code", None) or "invalid", "message": str(detail)}]


def _summary(errors: list[dict[str, str]], fallback: str) -> str:
    if not errors:
        return fallback
    first = errors[0]
    text = f"{first['path']}: {first['message']}" if first["path"] else first["message"]
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text


# --- the handler ----------------------------------------------------------------------------------
def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF ``EXCEPTION_HANDLER``: every exception becomes a problem-details response."""
    request = context.get("request")
    view = context.get("view")

    if isinstance(exc, Problem):
        headers = dict(exc.headers)
        if getattr(exc, "auth_header", None):  # a Problem that is also AuthenticationFailed (token_expired)
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        return problem_response(
            exc.status_code,
            exc.problem_code,
            str(exc.detail),
            exc.errors,
            request,
            headers=headers,
            **exc.extra,
        )
    if isinstance(exc, RunTransitionError):
        return problem_response(
            409,
            exc.code,
            str(exc),
            [{"path": "status", "code": exc.code, "message": str(exc)}],
            request,
            current_status=exc.current,
            requested_status=exc.requested,
            legal_moves=exc.legal,
        )
    if isinstance(exc, RunConflictError):
        return problem_response(
            409,
            exc.code,
            str(exc),
            [{"path": "status", "code": exc.code, "message": str(exc)}],
            request,
            expected_status=exc.expected,
            current_status=exc.actual,
        )
    if isinstance(exc, DjangoValidationError):
        errors = validation_errors(exc)
        conflict = next((e["code"] for e in errors if e["code"] in CONFLICT_CODES), None)
        if conflict:
            return problem_response(409, conflict, _summary(errors, "Conflict."), errors, request)
        return problem_response(400, "validation_error", _summary(errors, "The request is invalid."), errors, request)
    if isinstance(exc, IntegrityError):
        code = writes.integrity_code(exc)
        message = _integrity_message(exc)
        return problem_response(409, code, message, [{"path": "", "code": code, "message": message}], request)
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", exc)
        return problem_response(
            503, "database_unavailable", ServiceUnavailable.default_detail, [], request, headers={"Retry-After": "5"}
        )
    if isinstance(exc, RequestDataTooBig):
        return problem_response(413, "payload_too_large", PayloadTooLarge.default_detail, [], request)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        detail = str(exc) if isinstance(exc, Http404) and exc.args else "No object matches this URL."
        return problem_response(404, "not_found", detail, [], request)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    if isinstance(exc, exceptions.APIException):
        return _api_exception(exc, request, view)

    if isinstance(exc, DatabaseError):
        # DataError and friends: the database refused a value the schema let through.
        logger.warning("database refused a value: %s", exc)
        return problem_response(400, "invalid_value", "The database refused a value in this request.", [], request)
    logger.exception("unhandled error in %s", getattr(view, "__class__", type(None)).__name__, exc_info=exc)
    return problem_response(500, "internal_error", "An unexpected error occurred; it has been logged.", [], request)


def _integrity_message(exc: IntegrityError) -> str:
    text = str(exc)
    if "cwom:" in text:
        # "cwom:<code>: message" (trigger text may carry a CONTEXT line on Postgres)
        return text.split("cwom:", 1)[1].split(":", 1)[-1].strip().splitlines()[0]
    return "The database refused this change because it conflicts with existing data."


def _api_exception(exc: exceptions.APIException, request: Request | None, view: APIView | None) -> Response:
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    status_code = exc.status_code

    if isinstance(exc, exceptions.ValidationError):
        errors = drf_errors(exc.detail)
        return problem_response(
            400, "validation_error", _summary(errors, "The request is invalid."), errors, request, headers=headers
        )
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else "error"
    code = {"parse_error": "malformed_body", "error": "bad_request"}.get(code, code)
    if isinstance(exc, exceptions.MethodNotAllowed) and view is not None:
        headers["Allow"] = ", ".join(view.allowed_methods)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(status_code, code, str(detail), [], request, headers=headers)
