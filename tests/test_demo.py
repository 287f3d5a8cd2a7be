"""The demo street: its promised sizes, a second load that adds nothing, and a ledger that verifies."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ledger import identity
from ledger.db import db
from ledger.demo import CARRY_OVER_DATE, PASSBOOK_POINTS, Tally, load_demo, plan_residents
from ledger.errors import Conflict
from ledger.models import (
    Account,
    AccountKind,
    CoBuildingUnit,
    EmployerUnit,
    OrgKind,
    OrgNode,
    PartyMember,
    Posting,
    Team,
    TeamMember,
    Transaction,
    TransactionKindCode,
    UnitKind,
    Volunteer,
)
from ledger.verify import verify_ledger

#: The table each line of the summary counts (the demo is all a fresh database holds).
SUMMARY_TABLES = {
    "org_nodes": "org_node",
    "volunteers": "volunteer",
    "party_members": "party_member",
    "employer_units": "employer_unit",
    "co_building_units": "co_building_unit",
    "teams": "team",
    "team_members": "team_member",
    "opening_balances": "ledger_transaction",
}


@pytest.fixture
def load(app, session, write):
    """Return a callable that loads the demo street in one committed write and returns the summary."""

    def run(seed: int = 2026):
        return write(lambda: load_demo(session, seed=seed, id_number_key=app.config["LEDGER_ID_NUMBER_KEY"]))

    return run


def count(session, statement) -> int:
    return session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def row_counts(session) -> dict[str, int]:
    return {
        table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    }


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


def test_demo_loads_a_street_with_the_promised_sizes(session, load):
    summary = load()

    communities = session.execute(select(OrgNode).where(OrgNode.kind == OrgKind.COMMUNITY)).scalars().all()
    assert len(communities) == 3
    levels = set(session.execute(select(OrgNode.grid_level).where(OrgNode.kind == OrgKind.GRID)).scalars())
    assert levels == {1, 2, 3}
    assert count(session, select(Volunteer)) >= 200
    assert count(session, select(PartyMember)) >= 20
    assert count(session, select(PartyMember.employer_unit_id).distinct()) >= 5
    assert count(session, select(EmployerUnit)) >= 5
    assert count(session, select(CoBuildingUnit)) >= 10
    assert set(session.execute(select(CoBuildingUnit.unit_kind)).scalars()) == set(UnitKind)
    both = select(PartyMember).join(Volunteer, Volunteer.participant_id == PartyMember.participant_id)
    assert count(session, both) > 0
    assert {team.org_id for team in session.execute(select(Team)).scalars()} == {c.id for c in communities}
    assert count(session, select(TeamMember)) > 0
    assert count(session, select(Transaction).where(Transaction.kind == TransactionKindCode.OPENING_BALANCE)) > 0
    counts = row_counts(session)
    for name, table in SUMMARY_TABLES.items():
        assert getattr(summary, name) == Tally(total=counts[table], new=counts[table]), name

def test_opening_balances_come_from_the_volunteers_community(session, load):
    load()

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


def test_running_the_demo_twice_adds_nothing(session, load):
    load()
    before = row_counts(session)

    again = load()

    assert row_counts(session) == before
    assert again.new == 0
    assert again.volunteers.total >= 200
    assert "(0 new)" in again.describe()


def test_loading_another_seed_over_the_demo_is_refused_and_changes_nothing(session, load):
    load()
    before = row_counts(session)

    with pytest.raises(Conflict, match="another seed"):
        load(seed=7)

    assert row_counts(session) == before


def test_ledger_verify_passes_on_the_demo(session, load, runner):
    load()

    assert verify_ledger(session).ok
    session.rollback()
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_ledger_demo_command_loads_and_prints_the_summary(session, runner):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo", "--seed", "2026"])

    assert first.exit_code == 0, first.output
    assert "志愿者 volunteers: 240 (240 new)" in first.output
    assert second.exit_code == 0, second.output
    assert "志愿者 volunteers: 240 (0 new)" in second.output
    assert count(session, select(Volunteer)) == 240


def test_ledger_demo_command_refuses_another_seed_with_a_message(runner):
    runner.invoke(args=["demo"])

    result = runner.invoke(args=["demo", "--seed", "7"])

    assert result.exit_code == 1
    assert "another seed" in result.output
