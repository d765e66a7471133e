"""The CWOM v0.1 enums (contract section 2)."""

from django.db import models


class Kind(models.TextChoices):
    REPO = "Repo"
    ISSUE = "Issue"
    CONTEXT_PACKET = "ContextPacket"
    CONSTRAINT_SNAPSHOT = "ConstraintSnapshot"
    DOCTRINE_REF = "DoctrineRef"
    RUN = "Run"
    ARTIFACT = "Artifact"


class Status(models.TextChoices):
    PLANNED = "planned"
    READY = "ready"
    RUNNING = "running"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


class IssueType(models.TextChoices):
    FEATURE = "feature"
    BUG = "bug"
    CHORE = "chore"
    RESEARCH = "research"
    OPS = "ops"
    DOC = "doc"
    INCIDENT = "incident"


class Priority(models.TextChoices):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class RunMode(models.TextChoices):
    HUMAN = "human"
    AGENT = "agent"
    HYBRID = "hybrid"
    SYSTEM = "system"


class ManagedBy(models.TextChoices):
    """Who drives a run through its statuses: the service's workers (an enqueued run) or its client."""

    SERVICE = "service"
    CLIENT = "client"


class ArtifactType(models.TextChoices):
    CODE_PATCH = "code_patch"
    COMMIT = "commit"
    PR = "pr"
    BUILD = "build"
    CONTAINER_IMAGE = "container_image"
    DOC = "doc"
    REPORT = "report"
    DATASET = "dataset"
    LOG = "log"
    TRACE = "trace"
    BINARY = "binary"
    LINK = "link"


class VerificationStatus(models.TextChoices):
    UNVERIFIED = "unverified"
    PASSED = "passed"
    FAILED = "failed"


class DoctrineType(models.TextChoices):
    PRINCIPLE = "principle"
    POLICY = "policy"
    PROCEDURE = "procedure"
    HEURISTIC = "heuristic"
    PATTERN = "pattern"


class DoctrinePriority(models.TextChoices):
    MUST = "must"
    SHOULD = "should"
    MAY = "may"


class Visibility(models.TextChoices):
    PUBLIC = "public"
    PRIVATE = "private"
    INTERNAL = "internal"


class ConstraintScope(models.TextChoices):
    PERSONAL = "personal"
    REPO = "repo"
    ORG = "org"
    SYSTEM = "system"
    RUN = "run"


class FailureCategory(models.TextChoices):
    POLICY = "policy"
    BUILD = "build"
    TEST = "test"
    RUNTIME = "runtime"
    DEPENDENCY = "dependency"
    UNKNOWN = "unknown"


class Connectivity(models.TextChoices):
    OFFLINE = "offline"
    LIMITED = "limited"
    OK = "ok"


class RiskTolerance(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ActorKind(models.TextChoices):
    HUMAN = "human"
    AGENT = "agent"
    SYSTEM = "system"


class EventAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    SEAL = "seal"
    TRANSITION = "transition"


TERMINAL_STATUSES = frozenset({Status.DONE, Status.FAILED, Status.CANCELED})

# The run state machine: the one table of legal moves (contract section 3, Run).
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PLANNED: frozenset({Status.READY, Status.CANCELED}),
    Status.READY: frozenset({Status.RUNNING, Status.BLOCKED, Status.CANCELED}),
    Status.RUNNING: frozenset({Status.BLOCKED, Status.DONE, Status.FAILED, Status.CANCELED}),
    Status.BLOCKED: frozenset({Status.READY, Status.RUNNING, Status.FAILED, Status.CANCELED}),
    Status.DONE: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}
