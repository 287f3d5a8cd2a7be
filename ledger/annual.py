"""The annual evaluation read from the database, its freeze, and the feedback to employers.

Every sheet is one query, set-based: a participant's year comes from the year totals (one
row per account and year, kept by the write path), ranks from window functions that the
database computes, service in the home community, claims and units' points from one
aggregate each. Rows are streamed from the database (``yield_per``: a server-side cursor on
PostgreSQL), turned into cells by the pure :mod:`ledger.evaluation`, and written as they come,
so memory stays flat however many participants an org has.

A freeze stores every row of every sheet as it was exported, and the rule-set versions used,
in append-only tables; one freeze per org and year. While it is written it holds the chain
locks of every community it reads, so no ledger write lands half inside it. After it,
:func:`changes_since_freeze` compares the frozen rows with a fresh computation and lists the
year's transactions recorded since.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import Select, case, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from ledger.db import integer_sum
from ledger.errors import AlreadyExists, InvalidInput, NotFound
from ledger.exports import Table
from ledger.evaluation import (
    OTHER_KIND,
    PARTY_MEMBER_SHEET,
    Change,
    FeedbackMember,
    ParticipantYear,
    PartyMemberYear,
    SheetSpec,
    TitleStanding,
    UnitYear,
    compare,
    feedback_table,
    participant_cells,
    participant_sheet,
    party_member_cells,
    unit_cells,
    unit_kinds,
    unit_sheet,
)
from ledger.models import (
    Account,
    AppUser,
    ChainHead,
    CoBuildingUnit,
    EmployerUnit,
    EvaluationFreeze,
    EvaluationFreezeRow,
    EvaluationFreezeRuleSet,
    OrgKind,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    PartyMemberRemark,
    PeriodKind,
    PeriodTotal,
    Posting,
    RuleSetVersion,
    Transaction,
    Volunteer,
)
from ledger.orders import claim_count_query
from ledger.orgs import check_name, local_date, path_ids
from ledger.rankings import Period, home_community_service, unit_points_query
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import Category, RankScope, RuleSet

#: Rows fetched from the database at a time, and frozen rows inserted at a time.
BATCH = 1000
MAX_REMARK_LENGTH = 500

#: A sheet's rows: ``(participant_id, cells)``, in export order or in participant order.
Rows = Iterator[tuple[int, list]]


class AlreadyFrozen(AlreadyExists):
    """Raised when an org's evaluation of a year is frozen a second time: the first freeze stands."""


@dataclass(frozen=True)
class Sheet:
    spec: SheetSpec
    #: ``rows(by_participant)``: the rows in export order, or by participant id to compare.
    rows: Callable[[bool], Rows]
    #: How many rows the sheet has, for a progress bar.
    count: Callable[[], int]


@dataclass(frozen=True)
class Evaluation:
    org: OrgNode
    year: int
    #: The rule-set version whose star levels and titles apply.
    version: RuleSetVersion
    sheets: tuple[Sheet, ...]
    #: The freeze these rows come from; ``None`` for a fresh computation.
    freeze: EvaluationFreeze | None = None


def tables(
    result: Evaluation, language: str, *, sheet: str | None = None, counted: Callable[[], None] | None = None
) -> Iterator[Table]:
    """Yield the evaluation's sheets (or the one named ``sheet``) as tables to write, in ``language``.

    ``counted`` is called once per row written, for a progress bar.
    """
    codes = [each.spec.code for each in result.sheets]
    if sheet is not None and sheet not in codes:
        raise InvalidInput(f"must be one of {', '.join(codes)}", field="sheet")
    for each in result.sheets:
        if sheet in (None, each.spec.code):
            yield each.spec.table(_counting(each.rows(False), counted), language)


def feedback_tables(rules: RuleSet, feedbacks: Iterator[EmployerFeedback], language: str) -> Iterator[Table]:
    """Yield each employer's feedback as a table to write, one after the other."""
    for feedback in feedbacks:
        yield feedback_table(feedback.name, feedback.members, feedback.party_members_employed, rules, language)


def _counting(rows: Rows, counted: Callable[[], None] | None) -> Iterator[list]:
    for _participant_id, cells in rows:
        if counted is not None:
            counted()
        yield cells


def check_year(year: object, today: dt.date) -> int:
    """Return ``year`` if it is a whole year from 2000 that has begun by ``today``."""
    if type(year) is not int or not 2000 <= year <= 2100:
        raise InvalidInput("must be a year such as 2026", field="year")
    if year > today.year:
        raise InvalidInput(f"{year} has not begun yet", field="year")
    return year


def live_evaluation(session: Session, *, org: OrgNode, year: int, today: dt.date) -> Evaluation:
    """Return the evaluation of ``org`` for ``year`` as the ledger says now, under the rules in force at its end."""
    year = check_year(year, today)
    version = version_in_force(session, org, min(dt.date(year, 12, 31), today))
    rules = rules_of(version)
    sheets = (
        _participant_sheet(session, org, year, rules),
        _party_member_sheet(session, org, year, rules),
        _unit_sheet(session, org, year, rules),
    )
    return Evaluation(org, year, version, sheets)


def evaluation(session: Session, *, org: OrgNode, year: int, today: dt.date, live: bool = False) -> Evaluation:
    """Return the frozen evaluation of ``org`` for ``year`` when there is one (unless ``live``), else a fresh one."""
    freeze = None if live else find_freeze(session, org=org, year=check_year(year, today))
    if freeze is None:
        return live_evaluation(session, org=org, year=year, today=today)
    return frozen_evaluation(session, freeze)


def find_freeze(session: Session, *, org: OrgNode, year: int) -> EvaluationFreeze | None:
    return session.execute(
        select(EvaluationFreeze).where(EvaluationFreeze.org_id == org.id, EvaluationFreeze.year == year)
    ).scalar_one_or_none()


def frozen_evaluation(session: Session, freeze: EvaluationFreeze) -> Evaluation:
    """Return a freeze's evaluation: its own columns and rows, exactly as they were frozen."""

    def sheet(spec: SheetSpec) -> Sheet:
        stored = select(EvaluationFreezeRow.participant_id, EvaluationFreezeRow.cells).where(
            EvaluationFreezeRow.freeze_id == freeze.id, EvaluationFreezeRow.sheet == spec.code
        )

        def rows(by_participant: bool) -> Rows:
            order = EvaluationFreezeRow.participant_id if by_participant else EvaluationFreezeRow.seq
            for participant_id, cells in _streamed(session, stored.order_by(order)):
                yield participant_id, cells

        return Sheet(spec, rows, lambda: session.scalar(select(func.count()).select_from(stored.subquery())))

    specs = [SheetSpec.from_json(data) for data in freeze.sheets]
    version = session.get(RuleSetVersion, freeze.rule_set_version_id)
    return Evaluation(freeze.org, freeze.year, version, tuple(sheet(spec) for spec in specs), freeze)


def freeze_evaluation(session: Session, *, actor: AppUser, org: OrgNode, year: int, now: dt.datetime) -> EvaluationFreeze:
    """Freeze ``org``'s evaluation of ``year``: store every row as exported now, and the rule versions used.

    Holds the chain lock of every community the evaluation reads until the caller commits, so
    the frozen rows are one consistent state of the ledger.
    """
    fresh = live_evaluation(session, org=org, year=year, today=local_date(now, org))  # its rows are read below
    _lock_chains(session, _universe(session, org, rules_of(fresh.version)))
    earlier = find_freeze(session, org=org, year=year)
    if earlier is not None:
        raise AlreadyFrozen(
            f"{org.name}'s evaluation of {year} was frozen at {earlier.frozen_at.isoformat()}", field="year"
        )
    freeze = EvaluationFreeze(
        org_id=org.id,
        year=year,
        rule_set_version_id=fresh.version.id,
        sheets=[sheet.spec.to_json() for sheet in fresh.sheets],
        frozen_by_id=actor.id,
        frozen_at=now,
    )
    session.add(freeze)
    session.flush()
    for sheet in fresh.sheets:
        numbered = enumerate(sheet.rows(False), start=1)
        while batch := list(itertools.islice(numbered, BATCH)):
            session.execute(
                EvaluationFreezeRow.__table__.insert(),
                [
                    {"freeze_id": freeze.id, "sheet": sheet.spec.code, "seq": seq, "participant_id": pid, "cells": cells}
                    for seq, (pid, cells) in batch
                ],
            )
    session.add_all(
        EvaluationFreezeRuleSet(freeze_id=freeze.id, rule_set_version_id=version_id)
        for version_id in scoring_versions(session, org=org, year=year)
    )
    session.flush()
    return freeze


def scoring_versions(session: Session, *, org: OrgNode, year: int) -> list[int]:
    """Return the ids of the rule-set versions that scored entries of ``year`` in ``org``'s subtree."""
    books = aliased(OrgNode)
    return list(
        session.execute(
            select(Transaction.rule_set_version_id)
            .distinct()
            .join(books, books.id == Transaction.org_id)
            .where(
                books.path.startswith(org.path),
                Transaction.business_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
                Transaction.rule_set_version_id.is_not(None),
            )
            .order_by(Transaction.rule_set_version_id)
        ).scalars()
    )


# Changes since a freeze ------------------------------------------------------------------------


@dataclass(frozen=True)
class LateTransaction:
    """A transaction of the frozen year recorded after the freeze, as it touched one participant."""

    transaction_id: int
    kind: str
    business_date: dt.date
    recorded_at: dt.datetime
    participant_id: int
    name: str
    #: Points it moved on the participant's account (negative when taken away).
    points: int
    #: Service minutes it recorded for the participant (negative on a reversal).
    service_minutes: int
    memo: str | None
    reverses_id: int | None


@dataclass(frozen=True)
class FreezeChanges:
    freeze: EvaluationFreeze
    #: Each cell that a fresh computation would now show otherwise, sheet by sheet, by participant.
    changes: Callable[[], Iterator[Change]]
    #: The year's transactions recorded after the freeze, oldest first.
    transactions: Callable[[], Iterator[LateTransaction]]


def changes_since_freeze(session: Session, *, org: OrgNode, year: int, today: dt.date) -> FreezeChanges:
    """Return what changed in ``org``'s evaluation of ``year`` since it was frozen (the freeze itself never does)."""
    freeze = find_freeze(session, org=org, year=check_year(year, today))
    if freeze is None:
        raise NotFound(f"{org.name}'s evaluation of {year} is not frozen", field="year")
    frozen = frozen_evaluation(session, freeze)
    fresh = live_evaluation(session, org=org, year=year, today=today)

    def changes() -> Iterator[Change]:
        current = {sheet.spec.code: sheet for sheet in fresh.sheets}
        for sheet in frozen.sheets:
            now = current.get(sheet.spec.code)
            if now is not None:
                yield from compare(sheet.spec.code, sheet.spec, sheet.rows(True), now.spec, now.rows(True))

    return FreezeChanges(freeze, changes, lambda: _late_transactions(session, freeze))


def _late_transactions(session: Session, freeze: EvaluationFreeze) -> Iterator[LateTransaction]:
    late = (
        Transaction.business_date.between(dt.date(freeze.year, 1, 1), dt.date(freeze.year, 12, 31)),
        Transaction.recorded_at > freeze.frozen_at,
    )
    moved = select(Transaction.id.label("transaction_id"), Posting.account_id, Posting.amount).join(
        Posting, Posting.transaction_id == Transaction.id
    ).where(*late)
    served_only = (
        select(Transaction.id, Transaction.subject_account_id, literal(0))
        .where(*late, Transaction.subject_account_id.is_not(None))
        .where(~select(Posting.id).where(Posting.transaction_id == Transaction.id).exists())
    )
    touched = union_all(moved, served_only).subquery("touched")
    place = aliased(OrgNode)
    query = (
        select(
            Transaction.id,
            Transaction.kind,
            Transaction.business_date,
            Transaction.recorded_at,
            Participant.id,
            Participant.display_name,
            touched.c.amount,
            case((Transaction.subject_account_id == touched.c.account_id, Transaction.service_minutes), else_=0),
            Transaction.memo,
            Transaction.reverses_id,
        )
        .select_from(touched)
        .join(Transaction, Transaction.id == touched.c.transaction_id)
        .join(Account, Account.id == touched.c.account_id)
        .join(Participant, Participant.id == Account.participant_id)
        .join(place, place.id == Participant.org_id)
        .where(place.path.startswith(freeze.org.path))
        .order_by(Transaction.recorded_at, Transaction.id, Participant.id)
    )
    for row in _streamed(session, query):
        yield LateTransaction(*row)


# The sheets ------------------------------------------------------------------------------------


def _participant_sheet(session: Session, org: OrgNode, year: int, rules: RuleSet) -> Sheet:
    universe = _universe(session, org, rules)
    ranked = _ranked_participants(org, universe, year, rules)
    titles = list(rules.titles.items())

    def rows(by_participant: bool) -> Rows:
        order = (
            (ranked.c.participant_id,)
            if by_participant
            else (
                ranked.c.community_path,
                case({Category.VOLUNTEER.value: 0, Category.PARTY_MEMBER.value: 1}, value=ranked.c.category, else_=2),
                ranked.c.points_earned.desc(),
                ranked.c.service_minutes.desc(),
                ranked.c.participant_id,
            )
        )
        for row in _streamed(session, select(ranked).where(ranked.c.in_org).order_by(*order)):
            fields = row._mapping
            record = ParticipantYear(
                participant_id=row.participant_id,
                name=row.name,
                category=Category(row.category),
                community=row.community,
                grid=row.place_name if row.in_grid else None,
                points_earned=row.points_earned,
                points_spent=row.points_spent,
                points_expired=row.points_expired,
                service_minutes=row.service_minutes,
                activities=row.activity_count,
                balance=row.balance,
                lifetime_minutes=row.lifetime_minutes,
                rank_grid=row.rank_grid if row.ranked and row.in_grid else None,
                rank_community=row.rank_community if row.ranked else None,
                rank_org=row.rank_org if row.ranked else None,
                home_activities=row.home_activities,
                home_minutes=row.home_minutes,
                titles={
                    code: TitleStanding(fields[f"t{index}_rank"] if row.ranked else None, fields[f"t{index}_ranked"])
                    if fields[f"t{index}_member"]
                    else None
                    for index, (code, _title) in enumerate(titles)
                },
            )
            yield record.participant_id, participant_cells(record, rules)

    return Sheet(participant_sheet(rules), rows, lambda: _count(session, org, None))


def _ranked_participants(org: OrgNode, universe: OrgNode, year: int, rules: RuleSet):
    """Return the subquery of every participant of ``universe`` with their year, ranks and title standings."""
    first_day = dt.date(year, 1, 1)
    this_year = PeriodTotal.starts_on == first_day
    counted = aliased(OrgNode)
    totals = (
        select(
            PeriodTotal.account_id,
            *(
                integer_sum(case((this_year, getattr(PeriodTotal, name)), else_=0)).label(name)
                for name in ("points_earned", "points_spent", "points_expired", "service_minutes", "activity_count")
            ),
            func.count(case((this_year, 1))).label("year_rows"),
            integer_sum(PeriodTotal.service_minutes).label("lifetime_minutes"),
            integer_sum(PeriodTotal.points_earned - PeriodTotal.points_spent - PeriodTotal.points_expired).label("balance"),
        )
        .join(Account, Account.id == PeriodTotal.account_id)
        .join(Participant, Participant.id == Account.participant_id)
        .join(counted, counted.id == Participant.org_id)
        .where(PeriodTotal.period == PeriodKind.YEAR, PeriodTotal.starts_on <= first_day, counted.path.startswith(universe.path))
        .group_by(PeriodTotal.account_id)
        .subquery("totals")
    )
    home = home_community_service(Period(first_day, dt.date(year, 12, 31)), within=universe).subquery("home")
    place, community = aliased(OrgNode), aliased(OrgNode)
    is_party = PartyMember.participant_id.is_not(None)
    is_unit = Participant.kind == ParticipantKind.UNIT
    base = (
        select(
            Participant.id.label("participant_id"),
            Participant.display_name.label("name"),
            case((is_unit, Category.UNIT.value), (is_party, Category.PARTY_MEMBER.value), else_=Category.VOLUNTEER.value).label(
                "category"
            ),
            is_unit.label("is_unit"),
            is_party.label("is_party"),
            Volunteer.participant_id.is_not(None).label("is_volunteer"),
            place.id.label("place_id"),
            place.name.label("place_name"),
            (place.kind == OrgKind.GRID).label("in_grid"),
            place.path.startswith(org.path).label("in_org"),
            community.id.label("community_id"),
            community.name.label("community"),
            community.path.label("community_path"),
            community.parent_id.label("street_id"),
            *(
                func.coalesce(getattr(totals.c, name), 0).label(name)
                for name in (
                    "points_earned",
                    "points_spent",
                    "points_expired",
                    "service_minutes",
                    "activity_count",
                    "lifetime_minutes",
                    "balance",
                )
            ),
            (func.coalesce(totals.c.year_rows, 0) > 0).label("ranked"),
            func.coalesce(home.c.activities, 0).label("home_activities"),
            func.coalesce(home.c.service_minutes, 0).label("home_minutes"),
        )
        .join(place, place.id == Participant.org_id)
        .join(community, community.id == place.community_id)
        .outerjoin(Volunteer, Volunteer.participant_id == Participant.id)
        .outerjoin(PartyMember, PartyMember.participant_id == Participant.id)
        .outerjoin(Account, Account.participant_id == Participant.id)
        .outerjoin(totals, totals.c.account_id == Account.id)
        .outerjoin(home, home.c.participant_id == Participant.id)
        .where(place.path.startswith(universe.path))
        .subquery("base")
    )
    b = base.c

    def rank_among(*partition):
        return func.rank().over(partition_by=[*partition, b.ranked], order_by=b.points_earned.desc())

    members = {Category.VOLUNTEER: b.is_volunteer, Category.PARTY_MEMBER: b.is_party, Category.UNIT: b.is_unit}
    scopes = {RankScope.GRID: b.place_id, RankScope.COMMUNITY: b.community_id, RankScope.STREET: b.street_id}
    title_columns = []
    for index, title in enumerate(rules.titles.values()):
        member, scope = members[title.category], scopes[title.scope]
        title_columns += [
            member.label(f"t{index}_member"),
            rank_among(member, scope).label(f"t{index}_rank"),
            func.count().over(partition_by=[member, scope, b.ranked]).label(f"t{index}_ranked"),
        ]
    return select(
        base,
        rank_among(b.category, b.place_id).label("rank_grid"),
        rank_among(b.category, b.community_id).label("rank_community"),
        rank_among(b.category, b.in_org).label("rank_org"),
        *title_columns,
    ).subquery("ranked")


def _party_member_sheet(session: Session, org: OrgNode, year: int, rules: RuleSet) -> Sheet:
    query = _party_members(org, year)
    c = query.selected_columns

    def rows(by_participant: bool) -> Rows:
        order = (c.participant_id,) if by_participant else (c.community_path, c.employer, c.name, c.participant_id)
        for row in _streamed(session, query.order_by(*order)):
            record = PartyMemberYear(
                participant_id=row.participant_id,
                name=row.name,
                employer=row.employer,
                community=row.community,
                reported_on=row.reported_on,
                home_activities=row.home_activities,
                home_minutes=row.home_minutes,
                points_earned=row.points_earned,
                orders_claimed=row.orders_claimed,
                orders_completed=row.orders_completed,
            )
            yield record.participant_id, party_member_cells(record, rules)

    return Sheet(PARTY_MEMBER_SHEET, rows, lambda: _count(session, org, PartyMember))


def _party_members(org: OrgNode, year: int, *, employer_unit_id: int | None = None) -> Select:
    """Return the query of each party member of ``org``'s subtree with their year, the employer's feedback too."""
    first_day = dt.date(year, 1, 1)
    home = home_community_service(Period(first_day, dt.date(year, 12, 31)), within=org).subquery("home")
    claims = claim_count_query(org, year).subquery("claims")
    latest = (
        select(PartyMemberRemark.participant_id, func.max(PartyMemberRemark.id).label("id"))
        .where(PartyMemberRemark.year == year)
        .group_by(PartyMemberRemark.participant_id)
        .subquery("latest")
    )
    place, community = aliased(OrgNode), aliased(OrgNode)
    query = (
        select(
            Participant.id.label("participant_id"),
            Participant.display_name.label("name"),
            EmployerUnit.id.label("employer_id"),
            EmployerUnit.name.label("employer"),
            EmployerUnit.party_members_employed,
            community.name.label("community"),
            community.path.label("community_path"),
            PartyMember.reported_on,
            func.coalesce(home.c.activities, 0).label("home_activities"),
            func.coalesce(home.c.service_minutes, 0).label("home_minutes"),
            func.coalesce(PeriodTotal.points_earned, 0).label("points_earned"),
            func.coalesce(claims.c.claims - claims.c.withdrawn, 0).label("orders_claimed"),
            func.coalesce(claims.c.confirmed, 0).label("orders_completed"),
            PartyMemberRemark.remark,
        )
        .join(PartyMember, PartyMember.participant_id == Participant.id)
        .join(EmployerUnit, EmployerUnit.id == PartyMember.employer_unit_id)
        .join(place, place.id == Participant.org_id)
        .join(community, community.id == place.community_id)
        .outerjoin(Account, Account.participant_id == Participant.id)
        .outerjoin(
            PeriodTotal,
            (PeriodTotal.account_id == Account.id) & (PeriodTotal.period == PeriodKind.YEAR) & (PeriodTotal.starts_on == first_day),
        )
        .outerjoin(home, home.c.participant_id == Participant.id)
        .outerjoin(claims, claims.c.participant_id == Participant.id)
        .outerjoin(latest, latest.c.participant_id == Participant.id)
        .outerjoin(PartyMemberRemark, PartyMemberRemark.id == latest.c.id)
        .where(place.path.startswith(org.path))
    )
    return query if employer_unit_id is None else query.where(EmployerUnit.id == employer_unit_id)


def _unit_sheet(session: Session, org: OrgNode, year: int, rules: RuleSet) -> Sheet:
    named = unit_kinds(rules)
    points = unit_points_query(org, year).subquery("unit_points")
    pivot = (
        select(
            points.c.participant_id,
            *(
                integer_sum(case((points.c.activity_type == kind, points.c.points), else_=0)).label(f"k{index}")
                for index, kind in enumerate(named)
            ),
            integer_sum(points.c.points).label("total"),
        )
        .group_by(points.c.participant_id)
        .subquery("pivot")
    )
    claims = claim_count_query(org, year).subquery("claims")
    place, community = aliased(OrgNode), aliased(OrgNode)
    query = (
        select(
            Participant.id.label("participant_id"),
            Participant.display_name.label("name"),
            CoBuildingUnit.unit_kind,
            CoBuildingUnit.reported_on,
            community.name.label("community"),
            community.path.label("community_path"),
            *(func.coalesce(pivot.c[f"k{index}"], 0).label(f"k{index}") for index in range(len(named))),
            func.coalesce(pivot.c.total, 0).label("total"),
            func.coalesce(claims.c.claims - claims.c.withdrawn, 0).label("claimed"),
            func.coalesce(claims.c.confirmed, 0).label("completed"),
        )
        .join(CoBuildingUnit, CoBuildingUnit.participant_id == Participant.id)
        .join(place, place.id == Participant.org_id)
        .join(community, community.id == place.community_id)
        .outerjoin(pivot, pivot.c.participant_id == Participant.id)
        .outerjoin(claims, claims.c.participant_id == Participant.id)
        .where(place.path.startswith(org.path))
    )
    c = query.selected_columns

    def rows(by_participant: bool) -> Rows:
        order = (c.participant_id,) if by_participant else (c.community_path, c.name, c.participant_id)
        for row in _streamed(session, query.order_by(*order)):
            by_kind = {kind: row._mapping[f"k{index}"] for index, kind in enumerate(named)}
            record = UnitYear(
                participant_id=row.participant_id,
                name=row.name,
                unit_kind=row.unit_kind,
                community=row.community,
                reported_on=row.reported_on,
                points_by_kind={**by_kind, OTHER_KIND: row.total - sum(by_kind.values())},
                projects_claimed=row.claimed,
                projects_completed=row.completed,
            )
            yield record.participant_id, unit_cells(record, rules)

    return Sheet(unit_sheet(rules), rows, lambda: _count(session, org, CoBuildingUnit))


# Feedback to employers -------------------------------------------------------------------------


@dataclass(frozen=True)
class EmployerFeedback:
    employer_unit_id: int
    name: str
    #: The party members it says it has; ``None`` until it says.
    party_members_employed: int | None
    #: Its party members who reported in to the region's communities (read once, in order).
    members: Iterator[FeedbackMember]


def employer_feedback(
    session: Session, *, org: OrgNode, year: int, today: dt.date, employer_unit_id: int | None = None
) -> tuple[RuleSet, Iterator[EmployerFeedback]]:
    """Return the rules whose yearly requirement applies, and each employer's feedback, by employer name.

    Each feedback must be read to its end before the next is asked for: all of them come from
    one streamed query.
    """
    year = check_year(year, today)
    rules = rules_of(version_in_force(session, org, min(dt.date(year, 12, 31), today)))
    employer = None
    if employer_unit_id is not None:
        employer = session.get(EmployerUnit, employer_unit_id)
        if employer is None:
            raise NotFound(f"employer unit {employer_unit_id} does not exist", field="employer_unit_id")
    query = _party_members(org, year, employer_unit_id=employer_unit_id)
    c = query.selected_columns
    rows = _streamed(session, query.order_by(c.employer, c.employer_id, c.community_path, c.name, c.participant_id))

    def feedbacks() -> Iterator[EmployerFeedback]:
        seen = False
        for (employer_id, name, employed), members in itertools.groupby(
            rows, key=lambda row: (row.employer_id, row.employer, row.party_members_employed)
        ):
            seen = True
            yield EmployerFeedback(employer_id, name, employed, (_member(row) for row in members))
        if employer is not None and not seen:
            yield EmployerFeedback(employer.id, employer.name, employer.party_members_employed, iter(()))

    return rules, feedbacks()


def _member(row) -> FeedbackMember:
    return FeedbackMember(
        name=row.name,
        community=row.community,
        reported_on=row.reported_on,
        activities=row.home_activities,
        service_minutes=row.home_minutes,
        orders_claimed=row.orders_claimed,
        orders_completed=row.orders_completed,
        remark=row.remark,
    )


def write_remark(
    session: Session, *, actor: AppUser, participant_id: int, year: int, remark: str, now: dt.datetime
) -> PartyMemberRemark:
    """Record the home community's remark on a party member's year; a later remark replaces it in the feedback."""
    if type(year) is not int or not 2000 <= year <= 2100:
        raise InvalidInput("must be a year such as 2026", field="year")
    text = check_name(remark, field="remark", max_length=MAX_REMARK_LENGTH)
    if session.get(PartyMember, participant_id) is None:
        raise NotFound(f"participant {participant_id} is not a party member who reported in", field="participant_id")
    written = PartyMemberRemark(
        participant_id=participant_id, year=year, remark=text, written_by_id=actor.id, written_at=now
    )
    session.add(written)
    session.flush()
    return written


def set_party_members_employed(session: Session, *, employer_unit_id: int, count: int) -> EmployerUnit:
    """Record how many in-service party members an employer has: its report-in rate is counted against it."""
    if type(count) is not int or not 0 <= count <= 10**6:
        raise InvalidInput("must be a whole number from 0 to 1000000", field="party_members_employed")
    employer = session.get(EmployerUnit, employer_unit_id)
    if employer is None:
        raise NotFound(f"employer unit {employer_unit_id} does not exist", field="employer_unit_id")
    employer.party_members_employed = count
    session.flush()
    return employer


# Helpers ---------------------------------------------------------------------------------------


def _streamed(session: Session, query) -> Iterator:
    """Yield the rows of ``query`` a batch at a time (a server-side cursor on PostgreSQL)."""
    yield from session.execute(query.execution_options(yield_per=BATCH))


def _count(session: Session, org: OrgNode, model) -> int:
    """Return how many participants of ``org``'s subtree there are (those with a ``model`` row, if given)."""
    place = aliased(OrgNode)
    query = select(func.count(Participant.id)).join(place, place.id == Participant.org_id).where(place.path.startswith(org.path))
    if model is not None:
        query = query.join(model, model.participant_id == Participant.id)
    return session.scalar(query)


def _universe(session: Session, org: OrgNode, rules: RuleSet) -> OrgNode:
    """Return the node whose subtree holds everyone ``org``'s participants are ranked against.

    Ranks in the community reach above a grid; a title ranked within the street reaches above
    a community.
    """
    if org.kind in (OrgKind.DISTRICT, OrgKind.STREET):
        return org
    if any(title.scope is RankScope.STREET for title in rules.titles.values()):
        return session.get(OrgNode, path_ids(org.path)[1])
    return session.get(OrgNode, org.community_id)


def _lock_chains(session: Session, universe: OrgNode) -> None:
    """Take the chain locks of every book the evaluation reads: ``universe``'s subtree and its ancestors."""
    books = aliased(OrgNode)
    session.execute(
        select(ChainHead.org_id)
        .join(books, books.id == ChainHead.org_id)
        .where(books.path.startswith(universe.path) | books.id.in_(path_ids(universe.path)))
        .order_by(ChainHead.org_id)
        .with_for_update(of=ChainHead)
    ).all()
