"""Users: whoever writes to the ledger, recorded on every transaction they write."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput
from ledger.models import AppUser
from ledger.orgs import check_name

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: The user the command line writes as when no other is named.
SYSTEM_USERNAME = "system"


def ensure_user(session: Session, username: str, display_name: str | None = None) -> AppUser:
    """Return the user called ``username``, creating it on first use.

    Two first uses at once both succeed: the insert skips a name another writer has just
    taken (waiting for it to commit on PostgreSQL), and the lookup then finds that row.
    """
    if not isinstance(username, str) or not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput("must be 1 to 64 lower-case letters, digits, '.', '_' or '-'", field="username")
    user = session.execute(select(AppUser).where(AppUser.username == username)).scalar_one_or_none()
    if user is not None:
        return user
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(AppUser)
        .values(username=username, display_name=check_name(display_name or username, field="display_name"))
        .on_conflict_do_nothing(index_elements=[AppUser.username])
    )
    return session.execute(select(AppUser).where(AppUser.username == username)).scalar_one()
