"""Commands for the reward shelf (爱心超市): rewards, redemptions and the liability view."""

from __future__ import annotations

import csv
import io
import uuid

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
    today_in,
)
from ledger.db import db, write_transaction
from ledger.exports import neutralise
from ledger.models import LimitPeriod, Reward, RewardKind

DATE = click.DateTime(["%Y-%m-%d"])


@click.group("shelf")
def shelf_group() -> None:
    """The reward shelf (爱心超市): offer rewards, list them, restock, see who holds a priority."""


@shelf_group.command("add")
@click.option("--org", "org_code", required=True, help="Code of the org whose shelf offers it.")
@click.option("--name", required=True)
@click.option("--price", "price_points", required=True, type=int, help="Points per unit.")
@click.option(
    "--kind", type=click.Choice([k.value for k in RewardKind]), default=RewardKind.GOODS.value, show_default=True
)
@click.option("--stock", type=int, help="Units on the shelf (default: unlimited).")
@click.option("--limit", "per_person_limit", type=int, help="Units one person may redeem per period.")
@click.option(
    "--per",
    "limit_period",
    type=click.Choice([p.value for p in LimitPeriod]),
    default=LimitPeriod.EVER.value,
    show_default=True,
)
@click.option("--min-stars", "min_star_level", type=int, default=0, show_default=True)
@click.option("--from", "active_from", type=DATE, help="First day offered (default: today).")
@click.option("--to", "active_to", type=DATE, help="Last day offered (default: open).")
@click.option("--value-yuan", "unit_value_yuan", type=int, help="What one unit is worth, for the liability view.")
@click.option("--description")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def shelf_add_command(
    org_code,
    name,
    price_points,
    kind,
    stock,
    per_person_limit,
    limit_period,
    min_star_level,
    active_from,
    active_to,
    unit_value_yuan,
    description,
    username,
) -> None:
    """Offer a reward on an org's shelf."""
    from ledger.shelf import add_reward

    def work():
        org = org_coded(org_code)
        return add_reward(
            db.session,
            actor=actor_named(username),
            org=org,
            name=name,
            kind=kind,
            price_points=price_points,
            active_from=active_from.date() if active_from else today_in(org),
            stock=stock,
            unit_value_yuan=unit_value_yuan,
            per_person_limit=per_person_limit,
            limit_period=limit_period,
            min_star_level=min_star_level,
            active_to=active_to.date() if active_to else None,
            description=description,
        )

    reward = write_transaction(work)
    click.echo(
        f"Reward {reward.id} on the shelf of {reward.org.name}: {reward.name}, {reward.price_points} points, "
        f"stock {_stock(reward.stock)}"
    )


@shelf_group.command("list")
@click.option("--org", "org_code", required=True, help="Org whose participants' catalogue to show.")
@click.option("--on", "day", type=DATE, help="The day (default: today).")
@with_appcontext
@refusals_as_messages
def shelf_list_command(org_code, day) -> None:
    """List the rewards offered to an org's participants: its shelf's and those of the orgs above it."""
    from ledger.shelf import catalogue

    org = org_coded(org_code)
    day = day.date() if day else today_in(org)
    rewards = catalogue(db.session, org, on=day)
    click.echo(f"{org.name} · {day.isoformat()} · {len(rewards)} rewards")
    click.echo(
        right("id", 5)
        + "  "
        + left("奖励 reward", 28)
        + left("种类 kind", 10)
        + right("积分 points", 12)
        + right("库存 stock", 12)
        + "  限购 limit / 星级 stars / 货架 shelf"
    )
    for reward in rewards:
        limit = f"{reward.per_person_limit}/{reward.limit_period}" if reward.per_person_limit else "-"
        click.echo(
            right(str(reward.id), 5)
            + "  "
            + left(reward.name, 28)
            + left(reward.kind, 10)
            + right(str(reward.price_points), 12)
            + right(_stock(reward.stock), 12)
            + f"  {limit} / {reward.min_star_level}★ / {reward.org.name}"
        )
    db.session.rollback()


@shelf_group.command("restock")
@click.argument("reward_id", type=int)
@click.argument("quantity", type=int)
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def shelf_restock_command(reward_id, quantity, username) -> None:
    """Add units to a reward's stock."""
    from ledger.shelf import restock

    movement = write_transaction(
        lambda: restock(db.session, actor=actor_named(username), reward_id=reward_id, quantity=quantity)
    )
    reward = db.session.get(Reward, movement.reward_id)
    click.echo(f"Restocked {reward.name} with {quantity}; {reward.stock} on the shelf")
    db.session.rollback()


@shelf_group.command("holders")
@click.argument("reward_id", type=int)
@with_appcontext
@refusals_as_messages
def shelf_holders_command(reward_id) -> None:
    """Export who holds a priority reward as CSV, first redeemed first."""
    from ledger.shelf import priority_holders

    holders = priority_holders(db.session, reward_id)
    db.session.rollback()
    sheet = io.StringIO()
    writer = csv.writer(sheet)
    writer.writerow(["redemption", "participant", "name", "quantity", "status", "requested_on"])
    for holder in holders:
        writer.writerow(
            [
                holder.redemption_id,
                holder.participant_id,
                neutralise(holder.display_name),
                holder.quantity,
                holder.status,
                holder.requested_on.isoformat(),
            ]
        )
    click.echo(sheet.getvalue(), nl=False)


@click.command("redeem")
@participant_options
@click.option("--reward", "reward_id", required=True, type=int)
@click.option("--quantity", default=1, show_default=True, type=int)
@click.option("--key", help="Idempotency key; run again with the same key to retry safely (default: a new one).")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def redeem_command(volunteer_number, participant_id, reward_id, quantity, key, username) -> None:
    """Spend a participant's points on a reward from the shelf."""
    from ledger.shelf import redeem
    from ledger.transactions import participant_account

    key = key or f"cli-{uuid.uuid4().hex}"

    def work():
        return redeem(
            db.session,
            actor=actor_named(username),
            participant_id=participant_named(volunteer_number, participant_id).id,
            reward_id=reward_id,
            quantity=quantity,
            idempotency_key=key,
        )

    result = write_transaction(work)
    redemption = result.redemption
    balance = participant_account(db.session, redemption.participant_id).balance
    again = " (already recorded with this key)" if result.replayed else ""
    click.echo(
        f"Redemption {redemption.id}{again}: {redemption.participant.display_name} redeemed {redemption.quantity} × "
        f"{redemption.reward.name} for {redemption.points} points; {balance} points left. Key: {key}"
    )
    db.session.rollback()


@click.group("redemptions")
def redemptions_group() -> None:
    """Redemptions: hand them over (fulfil) or cancel and refund them."""


@redemptions_group.command("fulfil")
@click.argument("redemption_id", type=int)
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def redemptions_fulfil_command(redemption_id, username) -> None:
    """Mark a requested redemption as handed over."""
    from ledger.shelf import fulfil

    redemption = write_transaction(lambda: fulfil(db.session, actor=actor_named(username), redemption_id=redemption_id))
    click.echo(f"Redemption {redemption.id} fulfilled: {redemption.quantity} × {redemption.reward.name}")
    db.session.rollback()


@redemptions_group.command("cancel")
@click.argument("redemption_id", type=int)
@click.option("--reason", required=True, help="Why, for the participant and the auditor.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def redemptions_cancel_command(redemption_id, reason, username) -> None:
    """Cancel a requested redemption: refund its points and return its stock."""
    from ledger.shelf import cancel

    redemption = write_transaction(
        lambda: cancel(db.session, actor=actor_named(username), redemption_id=redemption_id, reason=reason)
    )
    click.echo(
        f"Redemption {redemption.id} cancelled: {redemption.points} points refunded to "
        f"{redemption.participant.display_name}, stock {_stock(redemption.reward.stock)}"
    )
    db.session.rollback()


@click.command("liability")
@click.option("--org", "org_code", required=True, help="Org whose subtree to total.")
@with_appcontext
@refusals_as_messages
def liability_command(org_code) -> None:
    """Show the points an org's participants hold against the stock on its shelves."""
    from ledger.shelf import liability

    view = liability(db.session, org_coded(org_code))
    db.session.rollback()
    coverage = "-" if view.coverage_percent is None else f"{view.coverage_percent}%"
    click.echo(f"{view.org.name} ({view.org.code})")
    click.echo(f"  待兑付积分 points outstanding   {view.points_outstanding}")
    click.echo(f"  库存可兑积分 stock in points    {view.stock_points}  (covers {coverage})")
    click.echo(f"  库存价值 stock value in yuan     {view.stock_yuan}")
    if view.unlimited_rewards or view.unvalued_rewards:
        click.echo(
            f"  not counted: {view.unlimited_rewards} rewards with unlimited stock, "
            f"{view.unvalued_rewards} with no value in yuan"
        )


def _stock(stock: int | None) -> str:
    return "unlimited" if stock is None else str(stock)


COMMANDS = (shelf_group, redeem_command, redemptions_group, liability_command)
