"""Replay: recompute every scored entry from its activity under its recorded rule version.

Walking the ledger in the order it was written, replay keeps each participant's running day,
month and year totals exactly as the write path did, and for each entry that scored an
activity it checks three things:

* the totals the entry says it saw before it (``earned_before`` in its breakdown) are the
  totals the ledger had at that point;
* scoring the stored activity again, under the stored rule version and with those totals,
  gives the same breakdown, points and service minutes;
* the entry's posting to the participant carries exactly those points.

The participant's category and the org's time zone are taken from the breakdown: they are
facts of the moment of scoring (a volunteer may report in as a party member later on).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ledger.errors import LedgerError
from ledger.models import Account, AccountKind, Activity, Posting, RuleSetVersion, Transaction, TransactionKindCode
from ledger.activities import Service
from ledger.points import EarnedSoFar, score_activity
from ledger.rules import rules_of
from ledger.rulesets import Category
from ledger.transactions import PERIOD_TOTAL_COLUMNS, activity_count_change, period_effects, period_starts
from ledger.verify import STREAM_BATCH, Problem


@dataclass
class ReplayReport:
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class RunningTotals:
    """Day and month totals per participant account, as the write path keeps them."""

    def __init__(self):
        self.totals: dict[tuple[int, str, dt.date], dict[str, int]] = {}

    def add(self, business_date: dt.date, effects: dict[int, dict[str, int]]) -> None:
        for account_id, changes in effects.items():
            for period, starts_on in period_starts(business_date):
                row = self.totals.setdefault((account_id, period, starts_on), dict.fromkeys(PERIOD_TOTAL_COLUMNS, 0))
                for name, change in changes.items():
                    row[name] += change

    def add_to_month(self, account_id: int, first_of_month: dt.date, points: int) -> None:
        """Count points earned in a month without saying on which day (seeding a window)."""
        row = self.totals.setdefault((account_id, "month", first_of_month), dict.fromkeys(PERIOD_TOTAL_COLUMNS, 0))
        row["points_earned"] += points

    def earned_before(self, account_id: int, day: dt.date) -> EarnedSoFar:
        """Return what the write path's ``earned_so_far`` returned at this point of the ledger."""
        day_row = self.totals.get((account_id, "day", day), {})
        months = {month: self.totals.get((account_id, "month", dt.date(day.year, month, 1)), {}) for month in range(1, 13)}
        return EarnedSoFar(
            day_minutes=max(day_row.get("service_minutes", 0), 0),
            month_points=max(months[day.month].get("points_earned", 0), 0),
            year_points=max(sum(month.get("points_earned", 0) for month in months.values()), 0),
        )


def replay_ledger(session: Session) -> ReplayReport:
    """Recompute every scored entry and report each that does not come out the same."""
    report = ReplayReport()
    participant_accounts = set(
        session.execute(select(Account.id).where(Account.kind == AccountKind.PARTICIPANT)).scalars()
    )
    versions = {version.id: version for version in session.execute(select(RuleSetVersion)).scalars()}
    running = RunningTotals()
    reversed_tx = aliased(Transaction)
    query = (
        select(Transaction, reversed_tx.kind, Posting.account_id, Posting.amount)
        .outerjoin(Posting, Posting.transaction_id == Transaction.id)
        .outerjoin(reversed_tx, reversed_tx.id == Transaction.reverses_id)
        .order_by(Transaction.id, Posting.account_id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for _, rows in groupby(session.execute(query), key=lambda row: row[0].id):
        rows = list(rows)
        transaction, reversed_kind = rows[0][0], rows[0][1]
        postings = [(account_id, amount) for *_, account_id, amount in rows if account_id is not None]
        if transaction.kind == TransactionKindCode.EARN and transaction.activity_id is not None:
            report.entries += 1
            problem = _replay_entry(session, transaction, postings, versions, running)
            if problem is not None:
                report.problems.append(problem)
        running.add(
            transaction.business_date,
            period_effects(
                counted_kind=reversed_kind or transaction.kind,
                participant_postings=[(a, amount) for a, amount in postings if a in participant_accounts],
                subject_account_id=transaction.subject_account_id,
                service_minutes=transaction.service_minutes,
                activity_count=activity_count_change(
                    transaction.activity_id, bool(postings), transaction.service_minutes, reversal=reversed_kind is not None
                ),
            ),
        )
        session.expunge(transaction)
    return report


def _replay_entry(session, transaction, postings, versions, running: RunningTotals) -> Problem | None:
    where = dict(chain_id=transaction.chain_id, seq=transaction.seq, transaction_id=transaction.id)
    breakdown = transaction.breakdown or {}
    inputs = breakdown.get("inputs", {}) if isinstance(breakdown, dict) else {}
    version = versions.get(transaction.rule_set_version_id)
    activity = session.get(Activity, transaction.activity_id)
    if version is None or activity is None or not inputs:
        return Problem("replay", "the entry lacks its rule version, activity or recorded inputs", **where)
    earned = running.earned_before(transaction.subject_account_id, transaction.business_date)
    recorded_earned = inputs.get("earned_before")
    if recorded_earned != {"day_minutes": earned.day_minutes, "month_points": earned.month_points, "year_points": earned.year_points}:
        return Problem(
            "replay", f"the entry says it saw {recorded_earned} earned before it; the ledger had {earned}", **where
        )
    try:
        score = score_activity(
            Service.of(activity).facts(Category(inputs.get("category")), inputs.get("time_zone")),
            rules_of(version),
            earned,
        )
    except (LedgerError, ValueError) as error:
        return Problem("replay", f"the activity no longer scores under its rule version: {error}", **where)
    credited = sum(amount for account_id, amount in postings if account_id == transaction.subject_account_id)
    if score.breakdown != breakdown:
        return Problem("replay", _difference(breakdown, score.breakdown), **where)
    if (credited, transaction.service_minutes, transaction.business_date) != (
        score.points,
        score.service_minutes,
        score.business_date,
    ):
        return Problem(
            "replay",
            f"the entry credits {credited} points and {transaction.service_minutes} minutes; "
            f"replay gives {score.points} points and {score.service_minutes} minutes",
            **where,
        )
    return None


def _difference(stored: dict, replayed: dict) -> str:
    """Describe where a stored breakdown departs from the replayed one."""
    if stored.get("points") != replayed.get("points"):
        return f"the breakdown says {stored.get('points')} points; replay gives {replayed.get('points')}"
    for index, (left, right) in enumerate(zip(stored.get("steps", []), replayed.get("steps", []))):
        if left != right:
            return f"step {index + 1} of the breakdown says {left}; replay gives {right}"
    return "the stored breakdown differs from the replayed one"
