"""``manage.py cwom_reap``: one pass of the reaper (what Celery beat runs every few seconds)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from execution.reaper import reap


class Command(BaseCommand):
    help = (
        "Re-queue or fail runs whose worker stopped heartbeating, force pending cancels past their grace, "
        "and re-dispatch ready runs whose message was lost. Prints what it did as JSON."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(reap().as_dict(), sort_keys=True))
