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
500 problem, never as an HTML page (errors Django answers outside DRF: ``handler400`` and friends; errors
gunicorn answers itself: ``cwom_site/gunicorn_problems.py``).

The status policy is one table, :data:`PROBLEM_CODES` (code -> status and meaning): 400 the documented
shape, 422 a rule the schema cannot express, 404 the path's own object, 409 the object's state. The status
of a refusal follows from its codes, whichever layer raised them, and its top-level ``code`` is the specific
one (:func:`_pick`). ``docs/api.md`` shows the table; a test keeps the two equal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

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


class ProblemCode(NamedTuple):
    """One problem ``code``: the status every refusal with it answers, and what it means."""

    status: int
    meaning: str


# The status policy, one line per code: the handler answers with these statuses whichever layer refused
# (the parser, the model layer, a database trigger), and docs/api.md's table is checked against this one.
#   400  the request breaks the documented shape (what the JSON Schema / OpenAPI document can say);
#   422  well-formed, but breaks a rule the schema cannot express (references, cross-object consistency);
#   404  the path's own object; 409 a conflict with the current state (sealed, immutable, taken, illegal move);
#   401/403 credentials, 405/406/415 the method and media types, 412/428 preconditions, 413 size, 429 rate,
#   500/503 the service.
PROBLEM_CODES: dict[str, ProblemCode] = {
    # 400: the shape of the request
    "bad_request": ProblemCode(400, "The request cannot be read as sent."),
    "malformed_body": ProblemCode(400, "The body is not valid JSON (or not UTF-8)."),
    "invalid_content_length": ProblemCode(400, "Content-Length is not a number."),
    "too_deep": ProblemCode(400, "A JSON value is nested deeper than the limit."),
    "invalid_shape": ProblemCode(400, "A value has the wrong JSON form (e.g. the body is not an object)."),
    "invalid_type": ProblemCode(400, "A field has the wrong JSON type."),
    "unexpected_field": ProblemCode(400, "A field the body does not take (the message suggests a close name)."),
    "required": ProblemCode(400, "A required field is missing."),
    "invalid_choice": ProblemCode(400, "A value is not one of the field's allowed values."),
    "invalid": ProblemCode(400, "A value does not fit the field's documented form."),
    "invalid_id": ProblemCode(400, "A field or query parameter that takes an id holds something that is not one."),
    "invalid_datetime": ProblemCode(400, "A timestamp is not ISO-8601 with a timezone."),
    "out_of_range": ProblemCode(400, "A number is outside the field's bounds."),
    "too_long": ProblemCode(400, "A string is longer than the field allows."),
    "too_short": ProblemCode(400, "A string is shorter than the field allows."),
    "too_many": ProblemCode(400, "A list has more items than the field allows."),
    "too_few": ProblemCode(400, "A list has fewer items than the field needs."),
    "too_large": ProblemCode(400, "A JSON value (meta) is larger than its byte limit."),
    "empty_value": ProblemCode(400, "A field or query parameter is empty where a value is needed."),
    "missing_body": ProblemCode(400, "A write that takes a body was sent without one (an empty change is {})."),
    "empty_patch": ProblemCode(400, "A PATCH body names no field."),
    "invalid_characters": ProblemCode(400, "A string holds characters that are not allowed (NUL)."),
    "invalid_tag": ProblemCode(400, "A tag is blank or too long."),
    "duplicate_tag": ProblemCode(400, "The same tag is listed twice."),
    "invalid_boolean": ProblemCode(400, "A query parameter that takes a boolean holds something else."),
    "invalid_actor": ProblemCode(400, "The X-CWOM-Actor header is not a JSON Actor object."),
    "invalid_value": ProblemCode(400, "The database refused a value of the request."),
    "unknown_parameter": ProblemCode(400, "A query parameter the endpoint does not take."),
    "invalid_ordering": ProblemCode(400, "ordering names a field the list cannot be ordered by."),
    "invalid_page_size": ProblemCode(400, "page_size is not a whole number in range."),
    "invalid_idempotency_key": ProblemCode(400, "The Idempotency-Key header is empty or too long."),
    "unknown_field": ProblemCode(400, "An executor config key the executor does not take."),
    "invalid_token_name": ProblemCode(400, "A token name breaks the naming rule."),
    "blank": ProblemCode(400, "A required value is blank (Django's own check; the schema says it first)."),
    "null": ProblemCode(400, "A value is null where it may not be (Django's own check)."),
    "max_length": ProblemCode(400, "A value is longer than its column (Django's own check)."),
    # 422: well-formed, but a rule the schema cannot express
    "unknown_ref": ProblemCode(422, "A Ref names no object (no such id, or no repo with that slug)."),
    "wrong_kind": ProblemCode(422, "A Ref names an object of another kind (the message says which)."),
    "duplicate_ref": ProblemCode(422, "The same object is listed twice in one list of Refs."),
    "too_many_links": ProblemCode(422, "A link list would hold more Refs than it may (200) after the change."),
    "bounded_list": ProblemCode(
        422, "A bounded list (shown newest first, with _total) is changed with add/remove, never sent whole."
    ),
    "self_reference": ProblemCode(422, "An issue relates to itself."),
    "cycle": ProblemCode(422, "A parent would make a cycle in the issue parent chain."),
    "repo_mismatch": ProblemCode(422, "A run's repo is not its issue's repo."),
    "issue_mismatch": ProblemCode(422, "An input or output belongs to another issue than the run's."),
    "packet_issue_mismatch": ProblemCode(422, "A context packet linked to an issue is for another issue."),
    "packet_required": ProblemCode(422, "A run past planned needs at least one context packet."),
    "failure_required": ProblemCode(422, "A failed run needs a failure category and message."),
    "failure_not_allowed": ProblemCode(422, "Only a failed run has a failure."),
    "failure_mismatch": ProblemCode(422, "The failure's category and message do not go together."),
    "invalid_initial_status": ProblemCode(422, "A run is created planned or ready only."),
    "invalid_telemetry": ProblemCode(422, "Telemetry contradicts the run's status or itself."),
    "in_the_past": ProblemCode(422, "A time that must be in the future is not."),
    "use_transition": ProblemCode(422, "A field that only a status transition sets."),
    "invalid_cursor": ProblemCode(422, "The pagination cursor does not decode (use the next/previous links)."),
    "too_many_values": ProblemCode(422, "A list query names more filter values in all than the limit."),
    "idempotency_key_reused": ProblemCode(422, "The Idempotency-Key was used with a different request."),
    "digest_mismatch": ProblemCode(422, "Uploaded bytes do not match the declared digest."),
    "not_allowed": ProblemCode(
        422, "A value the service's settings refuse: an executor's config, a subscription URL off the allowlist."
    ),
    "executor_disabled": ProblemCode(422, "The executor named is disabled on this service."),
    # 409: the current state
    "immutable": ProblemCode(409, "The object or field never changes after creation."),
    "sealed": ProblemCode(409, "The context packet is sealed; create a new version instead."),
    "read_only_field": ProblemCode(409, "A read-only field was sent with another value than the object's."),
    "duplicate": ProblemCode(409, "A unique key (slug, version, ...) is already taken."),
    "unique": ProblemCode(409, "As duplicate (Django's name for a taken unique field; the API says duplicate)."),
    "illegal_transition": ProblemCode(409, "The run cannot move to that status from its current one."),
    "transition_conflict": ProblemCode(409, "The run changed status while the move was being made; read it again."),
    "inputs_frozen": ProblemCode(409, "A started run's inputs never change."),
    "append_only": ProblemCode(409, "decision_log only grows."),
    "packet_not_sealed": ProblemCode(409, "A run past planned needs sealed packets; this one is a draft."),
    "run_not_started": ProblemCode(409, "An artifact needs a started run."),
    "content_exists": ProblemCode(409, "The artifact already has other stored bytes."),
    "link_exists": ProblemCode(
        409, "A Ref to add is linked already with another role: remove and add it in one change."
    ),
    "not_retryable": ProblemCode(409, "Only a failed or canceled run of the same issue can be retried."),
    "no_executor": ProblemCode(409, "The run was not executed by the service (managed_by client): create the retry."),
    "idempotency_in_progress": ProblemCode(409, "A request with this Idempotency-Key is still running."),
    "conflict": ProblemCode(409, "The database refused the change as conflicting with stored data."),
    # credentials, methods, media types, preconditions, limits, the service
    "not_authenticated": ProblemCode(401, "No credential: send Authorization: Bearer <token>."),
    "authentication_failed": ProblemCode(401, "The credential is unknown, revoked or malformed."),
    "token_expired": ProblemCode(401, "The token is past its expiry."),
    "read_only": ProblemCode(403, "The token is read-only; writing needs a read-write token."),
    "permission_denied": ProblemCode(403, "The credential may not do this."),
    "not_found": ProblemCode(404, "The path names no object (no such id, an id of another kind, or no endpoint)."),
    "no_content": ProblemCode(404, "The artifact has no stored bytes."),
    "method_not_allowed": ProblemCode(405, "The method is not allowed here (see Allow)."),
    "not_acceptable": ProblemCode(406, "No representation matches Accept."),
    "precondition_failed": ProblemCode(412, "If-Match does not match the object's current ETag."),
    "precondition_required": ProblemCode(
        428, "Replacing a whole link list needs If-Match (or send add/remove instead)."
    ),
    "payload_too_large": ProblemCode(413, "The request body (or artifact content) is over the limit."),
    "uri_too_long": ProblemCode(414, "The request line (path and query string) is over the server's limit."),
    "unsupported_media_type": ProblemCode(415, "The body's Content-Type is not one the endpoint takes."),
    "throttled": ProblemCode(429, "Too many requests; wait for Retry-After seconds."),
    "headers_too_large": ProblemCode(431, "A request header, or all of them, is over the server's limit."),
    "expectation_failed": ProblemCode(417, "The Expect header asks for something the server does not do."),
    "internal_error": ProblemCode(500, "An unexpected error; it has been logged."),
    "database_unavailable": ProblemCode(503, "The database cannot be reached; retry after Retry-After seconds."),
}


def problem_code_table() -> str:
    """:data:`PROBLEM_CODES` as the Markdown table of ``docs/api.md`` (a test keeps the two equal)."""
    rows = ["| code | status | meaning |", "|---|---|---|"]
    rows += [f"| `{code}` | {entry.status} | {entry.meaning} |" for code, entry in PROBLEM_CODES.items()]
    return "\n".join(rows) + "\n"


# When one refusal carries errors of several statuses, the first of these answers: a conflict with the
# object's state is not fixed by changing the body, a rule the schema cannot express comes next.
STATUS_PRECEDENCE = (409, 422, 400)


def status_of(code: str, default: int = 400) -> int:
    """The status the policy gives ``code`` (``default`` for a code outside the table)."""
    known = PROBLEM_CODES.get(code)
    return known.status if known else default


def _pick(errors: list[dict[str, str]]) -> tuple[int, str]:
    """(status, top-level code) of a refusal with these per-field ``errors``: the first error of the status
    that comes first in :data:`STATUS_PRECEDENCE` gives both."""
    if not errors:
        return 400, "invalid"
    by_status = [(status_of(e["code"]), e["code"]) for e in errors]
    for wanted in STATUS_PRECEDENCE:
        for status_code, code in by_status:
            if status_code == wanted:
                return status_code, code
    return by_status[0]


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
    414: "URI too long",
    415: "Unsupported media type",
    417: "Expectation failed",
    422: "Unprocessable request",
    428: "Precondition required",
    429: "Too many requests",
    431: "Request header fields too large",
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
        self.problem_code = code or self.default_code
        # A registered code answers the policy's status (PROBLEM_CODES); ``status_code`` serves others.
        self.status_code = status_of(self.problem_code, status_code or self.status_code)
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


class PreconditionRequired(Problem):
    """428: a change that is only safe against the version the client read, sent without ``If-Match``."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_code = "precondition_required"
    default_detail = "This change needs If-Match with the ETag you read."


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
        return refusal_response(validation_errors(exc), request)
    if isinstance(exc, IntegrityError):
        # A guard trigger's code answers the status the model layer's check of the same rule does.
        code = writes.integrity_code(exc)
        message = _integrity_message(exc)
        return problem_response(
            status_of(code, 409), code, message, [{"path": "", "code": code, "message": message}], request
        )
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


def refusal_response(errors: list[dict[str, str]], request: Any, headers: dict[str, str] | None = None) -> Response:
    """A refusal with per-field ``errors``: its status and top-level code by the policy (:func:`_pick`)."""
    status_code, code = _pick(errors)
    return problem_response(
        status_code, code, _summary(errors, "The request is invalid."), errors, request, headers=headers
    )


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
        return refusal_response(drf_errors(exc.detail), request, headers=headers)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else "error"
    code = {"parse_error": "malformed_body", "error": "bad_request"}.get(code, code)
    status_code = status_of(code, status_code)
    if isinstance(exc, exceptions.MethodNotAllowed) and view is not None:
        headers["Allow"] = ", ".join(view.allowed_methods)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(status_code, code, str(detail), [], request, headers=headers)


# --- errors Django answers before (or outside) DRF --------------------------------------------------------
def _django_problem(request: Any, status_code: int, code: str, detail: str, fallback: Any, *args: Any) -> Any:
    """A problem document for a path under /api/, Django's own page elsewhere (the admin)."""
    from django.http import JsonResponse

    if not request.path.startswith("/api/"):
        return fallback(request, *args)
    return JsonResponse(
        problem_body(status_code, code, detail, [], request.path), status=status_code, content_type=PROBLEM_CONTENT_TYPE
    )


def handler400(request: Any, exception: Exception | None = None) -> Any:
    """Django's 400 (e.g. a Host header not in ALLOWED_HOSTS) as a problem document under /api/."""
    from django.views import defaults

    return _django_problem(
        request, 400, "bad_request", "The request cannot be read as sent.", defaults.bad_request, exception
    )


def handler403(request: Any, exception: Exception | None = None) -> Any:
    from django.views import defaults

    return _django_problem(request, 403, "permission_denied", "Forbidden.", defaults.permission_denied, exception)


def handler404(request: Any, exception: Exception | None = None) -> Any:
    from django.views import defaults

    return _django_problem(
        request, 404, "not_found", f"No endpoint at {request.path}.", defaults.page_not_found, exception
    )


def handler500(request: Any) -> Any:
    from django.views import defaults

    detail = "An unexpected error occurred; it has been logged."
    return _django_problem(request, 500, "internal_error", detail, defaults.server_error)
