"""The CWOM kernel's models: the seven kinds, their link tables, the id index and the event log."""

from .access import ApiToken, IdempotencyRecord, TokenExpired
from .base import CwomObject, Event, Link, MutableCwomObject, ObjectIndex, RefTotal, record_event
from .briefing import ConstraintSnapshot, ContextPacket, DoctrineApplicableRepo, DoctrineRef, PacketDoctrineRef
from .runs import Artifact, Run, RunConflictError, RunContextPacket, RunDoctrineRef, RunTransitionError
from .work import (
    Issue,
    IssueBlock,
    IssueConstraintSnapshot,
    IssueContextPacket,
    IssueDoctrineRef,
    IssueDuplicate,
    IssueTag,
    Repo,
)

KIND_MODELS: dict[str, type[CwomObject]] = {
    model.KIND: model for model in (Repo, Issue, ContextPacket, ConstraintSnapshot, DoctrineRef, Run, Artifact)
}

__all__ = [
    "KIND_MODELS",
    "ApiToken",
    "Artifact",
    "ConstraintSnapshot",
    "ContextPacket",
    "CwomObject",
    "DoctrineApplicableRepo",
    "DoctrineRef",
    "Event",
    "IdempotencyRecord",
    "Issue",
    "IssueBlock",
    "IssueConstraintSnapshot",
    "IssueContextPacket",
    "IssueDoctrineRef",
    "IssueDuplicate",
    "IssueTag",
    "Link",
    "MutableCwomObject",
    "ObjectIndex",
    "PacketDoctrineRef",
    "RefTotal",
    "Repo",
    "Run",
    "RunConflictError",
    "RunContextPacket",
    "RunDoctrineRef",
    "RunTransitionError",
    "TokenExpired",
    "record_event",
]
