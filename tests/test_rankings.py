"""Rankings, star levels and titles, read from period totals, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.activities import Service, record_activity
from ledger.models import AppUser, OrgNode
from ledger.orgs import create_org_node
from ledger.rankings import Period, own_rank, own_standing, parse_period, ranking, set_ranking_opt_out, star_record, title_reports
from ledger.errors import InvalidInput
from ledger.transactions import participant_account, reverse_transaction
from tests.helpers import earn, participant_of
from tests.conftest import valid_id_number

SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR_2026 = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
_keys = itertools.count(1)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", "2026-01-01", "2026-12-31"),
        ("2026-02", "2026-02-01", "2026-02-28"),
        ("2026Q3", "2026-07-01", "2026-09-30"),
        ("2026-03-05..2026-03-09", "2026-03-05", "2026-03-09"),
    ],
)
def test_periods_are_read_from_years_months_quarters_and_day_ranges(text, start, end):
    assert parse_period(text) == Period(dt.date.fromisoformat(start), dt.date.fromisoformat(end))


@pytest.mark.parametrize("text", ["26", "2026-13", "2026Q5", "2026-03-09..2026-03-05", "2025-01-01..2026-06-01", "last year"])
def test_a_period_that_cannot_be_read_is_refused_naming_the_field(text):
    with pytest.raises(InvalidInput) as refused:
        parse_period(text)
    assert refused.value.field == "period"


@pytest.mark.parametrize(
    ("period", "grain"),
    [("2026", "year"), ("2026Q2", "month"), ("2026-02", "month"), ("2026-02-01..2026-02-27", "day")],
)
def test_a_period_reads_the_coarsest_totals_that_add_up_to_it(period, grain):
    assert parse_period(period).grain() == grain


def test_ties_share_a_rank_and_spending_never_lowers_one(session, write, street, actor_id, make_volunteer):
    from tests.helpers import spend

    accounts = [make_volunteer() for _ in range(4)]
    for account_id, points in zip(accounts, (30, 50, 30, 10)):
        write(lambda: earn(session, actor_id, street.community, account_id, points, dt.date(2026, 3, 2)))
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=accounts[1], amount=45, key="treat"))

    page = ranking(session, org=session.get(OrgNode, street.community), category="volunteer", period=YEAR_2026, public=False)
    assert [(row.rank, row.points) for row in page.rows] == [(1, 50), (2, 30), (2, 30), (4, 10)]
    assert page.rows[0].participant_id == participant_of(session, accounts[1])


@settings(max_examples=8)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(1, 40), st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31))),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from(["2026", "2026-03", "2026Q2", "2026-02-10..2026-05-20"]),
)
def test_a_ranking_agrees_with_counting_by_hand(session, write, street, actor_id, make_volunteer, earnings, period_text):
    community = write(
        lambda: create_org_node(
            session, code=f"R{next(_keys)}", name="排名社区", kind="community", parent=session.get(OrgNode, street.street)
        ).id
    )
    accounts = [make_volunteer(org_id=community) for _ in range(6)]
    for person, points, day in earnings:
        write(lambda: earn(session, actor_id, community, accounts[person], points, day))

    period = parse_period(period_text)
    expected: dict[int, int] = {}
    for person, points, day in earnings:
        if period.start <= day <= period.end:
            pid = participant_of(session, accounts[person])
            expected[pid] = expected.get(pid, 0) + points
    page = ranking(session, org=session.get(OrgNode, community), category="volunteer", period=period, public=False, limit=200)
    assert {row.participant_id: row.points for row in page.rows} == expected
    for row in page.rows:
        assert row.rank == 1 + sum(1 for points in expected.values() if points > row.points)


@settings(max_examples=8)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 40), st.sampled_from([dt.date(2026, 3, 2), dt.date(2026, 7, 9)])), max_size=12),
    st.sets(st.integers(0, 5)),
    st.sampled_from(["2026", "2026-03", "2026-03-01..2026-07-31"]),
)
def test_own_rank_is_the_rank_own_standing_gives(
    session, write, street, actor_id, make_volunteer, earnings, opted_out, period_text
):
    community = write(
        lambda: create_org_node(
            session, code=f"R{next(_keys)}", name="排名社区", kind="community", parent=session.get(OrgNode, street.street)
        ).id
    )
    # The last one lives elsewhere: ranked nowhere in this community, whatever they earn.
    accounts = [make_volunteer(org_id=community) for _ in range(5)] + [make_volunteer(org_id=street.other_community)]
    for person, points, day in earnings:
        write(lambda: earn(session, actor_id, community, accounts[person], points, day))
    for person in opted_out:
        write(lambda: set_ranking_opt_out(session, participant_id=participant_of(session, accounts[person]), opt_out=True))

    org, period = session.get(OrgNode, community), parse_period(period_text)
    for account_id in accounts:
        pid = participant_of(session, account_id)
        for public in (True, False):
            standing = own_standing(session, org=org, category="volunteer", period=period, participant_id=pid, public=public)
            expected = (standing.me.rank if standing.me else None, standing.ranked)
            assert own_rank(session, org=org, category="volunteer", period=period, participant_id=pid, public=public) == expected


def test_an_activity_at_half_past_midnight_in_shanghai_counts_in_the_next_month(
    session, write, street, actor_id, default_rules, make_volunteer
):
    account_id = make_volunteer()
    start = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.timezone.utc)  # 00:30 on 1 December in Shanghai
    service = Service(participant_of(session, account_id), "patrol", start, start + dt.timedelta(hours=2))
    write(
        lambda: record_activity(
            session,
            actor=session.get(AppUser, actor_id),
            org=session.get(OrgNode, street.grid),
            service=service,
            idempotency_key="midnight",
            now=dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc),
        )
    )
    community = session.get(OrgNode, street.community)
    november = ranking(session, org=community, category="volunteer", period=parse_period("2026-11"), public=False)
    december = ranking(session, org=community, category="volunteer", period=parse_period("2026-12"), public=False)
    assert november.ranked == 0 and [row.points for row in december.rows] == [24]  # 2 h × 10 × 120% (night)


def test_a_reversal_takes_points_out_of_the_period_of_the_original(session, write, street, actor_id, make_volunteer):
    account_id = make_volunteer()
    original = write(lambda: earn(session, actor_id, street.community, account_id, 40, dt.date(2026, 3, 2)))
    write(
        lambda: reverse_transaction(
            session, actor=session.get(AppUser, actor_id), transaction_id=original.id, idempotency_key="undo", reason="错录"
        )
    )
    march = ranking(session, org=session.get(OrgNode, street.community), category="volunteer", period=parse_period("2026-03"), public=False)
    assert [row.points for row in march.rows] == [0]


def test_a_ranking_counts_everyone_in_the_orgs_subtree_and_nobody_outside_it(session, write, street, actor_id, make_volunteer):
    placed = {org_id: make_volunteer(org_id) for org_id in (street.subgrid, street.grid, street.community, street.other_community)}
    for points, (org_id, account_id) in enumerate(placed.items(), start=1):
        write(lambda: earn(session, actor_id, street.community, account_id, 10 * points, dt.date(2026, 5, 4)))

    def ranked_in(org_id):
        page = ranking(session, org=session.get(OrgNode, org_id), category="volunteer", period=YEAR_2026, public=False)
        return sorted(row.points for row in page.rows)

    assert ranked_in(street.street) == [10, 20, 30, 40]
    assert ranked_in(street.community) == [10, 20, 30]
    assert ranked_in(street.grid) == [10, 20]
    assert ranked_in(street.subgrid) == [10]
    assert ranked_in(street.other_community) == [40]


def test_a_period_total_keeps_its_accounts_org_and_the_database_refuses_any_other(session, write, street, actor_id, make_volunteer):
    account_id = make_volunteer(street.grid)
    write(lambda: earn(session, actor_id, street.community, account_id, 10, dt.date(2026, 5, 4)))
    rows = session.execute(text("SELECT DISTINCT org_id FROM period_total WHERE account_id = :id"), {"id": account_id}).scalars().all()
    assert rows == [street.grid]
    session.rollback()

    for statement in (
        "UPDATE period_total SET org_id = :other WHERE account_id = :id",
        "UPDATE account SET org_id = :other WHERE id = :id",
    ):
        with pytest.raises(IntegrityError):
            write(lambda: session.execute(text(statement), {"other": street.other_community, "id": account_id}))
        session.rollback()
    assert ranking(session, org=session.get(OrgNode, street.grid), category="volunteer", period=YEAR_2026, public=False).ranked == 1


def test_public_rankings_leave_out_who_opted_out_and_rank_the_rest_among_themselves(
    session, write, street, actor_id, make_volunteer
):
    accounts = [make_volunteer() for _ in range(3)]
    for account_id, points in zip(accounts, (90, 60, 30)):
        write(lambda: earn(session, actor_id, street.community, account_id, points, dt.date(2026, 4, 1)))
    hidden = participant_of(session, accounts[0])
    write(lambda: set_ranking_opt_out(session, participant_id=hidden, opt_out=True))
    community = session.get(OrgNode, street.community)

    public = ranking(session, org=community, category="volunteer", period=YEAR_2026, public=True)
    staff = ranking(session, org=community, category="volunteer", period=YEAR_2026, public=False)
    assert [(row.rank, row.points) for row in public.rows] == [(1, 60), (2, 30)]
    assert [row.participant_id for row in staff.rows][0] == hidden
    own = own_standing(session, org=community, category="volunteer", period=YEAR_2026, participant_id=hidden, public=True)
    assert own.me.rank == 1 and own.me.points == 90  # they still see where they stand


def test_minors_are_out_of_public_rankings_unless_they_opt_in(session, write, street):
    from ledger.participants import register_volunteer
    from tests.conftest import ID_NUMBER_KEY

    def register(number, born):
        return register_volunteer(
            session,
            org=session.get(OrgNode, street.grid),
            real_name="小明",
            id_number=valid_id_number(born),
            volunteer_number=number,
            registered_on=dt.date(2026, 5, 1),
            id_number_key=ID_NUMBER_KEY,
        ).ranking_opt_out

    assert write(lambda: register("TEEN", dt.date(2010, 6, 1))) is True
    assert write(lambda: register("ADULT", dt.date(2008, 5, 1))) is False  # eighteen on the day


def test_own_standing_gives_the_people_just_above_and_below(session, write, street, actor_id, make_volunteer):
    accounts = [make_volunteer() for _ in range(7)]
    for rank, account_id in enumerate(accounts):
        write(lambda: earn(session, actor_id, street.community, account_id, 100 - 10 * rank, dt.date(2026, 5, 5)))
    me = participant_of(session, accounts[3])
    standing = own_standing(
        session, org=session.get(OrgNode, street.community), category="volunteer", period=YEAR_2026, participant_id=me, public=False
    )
    assert standing.me.rank == 4 and standing.ranked == 7
    assert [row.rank for row in standing.above] == [2, 3] and [row.rank for row in standing.below] == [5, 6]


def test_units_and_party_members_are_ranked_in_their_own_categories(session, write, street, actor_id, make_volunteer):
    from ledger.participants import register_co_building_unit

    unit = write(
        lambda: register_co_building_unit(
            session, community=session.get(OrgNode, street.community), name="城东派出所", unit_kind="government_agency", reported_on=dt.date(2025, 1, 2)
        ).id
    )
    unit_account = participant_account(session, unit).id
    write(lambda: earn(session, actor_id, street.community, unit_account, 50, dt.date(2026, 6, 1)))
    write(lambda: earn(session, actor_id, street.community, make_volunteer(), 20, dt.date(2026, 6, 1)))
    community = session.get(OrgNode, street.community)
    units = ranking(session, org=community, category="unit", period=YEAR_2026, public=True)
    volunteers = ranking(session, org=community, category="volunteer", period=YEAR_2026, public=True)
    assert [row.name for row in units.rows] == ["城东派出所"] and [row.points for row in volunteers.rows] == [20]


def test_star_levels_say_when_each_level_was_reached(session, write, street, actor_id, default_rules, make_volunteer):
    account_id = make_volunteer()
    for day in range(1, 15):  # ten hours a day for fourteen days: 100 hours on 10 January
        write(lambda: earn(session, actor_id, street.community, account_id, 10, dt.date(2026, 1, day), service_minutes=600))
    record = star_record(session, participant_id=participant_of(session, account_id), today=dt.date(2026, 11, 1))
    assert (record.level, record.service_minutes) == (1, 140 * 60)
    assert record.reached == ((1, dt.date(2026, 1, 10)),)
    assert (record.next_level, record.minutes_to_next) == (2, 160 * 60)
    assert (record.year_level, record.year_minutes) == (3, 140 * 60)  # a year of 20, 50, 100 hours gives three


def test_title_reports_say_who_qualifies_and_by_how_much_others_miss(session, write, street, actor_id, default_rules, make_volunteer):
    busy, idle = make_volunteer(), make_volunteer()

    def patrol(account_id, day, hours):
        start = dt.datetime(2026, 3, day, 9, tzinfo=SHANGHAI)
        service = Service(participant_of(session, account_id), "patrol", start, start + dt.timedelta(hours=hours))
        write(
            lambda: record_activity(
                session, actor=session.get(AppUser, actor_id), org=session.get(OrgNode, street.grid), service=service, idempotency_key=f"p-{next(_keys)}"
            )
        )

    for day in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13):  # ten weekdays of six hours: 600 points, 60 hours
        patrol(busy, day, 6)
    patrol(idle, 16, 2)
    [report] = title_reports(
        session, org=session.get(OrgNode, street.community), year=2026, today=dt.date(2026, 11, 20), title_code="excellent_volunteer"
    )
    by_person = {c.participant_id: c.eligibility for c in report.candidates}
    assert by_person[participant_of(session, busy)].eligible
    missed = {c.criterion: c.shortfall for c in by_person[participant_of(session, idle)].criteria if not c.met}
    assert missed == {"min_hours": 48 * 60, "min_points": 280, "min_activities": 9, "top_percent": 1}


def test_the_rank_stars_and_titles_commands_read_like_a_report(runner, session, write, street, actor_id, default_rules, make_volunteer):
    from ledger.models import Volunteer
    from sqlalchemy import select

    accounts = [make_volunteer() for _ in range(3)]
    for account_id, points in zip(accounts, (30, 20, 10)):
        write(lambda: earn(session, actor_id, street.community, account_id, points, dt.date(2026, 4, 1), service_minutes=60))
    number = session.scalar(select(Volunteer.volunteer_number).where(Volunteer.participant_id == participant_of(session, accounts[1])))

    ranked = runner.invoke(args=["rank", "--org", "C1", "--period", "2026"])
    assert ranked.exit_code == 0, ranked.output
    assert "3 ranked" in ranked.output and ranked.output.count("\n") == 5
    own = runner.invoke(args=["rank", "--org", "C1", "--period", "2026-04", "--volunteer", number])
    assert own.exit_code == 0 and own.output.splitlines()[3].startswith("2 ")
    stars = runner.invoke(args=["stars", "--volunteer", number, "--today", "2026-11-01"])
    assert "0 星 stars, 1:00 hours of service" in stars.output and "99:00 more hours to 1 星" in stars.output
    titles = runner.invoke(args=["titles", "--org", "C1", "--year", "2026", "--title", "excellent_volunteer", "--all"])
    assert "0 of 3 eligible" in titles.output and "short by" in titles.output
    hidden = runner.invoke(args=["ranking-visibility", "--volunteer", number, "--hide"])
    assert "hidden from public rankings" in hidden.output
    assert "2 ranked" in runner.invoke(args=["rank", "--org", "C1", "--period", "2026", "--public"]).output


def test_the_rank_command_says_what_is_wrong_with_a_period(runner, street):
    result = runner.invoke(args=["rank", "--org", "C1", "--period", "2026-13"])
    assert result.exit_code == 1 and "period: must be a year (2026)" in result.output


def test_a_units_points_are_told_by_kind_of_contribution(session, write, street, actor_id, default_rules):
    from ledger.participants import register_co_building_unit
    from ledger.rankings import unit_points_by_kind

    unit = write(
        lambda: register_co_building_unit(
            session, community=session.get(OrgNode, street.community), name="锦绣物业", unit_kind="property_company", reported_on=dt.date(2025, 1, 2)
        ).id
    )

    def contribute(activity_type, day, quantity=None):
        start = dt.datetime(2026, 4, day, 10, tzinfo=SHANGHAI)
        service = Service(unit, activity_type, start, start + dt.timedelta(hours=1), quantity=quantity)
        write(
            lambda: record_activity(
                session, actor=session.get(AppUser, actor_id), org=session.get(OrgNode, street.community), service=service, idempotency_key=f"u-{day}"
            )
        )

    contribute("unit_report_in", 1)
    contribute("unit_staff_sent", 2, quantity=6)
    contribute("unit_staff_sent", 3, quantity=4)
    [points] = unit_points_by_kind(session, org=session.get(OrgNode, street.street), year=2026)
    assert points.by_kind == {"unit_report_in": 50, "unit_staff_sent": 50} and points.total == 100
