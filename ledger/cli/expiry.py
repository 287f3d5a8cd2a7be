"""Commands for expiry: take away the points due by a day, and show a participant what expires next."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ledger.cli.common import (
    ACTOR_OPTION,
    actor_named,
    org_coded,
    participant_named,
    participant_options,
    refusals_as_messages,
    today_in,
)
from ledger.db import db, write_transaction


@click.command("expire")
@click.option("--as-of", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The day, YYYY-MM-DD.")
@click.option("--org", "org_code", help="Only participants in this org's subtree (default: everyone).")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def expire_command(as_of, org_code, username) -> None:
    """Expire the points due by a day under each org's rules, first earned first expired.

    Accounts are done in batches, each committed on its own, so a district-wide run never holds
    locks for long. Running it again for the same day writes nothing more; after an
    interruption, running it again completes the run.
    """
    from ledger.expiry import expire_points

    actor = write_transaction(lambda: actor_named(username))
    org = org_coded(org_code) if org_code else None
    run = expire_points(db.session, actor=actor, as_of=as_of.date(), org=org, each_batch=write_transaction)
    click.echo(run.describe())


@click.command("expiring")
@participant_options
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="The day to look from (default: their today).")
@with_appcontext
@refusals_as_messages
def expiring_command(volunteer_number, participant_id, today) -> None:
    """Show when a participant's points expire, soonest first."""
    from ledger.expiry import expiring_soon
    from ledger.transactions import participant_account

    participant = participant_named(volunteer_number, participant_id)
    account = participant_account(db.session, participant.id)
    day = today.date() if today else today_in(participant.org)
    expiries = expiring_soon(db.session, account.id, today=day)
    click.echo(f"{participant.display_name} — {account.balance} points now; expiring after {day.isoformat()}:")
    if not expiries:
        click.echo("  没有将到期的积分 Nothing expires.")
    for expires_on, points in expiries:
        click.echo(f"  {expires_on.isoformat()} 到期 expire: {points} 分 points")
    db.session.rollback()


COMMANDS = (expire_command, expiring_command)
