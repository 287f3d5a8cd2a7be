"""A small season of 2026 service in the street, for the annual evaluation's tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from ledger.activities import correct_activity
from ledger.models import OrgNode
from ledger.participants import register_co_building_unit, register_employer_unit, register_party_member
from tests.activity_fixtures import service
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.helpers import spend

TODAY = dt.date(2026, 11, 23)
FROZEN_AT = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Season:
    """Ids of the people of a small season of 2026 service in the street."""

    alice: int
    bob: int
    carol: int
    party_member: int
    unit: int
    employer: int
    alice_patrol: int


@pytest.fixture
def season(desk, make_resident, session, write, street, actor_id) -> Season:
    alice = make_resident(street.grid, "王丽")
    bob = make_resident(street.subgrid, "=HYPERLINK(\"x\")")
    carol = make_resident(street.other_community, "陈红")

    def register():
        community = session.get(OrgNode, street.community)
        employer = register_employer_unit(session, org=session.get(OrgNode, street.district), name="示范区税务局")
        member = register_party_member(
            session,
            org=session.get(OrgNode, street.grid),
            real_name="赵党员",
            id_number=valid_id_number(),
            employer=employer,
            reported_on=dt.date(2025, 5, 1),
            id_number_key=ID_NUMBER_KEY,
        )
        unit = register_co_building_unit(
            session, community=community, name="锦绣物业", unit_kind="property_company", reported_on=dt.date(2024, 1, 1)
        )
        return employer.id, member.id, unit.id

    employer, member, unit = write(register)
    patrol = desk.record(service(alice.participant_id, "2026-03-07 09:00", "12:00")).activity.id
    desk.record(service(alice.participant_id, "2026-04-11 09:00", "11:00"))
    desk.record(service(bob.participant_id, "2026-03-08 09:00", "10:00"))
    desk.record(service(carol.participant_id, "2026-03-08 09:00", "13:00"), org_id=street.other_community)
    for day in ("2026-03-14", "2026-04-18", "2026-05-16", "2026-06-13"):
        desk.record(service(member, f"{day} 09:00", "12:00"), org_id=street.grid)
    desk.record(service(unit, "2026-01-05 09:00", "10:00", "unit_report_in"), org_id=street.community)
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=alice.account_id, amount=10, key="spend-1"))
    return Season(alice.participant_id, bob.participant_id, carol.participant_id, member, unit, employer, patrol)


def correct_alices_patrol(desk, season: Season) -> None:
    """Correct Alice's first patrol from three hours to one, as staff would after the freeze."""
    desk.write(
        lambda: correct_activity(
            desk.session,
            actor=desk.user(),
            activity_id=season.alice_patrol,
            service=service(season.alice, "2026-03-07 09:00", "10:00"),
            reason="时长录错",
            idempotency_key="fix-1",
        )
    )
