"""The read-only admin at ``/admin/``: humans inspect what agents did, and change nothing.

Every kind, the event log, the id index and the API tokens are registered through
:class:`~cwom.admin.readonly.ReadOnlyAdmin`. A detail page shows the object's columns, its link tables,
its contract document (every Ref a link) and its events; a run's page shows its whole causality chain as
a picture and a table and links to its comparison with the previous run of its issue
(:mod:`cwom.admin.compare_page`), an issue's page its inputs and newest runs as a picture. The home page
(:mod:`cwom.admin.site`) shows the system at a glance.
Access is Django's view permission: members of the ``cwom viewers`` group (see ``cwom.signals``) can look.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from .. import shapes
from ..humanize import count, duration, usd
from ..lineage import issue_overview, run_bundle
from ..models import (
    ApiToken,
    Artifact,
    ConstraintSnapshot,
    ContextPacket,
    DoctrineApplicableRepo,
    DoctrineRef,
    Event,
    Issue,
    IssueBlock,
    IssueConstraintSnapshot,
    IssueContextPacket,
    IssueDoctrineRef,
    IssueDuplicate,
    ObjectIndex,
    PacketDoctrineRef,
    Repo,
    Run,
    RunContextPacket,
    RunDoctrineRef,
)
from . import compare_page, lineage_svg
from .readonly import ReadOnlyAdmin, ReadOnlyAdminMixin, ReadOnlyInline, RepoFilter, TagFilter
from .rendering import (
    CONTENT_PATH,
    abridged,
    byte_size,
    change_summary,
    object_link,
    pretty_json,
    run_chain,
    run_stored_ids,
    runs_table,
    timeline,
)

__all__ = ["ReadOnlyAdmin", "ReadOnlyAdminMixin"]

# Fieldsets whose content (a picture, a chain, a document, a timeline) takes the whole width, under its label.
WIDE = ("cwom-wide",)


class CwomObjectAdmin(ReadOnlyAdmin):
    """A kind's admin: newest first; columns, link tables, contract document and events on the detail page."""

    ordering = ("-created_at", "-id")
    summary: tuple[str, ...] = ()
    date_columns: tuple[str, ...] = ("created_at", "updated_at")

    def shown_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (None, {"fields": ("id", *self.summary, *self.date_columns)}),
            *self.extra_fieldsets(obj),
            ("Contract document", {"fields": ("contract_document",), "classes": WIDE}),
            ("Events", {"fields": ("event_timeline",), "classes": WIDE}),
        ]

    def extra_fieldsets(self, obj: Any) -> list[tuple[str, dict[str, Any]]]:
        return []

    @admin.display(description="As the API shows it (long lists abridged)")
    def contract_document(self, obj: Any) -> SafeString:
        return pretty_json(abridged(shapes.dump(shapes.SHAPES[obj.KIND].queryset().get(pk=obj.pk))))

    @admin.display(description="Timeline")
    def event_timeline(self, obj: Any) -> SafeString:
        return timeline([obj.pk])


def inline(model: type, owner: str, target: str, title: str) -> type[ReadOnlyInline]:
    """A read-only inline of the link table ``model`` on the ``owner`` side, showing ``target`` and role."""
    return type(
        f"{model.__name__}{owner.title()}Inline",
        (ReadOnlyInline,),
        {"model": model, "fk_name": owner, "target": target, "fields": (target, "role"), "verbose_name_plural": title},
    )


@admin.register(Repo)
class RepoAdmin(CwomObjectAdmin):
    list_display = ("slug", "name", "visibility", "source_system", "default_branch", "created_at")
    list_filter = ("visibility", "source_system", TagFilter)
    search_fields = ("id__exact", "slug", "name", "source_external_id__exact")
    summary = ("name", "slug", "visibility", "source_system", "source_external_id", "source_url", "default_branch")


@admin.register(Issue)
class IssueAdmin(CwomObjectAdmin):
    list_display = ("title", "repo_slug", "type", "priority", "status", "created_at")
    list_select_related = ("repo",)
    list_filter = ("status", "type", "priority", ("repo", RepoFilter), TagFilter)
    search_fields = ("id__exact", "title")
    summary = ("repo", "title", "type", "priority", "status", "parent")
    inlines = (
        inline(IssueContextPacket, "issue", "packet", "context packets"),
        inline(IssueDoctrineRef, "issue", "doctrine_ref", "doctrine refs"),
        inline(IssueConstraintSnapshot, "issue", "snapshot", "constraint snapshots"),
        inline(IssueBlock, "blocker", "blocked", "blocks"),
        inline(IssueBlock, "blocked", "blocker", "blocked by"),
        inline(IssueDuplicate, "issue", "duplicate_of", "duplicates"),
    )

    @admin.display(description="repo", ordering="repo__slug")
    def repo_slug(self, obj: Issue) -> str:
        return obj.repo.slug

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("repo", "parent")

    def extra_fieldsets(self, obj: Any) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("Lineage", {"fields": ("lineage_picture",), "classes": WIDE}),
            ("Runs", {"fields": ("issue_runs",), "classes": WIDE}),
        ]

    @admin.display(description="Issue → its inputs → its newest runs")
    def lineage_picture(self, obj: Issue) -> SafeString:
        return lineage_svg.inline(lineage_svg.issue_picture(self.overview(obj)))

    @admin.display(description="Newest runs")
    def issue_runs(self, obj: Issue) -> SafeString:
        overview = self.overview(obj)
        all_runs = format_html(
            '<p><a href="{}?for_issue__id__exact={}">All {} runs of this issue</a></p>',
            reverse("admin:cwom_run_changelist"),
            obj.pk,
            count(overview["run_count"]),
        )
        return format_html("{}{}", runs_table(overview["runs"]), all_runs)

    @staticmethod
    def overview(obj: Issue) -> dict[str, Any]:
        """The issue's inputs and newest runs, loaded once for the picture and the table."""
        if "_overview" not in obj.__dict__:
            obj.__dict__["_overview"] = issue_overview(obj.pk)
        return obj.__dict__["_overview"]


@admin.register(ContextPacket)
class ContextPacketAdmin(CwomObjectAdmin):
    list_display = ("id", "issue_title", "version", "sealed", "sealed_at", "created_at")
    list_select_related = ("for_issue",)
    list_filter = ("sealed", TagFilter)
    search_fields = ("id__exact", "for_issue__id__exact", "version")
    summary = ("for_issue", "version", "sealed", "sealed_at", "constraint_snapshot", "summary", "instructions")
    inlines = (inline(PacketDoctrineRef, "packet", "doctrine_ref", "doctrine refs"),)

    @admin.display(description="issue")
    def issue_title(self, obj: ContextPacket) -> str:
        return obj.for_issue.title


@admin.register(ConstraintSnapshot)
class ConstraintSnapshotAdmin(CwomObjectAdmin):
    list_display = ("id", "scope", "owner_display", "risk_tolerance", "environment_connectivity", "captured_at")
    list_filter = ("scope", "risk_tolerance", "environment_connectivity", TagFilter)
    search_fields = ("id__exact",)
    ordering = ("-captured_at", "-id")
    summary = ("scope", "captured_at", "time_available_minutes", "budget_usd_available", "risk_tolerance")
    date_columns = ("created_at",)

    @admin.display(description="owner")
    def owner_display(self, obj: ConstraintSnapshot) -> str:
        return (obj.owner or {}).get("display") or (obj.owner or {}).get("actor_id") or "—"


@admin.register(DoctrineRef)
class DoctrineRefAdmin(CwomObjectAdmin):
    list_display = ("namespace", "name", "version", "type", "priority", "created_at")
    list_filter = ("type", "priority", "namespace", TagFilter)
    search_fields = ("id__exact", "namespace", "name")
    summary = ("namespace", "name", "version", "type", "priority", "published", "statement", "rationale")
    inlines = (inline(DoctrineApplicableRepo, "doctrine_ref", "repo", "applies to repos"),)


@admin.register(Run)
class RunAdmin(CwomObjectAdmin):
    list_display = (
        "id",
        "issue_title",
        "repo_slug",
        "status",
        "mode",
        "started_at",
        "duration",
        "cost",
        "created_at",
    )
    list_select_related = ("for_issue", "repo")
    list_filter = ("status", "mode", ("repo", RepoFilter), "failure_category", TagFilter)
    search_fields = ("id__exact", "for_issue__id__exact")
    summary = (
        "for_issue",
        "repo",
        "status",
        "mode",
        "executor_runtime",
        "constraint_snapshot",
        "started_at",
        "ended_at",
        "duration",
        "cost",
        "cost_tokens",
        "cost_compute_s",
        "result_summary",
        "failure_category",
        "failure_message",
    )
    inlines = (
        inline(RunContextPacket, "run", "packet", "input context packets"),
        inline(RunDoctrineRef, "run", "doctrine_ref", "input doctrine refs"),
    )

    @admin.display(description="issue", ordering="for_issue__title")
    def issue_title(self, obj: Run) -> str:
        return obj.for_issue.title

    @admin.display(description="repo", ordering="repo__slug")
    def repo_slug(self, obj: Run) -> str:
        return obj.repo.slug

    @admin.display(description="duration", ordering="duration_s")
    def duration(self, obj: Run) -> str:
        return "—" if obj.duration_s is None else duration(obj.duration_s)

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, obj: Run) -> str:
        return "—" if obj.cost_usd is None else usd(obj.cost_usd)

    def extra_fieldsets(self, obj: Any) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("Compare", {"fields": ("compare_link",)}),
            ("Causality chain", {"fields": ("lineage_picture", "causality_chain"), "classes": WIDE}),
        ]

    @admin.display(description="with another run")
    def compare_link(self, obj: Run) -> SafeString:
        url = reverse("admin:cwom_run_compare", args=[obj.pk])
        previous = getattr(obj, compare_page.PREVIOUS)
        if previous is None:
            return format_html(
                'The first run of its issue: nothing before it. <a href="{}">Compare with any run…</a>', url
            )
        return format_html(
            '<a href="{}?with={}" class="cwom-compare-previous">Compare with the previous run of this issue</a> '
            '({}) · <a href="{}">with any run…</a>',
            url,
            previous,
            previous,
            url,
        )

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Run | None:
        """The run with the previous run of its issue (for the compare link) read in the same query."""
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        queryset = self.get_queryset(request).annotate(**{compare_page.PREVIOUS: compare_page.previous_run()})
        try:
            return queryset.get(pk=Run._meta.pk.to_python(object_id))  # type: ignore[union-attr]
        except (Run.DoesNotExist, ValidationError, ValueError):
            return None

    def get_urls(self) -> list[Any]:
        compare = path(
            "<path:object_id>/compare/", self.admin_site.admin_view(self.compare_view), name="cwom_run_compare"
        )
        return [compare, *super().get_urls()]

    @method_decorator(require_safe)
    def compare_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """This run (b) beside the previous run of its issue, or the run of ``?with=`` (a)."""
        run = self.get_object(request, unquote(object_id))
        if run is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        status, context = compare_page.page_context(run, request.GET.get("with"))
        context.update(
            self.admin_site.each_context(request),
            opts=self.opts,
            title=f"Run {run.pk}: what changed",
            run_url=reverse("admin:cwom_run_change", args=[run.pk]),
            compare_url=reverse("admin:cwom_run_compare", args=[run.pk]),
        )
        return TemplateResponse(request, "cwom/admin/run_compare.html", context, status=status)

    @admin.display(description="Picture")
    def lineage_picture(self, obj: Run) -> SafeString:
        return lineage_svg.inline(lineage_svg.run_picture(self.bundle(obj)))

    @admin.display(description="Issue + packets + snapshot + doctrine → run → artifacts")
    def causality_chain(self, obj: Run) -> SafeString:
        return run_chain(self.bundle(obj), run_stored_ids(obj))

    @staticmethod
    def bundle(obj: Run) -> dict[str, Any]:
        """The run's chain (:func:`cwom.lineage.run_bundle`), loaded once for the picture and the table."""
        if "_bundle" not in obj.__dict__:
            obj.__dict__["_bundle"] = run_bundle(obj.pk)
        return obj.__dict__["_bundle"]

    @admin.display(description="Timeline (the run and its artifacts)")
    def event_timeline(self, obj: Run) -> SafeString:
        return timeline([obj.pk, *(artifact["id"] for artifact in self.bundle(obj)["artifacts"])])

    @admin.display(description="As the API shows it (long lists abridged)")
    def contract_document(self, obj: Run) -> SafeString:
        return pretty_json(abridged(self.bundle(obj)["run"]))

    def get_queryset(self, request: HttpRequest) -> Any:
        # The detail page shows the issue, repo and snapshot: joined, not read one by one.
        return super().get_queryset(request).select_related("for_issue", "repo", "constraint_snapshot")


@admin.register(Artifact)
class ArtifactAdmin(CwomObjectAdmin):
    list_display = ("title", "type", "run_link", "verification_status", "short_digest", "size", "created_at")
    list_filter = ("type", "verification_status", TagFilter)
    search_fields = ("id__exact", "title", "digest__exact", "produced_by__id__exact")
    summary = (
        "produced_by",
        "for_issue",
        "type",
        "title",
        "uri",
        "digest",
        "media_type",
        "size_bytes",
        "verification_status",
        "stored_bytes",
    )

    @admin.display(description="run")
    def run_link(self, obj: Artifact) -> SafeString:
        return object_link("Run", obj.produced_by_id)

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj: Artifact) -> str:
        return byte_size(obj.size_bytes)

    @admin.display(description="digest")
    def short_digest(self, obj: Artifact) -> str:
        return (obj.digest or "—")[:23]

    @admin.display(description="stored bytes")
    def stored_bytes(self, obj: Artifact) -> SafeString:
        if not obj.stored_name:
            return format_html("{}", "not kept by this service")
        return format_html(
            '<a href="{}">download</a> (storage name <code>{}</code>)', CONTENT_PATH.format(id=obj.pk), obj.stored_name
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "action", "object_kind", "object", "principal", "change_text")
    list_filter = ("object_kind", "action")
    search_fields = ("object_id__exact", "principal__exact")
    ordering = ("-id",)

    def shown_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (
                None,
                {"fields": ("id", "at", "action", "object", "principal", "actor_json", "change_text", "changes_json")},
            )
        ]

    @admin.display(description="object")
    def object(self, obj: Event) -> SafeString:
        return object_link(obj.object_kind, obj.object_id, f"{obj.object_kind} {obj.object_id}")

    @admin.display(description="actor")
    def actor_json(self, obj: Event) -> SafeString:
        return pretty_json(obj.actor)

    @admin.display(description="what changed")
    def change_text(self, obj: Event) -> str:
        return change_summary(obj.action, obj.changes)

    @admin.display(description="changes (before, after)")
    def changes_json(self, obj: Event) -> SafeString:
        return pretty_json(obj.changes)


@admin.register(ObjectIndex)
class ObjectIndexAdmin(ReadOnlyAdmin):
    """Find any object by its id alone."""

    list_display = ("id", "kind", "object")
    list_filter = ("kind",)
    search_fields = ("id__exact",)
    ordering = ("-id",)

    def shown_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [(None, {"fields": ("id", "kind", "object")})]

    @admin.display(description="object")
    def object(self, obj: ObjectIndex) -> SafeString:
        return object_link(obj.kind, obj.pk, f"open this {obj.kind}")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are made and revoked with ``manage.py cwom_token``; the secret's hash is never shown."""

    list_display = ("name", "key_id", "can_write", "status", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("can_write", ("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "key_id__exact")
    ordering = ("name",)

    def shown_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ("name", "key_id", "can_write", "status", "created_at", "expires_at", "last_used_at", "revoked_at")
        return [(None, {"fields": fields})]  # status: active, expired or revoked (ApiToken.status)
