"""Orders (需求, 微心愿, 共建项目): posted by the community, claimed, delivered, confirmed, scored.

An order, its claims and everything that happened to them are append-only rows: the state is
folded from the history by the pure machine of :mod:`ledger.order_flow`, which also decides
what each state allows. Every write here goes the same way:

1. Take the lock of the order's community chain (:func:`~ledger.transactions.lock_chain`).
   Every writer of the community queues there, so two claimants racing for the last place
   are served one after the other and the second is refused: every place is taken.
2. Read the order's history, oldest first, and fold it into its present view.
3. If an identical earlier call already did this (the claimant already holds a place; the
   claim's last word is this same delivery, confirmation, rejection, …), return what it did
   and write nothing: a retry is always safe. Confirmation and the overdue mark are also
   once per claim in the database itself.
4. Ask :func:`~ledger.order_flow.check` whether the state allows it; a refusal names the state.
5. Append the event, and post what it earns or costs through the one ledger write path.

Points. Confirmation records the service through the recording service
(:func:`ledger.activities.record_activity`), which scores it under the rules in force: one
activity of the order's activity type per person who served (the claimant, or the members of
a claiming team who served), or one for a claiming co-building unit. A unit also earns
``unit_claim`` when it claims (given back if it withdraws, so claiming and withdrawing earns
nothing), and ``unit_staff_sent`` for the staff it lists as having served. An award for a
moment (a claim, a head count confirmed) is recorded as the minute before that moment.

Penalties. :func:`close_overdue` is the deadline job: a claim still awaiting delivery when the
deadline passed becomes overdue and its claimant pays the rule set's ``order_not_delivered``
penalty, as a ``penalty`` transaction with its breakdown, never below zero (the rule set says
whether a short balance skips the penalty or caps it at the balance). A team has no points
account and nobody in it was named as having failed, so a team's overdue claim is recorded
but costs no points. The order is then ended: expired if nothing was delivered, else closed
to new claims while its deliveries wait for confirmation.

Who may do what is the authorization policy's to say (:mod:`ledger.api.policy`: claiming,
managing and confirming orders, each over an org's subtree). The services hold one rule of
their own, as the recording service does: nobody confirms or rejects a delivery they took
part in.

Service functions take the session and the acting user, flush, and never commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from ledger import chain
from ledger.activities import NotAllowed, RecordedActivity, Service, participant_category, record_activity
from ledger.errors import IdempotencyConflict, InsufficientBalance, InvalidInput, NotFound
from ledger.models import (
    BENEFICIARY_GROUPS,
    AccountKind,
    Activity,
    AppUser,
    EmployerUnit,
    OrderClaim,
    OrderEvent,
    OrgKind,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    ServiceOrder,
    Team,
    TeamMember,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.order_flow import (
    FINAL,
    HOLDING,
    ClaimantKind,
    ClaimState,
    Event,
    Happening,
    OrderKind,
    OrderState,
    OrderView,
    TransitionRefused,
    check,
    closing,
    penalty_points,
    view_of,
)
from ledger.orgs import check_name, local_date, path_ids
from ledger.points import transfer
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import ActivityType, BelowZero, Category, RuleSet, Unit
from ledger.transactions import (
    IDEMPOTENCY_KEY_PATTERN,
    lock_accounts,
    lock_chain,
    participant_account,
    record_transaction,
    reverse_transaction,
    system_account,
)
from ledger.users import SYSTEM_USERNAME, ensure_user

MAX_CAPACITY = 100
MAX_DESCRIPTION_LENGTH = 1000
MAX_NOTE_LENGTH = 500
MAX_BENEFICIARY_LENGTH = 100
#: Most people one delivery may list as having served.
MAX_SERVED_BY = 100
#: What a unit earns for claiming, and for the staff it sent (see default_rules.yaml).
UNIT_CLAIM_TYPE = "unit_claim"
STAFF_SENT_TYPE = "unit_staff_sent"
#: What the idempotency key of every activity an order records starts with.
ACTIVITY_KEY_PREFIX = "order-claim-"
#: How long an award for a moment lasts on record: the minute before it.
MOMENT = dt.timedelta(minutes=1)
#: The participant categories each kind of claimant earns in.
EARNERS = {
    ClaimantKind.PERSON: frozenset({Category.VOLUNTEER, Category.PARTY_MEMBER}),
    ClaimantKind.TEAM: frozenset({Category.VOLUNTEER, Category.PARTY_MEMBER}),
    ClaimantKind.UNIT: frozenset({Category.UNIT}),
    ClaimantKind.ANY: frozenset(Category),
}
KIND_LABELS = {
    OrderKind.MICRO_WISH: "微心愿",
    OrderKind.SERVICE_NEED: "服务需求",
    OrderKind.CO_BUILDING_PROJECT: "共建项目",
}


@dataclass(frozen=True)
class Step:
    """What one write did to an order: the event it appended, or the one an identical earlier call did."""

    order: ServiceOrder
    event: OrderEvent
    replayed: bool
    #: The activities the step recorded and the transactions that scored them (a unit's claim, a confirmation).
    recorded: tuple[RecordedActivity, ...] = ()


@dataclass(frozen=True)
class Claimant:
    """Who holds, or asks for, a place on an order: a person, a co-building unit, or a team."""

    kind: ClaimantKind
    name: str
    org: OrgNode
    participant: Participant | None = None
    team: Team | None = None

    @property
    def participant_id(self) -> int | None:
        return self.participant.id if self.participant else None

    @property
    def team_id(self) -> int | None:
        return self.team.id if self.team else None

    def made(self, claim: OrderClaim) -> bool:
        return (claim.participant_id, claim.team_id) == (self.participant_id, self.team_id)


@dataclass
class _History:
    """An order and its history, read under its community's lock: what a write is checked against."""

    order: ServiceOrder
    events: list[OrderEvent]

    @property
    def view(self) -> OrderView:
        return view_of(self.order.capacity, map(_event, self.events))

    def check(self, happening: Happening, now: dt.datetime, claim_id: int | None = None) -> OrderView:
        """Refuse ``happening`` unless the order's state allows it now; return the view checked."""
        view = self.view
        ended = view.state in (OrderState.CANCELLED, OrderState.EXPIRED)
        if claim_id is not None and ended:
            raise TransitionRefused(
                f"the order is {view.state}; its claims can no longer be {happening}",
                field="claim_id",
                state=view.state.value,
            )
        if happening is Happening.CLAIMED and view.places_left <= 0 and not ended:
            # A full order is no longer "published"; say why it cannot be claimed, not just its state.
            raise TransitionRefused(
                f"every place on this order is taken (it is {view.state})", field="order_id", state=view.state.value
            )
        check(view, happening, now=now, deadline=self.order.deadline, claim_id=claim_id)
        return view

    def repeated(self, happening: Happening, claim_id: int | None = None, **content) -> OrderEvent | None:
        """Return the event an identical earlier call appended, if it is still the last word on it.

        For the claim, that is its latest event; for the order, its one event of ``happening``.
        """
        if claim_id is None:
            concerned = [event for event in self.events if event.happening == happening]
        else:
            concerned = [event for event in self.events if event.claim_id == claim_id]
        last = concerned[-1] if concerned else None
        if last is None or last.happening != happening:
            return None
        return last if all(getattr(last, name) == value for name, value in content.items()) else None

    def claimed(self, claim_id: int) -> OrderEvent:
        return next(e for e in self.events if e.claim_id == claim_id and e.happening == Happening.CLAIMED)

    def append(
        self, session: Session, happening: Happening, *, actor: AppUser, now: dt.datetime, claim_id=None, **details
    ) -> OrderEvent:
        event = OrderEvent(
            order_id=self.order.id, claim_id=claim_id, happening=happening, actor_id=actor.id, at=now, **details
        )
        session.add(event)
        session.flush()
        self.events.append(event)
        return event


# Posting and publishing ---------------------------------------------------------------------


def post_order(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    kind: str,
    title: str,
    activity_type: str,
    deadline: dt.datetime | dt.date,
    beneficiary_group: str,
    idempotency_key: str,
    capacity: int = 1,
    claimant_kind: str | None = None,
    beneficiary_name: str | None = None,
    beneficiary_contact: str | None = None,
    description: str | None = None,
    publish: bool = False,
    now: dt.datetime | None = None,
) -> ServiceOrder:
    """Post an order in a community or grid: a draft, or published at once.

    ``deadline`` is a moment, or a day meaning the end of that day in the org's time zone.
    ``claimant_kind`` defaults to units for a co-building project and anyone otherwise. The
    activity type must be one the rules in force in ``org`` today know, counted per hour or per
    occurrence (an order carries no quantity), and earned by the claimants the order allows.
    A retry with the same key returns the first order; the key with other content is refused.
    """
    now = now or utc_now()
    if org.kind not in (OrgKind.COMMUNITY, OrgKind.GRID):
        raise InvalidInput("an order belongs to a community or a grid", field="org")
    kind = _member(OrderKind, kind, "kind")
    claimant_kind = _claimant_kind(kind, claimant_kind)
    title = check_name(title, field="title")
    description = _optional_text(description, "description", MAX_DESCRIPTION_LENGTH)
    beneficiary_group = _one_of(BENEFICIARY_GROUPS, beneficiary_group, "beneficiary_group")
    beneficiary_name = _optional_text(beneficiary_name, "beneficiary_name", MAX_BENEFICIARY_LENGTH)
    beneficiary_contact = _optional_text(beneficiary_contact, "beneficiary_contact", MAX_BENEFICIARY_LENGTH)
    if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(f"must be a whole number from 1 to {MAX_CAPACITY}", field="capacity")
    deadline = _deadline(deadline, org, now)
    if type(publish) is not bool:
        raise InvalidInput("must be true or false", field="publish")
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidInput("must be 1 to 128 characters of letters, digits and . _ : / @ + = -", field="idempotency_key")
    _check_order_type(_rules_today(session, org, now), activity_type, claimant_kind)
    content = {
        "org": org.id,
        "kind": kind,
        "title": title,
        "description": description,
        "beneficiary_group": beneficiary_group,
        "beneficiary_name": beneficiary_name,
        "beneficiary_contact": beneficiary_contact,
        "activity_type": activity_type,
        "claimant_kind": claimant_kind,
        "capacity": capacity,
        "deadline": chain.format_utc(deadline),
        "publish": publish,
    }
    digest = chain.digest(content)
    lock_chain(session, org)
    earlier = session.execute(
        select(ServiceOrder).where(
            ServiceOrder.org_id == org.id,
            ServiceOrder.created_by_id == actor.id,
            ServiceOrder.idempotency_key == idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.request_digest != digest:
            raise IdempotencyConflict("this idempotency key was already used for a different order", field="idempotency_key")
        return earlier
    order = ServiceOrder(
        **{name: value for name, value in content.items() if name not in ("org", "deadline", "publish")},
        org_id=org.id,
        deadline=deadline,
        created_by_id=actor.id,
        created_at=now,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    session.add(order)
    session.flush()
    if publish:
        _History(order, []).append(session, Happening.PUBLISHED, actor=actor, now=now)
    return order


def publish_order(session: Session, *, actor: AppUser, order_id: int, now: dt.datetime | None = None) -> Step:
    """Publish a draft so that claimants see it and may claim it; its deadline must still be ahead."""
    now = now or utc_now()
    history = _locked(session, _order(session, order_id))
    earlier = history.repeated(Happening.PUBLISHED)
    if earlier is not None:
        return Step(history.order, earlier, replayed=True)
    history.check(Happening.PUBLISHED, now)
    if history.order.deadline <= now:
        raise TransitionRefused(
            "its deadline has passed; post the order again with a new deadline", field="order_id", state="draft"
        )
    return Step(history.order, history.append(session, Happening.PUBLISHED, actor=actor, now=now), replayed=False)


def cancel_order(
    session: Session, *, actor: AppUser, order_id: int, reason: str, now: dt.datetime | None = None
) -> Step:
    """Cancel an order, with the reason its claimants will read; refused once part of it was confirmed."""
    now = now or utc_now()
    reason = check_name(reason, field="reason", max_length=MAX_NOTE_LENGTH)
    history = _locked(session, _order(session, order_id))
    earlier = history.repeated(Happening.CANCELLED, note=reason)
    if earlier is not None:
        return Step(history.order, earlier, replayed=True)
    history.check(Happening.CANCELLED, now)
    event = history.append(session, Happening.CANCELLED, actor=actor, now=now, note=reason)
    return Step(history.order, event, replayed=False)


# Claiming and withdrawing ---------------------------------------------------------------------


def claim_order(
    session: Session,
    *,
    actor: AppUser,
    order_id: int,
    participant_id: int | None = None,
    team_id: int | None = None,
    now: dt.datetime | None = None,
) -> Step:
    """Take a place on a published order for a person, a co-building unit or a team.

    The claimant must be of a kind the order allows, belong to the order's community, and be
    able to earn the order's activity type. A claimant holds at most one place on an order:
    claiming again while holding one returns that claim. A unit earns ``unit_claim`` points.
    """
    now = now or utc_now()
    order = _order(session, order_id)
    claimant = _claimant(session, participant_id, team_id)
    field = "team_id" if claimant.team else "participant_id"
    if order.claimant_kind not in (ClaimantKind.ANY, claimant.kind):
        raise InvalidInput(f"order {order.id} is claimed by {order.claimant_kind}s only", field=field)
    community = session.get(OrgNode, order.org.chain_id)
    if not claimant.org.path.startswith(community.path):
        raise InvalidInput(
            f"{claimant.name} belongs to {claimant.org.name}; order {order.id} is for {community.name}", field=field
        )
    rules = _rules_today(session, order.org, now)
    _check_earns(rules, order, claimant, field)
    history = _locked(session, order)
    for claim in _claims(session, order.id):
        if claimant.made(claim) and history.view.claims.get(claim.id) in HOLDING:
            return Step(order, history.claimed(claim.id), replayed=True)
    history.check(Happening.CLAIMED, now)
    claim = OrderClaim(
        order_id=order.id,
        participant_id=claimant.participant_id,
        team_id=claimant.team_id,
        claimed_by_id=actor.id,
        claimed_at=now,
    )
    session.add(claim)
    session.flush()
    event = history.append(session, Happening.CLAIMED, actor=actor, now=now, claim_id=claim.id)
    recorded = ()
    if claimant.kind is ClaimantKind.UNIT and UNIT_CLAIM_TYPE in rules.activity_types:
        recorded = (_award_unit_claim(session, order, claim, claimant.participant, now),)
    return Step(order, event, replayed=False, recorded=recorded)


def withdraw(session: Session, *, actor: AppUser, claim_id: int, now: dt.datetime | None = None) -> Step:
    """Give a place back before the deadline; a unit gives back the points its claim earned."""
    now = now or utc_now()
    claim, order = _claim(session, claim_id)
    claimant = _claimant_of(session, claim)
    history = _locked(session, order)
    earlier = history.repeated(Happening.WITHDRAWN, claim.id)
    if earlier is not None:
        return Step(order, earlier, replayed=True)
    history.check(Happening.WITHDRAWN, now, claim.id)
    event = history.append(session, Happening.WITHDRAWN, actor=actor, now=now, claim_id=claim.id)
    if claimant.kind is ClaimantKind.UNIT:
        _give_back_unit_claim(session, actor, order, claim, claimant, now)
    return Step(order, event, replayed=False)


# Delivering, confirming, rejecting -------------------------------------------------------------


def deliver(
    session: Session,
    *,
    actor: AppUser,
    claim_id: int,
    served_from: dt.datetime,
    served_until: dt.datetime,
    note: str,
    served_by: Sequence[int] | None = None,
    now: dt.datetime | None = None,
) -> Step:
    """Report a claim delivered: what was done, when, and (for a team or a unit) who served.

    A team names the members who served (each earns the order's points); a unit may name the
    staff it sent (it earns ``unit_staff_sent`` for them); a person serves alone.
    """
    now = now or utc_now()
    note = check_name(note, field="note", max_length=MAX_NOTE_LENGTH)
    claim, order = _claim(session, claim_id)
    _check_served_times(served_from, served_until, order, now)
    claimant = _claimant_of(session, claim)
    served_by = _served_by(session, claimant, served_by)
    history = _locked(session, order)
    content = dict(served_from=served_from, served_until=served_until, served_by=served_by, note=note)
    earlier = history.repeated(Happening.DELIVERED, claim.id, **content)
    if earlier is not None:
        return Step(order, earlier, replayed=True)
    history.check(Happening.DELIVERED, now, claim.id)
    event = history.append(session, Happening.DELIVERED, actor=actor, now=now, claim_id=claim.id, **content)
    return Step(order, event, replayed=False)


def confirm(
    session: Session, *, actor: AppUser, claim_id: int, rating: int | None = None, now: dt.datetime | None = None
) -> Step:
    """Accept a delivery, with the beneficiary's rating if given, and post the points it earns.

    Each person who served gets one activity of the order's type over the time served, scored
    under the rules in force then; a unit gets one for itself and, for the staff it listed,
    one ``unit_staff_sent`` with that head count. The event keeps the first transaction.
    Confirming again returns the first confirmation and posts nothing.
    """
    now = now or utc_now()
    if rating is not None and (type(rating) is not int or not 1 <= rating <= 5):
        raise InvalidInput("must be a whole number from 1 to 5", field="rating")
    claim, order = _claim(session, claim_id)
    history = _locked(session, order)
    earlier = history.repeated(Happening.CONFIRMED, claim.id, rating=rating)
    if earlier is not None:
        return Step(order, earlier, replayed=True)
    history.check(Happening.CONFIRMED, now, claim.id)
    delivery = history.repeated(Happening.DELIVERED, claim.id)
    claimant = _claimant_of(session, claim)
    _check_not_involved(session, actor, claimant, delivery, "confirms")
    recorded = tuple(
        record_activity(session, actor=actor, org=order.org, service=service, idempotency_key=key, now=now)
        for key, service in _delivered_services(order, claim, claimant, delivery, now)
    )
    first = recorded[0].transaction.id if recorded else None
    event = history.append(
        session, Happening.CONFIRMED, actor=actor, now=now, claim_id=claim.id, rating=rating, transaction_id=first
    )
    return Step(order, event, replayed=False, recorded=recorded)


def reject(session: Session, *, actor: AppUser, claim_id: int, reason: str, now: dt.datetime | None = None) -> Step:
    """Send a delivery back to the claimant with a reason: the claim awaits delivery again."""
    now = now or utc_now()
    reason = check_name(reason, field="reason", max_length=MAX_NOTE_LENGTH)
    claim, order = _claim(session, claim_id)
    history = _locked(session, order)
    earlier = history.repeated(Happening.REJECTED, claim.id, note=reason)
    if earlier is not None:
        return Step(order, earlier, replayed=True)
    history.check(Happening.REJECTED, now, claim.id)
    _check_not_involved(session, actor, _claimant_of(session, claim), history.repeated(Happening.DELIVERED, claim.id), "rejects")
    event = history.append(session, Happening.REJECTED, actor=actor, now=now, claim_id=claim.id, note=reason)
    return Step(order, event, replayed=False)


# The deadline job -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueRun:
    """What a run of the deadline job did."""

    as_of: dt.date
    claims_overdue: int = 0
    #: Overdue claims whose claimant paid points (the others: a team, a short balance under skip, no penalty).
    claims_penalised: int = 0
    points_taken: int = 0
    orders_expired: int = 0
    orders_closed: int = 0

    def __add__(self, other: OverdueRun) -> OverdueRun:
        counts = [field.name for field in dataclasses.fields(self) if field.name != "as_of"]
        return OverdueRun(self.as_of, *(getattr(self, name) + getattr(other, name) for name in counts))

    def describe(self) -> str:
        return (
            f"As of {self.as_of.isoformat()}: {self.claims_overdue} claims overdue, {self.claims_penalised} penalised "
            f"for {self.points_taken} points; {self.orders_expired} orders expired, {self.orders_closed} closed."
        )


def _in_the_callers_transaction(work: Callable[[], OverdueRun]) -> OverdueRun:
    return work()


def close_overdue(
    session: Session,
    *,
    actor: AppUser,
    as_of: dt.date,
    now: dt.datetime | None = None,
    each_order: Callable[[Callable[[], OverdueRun]], OverdueRun] = _in_the_callers_transaction,
) -> OverdueRun:
    """End every published order whose deadline passed by the end of ``as_of`` (in its org's time zone).

    Claims still awaiting delivery become overdue and their claimants are penalised; then the
    order expires (nothing delivered) or closes. A day not over yet counts only up to ``now``,
    so the job never ends an order early. Orders are done one by one, by community and id,
    each through ``each_order`` (pass :func:`ledger.db.write_transaction` to commit each on
    its own). Running it again for the same day writes nothing; a claim rejected after its
    order closed is found by the next run and made overdue then.
    """
    now = now or utc_now()
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise InvalidInput("must be a date", field="as_of")
    # No zone's day ends later than two days after its UTC start: a bound for the query, refined per order.
    latest = min(now, dt.datetime.combine(as_of + dt.timedelta(days=2), dt.time(), dt.timezone.utc))
    run = OverdueRun(as_of)
    for order_id in session.execute(_due_orders(latest)).scalars().all():
        run += each_order(lambda order_id=order_id: _close_order(session, actor, order_id, as_of, now))
    return run


def _due_orders(latest: dt.datetime):
    """Query the ids of published orders not ended yet whose deadline is before ``latest``, by community and id.

    Orders every place of which is confirmed are done; a closed order is done unless a claim
    was rejected (back to awaiting delivery) after it closed.
    """
    node, closed, rejected = aliased(OrgNode), aliased(OrderEvent), aliased(OrderEvent)
    confirmed = aliased(OrderEvent)
    confirmed_places = (
        select(func.count())
        .where(confirmed.order_id == ServiceOrder.id, confirmed.happening == Happening.CONFIRMED)
        .scalar_subquery()
    )
    rejected_since_closing = exists().where(
        rejected.order_id == ServiceOrder.id,
        rejected.happening == Happening.REJECTED,
        closed.order_id == ServiceOrder.id,
        closed.happening == Happening.CLOSED,
        rejected.id > closed.id,
    )
    return (
        select(ServiceOrder.id)
        .join(node, node.id == ServiceOrder.org_id)
        .where(
            ServiceOrder.deadline < latest,
            _happened(Happening.PUBLISHED),
            ~_happened(Happening.CANCELLED, Happening.EXPIRED),
            ~_happened(Happening.CLOSED) | rejected_since_closing,
            confirmed_places < ServiceOrder.capacity,
        )
        .order_by(func.coalesce(node.community_id, node.id), ServiceOrder.id)
    )


def _close_order(session: Session, actor: AppUser, order_id: int, as_of: dt.date, now: dt.datetime) -> OverdueRun:
    """Make one order's undelivered claims overdue, penalise their claimants, and end the order."""
    order = session.get(ServiceOrder, order_id)
    zone = zoneinfo.ZoneInfo(order.org.time_zone)
    moment = min(now, dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone))
    run = OverdueRun(as_of)
    if order.deadline >= moment:
        return run
    history = _locked(session, order)
    claims = {claim.id: claim for claim in _claims(session, order.id)}
    for claim_id, state in sorted(history.view.claims.items()):
        if state is ClaimState.CLAIMED:
            history.check(Happening.OVERDUE, moment, claim_id)
            run += _mark_overdue(session, actor, history, claims[claim_id], as_of, now)
    view = history.view
    if view.state in FINAL or history.repeated(Happening.CLOSED) is not None:
        return run
    ending = closing(view)
    history.check(ending, moment)
    history.append(session, ending, actor=actor, now=now)
    ended = {"orders_expired": 1} if ending is Happening.EXPIRED else {"orders_closed": 1}
    return run + OverdueRun(as_of, **ended)


def _mark_overdue(
    session: Session, actor: AppUser, history: _History, claim: OrderClaim, as_of: dt.date, now: dt.datetime
) -> OverdueRun:
    """Record a claim overdue with what it cost: the rule set's penalty, as far as the balance allows."""
    order = history.order
    claimant = _claimant_of(session, claim)
    day = local_date(order.deadline, order.org)
    transaction, note = None, None
    if claimant.participant is None:
        note = "a team has no points account: no penalty"
    else:
        transaction, note = _penalise(session, actor, order, claim, claimant.participant, day, now)
    history.append(
        session,
        Happening.OVERDUE,
        actor=actor,
        now=now,
        claim_id=claim.id,
        note=note,
        transaction_id=transaction.id if transaction else None,
    )
    points = transaction.breakdown["points"] if transaction else 0
    return OverdueRun(as_of, claims_overdue=1, claims_penalised=int(bool(points)), points_taken=points)


def _penalise(
    session: Session,
    actor: AppUser,
    order: ServiceOrder,
    claim: OrderClaim,
    participant: Participant,
    day: dt.date,
    now: dt.datetime,
) -> tuple[Transaction | None, str]:
    """Post the ``order_not_delivered`` penalty in force on the deadline's day; return it and a note.

    The penalty never takes the balance below zero: under ``skip`` a short balance pays
    nothing, under ``cap_at_balance`` it pays what it has. Where no rule set is in force,
    nothing is taken: taking points away needs a rule.
    """
    try:
        version = version_in_force(session, order.org, day)
    except NotFound:
        return None, "no rule set in force: no penalty"
    penalties = rules_of(version).penalties
    account_id = participant_account(session, participant.id).id
    balance = lock_accounts(session, [account_id])[account_id].balance
    points = penalty_points(
        penalties.order_not_delivered, balance, cap_at_balance=penalties.below_zero is BelowZero.CAP_AT_BALANCE
    )
    if not points:
        return None, (
            f"penalty {penalties.order_not_delivered} not taken: balance {balance}, below_zero {penalties.below_zero}"
        )
    breakdown = {
        "rule": "penalties.order_not_delivered",
        "rule_set_version": version.version,
        "rule_set_org": version.org.code,
        "penalty": penalties.order_not_delivered,
        "balance_before": balance,
        "below_zero": penalties.below_zero.value,
        "points": points,
        "order": order.id,
        "claim": claim.id,
        "deadline": day.isoformat(),
    }
    transaction = record_transaction(
        session,
        actor=actor,
        org=order.org,
        kind=TransactionKindCode.PENALTY,
        legs=transfer(account_id, system_account(session, order.org, AccountKind.ADJUSTMENT).id, points),
        business_date=day,
        idempotency_key=f"order-claim-{claim.id}/overdue",
        memo=f"认领逾期未完成 not delivered by the deadline: {order.title} (order {order.id})",
        breakdown=breakdown,
        rule_set_version_id=version.id,
        now=now,
    ).transaction
    return transaction, f"penalty {points} points"


# Reads -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimLine:
    claim_id: int
    claimant_kind: ClaimantKind
    #: The participant's id, or the team's.
    claimant_id: int
    name: str
    state: ClaimState
    claimed_at: dt.datetime


@dataclass(frozen=True)
class OrderHistoryLine:
    event: OrderEvent
    actor_name: str


@dataclass(frozen=True)
class OrderDetails:
    """The staff view of one order: everything about it, the beneficiary's name included."""

    order: ServiceOrder
    state: OrderState
    places_left: int
    claims: tuple[ClaimLine, ...]
    history: tuple[OrderHistoryLine, ...]


@dataclass(frozen=True)
class OrderSummary:
    order: ServiceOrder
    state: OrderState
    places_left: int


@dataclass(frozen=True)
class OpenOrder:
    """An order as the public sees it: whose need it is as a group, and the beneficiary's name masked."""

    order_id: int
    kind: OrderKind
    title: str
    description: str | None
    org_name: str
    beneficiary_group: str
    #: "王**": the first character of the name only.
    beneficiary: str | None
    activity_type: str
    deadline: dt.datetime
    places_left: int


@dataclass(frozen=True)
class ClaimCount:
    """One unit's or party member's claims made in a year, and how they ended."""

    participant_id: int
    name: str
    category: Category
    #: The party member's employer, who receives the yearly feedback.
    employer: str | None
    #: Claims made and not withdrawn.
    claims: int
    completed: int
    overdue: int


def order_view(session: Session, order_id: int) -> OrderDetails:
    """Return an order's state, places left, claims with their states, and its history, oldest first."""
    order = _order(session, order_id)
    rows = session.execute(
        select(OrderEvent, AppUser.display_name)
        .join(AppUser, AppUser.id == OrderEvent.actor_id)
        .where(OrderEvent.order_id == order.id)
        .order_by(OrderEvent.id)
    ).all()
    view = view_of(order.capacity, (_event(event) for event, _ in rows))
    claims = []
    for claim in _claims(session, order.id):
        claimant = _claimant_of(session, claim)
        claims.append(
            ClaimLine(
                claim.id,
                claimant.kind,
                claimant.team_id or claimant.participant_id,
                claimant.name,
                view.claims[claim.id],
                claim.claimed_at,
            )
        )
    history = tuple(OrderHistoryLine(event, name) for event, name in rows)
    return OrderDetails(order, view.state, view.places_left, tuple(claims), history)


def orders_by_state(session: Session, org: OrgNode, state: str | None = None) -> list[OrderSummary]:
    """Return the orders of ``org``'s subtree (in one state, if given), soonest deadline first."""
    wanted = None if state is None else _member(OrderState, state, "state")
    orders = session.execute(
        select(ServiceOrder)
        .join(OrgNode, OrgNode.id == ServiceOrder.org_id)
        .where(OrgNode.path.startswith(org.path))
        .order_by(ServiceOrder.deadline, ServiceOrder.id)
    ).scalars().all()
    views = _views(session, orders)
    return [
        OrderSummary(order, views[order.id].state, views[order.id].places_left)
        for order in orders
        if wanted is None or views[order.id].state == wanted
    ]


def open_orders_near(session: Session, participant_id: int, now: dt.datetime | None = None) -> list[OpenOrder]:
    """Return the published orders a participant could claim now, in their grid and community.

    Only orders with a place left, a deadline ahead, and claimants of the participant's kind
    (persons also see their teams' orders); orders they already hold a place on are left out.
    """
    now = now or utc_now()
    participant = session.get(Participant, participant_id) if type(participant_id) is int else None
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant_id")
    lineage = path_ids(participant.org.path)
    near = lineage[lineage.index(participant.org.chain_id) :]
    teams = list(session.execute(select(TeamMember.team_id).where(TeamMember.participant_id == participant.id)).scalars())
    if participant.kind == ParticipantKind.UNIT:
        kinds = [ClaimantKind.UNIT, ClaimantKind.ANY]
    else:
        kinds = [ClaimantKind.PERSON, ClaimantKind.ANY] + ([ClaimantKind.TEAM] if teams else [])
    orders = session.execute(
        select(ServiceOrder)
        .where(
            ServiceOrder.org_id.in_(near),
            ServiceOrder.deadline > now,
            ServiceOrder.claimant_kind.in_(kinds),
            _happened(Happening.PUBLISHED),
            ~_happened(Happening.CANCELLED, Happening.EXPIRED, Happening.CLOSED),
        )
        .order_by(ServiceOrder.deadline, ServiceOrder.id)
    ).scalars().all()
    views = _views(session, orders)
    held = {
        claim.order_id
        for claim in session.execute(
            select(OrderClaim).where(
                OrderClaim.order_id.in_([order.id for order in orders]), OrderClaim.participant_id == participant.id
            )
        ).scalars()
        if views[claim.order_id].claims[claim.id] in HOLDING
    }
    return [
        OpenOrder(
            order.id,
            OrderKind(order.kind),
            order.title,
            order.description,
            order.org.name,
            order.beneficiary_group,
            mask_name(order.beneficiary_name),
            order.activity_type,
            order.deadline,
            views[order.id].places_left,
        )
        for order in orders
        if views[order.id].state is OrderState.PUBLISHED and order.id not in held
    ]


def claim_counts(session: Session, org: OrgNode, year: int) -> list[ClaimCount]:
    """Count, per co-building unit and per party member of ``org``'s subtree, the year's claims and outcomes.

    The year is counted in ``org``'s time zone by the moment each claim was made; a claim
    counts once made and not withdrawn, as completed once confirmed, as overdue once the
    deadline job found it undelivered. Claims made by a team count for the team, not here.
    """
    if type(year) is not int or not 2000 <= year <= 2100:
        raise InvalidInput("must be a year from 2000 to 2100", field="year")
    rows = session.execute(
        claim_count_query(org, year).order_by(Participant.kind.desc(), Participant.display_name, Participant.id)
    ).all()
    return [
        ClaimCount(
            participant_id,
            name,
            Category.UNIT if kind == ParticipantKind.UNIT else Category.PARTY_MEMBER,
            employer,
            claims - withdrawn,
            confirmed,
            overdue,
        )
        for participant_id, name, kind, employer, claims, confirmed, overdue, withdrawn in rows
    ]


def claim_count_query(org: OrgNode, year: int):
    """Return the query behind :func:`claim_counts`, one row per claimant, unordered.

    Its columns are ``participant_id``, ``name``, ``kind``, ``employer``, ``claims`` (all
    made), ``confirmed``, ``overdue`` and ``withdrawn``.
    """
    zone = zoneinfo.ZoneInfo(org.time_zone)
    start, end = (dt.datetime(y, 1, 1, tzinfo=zone) for y in (year, year + 1))
    place, outcome = aliased(OrgNode), aliased(OrderEvent)
    outcomes = (Happening.CONFIRMED, Happening.OVERDUE, Happening.WITHDRAWN)
    return (
        select(
            Participant.id.label("participant_id"),
            Participant.display_name.label("name"),
            Participant.kind,
            EmployerUnit.name.label("employer"),
            func.count(OrderClaim.id).label("claims"),
            *(
                func.count(outcome.id).filter(outcome.happening == happening).label(happening.value)
                for happening in outcomes
            ),
        )
        .select_from(OrderClaim)
        .join(Participant, Participant.id == OrderClaim.participant_id)
        .join(place, place.id == Participant.org_id)
        .outerjoin(PartyMember, PartyMember.participant_id == Participant.id)
        .outerjoin(EmployerUnit, EmployerUnit.id == PartyMember.employer_unit_id)
        .outerjoin(
            outcome,
            (outcome.claim_id == OrderClaim.id) & outcome.happening.in_(outcomes),
        )
        .where(
            place.path.startswith(org.path),
            OrderClaim.claimed_at >= start,
            OrderClaim.claimed_at < end,
            (Participant.kind == ParticipantKind.UNIT) | PartyMember.participant_id.is_not(None),
        )
        .group_by(Participant.id, Participant.display_name, Participant.kind, EmployerUnit.name)
    )


def mask_name(name: str | None) -> str | None:
    """Return a name as the public may see it: its first character, the rest as stars ("王**")."""
    if not name:
        return None
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def end_of_day(day: dt.date, org: OrgNode) -> dt.datetime:
    """Return the last moment of ``day`` in ``org``'s time zone: what a deadline given as a day means."""
    return dt.datetime.combine(day, dt.time.max, zoneinfo.ZoneInfo(org.time_zone)).astimezone(dt.timezone.utc)


# Helpers ---------------------------------------------------------------------------------------


def _event(event: OrderEvent) -> Event:
    return Event(Happening(event.happening), event.claim_id)


def _happened(*happenings: Happening):
    """Return the SQL condition that an order has an event of one of ``happenings``."""
    event = aliased(OrderEvent)
    return exists().where(event.order_id == ServiceOrder.id, event.happening.in_(happenings))


def _locked(session: Session, order: ServiceOrder) -> _History:
    """Take the lock of the order's community chain, then read its history: nothing can change it now."""
    lock_chain(session, order.org)
    events = session.execute(select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id))
    return _History(order, list(events.scalars()))


def _views(session: Session, orders: Sequence[ServiceOrder]) -> dict[int, OrderView]:
    """Fold many orders' histories at once, one query for all their events."""
    events: dict[int, list[Event]] = defaultdict(list)
    rows = session.execute(
        select(OrderEvent.order_id, OrderEvent.happening, OrderEvent.claim_id)
        .where(OrderEvent.order_id.in_([order.id for order in orders]))
        .order_by(OrderEvent.id)
    )
    for order_id, happening, claim_id in rows:
        events[order_id].append(Event(Happening(happening), claim_id))
    return {order.id: view_of(order.capacity, events[order.id]) for order in orders}


def _claims(session: Session, order_id: int) -> list[OrderClaim]:
    return list(session.execute(select(OrderClaim).where(OrderClaim.order_id == order_id).order_by(OrderClaim.id)).scalars())


def _order(session: Session, order_id: int) -> ServiceOrder:
    order = session.get(ServiceOrder, order_id) if type(order_id) is int else None
    if order is None:
        raise NotFound(f"order {order_id} does not exist", field="order_id")
    return order


def _claim(session: Session, claim_id: int) -> tuple[OrderClaim, ServiceOrder]:
    claim = session.get(OrderClaim, claim_id) if type(claim_id) is int else None
    if claim is None:
        raise NotFound(f"claim {claim_id} does not exist", field="claim_id")
    return claim, session.get(ServiceOrder, claim.order_id)


def _claimant(session: Session, participant_id: int | None, team_id: int | None) -> Claimant:
    """Return the person, unit or team named by exactly one of the two ids."""
    if (participant_id is None) == (team_id is None):
        raise InvalidInput("name either a participant or a team", field="participant_id")
    if team_id is not None:
        team = session.get(Team, team_id) if type(team_id) is int else None
        if team is None:
            raise NotFound(f"team {team_id} does not exist", field="team_id")
        return Claimant(ClaimantKind.TEAM, team.name, session.get(OrgNode, team.org_id), team=team)
    participant = session.get(Participant, participant_id) if type(participant_id) is int else None
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant_id")
    kind = ClaimantKind.UNIT if participant.kind == ParticipantKind.UNIT else ClaimantKind.PERSON
    return Claimant(kind, participant.display_name, participant.org, participant=participant)


def _claimant_of(session: Session, claim: OrderClaim) -> Claimant:
    return _claimant(session, claim.participant_id, claim.team_id)


def _check_not_involved(
    session: Session, actor: AppUser, claimant: Claimant, delivery: OrderEvent, verb: str
) -> None:
    """Four eyes: nobody who claimed, belongs to the claiming team, or served reviews the delivery."""
    if actor.participant_id is None:
        return
    involved = {claimant.participant_id, *(delivery.served_by or ())}
    if claimant.team is not None:
        involved |= set(session.execute(select(TeamMember.participant_id).where(TeamMember.team_id == claimant.team_id)).scalars())
    if actor.participant_id in involved:
        raise NotAllowed(f"nobody {verb} a delivery they took part in; ask another staff member", field="claim_id")


def _claimant_kind(kind: OrderKind, claimant_kind: str | None) -> ClaimantKind:
    """Return who may claim: as asked, or by default units for a project and anyone otherwise."""
    if claimant_kind is None:
        return ClaimantKind.UNIT if kind is OrderKind.CO_BUILDING_PROJECT else ClaimantKind.ANY
    claimant_kind = _member(ClaimantKind, claimant_kind, "claimant_kind")
    if kind is OrderKind.CO_BUILDING_PROJECT and claimant_kind is not ClaimantKind.UNIT:
        raise InvalidInput("a co-building project is claimed by co-building units", field="claimant_kind")
    return claimant_kind


def _rules_today(session: Session, org: OrgNode, now: dt.datetime) -> RuleSet:
    """Return the rules in force in ``org`` today: those an order's activity type is checked against."""
    try:
        return rules_of(version_in_force(session, org, local_date(now, org)))
    except NotFound as missing:
        raise NotFound(missing.message, field="activity_type") from None


def _order_type(rules: RuleSet, activity_type: object) -> ActivityType:
    if not isinstance(activity_type, str) or activity_type not in rules.activity_types:
        known = ", ".join(sorted(rules.activity_types))
        raise InvalidInput(f"unknown activity type {activity_type!r}; the rules in force have: {known}", field="activity_type")
    return rules.activity_types[activity_type]


def _check_order_type(rules: RuleSet, activity_type: object, claimant_kind: ClaimantKind) -> None:
    """Refuse an activity type the order's claimants could not earn with, or one counted per quantity."""
    kind = _order_type(rules, activity_type)
    if kind.unit is Unit.QUANTITY:
        raise InvalidInput(
            f"{kind.code} is counted per quantity; an order's type is counted per hour or per occurrence",
            field="activity_type",
        )
    if not kind.categories & EARNERS[claimant_kind]:
        raise InvalidInput(f"{claimant_kind} claimants do not earn with {kind.code}", field="activity_type")


def _check_earns(rules: RuleSet, order: ServiceOrder, claimant: Claimant, field: str) -> None:
    """Refuse a claimant who could not earn the order's points under the rules in force."""
    kind = _order_type(rules, order.activity_type)
    categories = {participant_category(claimant.participant)} if claimant.participant else EARNERS[claimant.kind]
    if not kind.categories & categories:
        allowed = ", ".join(sorted(category.value for category in kind.categories))
        raise InvalidInput(f"{claimant.name} cannot earn with {kind.code}; only these can: {allowed}", field=field)


def _check_served_times(served_from: object, served_until: object, order: ServiceOrder, now: dt.datetime) -> None:
    for field, moment in (("served_from", served_from), ("served_until", served_until)):
        if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
            raise InvalidInput("must be a date and time with its time zone", field=field)
    if served_until <= served_from:
        raise InvalidInput("must be after served_from", field="served_until")
    if served_until > now:
        raise InvalidInput("is in the future; report a delivery once it is done", field="served_until")
    if served_until - served_from > dt.timedelta(days=1):
        raise InvalidInput("one delivery lasts at most 24 hours", field="served_until")
    if served_from < order.created_at:
        raise InvalidInput("is before the order was posted", field="served_from")


def _served_by(session: Session, claimant: Claimant, served_by: Sequence[int] | None) -> list[int] | None:
    """Return who served as stored: a team's members (required), a unit's staff (optional), nobody else."""
    if served_by is None:
        if claimant.team is not None:
            raise InvalidInput(f"say which members of {claimant.name} served", field="served_by")
        return None
    ids = list(served_by) if isinstance(served_by, (list, tuple)) else None
    if not ids or len(ids) > MAX_SERVED_BY or any(type(i) is not int for i in ids) or len(set(ids)) != len(ids):
        raise InvalidInput(f"must list 1 to {MAX_SERVED_BY} different participant ids", field="served_by")
    if claimant.kind is ClaimantKind.PERSON:
        if ids != [claimant.participant_id]:
            raise InvalidInput(f"a person's claim is served by {claimant.name} alone", field="served_by")
        return None
    for index, participant_id in enumerate(ids):
        if claimant.team is not None:
            if session.get(TeamMember, (claimant.team_id, participant_id)) is None:
                raise InvalidInput(f"{participant_id} is not a member of {claimant.name}", field=f"served_by[{index}]")
        else:
            staff = session.get(Participant, participant_id)
            if staff is None or staff.kind != ParticipantKind.PERSON:
                raise InvalidInput(f"participant {participant_id} is not a person", field=f"served_by[{index}]")
    return sorted(ids)


def _delivered_services(
    order: ServiceOrder, claim: OrderClaim, claimant: Claimant, delivery: OrderEvent, now: dt.datetime
) -> Iterable[tuple[str, Service]]:
    """Yield what a confirmed delivery records, each with the idempotency key of its activity."""
    description = f"{KIND_LABELS[OrderKind(order.kind)]}：{order.title}（order {order.id}, claim {claim.id}）"
    earners = delivery.served_by if claimant.team is not None else [claimant.participant_id]
    for participant_id in earners:
        yield f"{ACTIVITY_KEY_PREFIX}{claim.id}/{participant_id}", Service(
            participant_id,
            order.activity_type,
            delivery.served_from,
            delivery.served_until,
            description=description,
        )
    if claimant.kind is ClaimantKind.UNIT and delivery.served_by:
        yield f"{ACTIVITY_KEY_PREFIX}{claim.id}/{claimant.participant_id}/staff", Service(
            claimant.participant_id,
            STAFF_SENT_TYPE,
            now - MOMENT,
            now,
            quantity=len(delivery.served_by),
            description=f"派员 {len(delivery.served_by)} 人：{description}",
        )


def _unit_claim_key(claim: OrderClaim) -> str:
    return f"{ACTIVITY_KEY_PREFIX}{claim.id}"


def _award_unit_claim(
    session: Session, order: ServiceOrder, claim: OrderClaim, unit: Participant, now: dt.datetime
) -> RecordedActivity:
    """Record the unit's claim as a ``unit_claim`` activity: granted by rule, so recorded by the system user."""
    service = Service(
        unit.id,
        UNIT_CLAIM_TYPE,
        now - MOMENT,
        now,
        description=f"认领{KIND_LABELS[OrderKind(order.kind)]}：{order.title}（order {order.id}）",
    )
    system = ensure_user(session, SYSTEM_USERNAME)
    return record_activity(session, actor=system, org=order.org, service=service, idempotency_key=_unit_claim_key(claim), now=now)


def _give_back_unit_claim(
    session: Session, actor: AppUser, order: ServiceOrder, claim: OrderClaim, claimant: Claimant, now: dt.datetime
) -> None:
    """Reverse what a unit's claim earned, if it earned anything; refused if the points were spent."""
    earned = session.execute(
        select(Transaction)
        .join(Activity, Activity.id == Transaction.activity_id)
        .where(
            Activity.org_id == order.org_id,
            Activity.participant_id == claim.participant_id,
            Activity.activity_type == UNIT_CLAIM_TYPE,
            Activity.idempotency_key == _unit_claim_key(claim),
            Transaction.kind == TransactionKindCode.EARN,
        )
    ).scalar_one_or_none()
    if earned is None:
        return
    try:
        reverse_transaction(
            session,
            actor=actor,
            transaction_id=earned.id,
            idempotency_key=f"{_unit_claim_key(claim)}/withdrawn",
            reason=f"认领已撤回 claim withdrawn (order {order.id}, claim {claim.id})",
            now=now,
        )
    except InsufficientBalance as short:
        raise InsufficientBalance(
            f"withdrawing gives back the {short.details['needed']} points the claim earned; "
            f"{claimant.name} has {short.details['balance']}",
            field="claim_id",
            **short.details,
        ) from None


def _deadline(value: object, org: OrgNode, now: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidInput("must be a day, or a date and time with its time zone", field="deadline")
        moment = value.astimezone(dt.timezone.utc)
    elif isinstance(value, dt.date):
        moment = end_of_day(value, org)
    else:
        raise InvalidInput("must be a day, or a date and time with its time zone", field="deadline")
    if moment <= now:
        raise InvalidInput("must be in the future", field="deadline")
    return moment


def _optional_text(value: object, field: str, max_length: int) -> str | None:
    return None if value is None else check_name(value, field=field, max_length=max_length)


def _one_of(values: Iterable[str], value: object, field: str) -> str:
    values = tuple(values)
    if value not in values:
        raise InvalidInput(f"must be one of {', '.join(values)}", field=field)
    return value


def _member(enum, value: object, field: str):
    return enum(_one_of(enum, value, field))
