"""The life of an order (需求, 微心愿, 共建项目) as a pure state machine over its history.

Nothing about an order is ever edited: its state is read off the append-only list of what
happened to it (published, claimed, delivered, confirmed, …), so the history explains the
state and the state can always be recomputed. An order takes ``capacity`` claimants; each
claim has a life of its own:

    claim:  claimed → delivered → confirmed
                 ↑         │
                 └─ rejected (with a reason, back to claimed)
            claimed → withdrawn (before the deadline)
            claimed → overdue   (not delivered by the deadline: penalised by the deadline job)

The order's state follows from its claims:

* ``draft`` until published; ``cancelled`` or ``expired`` once that happened (final);
* ``published`` while places are open (and the deadline job has not closed it);
* otherwise ``claimed`` while any claim awaits delivery, ``delivered`` while any awaits
  confirmation, and ``confirmed`` once every claim that stands is confirmed.

:func:`check` refuses an action that the state does not allow, naming the state it is in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ledger.errors import Conflict, InvalidInput


class OrderKind(StrEnum):
    #: 微心愿: a small wish of an elderly person living alone, a left-behind child, a family in difficulty.
    MICRO_WISH = "micro_wish"
    #: A resident's need for a service.
    SERVICE_NEED = "service_need"
    #: A co-building project for a unit to take on.
    CO_BUILDING_PROJECT = "co_building_project"


class ClaimantKind(StrEnum):
    """Who may claim an order."""

    PERSON = "person"
    TEAM = "team"
    UNIT = "unit"
    ANY = "any"


class OrderState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CLAIMED = "claimed"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ClaimState(StrEnum):
    CLAIMED = "claimed"
    WITHDRAWN = "withdrawn"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    OVERDUE = "overdue"


class Happening(StrEnum):
    """What can happen to an order; each is one row of its history."""

    PUBLISHED = "published"
    CLAIMED = "claimed"
    WITHDRAWN = "withdrawn"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    #: The deadline passed with nothing delivered: the order is over.
    EXPIRED = "expired"
    #: The deadline passed with something delivered: no more claims, the delivered ones still count.
    CLOSED = "closed"
    #: A claim was not delivered by the deadline.
    OVERDUE = "overdue"


#: What happens once per order, at most.
ONCE_PER_ORDER = (Happening.PUBLISHED, Happening.CANCELLED, Happening.EXPIRED, Happening.CLOSED)
#: What happens once per claim, at most.
ONCE_PER_CLAIM = (Happening.CLAIMED, Happening.WITHDRAWN, Happening.CONFIRMED, Happening.OVERDUE)
#: Claim states that hold a place.
HOLDING = (ClaimState.CLAIMED, ClaimState.DELIVERED, ClaimState.CONFIRMED)

_CLAIM_AFTER = {
    Happening.CLAIMED: ClaimState.CLAIMED,
    Happening.WITHDRAWN: ClaimState.WITHDRAWN,
    Happening.DELIVERED: ClaimState.DELIVERED,
    Happening.CONFIRMED: ClaimState.CONFIRMED,
    Happening.REJECTED: ClaimState.CLAIMED,
    Happening.OVERDUE: ClaimState.OVERDUE,
}


class TransitionRefused(Conflict):
    """Raised when an order or claim is asked to do what its present state does not allow."""

    code = "transition_refused"


@dataclass(frozen=True)
class Event:
    """One row of an order's history, as the state machine reads it."""

    happening: Happening
    claim_id: int | None = None


@dataclass(frozen=True)
class OrderView:
    """An order's state, read off its history."""

    state: OrderState
    capacity: int
    claims: Mapping[int, ClaimState] = field(default_factory=dict)

    @property
    def places_left(self) -> int:
        return self.capacity - sum(1 for state in self.claims.values() if state in HOLDING)


def view_of(capacity: int, history: Iterable[Event]) -> OrderView:
    """Fold an order's history, oldest first, into its present state."""
    claims: dict[int, ClaimState] = {}
    seen: set[Happening] = set()
    for event in history:
        seen.add(event.happening)
        if event.happening in _CLAIM_AFTER:
            claims[event.claim_id] = _CLAIM_AFTER[event.happening]
    holding = [state for state in claims.values() if state in HOLDING]
    if Happening.CANCELLED in seen:
        state = OrderState.CANCELLED
    elif Happening.EXPIRED in seen:
        state = OrderState.EXPIRED
    elif Happening.PUBLISHED not in seen:
        state = OrderState.DRAFT
    elif Happening.CLOSED not in seen and len(holding) < capacity:
        state = OrderState.PUBLISHED
    elif ClaimState.CLAIMED in holding:
        state = OrderState.CLAIMED
    elif ClaimState.DELIVERED in holding:
        state = OrderState.DELIVERED
    else:
        state = OrderState.CONFIRMED
    return OrderView(state, capacity, claims)


FINAL = (OrderState.CANCELLED, OrderState.EXPIRED, OrderState.CONFIRMED)


def check(
    view: OrderView,
    happening: Happening,
    *,
    now: dt.datetime,
    deadline: dt.datetime,
    claim_id: int | None = None,
) -> None:
    """Refuse ``happening`` if the order (or the claim) is not in a state that allows it."""
    if happening in _CLAIM_ACTIONS:
        if claim_id not in view.claims:
            raise InvalidInput("this claim is not on this order", field="claim_id")
        allowed = _CLAIM_ACTIONS[happening]
        current = view.claims[claim_id]
        if current not in allowed:
            raise TransitionRefused(
                f"a claim that is {current} cannot be {happening}; it must be {' or '.join(allowed)}",
                field="claim_id",
                state=current.value,
            )
        if happening in (Happening.WITHDRAWN, Happening.DELIVERED) and now > deadline:
            raise TransitionRefused(
                f"the deadline {deadline.isoformat()} has passed; the claim can no longer be {happening}",
                field="claim_id",
                state=current.value,
            )
        return
    allowed_states = _ORDER_ACTIONS[happening]
    if view.state not in allowed_states:
        raise TransitionRefused(
            f"an order that is {view.state} cannot be {happening}", field="order_id", state=view.state.value
        )
    if happening is Happening.CLAIMED:
        if view.places_left <= 0:
            raise TransitionRefused("every place on this order is taken", field="order_id", state=view.state.value)
        if now > deadline:
            raise TransitionRefused("the deadline has passed", field="order_id", state=view.state.value)
    if happening in (Happening.EXPIRED, Happening.CLOSED) and now <= deadline:
        raise TransitionRefused("the deadline has not passed yet", field="order_id", state=view.state.value)
    if happening is Happening.CANCELLED and ClaimState.CONFIRMED in view.claims.values():
        raise TransitionRefused(
            "part of this order was confirmed and its points posted; it can no longer be cancelled",
            field="order_id",
            state=view.state.value,
        )


_ORDER_ACTIONS = {
    Happening.PUBLISHED: (OrderState.DRAFT,),
    Happening.CLAIMED: (OrderState.PUBLISHED,),
    Happening.CANCELLED: (OrderState.DRAFT, OrderState.PUBLISHED, OrderState.CLAIMED, OrderState.DELIVERED),
    Happening.EXPIRED: (OrderState.PUBLISHED, OrderState.CLAIMED),
    Happening.CLOSED: (OrderState.PUBLISHED, OrderState.CLAIMED, OrderState.DELIVERED),
}
_CLAIM_ACTIONS = {
    Happening.WITHDRAWN: (ClaimState.CLAIMED,),
    Happening.DELIVERED: (ClaimState.CLAIMED,),
    Happening.CONFIRMED: (ClaimState.DELIVERED,),
    Happening.REJECTED: (ClaimState.DELIVERED,),
    Happening.OVERDUE: (ClaimState.CLAIMED,),
}


def closing(view: OrderView) -> Happening:
    """Return how the deadline job ends an order: expired if nothing was delivered, else closed."""
    delivered = any(state in (ClaimState.DELIVERED, ClaimState.CONFIRMED) for state in view.claims.values())
    return Happening.CLOSED if delivered else Happening.EXPIRED


def penalty_points(penalty: int, balance: int, *, cap_at_balance: bool) -> int:
    """Return the points a penalty takes: never more than the balance (skip, or take what there is)."""
    if penalty <= 0:
        return 0
    if balance >= penalty:
        return penalty
    return max(balance, 0) if cap_at_balance else 0
