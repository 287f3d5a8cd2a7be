"""What every command module shares: turning refusals into messages, finding orgs and users."""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata

import click
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from ledger.db import db, schema_state
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.models import AppUser, OrgNode, Participant, Volunteer, utc_now
from ledger.orgs import local_date, org_by_code
from ledger.users import ensure_user


#: What to do about a database that cannot serve a command.
SCHEMA_STATES = {
    "unreachable": "the database cannot be reached: check LEDGER_DATABASE_URL and that the server is up",
    "pending": "the database schema is not current: run `ledger db upgrade` first",
}


def refusals_as_messages(command):
    """Turn a ledger refusal, or a database that cannot serve, into a one-line error and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None
        except DBAPIError:
            db.session.rollback()
            state = schema_state()
            if state == "current":
                raise
            raise click.ClickException(SCHEMA_STATES[state]) from None

    return wrapper


def actor_named(username: str) -> AppUser:
    """Return the user a command acts as, creating it on first use."""
    return ensure_user(db.session, username)


def org_coded(code: str) -> OrgNode:
    """Return the org a command names by its code."""
    return org_by_code(db.session, code)


def participant_named(volunteer_number: str | None, participant_id: int | None) -> Participant:
    """Return the participant a command names by volunteer number or by id (exactly one of them)."""
    if (volunteer_number is None) == (participant_id is None):
        raise InvalidInput("give either --volunteer NUMBER or --participant ID", field="volunteer")
    if volunteer_number is not None:
        participant_id = db.session.scalar(
            select(Volunteer.participant_id).where(Volunteer.volunteer_number == volunteer_number)
        )
        if participant_id is None:
            raise NotFound(f"no volunteer has number {volunteer_number}", field="volunteer")
    participant = db.session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant")
    return participant


#: The two ways a command names a participant; use with :func:`participant_named`.
PARTICIPANT_OPTIONS = (
    click.option("--volunteer", "volunteer_number", help="Volunteer number, for example DEMO-V00012."),
    click.option("--participant", "participant_id", type=int, help="Or a participant id."),
)


def participant_options(command):
    for option in reversed(PARTICIPANT_OPTIONS):
        command = option(command)
    return command


ACTOR_OPTION = click.option(
    "--as", "username", default="system", show_default=True, help="User recorded as having done this."
)


def today_in(org: OrgNode) -> dt.date:
    """Return today's date where ``org`` is: its days begin at midnight in its own time zone."""
    return local_date(utc_now(), org)


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
