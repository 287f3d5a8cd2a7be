"""The life of an order as a pure state machine: every transition it allows, every one it refuses.

Histories are written as short lists of what happened, oldest first; a happening to a claim
names the claim (``(DELIVERED, 1)``). No database, no Flask.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.order_flow import (
    FINAL,
    HOLDING,
    ONCE_PER_CLAIM,
    ONCE_PER_ORDER,
    ClaimState,
    Event,
    Happening,
    OrderState,
    TransitionRefused,
    check,
    closing,
    penalty_points,
    view_of,
)

H = Happening
DEADLINE = dt.datetime(2026, 12, 20, 15, 59, tzinfo=dt.timezone.utc)
BEFORE = DEADLINE - dt.timedelta(hours=1)
AFTER = DEADLINE + dt.timedelta(hours=1)


def history(*steps) -> list[Event]:
    """Return events from ``PUBLISHED`` or ``(DELIVERED, 1)`` shorthand."""
    return [Event(*step) if isinstance(step, tuple) else Event(step) for step in steps]


#: Histories in each state, for an order of capacity 1 unless the name says otherwise.
DRAFT = history()
PUBLISHED = history(H.PUBLISHED)
CLAIMED = history(H.PUBLISHED, (H.CLAIMED, 1))
DELIVERED = [*CLAIMED, Event(H.DELIVERED, 1)]
CONFIRMED = [*DELIVERED, Event(H.CONFIRMED, 1)]
CANCELLED = [*PUBLISHED, Event(H.CANCELLED)]
EXPIRED = [*PUBLISHED, Event(H.EXPIRED)]
WITHDRAWN = [*CLAIMED, Event(H.WITHDRAWN, 1)]
OVERDUE = [*CLAIMED, Event(H.OVERDUE, 1)]


@pytest.mark.parametrize(
    ("capacity", "before", "happening", "claim_id", "now", "state", "claim_state"),
    [
        (1, DRAFT, H.PUBLISHED, None, BEFORE, OrderState.PUBLISHED, None),
        (1, DRAFT, H.CANCELLED, None, BEFORE, OrderState.CANCELLED, None),
        (1, PUBLISHED, H.CLAIMED, None, BEFORE, OrderState.CLAIMED, ClaimState.CLAIMED),
        (2, PUBLISHED, H.CLAIMED, None, BEFORE, OrderState.PUBLISHED, ClaimState.CLAIMED),
        (1, PUBLISHED, H.CANCELLED, None, BEFORE, OrderState.CANCELLED, None),
        (1, PUBLISHED, H.EXPIRED, None, AFTER, OrderState.EXPIRED, None),
        (1, PUBLISHED, H.CLOSED, None, AFTER, OrderState.CONFIRMED, None),
        (1, CLAIMED, H.WITHDRAWN, 1, BEFORE, OrderState.PUBLISHED, ClaimState.WITHDRAWN),
        (1, CLAIMED, H.DELIVERED, 1, BEFORE, OrderState.DELIVERED, ClaimState.DELIVERED),
        (1, CLAIMED, H.OVERDUE, 1, AFTER, OrderState.PUBLISHED, ClaimState.OVERDUE),
        (1, CLAIMED, H.CANCELLED, None, BEFORE, OrderState.CANCELLED, ClaimState.CLAIMED),
        (1, CLAIMED, H.EXPIRED, None, AFTER, OrderState.EXPIRED, ClaimState.CLAIMED),
        (1, CLAIMED, H.CLOSED, None, AFTER, OrderState.CLAIMED, ClaimState.CLAIMED),
        (1, DELIVERED, H.CONFIRMED, 1, BEFORE, OrderState.CONFIRMED, ClaimState.CONFIRMED),
        (1, DELIVERED, H.CONFIRMED, 1, AFTER, OrderState.CONFIRMED, ClaimState.CONFIRMED),
        (1, DELIVERED, H.REJECTED, 1, BEFORE, OrderState.CLAIMED, ClaimState.CLAIMED),
        (1, DELIVERED, H.CANCELLED, None, BEFORE, OrderState.CANCELLED, ClaimState.DELIVERED),
        (1, DELIVERED, H.CLOSED, None, AFTER, OrderState.DELIVERED, ClaimState.DELIVERED),
        (2, [*PUBLISHED, Event(H.CLAIMED, 1), Event(H.DELIVERED, 1)], H.CLOSED, None, AFTER, OrderState.DELIVERED, ClaimState.DELIVERED),
        (2, [*CONFIRMED], H.CLOSED, None, AFTER, OrderState.CONFIRMED, ClaimState.CONFIRMED),
        (1, WITHDRAWN, H.CLAIMED, None, BEFORE, OrderState.CLAIMED, ClaimState.WITHDRAWN),
    ],
)
def test_each_allowed_transition_leads_to_its_state(capacity, before, happening, claim_id, now, state, claim_state):
    view = view_of(capacity, before)
    check(view, happening, now=now, deadline=DEADLINE, claim_id=claim_id)
    new_claim = len(view.claims) + 1 if happening is H.CLAIMED else claim_id
    after = view_of(capacity, [*before, Event(happening, new_claim)])
    assert after.state is state
    if claim_state is not None:
        assert after.claims[1] is claim_state


@pytest.mark.parametrize(
    ("capacity", "before", "happening", "claim_id", "now", "state", "says"),
    [
        (1, DRAFT, H.CLAIMED, None, BEFORE, "draft", "an order that is draft cannot be claimed"),
        (1, DRAFT, H.EXPIRED, None, AFTER, "draft", "cannot be expired"),
        (1, DRAFT, H.CLOSED, None, AFTER, "draft", "cannot be closed"),
        (1, PUBLISHED, H.PUBLISHED, None, BEFORE, "published", "cannot be published"),
        (1, PUBLISHED, H.CLAIMED, None, AFTER, "published", "the deadline has passed"),
        (1, PUBLISHED, H.EXPIRED, None, BEFORE, "published", "the deadline has not passed yet"),
        (1, PUBLISHED, H.CLOSED, None, BEFORE, "published", "the deadline has not passed yet"),
        (1, CLAIMED, H.CLAIMED, None, BEFORE, "claimed", "an order that is claimed cannot be claimed"),
        (1, CLAIMED, H.CONFIRMED, 1, BEFORE, "claimed", "a claim that is claimed cannot be confirmed"),
        (1, CLAIMED, H.REJECTED, 1, BEFORE, "claimed", "it must be delivered"),
        (1, CLAIMED, H.WITHDRAWN, 1, AFTER, "claimed", "the deadline"),
        (1, CLAIMED, H.DELIVERED, 1, AFTER, "claimed", "can no longer be delivered"),
        (1, DELIVERED, H.DELIVERED, 1, BEFORE, "delivered", "a claim that is delivered cannot be delivered"),
        (1, DELIVERED, H.WITHDRAWN, 1, BEFORE, "delivered", "cannot be withdrawn"),
        (1, DELIVERED, H.OVERDUE, 1, AFTER, "delivered", "cannot be overdue"),
        (1, DELIVERED, H.EXPIRED, None, AFTER, "delivered", "an order that is delivered cannot be expired"),
        (1, CONFIRMED, H.CONFIRMED, 1, BEFORE, "confirmed", "cannot be confirmed"),
        (1, CONFIRMED, H.REJECTED, 1, BEFORE, "confirmed", "cannot be rejected"),
        (1, CONFIRMED, H.CANCELLED, None, BEFORE, "confirmed", "an order that is confirmed cannot be cancelled"),
        (1, CONFIRMED, H.CLOSED, None, AFTER, "confirmed", "cannot be closed"),
        (2, [*CONFIRMED], H.CANCELLED, None, BEFORE, "published", "part of this order was confirmed"),
        (1, WITHDRAWN, H.DELIVERED, 1, BEFORE, "withdrawn", "a claim that is withdrawn cannot be delivered"),
        (1, OVERDUE, H.DELIVERED, 1, AFTER, "overdue", "a claim that is overdue cannot be delivered"),
        (1, CANCELLED, H.PUBLISHED, None, BEFORE, "cancelled", "an order that is cancelled cannot be published"),
        (1, CANCELLED, H.CLAIMED, None, BEFORE, "cancelled", "cannot be claimed"),
        (1, CANCELLED, H.CANCELLED, None, BEFORE, "cancelled", "cannot be cancelled"),
        (1, EXPIRED, H.CLAIMED, None, AFTER, "expired", "an order that is expired cannot be claimed"),
        (1, EXPIRED, H.CLOSED, None, AFTER, "expired", "cannot be closed"),
    ],
)
def test_each_refused_transition_names_the_state_it_is_in(capacity, before, happening, claim_id, now, state, says):
    with pytest.raises(TransitionRefused) as refusal:
        check(view_of(capacity, before), happening, now=now, deadline=DEADLINE, claim_id=claim_id)
    assert refusal.value.details["state"] == state
    assert says in refusal.value.message


def test_a_happening_to_a_claim_not_on_the_order_is_invalid_input():
    with pytest.raises(InvalidInput) as refusal:
        check(view_of(1, CLAIMED), H.DELIVERED, now=BEFORE, deadline=DEADLINE, claim_id=7)
    assert refusal.value.field == "claim_id"


@pytest.mark.parametrize(
    ("events", "ending"),
    [
        (PUBLISHED, H.EXPIRED),
        ([*OVERDUE, Event(H.CLAIMED, 2), Event(H.WITHDRAWN, 2)], H.EXPIRED),
        ([*OVERDUE, Event(H.CLAIMED, 2), Event(H.DELIVERED, 2)], H.CLOSED),
        (CONFIRMED, H.CLOSED),
    ],
)
def test_the_deadline_job_expires_an_order_with_nothing_delivered_and_closes_the_others(events, ending):
    assert closing(view_of(3, events)) is ending


@pytest.mark.parametrize(
    ("penalty", "balance", "cap", "taken"),
    [
        (10, 25, False, 10),
        (10, 10, False, 10),
        (10, 4, False, 0),
        (10, 4, True, 4),
        (10, 0, True, 0),
        (0, 25, True, 0),
        (10, -3, True, 0),
    ],
)
def test_a_penalty_never_takes_more_than_the_balance(penalty, balance, cap, taken):
    assert penalty_points(penalty, balance, cap_at_balance=cap) == taken


# Random lives ------------------------------------------------------------------------------

#: One step: what happens, to which existing claim (by position), and whether the deadline has passed by then.
steps = st.lists(st.tuples(st.sampled_from(Happening), st.integers(0, 3), st.booleans()), max_size=40)


@given(capacity=st.integers(1, 3), steps=steps)
def test_any_life_keeps_places_within_capacity_and_final_states_final(capacity, steps):
    accepted: list[Event] = []
    claims: list[int] = []
    past_deadline = False
    final: OrderState | None = None
    ended_claims: dict[int, ClaimState] = {}
    for happening, position, passes in steps:
        past_deadline = past_deadline or passes
        now = AFTER if past_deadline else BEFORE
        claim_id = claims[position % len(claims)] if claims and happening not in _ORDER_HAPPENINGS else None
        if happening not in _ORDER_HAPPENINGS and claim_id is None:
            continue
        view = view_of(capacity, accepted)
        try:
            check(view, happening, now=now, deadline=DEADLINE, claim_id=claim_id)
        except TransitionRefused as refusal:
            assert refusal.details["state"] in {view.state, *view.claims.values()}
            continue
        if happening is H.CLAIMED:
            claim_id = len(claims) + 1
            claims.append(claim_id)
        accepted.append(Event(happening, claim_id))
        after = view_of(capacity, accepted)

        assert 0 <= after.places_left <= capacity
        assert sum(state in HOLDING for state in after.claims.values()) <= capacity
        if final is not None:
            assert after.state is final, f"{final} became {after.state}"
        if after.state in FINAL:
            final = after.state
        for claim_id_, state in ended_claims.items():
            assert after.claims[claim_id_] is state
        ended_claims.update(
            (claim_id_, state)
            for claim_id_, state in after.claims.items()
            if state in (ClaimState.WITHDRAWN, ClaimState.CONFIRMED, ClaimState.OVERDUE)
        )
    for happening in ONCE_PER_ORDER:
        assert sum(event.happening is happening for event in accepted) <= 1
    for happening in ONCE_PER_CLAIM:
        for claim_id in claims:
            assert sum(event == Event(happening, claim_id) for event in accepted) <= 1


_ORDER_HAPPENINGS = {H.PUBLISHED, H.CLAIMED, H.CANCELLED, H.EXPIRED, H.CLOSED}
