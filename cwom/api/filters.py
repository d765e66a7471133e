"""Query filters for every list endpoint (django-filter FilterSets) and the ``ordering`` parameter.

Conventions shared by every filter here:

- several values of one filter OR together, given either as repeated parameters
  (``?status=ready&status=running``) or comma-separated (``?status=ready,running``);
- different filters AND together;
- enum filters refuse unknown values with a 400 naming the allowed ones;
- id filters (``repo_id``, ``issue_id`` ...) take ULIDs; a malformed id is a 400;
- ranges are ``<field>_after`` (inclusive) and ``<field>_before`` (exclusive), ISO-8601 with a timezone;
- an unknown query parameter is a 400 (a typo must not silently widen a query);
- so is an empty value (``?status=``, ``?created_before=``, ``?tag=a,``, ``?ordering=``): code ``empty_value``,
  as the schema documents (an enum, a pattern, a format or ``minLength: 1``). Only ``q`` may be empty
  (it then matches everything, as any text contains the empty string); it is at most 200 characters.

Each filter describes its own OpenAPI parameter (``openapi_schema``), read by :mod:`cwom.api.schema`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from cwom import enums
from cwom.ids import ULID_RE, normalize_ulid
from cwom.models import (
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineRef,
    Event,
    Issue,
    Repo,
    Run,
)
from cwom.shapes import LINK_TABLES
from cwom.validation import BLANKS, parse_timestamp

from .errors import BadRequest, Problem

PAGINATION_PARAMS = frozenset({"cursor", "page_size", "ordering"})
MAX_VALUES = 100
SEARCH_MAX_LENGTH = 200
TAG_MAX_LENGTH = 64
EMPTY_VALUE_MESSAGE = "An empty value is not allowed: give a value or leave the parameter out."


def comma_list_pattern(longest: int | None = None) -> str:
    """The pattern of one value of a list filter as :class:`ListWidget` reads it: comma-separated parts, each
    with something besides blanks (at most ``longest`` characters of it, blanks around it trimmed), no NUL."""
    inner = "[^,\\u0000]*" if longest is None else f"[^,\\u0000]{{0,{longest - 2}}}"
    blank, solid = f"[{BLANKS}]*", f"[^,{BLANKS}\\u0000]"
    part = f"{blank}{solid}(?:{inner}{solid})?{blank}"
    return f"^{part}(?:,{part})*$"


# --- fields and widgets ---------------------------------------------------------------------------
def empty_value_error() -> ValidationError:
    """The error of a parameter given with an empty (or blank) value."""
    return ValidationError(EMPTY_VALUE_MESSAGE, code="empty_value")


def is_blank(value: Any) -> bool:
    """Whether a query parameter value is empty or only whitespace (``None``, an absent one, is not)."""
    return value is not None and str(value).strip() == ""


class ListWidget(forms.Widget):
    """Reads ``?f=a&f=b`` and ``?f=a,b`` alike into ``["a", "b"]`` (order kept, duplicates dropped).

    An empty value, or an empty part of a comma-separated one (``?f=``, ``?f=a,``), is kept as ``""`` for
    :class:`ListField` to refuse: dropping it would turn ``?f=`` into no filter at all.
    """

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        raw = data.getlist(name) if hasattr(data, "getlist") else [] if data.get(name) is None else [data[name]]
        return list(dict.fromkeys(part.strip() for item in raw for part in str(item).split(",")))

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in data


class ListField(forms.Field):
    """A list of strings, each checked by ``clean_item``."""

    widget = ListWidget

    def __init__(self, *args: Any, clean_item: Callable[[str], str] | None = None, **kwargs: Any) -> None:
        self.clean_item = clean_item or (lambda value: value)
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> list[str]:
        values = list(value or [])
        if "" in values:
            raise empty_value_error()
        if len(values) > MAX_VALUES:
            # Repeated parameters and comma-separated parts add up, which no schema of the parameter can
            # bound: a well-formed request past a rule of the API, so a 422 (the other checks are 400s).
            message = f"At most {MAX_VALUES} values are allowed (repeated and comma-separated together)."
            raise Problem(message, "too_many_values", status_code=422)
        for item in values:
            if "\x00" in item:
                raise ValidationError("NUL characters are not allowed.", code="invalid_characters")
        return [self.clean_item(item) for item in values]


def _clean_id(value: str) -> str:
    try:
        return normalize_ulid(value)
    except ValidationError:
        raise ValidationError("%(value)r is not a ULID.", code="invalid_id", params={"value": value}) from None


def _enum_cleaner(choices: type[models.TextChoices]) -> Callable[[str], str]:
    allowed = list(choices.values)

    def clean(value: str) -> str:
        if value not in allowed:
            raise ValidationError(
                "%(value)r is not one of the allowed values: %(allowed)s.",
                code="invalid_choice",
                params={"value": value, "allowed": ", ".join(allowed)},
            )
        return value

    return clean


class StrictBooleanField(forms.Field):
    """``true``/``false`` (also ``1``/``0``); anything else is a 400 rather than ignored."""

    TRUE = frozenset({"true", "1"})
    FALSE = frozenset({"false", "0"})

    def to_python(self, value: Any) -> bool | None:
        if value is None:
            return None
        if is_blank(value):
            raise empty_value_error()
        lowered = str(value).strip().lower()
        if lowered in self.TRUE:
            return True
        if lowered in self.FALSE:
            return False
        raise ValidationError(
            "%(value)r is not a boolean: use true or false.", code="invalid_boolean", params={"value": value}
        )


class TimestampField(forms.DateTimeField):
    """An ISO-8601 timestamp that must carry a timezone (``Z`` or an offset)."""

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if is_blank(value):
            raise empty_value_error()
        moment = parse_timestamp(str(value))
        if moment is None:
            raise ValidationError(
                "%(value)r is not an ISO-8601 timestamp.", code="invalid_datetime", params={"value": value}
            )
        if moment.tzinfo is None:
            raise ValidationError("Timestamps need a timezone (use Z for UTC).", code="invalid_datetime")
        return moment


class SearchTextField(forms.CharField):
    """Search text: at most ``SEARCH_MAX_LENGTH`` characters as sent, no NUL; leading/trailing blanks trimmed.

    An empty ``q`` is allowed (the schema allows it) and matches everything.
    """

    def to_python(self, value: Any) -> str:
        if value is not None:
            text = str(value)
            if len(text) > SEARCH_MAX_LENGTH:
                raise ValidationError(
                    "At most %(max)d characters are allowed; this value has %(length)d.",
                    code="too_long",
                    params={"max": SEARCH_MAX_LENGTH, "length": len(text)},
                )
            if "\x00" in text:
                raise ValidationError("NUL characters are not allowed.", code="invalid_characters")
        return str(super().to_python(value))


# --- filters --------------------------------------------------------------------------------------
class ListFilter(django_filters.Filter):
    """Several values OR together: ``<field_name>__<lookup>=[values]``."""

    field_class = ListField
    item_schema: dict[str, Any] = {"type": "string", "pattern": comma_list_pattern()}

    def __init__(
        self,
        *args: Any,
        lookup: str = "in",
        clean_item: Callable[[str], str] | None = None,
        item_schema: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.list_lookup = lookup
        if item_schema is not None:
            self.item_schema = item_schema
        kwargs.setdefault("clean_item", clean_item)
        super().__init__(*args, **kwargs)

    def filter(self, qs: models.QuerySet[Any], value: list[str]) -> models.QuerySet[Any]:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__{self.list_lookup}": value})

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item_schema, "maxItems": MAX_VALUES}


class IdFilter(ListFilter):
    """Objects whose ``field_name`` is one of these ids."""

    item_schema = {"type": "string", "pattern": ULID_RE.pattern}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, clean_item=_clean_id, **kwargs)


class EnumFilter(ListFilter):
    """Objects whose ``field_name`` is one of these enum values (unknown values: 400 naming the allowed)."""

    def __init__(self, choices: type[models.TextChoices], *args: Any, **kwargs: Any) -> None:
        self.choices_enum = choices
        super().__init__(*args, clean_item=_enum_cleaner(choices), **kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "enum": list(self.choices_enum.values)}}


class LinkFilter(IdFilter):
    """Objects linked through a link table to any of these ids (a subquery, so no duplicate rows)."""

    def __init__(self, through: type[models.Model], owner: str, target: str, *args: Any, **kwargs: Any) -> None:
        self.through, self.owner, self.target = through, owner, target
        super().__init__(*args, **kwargs)

    def filter(self, qs: models.QuerySet[Any], value: list[str]) -> models.QuerySet[Any]:
        if not value:
            return qs
        linked = self.through._default_manager.filter(**{f"{self.target}_id__in": value}).values(f"{self.owner}_id")
        return qs.filter(pk__in=linked)


class TextSearchFilter(django_filters.CharFilter):
    """Case-insensitive substring search over several text columns (OR)."""

    field_class = SearchTextField

    def __init__(self, *fields: str, **kwargs: Any) -> None:
        self.search_fields = fields
        kwargs.setdefault(
            "help_text",
            f"Case-insensitive text search in {', '.join(fields)}, at most {SEARCH_MAX_LENGTH} characters "
            "(empty: no text condition).",
        )
        super().__init__(**kwargs)

    def filter(self, qs: models.QuerySet[Any], value: str) -> models.QuerySet[Any]:
        if not value:
            return qs
        query = Q()
        for name in self.search_fields:
            query |= Q(**{f"{name}__icontains": value})
        return qs.filter(query)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": SEARCH_MAX_LENGTH}


class BooleanFilter(django_filters.Filter):
    """``true`` / ``false``."""

    field_class = StrictBooleanField

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class TimestampFilter(django_filters.Filter):
    """One end of a time range: ``gte`` for ``*_after``, ``lt`` for ``*_before``."""

    field_class = TimestampField

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


def time_range(column: str) -> tuple[TimestampFilter, TimestampFilter]:
    """``(after, before)`` filters on ``column``: ``gte`` (inclusive) and ``lt`` (exclusive)."""
    return (
        TimestampFilter(
            field_name=column, lookup_expr="gte", help_text=f"{column} at or after this moment (inclusive)."
        ),
        TimestampFilter(field_name=column, lookup_expr="lt", help_text=f"{column} before this moment (exclusive)."),
    )


def _clean_tag(value: str) -> str:
    if len(value) > TAG_MAX_LENGTH:
        raise ValidationError(
            "A tag is at most %(max)d characters.", code="invalid_tag", params={"max": TAG_MAX_LENGTH}
        )
    return value


def _given(filters: dict[str, Any], data: Any) -> dict[str, Any]:
    """The filters a query gives a value for, and any required one."""
    return {name: flt for name, flt in filters.items() if name in data or flt.extra.get("required")}


class QueryFilterSet(django_filters.FilterSet):
    """django-filter's FilterSet, with a form of the filters the query names and a say in the list's order.

    The form (django-filter's ``form`` property) holds only the fields of the filters the query gives (and of
    any required one), set on an instance of ``Meta.form`` as Django allows (``form.fields``). An absent
    optional filter cleans to an empty value, which filters nothing and cannot fail, so the queryset and the
    errors are those of django-filter's form of every filter (``tests/api/test_filters.py`` holds them equal),
    for 2 or 3 fields built and cleaned instead of up to 14 built, gathered into a new form class, deep-copied
    into its form and cleaned: 9-23% of a list request's CPU time (``bench/profile_filters.py``;
    ``docs/performance.md``). No cache: a form class per set of names measured no better.

    :meth:`ordering_for` is how a FilterSet orders the list it filters: the view asks it (through
    :func:`served_ordering`) for the ordering to apply and to page by.
    """

    base_filters: dict[str, Any]  # django-filter's metaclass sets it; here, for the type checker

    def __init__(self, data: Any = None, queryset: Any = None, *, request: Any = None, prefix: Any = None) -> None:
        if data is not None and prefix is None:
            # django-filter deep-copies every declared filter into each FilterSet (15% of a list request's CPU
            # time); the form holds only the given ones, and only they filter: copy only them.
            self.base_filters = _given(self.base_filters, data)
        super().__init__(data, queryset, request=request, prefix=prefix)

    @cached_property
    def form(self) -> forms.Form:
        if not self.is_bound or self.form_prefix is not None:
            return super().form
        form = self._meta.form(self.data)
        form.fields.update((name, flt.field) for name, flt in _given(self.filters, self.data).items())
        return form

    def ordering_for(self, ordering: tuple[str, ...]) -> tuple[str, ...]:
        """The ordering that serves ``ordering`` (the request's, already checked) on :attr:`qs`: as asked."""
        return ordering


class CwomFilterSet(QueryFilterSet):
    """Base of the per-kind FilterSets: id, tags and creation range for every kind."""

    id = IdFilter(field_name="id", help_text="Objects with any of these ids.")
    tag = ListFilter(
        field_name="tags",
        lookup="has_any",
        help_text="Objects carrying any of these tags.",
        clean_item=_clean_tag,
        item_schema={"type": "string", "pattern": comma_list_pattern(TAG_MAX_LENGTH)},
    )
    created_after, created_before = time_range("created_at")


# --- the FilterSets ---------------------------------------------------------------------------------
class RepoFilterSet(CwomFilterSet):
    """Repos by slug, visibility, source system / external id, owner, tag, name search, creation time."""

    slug = ListFilter(field_name="slug", help_text="Repos with any of these slugs.")
    visibility = EnumFilter(enums.Visibility, field_name="visibility")
    source_system = ListFilter(field_name="source_system", help_text="Repos imported from any of these systems.")
    source_external_id = ListFilter(field_name="source_external_id", help_text="Repos with these external ids.")
    owner = ListFilter(field_name="owners", lookup="has_actor", help_text="Repos owned by any of these actor_ids.")
    q = TextSearchFilter("name", "slug")
    updated_after, updated_before = time_range("updated_at")

    class Meta:
        model = Repo
        fields: list[str] = []


# The ordering field of an issue list filtered by one tag: the tag row's copy of the issue's created_at.
TAG_CREATED_AT = "tag_created_at"
# Ordering fields that are annotations, with the model field whose values they carry (for cursor checks).
ORDERING_ALIASES = {TAG_CREATED_AT: "created_at"}


class IssueFilterSet(CwomFilterSet):
    """Issues by repo, status, type, priority, tag, assignee, watcher, parent, text, created/updated time.

    Several tags OR together through the jsonb GIN index (a join per tag would repeat issues). One tag is read
    from the tag index ``cwom_issuetag`` instead: the tag rows are filtered by the query's ``repo_id`` and
    ``status`` too (``CARRIED``, not applied to the issue's own columns: the same condition on both tables
    would make the planner expect ~10x fewer matches than there are), and a list in creation order is ordered
    by the tag row's ``created_at`` (``TAG_CREATED_AT``, equal to the issue's; :meth:`ordering_for`), so the
    btree ``(tag, repo_id, status, created_at, issue_id)`` (or ``(tag, created_at, issue_id)``) yields the
    page in order, cursor position included: a page costs its own rows, not the size of the repo or the tag.
    """

    CARRIED = ("repo_id", "status")

    repo_id = IdFilter(field_name="repo_id", help_text="Issues in any of these repos.")
    status = EnumFilter(enums.Status, field_name="status")
    type = EnumFilter(enums.IssueType, field_name="type")
    priority = EnumFilter(enums.Priority, field_name="priority")
    assignee = ListFilter(
        field_name="assignees", lookup="has_actor", help_text="Issues assigned to any of these actor_ids."
    )
    watcher = ListFilter(field_name="watchers", lookup="has_actor", help_text="Issues watched by these actor_ids.")
    parent_id = IdFilter(field_name="parent_id", help_text="Children of any of these issues.")
    q = TextSearchFilter("title", "description")
    updated_after, updated_before = time_range("updated_at")

    class Meta:
        model = Issue
        fields: list[str] = []

    def single_tag(self) -> str | None:
        """The tag of a valid query naming exactly one (the case served by the tag index), else ``None``."""
        tags = self.form.cleaned_data.get("tag") if self.is_valid() else None
        return tags[0] if tags and len(tags) == 1 else None

    def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        tag = self.single_tag()
        if tag is None:
            return super().filter_queryset(queryset)
        data = self.form.cleaned_data
        for name, value in data.items():
            if name == "tag":
                rows: dict[str, Any] = {"tag_rows__tag": tag}
                rows.update({f"tag_rows__{key}__in": data[key] for key in self.CARRIED if data.get(key)})
                queryset = queryset.filter(**rows).annotate(**{TAG_CREATED_AT: F("tag_rows__created_at")})
            elif name not in self.CARRIED:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def ordering_for(self, ordering: tuple[str, ...]) -> tuple[str, ...]:
        """In creation order, a list filtered by one tag is ordered by the tag row's ``created_at``."""
        first = ordering[0]
        if first.lstrip("-") != "created_at" or self.single_tag() is None:
            return ordering
        sign = "-" if first.startswith("-") else ""
        return (f"{sign}{TAG_CREATED_AT}", f"{sign}id")


class ContextPacketFilterSet(CwomFilterSet):
    """Packets by issue, version, sealed, constraint snapshot, doctrine ref, tag, creation time."""

    issue_id = IdFilter(field_name="for_issue_id", help_text="Packets for any of these issues.")
    version = ListFilter(field_name="version", help_text="Packets with any of these versions.")
    sealed = BooleanFilter(field_name="sealed", help_text="true: sealed packets; false: drafts.")
    constraint_snapshot_id = IdFilter(field_name="constraint_snapshot_id", help_text="Packets pinning these snapshots.")
    doctrine_ref_id = LinkFilter(
        *LINK_TABLES[(enums.Kind.CONTEXT_PACKET, "doctrine_refs")],
        help_text="Packets naming any of these doctrine refs.",
    )

    class Meta:
        model = ContextPacket
        fields: list[str] = []


class ConstraintSnapshotFilterSet(CwomFilterSet):
    """Snapshots by scope, owner, captured time, tag, creation time."""

    scope = EnumFilter(enums.ConstraintScope, field_name="scope")
    owner = ListFilter(field_name="owner__actor_id", help_text="Snapshots owned by any of these actor_ids.")
    captured_after, captured_before = time_range("captured_at")

    class Meta:
        model = ConstraintSnapshot
        fields: list[str] = []


class DoctrineRefFilterSet(CwomFilterSet):
    """Doctrine refs by namespace, name, version, type, priority, applicable repo / issue type, tag."""

    namespace = ListFilter(field_name="namespace", help_text="Doctrine refs in any of these namespaces.")
    name = ListFilter(field_name="name", help_text="Doctrine refs with any of these names.")
    version = ListFilter(field_name="version", help_text="Doctrine refs with any of these versions.")
    type = EnumFilter(enums.DoctrineType, field_name="type")
    priority = EnumFilter(enums.DoctrinePriority, field_name="priority")
    repo_id = LinkFilter(
        *LINK_TABLES[(enums.Kind.DOCTRINE_REF, "repo_refs")],
        help_text="Doctrine refs applicable to any of these repos.",
    )
    issue_type = EnumFilter(
        enums.IssueType,
        field_name="applicability_issue_types",
        lookup="has_any",
        help_text="Doctrine refs applicable to any of these issue types.",
    )
    applicability_tag = ListFilter(
        field_name="applicability_tags", lookup="has_any", help_text="Doctrine refs applicable to any of these tags."
    )
    q = TextSearchFilter("name", "statement")

    class Meta:
        model = DoctrineRef
        fields: list[str] = []


class RunFilterSet(CwomFilterSet):
    """Runs by issue, repo, status, mode, tag, packet, doctrine ref, snapshot, started/ended/created time."""

    issue_id = IdFilter(field_name="for_issue_id", help_text="Runs for any of these issues.")
    repo_id = IdFilter(field_name="repo_id", help_text="Runs in any of these repos.")
    status = EnumFilter(enums.Status, field_name="status")
    mode = EnumFilter(enums.RunMode, field_name="mode")
    context_packet_id = LinkFilter(
        *LINK_TABLES[(enums.Kind.RUN, "context_packets")], help_text="Runs using any of these context packets."
    )
    doctrine_ref_id = LinkFilter(
        *LINK_TABLES[(enums.Kind.RUN, "doctrine_refs")], help_text="Runs naming these doctrine refs."
    )
    constraint_snapshot_id = IdFilter(field_name="constraint_snapshot_id", help_text="Runs pinning these snapshots.")
    failure_category = EnumFilter(enums.FailureCategory, field_name="failure_category")
    started_after, started_before = time_range("started_at")
    ended_after, ended_before = time_range("ended_at")

    class Meta:
        model = Run
        fields: list[str] = []


class ArtifactFilterSet(CwomFilterSet):
    """Artifacts by run, issue, type, verification status, digest, media type, tag, creation time."""

    run_id = IdFilter(field_name="produced_by_id", help_text="Artifacts produced by any of these runs.")
    issue_id = IdFilter(field_name="for_issue_id", help_text="Artifacts for any of these issues.")
    type = EnumFilter(enums.ArtifactType, field_name="type")
    verification_status = EnumFilter(enums.VerificationStatus, field_name="verification_status")
    digest = ListFilter(field_name="digest", help_text="Artifacts with any of these digests.")
    media_type = ListFilter(field_name="media_type", help_text="Artifacts with any of these media types.")

    class Meta:
        model = Artifact
        fields: list[str] = []


class EventFilterSet(QueryFilterSet):
    """Events by object id, object kind, action, principal, time."""

    object_id = IdFilter(field_name="object_id", help_text="Events of any of these objects.")
    kind = EnumFilter(enums.Kind, field_name="object_kind", help_text="Events of objects of these kinds.")
    action = EnumFilter(enums.EventAction, field_name="action")
    principal = ListFilter(field_name="principal", help_text="Events recorded for any of these principals.")
    at_after, at_before = time_range("at")

    class Meta:
        model = Event
        fields: list[str] = []


FILTERSETS: dict[str, type[django_filters.FilterSet]] = {
    enums.Kind.REPO: RepoFilterSet,
    enums.Kind.ISSUE: IssueFilterSet,
    enums.Kind.CONTEXT_PACKET: ContextPacketFilterSet,
    enums.Kind.CONSTRAINT_SNAPSHOT: ConstraintSnapshotFilterSet,
    enums.Kind.DOCTRINE_REF: DoctrineRefFilterSet,
    enums.Kind.RUN: RunFilterSet,
    enums.Kind.ARTIFACT: ArtifactFilterSet,
}


def filter_description(name: str, flt: django_filters.Filter) -> str:
    """A filter's documentation line (help text, plus the OR rule for list filters)."""
    text = str(flt.extra.get("help_text") or "")
    if isinstance(flt, EnumFilter) and not text:
        text = f"Objects whose {flt.field_name} is any of these values."
    if isinstance(flt, ListFilter):
        text += " Several values OR together: repeat the parameter or separate values with commas."
    return text.strip()


# --- backends ---------------------------------------------------------------------------------------
class CwomFilterBackend(DjangoFilterBackend):
    """django-filter on list actions only, refusing unknown query parameters with a 400.

    The FilterSet it builds stays on the view as ``view.filterset``, for :func:`served_ordering`.
    """

    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        if getattr(view, "action", "list") != "list":
            return queryset
        filterset_class = self.get_filterset_class(view, queryset)
        check_params(request, set(filterset_class.base_filters) if filterset_class else set())
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request: Request, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        view.filterset = filterset
        return filterset


def served_ordering(view: Any, ordering: tuple[str, ...]) -> tuple[str, ...]:
    """``ordering`` as the FilterSet of the view's list serves it (:meth:`QueryFilterSet.ordering_for`).

    As asked when the view filtered nothing in this request (not a list, or no FilterSet).
    """
    filterset = getattr(view, "filterset", None)
    return filterset.ordering_for(ordering) if isinstance(filterset, QueryFilterSet) else ordering


def check_params(request: Request, filters: set[str]) -> None:
    """400 for a query parameter that is neither one of ``filters`` nor a paging/ordering parameter (the message
    suggests a close name)."""
    allowed = set(PAGINATION_PARAMS) | filters
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        errors = [
            {"path": name, "code": "unknown_parameter", "message": unknown_parameter_message(name, sorted(allowed))}
            for name in unknown
        ]
        raise BadRequest(errors[0]["message"], "unknown_parameter", errors=errors)


def unknown_parameter_message(name: str, allowed: list[str]) -> str:
    """ "Unknown query parameter 'stauts'. Did you mean 'status'?" when an allowed one is close, else them all."""
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.75)
    if close:
        return f"Unknown query parameter {name!r}. Did you mean {close[0]!r}?"
    return f"Unknown query parameter {name!r}; allowed: {', '.join(allowed)}."


def empty_parameter(name: str, code: str) -> BadRequest:
    """The 400 for a paging/ordering parameter given empty: ``code`` as the problem's, ``empty_value`` in errors."""
    return BadRequest(
        f"{name}: {EMPTY_VALUE_MESSAGE}",
        code,
        errors=[{"path": name, "code": "empty_value", "message": EMPTY_VALUE_MESSAGE}],
    )


def parse_ordering(raw: str | None, allowed: Iterable[str], default: tuple[str, ...]) -> tuple[str, ...]:
    """The ``ordering`` parameter checked against a whitelist; ``id`` is appended as a tie-breaker.

    Absent, it is ``default``; empty (``?ordering=``), a 400 like any value outside the documented enum.
    """
    allowed = tuple(allowed)
    if raw is None:
        return default
    if is_blank(raw):
        raise empty_parameter("ordering", "invalid_ordering")
    terms = [term.strip() for term in raw.split(",")]
    bad = [term for term in terms if term.lstrip("-") not in allowed]
    if bad or len(terms) != 1:
        choices = ", ".join(f"{name}, -{name}" for name in allowed)
        message = f"ordering must be one of: {choices}; got {raw!r}."
        raise BadRequest(
            message, "invalid_ordering", errors=[{"path": "ordering", "code": "invalid_choice", "message": message}]
        )
    term = terms[0]
    tie = "-id" if term.startswith("-") else "id"
    return (term,) if term.lstrip("-") == "id" else (term, tie)


class OrderingBackend(BaseFilterBackend):
    """Applies the view's whitelisted ``ordering`` (the paginator reads the same resolution)."""

    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        resolver = getattr(view, "resolve_ordering", None)
        if resolver is None or getattr(view, "action", "list") != "list":
            return queryset
        return queryset.order_by(*resolver(request))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        options = getattr(view, "ordering_options", None)
        fields, ordering = (
            options() if options else (getattr(view, "ordering_fields", ()), getattr(view, "ordering", ()))
        )
        if not fields:
            return []
        default = ",".join(ordering[:1])
        return [
            {
                "name": "ordering",
                "required": False,
                "in": "query",
                "description": f"Sort order (prefix '-' for descending). Default: {default}.",
                "schema": {"type": "string", "enum": [v for name in fields for v in (name, f"-{name}")]},
            }
        ]
