"""Expiry (积分过期): first earned first expired, never what was spent, and only once per day."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.errors import InvalidInput
from ledger.expiry import expire_points, expiring_soon
from ledger.models import Account, AccountKind, AppUser, OrgNode, PeriodKind, PeriodTotal, Transaction
from ledger.points import transfer
from ledger.rewards import (
    describe_expiry,
    due_to_expire,
    expiry_breakdown,
    expiry_date,
    lots_and_deductions,
    upcoming_expiries,
)
from ledger.rules import publish_document
from ledger.ruleset_schema import default_rules_text
from ledger.rulesets import Expiry, ExpiryPolicy
from ledger.transactions import record_transaction, system_account
from ledger.verify import verify_ledger
from tests.helpers import earn, ledger_counts, spend

D = dt.date
YEARLY = Expiry(ExpiryPolicy.END_OF_FOLLOWING_YEAR)
NEVER = Expiry()


def months(count: int) -> Expiry:
    return Expiry(ExpiryPolicy.MONTHS_AFTER_EARNED, count)


# The pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned_on", "policy", "expires_on"),
    [
        (D(2025, 1, 1), YEARLY, D(2027, 1, 1)),
        (D(2025, 12, 31), YEARLY, D(2027, 1, 1)),
        (D(2026, 1, 1), YEARLY, D(2028, 1, 1)),
        (D(2025, 3, 31), months(24), D(2027, 3, 31)),
        (D(2025, 3, 15), months(11), D(2026, 2, 15)),
        (D(2025, 1, 31), months(1), D(2025, 2, 28)),
        (D(2024, 1, 31), months(1), D(2024, 2, 29)),
        (D(2024, 2, 29), months(12), D(2025, 2, 28)),
        (D(2025, 12, 1), months(1), D(2026, 1, 1)),
        (D(2025, 6, 30), NEVER, None),
    ],
)
def test_the_first_day_a_lot_is_expired(earned_on, policy, expires_on):
    assert expiry_date(earned_on, policy) == expires_on


def test_negative_days_are_deductions_not_lots():
    days = [(D(2025, 5, 1), 30), (D(2025, 2, 1), 100), (D(2025, 3, 1), -20), (D(2025, 4, 1), 0)]
    assert lots_and_deductions(days) == ([(D(2025, 2, 1), 100), (D(2025, 5, 1), 30)], 20)


LOTS = [(D(2025, 3, 1), 100), (D(2026, 5, 1), 50)]


@pytest.mark.parametrize(
    ("consumed", "as_of", "due"),
    [
        (30, D(2026, 12, 31), 0),
        (30, D(2027, 1, 1), 70),
        (30, D(2028, 1, 1), 120),
        (100, D(2027, 1, 1), 0),
        (120, D(2028, 1, 1), 30),
        (150, D(2028, 1, 1), 0),
    ],
)
def test_what_is_due_is_the_unconsumed_part_of_the_expired_lots(consumed, as_of, due):
    assert due_to_expire(LOTS, consumed, YEARLY, as_of) == due


def test_upcoming_expiries_list_the_unconsumed_remainder_by_day():
    assert upcoming_expiries(LOTS, 30, YEARLY, D(2026, 7, 1)) == [(D(2027, 1, 1), 70), (D(2028, 1, 1), 50)]
    assert upcoming_expiries(LOTS, 30, YEARLY, D(2027, 1, 1)) == [(D(2028, 1, 1), 50)]
    assert upcoming_expiries(LOTS, 120, YEARLY, D(2026, 7, 1)) == [(D(2028, 1, 1), 30)]
    assert upcoming_expiries(LOTS, 0, NEVER, D(2026, 7, 1)) == []


def test_lots_must_be_positive_and_consumption_not_negative():
    with pytest.raises(InvalidInput, match="lots"):
        due_to_expire([(D(2025, 1, 1), 0)], 0, YEARLY, D(2027, 1, 1))
    with pytest.raises(InvalidInput, match="consumed"):
        due_to_expire(LOTS, -1, YEARLY, D(2027, 1, 1))


def test_the_breakdown_explains_an_expiry_in_both_languages():
    breakdown = expiry_breakdown(LOTS, 30, YEARLY, D(2027, 1, 1))
    assert breakdown == {
        "policy": "end_of_following_year",
        "months": None,
        "as_of": "2027-01-01",
        "earned_expiring": 100,
        "consumed": 30,
        "expiring": [{"expires_on": "2027-01-01", "points": 70}],
        "expired": 70,
    }
    assert describe_expiry(breakdown) == [
        "规则：积分在获得次年的年底过期",
        "截至 2027-01-01 到期的积分：共获得 100 分",
        "已使用或过期 30 分，先抵扣最早获得的积分",
        "2027-01-01 到期未使用：70 分",
        "本次过期 70 分",
    ]
    monthly = describe_expiry(expiry_breakdown(LOTS, 0, months(6), D(2025, 9, 1)), "en")
    assert monthly[0] == "Rule: points expire 6 months after they were earned"
    assert monthly[-1] == "Expired now: 100"
    with pytest.raises(InvalidInput, match="language"):
        describe_expiry(breakdown, "fr")


policies = st.one_of(st.just(NEVER), st.just(YEARLY), st.integers(1, 36).map(months))
days = st.dates(D(2024, 1, 1), D(2027, 12, 31))
lot_lists = st.lists(st.tuples(days, st.integers(1, 40)), max_size=8, unique_by=lambda lot: lot[0])


def unit_expiries(lots, consumed, policy) -> list:
    """The brute-force model: every point on its own, oldest first, the first ``consumed`` gone."""
    units = [expiry_date(day, policy) for day, points in sorted(lots) for _ in range(points)]
    return units[consumed:]


@st.composite
def holdings(draw):
    """Lots, and points spent and already expired that together never exceed what was earned."""
    lots = draw(lot_lists)
    earned = sum(points for _, points in lots)
    spent = draw(st.integers(0, earned))
    expired_so_far = draw(st.integers(0, earned - spent))
    return lots, spent, expired_so_far


@given(holdings(), policies, days)
def test_expiry_is_fifo_never_takes_spent_points_and_never_more_than_the_balance(holding, policy, as_of):
    lots, spent, expired_so_far = holding
    consumed = spent + expired_so_far
    balance = sum(points for _, points in lots) - consumed
    due = due_to_expire(lots, consumed, policy, as_of)
    assert due == sum(1 for day in unit_expiries(lots, consumed, policy) if day is not None and day <= as_of)
    assert 0 <= due <= balance
    assert due + spent + expired_so_far <= sum(points for _, points in lots)
    assert due_to_expire(lots, consumed + due, policy, as_of) == 0
    assert due_to_expire(lots, consumed, policy, as_of + dt.timedelta(days=1)) >= due


@given(holdings(), policies, days)
def test_what_expires_now_and_later_adds_up_to_the_balance(holding, policy, as_of):
    lots, spent, expired_so_far = holding
    consumed = spent + expired_so_far
    upcoming = upcoming_expiries(lots, consumed, policy, as_of)
    expected = Counter(day for day in unit_expiries(lots, consumed, policy) if day is not None and day > as_of)
    assert upcoming == sorted(expected.items())
    if policy.policy != ExpiryPolicy.NEVER:
        balance = sum(points for _, points in lots) - consumed
        assert due_to_expire(lots, consumed, policy, as_of) + sum(points for _, points in upcoming) == balance


# Through the ledger -------------------------------------------------------------------------


@pytest.fixture
def ledger_ops(session, write, street, actor_id):
    """Earn, penalise and spend on given days, each in its own committed write."""
    keys = itertools.count(1)

    def penalise(account_id, amount, on):
        def work():
            org = session.get(OrgNode, street.community)
            return record_transaction(
                session,
                actor=session.get(AppUser, actor_id),
                org=org,
                kind="penalty",
                legs=transfer(account_id, system_account(session, org, AccountKind.ADJUSTMENT).id, amount),
                business_date=on,
                idempotency_key=f"penalty-{next(keys)}",
            )

        return write(work)

    def earn_on(account_id, amount, on, org_id=None):
        return write(lambda: earn(session, actor_id, org_id or street.community, account_id, amount, on))

    def spend_on(account_id, amount, on):
        return write(
            lambda: spend(
                session,
                actor_id=actor_id,
                org_id=street.community,
                account_id=account_id,
                amount=amount,
                key=f"spend-{next(keys)}",
                business_date=on,
            )
        )

    return SimpleNamespace(earn=earn_on, penalise=penalise, spend=spend_on)


@pytest.fixture
def expire(session, write, actor_id):
    """Run an expiry for a day, each batch committed on its own as the command does."""

    def run(as_of: dt.date, *, org_id: int | None = None):
        org = session.get(OrgNode, org_id) if org_id else None
        return expire_points(session, actor=session.get(AppUser, actor_id), as_of=as_of, org=org, each_batch=write)

    return run


def balance(session, account_id: int) -> int:
    session.rollback()
    return session.get(Account, account_id).balance


def year_totals(session, account_id: int) -> tuple[int, int, int]:
    """Points earned, spent and expired over all years, from the period totals."""
    session.rollback()
    years = session.execute(
        select(PeriodTotal.points_earned, PeriodTotal.points_spent, PeriodTotal.points_expired).where(
            PeriodTotal.account_id == account_id, PeriodTotal.period == PeriodKind.YEAR
        )
    ).all()
    return tuple(sum(year[column] for year in years) for column in range(3))


def test_points_earned_in_2025_expire_on_the_first_day_of_2027(
    session, default_rules, make_volunteer, ledger_ops, expire
):
    account = make_volunteer()
    ledger_ops.earn(account, 100, D(2025, 6, 1))
    ledger_ops.earn(account, 40, D(2026, 3, 1))

    before = ledger_counts(session)
    assert expire(D(2026, 12, 31)).points_expired == 0
    assert ledger_counts(session) == before

    run = expire(D(2027, 1, 1))
    assert (run.accounts_examined, run.accounts_expired, run.points_expired) == (1, 1, 100)
    assert balance(session, account) == 40
    entry = session.execute(select(Transaction).where(Transaction.kind == "expire")).scalar_one()
    expiry_account = system_account(session, session.get(OrgNode, entry.org_id), AccountKind.EXPIRY)
    assert entry.org_id == session.get(Account, account).org_id and entry.business_date == D(2027, 1, 1)
    assert {(p.account_id, p.amount) for p in entry.postings} == {(account, -100), (expiry_account.id, 100)}
    assert entry.rule_set_version_id == default_rules
    assert entry.breakdown["expiring"] == [{"expires_on": "2027-01-01", "points": 100}]
    assert session.get(PeriodTotal, (account, PeriodKind.YEAR, D(2027, 1, 1))).points_expired == 100
    assert session.get(PeriodTotal, (account, PeriodKind.DAY, D(2027, 1, 1))).points_expired == 100
    assert year_totals(session, account) == (140, 0, 100)
    assert verify_ledger(session).ok


def test_spending_takes_the_oldest_points_first_and_spent_points_never_expire(
    session, default_rules, make_volunteer, ledger_ops, expire
):
    partly_spent, all_spent = make_volunteer(), make_volunteer(name="王芳")
    for account in (partly_spent, all_spent):
        ledger_ops.earn(account, 100, D(2025, 2, 1))
        ledger_ops.earn(account, 50, D(2026, 2, 1))
    ledger_ops.spend(partly_spent, 30, D(2026, 6, 1))
    ledger_ops.spend(all_spent, 120, D(2025, 8, 1))

    run = expire(D(2027, 1, 1))
    assert (run.accounts_expired, run.points_expired) == (1, 70)
    assert balance(session, partly_spent) == 50 and balance(session, all_spent) == 30

    later = expire(D(2028, 1, 1))
    assert (later.accounts_expired, later.points_expired) == (2, 80)
    for account in (partly_spent, all_spent):
        earned, spent, expired = year_totals(session, account)
        assert balance(session, account) == earned - spent - expired == 0
    assert year_totals(session, all_spent) == (150, 120, 30)
    assert verify_ledger(session).ok


def test_a_penalty_day_consumes_the_oldest_points(session, default_rules, make_volunteer, ledger_ops, expire):
    account = make_volunteer()
    ledger_ops.earn(account, 100, D(2025, 1, 5))
    ledger_ops.earn(account, 20, D(2026, 1, 5))
    ledger_ops.penalise(account, 30, D(2026, 4, 1))
    assert expire(D(2027, 1, 1)).points_expired == 70
    assert balance(session, account) == 20


def test_a_second_run_for_the_same_day_writes_nothing(session, default_rules, make_volunteer, ledger_ops, expire):
    accounts = [make_volunteer(name=f"志愿者{n}") for n in range(3)]
    for account in accounts:
        ledger_ops.earn(account, 10, D(2025, 9, 9))
    assert expire(D(2027, 1, 1)).points_expired == 30
    before = ledger_counts(session)
    again = expire(D(2027, 1, 1))
    assert (again.accounts_examined, again.accounts_expired, again.points_expired) == (3, 0, 0)
    assert ledger_counts(session) == before
    assert verify_ledger(session).ok


def test_batches_cover_every_account_once_each_committed_on_its_own(
    session, write, default_rules, make_volunteer, ledger_ops, expire, actor_id
):
    accounts = [make_volunteer(name=f"志愿者{n}") for n in range(5)]
    for points, account in enumerate(accounts, start=1):
        ledger_ops.earn(account, points, D(2025, 9, 9))
    batches = []

    def each_batch(work):
        batches.append(work)
        return write(work)

    run = expire_points(
        session, actor=session.get(AppUser, actor_id), as_of=D(2027, 1, 1), batch_size=2, each_batch=each_batch
    )
    assert (run.accounts_examined, run.accounts_expired, run.points_expired) == (5, 5, 15)
    assert len(batches) == 3
    assert all(balance(session, account) == 0 for account in accounts)


def test_an_org_run_expires_only_its_subtree(session, street, default_rules, make_volunteer, ledger_ops, expire):
    inside, outside = make_volunteer(), make_volunteer(org_id=street.other_community, name="王芳")
    ledger_ops.earn(inside, 10, D(2025, 9, 9))
    ledger_ops.earn(outside, 20, D(2025, 9, 9), org_id=street.other_community)
    run = expire(D(2027, 1, 1), org_id=street.community)
    assert (run.accounts_examined, run.points_expired) == (1, 10)
    assert balance(session, inside) == 0 and balance(session, outside) == 20


def test_without_published_rules_nothing_expires(session, make_volunteer, ledger_ops, expire):
    account = make_volunteer()
    ledger_ops.earn(account, 10, D(2025, 9, 9))
    run = expire(D(2030, 1, 1))
    assert (run.accounts_examined, run.points_expired) == (1, 0)
    assert expiring_soon(session, account, today=D(2026, 1, 1)) == []


def test_the_policy_in_force_for_the_participants_org_decides(
    session, write, street, default_rules, actor_id, make_volunteer, ledger_ops, expire
):
    text = default_rules_text().replace("policy: end_of_following_year", "policy: months_after_earned\n  months: 6")
    write(
        lambda: publish_document(
            session, actor=session.get(AppUser, actor_id), org=session.get(OrgNode, street.community), text=text
        )
    )
    monthly, yearly = make_volunteer(), make_volunteer(org_id=street.other_community, name="王芳")
    ledger_ops.earn(monthly, 10, D(2025, 8, 31))
    ledger_ops.earn(yearly, 10, D(2025, 8, 31), org_id=street.other_community)
    assert expiring_soon(session, monthly, today=D(2025, 9, 1)) == [(D(2026, 2, 28), 10)]
    assert expire(D(2026, 2, 27)).points_expired == 0
    assert expire(D(2026, 2, 28)).points_expired == 10
    assert balance(session, monthly) == 0 and balance(session, yearly) == 10
    entry = session.execute(select(Transaction).where(Transaction.kind == "expire")).scalar_one()
    assert entry.breakdown["policy"] == "months_after_earned" and entry.breakdown["months"] == 6


def test_a_volunteer_sees_what_expires_next_and_when(session, default_rules, make_volunteer, ledger_ops, expire):
    account = make_volunteer()
    ledger_ops.earn(account, 100, D(2025, 3, 1))
    ledger_ops.earn(account, 50, D(2026, 5, 1))
    ledger_ops.spend(account, 30, D(2026, 6, 1))
    assert expiring_soon(session, account, today=D(2026, 7, 1)) == [(D(2027, 1, 1), 70), (D(2028, 1, 1), 50)]
    expire(D(2027, 1, 1))
    assert expiring_soon(session, account, today=D(2027, 1, 1)) == [(D(2028, 1, 1), 50)]


def test_expiring_soon_of_an_unknown_account_is_not_found(session, default_rules, street):
    from ledger.errors import NotFound

    with pytest.raises(NotFound):
        expiring_soon(session, 10**6, today=D(2026, 1, 1))


operations = st.lists(
    st.tuples(st.sampled_from(["earn", "spend"]), st.integers(1, 60), st.dates(D(2025, 1, 1), D(2027, 12, 31))),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25)
@given(operations=operations, as_of=st.dates(D(2026, 6, 1), D(2029, 1, 1)))
def test_after_expiry_the_balance_is_earned_less_spent_less_expired(
    session, default_rules, make_volunteer, ledger_ops, expire, operations, as_of
):
    account = make_volunteer()
    lots: Counter = Counter()
    spent = 0
    for kind, amount, on in operations:
        if kind == "earn":
            ledger_ops.earn(account, amount, on)
            lots[on] += amount
        elif amount <= sum(lots.values()) - spent:
            ledger_ops.spend(account, amount, on)
            spent += amount
    expected = sum(1 for day in unit_expiries(lots.items(), spent, YEARLY) if day <= as_of)

    expire(as_of)
    earned, spent_total, expired = year_totals(session, account)
    assert (earned, spent_total, expired) == (sum(lots.values()), spent, expected)
    assert balance(session, account) == earned - spent_total - expired
    before = ledger_counts(session)
    expire(as_of)
    assert ledger_counts(session) == before


# The commands -------------------------------------------------------------------------------


def test_the_expire_command_prints_the_run_and_nothing_the_second_time(
    runner, session, default_rules, make_volunteer, ledger_ops
):
    account = make_volunteer()
    ledger_ops.earn(account, 100, D(2025, 6, 1))
    first = runner.invoke(args=["expire", "--as-of", "2027-01-01", "--as", "clerk"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "Expired 100 points from 1 of 1 accounts as of 2027-01-01."
    second = runner.invoke(args=["expire", "--as-of", "2027-01-01", "--as", "clerk"])
    assert second.output.strip() == "Expired 0 points from 0 of 1 accounts as of 2027-01-01."
    assert balance(session, account) == 0


def test_the_expire_command_refuses_an_unknown_org_and_a_bad_date(runner, street):
    unknown = runner.invoke(args=["expire", "--as-of", "2027-01-01", "--org", "NOPE"])
    assert unknown.exit_code == 1 and "no org node has code 'NOPE'" in unknown.output
    assert runner.invoke(args=["expire", "--as-of", "2027-13-01"]).exit_code == 2


def test_the_expiring_command_shows_what_expires_next(runner, session, default_rules, make_volunteer, ledger_ops):
    account = make_volunteer()
    ledger_ops.earn(account, 100, D(2025, 3, 1))
    ledger_ops.earn(account, 50, D(2026, 5, 1))
    ledger_ops.spend(account, 30, D(2026, 6, 1))
    participant_id = session.get(Account, account).participant_id
    result = runner.invoke(args=["expiring", "--volunteer", "V00001", "--today", "2026-07-01"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "李明 — 120 points now; expiring after 2026-07-01:",
        "  2027-01-01 到期 expire: 70 分 points",
        "  2028-01-01 到期 expire: 50 分 points",
    ]
    later = runner.invoke(args=["expiring", "--participant", str(participant_id), "--today", "2028-01-01"])
    assert later.exit_code == 0 and "Nothing expires" in later.output
    neither = runner.invoke(args=["expiring"])
    assert neither.exit_code == 1 and "--volunteer" in neither.output
