"""What runs are given: ContextPackets, ConstraintSnapshots and DoctrineRefs."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from ..enums import Connectivity, ConstraintScope, DoctrinePriority, DoctrineType, Kind, RiskTolerance
from ..fields import JSONField, JSONListField
from ..validation import ShapeValidator, limit
from .base import CwomObject, Link, MutableCwomObject
from .work import Issue, Repo, choices_check


class Sealable(MutableCwomObject):
    """A kind that is written once and then sealed: after sealing, nothing about it changes."""

    SEAL_FIELD: ClassVar[str]

    class Meta:
        abstract = True

    def is_sealed_in_db(self) -> bool:
        return bool(self.loaded_values().get(self.SEAL_FIELD))

    def frozen_fields(self) -> frozenset[str]:
        return frozenset({"*"}) if self.is_sealed_in_db() else self.FROZEN_FIELDS


class ContextPacket(Sealable):
    """A versioned briefing for runs. Sealed on creation unless created as a draft; sealing is one-way."""

    KIND = Kind.CONTEXT_PACKET
    SEAL_FIELD = "sealed"
    FROZEN_FIELDS: ClassVar[frozenset[str]] = frozenset({"for_issue_id", "constraint_snapshot_id", "created_at"})

    for_issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="packets")
    version = models.CharField(max_length=64)
    summary = models.TextField(blank=True, default="")
    inputs_documents = JSONListField(default=list, blank=True, validators=[ShapeValidator("documents")])
    inputs_data_blobs = JSONListField(default=list, blank=True, validators=[ShapeValidator("data_blobs")])
    inputs_links = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    assumptions = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    open_questions = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    instructions = models.TextField(blank=True, default="")
    doctrine_refs: models.ManyToManyField[DoctrineRef, PacketDoctrineRef] = models.ManyToManyField(
        "DoctrineRef", through="PacketDoctrineRef", related_name="packets"
    )
    constraint_snapshot = models.ForeignKey(
        "ConstraintSnapshot", null=True, blank=True, on_delete=models.PROTECT, related_name="packets"
    )
    sealed = models.BooleanField(default=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["for_issue", "created_at"], name="packet_issue_idx"),
            models.Index(fields=["created_at", "id"], name="packet_created_idx"),
            models.Index(fields=["constraint_snapshot"], name="packet_snapshot_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["for_issue", "version"],
                name="packet_issue_version_unique",
                violation_error_message="This issue already has a context packet with this version.",
                violation_error_code="duplicate",
            ),
            models.CheckConstraint(
                condition=models.Q(sealed=True, sealed_at__isnull=False)
                | models.Q(sealed=False, sealed_at__isnull=True),
                name="packet_sealed_at_consistent",
                violation_error_message="sealed_at is set exactly when the packet is sealed.",
                violation_error_code="invalid",
            ),
        ]

    def clean(self) -> None:
        if self.sealed and self.sealed_at is None:
            self.sealed_at = timezone.now()
        super().clean()
        errors = []
        for index, blob in enumerate(self.inputs_data_blobs or []):
            if not isinstance(blob, dict):
                continue
            if blob.get("uri") is None and blob.get("inline") is None:
                errors.append(ValidationError(f"data_blobs.{index}: needs a uri or an inline value.", code="required"))
            inline = blob.get("inline")
            if isinstance(inline, str) and len(inline.encode()) > limit("inline_blob_bytes"):
                errors.append(
                    ValidationError(
                        f"data_blobs.{index}.inline is larger than {limit('inline_blob_bytes')} bytes; use a uri.",
                        code="too_large",
                    )
                )
        if errors:
            raise ValidationError({"inputs_data_blobs": errors})

    @classmethod
    def next_version(cls, issue_id: str) -> str:
        """The issue's next numeric version: one more than the highest numeric version so far."""
        versions = cls.objects.filter(for_issue_id=issue_id).values_list("version", flat=True)
        return str(max((int(v) for v in versions if v.isdigit()), default=0) + 1)

    def open_for_links(self) -> dict[str, Any]:
        """A packet created sealed is written as a draft, linked, then sealed (with its own ``sealed_at``)."""
        if not self.sealed:
            return {}
        sealed = {"sealed": True, "sealed_at": self.sealed_at}
        self.sealed, self.sealed_at = False, None
        return sealed

    def seal(self, *, record: bool = True) -> None:
        """Seal a draft. One-way: a sealed packet never changes again, by any path."""
        if self.is_sealed_in_db():
            raise ValidationError("This context packet is already sealed.", code="sealed")
        self.sealed = True
        self.sealed_at = timezone.now()
        self.full_clean()
        self.save(record=record, action="seal")


class PacketDoctrineRef(Link):
    packet = models.ForeignKey(ContextPacket, on_delete=models.PROTECT, related_name="doctrine_ref_links")
    doctrine_ref = models.ForeignKey("DoctrineRef", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["packet", "doctrine_ref"], name="packet_doctrine_unique")]
        indexes = [models.Index(fields=["doctrine_ref"], name="packet_doctrine_doctrine_idx")]


class ConstraintSnapshot(CwomObject):
    """The operating envelope at one moment. Immutable from creation: no update, no delete."""

    KIND = Kind.CONSTRAINT_SNAPSHOT
    FROZEN_FIELDS: ClassVar[frozenset[str]] = frozenset({"*"})

    scope = models.CharField(max_length=16, choices=ConstraintScope.choices, default=ConstraintScope.RUN)
    captured_at = models.DateTimeField(default=timezone.now)
    owner = JSONField(null=True, blank=True, validators=[ShapeValidator("actor_or_null")])
    time_available_minutes = models.FloatField(null=True, blank=True)
    time_deadline = models.DateTimeField(null=True, blank=True)
    energy_score_0_5 = models.FloatField(null=True, blank=True)
    energy_notes = models.TextField(null=True, blank=True)
    health_flags = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    health_notes = models.TextField(null=True, blank=True)
    budget_usd_available = models.FloatField(null=True, blank=True)
    budget_burn_limit_usd = models.FloatField(null=True, blank=True)
    tools_allowed = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    tools_blocked = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    environment_location = models.CharField(max_length=255, null=True, blank=True)
    environment_connectivity = models.CharField(max_length=16, choices=Connectivity.choices, null=True, blank=True)
    environment_device = models.CharField(max_length=255, null=True, blank=True)
    risk_tolerance = models.CharField(max_length=16, choices=RiskTolerance.choices, null=True, blank=True)
    risk_notes = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["-captured_at", "-id"]
        indexes = [
            models.Index(fields=["scope", "captured_at"], name="snapshot_scope_idx"),
            models.Index(fields=["captured_at", "id"], name="snapshot_captured_idx"),
            models.Index(fields=["created_at", "id"], name="snapshot_created_idx"),
        ]
        constraints = [
            choices_check("scope", ConstraintScope, "snapshot_scope_valid"),
            choices_check("environment_connectivity", Connectivity, "snapshot_connectivity_valid", null=True),
            choices_check("risk_tolerance", RiskTolerance, "snapshot_risk_valid", null=True),
            models.CheckConstraint(
                condition=models.Q(energy_score_0_5__isnull=True)
                | models.Q(energy_score_0_5__gte=0, energy_score_0_5__lte=5),
                name="snapshot_energy_0_5",
                violation_error_message="energy.score_0_5 must be between 0 and 5.",
                violation_error_code="out_of_range",
            ),
            models.CheckConstraint(
                condition=models.Q(time_available_minutes__isnull=True) | models.Q(time_available_minutes__gte=0),
                name="snapshot_minutes_nonnegative",
                violation_error_message="time.available_minutes cannot be negative.",
                violation_error_code="out_of_range",
            ),
        ]


class DoctrineRef(Sealable):
    """A versioned rule. (namespace, name, version) is unique; a published version never changes.

    A row is published in the transaction that creates it (its applicability links are written
    first, then ``published`` is set); the flag exists so the database can refuse every later change.
    """

    KIND = Kind.DOCTRINE_REF
    SEAL_FIELD = "published"

    namespace = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=64)
    type = models.CharField(max_length=16, choices=DoctrineType.choices)
    priority = models.CharField(max_length=8, choices=DoctrinePriority.choices)
    statement = models.TextField()
    rationale = models.TextField(null=True, blank=True)
    links = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    applicability_repos = models.ManyToManyField(Repo, through="DoctrineApplicableRepo", related_name="doctrine_refs")
    applicability_issue_types = JSONListField(default=list, blank=True, validators=[ShapeValidator("issue_types")])
    applicability_tags = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    published = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["namespace", "name", "version"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="doctrine_created_idx"),
            models.Index(fields=["type"], name="doctrine_type_idx"),
            models.Index(fields=["priority"], name="doctrine_priority_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "name", "version"],
                name="doctrine_namespace_name_version_unique",
                violation_error_message="This (namespace, name, version) is already published.",
                violation_error_code="duplicate",
            ),
            choices_check("type", DoctrineType, "doctrine_type_valid"),
            choices_check("priority", DoctrinePriority, "doctrine_priority_valid"),
        ]

    def open_for_links(self) -> dict[str, Any]:
        """Written unpublished, linked, then published: from there on nothing changes."""
        self.published = False
        return {"published": True}


class DoctrineApplicableRepo(Link):
    doctrine_ref = models.ForeignKey(DoctrineRef, on_delete=models.PROTECT, related_name="repo_links")
    repo = models.ForeignKey(Repo, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["doctrine_ref", "repo"], name="doctrine_repo_unique")]
        indexes = [models.Index(fields=["repo"], name="doctrine_repo_repo_idx")]
