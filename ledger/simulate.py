"""What-if: apply a draft rule set to a past period and report who would change, writing nothing.

Every activity scored in the org's subtree in the period is scored again under the draft, in
the order the ledger scored it, with each person's cap windows kept as the draft would have
filled them (starting from what they had actually earned earlier in the same month and year).
The category and time zone recorded at scoring time are reused, as replay does.

For each participant the report gives points and service hours before and after, the star
level under the rules in force and under the draft, the rank within the org by points in
the period, and each title's eligibility under both, with the period counted as the year.
Service the same people did outside the org during the period is not re-scored; their cap
windows count only what is simulated here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from ledger.errors import InvalidInput
from ledger.models import (
    Account,
    Activity,
    OrgNode,
    Participant,
    PeriodKind,
    PeriodTotal,
    Posting,
    Transaction,
    TransactionKindCode,
)
from ledger.points import score_activity
from ledger.replay import RunningTotals
from ledger.rewards import YearRecord, party_requirement_met, standings, star_standing, title_eligibility
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import Category, RuleSet
from ledger.activities import Service, participant_category

MAX_PERIOD = dt.timedelta(days=366)


@dataclass(frozen=True)
class Outcome:
    """One participant's period under one rule set."""

    points: int
    service_minutes: int
    activities: int
    stars: int
    rank: int
    titles: frozenset[str]


@dataclass(frozen=True)
class ParticipantChange:
    participant_id: int
    name: str
    before: Outcome
    after: Outcome

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class SimulationReport:
    org: OrgNode
    start: dt.date
    end: dt.date
    draft_name: str
    activities: int
    participants: tuple[ParticipantChange, ...]

    def totals(self) -> tuple[int, int]:
        """Return all points in the period before and after."""
        return (sum(p.before.points for p in self.participants), sum(p.after.points for p in self.participants))


@dataclass
class _Tally:
    points: int = 0
    minutes: int = 0
    activities: int = 0


def simulate(session: Session, *, org: OrgNode, draft: RuleSet, draft_name: str, start: dt.date, end: dt.date) -> SimulationReport:
    """Score the period's activities in ``org`` again under ``draft`` and compare; write nothing."""
    if end < start:
        raise InvalidInput("must not be before the start", field="end")
    if end - start > MAX_PERIOD:
        raise InvalidInput("a simulation covers at most a year", field="end")
    entries = _scored_entries(session, org, start, end)
    running = _seed(session, {entry.subject_account_id for entry, *_ in entries}, start)
    before: dict[int, _Tally] = {}
    after: dict[int, _Tally] = {}
    for transaction, activity, participant_id, credited in entries:
        inputs = transaction.breakdown["inputs"]
        score = score_activity(
            Service.of(activity).facts(Category(inputs["category"]), inputs["time_zone"]),
            draft,
            running.earned_before(transaction.subject_account_id, transaction.business_date),
        )
        running.add(
            transaction.business_date,
            {transaction.subject_account_id: {"points_earned": score.points, "service_minutes": score.service_minutes}},
        )
        _count(before.setdefault(participant_id, _Tally()), credited, transaction.service_minutes)
        _count(after.setdefault(participant_id, _Tally()), score.points, score.service_minutes)

    current = rules_of(version_in_force(session, org, end))
    participants = {p.id: p for p in session.execute(select(Participant).where(Participant.id.in_(before))).scalars()}
    lifetime = _lifetime_minutes(session, [p.account.id for p in participants.values()], end)
    changes = _compare(participants, lifetime, before, after, current, draft)
    return SimulationReport(org, start, end, draft_name, len(entries), changes)


def _count(tally: _Tally, points: int, minutes: int) -> None:
    tally.points += points
    tally.minutes += minutes
    tally.activities += 1 if (points or minutes) else 0


def _scored_entries(session: Session, org: OrgNode, start: dt.date, end: dt.date):
    """Return the standing earn entries of the period in the org's subtree, in ledger order."""
    reversal = aliased(Transaction)
    credited = (
        select(Posting.amount)
        .where(Posting.transaction_id == Transaction.id, Posting.account_id == Transaction.subject_account_id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Transaction, Activity, Account.participant_id, credited)
        .join(Activity, Activity.id == Transaction.activity_id)
        .join(Account, Account.id == Transaction.subject_account_id)
        .join(OrgNode, OrgNode.id == Transaction.org_id)
        .where(
            Transaction.kind == TransactionKindCode.EARN,
            Transaction.business_date.between(start, end),
            OrgNode.path.startswith(org.path),
            ~exists().where(reversal.reverses_id == Transaction.id),
        )
        .order_by(Transaction.id)
    ).all()
    return [(transaction, activity, participant_id, points or 0) for transaction, activity, participant_id, points in rows]


def _seed(session: Session, account_ids: set[int], start: dt.date) -> RunningTotals:
    """Start the cap windows from what each person actually earned earlier in the year.

    Whole months before the start count as they stand; the start's own month counts the days
    before the start (its month total also holds the days being simulated).
    """
    running = RunningTotals()
    first_of_month = start.replace(day=1)
    rows = session.execute(
        select(PeriodTotal).where(
            PeriodTotal.account_id.in_(account_ids),
            PeriodTotal.starts_on >= start.replace(month=1, day=1),
            PeriodTotal.starts_on < start,
        )
    ).scalars()
    for row in rows:
        whole_month = row.period == PeriodKind.MONTH and row.starts_on < first_of_month
        day_this_month = row.period == PeriodKind.DAY and row.starts_on >= first_of_month
        if whole_month or day_this_month:
            running.add_to_month(row.account_id, row.starts_on.replace(day=1), row.points_earned)
    return running


def _lifetime_minutes(session: Session, account_ids: list[int], end: dt.date) -> dict[int, int]:
    rows = session.execute(
        select(PeriodTotal.account_id, PeriodTotal.service_minutes).where(
            PeriodTotal.account_id.in_(account_ids),
            PeriodTotal.period == PeriodKind.MONTH,
            PeriodTotal.starts_on <= end,
        )
    ).all()
    totals: dict[int, int] = {}
    for account_id, minutes in rows:
        totals[account_id] = totals.get(account_id, 0) + minutes
    return totals


def _compare(participants, lifetime, before, after, current: RuleSet, draft: RuleSet) -> tuple[ParticipantChange, ...]:
    ranks_before = {s.participant_id: s.rank for s in standings((pid, t.points, t.minutes) for pid, t in before.items())}
    ranks_after = {s.participant_id: s.rank for s in standings((pid, t.points, t.minutes) for pid, t in after.items())}
    ranked = len(before)
    changes = []
    for participant_id, participant in sorted(participants.items()):
        categories = _categories(participant)
        cumulative = lifetime.get(participant.account.id, 0)
        outcomes = []
        for rules, tallies, ranks, minutes in (
            (current, before, ranks_before, cumulative),
            (draft, after, ranks_after, cumulative - before[participant_id].minutes + after[participant_id].minutes),
        ):
            tally = tallies[participant_id]
            record = YearRecord(
                participant_id=participant_id,
                categories=categories,
                points=tally.points,
                service_minutes=tally.minutes,
                activities=tally.activities,
                rank=ranks[participant_id],
                ranked=ranked,
                party_requirement_met=party_requirement_met(rules.party_members, tally.activities, tally.minutes),
            )
            titles = frozenset(
                code for code, title in rules.titles.items() if title_eligibility(title, record).eligible
            )
            stars = star_standing(max(minutes, 0), rules.star_levels.hours).level
            outcomes.append(Outcome(tally.points, tally.minutes, tally.activities, stars, ranks[participant_id], titles))
        changes.append(ParticipantChange(participant_id, participant.display_name, *outcomes))
    return tuple(sorted(changes, key=lambda c: (not c.changed, -abs(c.after.points - c.before.points), c.participant_id)))


def _categories(participant: Participant) -> frozenset[Category]:
    """Every category a participant counts in for titles: a person may be volunteer and party member."""
    if participant.kind == "unit":
        return frozenset({Category.UNIT})
    categories = {participant_category(participant)}
    if participant.person is not None and participant.person.volunteer is not None:
        categories.add(Category.VOLUNTEER)
    return frozenset(categories)
