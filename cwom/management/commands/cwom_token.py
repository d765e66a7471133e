"""``manage.py cwom_token``: create, list and revoke the API tokens agents authenticate with."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cwom.management.base import CwomCommand, moment
from cwom.models import ApiToken
from cwom.models.access import TOKEN_NAME_RULE
from cwom.shapes import iso

DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"(?:\d+[smhdw])+")


def duration(value: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``1d12h``... (s, m = minutes, h, d, w): a positive length of time."""
    text = value.strip().lower()
    if not DURATION.fullmatch(text):
        raise ValueError(f"--expires-in {value!r} is not a duration: use e.g. 30d, 12h, 90m or 1d12h (s, m, h, d, w)")
    try:
        length = sum(
            (dt.timedelta(**{DURATION_UNITS[unit]: int(n)}) for n, unit in re.findall(r"(\d+)([smhdw])", text)),
            dt.timedelta(),
        )
    except OverflowError:
        raise ValueError(f"--expires-in {value!r} is too long") from None
    if length <= dt.timedelta(0):
        raise ValueError(f"--expires-in {value!r} is not in the future: give a positive duration")
    return length


class Command(CwomCommand):
    help = (
        "Manage agent API tokens. 'create NAME [--write] [--expires-in 30d | --expires-at 2027-01-31T18:00Z]' prints "
        f"the secret once (only its hash is stored); NAME is {TOKEN_NAME_RULE}; tokens are read-only unless --write "
        "and never expire unless given an expiry (--expires-in and --expires-at exclude each other; an expired token "
        "is refused with 401 token_expired). 'list [--all] [--json]' shows the unrevoked tokens, expired ones "
        "included and marked expired (--all: revoked too). 'revoke NAME' stops a token at once. "
        "Exit 0 on success, 1 on an unknown or duplicate name, 2 on bad usage (a bad name or expiry)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = actions.add_parser(
            "create",
            help="create a token and print its secret (shown once)",
            epilog="--expires-in and --expires-at exclude each other; without either the token never expires.",
        )
        create.add_argument(
            "name", help=f"a unique name saying who uses the token, e.g. github-importer: {TOKEN_NAME_RULE}"
        )
        create.add_argument("--write", action="store_true", help="allow writes (default: read-only)")
        create.add_argument(
            "--expires-in",
            metavar="DURATION",
            help="expire this long from now: a number and a unit, e.g. 30d, 12h, 90m, 2w, 1d12h (s, m, h, d, w)",
        )
        create.add_argument(
            "--expires-at",
            metavar="WHEN",
            help="expire at this ISO-8601 time or date, e.g. 2027-01-31T18:00:00Z (no zone: UTC; a date: its midnight)",
        )
        listing = actions.add_parser(
            "list",
            help="list tokens (never their secrets)",
            description="Lists the unrevoked tokens, expired ones included (status 'expired'); --all adds the "
            "revoked ones (status 'revoked').",
        )
        listing.add_argument("--all", action="store_true", help="include revoked tokens")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        revoke = actions.add_parser("revoke", help="revoke a token by name")
        revoke.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        name = options["name"].strip()
        expires_at = self._expiry(options.get("expires_in"), options.get("expires_at"))
        try:
            with transaction.atomic():
                token, secret = ApiToken.issue(name, can_write=options["write"], expires_at=expires_at)
        except ValidationError as error:
            messages = [message for messages in error.message_dict.values() for message in messages]
            raise CommandError(" ".join(messages), returncode=2) from None
        except IntegrityError:
            raise CommandError(f"A token named {name!r} already exists; pick another name.", returncode=1) from None
        scope = "read-write" if token.can_write else "read-only"
        until = f", expiring at {iso(token.expires_at)}" if token.expires_at else ", never expiring"
        self.stderr.write(f"Created {scope} token {name!r}{until}. Store the secret now: it is not shown again.")
        self.stdout.write(secret)

    @staticmethod
    def _expiry(expires_in: str | None, expires_at: str | None) -> dt.datetime | None:
        """The expiry asked for, checked to be in the future (exit 2 otherwise)."""
        if expires_in is not None and expires_at is not None:
            raise CommandError("Give --expires-in or --expires-at, not both.", returncode=2)
        now = timezone.now()
        try:
            if expires_in is not None:
                when = now + duration(expires_in)
            elif expires_at is not None:
                when = moment(expires_at)
            else:
                return None
        except (ValueError, OverflowError, argparse.ArgumentTypeError) as error:
            if expires_in is not None:
                raise CommandError(str(error), returncode=2) from None
            raise CommandError(
                f"--expires-at {expires_at!r} is not an ISO-8601 date or timestamp (e.g. 2027-01-31T18:00:00Z).",
                returncode=2,
            ) from None
        if when <= now:
            raise CommandError(
                f"--expires-at {expires_at!r} ({iso(when)}) is in the past: give a future time.", returncode=2
            )
        return when

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.order_by("name")
        if not options["all"]:
            tokens = tokens.filter(revoked_at__isnull=True)
        rows = [
            {
                "name": t.name,
                "key_id": t.key_id,
                "scope": "read-write" if t.can_write else "read-only",
                "status": t.status,
                "created_at": iso(t.created_at),
                "expires_at": iso(t.expires_at),
                "last_used_at": iso(t.last_used_at),
                "revoked_at": iso(t.revoked_at),
            }
            for t in tokens
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No tokens.")
            return
        columns = ("name", "key_id", "scope", "status", "created_at", "expires_at", "last_used_at", "revoked_at")
        widths = {c: max(len(c), *(len(str(r[c] or "-")) for r in rows)) for c in columns}
        self.stdout.write("  ".join(c.ljust(widths[c]) for c in columns))
        for row in rows:
            self.stdout.write("  ".join(str(row[c] or "-").ljust(widths[c]) for c in columns))

    def _revoke(self, options: dict[str, Any]) -> None:
        token = ApiToken.objects.filter(name=options["name"]).first()
        if token is None:
            raise CommandError(f"No token is named {options['name']!r}.", returncode=1)
        if token.revoked_at is not None:
            self.stdout.write(f"Token {token.name!r} was already revoked at {iso(token.revoked_at)}.")
            return
        token.revoke()
        self.stdout.write(self.style.SUCCESS(f"Revoked token {token.name!r}: it no longer authenticates."))
