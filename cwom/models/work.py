"""Repo and Issue: where work lives and what is wanted, with the issue's link tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from ..enums import IssueType, Kind, Priority, Status, Visibility
from ..fields import JSONListField
from ..validation import ShapeValidator
from .base import Link, MutableCwomObject

if TYPE_CHECKING:
    from .briefing import ConstraintSnapshot, ContextPacket, DoctrineRef


def choices_check(
    field: str, choices: type[models.TextChoices], name: str, null: bool = False
) -> models.CheckConstraint:
    """A check constraint that keeps an enum column inside its enum."""
    condition = models.Q(**{f"{field}__in": choices.values})
    if null:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(
        condition=condition,
        name=name,
        violation_error_message=f"{field} must be one of: {', '.join(choices.values)}.",
        violation_error_code="invalid_choice",
    )


class Repo(MutableCwomObject):
    """A work container: a codebase, a docs base, a project boundary. Its slug never changes."""

    KIND = Kind.REPO
    FROZEN_FIELDS: ClassVar[frozenset[str]] = frozenset({"slug"})

    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=100, unique=True)
    source_system = models.CharField(max_length=64, default="local")
    source_external_id = models.CharField(max_length=255, null=True, blank=True)
    source_url = models.CharField(max_length=2048, null=True, blank=True)
    default_branch = models.CharField(max_length=255, default="main")
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    owners = JSONListField(default=list, blank=True, validators=[ShapeValidator("actor_list")])
    policy_allowed_tools = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    policy_secrets_profile = models.CharField(max_length=255, null=True, blank=True)
    links = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="repo_created_idx"),
            models.Index(fields=["source_system", "source_external_id"], name="repo_source_idx"),
        ]
        constraints = [
            choices_check("visibility", Visibility, "repo_visibility_valid"),
        ]


class Issue(MutableCwomObject):
    """A unit of intent: what we want done (never the execution itself)."""

    KIND = Kind.ISSUE

    repo = models.ForeignKey(Repo, on_delete=models.PROTECT, related_name="issues")
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    type = models.CharField(max_length=16, choices=IssueType.choices, default=IssueType.FEATURE)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    assignees = JSONListField(default=list, blank=True, validators=[ShapeValidator("actor_list")])
    watchers = JSONListField(default=list, blank=True, validators=[ShapeValidator("actor_list")])
    acceptance_criteria = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    acceptance_tests_expected = JSONListField(
        null=True, blank=True, default=None, validators=[ShapeValidator("str_list_or_null")]
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    doctrine_refs: models.ManyToManyField[DoctrineRef, IssueDoctrineRef] = models.ManyToManyField(
        "DoctrineRef", through="IssueDoctrineRef", related_name="issues"
    )
    constraints: models.ManyToManyField[ConstraintSnapshot, IssueConstraintSnapshot] = models.ManyToManyField(
        "ConstraintSnapshot", through="IssueConstraintSnapshot", related_name="issues"
    )
    context_packets: models.ManyToManyField[ContextPacket, IssueContextPacket] = models.ManyToManyField(
        "ContextPacket", through="IssueContextPacket", related_name="linked_issues"
    )
    blocks = models.ManyToManyField(
        "self",
        through="IssueBlock",
        through_fields=("blocker", "blocked"),
        symmetrical=False,
        related_name="blocked_by",
    )
    duplicates = models.ManyToManyField(
        "self",
        through="IssueDuplicate",
        through_fields=("issue", "duplicate_of"),
        symmetrical=False,
        related_name="duplicated_by",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists order by (-created_at, -id): with id last the index serves a page in order, no sort.
            models.Index(fields=["repo", "status", "created_at", "id"], name="issue_repo_status_idx"),
            models.Index(fields=["status", "created_at"], name="issue_status_idx"),
            models.Index(fields=["created_at", "id"], name="issue_created_idx"),
            models.Index(fields=["updated_at", "id"], name="issue_updated_idx"),
            models.Index(fields=["type"], name="issue_type_idx"),
            models.Index(fields=["priority"], name="issue_priority_idx"),
        ]
        constraints = [
            choices_check("type", IssueType, "issue_type_valid"),
            choices_check("priority", Priority, "issue_priority_valid"),
            choices_check("status", Status, "issue_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")),
                name="issue_not_own_parent",
                violation_error_message="An issue cannot be its own parent.",
                violation_error_code="cycle",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        self.check_parent_chain()
        self.check_repo_move()

    def check_repo_move(self) -> None:
        """An issue with runs stays in its repo: every run's repo must remain its issue's repo."""
        loaded = self.loaded_values()
        if loaded and loaded.get("repo_id") != self.repo_id and self.runs.exists():
            raise ValidationError(
                {
                    "repo": ValidationError(
                        "This issue has runs in repo %(repo)s; a run's repo must stay its issue's repo.",
                        code="repo_mismatch",
                        params={"repo": loaded.get("repo_id")},
                    )
                }
            )

    def check_parent_chain(self) -> None:
        """No issue is its own parent and the parent chain has no cycle."""
        if self.parent_id is None:
            return
        seen = {self.pk}
        current: str | None = self.parent_id
        while current is not None:
            if current in seen:
                raise ValidationError(
                    {"parent": ValidationError("This parent would make a cycle in the parent chain.", code="cycle")}
                )
            seen.add(current)
            current = Issue.objects.filter(pk=current).values_list("parent_id", flat=True).first()


class IssueContextPacket(Link):
    issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="context_packet_links")
    packet = models.ForeignKey("ContextPacket", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "packet"], name="issue_packet_unique")]
        # (issue, id): an issue's newest links first, however many it has (its bounded ``context_packets``).
        indexes = [
            models.Index(fields=["packet"], name="issue_packet_packet_idx"),
            models.Index(fields=["issue", "id"], name="issue_packet_newest_idx"),
        ]


class IssueDoctrineRef(Link):
    issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="doctrine_ref_links")
    doctrine_ref = models.ForeignKey("DoctrineRef", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "doctrine_ref"], name="issue_doctrine_unique")]
        indexes = [models.Index(fields=["doctrine_ref"], name="issue_doctrine_doctrine_idx")]


class IssueConstraintSnapshot(Link):
    issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="constraint_links")
    snapshot = models.ForeignKey("ConstraintSnapshot", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "snapshot"], name="issue_snapshot_unique")]
        indexes = [
            models.Index(fields=["snapshot"], name="issue_snapshot_snapshot_idx"),
            models.Index(fields=["issue", "id"], name="issue_snapshot_newest_idx"),
        ]


class IssueBlock(Link):
    """``blocker`` blocks ``blocked`` (so ``blocked`` is blocked_by ``blocker``): one row, two views."""

    blocker = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="block_links")
    blocked = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="blocked_by_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="issue_block_unique"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")),
                name="issue_block_not_self",
                violation_error_message="An issue cannot block itself.",
                violation_error_code="self_reference",
            ),
        ]
        indexes = [models.Index(fields=["blocked"], name="issue_block_blocked_idx")]


class IssueDuplicate(Link):
    """``issue`` duplicates ``duplicate_of``."""

    issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="duplicate_links")
    duplicate_of = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "duplicate_of"], name="issue_duplicate_unique"),
            models.CheckConstraint(
                condition=~models.Q(issue=models.F("duplicate_of")),
                name="issue_duplicate_not_self",
                violation_error_message="An issue cannot duplicate itself.",
                violation_error_code="self_reference",
            ),
        ]
        indexes = [models.Index(fields=["duplicate_of"], name="issue_duplicate_target_idx")]


class IssueTag(models.Model):
    """One row per tag of an issue, with the issue's repo, status and creation time: a tag index.

    Written only by database triggers on ``cwom_issue`` (:mod:`cwom.db_guards`, migration 0004), so every
    write path (the ORM, ``QuerySet.update()``, raw SQL, the importer) keeps it in step. It exists for
    ``GET /issues?repo_id=&status=&tag=``: the btree ``(tag, repo_id, status, created_at, issue_id)``
    serves a page of matches in the list's order, reading as many index entries as the page has rows,
    whatever the size of the repo or the popularity of the tag.
    """

    id = models.BigAutoField(primary_key=True)
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="tag_rows", db_index=False)
    tag = models.TextField()
    repo_id = models.CharField(max_length=26)
    status = models.CharField(max_length=16)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "tag"], name="issue_tag_unique")]
        indexes = [
            models.Index(fields=["tag", "repo_id", "status", "created_at", "issue"], name="issue_tag_list_idx"),
            models.Index(fields=["tag", "created_at", "issue"], name="issue_tag_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.issue_id} #{self.tag}"
