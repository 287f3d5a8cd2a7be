"""Users: who uses the ledger (recorded on every write), their passwords, roles and tokens.

Passwords are stored as argon2id hashes and capped in length; API tokens as SHA-256 digests
of 256 random bits, with an expiry and revocable. What a user may do comes from their roles,
each over an org's subtree (see ``ledger/api/policy.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import argon2
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.errors import AlreadyExists, InvalidInput
from ledger.models import ApiToken, AppUser, OrgNode, Participant, Role, RoleAssignment
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


# Passwords, roles and tokens ---------------------------------------------------------------

#: Long enough to resist guessing, short enough that hashing a hostile one costs nothing much.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
#: How long a token lasts unless the caller asks for less.
DEFAULT_TOKEN_LIFETIME = dt.timedelta(days=30)
MAX_TOKEN_LIFETIME = dt.timedelta(days=365)

_hasher = argon2.PasswordHasher()  # argon2id with the library's recommended parameters
#: Verified against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such user, but take the time anyway")


def set_password(user: AppUser, password: str) -> None:
    """Store an argon2id hash of ``password`` for ``user``."""
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long", field="password"
        )
    user.password_hash = _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> AppUser | None:
    """Return the active user whose name and password these are, or ``None``; never say which was wrong."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH or not isinstance(username, str):
        return None
    user = session.execute(select(AppUser).where(AppUser.username == username)).scalar_one_or_none()
    try:
        _hasher.verify(user.password_hash if user is not None and user.password_hash else _DUMMY_HASH, password)
    except argon2.exceptions.VerificationError:
        return None
    return user if user is not None and user.is_active and user.password_hash else None


def grant_role(session: Session, *, user: AppUser, role: str, org: OrgNode | None) -> RoleAssignment:
    """Give ``user`` a role over ``org``'s subtree (a system admin has no org); granting twice is harmless."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(Role)}", field="role") from None
    if (role is Role.SYSTEM_ADMIN) != (org is None):
        raise InvalidInput("a system admin has no org; every other role is given over an org", field="org")
    org_id = None if org is None else org.id
    same_scope = RoleAssignment.org_id.is_(None) if org_id is None else RoleAssignment.org_id == org_id
    existing = session.execute(
        select(RoleAssignment).where(RoleAssignment.user_id == user.id, RoleAssignment.role == role, same_scope)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    assignment = RoleAssignment(user_id=user.id, role=role, org_id=org_id)
    session.add(assignment)
    session.flush()
    return assignment


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    role: str,
    org: OrgNode | None,
    participant: Participant | None = None,
) -> AppUser:
    """Create a user with a password and one role; a name or participant already taken is refused.

    Unlike :func:`ensure_user`, an existing user is never reused: that would let whoever
    creates users set the password of someone else's account. ``participant`` is who the user
    is (a volunteer signing in for themselves); they must belong inside the role's org.
    """
    if session.execute(select(AppUser.id).where(AppUser.username == username)).first() is not None:
        raise AlreadyExists(f"a user is already called {username!r}", field="username")
    if participant is not None:
        if session.execute(select(AppUser.id).where(AppUser.participant_id == participant.id)).first() is not None:
            raise AlreadyExists("this participant already has a user", field="participant_id")
        if org is not None and not participant.org.path.startswith(org.path):
            raise InvalidInput(f"{participant.display_name} does not belong to {org.name}", field="participant_id")
    user = ensure_user(session, username, display_name)
    if user.password_hash is not None:
        # Another request created this name between the check above and the insert.
        raise AlreadyExists(f"a user is already called {username!r}", field="username")
    set_password(user, password)
    user.participant_id = None if participant is None else participant.id
    grant_role(session, user=user, role=role, org=org)
    return user


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and never stored."""

    token: ApiToken
    secret: str


def issue_token(
    session: Session, *, user: AppUser, name: str, now: dt.datetime, lifetime: dt.timedelta = DEFAULT_TOKEN_LIFETIME
) -> IssuedToken:
    """Create a bearer token for ``user`` that expires after ``lifetime``."""
    if not dt.timedelta(minutes=1) <= lifetime <= MAX_TOKEN_LIFETIME:
        raise InvalidInput(f"must be from a minute to {MAX_TOKEN_LIFETIME.days} days", field="lifetime")
    secret = "vl_" + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        token_hash=token_digest(secret),
        name=check_name(name, field="name", max_length=100),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def user_for_token(session: Session, secret: str, *, now: dt.datetime) -> AppUser | None:
    """Return the active user a token belongs to, if it is neither expired nor revoked."""
    if not isinstance(secret, str) or not secret.startswith("vl_") or len(secret) > 100:
        return None
    token = session.execute(select(ApiToken).where(ApiToken.token_hash == token_digest(secret))).scalar_one_or_none()
    if token is None or token.revoked_at is not None or token.expires_at <= now or not token.user.is_active:
        return None
    return token.user


def revoke_tokens(session: Session, *, user: AppUser, now: dt.datetime, token_id: int | None = None) -> int:
    """Revoke one of a user's tokens, or all of them; return how many were still live."""
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    tokens = list(session.execute(query).scalars())
    for token in tokens:
        token.revoked_at = now
    session.flush()
    return len(tokens)


def revoke_token(session: Session, *, user: AppUser, secret: str, now: dt.datetime) -> None:
    """Revoke the token with this secret, if it is the user's (signing out)."""
    token = session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.token_hash == token_digest(secret))
    ).scalar_one_or_none()
    if token is not None and token.revoked_at is None:
        token.revoked_at = now
        session.flush()
