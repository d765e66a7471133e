"""The ``noop`` executor: succeeds at once with a small report (tests, demos, benchmarks)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from .base import ArtifactSpec, ExecutionContext, ExecutionResult, Executor, config_error


class NoopExecutor(Executor):
    """Does nothing but describe what the run names. Config: ``{"summary": "..."}`` (optional)."""

    name = "noop"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"summary": {"type": "string", "description": "The run's result summary."}},
        "additionalProperties": False,
    }
    needs_bundle = False  # it describes what the run names: ctx.inputs, not the objects

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - {"summary"})
        if unknown:
            raise config_error(unknown[0], "The noop executor takes only 'summary'.", "unknown_field")
        if "summary" in config and not isinstance(config["summary"], str):
            raise config_error("summary", "Must be a string.")

    def execute(self, bundle: Mapping[str, Any], ctx: ExecutionContext) -> ExecutionResult:
        ctx.checkpoint()
        inputs = ctx.inputs
        packets = inputs.context_packets
        ctx.trace("noop.inspected", packets=len(packets), doctrine_refs=len(inputs.doctrine_ref_ids))
        ctx.log(f"noop: issue {inputs.issue_id} ({inputs.issue_title!r}), {len(packets)} context packet(s)")
        report = {
            "executor": self.name,
            "issue": {"id": inputs.issue_id, "title": inputs.issue_title},
            "context_packets": [{"id": p["id"], "version": p["version"]} for p in packets],
            "doctrine_refs": inputs.doctrine_ref_ids,
            "constraint_snapshot": inputs.constraint_snapshot_id,
        }
        return ExecutionResult(
            summary=self.config.get("summary") or f"noop: nothing to do for {inputs.issue_title!r}.",
            decision_log=["noop executor: no action taken"],
            cost_usd=0.0,
            cost_tokens=0,
            artifacts=[
                ArtifactSpec(
                    type="report",
                    title="noop report",
                    content=json.dumps(report, indent=2, sort_keys=True).encode(),
                    media_type="application/json",
                )
            ],
        )
