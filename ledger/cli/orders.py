"""Commands for orders (需求, 微心愿, 共建项目): post, claim, deliver, confirm, and the deadline job.

Times given without a zone (``2026-12-01T09:00``) are read in the order's org's time zone; a
deadline given as a day (``2026-12-20``) means the end of that day there.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import click
from flask.cli import with_appcontext

from ledger.cli.common import (
    ACTOR_OPTION,
    actor_named,
    left,
    org_coded,
    participant_named,
    participant_options,
    refusals_as_messages,
    right,
)
from ledger.db import db, write_transaction
from ledger.errors import InvalidInput, NotFound
from ledger.models import BENEFICIARY_GROUPS, OrderClaim, OrgNode, ServiceOrder
from ledger.order_flow import ClaimantKind, OrderKind, OrderState

ORDER_ID = click.argument("order_id", type=int)
CLAIM_ID = click.argument("claim_id", type=int)


@click.group("orders")
def orders_group() -> None:
    """Orders (需求/微心愿/共建项目): post, claim, deliver, confirm, list, and close overdue claims."""


@orders_group.command("post")
@click.option("--org", "org_code", required=True, help="Code of the community or grid whose need it is.")
@click.option("--kind", type=click.Choice([k.value for k in OrderKind]), required=True)
@click.option("--title", required=True)
@click.option("--type", "activity_type", required=True, help="The rule set's activity type confirmation scores.")
@click.option("--deadline", required=True, help="A day (the end of it) or a time, e.g. 2026-12-20 or 2026-12-20T18:00.")
@click.option("--capacity", default=1, show_default=True, type=int, help="How many claimants it takes.")
@click.option(
    "--claimants",
    "claimant_kind",
    type=click.Choice([k.value for k in ClaimantKind]),
    help="Who may claim it (default: units for a co-building project, anyone otherwise).",
)
@click.option("--for", "beneficiary_group", type=click.Choice(BENEFICIARY_GROUPS), default="other", show_default=True)
@click.option("--beneficiary", "beneficiary_name", help="The beneficiary's name: shown to staff, masked in public.")
@click.option("--contact", "beneficiary_contact", help="How to reach the beneficiary: shown to staff only.")
@click.option("--description")
@click.option("--publish", is_flag=True, help="Publish it at once (default: keep it as a draft).")
@click.option("--key", help="Idempotency key; run again with the same key to retry safely (default: a new one).")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def post_command(
    org_code,
    kind,
    title,
    activity_type,
    deadline,
    capacity,
    claimant_kind,
    beneficiary_group,
    beneficiary_name,
    beneficiary_contact,
    description,
    publish,
    key,
    username,
) -> None:
    """Post an order in a community or grid, as a draft or published at once."""
    from ledger.orders import post_order

    key = key or f"cli-{uuid.uuid4().hex}"

    def work():
        org = org_coded(org_code)
        return post_order(
            db.session,
            actor=actor_named(username),
            org=org,
            kind=kind,
            title=title,
            activity_type=activity_type,
            deadline=_deadline(deadline, org),
            capacity=capacity,
            claimant_kind=claimant_kind,
            beneficiary_group=beneficiary_group,
            beneficiary_name=beneficiary_name,
            beneficiary_contact=beneficiary_contact,
            description=description,
            publish=publish,
            idempotency_key=key,
        ).id

    order = db.session.get(ServiceOrder, write_transaction(work))
    click.echo(
        f"Order {order.id} in {order.org.name}: {order.title} ({order.kind}, {order.capacity} place(s) for "
        f"{order.claimant_kind}, deadline {_local(order.deadline, order.org)}). Key: {key}"
    )
    _echo_state(order.id)


@orders_group.command("publish")
@ORDER_ID
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def publish_command(order_id, username) -> None:
    """Publish a draft order so that claimants see it."""
    from ledger.orders import publish_order

    _echo_step(write_transaction(lambda: publish_order(db.session, actor=actor_named(username), order_id=order_id)))


@orders_group.command("cancel")
@ORDER_ID
@click.option("--reason", required=True, help="Why, for the claimants.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def cancel_command(order_id, reason, username) -> None:
    """Cancel an order (refused once part of it was confirmed)."""
    from ledger.orders import cancel_order

    _echo_step(
        write_transaction(lambda: cancel_order(db.session, actor=actor_named(username), order_id=order_id, reason=reason))
    )


@orders_group.command("claim")
@ORDER_ID
@participant_options
@click.option("--team", "team_id", type=int, help="Or a team's id.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def claim_command(order_id, volunteer_number, participant_id, team_id, username) -> None:
    """Take a place on a published order for a volunteer, party member, unit or team."""
    from ledger.orders import claim_order

    def work():
        if team_id is not None and (volunteer_number or participant_id):
            raise InvalidInput("give --team, or --volunteer or --participant, not both", field="team")
        claimant = None if team_id is not None else participant_named(volunteer_number, participant_id).id
        return claim_order(
            db.session, actor=actor_named(username), order_id=order_id, participant_id=claimant, team_id=team_id
        )

    _echo_step(write_transaction(work))


@orders_group.command("withdraw")
@CLAIM_ID
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def withdraw_command(claim_id, username) -> None:
    """Give a claimed place back, before the deadline."""
    from ledger.orders import withdraw

    _echo_step(write_transaction(lambda: withdraw(db.session, actor=actor_named(username), claim_id=claim_id)))


@orders_group.command("deliver")
@CLAIM_ID
@click.option("--from", "served_from", required=True, help="When the service began, e.g. 2026-12-01T09:00.")
@click.option("--to", "served_until", required=True, help="When it ended.")
@click.option("--note", required=True, help="What was done.")
@click.option("--served-by", "served_by", multiple=True, type=int, help="A participant id who served (repeat it).")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def deliver_command(claim_id, served_from, served_until, note, served_by, username) -> None:
    """Report a claim delivered; a team names the members who served, a unit the staff it sent."""
    from ledger.orders import deliver

    def work():
        org = _org_of_claim(claim_id)
        return deliver(
            db.session,
            actor=actor_named(username),
            claim_id=claim_id,
            served_from=_moment(served_from, org, "served_from"),
            served_until=_moment(served_until, org, "served_until"),
            note=note,
            served_by=list(served_by) or None,
        )

    _echo_step(write_transaction(work))


@orders_group.command("confirm")
@CLAIM_ID
@click.option("--rating", type=click.IntRange(1, 5), help="The beneficiary's rating, 1 to 5.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def confirm_command(claim_id, rating, username) -> None:
    """Accept a delivery and post the points it earns."""
    from ledger.orders import confirm

    _echo_step(
        write_transaction(lambda: confirm(db.session, actor=actor_named(username), claim_id=claim_id, rating=rating))
    )


@orders_group.command("reject")
@CLAIM_ID
@click.option("--reason", required=True, help="What is missing, for the claimant.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def reject_command(claim_id, reason, username) -> None:
    """Send a delivery back to the claimant: the claim awaits delivery again."""
    from ledger.orders import reject

    _echo_step(write_transaction(lambda: reject(db.session, actor=actor_named(username), claim_id=claim_id, reason=reason)))


@orders_group.command("show")
@ORDER_ID
@with_appcontext
@refusals_as_messages
def show_command(order_id) -> None:
    """Show an order as staff see it: its state, claims and history."""
    from ledger.orders import order_view

    details = order_view(db.session, order_id)
    order, org = details.order, details.order.org
    click.echo(f"Order {order.id} · {order.kind} · {order.title} · {org.name} ({org.code})")
    click.echo(
        f"  {details.state} · {details.places_left} of {order.capacity} places left · deadline "
        f"{_local(order.deadline, org)} · type {order.activity_type} · claimants {order.claimant_kind}"
    )
    beneficiary = ", ".join(filter(None, (order.beneficiary_name, order.beneficiary_contact)))
    click.echo(f"  for {order.beneficiary_group}" + (f": {beneficiary}" if beneficiary else ""))
    if order.description:
        click.echo(f"  {order.description}")
    for line in details.claims:
        click.echo(
            f"  claim {line.claim_id}: {line.name} ({line.claimant_kind} {line.claimant_id}) {line.state}, "
            f"claimed {_local(line.claimed_at, org)}"
        )
    for line in details.history:
        event = line.event
        facts = [f"claim {event.claim_id}" if event.claim_id else "", event.note or ""]
        if event.served_from:
            facts.append(f"served {_local(event.served_from, org)} to {_local(event.served_until, org)}")
        if event.served_by:
            facts.append("by " + ", ".join(map(str, event.served_by)))
        if event.rating:
            facts.append(f"rating {event.rating}")
        if event.transaction_id:
            facts.append(f"transaction {event.transaction_id}")
        click.echo(f"    {_local(event.at, org)}  {event.happening:<10} {line.actor_name}  " + "; ".join(filter(None, facts)))
    db.session.rollback()


@orders_group.command("list")
@click.option("--org", "org_code", required=True, help="Org whose subtree's orders to list.")
@click.option("--state", type=click.Choice([s.value for s in OrderState]))
@with_appcontext
@refusals_as_messages
def list_command(org_code, state) -> None:
    """List the orders of an org's subtree, soonest deadline first."""
    from ledger.orders import orders_by_state

    org = org_coded(org_code)
    summaries = orders_by_state(db.session, org, state)
    click.echo(f"{org.name} · {state or 'all states'} · {len(summaries)} orders")
    click.echo(right("id", 6) + "  " + left("state", 11) + left("places", 8) + left("deadline", 18) + "order")
    for summary in summaries:
        order = summary.order
        click.echo(
            right(str(order.id), 6)
            + "  "
            + left(summary.state, 11)
            + left(f"{summary.places_left}/{order.capacity}", 8)
            + left(_local(order.deadline, order.org), 18)
            + f"{order.kind}: {order.title} ({order.org.name})"
        )
    db.session.rollback()


@orders_group.command("open")
@participant_options
@with_appcontext
@refusals_as_messages
def open_command(volunteer_number, participant_id) -> None:
    """List the orders a participant could claim now, near them: beneficiaries' names masked."""
    from ledger.orders import open_orders_near

    participant = participant_named(volunteer_number, participant_id)
    orders = open_orders_near(db.session, participant.id)
    click.echo(f"{participant.display_name} · {len(orders)} open orders near {participant.org.name}")
    for order in orders:
        who = order.beneficiary_group + (f" {order.beneficiary}" if order.beneficiary else "")
        click.echo(
            f"  {order.order_id}  {order.kind}: {order.title} · {order.org_name} · for {who} · "
            f"{order.places_left} places left · until {_local(order.deadline, participant.org)}"
        )
    db.session.rollback()


@orders_group.command("close-overdue")
@click.option("--as-of", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The day, YYYY-MM-DD.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def close_overdue_command(as_of, username) -> None:
    """Penalise claims not delivered by their deadline and end those orders; each order commits on its own.

    Running it again for the same day writes nothing more.
    """
    from ledger.orders import close_overdue

    actor = write_transaction(lambda: actor_named(username))
    run = close_overdue(db.session, actor=actor, as_of=as_of.date(), each_order=write_transaction)
    click.echo(run.describe())


@orders_group.command("counts")
@click.option("--org", "org_code", required=True, help="Org whose units and party members to count.")
@click.option("--year", required=True, type=int)
@with_appcontext
@refusals_as_messages
def counts_command(org_code, year) -> None:
    """Count each unit's and party member's claims of a year, completed and overdue."""
    from ledger.orders import claim_counts

    org = org_coded(org_code)
    counts = claim_counts(db.session, org, year)
    click.echo(f"{org.name} · {year} · {len(counts)} units and party members with claims")
    click.echo(left("参与者 participant", 24) + left("单位 employer", 24) + right("claims", 8) + right("done", 8) + right("overdue", 9))
    for count in counts:
        click.echo(
            left(f"{count.name} ({count.category})", 24)
            + left(count.employer or "-", 24)
            + right(str(count.claims), 8)
            + right(str(count.completed), 8)
            + right(str(count.overdue), 9)
        )
    db.session.rollback()


def _echo_step(step) -> None:
    """Print what a write did and the order's state after it."""
    event = step.event
    subject = f"Claim {event.claim_id} on order {step.order.id}" if event.claim_id else f"Order {step.order.id}"
    again = " (already recorded)" if step.replayed else ""
    click.echo(f"{subject}: {event.happening}{again} at {_local(event.at, step.order.org)}")
    for recorded in step.recorded:
        points = recorded.transaction.breakdown["points"]
        click.echo(f"  {recorded.activity.participant.display_name}: {recorded.activity.activity_type} +{points} points")
    _echo_state(step.order.id)


def _echo_state(order_id: int) -> None:
    from ledger.orders import order_view

    details = order_view(db.session, order_id)
    click.echo(f"Order {order_id} is {details.state}, {details.places_left} of {details.order.capacity} places left.")
    db.session.rollback()


def _org_of_claim(claim_id: int) -> OrgNode:
    """Return the org of a claim's order: its time zone reads the times given for the claim."""
    claim = db.session.get(OrderClaim, claim_id)
    if claim is None:
        raise NotFound(f"claim {claim_id} does not exist", field="claim_id")
    return db.session.get(ServiceOrder, claim.order_id).org


def _moment(text: str, org: OrgNode, field: str) -> dt.datetime:
    """Read an ISO date and time; one without a zone is in ``org``'s time zone."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("must be a date and time such as 2026-12-01T09:00", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zoneinfo.ZoneInfo(org.time_zone))


def _deadline(text: str, org: OrgNode) -> dt.date | dt.datetime:
    """Read a deadline: a day as a date (the service takes the end of it), else a moment."""
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else _moment(text, org, "deadline")
    except ValueError:
        raise InvalidInput("must be a day such as 2026-12-20 or a time such as 2026-12-20T18:00", field="deadline") from None


def _local(moment: dt.datetime, org: OrgNode) -> str:
    return moment.astimezone(zoneinfo.ZoneInfo(org.time_zone)).strftime("%Y-%m-%d %H:%M")


COMMANDS = (orders_group,)
