"""A test-only executor whose behaviour the run's config scripts (registered by the test settings)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from execution import lifecycle
from execution.executors.base import ArtifactSpec, ExecutionContext, ExecutionResult, Executor, ExecutorError


class ScriptedExecutor(Executor):
    """Config: ``sleep`` seconds (checkpointed unless ``checkpoint`` is false), ``cancel_during``,
    ``crash`` (a message), ``fail`` ({"category", "message"}), ``summary``, ``bad_artifact`` (a link whose
    uri is too long for the contract)."""

    name = "scripted"

    def execute(self, bundle: Mapping[str, Any], ctx: ExecutionContext) -> ExecutionResult:
        ctx.log(f"scripted: {self.config}")
        if self.config.get("cancel_during"):
            lifecycle.request_cancel(ctx.run_id, "test")
        seconds = float(self.config.get("sleep", 0))
        if seconds and self.config.get("checkpoint", True):
            ctx.sleep(seconds, step=0.05)
        elif seconds:
            time.sleep(seconds)
        if self.config.get("crash"):
            raise RuntimeError(self.config["crash"])
        if self.config.get("fail"):
            raise ExecutorError(self.config["fail"]["message"], self.config["fail"]["category"])
        link_uri = (
            "https://example.com/" + "x" * 3000 if self.config.get("bad_artifact") else "https://example.com/docs"
        )
        return ExecutionResult(
            summary=self.config.get("summary", "scripted ok"),
            decision_log=["scripted: did the thing"],
            cost_usd=0.25,
            cost_tokens=42,
            artifacts=[
                ArtifactSpec(type="report", title="scripted report", content=b"hello from scripted\n"),
                ArtifactSpec(type="link", title="docs", uri=link_uri, digest=None),
            ],
        )
