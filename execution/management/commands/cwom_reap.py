"""``manage.py cwom_reap``: one pass of the reaper (what Celery beat runs every few seconds)."""

from __future__ import annotations

import json
from typing import Any

from cwom.management.base import CwomCommand
from execution.reaper import reap


class Command(CwomCommand):
    help = (
        "Re-queue or fail runs whose worker stopped heartbeating, force pending cancels past their grace, "
        "and re-dispatch ready runs whose message was lost. Prints what it did as JSON. Exit 0 when the pass "
        "ran, 1 when it failed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(reap().as_dict(), sort_keys=True))
