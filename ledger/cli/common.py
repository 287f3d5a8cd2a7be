"""What every command module shares: turning refusals into messages, finding orgs and users."""

from __future__ import annotations

import functools
import unicodedata

import click

from ledger.db import db
from ledger.errors import LedgerError
from ledger.models import AppUser, OrgNode
from ledger.orgs import org_by_code
from ledger.users import ensure_user


def refusals_as_messages(command):
    """Turn a ledger refusal into a one-line error and exit status 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def actor_named(username: str) -> AppUser:
    """Return the user a command acts as, creating it on first use."""
    return ensure_user(db.session, username)


def org_coded(code: str) -> OrgNode:
    """Return the org a command names by its code."""
    return org_by_code(db.session, code)


ACTOR_OPTION = click.option(
    "--as", "username", default="system", show_default=True, help="User recorded as having done this."
)


def display_width(text: str) -> int:
    """Return how many terminal columns ``text`` takes: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)


def left(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 1)


def right(text: str, width: int) -> str:
    return " " * max(width - display_width(text), 1) + text


def hours(minutes: int) -> str:
    """Return minutes as hours and minutes, ``12:30``."""
    return f"{minutes // 60}:{minutes % 60:02d}"
