"""Participants: volunteers, party members, employers, co-building units and teams."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from ledger.db import db
from ledger.errors import AlreadyExists, InvalidInput
from ledger.identity import id_digest
from ledger.models import (
    Account,
    AccountKind,
    EmployerUnit,
    OrgNode,
    Participant,
    Person,
    Team,
    TeamMember,
    UnitKind,
)
from ledger.participants import (
    create_team,
    join_team,
    person_by_id_number,
    register_co_building_unit,
    register_employer_unit,
    register_party_member,
    register_volunteer,
)
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.refusals import refused

REGISTERED_ON = dt.date(2025, 3, 1)
CREDIT_CODE = "91320102MAJ70P6D0C"
OTHER_CREDIT_CODE = "11320102945807305F"
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def volunteer(session, org_id, id_number, *, name="李明", number="V00001", on=REGISTERED_ON):
    return register_volunteer(
        session,
        org=session.get(OrgNode, org_id),
        real_name=name,
        id_number=id_number,
        volunteer_number=number,
        registered_on=on,
        id_number_key=ID_NUMBER_KEY,
    )


def party_member(session, org_id, id_number, employer_id, *, name="李明", on=REGISTERED_ON):
    return register_party_member(
        session,
        org=session.get(OrgNode, org_id),
        real_name=name,
        id_number=id_number,
        employer=session.get(EmployerUnit, employer_id),
        reported_on=on,
        id_number_key=ID_NUMBER_KEY,
    )


def employer(session, street, *, name="江苏某某集团有限公司", credit_code=None):
    district = session.get(OrgNode, street.district)
    return register_employer_unit(session, org=district, name=name, credit_code=credit_code)


def unit(session, community_id, *, name="城东小学", unit_kind="public_institution", credit_code=None):
    return register_co_building_unit(
        session,
        community=session.get(OrgNode, community_id),
        name=name,
        unit_kind=unit_kind,
        reported_on=REGISTERED_ON,
        credit_code=credit_code,
    )


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def stored_text(session) -> list[str]:
    """Every value in every row of every table, as text."""
    rows = (row for table in db.metadata.sorted_tables for row in session.execute(select(table)))
    return [str(value) for row in rows for value in row]


@dataclass(frozen=True)
class Registered:
    """One volunteer, 李明 (V00001) in grid C1-G1, and an employer unit."""

    id_number: str
    employer_id: int


@pytest.fixture
def registered(session, write, street) -> Registered:
    id_number = valid_id_number()

    def register():
        volunteer(session, street.grid, id_number)
        return Registered(id_number, employer(session, street).id)

    return write(register)


def test_registering_a_volunteer_creates_a_participant_a_person_a_volunteer_and_one_account_in_the_org(
    session, write, street
):
    id_number = valid_id_number(birth=dt.date(1990, 6, 15))
    participant_id = write(lambda: volunteer(session, street.grid, id_number, name=" 李明 ").id)

    participant = session.get(Participant, participant_id)
    assert (participant.kind, participant.org_id, participant.display_name) == ("person", street.grid, "李明")
    person = participant.person
    assert (person.real_name, person.birth_date) == ("李明", dt.date(1990, 6, 15))
    assert (person.volunteer.volunteer_number, person.volunteer.registered_on) == ("V00001", REGISTERED_ON)
    assert person.party_member is None
    accounts = session.scalars(select(Account).where(Account.kind == AccountKind.PARTICIPANT)).all()
    assert [(a.participant_id, a.org_id, a.balance) for a in accounts] == [(participant_id, street.grid, 0)]
    assert person_by_id_number(session, id_number.lower(), id_number_key=ID_NUMBER_KEY) == person

    # The ID number is never stored whole: the person row holds only its mask and its keyed digest.
    person_row = session.execute(select(Person.__table__)).one()._asdict()
    assert person_row == {
        "participant_id": participant_id,
        "real_name": "李明",
        "id_number_digest": id_digest(id_number, ID_NUMBER_KEY),
        "id_number_masked": id_number[:6] + "********" + id_number[-4:],
        "birth_date": dt.date(1990, 6, 15),
    }
    assert not any(id_number[:17] in value for value in stored_text(session))

    # Someone born on the day they register may register.
    newborn = write(lambda: volunteer(session, street.grid, valid_id_number(birth=REGISTERED_ON), number="V00002").id)
    assert session.get(Participant, newborn).person.birth_date == REGISTERED_ON


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("", id="empty"),
        pytest.param("V00002\n", id="trailing newline"),
        pytest.param("V" * 33, id="33 characters"),
    ],
)
def test_a_malformed_volunteer_number_is_refused_naming_it(session, write, street, number):
    refusal = refused(session, write, lambda: volunteer(session, street.grid, valid_id_number(), number=number))
    assert refusal.field == "volunteer_number"


@pytest.mark.parametrize(
    ("attempt", "error", "field"),
    [
        pytest.param(
            lambda s, street, r: volunteer(s, street.grid, valid_id_number(), name="王芳"),
            AlreadyExists, "volunteer_number", id="volunteer number taken",
        ),
        pytest.param(
            lambda s, street, r: volunteer(s, street.grid, r.id_number.translate(FULL_WIDTH), number="V00002"),
            AlreadyExists, "id_number", id="same person as volunteer twice, number typed full-width",
        ),
        pytest.param(
            lambda s, street, r: party_member(s, street.grid, r.id_number, r.employer_id, name="李敏"),
            InvalidInput, "real_name", id="same ID number under another name",
        ),
        pytest.param(
            lambda s, street, r: volunteer(s, street.grid, valid_id_number(birth=dt.date(2025, 3, 2)), number="V00002"),
            InvalidInput, "id_number", id="born after the registration date",
        ),
        pytest.param(
            lambda s, street, r: volunteer(s, street.street, valid_id_number(), number="V00002"),
            InvalidInput, "org", id="registered in a street",
        ),
        pytest.param(
            lambda s, street, r: party_member(s, street.community, r.id_number, r.employer_id),
            InvalidInput, "org", id="known person reporting in to another org",
        ),
        pytest.param(
            lambda s, street, r: volunteer(s, street.grid, valid_id_number(), name="\u3000", number="V00002"),
            InvalidInput, "real_name", id="blank name",
        ),
    ],
)
def test_a_registration_that_cannot_be_right_is_refused_naming_the_field_and_writes_nothing(
    session, write, street, registered, attempt, error, field
):
    refusal = refused(session, write, lambda: attempt(session, street, registered), error)
    assert refusal.field == field


@pytest.mark.parametrize(
    "volunteer_first", [True, False], ids=["volunteer then party member", "party member then volunteer"]
)
def test_a_person_with_both_roles_is_one_participant_with_one_account(session, write, street, volunteer_first):
    id_number = valid_id_number()

    def register():
        unit_id = employer(session, street, credit_code=CREDIT_CODE).id
        roles = [
            lambda: volunteer(session, street.grid, id_number.lower(), on=dt.date(2025, 1, 10)),
            lambda: party_member(session, street.grid, id_number, unit_id, on=dt.date(2025, 2, 20)),
        ]
        return [role().id for role in (roles if volunteer_first else reversed(roles))]

    first_id, second_id = write(register)
    assert first_id == second_id
    assert (count(session, Participant), count(session, Person)) == (1, 1)
    person = session.get(Participant, first_id).person
    assert (person.volunteer.volunteer_number, person.volunteer.registered_on) == ("V00001", dt.date(2025, 1, 10))
    assert person.party_member.reported_on == dt.date(2025, 2, 20)
    assert (person.party_member.employer_unit.name, person.party_member.employer_unit.credit_code) == (
        "江苏某某集团有限公司",
        CREDIT_CODE,
    )
    assert session.scalars(select(Account.participant_id).where(Account.kind == AccountKind.PARTICIPANT)).all() == [
        first_id
    ]


def test_reporting_in_twice_as_a_party_member_is_refused(session, write, street, registered):
    write(lambda: party_member(session, street.grid, registered.id_number, registered.employer_id))
    refusal = refused(
        session,
        write,
        lambda: party_member(session, street.grid, registered.id_number, registered.employer_id),
        AlreadyExists,
    )
    assert refusal.field == "id_number"


def test_an_employer_unit_keeps_its_name_stripped_and_its_credit_code_normalised_which_is_optional(
    session, write, street
):
    with_code = write(
        lambda: employer(session, street, name=" 南京某某科技有限公司 ", credit_code=CREDIT_CODE.lower()).id
    )
    write(lambda: employer(session, street, name="城东第一中学"))
    write(lambda: employer(session, street, name="城东第二中学"))
    stored = session.get(EmployerUnit, with_code)
    assert (stored.name, stored.credit_code, stored.org_id) == ("南京某某科技有限公司", CREDIT_CODE, street.district)
    assert count(session, EmployerUnit) == 3


@pytest.mark.parametrize(
    ("name", "credit_code", "error", "field"),
    [
        pytest.param("江苏某某集团有限公司", None, AlreadyExists, "name", id="name taken"),
        pytest.param(
            "另一公司", CREDIT_CODE.translate(FULL_WIDTH).lower(), AlreadyExists, "credit_code", id="credit code taken"
        ),
        pytest.param("另一公司", CREDIT_CODE[:17] + "D", InvalidInput, "credit_code", id="wrong check character"),
        pytest.param("另一公司", "", InvalidInput, "credit_code", id="empty credit code"),
    ],
)
def test_an_employer_unit_that_clashes_or_has_a_bad_credit_code_is_refused(
    session, write, street, name, credit_code, error, field
):
    write(lambda: employer(session, street, credit_code=CREDIT_CODE))
    refusal = refused(session, write, lambda: employer(session, street, name=name, credit_code=credit_code), error)
    assert refusal.field == field


def test_every_unit_kind_may_report_in_to_a_community_which_becomes_the_units_org(session, write, street):
    def register():
        return [
            unit(session, street.community, name=f"共建单位{index}", unit_kind=kind,
                 credit_code=CREDIT_CODE.lower() if index == 0 else None).id
            for index, kind in enumerate(UnitKind)
        ]

    ids = write(register)
    elsewhere = write(lambda: unit(session, street.other_community, name="共建单位0", unit_kind="enterprise").id)

    assert len(UnitKind) == 6
    units = [session.get(Participant, participant_id) for participant_id in ids]
    assert [u.unit.unit_kind for u in units] == list(UnitKind)
    assert {(u.kind, u.org_id) for u in units} == {("unit", street.community)}
    assert units[0].unit.credit_code == CREDIT_CODE
    assert units[0].unit.reported_on == REGISTERED_ON
    assert session.get(Participant, elsewhere).org_id == street.other_community
    accounts = session.execute(
        select(Account.participant_id, Account.org_id).where(Account.kind == AccountKind.PARTICIPANT)
    ).all()
    assert sorted(accounts) == sorted([(i, street.community) for i in ids] + [(elsewhere, street.other_community)])


@pytest.mark.parametrize(
    ("where", "arguments", "error", "field"),
    [
        pytest.param("community", dict(unit_kind="hospital"), InvalidInput, "unit_kind", id="unknown kind"),
        pytest.param("grid", dict(name="另一单位"), InvalidInput, "community", id="reporting to a grid"),
        pytest.param(
            "other_community", dict(name="另一单位", credit_code=CREDIT_CODE), AlreadyExists, "credit_code",
            id="credit code taken in any community",
        ),
        pytest.param("community", dict(name=" 城东小学 "), AlreadyExists, "name", id="same name in the same community"),
        pytest.param(
            "community", dict(name="另一单位", credit_code=OTHER_CREDIT_CODE[:17] + "0"), InvalidInput, "credit_code",
            id="wrong check character",
        ),
    ],
)
def test_a_co_building_unit_that_cannot_report_in_there_is_refused(
    session, write, street, where, arguments, error, field
):
    write(lambda: unit(session, street.community, credit_code=CREDIT_CODE))
    refusal = refused(session, write, lambda: unit(session, getattr(street, where), **arguments), error)
    assert refusal.field == field


def test_team_names_are_unique_within_an_org_but_may_repeat_in_another(session, write, street):
    def found(org_id, name):
        return create_team(session, org=session.get(OrgNode, org_id), name=name, founded_on=dt.date(2024, 5, 4)).id

    first = write(lambda: found(street.community, "红马甲志愿服务队"))
    elsewhere = write(lambda: found(street.other_community, "红马甲志愿服务队"))
    refusal = refused(session, write, lambda: found(street.community, " 红马甲志愿服务队 "), AlreadyExists)

    assert refusal.field == "name"
    assert [(t.id, t.org_id) for t in session.scalars(select(Team).order_by(Team.id))] == [
        (first, street.community),
        (elsewhere, street.other_community),
    ]


def test_a_resident_of_a_grid_inside_the_teams_community_may_join_it(session, write, street, make_volunteer):
    account_id = make_volunteer(street.subgrid)
    participant_id = session.get(Account, account_id).participant_id
    team_id = write(lambda: create_team(session, org=session.get(OrgNode, street.community), name="红马甲").id)

    write(lambda: join_team(
        session, team=session.get(Team, team_id), participant=session.get(Participant, participant_id),
        joined_on=dt.date(2025, 4, 1),
    ))
    members = session.scalars(select(TeamMember)).all()
    assert [(m.team_id, m.participant_id, m.joined_on) for m in members] == [
        (team_id, participant_id, dt.date(2025, 4, 1))
    ]


@pytest.mark.parametrize(
    ("team_org", "member_org", "joins_first", "error"),
    [
        pytest.param("community", "other_community", False, InvalidInput, id="from another community"),
        pytest.param("grid", "community", False, InvalidInput, id="from above the team's grid"),
        pytest.param("community", "grid", True, AlreadyExists, id="already a member"),
    ],
)
def test_a_participant_who_may_not_join_a_team_is_refused_naming_the_participant(
    session, write, street, make_volunteer, team_org, member_org, joins_first, error
):
    participant_id = session.get(Account, make_volunteer(getattr(street, member_org))).participant_id
    team_id = write(lambda: create_team(session, org=session.get(OrgNode, getattr(street, team_org)), name="红马甲").id)

    def join():
        join_team(session, team=session.get(Team, team_id), participant=session.get(Participant, participant_id),
                  joined_on=REGISTERED_ON)

    if joins_first:
        write(join)
    refusal = refused(session, write, join, error)
    assert refusal.field == "participant"
