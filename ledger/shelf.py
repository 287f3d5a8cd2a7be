"""The reward shelf (爱心超市): rewards, their stock, and redemptions that spend points on them.

A reward is an offer on one org's shelf: goods, a service, or a priority for a community
service (the "welfare linkage"), at a points price, with a stock (``None`` for unlimited), a
per-person limit per month, year or ever, an optional minimum star level, and the dates it
is offered. An org's shelf serves the participants of its subtree, so a participant sees the
shelves of their own node and of every node above it.

A reward's price never changes once it is offered: a redemption's points are its quantity
times the price, and ``ledger verify`` holds every redemption to that. To change a price, end
the offer (``active_to``) and add a new one.

Stock changes only together with a :class:`~ledger.models.StockMovement` (initial, restock,
donation, redemption, cancellation) in the same database transaction, so it always equals
the sum of its movements. Every change of stock or of a redemption first takes the lock of
the shelf org's chain, the queue its ledger writes wait in anyway: what a redemption reads
(the limit used so far, the stock) cannot change before it commits, and two redemptions of
the last item, or two staff cancelling one redemption, are served one after the other.

A redemption spends points through the one ledger write path (a ``redeem`` transaction from
the participant's account to the shelf org's reward-shelf account) and then moves requested
→ fulfilled (handed over) or requested → cancelled (refunded by a reversal, stock returned).
Each refusal says which of points, stock, limit or star level is short, and by how much, and
comes before anything is written.

Service functions take the session and the acting user, flush, and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.orm import Session

from ledger import chain
from ledger.activities import RecordedActivity, Service, check_key, record_activity
from ledger.db import integer_sum
from ledger.errors import AlreadyExists, Conflict, IdempotencyConflict, InsufficientBalance, InvalidInput, NotFound
from ledger.models import (
    Account,
    AccountKind,
    AppUser,
    LimitPeriod,
    OrgNode,
    Participant,
    ParticipantKind,
    PeriodKind,
    PeriodTotal,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardKind,
    StockMovement,
    StockReason,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.orgs import check_name, local_date, path_ids
from ledger.points import transfer
from ledger.rewards import star_standing
from ledger.rules import rules_of, version_in_force
from ledger.transactions import (
    lock_chain,
    participant_account,
    record_transaction,
    reverse_transaction,
    system_account,
)

#: Largest price of one unit; with MAX_QUANTITY it keeps a redemption's points a 32-bit integer.
MAX_PRICE_POINTS = 1_000_000
#: Most units one redemption may take.
MAX_QUANTITY = 1_000
#: Most units a shelf may hold of one reward, or take in at once.
MAX_STOCK = 1_000_000
#: Largest value in yuan of one unit, or of one donation.
MAX_YUAN = 100_000_000
MAX_DESCRIPTION_LENGTH = 500
#: The stars a reward may ask for (the schema allows up to ten levels).
MAX_STAR_LEVEL = 10
#: The activity type a donation by a co-building unit is recorded as (see default_rules.yaml).
DONATION_ACTIVITY_TYPE = "unit_donation"


class RewardNotActive(Conflict):
    """Raised when a reward is redeemed on a day outside the dates it is offered."""

    code = "reward_not_active"


class StarLevelTooLow(Conflict):
    """Raised when a reward asks for more stars than the participant has reached."""

    code = "star_level_too_low"


class LimitReached(Conflict):
    """Raised when a redemption would take a participant past the reward's per-person limit."""

    code = "limit_reached"


class OutOfStock(Conflict):
    """Raised when a redemption asks for more units than the shelf has left."""

    code = "out_of_stock"


class RedemptionSettled(Conflict):
    """Raised when a redemption that was already fulfilled or cancelled is fulfilled or cancelled."""

    code = "redemption_settled"


@dataclass(frozen=True)
class RedemptionResult:
    """The outcome of a redeem: the redemption, and whether an earlier call had made it."""

    redemption: Redemption
    replayed: bool


@dataclass(frozen=True)
class Donation:
    """Stock given by a co-building unit, and the activity that earned the unit its points."""

    reward: Reward
    recorded: RecordedActivity
    #: The movement that added the stock; ``None`` when an earlier call with the key had added it.
    movement: StockMovement | None

    @property
    def replayed(self) -> bool:
        return self.recorded.replayed


@dataclass(frozen=True)
class Liability:
    """What an org's participants could claim against what its shelves hold.

    Rewards with unlimited stock absorb any number of points and are only counted; rewards
    whose yuan value is unknown count in ``stock_points`` but not in ``stock_yuan``.
    """

    org: OrgNode
    #: Points held by the participants of the subtree: what its shelves may be asked to honour.
    points_outstanding: int
    #: Points the stock on the subtree's shelves would absorb if every unit were redeemed.
    stock_points: int
    #: What that stock is worth in yuan, where its value is known.
    stock_yuan: int
    unlimited_rewards: int
    unvalued_rewards: int

    @property
    def coverage_percent(self) -> int | None:
        """Return the stock's points as a whole percentage of the points outstanding (rounded down)."""
        return self.stock_points * 100 // self.points_outstanding if self.points_outstanding else None


@dataclass(frozen=True)
class PriorityHolder:
    """One holding of a priority reward, in the order it was redeemed."""

    redemption_id: int
    participant_id: int
    display_name: str
    quantity: int
    status: str
    requested_on: dt.date


def add_reward(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    name: str,
    kind: str,
    price_points: int,
    active_from: dt.date,
    stock: int | None = None,
    unit_value_yuan: int | None = None,
    per_person_limit: int | None = None,
    limit_period: str = LimitPeriod.EVER,
    min_star_level: int = 0,
    active_to: dt.date | None = None,
    description: str | None = None,
    now: dt.datetime | None = None,
) -> Reward:
    """Offer a reward on ``org``'s shelf; an initial stock is recorded as a stock movement."""
    now = _moment(now)
    name = check_name(name)
    kind = _member(RewardKind, kind, "kind")
    limit_period = _member(LimitPeriod, limit_period, "limit_period")
    _whole(price_points, "price_points", minimum=1, maximum=MAX_PRICE_POINTS)
    _whole(min_star_level, "min_star_level", minimum=0, maximum=MAX_STAR_LEVEL)
    for field, value, minimum, maximum in (
        ("stock", stock, 0, MAX_STOCK),
        ("unit_value_yuan", unit_value_yuan, 0, MAX_YUAN),
        ("per_person_limit", per_person_limit, 1, MAX_STOCK),
    ):
        if value is not None:
            _whole(value, field, minimum=minimum, maximum=maximum)
    _date(active_from, "active_from")
    if active_to is not None and _date(active_to, "active_to") < active_from:
        raise InvalidInput(f"must not be before active_from ({active_from.isoformat()})", field="active_to")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH):
        raise InvalidInput(f"must be text of at most {MAX_DESCRIPTION_LENGTH} characters", field="description")
    if session.execute(select(Reward.id).where(Reward.org_id == org.id, Reward.name == name)).first():
        raise AlreadyExists(f"the shelf of {org.name} already offers a reward called {name!r}", field="name")
    reward = Reward(
        org_id=org.id,
        name=name,
        description=description,
        kind=kind,
        price_points=price_points,
        stock=None if stock is None else 0,
        unit_value_yuan=unit_value_yuan,
        per_person_limit=per_person_limit,
        limit_period=limit_period,
        min_star_level=min_star_level,
        active_from=active_from,
        active_to=active_to,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(reward)
    session.flush()
    if stock:
        _move_stock(session, actor=actor, reward=reward, change=stock, reason=StockReason.INITIAL, now=now)
    return reward


def restock(
    session: Session, *, actor: AppUser, reward_id: int, quantity: int, now: dt.datetime | None = None
) -> StockMovement:
    """Add ``quantity`` units bought or found for the shelf to a reward's stock."""
    now = _moment(now)
    _whole(quantity, "quantity", minimum=1, maximum=MAX_STOCK)
    reward = _counted_reward(session, reward_id, adding=quantity)
    return _move_stock(session, actor=actor, reward=reward, change=quantity, reason=StockReason.RESTOCK, now=now)


def donate_stock(
    session: Session,
    *,
    actor: AppUser,
    reward_id: int,
    unit_participant_id: int,
    quantity: int,
    value_yuan: int,
    handed_over_at: tuple[dt.datetime, dt.datetime],
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Donation:
    """Add units a co-building unit gave to a reward's stock, and record the donation it earns on.

    The donation is recorded as a ``unit_donation`` activity of the unit in the community it
    reported to, worth ``value_yuan`` (its quantity), handed over between the two times given;
    the rules in force score it like any other activity. The activity carries the idempotency
    key: a retry returns the first donation and adds no stock.
    """
    now = _moment(now)
    _whole(quantity, "quantity", minimum=1, maximum=MAX_STOCK)
    _whole(value_yuan, "value_yuan", minimum=1, maximum=MAX_YUAN)
    if not (isinstance(handed_over_at, tuple) and len(handed_over_at) == 2):
        raise InvalidInput("must be the (start, end) of the handover", field="handed_over_at")
    reward = _counted_reward(session, reward_id, adding=quantity)
    unit = _participant(session, unit_participant_id, "unit_participant_id")
    if unit.kind != ParticipantKind.UNIT:
        raise InvalidInput(
            f"{unit.display_name} is not a co-building unit; only units donate stock", field="unit_participant_id"
        )
    _check_served(reward, unit, "unit_participant_id")
    service = Service(
        participant_id=unit.id,
        activity_type=DONATION_ACTIVITY_TYPE,
        started_at=handed_over_at[0],
        ended_at=handed_over_at[1],
        quantity=value_yuan,
        description=f"捐赠 {reward.name} × {quantity} (reward {reward.id})",
    )
    recorded = record_activity(
        session, actor=actor, org=unit.org, service=service, idempotency_key=idempotency_key, now=now
    )
    if recorded.replayed:
        return Donation(reward, recorded, movement=None)
    movement = _move_stock(
        session, actor=actor, reward=reward, change=quantity, reason=StockReason.DONATION, now=now, donor_id=unit.id
    )
    return Donation(reward, recorded, movement)


def redeem(
    session: Session,
    *,
    actor: AppUser,
    participant_id: int,
    reward_id: int,
    quantity: int = 1,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> RedemptionResult:
    """Spend a participant's points on a reward and take it from the stock, or say what is short.

    In order: the request is checked; the shelf org's chain is locked; a retry with the key
    returns the first redemption; then the reward must be offered today (in the shelf org's
    time zone), the participant must have the stars it asks for, stay within its per-person
    limit, find enough stock, and have the points. Only then is anything written: the
    ``redeem`` transaction, the stock, the redemption and its stock movement.
    """
    now = _moment(now)
    _whole(quantity, "quantity", minimum=1, maximum=MAX_QUANTITY)
    check_key(idempotency_key)
    reward = _reward(session, reward_id)
    participant = _participant(session, participant_id, "participant_id")
    org = reward.org
    digest = chain.digest({"reward": reward.id, "participant": participant.id, "quantity": quantity})
    lock_chain(session, org)
    earlier = session.execute(
        select(Redemption).where(
            Redemption.org_id == org.id,
            Redemption.requested_by_id == actor.id,
            Redemption.idempotency_key == idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.request_digest != digest:
            raise IdempotencyConflict(
                "this idempotency key was already used for a different request", field="idempotency_key"
            )
        return RedemptionResult(earlier, replayed=True)

    day = local_date(now, org)
    _check_served(reward, participant, "participant_id")
    _check_active(reward, day)
    account = participant_account(session, participant.id)
    _check_stars(session, reward, participant, account, day)
    _check_limit(session, reward, participant, quantity, day)
    reward = session.get(Reward, reward.id, with_for_update=True, populate_existing=True)
    if reward.stock is not None and reward.stock < quantity:
        raise OutOfStock(
            f"{reward.name} has {reward.stock} left; {quantity} asked for, {quantity - reward.stock} short",
            field="quantity",
            available=reward.stock,
            requested=quantity,
        )
    points = reward.price_points * quantity
    transaction = _spend(
        session,
        actor=actor,
        reward=reward,
        participant=participant,
        account=account,
        quantity=quantity,
        points=points,
        day=day,
        key=idempotency_key,
        now=now,
    )
    redemption = Redemption(
        org_id=org.id,
        reward_id=reward.id,
        participant_id=participant.id,
        quantity=quantity,
        points=points,
        status=RedemptionStatus.REQUESTED,
        transaction_id=transaction.id,
        requested_on=day,
        idempotency_key=idempotency_key,
        request_digest=digest,
        requested_by_id=actor.id,
        requested_at=now,
    )
    session.add(redemption)
    session.flush()
    if reward.stock is not None:
        _move_stock(
            session,
            actor=actor,
            reward=reward,
            change=-quantity,
            reason=StockReason.REDEMPTION,
            now=now,
            redemption_id=redemption.id,
        )
    return RedemptionResult(redemption, replayed=False)


def fulfil(session: Session, *, actor: AppUser, redemption_id: int, now: dt.datetime | None = None) -> Redemption:
    """Mark a requested redemption as handed over (or, for a priority, granted)."""
    now = _moment(now)
    redemption = _requested(session, redemption_id, "fulfilled")
    redemption.status = RedemptionStatus.FULFILLED
    redemption.fulfilled_by_id = actor.id
    redemption.fulfilled_at = now
    session.flush()
    return redemption


def cancel(
    session: Session, *, actor: AppUser, redemption_id: int, reason: str, now: dt.datetime | None = None
) -> Redemption:
    """Cancel a requested redemption: refund its points by a reversal and return its stock."""
    now = _moment(now)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"a cancellation needs a reason of at most {MAX_DESCRIPTION_LENGTH} characters", field="reason"
        )
    redemption = _requested(session, redemption_id, "cancelled")
    reverse_transaction(
        session,
        actor=actor,
        transaction_id=redemption.transaction_id,
        idempotency_key=f"redemption-{redemption.id}-cancelled",
        reason=reason.strip(),
        now=now,
    )
    reward = redemption.reward
    if reward.stock is not None:
        _move_stock(
            session,
            actor=actor,
            reward=reward,
            change=redemption.quantity,
            reason=StockReason.CANCELLATION,
            now=now,
            redemption_id=redemption.id,
        )
    redemption.status = RedemptionStatus.CANCELLED
    redemption.cancelled_by_id = actor.id
    redemption.cancelled_at = now
    redemption.cancel_reason = reason.strip()
    session.flush()
    return redemption


def catalogue(session: Session, org: OrgNode, *, on: dt.date) -> list[Reward]:
    """Return the rewards offered on ``on`` to ``org``'s participants: its shelf's and those above it.

    Sold-out rewards are listed too, with their stock of 0; cheapest first, then by name.
    """
    _date(on, "on")
    return list(
        session.execute(
            select(Reward)
            .where(
                Reward.org_id.in_(path_ids(org.path)),
                Reward.active_from <= on,
                Reward.active_to.is_(None) | (Reward.active_to >= on),
            )
            .order_by(Reward.price_points, Reward.name, Reward.id)
        ).scalars()
    )


def liability(session: Session, org: OrgNode) -> Liability:
    """Return the points held in ``org``'s subtree against the stock on the subtree's shelves.

    Only shelves in the subtree count; a street's shelf also serves its communities, but its
    stock shows in the street's view, not in each community's.
    """
    in_subtree = OrgNode.path.startswith(org.path)
    outstanding = session.scalar(
        select(integer_sum(Account.balance))
        .join(OrgNode, OrgNode.id == Account.org_id)
        .where(in_subtree, Account.kind == AccountKind.PARTICIPANT)
    )
    stock = cast(Reward.stock, BigInteger)
    stock_points, stock_yuan, unlimited, unvalued = session.execute(
        select(
            integer_sum(stock * Reward.price_points),
            integer_sum(stock * Reward.unit_value_yuan),
            func.count().filter(Reward.stock.is_(None)),
            func.count().filter(Reward.stock.is_not(None), Reward.unit_value_yuan.is_(None)),
        )
        .join(OrgNode, OrgNode.id == Reward.org_id)
        .where(in_subtree)
    ).one()
    return Liability(org, outstanding, stock_points, stock_yuan, unlimited, unvalued)


def priority_holders(session: Session, reward_id: int) -> list[PriorityHolder]:
    """Return who holds a priority reward (a redemption of it not cancelled), first redeemed first."""
    reward = _reward(session, reward_id)
    if reward.kind != RewardKind.PRIORITY:
        raise InvalidInput(f"{reward.name} is {reward.kind}, not a priority", field="reward_id")
    rows = session.execute(
        select(Redemption, Participant.display_name)
        .join(Participant, Participant.id == Redemption.participant_id)
        .where(Redemption.reward_id == reward.id, Redemption.status != RedemptionStatus.CANCELLED)
        .order_by(Redemption.requested_at, Redemption.id)
    )
    return [PriorityHolder(r.id, r.participant_id, name, r.quantity, r.status, r.requested_on) for r, name in rows]


def _spend(
    session: Session,
    *,
    actor: AppUser,
    reward: Reward,
    participant: Participant,
    account: Account,
    quantity: int,
    points: int,
    day: dt.date,
    key: str,
    now: dt.datetime,
) -> Transaction:
    """Record the ``redeem`` transaction; a shortfall of points is refused naming the points."""
    shelf = system_account(session, reward.org, AccountKind.REWARD_SHELF)
    try:
        recorded = record_transaction(
            session,
            actor=actor,
            org=reward.org,
            kind=TransactionKindCode.REDEEM,
            legs=transfer(account.id, shelf.id, points),
            business_date=day,
            idempotency_key=key,
            memo=f"兑换 {reward.name} × {quantity}",
            now=now,
        )
    except InsufficientBalance as short:
        balance = short.details["balance"]
        raise InsufficientBalance(
            f"{quantity} × {reward.name} costs {points} points; {participant.display_name} has {balance}, "
            f"{points - balance} short",
            field="points",
            balance=balance,
            needed=points,
        ) from None
    if recorded.replayed:
        # No redemption holds this key (looked up first), so another kind of write used it.
        raise IdempotencyConflict(
            "this idempotency key was already used for a different request", field="idempotency_key"
        )
    return recorded.transaction


def _check_served(reward: Reward, participant: Participant, field: str) -> None:
    """Refuse a participant outside the subtree the reward's shelf serves."""
    if not participant.org.path.startswith(reward.org.path):
        raise InvalidInput(
            f"{participant.display_name} belongs to {participant.org.name} ({participant.org.code}), "
            f"which the shelf of {reward.org.name} ({reward.org.code}) does not serve",
            field=field,
        )


def _check_active(reward: Reward, day: dt.date) -> None:
    if reward.active_from <= day and (reward.active_to is None or day <= reward.active_to):
        return
    until = f"to {reward.active_to.isoformat()}" if reward.active_to else "onwards"
    raise RewardNotActive(
        f"{reward.name} is offered from {reward.active_from.isoformat()} {until}, not on {day.isoformat()}",
        field="reward_id",
    )


def _check_stars(session: Session, reward: Reward, participant: Participant, account: Account, day: dt.date) -> None:
    """Refuse a participant below the reward's star level, under the star ladder of their own rules."""
    if not reward.min_star_level:
        return
    minutes = session.scalar(
        select(integer_sum(PeriodTotal.service_minutes)).where(
            PeriodTotal.account_id == account.id, PeriodTotal.period == PeriodKind.YEAR
        )
    )
    thresholds = rules_of(version_in_force(session, participant.org, day)).star_levels.hours
    level = star_standing(minutes, thresholds).level
    if level < reward.min_star_level:
        raise StarLevelTooLow(
            f"{reward.name} needs {reward.min_star_level} stars; {participant.display_name} has {level}, "
            f"{reward.min_star_level - level} short",
            field="participant_id",
            level=level,
            minimum=reward.min_star_level,
        )


def _check_limit(session: Session, reward: Reward, participant: Participant, quantity: int, day: dt.date) -> None:
    """Refuse a redemption that takes the participant past the limit in the period of ``day``."""
    if reward.per_person_limit is None:
        return
    query = select(integer_sum(Redemption.quantity)).where(
        Redemption.reward_id == reward.id,
        Redemption.participant_id == participant.id,
        Redemption.status != RedemptionStatus.CANCELLED,
    )
    window = _limit_window(reward.limit_period, day)
    if window is not None:
        query = query.where(Redemption.requested_on >= window[0], Redemption.requested_on < window[1])
    used = session.scalar(query)
    left = max(reward.per_person_limit - used, 0)
    if quantity > left:
        period = {LimitPeriod.MONTH: "a month", LimitPeriod.YEAR: "a year", LimitPeriod.EVER: "in all"}[
            reward.limit_period
        ]
        raise LimitReached(
            f"{reward.name} allows {reward.per_person_limit} per person {period}; {participant.display_name} "
            f"has redeemed {used}, so {left} left and {quantity} asked for",
            field="quantity",
            limit=reward.per_person_limit,
            used=used,
            left=left,
        )


def _limit_window(period: str, day: dt.date) -> tuple[dt.date, dt.date] | None:
    """Return the first day of ``day``'s limit period and the first day after it; ``None`` for ever."""
    if period == LimitPeriod.MONTH:
        start = day.replace(day=1)
        return start, (start + dt.timedelta(days=32)).replace(day=1)
    if period == LimitPeriod.YEAR:
        return day.replace(month=1, day=1), dt.date(day.year + 1, 1, 1)
    return None


def _requested(session: Session, redemption_id: int, becoming: str) -> Redemption:
    """Return a redemption still requested, locked behind its shelf's chain, or refuse."""
    redemption = session.get(Redemption, redemption_id) if type(redemption_id) is int else None
    if redemption is None:
        raise NotFound(f"redemption {redemption_id} does not exist", field="redemption_id")
    lock_chain(session, redemption.reward.org)
    redemption = session.get(Redemption, redemption_id, with_for_update=True, populate_existing=True)
    if redemption.status != RedemptionStatus.REQUESTED:
        settled_at = redemption.fulfilled_at or redemption.cancelled_at
        raise RedemptionSettled(
            f"redemption {redemption.id} was already {redemption.status} at {chain.format_utc(settled_at)}; "
            f"only a requested redemption can be {becoming}",
            field="redemption_id",
            status=redemption.status,
        )
    return redemption


def _counted_reward(session: Session, reward_id: int, *, adding: int) -> Reward:
    """Return a reward whose stock is counted, locked behind its shelf's chain, with room for ``adding``."""
    reward = _reward(session, reward_id)
    lock_chain(session, reward.org)
    reward = session.get(Reward, reward.id, with_for_update=True, populate_existing=True)
    if reward.stock is None:
        raise InvalidInput(f"{reward.name} has unlimited stock; there is nothing to count", field="reward_id")
    if reward.stock + adding > MAX_STOCK:
        raise InvalidInput(f"{reward.name} would hold more than {MAX_STOCK} units", field="quantity")
    return reward


def _move_stock(
    session: Session,
    *,
    actor: AppUser,
    reward: Reward,
    change: int,
    reason: StockReason,
    now: dt.datetime,
    redemption_id: int | None = None,
    donor_id: int | None = None,
) -> StockMovement:
    """Change a reward's stock by ``change`` and record the movement that explains it."""
    reward.stock = Reward.stock + change  # relative: the database's check keeps it from going below zero
    movement = StockMovement(
        reward_id=reward.id,
        change=change,
        reason=reason,
        redemption_id=redemption_id,
        donor_id=donor_id,
        recorded_by_id=actor.id,
        recorded_at=now,
    )
    session.add(movement)
    session.flush()
    return movement


def _reward(session: Session, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id) if type(reward_id) is int else None
    if reward is None:
        raise NotFound(f"reward {reward_id} does not exist", field="reward_id")
    return reward


def _participant(session: Session, participant_id: int, field: str) -> Participant:
    participant = session.get(Participant, participant_id) if type(participant_id) is int else None
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field=field)
    return participant


def _moment(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return utc_now()
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise InvalidInput("must be a date and time with its time zone", field="now")
    return now


def _whole(value: object, field: str, *, minimum: int, maximum: int) -> int:
    if type(value) is not int or not minimum <= value <= maximum:
        raise InvalidInput(f"must be a whole number from {minimum} to {maximum}", field=field)
    return value


def _member(enum, value: object, field: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(enum)}", field=field) from None


def _date(value: object, field: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InvalidInput("must be a date", field=field)
    return value

