"""The read-only admin: a mixin that allows looking and nothing else, a paginator that never counts a
whole big table, read-only inlines for link tables, a tag filter and a repo filter by slug.

Every date of a model is shown the same way (ISO 8601 in UTC, its age as a tooltip: ``<field>_utc``
columns stand in for the fields), and an id typed in any letter case is searched as the id it names."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import connections, models
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.safestring import SafeString

from ..ids import normalize_ulid
from .rendering import when

# Past this many rows a list shows "more than" pages: narrow it with filters or search.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows (one bounded subquery) instead of ``COUNT(*)`` over millions.

    For an unfiltered list on PostgreSQL the planner's row estimate (``pg_class.reltuples``) is used
    when it is past the cap, so the last pages stay reachable at no cost.
    """

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        if not hasattr(queryset, "query"):
            return len(queryset)
        estimate = _estimated_rows(queryset)
        if estimate is not None and estimate > COUNT_CAP:
            return estimate
        return queryset[: COUNT_CAP + 1].count()


def _estimated_rows(queryset: Any) -> int | None:
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or queryset.query.where:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else None


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes through the admin, superusers included; bulk actions are gone.

    Lists stay fast on millions of rows: no full count, a capped count for the filtered one.
    """

    show_full_result_count = False
    paginator: type[Paginator] = CappedCountPaginator
    list_per_page = 50
    view_on_site: Any = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


UTC_SUFFIX = "_utc"


def canonical_ids(search_term: str) -> str:
    """``search_term`` with every word that is a ULID in some letter case written as the canonical id."""
    words = []
    for word in search_term.split():
        try:
            words.append(normalize_ulid(word))
        except ValidationError:
            words.append(word)
    return " ".join(words)


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A ModelAdmin for looking only: every field shown read-only, every date in the one format.

    Subclasses say what a detail page shows in :meth:`shown_fieldsets` (``get_fieldsets`` puts the dates'
    ``<field>_utc`` columns in place of the date fields).
    """

    change_form_template = "cwom/admin/change_form.html"
    change_list_template = "cwom/admin/change_list.html"

    def shown_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_fieldsets(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (name, {**options, "fields": tuple(self._dated(field) for field in options["fields"])})
            for name, options in self.shown_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field for _name, options in self.get_fieldsets(request, obj) for field in options["fields"]]

    def get_list_display(self, request: HttpRequest) -> Any:
        return tuple(self._dated(column) for column in super().get_list_display(request))

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        return super().get_search_results(request, queryset, canonical_ids(search_term))

    def _dated(self, name: Any) -> Any:
        return f"{name}{UTC_SUFFIX}" if isinstance(name, str) and self._date_field(name) else name

    def _date_field(self, name: str) -> models.DateTimeField | None:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        return field if isinstance(field, models.DateTimeField) else None

    def __getattr__(self, name: str) -> Any:
        # ``<field>_utc``: the date column of a DateTimeField, sortable by the field.
        if name.endswith(UTC_SUFFIX) and not name.startswith("_") and "model" in self.__dict__:
            field = self._date_field(name.removesuffix(UTC_SUFFIX))
            if field is not None:
                return _date_column(field)
        raise AttributeError(name)


def _date_column(field: models.DateTimeField) -> Any:
    def show(obj: Any) -> SafeString:
        return when(getattr(obj, field.name))

    show.__name__ = field.name
    show.short_description = field.verbose_name  # type: ignore[attr-defined]
    show.admin_order_field = field.name  # type: ignore[attr-defined]
    return show


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A link table shown read-only on its owner's page; the target is a link to its own page."""

    extra = 0
    max_num = 0
    can_delete = False
    target: str = ""

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related(self.target).order_by("id")


class RepoFilter(admin.RelatedFieldListFilter):
    """The ``repo`` filter offering repos by slug (their ids mean nothing to a person)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        return list(field.related_model.objects.order_by("slug").values_list("pk", "slug"))


class TagFilter(admin.SimpleListFilter):
    """Filter by one tag; offers the most common tags of the newest rows (a bounded sample)."""

    title = "tag"
    parameter_name = "tag"
    sample = 1000

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = model_admin.model.objects.order_by("-created_at").values_list("tags", flat=True)[: self.sample]
        counts = Counter(tag for tags in recent for tag in tags or [])
        return [(tag, tag) for tag, _n in counts.most_common(20)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value():
            return queryset.filter(tags__has_any=[self.value()])
        return queryset
