"""Run (one execution attempt) with its state machine, and Artifact (what came out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from ..db import bulk
from ..db.prepared import Prepared
from ..enums import (
    RUN_TRANSITIONS,
    TERMINAL_STATUSES,
    ArtifactType,
    EventAction,
    FailureCategory,
    Kind,
    ManagedBy,
    RunMode,
    Status,
    VerificationStatus,
)
from ..fields import JSONField, JSONListField
from ..validation import ShapeValidator
from .base import CwomObject, Link, MutableCwomObject, announce_event, new_event
from .briefing import ConstraintSnapshot, ContextPacket, DoctrineRef
from .work import Issue, Repo, choices_check

# Statuses in which a run's inputs may still change (before the start).
OPEN_INPUT_STATUSES = frozenset({Status.PLANNED, Status.READY})
# Statuses that need at least one sealed packet, all for the run's issue.
NEEDS_PACKETS_STATUSES = frozenset({Status.READY, Status.RUNNING})
# Statuses of a run that another run may retry.
RETRYABLE_STATUSES = frozenset({Status.FAILED, Status.CANCELED})


class RunTransitionError(Exception):
    """An illegal move of the run state machine (answered 409 by the API, naming the legal moves)."""

    code = "illegal_transition"

    def __init__(self, current: str, requested: str, legal: frozenset[str] | set[str]) -> None:
        self.current = current
        self.requested = requested
        self.legal = sorted(legal)
        moves = ", ".join(self.legal) or "none (terminal)"
        super().__init__(f"A run cannot move from {current} to {requested}. Legal moves from {current}: {moves}.")


class RunConflictError(Exception):
    """A compare-and-set transition lost: the run was no longer in the status it was read in."""

    code = "transition_conflict"

    def __init__(self, run_id: str, expected: str, actual: str | None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"Run {run_id} is no longer {expected} (now {actual}); someone else moved it first.")


class Run(MutableCwomObject):
    """One execution attempt against an issue, moved only through :meth:`transition_to`."""

    KIND = Kind.RUN
    FROZEN_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"for_issue_id", "repo_id", "retry_of_id", "created_at", "managed_by"}
    )

    for_issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="runs")
    repo = models.ForeignKey(Repo, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.AGENT)
    # The failed or canceled run of the same issue that this run retries.
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retries")
    # service: enqueued, the service's workers execute it and move it; client: whoever made it drives it by PATCH.
    managed_by = models.CharField(max_length=16, choices=ManagedBy.choices, default=ManagedBy.CLIENT)
    executor_actor = JSONField(null=True, blank=True, validators=[ShapeValidator("actor_or_null")])
    executor_runtime = models.CharField(max_length=64, default="local")
    executor_toolchain = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    context_packets = models.ManyToManyField(ContextPacket, through="RunContextPacket", related_name="runs")
    doctrine_refs: models.ManyToManyField[DoctrineRef, RunDoctrineRef] = models.ManyToManyField(
        "DoctrineRef", through="RunDoctrineRef", related_name="runs"
    )
    constraint_snapshot = models.ForeignKey(
        ConstraintSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    plan_steps = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    plan_risk_notes = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    cost_tokens = models.BigIntegerField(null=True, blank=True)
    cost_compute_s = models.FloatField(null=True, blank=True)
    result_summary = models.TextField(null=True, blank=True)
    decision_log = JSONListField(default=list, blank=True, validators=[ShapeValidator("str_list")])
    failure_category = models.CharField(max_length=16, choices=FailureCategory.choices, null=True, blank=True)
    failure_message = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Lists order by (-created_at, -id): with id last the index serves a page in order, no sort.
            models.Index(fields=["for_issue", "status", "created_at", "id"], name="run_issue_status_idx"),
            # An issue's `runs` refs, oldest first: an index-only scan of this one index.
            models.Index(fields=["for_issue", "created_at", "id"], name="run_issue_created_idx"),
            models.Index(fields=["repo", "status", "created_at"], name="run_repo_status_idx"),
            models.Index(fields=["status", "created_at"], name="run_status_idx"),
            models.Index(fields=["created_at", "id"], name="run_created_idx"),
            # The admin's home page (cwom.stats.glance) counts a week of runs from this index alone: on
            # PostgreSQL an index-only scan, no heap fetch per run.
            models.Index(
                fields=["created_at"],
                include=["status", "failure_category", "executor_runtime", "repo", "duration_s"],
                name="run_glance_idx",
            ),
            models.Index(fields=["started_at"], name="run_started_idx"),
            models.Index(fields=["ended_at"], name="run_ended_idx"),
            models.Index(fields=["constraint_snapshot"], name="run_snapshot_idx"),
        ]
        constraints = [
            choices_check("status", Status, "run_status_valid"),
            choices_check("mode", RunMode, "run_mode_valid"),
            choices_check("managed_by", ManagedBy, "run_managed_by_valid"),
            choices_check("failure_category", FailureCategory, "run_failure_category_valid", null=True),
            models.CheckConstraint(
                condition=models.Q(status=Status.FAILED, failure_category__isnull=False)
                | (~models.Q(status=Status.FAILED) & models.Q(failure_category__isnull=True)),
                name="run_failure_iff_failed",
                violation_error_message="A failure is required with status failed and refused on any other status.",
                violation_error_code="failure_mismatch",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(started_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="run_ended_after_started",
                violation_error_message="telemetry.ended_at cannot be before started_at.",
                violation_error_code="invalid_telemetry",
            ),
        ]

    # --- validation ------------------------------------------------------------------------------
    def _issue_repo_id(self) -> str | None:
        issue_id = self.for_issue_id
        return self.looked_up(
            ("issue_repo", issue_id),
            lambda: Issue.objects.filter(pk=issue_id).values_list("repo_id", flat=True).first(),
        )

    def _retried(self) -> tuple[str, str] | None:
        """The (issue id, status) of the run this one retries."""
        retry_of = self.retry_of_id
        return self.looked_up(
            ("retried", retry_of),
            lambda: Run.objects.filter(pk=retry_of).values_list("for_issue_id", "status").first(),
        )

    @classmethod
    def lookups_for(cls, objs: Sequence[CwomObject], known: Mapping[Any, Any]) -> dict[Any, Any]:
        """And each run's issue's repo (the repo rule) and the runs they retry, one query each for all."""
        found = super().lookups_for(objs, known)
        issues = cls.unanswered(objs, known, "issue_repo", "for_issue_id")
        if issues:
            repos = dict(Issue.objects.filter(pk__in=issues).values_list("id", "repo_id"))
            found.update({("issue_repo", issue_id): repos.get(issue_id) for issue_id in issues})
        retried = cls.unanswered(objs, known, "retried", "retry_of_id")
        if retried:
            rows = {
                pk: (issue, status)
                for pk, issue, status in Run.objects.filter(pk__in=retried).values_list("id", "for_issue_id", "status")
            }
            found.update({("retried", pk): rows.get(pk) for pk in retried})
        return found

    @classmethod
    def lookups_from(cls, rows: Iterable[models.Model]) -> dict[Any, Any]:
        """An issue the caller holds answers for its runs' repo."""
        return {("issue_repo", row.pk): row.repo_id for row in rows if isinstance(row, Issue)}

    def fill_defaults(self) -> None:
        """A run's repo defaults to its issue's repo."""
        if self.repo_id is None and self.for_issue_id is not None:
            self.repo_id = self._issue_repo_id()
            self.known_to_exist(self.repo_id, Kind.REPO)  # an issue's repo: no existence query for the key

    def clean(self) -> None:
        self.fill_defaults()
        super().clean()
        errors: dict[str, list[ValidationError]] = {}
        if self.for_issue_id is not None:
            issue_repo = self._issue_repo_id()
            if issue_repo is not None and self.repo_id != issue_repo:
                errors.setdefault("repo", []).append(
                    ValidationError(
                        "A run's repo must be its issue's repo (%(repo)s).",
                        code="repo_mismatch",
                        params={"repo": issue_repo},
                    )
                )
        failure = self.failure_errors(self.status, self.failure_category, self.failure_message)
        if failure:
            errors["failure"] = failure
        if self._state.adding and self.retry_of_id is not None:
            retried = self._retried()
            if retried is not None and (retried[0] != self.for_issue_id or retried[1] not in RETRYABLE_STATUSES):
                errors.setdefault("retry_of", []).append(
                    ValidationError(
                        "A run retries a failed or canceled run of its own issue (%(id)s is %(status)s, of issue "
                        "%(issue)s).",
                        code="not_retryable",
                        params={"id": self.retry_of_id, "status": retried[1], "issue": retried[0]},
                    )
                )
        if self._state.adding and self.status not in OPEN_INPUT_STATUSES:
            errors.setdefault("status", []).append(
                ValidationError(
                    "A run is created planned or ready, then moved through its states.", code="invalid_initial_status"
                )
            )
        loaded = self.loaded_values()
        if loaded:
            self._check_append_only(loaded, errors)
            if loaded.get("status") != self.status:
                errors.setdefault("status", []).append(
                    ValidationError("Change a run's status with transition_to().", code="use_transition")
                )
            if loaded.get("status") not in OPEN_INPUT_STATUSES and (
                loaded.get("constraint_snapshot_id") != self.constraint_snapshot_id
            ):
                errors.setdefault("inputs", []).append(
                    ValidationError("A run's inputs never change after it starts.", code="inputs_frozen")
                )
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def failure_errors(status: str, category: str | None, message: str | None) -> list[ValidationError]:
        """The failure rule: a failed run records its failure (a category at least), no other run does."""
        if status == Status.FAILED and category is None:
            return [ValidationError("A failed run needs a failure (category and message).", code="failure_required")]
        if status != Status.FAILED and (category is not None or message is not None):
            return [ValidationError("A failure is only recorded on a failed run.", code="failure_not_allowed")]
        return []

    def _check_append_only(self, loaded: dict[str, Any], errors: dict[str, list[ValidationError]]) -> None:
        before = loaded.get("decision_log") or []
        after = self.decision_log or []
        if after[: len(before)] != before:
            errors.setdefault("decision_log", []).append(
                ValidationError("decision_log only grows: existing entries cannot change or go.", code="append_only")
            )

    def validate_inputs(self, status: str | None = None, packets: list[ContextPacket] | None = None) -> None:
        """The packet rules for ``status``: ready/running need one sealed packet or more, all for this issue."""
        status = status or self.status
        if packets is None:  # only what the rules read (a packet's instructions may be large)
            packets = list(self.context_packets.only("id", "for_issue_id", "sealed"))
        errors = [
            ValidationError(
                "Context packet %(id)s is for another issue.", code="packet_issue_mismatch", params={"id": packet.pk}
            )
            for packet in packets
            if packet.for_issue_id != self.for_issue_id
        ]
        if status in NEEDS_PACKETS_STATUSES:
            if not packets:
                errors.append(
                    ValidationError(
                        "A run needs at least one sealed context packet to be %(status)s.",
                        code="packet_required",
                        params={"status": status},
                    )
                )
            errors += [
                ValidationError(
                    "Context packet %(id)s is a draft: seal it before the run uses it.",
                    code="packet_not_sealed",
                    params={"id": packet.pk},
                )
                for packet in packets
                if not packet.sealed
            ]
        if errors:
            raise ValidationError({"inputs": errors})

    # --- the state machine ------------------------------------------------------------------------
    def legal_moves(self) -> frozenset[str]:
        return RUN_TRANSITIONS[self.status]

    def transition_to(
        self,
        status: str,
        *,
        failure_category: str | None = None,
        failure_message: str | None = None,
        extra: dict[str, Any] | None = None,
        locked: bool = False,
        together: Sequence[tuple[models.QuerySet[Any], dict[str, Any]]] = (),
    ) -> None:
        """Move the run to ``status`` if the table allows it, compare-and-set against the current status.

        ``extra`` carries other columns written in the same update (result summary, cost, ...). ``locked``:
        the caller read this copy under a row lock in the current transaction, so it is the stored row.
        ``together``: the caller's updates of other tables' rows (``(queryset, values)``), written with the move
        only if the run moved (one statement on PostgreSQL: see ``bulk.update_then_insert``).
        Raises RunTransitionError for an illegal move, RunConflictError when another writer moved the
        run first, ValidationError when the target status's rules are not met.
        """
        current = self.status
        legal = RUN_TRANSITIONS[current]
        if status not in legal:
            raise RunTransitionError(current, status, legal)
        failure = self.failure_errors(status, failure_category or None, failure_message or None)
        if failure:
            raise ValidationError({"failure": failure})
        now = timezone.now()
        values: dict[str, Any] = dict(extra or {})
        values.update(status=status, updated_at=now)
        if status == Status.FAILED:
            values.update(failure_category=failure_category, failure_message=failure_message or "")
        if status in NEEDS_PACKETS_STATUSES and current not in NEEDS_PACKETS_STATUSES:
            # Checked on the way out of planned: a ready run's packets were checked when it became ready (the
            # same rules), every change of them while ready is checked again, and a sealed packet never changes.
            self.validate_inputs(status)
        if self.started_at is None and current != Status.PLANNED and not locked:
            # This copy may have been read before the run first started: the stored start wins.
            stored = Run.objects.filter(pk=self.pk).values_list("started_at", "constraint_snapshot_id").first()
            if stored and stored[0] is not None:
                self.started_at, self.constraint_snapshot_id = stored
        pinning = status == Status.RUNNING and self.started_at is None and self.constraint_snapshot_id is None
        pinned = self.latest_issue_snapshot() if pinning else None
        if status == Status.RUNNING and self.started_at is None:
            values["started_at"] = now
        if pinning:
            values["constraint_snapshot_id"] = pinned.pk if pinned else None
        if status in TERMINAL_STATUSES:
            started = values.get("started_at", self.started_at)
            values["ended_at"] = now
            values["duration_s"] = round((now - started).total_seconds(), 6) if started else 0.0
        loaded_before = {name: getattr(self, name) for name in values}
        stored_start = self.started_at
        for name, value in values.items():
            setattr(self, name, value)
        try:
            # Only the columns this move writes (the others were validated when they were written), and not a
            # pinned snapshot: its key was just read from the database.
            self.clean_columns(values.keys() - ({"constraint_snapshot_id"} if pinning else set()))
            errors: dict[str, list[ValidationError]] = {}
            self._check_append_only(self.loaded_values(), errors)
            if errors:
                raise ValidationError(errors)
        except ValidationError:
            for name, value in loaded_before.items():
                setattr(self, name, value)
            raise
        changes = {name: (loaded_before[name], value) for name, value in values.items() if name != "updated_at"}
        event = new_event(self, EventAction.TRANSITION, changes, announce=False)
        # No savepoint of its own: a lost compare-and-set writes nothing, and a database error fails
        # the caller's transaction anyway.
        with transaction.atomic(savepoint=False):
            # Compare-and-set on the status, and on the start so a stale copy cannot restart the clock; the event
            # is written by the same statement, only if the run moved.
            moving = Run.objects.filter(pk=self.pk, status=current, started_at=stored_start)
            won = bulk.update_then_insert(moving, values, event, together)
            if won:
                announce_event(event)
        if not won:
            actual = Run.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            for name, value in loaded_before.items():
                setattr(self, name, value)
            raise RunConflictError(self.pk, current, actual)
        if pinning:
            self.constraint_snapshot = pinned  # the row just read: ``run.constraint_snapshot`` asks no query
        self._loaded = self._column_values()

    def latest_issue_snapshot(self) -> ConstraintSnapshot | None:
        """The issue's most recently captured constraint snapshot, pinned at the start when none is named (with
        only what the start and the worker's time limit read)."""
        rows = LATEST_ISSUE_SNAPSHOT.rows(self.for_issue_id)
        return ConstraintSnapshot.from_db(self._state.db, LATEST_SNAPSHOT_FIELDS, rows[0]) if rows else None

    def latest_issue_snapshot_id(self) -> str | None:
        snapshot = self.latest_issue_snapshot()
        return snapshot.pk if snapshot else None


LATEST_SNAPSHOT_FIELDS = ("id", "time_available_minutes")
# Read at every start of a run naming no snapshot: compiled once (cwom.db.prepared).
LATEST_ISSUE_SNAPSHOT = Prepared(
    lambda issue_id: (
        ConstraintSnapshot.objects.filter(issues=issue_id)
        .order_by("-captured_at", "-id")
        .values_list(*LATEST_SNAPSHOT_FIELDS)[:1]
    )
)


class RunContextPacket(Link):
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="context_packet_links")
    packet = models.ForeignKey(ContextPacket, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "packet"], name="run_packet_unique")]
        indexes = [models.Index(fields=["packet"], name="run_packet_packet_idx")]


class RunDoctrineRef(Link):
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="doctrine_ref_links")
    doctrine_ref = models.ForeignKey("DoctrineRef", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "doctrine_ref"], name="run_doctrine_unique")]
        indexes = [models.Index(fields=["doctrine_ref"], name="run_doctrine_doctrine_idx")]


class Artifact(MutableCwomObject):
    """An output of a started run. Everything but ``verification`` is fixed at creation.

    When the service keeps the bytes (``stored_name``), ``digest`` and ``size_bytes`` come from them;
    bytes may be attached once to an artifact that has none.
    """

    KIND = Kind.ARTIFACT
    MUTABLE_FIELDS: ClassVar[frozenset[str]] = frozenset({"verification_status", "verification_checks", "updated_at"})
    CONTENT_FIELDS: ClassVar[frozenset[str]] = frozenset({"stored_name", "digest", "size_bytes", "media_type"})

    produced_by = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="artifacts")
    for_issue = models.ForeignKey(Issue, on_delete=models.PROTECT, related_name="artifacts")
    type = models.CharField(max_length=32, choices=ArtifactType.choices)
    title = models.CharField(max_length=500, blank=True, default="")
    uri = models.CharField(max_length=2048, null=True, blank=True)
    digest = models.CharField(max_length=200, null=True, blank=True)
    media_type = models.CharField(max_length=255, null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    preview = models.TextField(null=True, blank=True)
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.UNVERIFIED
    )
    verification_checks = JSONListField(default=list, blank=True, validators=[ShapeValidator("checks")])
    stored_name = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["produced_by", "type", "created_at", "id"], name="artifact_run_type_idx"),
            # A run's `outputs.artifacts` refs, oldest first: an index-only scan of this one index.
            models.Index(fields=["produced_by", "created_at", "id"], name="artifact_run_created_idx"),
            models.Index(fields=["for_issue", "created_at"], name="artifact_issue_idx"),
            models.Index(fields=["created_at", "id"], name="artifact_created_idx"),
            models.Index(fields=["type", "created_at"], name="artifact_type_idx"),
            models.Index(fields=["verification_status"], name="artifact_verification_idx"),
            models.Index(fields=["digest"], name="artifact_digest_idx"),
        ]
        constraints = [
            choices_check("type", ArtifactType, "artifact_type_valid"),
            choices_check("verification_status", VerificationStatus, "artifact_verification_valid"),
            models.CheckConstraint(
                condition=models.Q(size_bytes__isnull=True) | models.Q(size_bytes__gte=0),
                name="artifact_size_nonnegative",
                violation_error_message="size_bytes cannot be negative.",
                violation_error_code="out_of_range",
            ),
        ]

    def frozen_fields(self) -> frozenset[str]:
        allowed = set(self.MUTABLE_FIELDS)
        if not self.loaded_values().get("stored_name"):
            allowed |= self.CONTENT_FIELDS
        return frozenset(f.attname for f in self._meta.concrete_fields) - allowed

    def _run_row(self) -> dict[str, Any] | None:
        run_id = self.produced_by_id
        return self.looked_up(
            ("run", run_id), lambda: Run.objects.filter(pk=run_id).values("for_issue_id", "status").first()
        )

    @classmethod
    def lookups_for(cls, objs: Sequence[CwomObject], known: Mapping[Any, Any]) -> dict[Any, Any]:
        """And each artifact's run's issue and status (the run rules), one query for all."""
        found = super().lookups_for(objs, known)
        runs = cls.unanswered(objs, known, "run", "produced_by_id")
        if runs:
            read = Run.objects.filter(pk__in=runs).values_list("id", "for_issue_id", "status")
            rows = {run_id: {"for_issue_id": issue_id, "status": status} for run_id, issue_id, status in read}
            found.update({("run", run_id): rows.get(run_id) for run_id in runs})
        return found

    @classmethod
    def lookups_from(cls, rows: Iterable[models.Model]) -> dict[Any, Any]:
        """A run the caller holds answers for its artifacts."""
        return {
            ("run", row.pk): {"for_issue_id": row.for_issue_id, "status": row.status}
            for row in rows
            if isinstance(row, Run)
        }

    def fill_defaults(self) -> None:
        """An artifact's issue defaults to its run's issue."""
        if self.for_issue_id is None and self.produced_by_id is not None:
            run = self._run_row()
            self.for_issue_id = run["for_issue_id"] if run else None
            self.known_to_exist(self.for_issue_id, Kind.ISSUE)  # a run's issue: no existence query for the key

    def clean(self) -> None:
        self.fill_defaults()
        super().clean()
        if self.produced_by_id is None:
            return
        run = self._run_row()
        if run is None:
            return
        errors: dict[str, ValidationError] = {}
        if self.for_issue_id != run["for_issue_id"]:
            errors["for_issue"] = ValidationError(
                "An artifact's issue must be its run's issue (%(issue)s).",
                code="issue_mismatch",
                params={"issue": run["for_issue_id"]},
            )
        if self._state.adding and run["status"] in OPEN_INPUT_STATUSES:
            errors["produced_by"] = ValidationError(
                "Artifacts are recorded only for a run that has started (this one is %(status)s).",
                code="run_not_started",
                params={"status": run["status"]},
            )
        if errors:
            raise ValidationError(errors)
