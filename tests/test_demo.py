"""The demo street and its season: promised sizes and variety, a second load that adds nothing, a ledger that verifies.

Loading the whole season takes a while (every activity goes through the recording service), so
the tests that do not need it load the street alone or the season's first days (``through``), and
one test, on SQLite, loads the whole season through ``ledger demo`` and checks all it promises.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter, defaultdict

import pytest
from sqlalchemy import func, select

from ledger import identity
from ledger.db import db
from ledger.demo import (
    CANCELLED_VISIT,
    CARRY_OVER_DATE,
    COMMUNITIES,
    COMMUNITY_REWARDS,
    DEMO_PASSWORD,
    DONATION,
    ELDERLY_AGE,
    ENTERED_AT,
    ORDER_SCRIPT,
    PASSBOOK_POINTS,
    PRIORITY_REWARD,
    SEASON,
    SHELF_OPENS,
    STREET_CODE,
    PlannedCorrection,
    PlannedEvent,
    PlannedReport,
    PlannedService,
    ShelfCandidate,
    Tally,
    load_demo,
    plan_redemptions,
    plan_residents,
    plan_season,
)
from ledger.errors import Conflict
from ledger.models import (
    Account,
    AccountKind,
    Activity,
    ActivityReview,
    ActivitySource,
    CoBuildingUnit,
    EmployerUnit,
    OrderEvent,
    OrgKind,
    OrgNode,
    Participant,
    PartyMember,
    PeriodKind,
    PeriodTotal,
    Posting,
    Redemption,
    RedemptionStatus,
    Reward,
    RuleSetVersion,
    ServiceOrder,
    StockMovement,
    StockReason,
    Team,
    TeamMember,
    Transaction,
    TransactionKindCode,
    UnitKind,
    Volunteer,
    utc_now,
)
from ledger.order_flow import Happening, OrderState
from ledger.ruleset_schema import default_rules_text, parse_rule_set
from ledger.verify import verify_ledger

DEFAULT_RULES = parse_rule_set(default_rules_text())
#: The season's first ten days: the New Year holidays, a make-up working Sunday, workdays, a weekend.
FIRST_DAYS = dt.date(2026, 1, 10)

#: The table each line of the summary counts (the demo is all a fresh database holds).
SUMMARY_TABLES = {
    "org_nodes": "org_node",
    "volunteers": "volunteer",
    "party_members": "party_member",
    "employer_units": "employer_unit",
    "co_building_units": "co_building_unit",
    "teams": "team",
    "team_members": "team_member",
    "rule_set_versions": "rule_set_version",
    "events": "service_event",
    "activities": "activity",
    "rewards": "reward",
    "redemptions": "redemption",
    "orders": "service_order",
}


@pytest.fixture
def load(app, session, write):
    """Return a callable that loads the demo in one committed write and returns the summary.

    It loads the street alone unless ``through`` names a later day of the season.
    """

    def run(seed: int = 2026, through: dt.date = CARRY_OVER_DATE):
        return write(
            lambda: load_demo(session, seed=seed, id_number_key=app.config["LEDGER_ID_NUMBER_KEY"], through=through)
        )

    return run


def count(session, statement) -> int:
    return session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def row_counts(session) -> dict[str, int]:
    return {
        table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    }


def assert_summary_counts_the_tables(session, summary) -> None:
    counts = row_counts(session)
    for name, table in SUMMARY_TABLES.items():
        assert getattr(summary, name) == Tally(total=counts[table], new=counts[table]), name
    openings = count(session, select(Transaction).where(Transaction.kind == TransactionKindCode.OPENING_BALANCE))
    assert summary.opening_balances == Tally(total=openings, new=openings)


def earn_breakdowns(session) -> list[dict]:
    return list(
        session.execute(
            select(Transaction.breakdown).where(
                Transaction.kind == TransactionKindCode.EARN, Transaction.activity_id.is_not(None)
            )
        ).scalars()
    )


def test_the_same_seed_plans_the_same_residents_with_valid_id_numbers():
    residents = plan_residents(2026)

    assert plan_residents(2026) == residents
    assert plan_residents(7) != residents
    id_numbers = [resident.id_number for resident in residents]
    assert len(set(id_numbers)) == len(id_numbers)
    assert all(identity.normalise_id_number(number) == number for number in id_numbers)
    births = [identity.birth_date(number) for number in id_numbers]
    assert min(births) >= dt.date(1950, 1, 1)
    assert sum(born > dt.date(2008, 11, 30) for born in births) >= 3  # a few teenagers volunteer


def planned_periods(steps) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Return each participant's planned service as (start, end), as first entered (before any correction)."""
    periods = defaultdict(list)
    for step in steps:
        if isinstance(step, PlannedEvent):
            for who, late in step.attendees:
                periods[who].append((late or step.started_at, step.ended_at))
        elif not isinstance(step, PlannedCorrection):
            service = step.service if isinstance(step, PlannedReport) else step
            periods[service.who].append((service.started_at, service.ended_at))
    return periods


@pytest.mark.parametrize("seed", [2026, 7])
def test_the_season_plan_is_repeatable_in_season_and_overlaps_nobody(seed):
    residents = plan_residents(seed)
    steps = plan_season(residents, seed)

    assert plan_season(residents, seed) == steps
    assert [step.when for step in steps] == sorted(step.when for step in steps)
    assert len({step.key for step in steps}) == len(steps)
    for who, periods in planned_periods(steps).items():
        periods.sort()
        assert all(SEASON[0] <= start.date() and end <= ENTERED_AT for start, end in periods), who
        assert all(end <= next_start for (_, end), (next_start, _) in zip(periods, periods[1:])), who
    corrections = [step for step in steps if isinstance(step, PlannedCorrection)]
    assert len(corrections) == 1
    assert corrections[0].original.started_at < corrections[0].ended_at < corrections[0].original.ended_at
    assert corrections[0].when.date() <= SEASON[1]


def test_the_season_plan_has_the_promised_variety():
    steps = plan_season(plan_residents(2026), 2026)

    events = [step for step in steps if isinstance(step, PlannedEvent)]
    services = [step for step in steps if isinstance(step, PlannedService)]
    reports = [step for step in steps if isinstance(step, PlannedReport)]
    activities = len(services) + len(reports) + 1 + sum(len(event.attendees) for event in events)
    assert 1500 <= activities <= 2500
    planned_types = {service.activity_type for service in services} | {event.activity_type for event in events}
    assert planned_types == set(DEFAULT_RULES.activity_types)
    event_days = Counter(DEFAULT_RULES.calendar.day_kind(event.started_at.date()) for event in events)
    assert event_days["holiday"] >= 6 and event_days["weekend"] >= 20
    night = [event for event in events if "emergency" in event.tags]
    assert night and all(event.started_at.hour == 22 for event in night)
    assert sum(late is not None for event in events for _, late in event.attendees) > 50
    assert sorted([(report.approved, bool(report.reason)) for report in reports], key=str) == [
        (False, True),
        (None, False),
        (True, False),
    ]
    assert len({report.service.who for report in reports}) == 1
    assert max(reports, key=lambda report: report.when).approved is None  # the latest waits


def test_the_shelf_plan_is_affordable_within_limits_and_stars_and_has_every_outcome():
    ages = {"old": dt.date(1955, 3, 1), "young": dt.date(1990, 5, 5)}
    candidates = tuple(
        ShelfCandidate(f"{community.code}-{n}", f"DEMO-V{order}{n:04d}", community.code, ages[age], points, stars)
        for order, community in enumerate(COMMUNITIES)
        for n, (age, points, stars) in enumerate([("old", 900, 1), ("young", 300, 0), ("young", 0, 0)])
    )
    plan = plan_redemptions(candidates, 2026)

    assert plan_redemptions(candidates, 2026) == plan
    assert len({planned.key for planned in plan}) == len(plan)
    who = {candidate.who: candidate for candidate in candidates}
    rewards = {reward.name: reward for reward in (*COMMUNITY_REWARDS, PRIORITY_REWARD)}
    spent, taken = Counter(), Counter()
    for planned in plan:
        person, reward = who[planned.who], rewards[planned.reward]
        assert planned.shelf in (STREET_CODE, person.community)
        assert person.star_level >= reward.min_star_level
        moments = [planned.requested_at, planned.fulfilled_at, planned.cancelled_at]
        assert SHELF_OPENS <= planned.requested_at.date() and all(m <= ENTERED_AT for m in moments if m)
        spent[planned.who] += reward.price_points * planned.quantity
        month = planned.requested_at.date().replace(day=1) if reward.limit_period == "month" else None
        taken[planned.who, reward.name, month] += planned.quantity
    assert all(points <= who[person].points for person, points in spent.items())
    assert all(n <= (rewards[name].per_person_limit or n) for (_, name, _), n in taken.items())
    (cancelled,) = [planned for planned in plan if planned.cancelled_at]
    community, _, reward, _, reason = CANCELLED_VISIT
    assert (cancelled.shelf, cancelled.reward, cancelled.cancel_reason) == (community, reward, reason)
    assert any(planned.fulfilled_at is None and planned.cancelled_at is None for planned in plan)
    (priority,) = [planned for planned in plan if planned.shelf == STREET_CODE]
    assert who[priority.who].born == ages["old"] and priority.fulfilled_at
    assert {planned.reward for planned in plan} == set(rewards)


def test_demo_loads_a_street_with_the_promised_sizes_and_passbook_balances(session, load):
    summary = load()

    communities = session.execute(select(OrgNode).where(OrgNode.kind == OrgKind.COMMUNITY)).scalars().all()
    assert len(communities) == 3
    levels = set(session.execute(select(OrgNode.grid_level).where(OrgNode.kind == OrgKind.GRID)).scalars())
    assert levels == {1, 2, 3}
    assert count(session, select(Volunteer)) >= 200
    assert count(session, select(PartyMember)) >= 20
    assert count(session, select(PartyMember.employer_unit_id).distinct()) >= 5
    assert count(session, select(EmployerUnit)) >= 5
    assert_employers_say_how_many_party_members_they_have_but_one(session)
    assert count(session, select(CoBuildingUnit)) >= 10
    assert set(session.execute(select(CoBuildingUnit.unit_kind)).scalars()) == set(UnitKind)
    both = select(PartyMember).join(Volunteer, Volunteer.participant_id == PartyMember.participant_id)
    assert count(session, both) > 0
    assert {team.org_id for team in session.execute(select(Team)).scalars()} == {c.id for c in communities}
    assert count(session, select(TeamMember)) > 0
    assert count(session, select(Activity)) == 0  # the street alone: its season is not loaded
    assert_summary_counts_the_tables(session, summary)
    assert_opening_balances_come_from_the_volunteers_community(session)


def assert_employers_say_how_many_party_members_they_have_but_one(session) -> None:
    """So that the annual evaluation shows report-in rates, and what it says where one is unknown."""
    reported_in = dict(
        session.execute(select(PartyMember.employer_unit_id, func.count()).group_by(PartyMember.employer_unit_id)).all()
    )
    employers = session.execute(select(EmployerUnit)).scalars().all()
    assert [e.name for e in employers if e.party_members_employed is None] == ["示范区第一中学"]
    for employer in employers:
        assert employer.party_members_employed is None or employer.party_members_employed >= reported_in[employer.id]
    assert any(e.party_members_employed is not None and e.party_members_employed > reported_in[e.id] for e in employers)


def assert_opening_balances_come_from_the_volunteers_community(session) -> None:
    transactions = session.execute(
        select(Transaction).where(Transaction.kind == TransactionKindCode.OPENING_BALANCE)
    ).scalars().all()
    volunteers = count(session, select(Volunteer))
    assert 0.6 * volunteers <= len(transactions) <= 0.7 * volunteers
    for transaction in transactions:
        assert transaction.org.kind == OrgKind.COMMUNITY
        assert transaction.business_date == CARRY_OVER_DATE
        source, target = sorted(transaction.postings, key=lambda posting: posting.amount)
        assert source.account.kind == AccountKind.OPENING_BALANCE
        assert source.account.org_id == transaction.org_id
        assert target.account.participant.org.community_id == transaction.org_id
        assert PASSBOOK_POINTS[0] <= target.amount <= PASSBOOK_POINTS[1]
    held = session.execute(
        select(func.sum(Account.balance)).where(Account.kind == AccountKind.PARTICIPANT)
    ).scalar_one()
    issued = session.execute(select(func.sum(Posting.amount)).where(Posting.amount > 0)).scalar_one()
    assert held == issued


def test_the_first_days_of_the_season_are_scored_by_the_default_rules_and_loading_it_again_adds_nothing(session, load):
    summary = load(through=FIRST_DAYS)

    district = session.execute(select(OrgNode).where(OrgNode.kind == OrgKind.DISTRICT)).scalar_one()
    (rules,) = session.execute(select(RuleSetVersion)).scalars()
    assert (rules.org_id, rules.effective_from) == (district.id, dt.date(2025, 1, 1))
    assert summary.events.total > 0 and summary.activities.total > summary.events.total
    assert_summary_counts_the_tables(session, summary)
    last_start = session.execute(select(func.max(Activity.started_at))).scalar_one()
    assert last_start.date() <= FIRST_DAYS
    breakdowns = earn_breakdowns(session)
    assert len(breakdowns) == summary.activities.total
    assert {b["inputs"]["day_kind"] for b in breakdowns} == {"holiday", "weekend", "workday"}
    assert verify_ledger(session).ok
    session.rollback()
    before = row_counts(session)

    again = load(through=FIRST_DAYS)

    assert row_counts(session) == before
    assert again.new == 0
    assert again.activities == Tally(total=summary.activities.total, new=0)
    assert "(0 new)" in again.describe()


def test_loading_another_seed_over_the_demo_is_refused_and_changes_nothing(session, load, runner):
    load()
    before = row_counts(session)

    with pytest.raises(Conflict, match="another seed"):
        load(seed=7)
    result = runner.invoke(args=["demo", "--seed", "7"])

    assert result.exit_code == 1
    assert "another seed" in result.output
    assert row_counts(session) == before


# The one load of the whole season and its shelves, ~30 s with the commands tried on it: on SQLite only, as it
# scores the same on both (its first days load on both).
@pytest.mark.sqlite_only
def test_ledger_demo_command_loads_a_season_with_all_it_promises_and_verifies(session, runner, client):
    result = runner.invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    activities = session.execute(select(Activity)).scalars().all()
    assert "志愿者 volunteers: 240 (240 new)" in result.output
    assert f"服务记录 activities: {len(activities)} ({len(activities)} new)" in result.output
    assert {activity.activity_type for activity in activities} == set(DEFAULT_RULES.activity_types)
    breakdowns = earn_breakdowns(session)
    assert {b["inputs"]["day_kind"] for b in breakdowns} == {"holiday", "weekend", "workday"}
    steps = Counter(step["step"] for b in breakdowns for step in b["steps"])
    assert steps["cap_month"] > 0 and steps["cap_year"] > 0 and steps["cap_activity"] > 0
    assert any(step.get("tag") == "emergency" for b in breakdowns for step in b["steps"])
    assert_one_correction_reversing_the_original(session)
    pending = assert_self_reports_approved_rejected_and_pending(session)
    assert f"activity {pending.id}, reported as demo-volunteer" in result.output
    met = party_members_meeting_the_requirement(session)
    assert 0 < met.count(False) < met.count(True)
    starred = assert_shelves_donation_and_redemptions(session, result.output)
    session.rollback()
    verified = runner.invoke(args=["verify", "--replay"])
    assert verified.exit_code == 0, verified.output
    assert f"Replayed {len(breakdowns)} scored entries" in verified.output and "OK" in verified.output
    simulated = runner.invoke(
        args=["rules", "simulate", "--org", "DEMO-S1", "--draft", "1", "--from", "2026-01-01", "--to", "2026-10-31"]
    )
    assert simulated.exit_code == 0 and "0 change" in simulated.output  # the rules in force change nobody
    try_the_standings_shelf_and_expiry_from_the_command_line(session, runner, starred)
    assert_orders_in_every_state(session, runner, result.output)
    try_an_order_from_posting_to_points_and_the_deadline_job_from_the_command_line(session, runner)
    try_the_readme_walkthrough_through_the_api(client)


def assert_shelves_donation_and_redemptions(session, output: str) -> str:
    """Check the shelves, the donation and every outcome of a redemption; return a volunteer with a star."""
    shelves = defaultdict(set)
    for code, name in session.execute(select(OrgNode.code, Reward.name).join(Reward, Reward.org_id == OrgNode.id)):
        shelves[code].add(name)
    community_shelf = {reward.name for reward in COMMUNITY_REWARDS}
    assert shelves == {**{c.code: community_shelf for c in COMMUNITIES}, STREET_CODE: {PRIORITY_REWARD.name}}
    rewards = sum(map(len, shelves.values()))
    assert f"爱心超市兑换品 rewards: {rewards} ({rewards} new)" in output

    unit, reward_name, quantity, value_yuan, day, _ = DONATION
    (donated,) = session.execute(select(StockMovement).where(StockMovement.reason == StockReason.DONATION)).scalars()
    assert donated.change == quantity and session.get(Reward, donated.reward_id).name == reward_name
    donation = session.execute(
        select(Activity).where(
            Activity.participant_id == donated.donor_id,
            Activity.activity_type == "unit_donation",
            Activity.quantity == value_yuan,
        )
    ).scalar_one()
    assert donation.participant.display_name == unit and donation.started_at.date() == day
    earned = session.execute(select(Transaction).where(Transaction.activity_id == donation.id)).scalar_one()
    assert earned.kind == TransactionKindCode.EARN and earned.breakdown["points"] > 0

    redemptions = session.execute(select(Redemption).order_by(Redemption.id)).scalars().all()
    assert f"积分兑换 redemptions: {len(redemptions)} ({len(redemptions)} new)" in output
    by_status = defaultdict(list)
    for redemption in redemptions:
        by_status[redemption.status].append(redemption)
        assert SHELF_OPENS <= redemption.requested_on and redemption.requested_at <= ENTERED_AT
    assert len(by_status[RedemptionStatus.FULFILLED]) > len(by_status[RedemptionStatus.REQUESTED]) > 0
    assert f"ledger redemptions fulfil {by_status[RedemptionStatus.REQUESTED][0].id}" in output
    (cancelled,) = by_status[RedemptionStatus.CANCELLED]
    assert cancelled.cancel_reason == CANCELLED_VISIT[4]
    assert f"cancelled redemptions (points refunded, stock returned): {cancelled.id}" in output
    refund = session.execute(
        select(Transaction).where(Transaction.reverses_id == cancelled.transaction_id)
    ).scalar_one()
    assert sum(posting.amount for posting in refund.postings if posting.account.participant_id) == cancelled.points
    moved = session.execute(
        select(StockMovement.reason, StockMovement.change).where(StockMovement.redemption_id == cancelled.id)
    ).all()
    assert sorted(moved) == [
        (StockReason.CANCELLATION, cancelled.quantity),
        (StockReason.REDEMPTION, -cancelled.quantity),
    ]
    (priority,) = [r for r in redemptions if r.reward.name == PRIORITY_REWARD.name]
    assert priority.status == RedemptionStatus.FULFILLED
    assert priority.participant.person.birth_date <= dt.date(2026 - ELDERLY_AGE, 10, 18)
    (starred, *_) = [r.participant for r in redemptions if r.reward.min_star_level > 0]
    return starred.person.volunteer.volunteer_number


def try_the_standings_shelf_and_expiry_from_the_command_line(session, runner, starred: str) -> None:
    """Rank, stars, titles, a redemption and its cancellation, expiry twice, then verify: all from the CLI."""
    ranked = runner.invoke(args=["rank", "--org", "DEMO-S1", "--period", "2026", "--limit", "5"])
    assert ranked.exit_code == 0 and "ranked" in ranked.output and "\n1 " in ranked.output, ranked.output
    stars = runner.invoke(args=["stars", "--volunteer", starred])
    assert stars.exit_code == 0 and "1 星 reached on 2026-" in stars.output, stars.output
    titles = runner.invoke(args=["titles", "--org", "DEMO-S1", "--year", "2026"])
    assert titles.exit_code == 0 and "excellent_volunteer" in titles.output and "✓" in titles.output, titles.output

    richest, community_id = session.execute(
        select(Volunteer.volunteer_number, OrgNode.community_id)
        .join(Account, Account.participant_id == Volunteer.participant_id)
        .join(OrgNode, OrgNode.id == Account.org_id)
        .order_by(Account.balance.desc(), Volunteer.volunteer_number)
        .limit(1)
    ).one()
    towels = session.execute(select(Reward.id).where(Reward.org_id == community_id, Reward.name == "毛巾")).scalar_one()
    session.rollback()
    redeemed = runner.invoke(args=["redeem", "--volunteer", richest, "--reward", str(towels), "--as", "demo-staff"])
    assert redeemed.exit_code == 0 and redeemed.output.startswith("Redemption "), redeemed.output
    redemption_id = redeemed.output.split()[1].rstrip(":")
    cancelled = runner.invoke(args=["redemptions", "cancel", redemption_id, "--reason", "领错了 wrong item"])
    assert cancelled.exit_code == 0 and "15 points refunded" in cancelled.output, cancelled.output

    expired = runner.invoke(args=["expire", "--as-of", "2027-01-01"])
    assert expired.exit_code == 0 and not expired.output.startswith("Expired 0 points"), expired.output
    again = runner.invoke(args=["expire", "--as-of", "2027-01-01"])
    assert again.exit_code == 0 and again.output.startswith("Expired 0 points from 0 of"), again.output
    verified = runner.invoke(args=["verify"])
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output


def assert_one_correction_reversing_the_original(session) -> None:
    (correction,) = session.execute(select(Activity).where(Activity.corrects_id.is_not(None))).scalars()
    assert correction.correction_reason
    original = session.get(Activity, correction.corrects_id)
    assert correction.ended_at < original.ended_at
    earns = {
        transaction.activity_id: transaction
        for transaction in session.execute(
            select(Transaction).where(
                Transaction.activity_id.in_([original.id, correction.id]), Transaction.kind == TransactionKindCode.EARN
            )
        ).scalars()
    }
    reversal = session.execute(select(Transaction).where(Transaction.reverses_id == earns[original.id].id)).scalar_one()
    assert reversal.service_minutes == -earns[original.id].service_minutes
    assert 0 < earns[correction.id].service_minutes < earns[original.id].service_minutes


def assert_self_reports_approved_rejected_and_pending(session) -> Activity:
    """Check the three self-reports and return the one still waiting for review."""
    reports = session.execute(select(Activity).where(Activity.source == ActivitySource.SELF_REPORT)).scalars().all()
    reviews = {review.activity_id: review for review in session.execute(select(ActivityReview)).scalars()}
    scored = set(
        session.execute(
            select(Transaction.activity_id).where(Transaction.activity_id.in_([report.id for report in reports]))
        ).scalars()
    )
    verdicts = [(reviews[r.id].approved if r.id in reviews else None, r.id in scored) for r in reports]
    assert sorted(verdicts, key=str) == [(False, False), (None, False), (True, True)]
    assert all(review.reason for review in reviews.values() if not review.approved)
    (pending,) = [report for report in reports if report.id not in reviews]
    return pending


def party_members_meeting_the_requirement(session) -> list[bool]:
    """Tell, for each party member, whether they served the rules' yearly minimum at home in the season."""
    rows = session.execute(
        select(func.sum(PeriodTotal.activity_count), func.sum(PeriodTotal.service_minutes))
        .join(Account, Account.id == PeriodTotal.account_id)
        .join(PartyMember, PartyMember.participant_id == Account.participant_id)
        .where(PeriodTotal.period == PeriodKind.MONTH, PeriodTotal.starts_on >= SEASON[0])
        .group_by(PartyMember.participant_id)
    ).all()
    least = DEFAULT_RULES.party_members
    assert len(rows) == count(session, select(PartyMember))
    return [activities >= least.min_activities and minutes >= least.min_hours * 60 for activities, minutes in rows]



def assert_orders_in_every_state(session, runner, output: str) -> None:
    """Check that each community's orders reach every state and that the demo's deadline job penalised once each."""
    orders = session.execute(select(ServiceOrder)).scalars().all()
    assert f"需求、微心愿与共建项目 orders: {len(orders)} ({len(orders)} new)" in output
    assert len(orders) == len(COMMUNITIES) * len(ORDER_SCRIPT)
    session.rollback()
    for community in COMMUNITIES:
        listed = runner.invoke(args=["orders", "list", "--org", community.code])
        assert listed.exit_code == 0 and {state.value for state in OrderState} <= set(listed.output.split()), listed.output
    overdue = session.execute(select(OrderEvent).where(OrderEvent.happening == Happening.OVERDUE)).scalars().all()
    assert len(overdue) == len(COMMUNITIES)  # the claim each community's script leaves undelivered by October
    penalties = [session.get(Transaction, event.transaction_id) for event in overdue if event.transaction_id]
    assert penalties and {penalty.kind for penalty in penalties} == {TransactionKindCode.PENALTY}
    assert "ledger orders confirm" in output and "try: ledger orders close-overdue --as-of 2026-11-20" in output


def try_an_order_from_posting_to_points_and_the_deadline_job_from_the_command_line(session, runner) -> None:
    """Staff post a micro-wish, a party member claims and delivers it, staff confirm: points, breakdown, rank."""
    member = session.execute(
        select(Participant.id)
        .join(PartyMember, PartyMember.participant_id == Participant.id)
        .join(OrgNode, OrgNode.id == Participant.org_id)
        .join(Account, Account.participant_id == Participant.id)
        .where(OrgNode.path.startswith(session.execute(select(OrgNode.path).where(OrgNode.code == "DEMO-C1")).scalar_one()))
        .where(~Participant.id.in_(select(Volunteer.participant_id)))
        .order_by(Account.balance.desc(), Participant.id)
        .limit(1)
    ).scalar_one()
    session.rollback()
    as_member = ["--participant", str(member)]
    rank = ["rank", "--org", "DEMO-C1", "--category", "party_member", "--period", "2026", *as_member]
    before = runner.invoke(args=["history", *as_member]).output
    rank_before = runner.invoke(args=rank).output

    posted = runner.invoke(
        args=[
            "orders", "post", "--org", "DEMO-C1", "--kind", "micro_wish", "--title", "给独居老人送一台收音机",
            "--type", "micro_wish", "--deadline", "2026-12-31", "--for", "elderly_living_alone",
            "--beneficiary", "钱桂芳", "--publish", "--as", "demo-staff",
        ]
    )
    assert posted.exit_code == 0 and "is published" in posted.output, posted.output
    order = session.execute(select(ServiceOrder).order_by(ServiceOrder.id.desc()).limit(1)).scalar_one()
    session.rollback()
    claimed = runner.invoke(args=["orders", "claim", str(order.id), *as_member, "--as", "demo-staff"])
    assert claimed.exit_code == 0, claimed.output
    claim_id = claimed.output.split()[1]
    # A delivery is reported once done: served from the posting until a moment ago.
    served_from, served_until = order.created_at, order.created_at + dt.timedelta(seconds=1)
    while utc_now() <= served_until:
        time.sleep(0.1)
    delivered = runner.invoke(
        args=[
            "orders", "deliver", claim_id, "--from", served_from.isoformat(), "--to", served_until.isoformat(),
            "--note", "收音机已送到 radio delivered", "--as", "demo-staff",
        ]
    )
    assert delivered.exit_code == 0 and "is delivered" in delivered.output, delivered.output
    confirmed = runner.invoke(args=["orders", "confirm", claim_id, "--rating", "5", "--as", "demo-staff"])
    points_line = re.search(r"micro_wish \+(\d+) points", confirmed.output)
    assert confirmed.exit_code == 0 and points_line, confirmed.output
    # Delivered just now: 20 points, or 120 % of them (24) at night, on a weekend or a holiday in Shanghai.
    earned = int(points_line.group(1))
    assert earned in (20, 24), confirmed.output
    again = runner.invoke(args=["orders", "confirm", claim_id, "--rating", "5", "--as", "demo-staff"])
    assert again.exit_code == 0 and "already recorded" in again.output, again.output

    after = runner.invoke(args=["history", *as_member]).output
    assert _points(after) == _points(before) + earned, (before, after)
    newest = after.splitlines()[1:5]
    assert f"+{earned}" in newest[0] and any("每次 20 分" in line for line in newest[1:]), after
    assert earned == 20 or any("×120%" in line for line in newest[1:]), after
    assert runner.invoke(args=rank).output != rank_before

    overdue = runner.invoke(args=["orders", "close-overdue", "--as-of", "2026-11-20"])
    assert overdue.exit_code == 0 and "3 claims overdue" in overdue.output, overdue.output
    again = runner.invoke(args=["orders", "close-overdue", "--as-of", "2026-11-20"])
    assert again.output.startswith("As of 2026-11-20: 0 claims overdue, 0 penalised"), again.output
    verified = runner.invoke(args=["verify"])
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output


def _points(history: str) -> int:
    """Return the balance the first line of ``ledger history`` shows: "name — 317 points (grid)"."""
    return int(history.split(" — ", 1)[1].split(" points", 1)[0])


def try_the_readme_walkthrough_through_the_api(client) -> None:
    """The README's steps: demo staff record an event for several volunteers; the volunteer sees it counted."""

    def sign_in(username: str) -> dict:
        signed_in = client.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
        assert signed_in.status_code == 201, signed_in.json
        return {"Authorization": f"Bearer {signed_in.json['token']}"}

    staff, volunteer = sign_in("demo-staff"), sign_in("demo-volunteer")
    me = client.get("/api/v1/auth/me", headers=volunteer).json["participant_id"]
    (community,) = client.get("/api/v1/orgs?kind=community", headers=staff).json["items"]
    listed = client.get("/api/v1/participants?category=volunteer&page_size=3", headers=staff).json["items"]
    attendees = [me, *[p["id"] for p in listed if p["id"] != me][:2]]
    before = client.get(f"/api/v1/participants/{me}/balance", headers=volunteer).json
    standing_before = client.get(f"/api/v1/orgs/{community['id']}/rankings/participants/{me}?period=2026", headers=volunteer)

    sheet = {
        "org_id": community["id"],
        "title": "周末环境整治",
        "activity_type": "environment_cleanup",
        "started_at": "2026-11-21T09:00:00+08:00",
        "ended_at": "2026-11-21T11:00:00+08:00",
        "attendees": [{"participant_id": participant_id} for participant_id in attendees],
    }
    recorded = client.post("/api/v1/events", json=sheet, headers={**staff, "Idempotency-Key": "walk-1"})
    assert recorded.status_code == 201 and len(recorded.json["activities"]) == 3, recorded.json
    replayed = client.post("/api/v1/events", json=sheet, headers={**staff, "Idempotency-Key": "walk-1"})
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json == recorded.json

    after = client.get(f"/api/v1/participants/{me}/balance", headers=volunteer).json
    assert after["balance"] > before["balance"] and after["service_minutes"] == before["service_minutes"] + 120
    (newest,) = client.get(f"/api/v1/participants/{me}/history?limit=1", headers=volunteer).json["items"]
    assert newest["amount"] == after["balance"] - before["balance"] and newest["explanation"], newest
    assert newest["breakdown"]["inputs"]["day_kind"] == "weekend"
    standing = client.get(f"/api/v1/orgs/{community['id']}/rankings/participants/{me}?period=2026", headers=volunteer)
    assert standing.status_code == 200 and standing.json["me"]["points"] > (standing_before.json["me"] or {}).get("points", 0)
    others = client.get(f"/api/v1/participants/{attendees[1]}/balance", headers=volunteer)
    assert others.status_code == 404  # another volunteer's account is not theirs to see
