"""Orders on both databases: from posting to points, refusals, penalties, lists, races and the CLI.

The board below is the community's order desk. Each call is one committed write at the next
tick of its clock (ten minutes apart, from 09:00 on Monday 2 November 2026 in Shanghai, a
working day far from any holiday), so a micro-wish confirmed earns its plain 20 points and
deliveries never overlap. The ledger must verify after every test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.activities import NotAllowed
from ledger.db import db, write_transaction
from ledger.errors import IdempotencyConflict, InsufficientBalance, InvalidInput, LedgerError
from ledger.models import AppUser, EmployerUnit, OrderClaim, OrgNode, Participant, ServiceOrder, Transaction, utc_now
from ledger.order_flow import ClaimState, OrderState, TransitionRefused
from ledger.orders import (
    cancel_order,
    claim_counts,
    claim_order,
    close_overdue,
    confirm,
    deliver,
    open_orders_near,
    order_view,
    orders_by_state,
    post_order,
    publish_order,
    reject,
    withdraw,
)
from ledger.participants import (
    create_team,
    join_team,
    register_co_building_unit,
    register_employer_unit,
    register_party_member,
)
from ledger.rankings import own_standing, parse_period, unit_points_by_kind
from ledger.rewards import explain_entry
from ledger.transactions import account_balance, participant_account
from ledger.verify import verify_ledger
from tests.activity_fixtures import at, service
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.helpers import earn, run_at_once, spend
from tests.refusals import refused, row_counts

START = at("2026-11-02 09:00")
DEADLINE = dt.date(2026, 11, 20)
AFTER_DEADLINE = at("2026-11-21 09:00")
TICK = dt.timedelta(minutes=10)
MICRO_WISH_POINTS = 20


@dataclass
class Board:
    """The community's order desk: each call is one committed write, at the next tick of the clock."""

    session: object
    write: Callable
    street: object
    staff_id: int
    clock: dt.datetime = START
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))
    #: Keeps the idempotency keys of two boards on one database apart (hypothesis runs many).
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def tick(self) -> dt.datetime:
        self.clock += TICK
        return self.clock

    def user(self, user_id: int | None = None) -> AppUser:
        return self.session.get(AppUser, user_id or self.staff_id)

    def post(self, **fields) -> int:
        """Post an order (a published micro-wish for an elderly resident in the community unless told otherwise)."""
        return self.write(self.posting(**fields))

    def posting(
        self, *, org_id: int | None = None, publish: bool = True, key: str | None = None, now: dt.datetime | None = None, **fields
    ):
        """Return the work of posting an order; see :meth:`post`."""
        fields = {
            "kind": "micro_wish",
            "title": "给王奶奶买米",
            "activity_type": "micro_wish",
            "deadline": DEADLINE,
            "beneficiary_group": "elderly_living_alone",
            "beneficiary_name": "王秀英",
            "beneficiary_contact": "13800000000",
            **fields,
        }
        org, key, now = self.session.get(OrgNode, org_id or self.street.community), key or f"o-{self.run}-{next(self.keys)}", now or self.tick()
        return lambda: post_order(
            self.session, actor=self.user(), org=org, publish=publish, idempotency_key=key, now=now, **fields
        ).id

    def work(self, action, *, actor_id: int | None = None, now: dt.datetime | None = None, **arguments):
        """Return the work of one call of ``action``, by staff unless told otherwise, at the next tick."""
        now = now or self.tick()
        return lambda: action(self.session, actor=self.user(actor_id), now=now, **arguments)

    def do(self, action, **arguments):
        return self.write(self.work(action, **arguments))

    def refuse(self, action, error: type[LedgerError] = TransitionRefused, **arguments) -> LedgerError:
        """Call ``action``, expect ``error``, check that nothing was written, and return the error."""
        return refused(self.session, self.write, self.work(action, **arguments), error)

    def claim(self, order_id: int, **claimant) -> int:
        return self.do(claim_order, order_id=order_id, **claimant).event.claim_id

    def delivery(self, claim_id: int, **fields) -> dict:
        """Return the arguments of a delivery at the next tick, served in the minutes before it."""
        now = self.tick()
        return {"claim_id": claim_id, "served_from": now - 8 * TICK / 10, "served_until": now - 3 * TICK / 10, "note": "米已送到", "now": now, **fields}

    def deliver(self, claim_id: int, **fields):
        return self.do(deliver, **self.delivery(claim_id, **fields))

    def close(self, as_of: dt.date = DEADLINE, now: dt.datetime = AFTER_DEADLINE):
        return self.write(lambda: close_overdue(self.session, actor=self.user(), as_of=as_of, now=now))


@pytest.fixture
def board(session, write, street, actor_id, default_rules) -> Board:
    return Board(session, write, street, actor_id)


@pytest.fixture(autouse=True)
def the_ledger_verifies_afterwards(session):
    yield
    report = verify_ledger(session)
    assert report.ok, report.problems


@pytest.fixture
def make_party_member(session, write, street):
    """Return a callable reporting a party member in (to the first grid); it returns the participant id."""
    employer = write(
        lambda: register_employer_unit(session, org=session.get(OrgNode, street.district), name="区税务局").id
    )

    def make(name: str = "张党员") -> int:
        return write(
            lambda: register_party_member(
                session,
                org=session.get(OrgNode, street.grid),
                real_name=name,
                id_number=valid_id_number(),
                employer=session.get(EmployerUnit, employer),
                reported_on=dt.date(2025, 3, 1),
                id_number_key=ID_NUMBER_KEY,
            ).id
        )

    return make


@pytest.fixture
def unit(session, write, street) -> int:
    return write(
        lambda: register_co_building_unit(
            session,
            community=session.get(OrgNode, street.community),
            name="锦绣物业",
            unit_kind="property_company",
            reported_on=dt.date(2025, 1, 2),
        ).id
    )


@pytest.fixture
def team(session, write, street, make_resident) -> tuple[int, list[int]]:
    """A team of the community with three members; returns its id and the members' participant ids."""
    members = [make_resident(name=name).participant_id for name in ("赵一", "钱二", "孙三")]

    def found():
        team = create_team(session, org=session.get(OrgNode, street.community), name="红马甲")
        for member in members:
            join_team(session, team=team, participant=session.get(Participant, member), joined_on=dt.date(2025, 5, 4))
        return team.id

    return write(found), members


def balance(session, participant_id: int) -> int:
    return account_balance(session, participant_account(session, participant_id).id).balance


def claim_states(session, order_id: int) -> dict[int, ClaimState]:
    return {line.claim_id: line.state for line in order_view(session, order_id).claims}


def state_of(session, order_id: int) -> OrderState:
    return order_view(session, order_id).state


# The whole loop ----------------------------------------------------------------------------


def test_a_micro_wish_claimed_delivered_and_confirmed_pays_the_party_member_and_lifts_their_rank(
    session, board, desk, make_party_member
):
    rival, member = make_party_member("李先锋"), make_party_member()
    desk.record(service(rival, "2026-11-02 07:00", "08:00"), org_id=board.street.community)
    standing = lambda: own_standing(  # noqa: E731 - read twice, before and after
        session,
        org=session.get(OrgNode, board.street.community),
        category="party_member",
        period=parse_period("2026"),
        participant_id=member,
        public=False,
    )
    assert standing().me is None

    order_id = board.post()
    assert (state_of(session, order_id), order_view(session, order_id).places_left) == (OrderState.PUBLISHED, 1)
    claim_id = board.claim(order_id, participant_id=member)
    assert state_of(session, order_id) is OrderState.CLAIMED
    board.deliver(claim_id)
    assert state_of(session, order_id) is OrderState.DELIVERED
    step = board.do(confirm, claim_id=claim_id, rating=5)

    details = order_view(session, order_id)
    assert (details.state, details.places_left) == (OrderState.CONFIRMED, 0)
    assert [line.event.happening for line in details.history] == ["published", "claimed", "delivered", "confirmed"]
    assert {line.actor_name for line in details.history} == {"社区工作者"}
    assert details.history[-1].event.rating == 5
    [recorded] = step.recorded
    assert details.history[-1].event.transaction_id == recorded.transaction.id
    assert balance(session, member) == MICRO_WISH_POINTS
    breakdown = recorded.transaction.breakdown
    assert (breakdown["inputs"]["activity_type"], breakdown["inputs"]["category"], breakdown["points"]) == (
        "micro_wish",
        "party_member",
        MICRO_WISH_POINTS,
    )
    assert explain_entry("earn", breakdown, "en") == ["Service time 5 min", "Base: 20 points an occurrence"]
    assert recorded.activity.description.startswith("微心愿：给王奶奶买米")
    assert (standing().me.rank, standing().me.points, standing().below[0].participant_id) == (1, 20, rival)


# Posting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "change"),
    [
        ("org", {"org_id": "district"}),
        ("org", {"org_id": "street"}),
        ("kind", {"kind": "errand"}),
        ("title", {"title": "  "}),
        ("activity_type", {"activity_type": "knitting"}),
        ("activity_type", {"activity_type": "unit_staff_sent", "claimant_kind": "unit"}),
        ("activity_type", {"claimant_kind": "unit"}),
        ("claimant_kind", {"claimant_kind": "anyone"}),
        ("claimant_kind", {"kind": "co_building_project", "activity_type": "unit_project_completed", "claimant_kind": "any"}),
        ("deadline", {"deadline": dt.date(2026, 11, 1)}),
        ("deadline", {"deadline": dt.datetime(2026, 12, 1, 9, 0)}),
        ("capacity", {"capacity": 0}),
        ("capacity", {"capacity": 101}),
        ("capacity", {"capacity": 2.5}),
        ("beneficiary_group", {"beneficiary_group": "vip"}),
        ("beneficiary_name", {"beneficiary_name": "王" * 101}),
        ("description", {"description": "长" * 1001}),
        ("idempotency_key", {"key": "空 格"}),
    ],
)
def test_posting_refuses_each_bad_field_by_name(session, board, fault, change):
    if "org_id" in change:  # named by the street fixture's attribute; the parameter itself is shared by both databases
        change = {**change, "org_id": getattr(board.street, change["org_id"])}
    refusal = refused(session, board.write, board.posting(**change), InvalidInput)
    assert refusal.field == fault


def test_posting_again_with_the_key_returns_the_first_order_and_other_content_is_refused(session, board):
    first = board.post(key="wish-1", capacity=2)
    assert board.post(key="wish-1", capacity=2) == first
    refusal = refused(session, board.write, board.posting(key="wish-1", capacity=3), IdempotencyConflict)
    assert refusal.field == "idempotency_key"
    assert session.scalar(select(func.count()).select_from(ServiceOrder)) == 1
    assert state_of(session, first) is OrderState.PUBLISHED


def test_a_draft_is_published_once_and_a_co_building_project_is_for_units_by_default(session, board):
    draft = board.post(publish=False)
    assert state_of(session, draft) is OrderState.DRAFT
    first = board.do(publish_order, order_id=draft)
    again = board.do(publish_order, order_id=draft)
    assert (again.replayed, again.event.id) == (True, first.event.id)
    project = board.post(kind="co_building_project", activity_type="unit_project_completed", beneficiary_group="community")
    assert session.get(ServiceOrder, project).claimant_kind == "unit"
    late = board.post(publish=False, deadline=board.clock + 2 * TICK)
    board.tick(), board.tick()
    assert "deadline has passed" in board.refuse(publish_order, order_id=late).message


# Refusals ------------------------------------------------------------------------------------


def test_each_refused_step_names_the_state_it_is_in_and_writes_nothing(session, board, make_resident):
    me, other = make_resident().participant_id, make_resident(name="周四").participant_id
    draft = board.post(publish=False)
    assert board.refuse(claim_order, order_id=draft, participant_id=me).details["state"] == "draft"

    order_id = board.post()
    claim_id = board.claim(order_id, participant_id=me)
    full = board.refuse(claim_order, order_id=order_id, participant_id=other)
    assert (full.message, full.details["state"]) == ("every place on this order is taken (it is claimed)", "claimed")
    for action, arguments in [(confirm, {}), (reject, {"reason": "没送到"})]:
        refusal = board.refuse(action, claim_id=claim_id, **arguments)
        assert refusal.details["state"] == "claimed" and "a claim that is claimed" in refusal.message

    board.deliver(claim_id)
    assert board.refuse(withdraw, claim_id=claim_id).details["state"] == "delivered"
    assert board.refuse(deliver, **board.delivery(claim_id, note="又送了一次")).details["state"] == "delivered"

    board.do(confirm, claim_id=claim_id)
    assert board.refuse(confirm, claim_id=claim_id, rating=3).details["state"] == "confirmed"
    assert board.refuse(reject, claim_id=claim_id, reason="晚了").details["state"] == "confirmed"
    assert board.refuse(cancel_order, order_id=order_id, reason="不需要了").details["state"] == "confirmed"


def test_claimants_out_of_scope_or_of_the_wrong_kind_are_refused(session, board, make_resident, unit, team):
    team_id, _ = team
    stranger = make_resident(board.street.other_community, name="外社区").participant_id
    for_people = board.post(claimant_kind="person")
    for_units = board.post(kind="service_need", activity_type="unit_project_completed", claimant_kind="unit")
    for_anyone = board.post()
    cases = [
        (for_anyone, {"participant_id": stranger}, "participant_id", "belongs to 和平社区"),
        (for_people, {"participant_id": unit}, "participant_id", "claimed by persons only"),
        (for_people, {"team_id": team_id}, "team_id", "claimed by persons only"),
        (for_units, {"participant_id": make_resident().participant_id}, "participant_id", "claimed by units only"),
        (for_anyone, {"participant_id": unit}, "participant_id", "cannot earn with micro_wish"),
        (for_anyone, {"participant_id": unit, "team_id": team_id}, "participant_id", "either a participant or a team"),
    ]
    for order_id, claimant, field_, says in cases:
        refusal = board.refuse(claim_order, InvalidInput, order_id=order_id, **claimant)
        assert (refusal.field, says in refusal.message) == (field_, True), refusal


def test_nobody_confirms_or_rejects_a_delivery_they_took_part_in(session, board, desk, make_resident):
    me = make_resident().participant_id
    my_user = desk.add_user("me", me)
    claim_id = board.claim(board.post(), participant_id=me)
    board.deliver(claim_id, actor_id=my_user)
    for action, arguments in [(confirm, {}), (reject, {"reason": "自己审自己"})]:
        refusal = board.refuse(action, NotAllowed, claim_id=claim_id, actor_id=my_user, **arguments)
        assert "took part" in refusal.message


# Reject, withdraw, cancel ------------------------------------------------------------------------


def test_a_rejected_delivery_goes_back_to_the_claimant_who_delivers_again_and_is_confirmed(session, board, make_resident):
    me = make_resident().participant_id
    order_id = board.post()
    claim_id = board.claim(order_id, participant_id=me)
    board.deliver(claim_id, note="送了面粉")
    rejection = board.do(reject, claim_id=claim_id, reason="要的是大米")
    assert (rejection.event.note, claim_states(session, order_id)[claim_id]) == ("要的是大米", ClaimState.CLAIMED)
    assert state_of(session, order_id) is OrderState.CLAIMED
    again = board.do(reject, claim_id=claim_id, reason="要的是大米", now=board.clock)
    assert (again.replayed, again.event.id) == (True, rejection.event.id)

    board.deliver(claim_id, note="大米已送到")
    board.do(confirm, claim_id=claim_id)
    assert balance(session, me) == MICRO_WISH_POINTS
    happenings = [line.event.happening for line in order_view(session, order_id).history]
    assert happenings == ["published", "claimed", "delivered", "rejected", "delivered", "confirmed"]


def test_a_claimant_withdraws_before_the_deadline_freeing_the_place_but_not_after_it(session, board, make_resident):
    me, other = make_resident().participant_id, make_resident(name="周四").participant_id
    order_id = board.post()
    first = board.claim(order_id, participant_id=me)
    board.do(withdraw, claim_id=first)
    assert (state_of(session, order_id), order_view(session, order_id).places_left) == (OrderState.PUBLISHED, 1)
    second = board.claim(order_id, participant_id=other)
    late = board.refuse(withdraw, claim_id=second, now=AFTER_DEADLINE)
    assert "deadline" in late.message and late.details["state"] == "claimed"
    assert claim_states(session, order_id) == {first: ClaimState.WITHDRAWN, second: ClaimState.CLAIMED}


def test_a_cancelled_order_takes_no_more_claims_deliveries_or_confirmations(session, board, make_resident):
    me, other = make_resident().participant_id, make_resident(name="周四").participant_id
    order_id = board.post(capacity=2)
    claim_id = board.claim(order_id, participant_id=me)
    board.deliver(claim_id)
    cancelled = board.do(cancel_order, order_id=order_id, reason="王奶奶搬去女儿家了")
    assert (state_of(session, order_id), cancelled.event.note) == (OrderState.CANCELLED, "王奶奶搬去女儿家了")
    assert board.refuse(claim_order, order_id=order_id, participant_id=other).details["state"] == "cancelled"
    assert board.refuse(confirm, claim_id=claim_id).details["state"] == "cancelled"
    assert balance(session, me) == 0


# Idempotency -------------------------------------------------------------------------------------


def test_retries_return_the_first_result_and_confirming_twice_posts_once(session, board, make_resident):
    me = make_resident().participant_id
    order_id = board.post(capacity=2)
    claim_id = board.claim(order_id, participant_id=me)
    assert board.do(claim_order, order_id=order_id, participant_id=me).event.claim_id == claim_id
    served = {"served_from": board.clock, "served_until": board.clock + TICK / 2, "note": "米已送到"}
    board.tick()
    delivered = board.do(deliver, claim_id=claim_id, **served)
    assert board.do(deliver, claim_id=claim_id, **served).event.id == delivered.event.id

    first = board.do(confirm, claim_id=claim_id, rating=4)
    before = row_counts(session)
    again = board.do(confirm, claim_id=claim_id, rating=4)
    assert (again.replayed, again.event.id, again.recorded) == (True, first.event.id, ())
    assert row_counts(session) == before
    assert balance(session, me) == MICRO_WISH_POINTS
    assert session.scalar(select(func.count()).select_from(OrderClaim)) == 1


# Units and teams ---------------------------------------------------------------------------------


def test_a_unit_earns_for_claiming_a_project_and_for_completing_it_with_the_staff_it_sent(
    session, board, unit, make_resident
):
    staff = [make_resident(name=name).participant_id for name in ("物业甲", "物业乙", "物业丙")]
    project = board.post(
        kind="co_building_project",
        title="楼道照明改造",
        activity_type="unit_project_completed",
        beneficiary_group="community",
        beneficiary_name=None,
    )
    claimed = board.do(claim_order, order_id=project, participant_id=unit)
    [award] = claimed.recorded
    assert (award.activity.activity_type, award.transaction.breakdown["points"]) == ("unit_claim", 30)
    assert award.activity.recorded_by_id != board.staff_id  # granted by rule, recorded by the system user
    board.deliver(claimed.event.claim_id, served_by=staff)
    board.tick()
    confirmed = board.do(confirm, claim_id=claimed.event.claim_id)
    assert [(r.activity.activity_type, r.activity.quantity, r.transaction.breakdown["points"]) for r in confirmed.recorded] == [
        ("unit_project_completed", None, 100),
        ("unit_staff_sent", 3, 15),
    ]
    assert balance(session, unit) == 30 + 100 + 15
    assert all(balance(session, person) == 0 for person in staff)
    [points] = unit_points_by_kind(session, org=session.get(OrgNode, board.street.street), year=2026)
    assert points.by_kind == {"unit_project_completed": 100, "unit_claim": 30, "unit_staff_sent": 15}


def test_a_unit_that_withdraws_gives_back_its_claim_points(session, board, unit):
    need = board.post(kind="service_need", title="修单元门", activity_type="unit_project_completed", claimant_kind="unit")
    claim_id = board.claim(need, participant_id=unit)
    assert balance(session, unit) == 30
    board.do(withdraw, claim_id=claim_id)
    assert balance(session, unit) == 0
    reversal = session.execute(select(Transaction).where(Transaction.kind == "reverse")).scalar_one()
    assert "claim withdrawn" in reversal.memo


def test_a_unit_that_spent_its_claim_points_cannot_withdraw_until_it_has_them(session, board, unit, actor_id):
    need = board.post(kind="service_need", title="修单元门", activity_type="unit_project_completed", claimant_kind="unit")
    claim_id = board.claim(need, participant_id=unit)
    account_id = participant_account(session, unit).id
    board.write(lambda: spend(session, actor_id=actor_id, org_id=board.street.community, account_id=account_id, amount=25, key="s"))
    short = board.refuse(withdraw, InsufficientBalance, claim_id=claim_id)
    assert "gives back the 30 points" in short.message and "has 5" in short.message


def test_a_team_claim_is_served_by_the_members_it_names_and_each_earns(session, board, team, make_resident):
    team_id, (first, second, third) = team
    order_id = board.post(claimant_kind="team", title="陪王奶奶看病")
    claim_id = board.claim(order_id, team_id=team_id)
    assert board.refuse(deliver, InvalidInput, **board.delivery(claim_id)).field == "served_by"
    outsider = make_resident(name="路人").participant_id
    not_member = board.refuse(deliver, InvalidInput, **board.delivery(claim_id, served_by=[first, outsider]))
    assert not_member.field == "served_by[1]"
    board.deliver(claim_id, served_by=[second, first])
    confirmed = board.do(confirm, claim_id=claim_id)
    assert [r.activity.participant_id for r in confirmed.recorded] == sorted([first, second])
    assert [balance(session, member) for member in (first, second, third)] == [20, 20, 0]
    assert order_view(session, order_id).claims[0].name == "红马甲"


# The deadline job ---------------------------------------------------------------------------------


def test_an_overdue_claim_is_penalised_once_and_running_again_for_the_day_writes_nothing(
    session, board, make_resident, actor_id, default_rules
):
    me = make_resident().participant_id
    board.write(lambda: earn(session, actor_id, board.street.community, participant_account(session, me).id, 25, dt.date(2026, 11, 1)))
    order_id = board.post()
    claim_id = board.claim(order_id, participant_id=me)

    early = board.close(as_of=DEADLINE - dt.timedelta(days=1))
    not_over = board.close(now=at("2026-11-20 23:00"))
    assert early.claims_overdue == not_over.claims_overdue == 0
    assert state_of(session, order_id) is OrderState.CLAIMED

    run = board.close()
    assert (run.claims_overdue, run.claims_penalised, run.points_taken, run.orders_expired) == (1, 1, 10, 1)
    assert "1 claims overdue, 1 penalised for 10 points" in run.describe()
    assert (state_of(session, order_id), claim_states(session, order_id)) == (
        OrderState.EXPIRED,
        {claim_id: ClaimState.OVERDUE},
    )
    assert balance(session, me) == 15
    overdue = order_view(session, order_id).history[-2].event
    penalty = session.get(Transaction, overdue.transaction_id)
    assert (penalty.kind, penalty.business_date, penalty.rule_set_version_id) == ("penalty", DEADLINE, default_rules)
    assert penalty.breakdown == {
        "rule": "penalties.order_not_delivered",
        "rule_set_version": 1,
        "rule_set_org": "D",
        "penalty": 10,
        "balance_before": 25,
        "below_zero": "skip",
        "points": 10,
        "order": order_id,
        "claim": claim_id,
        "deadline": "2026-11-20",
    }

    before = row_counts(session)
    assert board.close() == type(run)(DEADLINE)
    assert board.close(as_of=DEADLINE + dt.timedelta(days=3), now=AFTER_DEADLINE + dt.timedelta(days=3)).claims_overdue == 0
    assert row_counts(session) == before


@pytest.mark.parametrize(("policy", "taken"), [("skip", 0), ("cap_at_balance", 4)])
def test_a_penalty_never_takes_a_balance_below_zero(session, board, desk, make_resident, actor_id, policy, taken):
    desk.publish(board.street.street, {"penalties.below_zero": policy})
    me = make_resident().participant_id
    board.write(lambda: earn(session, actor_id, board.street.community, participant_account(session, me).id, 4, dt.date(2026, 11, 1)))
    order_id = board.post()
    board.claim(order_id, participant_id=me)
    run = board.close()
    assert (run.claims_overdue, run.points_taken, balance(session, me)) == (1, taken, 4 - taken)
    overdue = order_view(session, order_id).history[-2].event
    if taken:
        breakdown = session.get(Transaction, overdue.transaction_id).breakdown
        assert (breakdown["below_zero"], breakdown["balance_before"], breakdown["points"]) == (policy, 4, 4)
    else:
        assert overdue.transaction_id is None and "not taken: balance 4, below_zero skip" in overdue.note


def test_an_order_with_a_delivery_is_closed_and_the_delivery_can_still_be_confirmed(session, board, make_resident):
    delivering, idle = make_resident().participant_id, make_resident(name="周四").participant_id
    order_id = board.post(capacity=3)
    delivered = board.claim(order_id, participant_id=delivering)
    forgotten = board.claim(order_id, participant_id=idle)
    board.deliver(delivered)
    run = board.close()
    assert (run.claims_overdue, run.points_taken, run.orders_closed, run.orders_expired) == (1, 0, 1, 0)
    assert state_of(session, order_id) is OrderState.DELIVERED
    latecomer = make_resident(name="迟到").participant_id
    late = board.refuse(claim_order, order_id=order_id, participant_id=latecomer, now=AFTER_DEADLINE)
    assert late.details["state"] == "delivered"
    board.do(confirm, claim_id=delivered, now=AFTER_DEADLINE)
    assert claim_states(session, order_id) == {delivered: ClaimState.CONFIRMED, forgotten: ClaimState.OVERDUE}
    assert state_of(session, order_id) is OrderState.CONFIRMED


def test_a_claim_rejected_after_its_order_closed_is_made_overdue_by_the_next_run(session, board, make_resident, actor_id):
    me = make_resident().participant_id
    board.write(lambda: earn(session, actor_id, board.street.community, participant_account(session, me).id, 30, dt.date(2026, 11, 1)))
    order_id = board.post()
    claim_id = board.claim(order_id, participant_id=me)
    board.deliver(claim_id)
    assert board.close().orders_closed == 1
    board.do(reject, claim_id=claim_id, reason="没有送到", now=AFTER_DEADLINE)
    run = board.close(as_of=DEADLINE + dt.timedelta(days=1), now=AFTER_DEADLINE + dt.timedelta(days=1))
    assert (run.claims_overdue, run.points_taken, run.orders_closed) == (1, 10, 0)
    assert (claim_states(session, order_id), balance(session, me)) == ({claim_id: ClaimState.OVERDUE}, 20)


def test_a_teams_overdue_claim_is_recorded_without_a_penalty(session, board, team):
    team_id, members = team
    order_id = board.post(claimant_kind="team")
    board.claim(order_id, team_id=team_id)
    run = board.close()
    assert (run.claims_overdue, run.claims_penalised) == (1, 0)
    assert order_view(session, order_id).history[-2].event.note == "a team has no points account: no penalty"


# Lists ------------------------------------------------------------------------------------------------


def test_the_public_listing_shows_open_orders_near_a_participant_with_the_beneficiary_masked(session, board, make_resident):
    me = make_resident(board.street.grid).participant_id
    in_grid = board.post(org_id=board.street.grid, title="帮忙修水管")
    in_community = board.post(title="陪读", beneficiary_group="left_behind_child", beneficiary_name="刘小",)
    board.post(org_id=board.street.subgrid, title="另一个微网格")
    board.post(org_id=board.street.other_community, title="别的社区")
    board.post(publish=False, title="草稿")
    board.post(claimant_kind="team", title="只给服务队")
    full = board.post(title="已满")
    board.claim(full, participant_id=make_resident(name="周四").participant_id)
    held = board.post(title="我已认领", capacity=2)
    board.claim(held, participant_id=me)
    board.post(title="快截止", deadline=board.clock + 2 * TICK)

    listed = open_orders_near(session, me, board.tick() + TICK)
    assert [(o.order_id, o.beneficiary, o.beneficiary_group, o.places_left) for o in listed] == [
        (in_grid, "王**", "elderly_living_alone", 1),
        (in_community, "刘*", "left_behind_child", 1),
    ]
    assert "王秀英" not in repr(listed) and "13800000000" not in repr(listed)


def test_staff_list_the_orders_of_their_subtree_by_state(session, board, make_resident):
    claimed = board.post(org_id=board.street.grid)
    board.claim(claimed, participant_id=make_resident().participant_id)
    published = board.post()
    draft = board.post(publish=False)
    board.post(org_id=board.street.other_community)
    community = session.get(OrgNode, board.street.community)
    assert [(s.order.id, s.state) for s in orders_by_state(session, community)] == [
        (claimed, OrderState.CLAIMED),
        (published, OrderState.PUBLISHED),
        (draft, OrderState.DRAFT),
    ]
    assert [s.order.id for s in orders_by_state(session, community, "published")] == [published]
    assert [s.order.id for s in orders_by_state(session, session.get(OrgNode, board.street.grid))] == [claimed]
    with pytest.raises(InvalidInput, match="state"):
        orders_by_state(session, community, "lost")


def test_claim_counts_give_each_unit_and_party_member_their_claims_completions_and_overdue(
    session, board, unit, make_party_member, make_resident
):
    member, volunteer = make_party_member(), make_resident().participant_id
    done = board.post(capacity=3)
    for claimant in (member, volunteer):
        board.deliver(board.claim(done, participant_id=claimant))
    board.do(confirm, claim_id=order_view(session, done).claims[0].claim_id)
    board.claim(board.post(), participant_id=member)
    withdrawn = board.claim(board.post(), participant_id=member)
    board.do(withdraw, claim_id=withdrawn)
    board.claim(board.post(kind="co_building_project", activity_type="unit_project_completed", beneficiary_group="community"), participant_id=unit)
    board.close()

    counts = claim_counts(session, session.get(OrgNode, board.street.street), 2026)
    assert [(c.name, c.category, c.employer, c.claims, c.completed, c.overdue) for c in counts] == [
        ("锦绣物业", "unit", None, 1, 0, 1),
        ("张党员", "party_member", "区税务局", 2, 1, 1),
    ]
    assert claim_counts(session, session.get(OrgNode, board.street.street), 2025) == []


# Many claimants at once --------------------------------------------------------------------------------


def test_sixteen_claimants_racing_for_three_places_exactly_three_win(app, session, board, make_resident):
    order_id = board.post(capacity=3)
    claimants = [make_resident(name=f"抢单{n}").participant_id for n in range(16)]
    now = board.tick()

    def claimant(participant_id: int):
        def work():
            try:
                write_transaction(
                    lambda: claim_order(
                        db.session,
                        actor=db.session.get(AppUser, board.staff_id),
                        order_id=order_id,
                        participant_id=participant_id,
                        now=now,
                    )
                )
                yield "claimed"
            except TransitionRefused as refusal:
                yield refusal.message

        return work

    outcomes = run_at_once(app, [claimant(participant_id) for participant_id in claimants])
    assert outcomes == Counter({"claimed": 3, "every place on this order is taken (it is claimed)": 13})
    db.session.rollback()
    assert session.scalar(select(func.count()).select_from(OrderClaim)) == 3
    assert (state_of(session, order_id), order_view(session, order_id).places_left) == (OrderState.CLAIMED, 0)


# Random sequences --------------------------------------------------------------------------------------

#: Steps drawn, weighted towards the usual course so that claims get as far as confirmation.
ACTIONS = ("claim",) * 3 + ("deliver",) * 3 + ("confirm",) * 3 + ("withdraw", "reject", "cancel")
PENALTY = 10
#: What each resident holds at the start, so that a first penalty is taken and a second one skipped.
OPENING = 15


@dataclass
class ModelClaim:
    order: int
    claimant: int
    state: str = "claimed"
    #: Whether its last step was a rejection: asking again with the same reason repeats it.
    rejected: bool = False


#: The claim state each step needs, and the one it leaves.
NEEDS = {"withdraw": "claimed", "deliver": "claimed", "confirm": "delivered", "reject": "delivered"}
LEAVES = {"withdraw": "withdrawn", "deliver": "delivered", "confirm": "confirmed", "reject": "claimed"}


@settings(max_examples=8)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 7), st.integers(0, 2)), min_size=6, max_size=20))
def test_any_sequence_of_actions_posts_the_points_of_confirmed_claims_minus_penalties(
    session, write, street, actor_id, default_rules, make_resident, steps
):
    """A small model says which steps succeed; at the end each resident holds 20 per confirmation less the penalties."""
    board = Board(session, write, street, actor_id)
    people = [make_resident(name=f"随机{n}").participant_id for n in range(3)]
    for person in people:
        account_id = participant_account(session, person).id
        write(lambda: earn(session, actor_id, street.community, account_id, OPENING, dt.date(2026, 11, 1)))
    orders = [board.post(capacity=1), board.post(capacity=2)]
    cancelled: set[int] = set()
    claims: list[tuple[int, ModelClaim]] = []

    def holding(order: int) -> list[ModelClaim]:
        return [c for _, c in claims if c.order == order and c.state in ("claimed", "delivered", "confirmed")]

    for action, which, person in steps:
        if action in ("claim", "cancel"):
            order = orders[which % 2]
            if action == "claim":
                mine = [c for c in holding(order) if c.claimant == people[person]]
                allowed = bool(mine) or (order not in cancelled and len(holding(order)) < (1 if order == orders[0] else 2))
                work = board.work(claim_order, order_id=order, participant_id=people[person])
            else:
                allowed = order in cancelled or all(c.state != "confirmed" for _, c in claims if c.order == order)
                work = board.work(cancel_order, order_id=order, reason="取消")
        elif claims:
            claim_id, model = claims[which % len(claims)]
            repeats = model.state == LEAVES[action] and (action != "reject" or model.rejected) and action != "deliver"
            allowed = repeats or (model.order not in cancelled and model.state == NEEDS[action])
            now = board.tick()
            served = {"served_from": now - TICK / 2, "served_until": now - TICK / 5, "note": "已完成"}
            arguments = {"deliver": served, "reject": {"reason": "不合格"}}.get(action, {})
            work = board.work({"withdraw": withdraw, "deliver": deliver, "confirm": confirm, "reject": reject}[action], claim_id=claim_id, now=now, **arguments)
        else:
            continue
        try:
            step = write(work)
        except LedgerError as refusal:
            assert not allowed, (action, which, person, refusal.message)
            continue
        assert allowed, (action, which, person)
        if action == "claim" and not step.replayed:
            claims.append((step.event.claim_id, ModelClaim(order, people[person])))
        elif action == "cancel":
            cancelled.add(order)
        elif action != "claim":
            assert step.replayed == repeats
            model.state, model.rejected = LEAVES[action], action == "reject"

    points = {
        person: OPENING + MICRO_WISH_POINTS * sum(c.state == "confirmed" for _, c in claims if c.claimant == person)
        for person in people
    }
    for _, model in sorted(claims, key=lambda pair: (pair[1].order, pair[0])):
        if model.state == "claimed" and model.order not in cancelled:
            points[model.claimant] -= PENALTY if points[model.claimant] >= PENALTY else 0
            model.state = "overdue"
    board.close()
    assert {person: balance(session, person) for person in people} == points
    for order in orders:
        assert {claim_id: str(state) for claim_id, state in claim_states(session, order).items()} == {
            claim_id: model.state for claim_id, model in claims if model.order == order
        }
    assert verify_ledger(session).ok


# The command line ----------------------------------------------------------------------------------


def test_the_order_commands_run_a_micro_wish_from_posting_to_points(session, runner, default_rules, make_volunteer):
    make_volunteer()  # V00001 claims
    make_volunteer(name="周四")  # V00002 looks for open orders
    deadline = (utc_now() + dt.timedelta(days=30)).date().isoformat()
    posted = runner.invoke(
        args=["orders", "post", "--org", "C1", "--kind", "micro_wish", "--title", "给王奶奶买米", "--type", "micro_wish",
              "--deadline", deadline, "--for", "elderly_living_alone", "--beneficiary", "王秀英", "--publish", "--as", "staff"]
    )
    assert posted.exit_code == 0, posted.output
    assert "Order 1 is published, 1 of 1 places left." in posted.output
    assert "王**" in runner.invoke(args=["orders", "open", "--volunteer", "V00002"]).output

    claimed = runner.invoke(args=["orders", "claim", "1", "--volunteer", "V00001"])
    assert claimed.exit_code == 0 and "Claim 1 on order 1: claimed" in claimed.output, claimed.output
    posted_at = session.get(ServiceOrder, 1).created_at
    delivered = runner.invoke(
        args=["orders", "deliver", "1", "--from", posted_at.isoformat(), "--to", utc_now().isoformat(), "--note", "米已送到"]
    )
    assert delivered.exit_code == 0 and "Order 1 is delivered" in delivered.output, delivered.output
    confirmed = runner.invoke(args=["orders", "confirm", "1", "--rating", "5", "--as", "staff"])
    assert confirmed.exit_code == 0 and "李明: micro_wish +" in confirmed.output, confirmed.output
    again = runner.invoke(args=["orders", "confirm", "1", "--rating", "5", "--as", "staff"])
    assert "confirmed (already recorded)" in again.output

    shown = runner.invoke(args=["orders", "show", "1"])
    assert shown.exit_code == 0
    for text in ("confirmed · 0 of 1 places left", "王秀英", "claim 1: 李明 (person", "rating 5", "delivered"):
        assert text in shown.output, shown.output
    listed = runner.invoke(args=["orders", "list", "--org", "C1", "--state", "confirmed"])
    assert "1 orders" in listed.output and "给王奶奶买米" in listed.output
    refused_again = runner.invoke(args=["orders", "claim", "1", "--volunteer", "V00002"])
    assert refused_again.exit_code == 1 and "every place on this order is taken" in refused_again.output
    counts = runner.invoke(args=["orders", "counts", "--org", "S", "--year", "2026"])
    assert counts.exit_code == 0 and "0 units and party members" in counts.output


def test_the_order_commands_withdraw_reject_cancel_and_close_overdue(session, runner, board, make_volunteer, make_resident):
    make_volunteer()  # V00001
    now = utc_now()
    past = dt.datetime.combine((now - dt.timedelta(days=2)).date(), dt.time(12), dt.timezone.utc)
    order_id = board.post(deadline=past, now=past - dt.timedelta(days=3))
    board.do(claim_order, order_id=order_id, participant_id=make_resident(name="拖延").participant_id, now=past - dt.timedelta(days=2))
    closed = runner.invoke(args=["orders", "close-overdue", "--as-of", past.date().isoformat()])
    assert closed.exit_code == 0 and "1 claims overdue" in closed.output and "1 orders expired" in closed.output, closed.output
    assert "0 claims overdue" in runner.invoke(args=["orders", "close-overdue", "--as-of", past.date().isoformat()]).output

    draft = runner.invoke(
        args=["orders", "post", "--org", "C1-G1", "--kind", "service_need", "--title", "修水管", "--type", "volunteer_service",
              "--deadline", (now + dt.timedelta(days=7)).date().isoformat(), "--capacity", "2"]
    )
    assert "Order 2 is draft" in draft.output, draft.output
    assert "Order 2: published" in runner.invoke(args=["orders", "publish", "2"]).output
    assert runner.invoke(args=["orders", "claim", "2", "--volunteer", "V00001"]).exit_code == 0
    assert "Claim 2 on order 2: withdrawn" in runner.invoke(args=["orders", "withdraw", "2"]).output
    assert runner.invoke(args=["orders", "claim", "2", "--volunteer", "V00001"]).exit_code == 0
    bad_time = runner.invoke(args=["orders", "deliver", "3", "--from", "昨天", "--to", "今天", "--note", "修好了"])
    assert bad_time.exit_code == 1 and "served_from" in bad_time.output
    start = session.get(ServiceOrder, 2).created_at.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    delivered = runner.invoke(
        args=["orders", "deliver", "3", "--from", start.isoformat(), "--to", utc_now().isoformat(), "--note", "修好了"]
    )
    assert delivered.exit_code == 0, delivered.output
    assert "rejected" in runner.invoke(args=["orders", "reject", "3", "--reason", "还在漏水"]).output
    cancelled = runner.invoke(args=["orders", "cancel", "2", "--reason", "物业已修"])
    assert "Order 2: cancelled" in cancelled.output and "Order 2 is cancelled" in cancelled.output
