"""Participants: volunteers, party members who reported in, co-building units, and teams.

A person is one participant however many roles they hold: registering a party member who
is already a volunteer (same ID number) adds the report-in to the same person and account.
Every participant gets exactly one points account, in the org they belong to.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import identity
from ledger.errors import AlreadyExists, InvalidInput
from ledger.models import (
    Account,
    AccountKind,
    CoBuildingUnit,
    EmployerUnit,
    OrgKind,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    Person,
    Team,
    TeamMember,
    UnitKind,
    Volunteer,
)
from ledger.orgs import check_name

VOLUNTEER_NUMBER_PATTERN = re.compile(r"[A-Za-z0-9-]{1,32}")
ADULT_AGE = 18


def register_volunteer(
    session: Session,
    *,
    org: OrgNode,
    real_name: str,
    id_number: str,
    volunteer_number: str,
    registered_on: dt.date,
    id_number_key: str,
) -> Participant:
    """Register a resident as a volunteer (or add the volunteer role to a known person)."""
    if not isinstance(volunteer_number, str) or not VOLUNTEER_NUMBER_PATTERN.fullmatch(volunteer_number):
        raise InvalidInput("must be 1 to 32 letters, digits or '-'", field="volunteer_number")
    _check_date(registered_on, "registered_on")
    if session.execute(select(Volunteer).where(Volunteer.volunteer_number == volunteer_number)).first():
        raise AlreadyExists(f"volunteer number {volunteer_number} is already taken", field="volunteer_number")
    person = _person(
        session, org=org, real_name=real_name, id_number=id_number, id_number_key=id_number_key, on=registered_on
    )
    if person.volunteer is not None:
        raise AlreadyExists(
            f"this person is already volunteer {person.volunteer.volunteer_number}", field="id_number"
        )
    person.volunteer = Volunteer(volunteer_number=volunteer_number, registered_on=registered_on)
    session.flush()
    return person.participant


def register_party_member(
    session: Session,
    *,
    org: OrgNode,
    real_name: str,
    id_number: str,
    employer: EmployerUnit,
    reported_on: dt.date,
    id_number_key: str,
) -> Participant:
    """Record an in-service party member's report-in to the community they live in."""
    _check_date(reported_on, "reported_on")
    person = _person(
        session, org=org, real_name=real_name, id_number=id_number, id_number_key=id_number_key, on=reported_on
    )
    if person.party_member is not None:
        raise AlreadyExists("this person has already reported in as a party member", field="id_number")
    person.party_member = PartyMember(employer_unit_id=employer.id, reported_on=reported_on)
    session.flush()
    return person.participant


def register_employer_unit(
    session: Session, *, org: OrgNode, name: str, credit_code: str | None = None
) -> EmployerUnit:
    """Register the employer that in-service party members report from."""
    name = check_name(name)
    credit_code = _check_credit_code(credit_code)
    if session.execute(select(EmployerUnit.id).where(EmployerUnit.name == name)).first():
        raise AlreadyExists(f"employer unit {name!r} already exists", field="name")
    if credit_code and session.execute(select(EmployerUnit.id).where(EmployerUnit.credit_code == credit_code)).first():
        raise AlreadyExists("another employer unit has this credit code", field="credit_code")
    employer = EmployerUnit(org_id=org.id, name=name, credit_code=credit_code)
    session.add(employer)
    session.flush()
    return employer


def register_co_building_unit(
    session: Session,
    *,
    community: OrgNode,
    name: str,
    unit_kind: str,
    reported_on: dt.date,
    credit_code: str | None = None,
) -> Participant:
    """Record an organisation's report-in to a community as a co-building unit."""
    if community.kind != OrgKind.COMMUNITY:
        raise InvalidInput("a co-building unit reports to a community", field="community")
    name = check_name(name)
    try:
        unit_kind = UnitKind(unit_kind)
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(UnitKind)}", field="unit_kind") from None
    _check_date(reported_on, "reported_on")
    credit_code = _check_credit_code(credit_code)
    if credit_code and session.execute(
        select(CoBuildingUnit.participant_id).where(CoBuildingUnit.credit_code == credit_code)
    ).first():
        raise AlreadyExists("a co-building unit with this credit code already reported in", field="credit_code")
    if session.execute(
        select(Participant.id).where(
            Participant.org_id == community.id,
            Participant.kind == ParticipantKind.UNIT,
            Participant.display_name == name,
        )
    ).first():
        raise AlreadyExists(f"{name} has already reported in to {community.name}", field="name")
    participant = _new_participant(session, org=community, kind=ParticipantKind.UNIT, display_name=name)
    participant.unit = CoBuildingUnit(unit_kind=unit_kind, credit_code=credit_code, reported_on=reported_on)
    session.flush()
    return participant


def create_team(session: Session, *, org: OrgNode, name: str, founded_on: dt.date | None = None) -> Team:
    """Found a volunteer service team in ``org``."""
    name = check_name(name)
    if founded_on is not None:
        _check_date(founded_on, "founded_on")
    if session.execute(select(Team.id).where(Team.org_id == org.id, Team.name == name)).first():
        raise AlreadyExists(f"{org.name} already has a team called {name!r}", field="name")
    team = Team(org_id=org.id, name=name, founded_on=founded_on)
    session.add(team)
    session.flush()
    return team


def join_team(session: Session, *, team: Team, participant: Participant, joined_on: dt.date) -> TeamMember:
    """Add ``participant`` to ``team``."""
    _check_date(joined_on, "joined_on")
    team_org = session.get(OrgNode, team.org_id)
    if not participant.org.path.startswith(team_org.path):
        raise InvalidInput(f"{participant.display_name} does not belong to {team_org.name}", field="participant")
    if session.get(TeamMember, (team.id, participant.id)) is not None:
        raise AlreadyExists(f"{participant.display_name} is already in {team.name}", field="participant")
    member = TeamMember(team_id=team.id, participant_id=participant.id, joined_on=joined_on)
    session.add(member)
    session.flush()
    return member


def person_by_id_number(session: Session, id_number: str, *, id_number_key: str) -> Person | None:
    """Return the person with this ID number, if registered."""
    number = identity.normalise_id_number(id_number)
    return session.execute(
        select(Person).where(Person.id_number_digest == identity.id_digest(number, id_number_key))
    ).scalar_one_or_none()


def _person(
    session: Session, *, org: OrgNode, real_name: str, id_number: str, id_number_key: str, on: dt.date
) -> Person:
    """Return the person with this ID number, registering them in ``org`` if new.

    ``on`` is the day of the registration the person is being found for; nobody registers
    before they are born.
    """
    if org.kind not in (OrgKind.COMMUNITY, OrgKind.GRID):
        raise InvalidInput("a resident belongs to a community or a grid", field="org")
    real_name = check_name(real_name, field="real_name", max_length=100)
    number = identity.normalise_id_number(id_number)
    if identity.birth_date(number) > on:
        raise InvalidInput(f"its birth date is after the registration date {on.isoformat()}", field="id_number")
    person = person_by_id_number(session, number, id_number_key=id_number_key)
    if person is not None:
        if person.real_name != real_name:
            raise InvalidInput("this ID number is registered under another name; check both", field="real_name")
        if person.participant.org_id != org.id:
            raise InvalidInput(
                f"this person is registered in {person.participant.org.name}; register the new role there",
                field="org",
            )
        return person
    participant = _new_participant(session, org=org, kind=ParticipantKind.PERSON, display_name=real_name)
    born = identity.birth_date(number)
    person = Person(
        real_name=real_name,
        id_number_digest=identity.id_digest(number, id_number_key),
        id_number_masked=identity.mask(number),
        birth_date=born,
    )
    participant.person = person
    # A minor stays out of public rankings unless they (or their guardian) opt in later.
    participant.ranking_opt_out = identity.age_on(born, on) < ADULT_AGE
    return person


def _new_participant(session: Session, *, org: OrgNode, kind: ParticipantKind, display_name: str) -> Participant:
    participant = Participant(org_id=org.id, kind=kind, display_name=display_name)
    session.add(participant)
    session.flush()
    session.add(Account(org_id=org.id, kind=AccountKind.PARTICIPANT, participant_id=participant.id))
    return participant


def _check_date(value: object, field: str) -> None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise InvalidInput("must be a date", field=field)


def _check_credit_code(code: str | None) -> str | None:
    return None if code is None else identity.normalise_credit_code(code)
