"""The one small interface every executor implements, and what it is given and gives back.

An executor receives the run's full input bundle (:func:`cwom.lineage.run_bundle`, the same document
the lineage endpoint serves) and an :class:`ExecutionContext`, and returns an :class:`ExecutionResult`.
It never writes to the database: the worker records the result, fenced by the attempt.

An executor that reads no input objects sets ``needs_bundle = False``: it then gets a bundle built
only if it is read after all, and ``ctx.inputs`` (the ids the run names, and its issue's title).

Long work calls ``ctx.checkpoint()`` at least every few seconds: that heartbeats, and raises
:class:`ExecutionStopped` when the run was canceled, fenced out by a newer attempt, or out of time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import ValidationError

from cwom.enums import ArtifactType, FailureCategory


class ExecutorError(Exception):
    """The work failed in a way the executor understands: the run ends ``failed`` with this category."""

    def __init__(self, message: str, category: str = FailureCategory.RUNTIME) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


class ExecutionStopped(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised by ``checkpoint()``: stop now (``reason`` is ``canceled``, ``fenced`` or ``timeout``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass
class ArtifactSpec:
    """An output of an executor: bytes the service stores (``content``) or a link (``uri``)."""

    type: str
    title: str = ""
    content: bytes | None = None
    uri: str | None = None
    media_type: str | None = None
    digest: str | None = None  # only for links: the service computes it for content
    preview: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ArtifactType.values:
            raise ExecutorError(f"Unknown artifact type {self.type!r}.", FailureCategory.RUNTIME)
        if (self.content is None) == (self.uri is None):
            raise ExecutorError("An artifact has either content or a uri.", FailureCategory.RUNTIME)


@dataclass
class ExecutionResult:
    """What an executor returns. ``failure_category`` set means the run ends ``failed``."""

    summary: str | None = None
    decision_log: list[str] = field(default_factory=list)
    cost_usd: float | None = None
    cost_tokens: int | None = None
    cost_compute_s: float | None = None
    artifacts: list[ArtifactSpec] = field(default_factory=list)
    failure_category: str | None = None
    failure_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure_category is not None


@dataclass(frozen=True)
class RunInputs:
    """What a run names, without the objects: its issue (id and title), its context packets (id and
    version, in the run's order), its doctrine refs (its own, then its packets', once each), its snapshot."""

    issue_id: str
    issue_title: str
    context_packets: list[dict[str, Any]]
    doctrine_ref_ids: list[str]
    constraint_snapshot_id: str | None


@dataclass
class ExecutionContext:
    """What the worker lends an executor: the log, the trace, the clock and the stop signal."""

    run_id: str
    attempt: int
    time_limit_s: float
    log: Callable[[str], None]
    trace: Callable[..., None]
    checkpoint_fn: Callable[[], None]
    time_left_fn: Callable[[], float]
    inputs_fn: Callable[[], RunInputs] | None = None

    @property
    def inputs(self) -> RunInputs:
        """The ids the run names (read once, on first use)."""
        if self.inputs_fn is None:
            raise AttributeError("This context has no run inputs.")
        return self.inputs_fn()

    def checkpoint(self) -> None:
        """Heartbeat; raise :class:`ExecutionStopped` if the run must stop (cancel, fence, time)."""
        self.checkpoint_fn()

    def time_left(self) -> float:
        """Seconds until the run's soft time limit."""
        return self.time_left_fn()

    def sleep(self, seconds: float, step: float = 0.2) -> None:
        """Sleep ``seconds`` while still checkpointing every ``step``."""
        import time

        end = time.monotonic() + seconds
        while True:
            self.checkpoint()
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(step, remaining))


class Executor:
    """Base class of executors. Subclasses set ``name`` and implement :meth:`execute`.

    ``validate_config`` runs at enqueue time, so a bad config is a 400 for the client rather than a
    failed run; ``execute`` runs in the worker.
    """

    name: ClassVar[str] = ""
    # The JSON Schema of ``config`` as the API documents it: what ``validate_config`` checks of its shape
    # (what it checks against settings, an allowlist, is a rule the schema cannot say). Default: any object.
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    # False: the bundle is built only if the executor reads it (``ctx.inputs`` holds the run's ids).
    needs_bundle: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Raise ValidationError (keyed by config paths) if ``config`` cannot work. Default: anything goes."""

    @classmethod
    def check_enabled(cls) -> None:
        """Raise ExecutorError(category=policy) when an operator has not enabled this executor."""

    def execute(self, bundle: Mapping[str, Any], ctx: ExecutionContext) -> ExecutionResult:
        raise NotImplementedError


def config_error(path: str, message: str, code: str = "invalid") -> ValidationError:
    """A ValidationError for one key of an executor config."""
    return ValidationError({path: [ValidationError(message, code=code)]})
