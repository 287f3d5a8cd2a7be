"""The `ledger users` and `ledger tokens` commands: accounts, roles and API tokens."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ledger.cli.common import org_coded, participant_named, refusals_as_messages
from ledger.db import db, write_transaction
from ledger.errors import NotFound
from ledger.models import AppUser, Role, utc_now
from ledger.users import ensure_user, grant_role, issue_token, revoke_tokens, set_password


def _user(username: str) -> AppUser:
    user = db.session.execute(select(AppUser).where(AppUser.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user is called {username!r}", field="username")
    return user


@click.group("users")
def users_group() -> None:
    """Users: create them, give them roles over an org."""


@users_group.command("create")
@click.argument("username")
@click.option("--name", "display_name", help="The name shown for them (default: the user name).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given.")
@click.option("--role", type=click.Choice([r.value for r in Role]), help="A role to give them at once.")
@click.option("--org", "org_code", help="The org the role covers (not for system_admin).")
@click.option("--volunteer", "volunteer_number", help="The volunteer this user is, for the volunteer role.")
@with_appcontext
@refusals_as_messages
def create_user_command(username, display_name, password, role, org_code, volunteer_number) -> None:
    """Create a user with a password (and, optionally, a role)."""

    def create():
        user = ensure_user(db.session, username, display_name)
        set_password(user, password)
        if volunteer_number:
            user.participant_id = participant_named(volunteer_number, None).id
        if role:
            grant_role(db.session, user=user, role=role, org=org_coded(org_code) if org_code else None)
        db.session.flush()
        return user

    user = write_transaction(create)
    click.echo(f"User {user.username} (id {user.id}) is ready" + (f", {role} of {org_code or 'everything'}" if role else ""))


@users_group.command("grant")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--org", "org_code", help="The org the role covers (not for system_admin).")
@with_appcontext
@refusals_as_messages
def grant_command(username, role, org_code) -> None:
    """Give a user a role over an org's subtree."""
    write_transaction(
        lambda: grant_role(db.session, user=_user(username), role=role, org=org_coded(org_code) if org_code else None)
    )
    click.echo(f"{username} is {role} of {org_code or 'everything'}")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: issue one for a client, revoke them."""


@tokens_group.command("issue")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365))
@with_appcontext
@refusals_as_messages
def issue_token_command(username, name, days) -> None:
    """Issue a bearer token; it is printed once and never stored."""
    issued = write_transaction(
        lambda: issue_token(db.session, user=_user(username), name=name, now=utc_now(), lifetime=dt.timedelta(days=days))
    )
    click.echo(issued.secret)
    click.echo(f"token id {issued.token.id}, expires {issued.token.expires_at.isoformat()}", err=True)


@tokens_group.command("revoke")
@click.argument("username")
@click.option("--token-id", type=int, help="One token (default: all of the user's tokens).")
@with_appcontext
@refusals_as_messages
def revoke_tokens_command(username, token_id) -> None:
    """Revoke a user's tokens at once."""
    count = write_transaction(lambda: revoke_tokens(db.session, user=_user(username), now=utc_now(), token_id=token_id))
    click.echo(f"Revoked {count} token(s) of {username}")


COMMANDS = (users_group, tokens_group)
