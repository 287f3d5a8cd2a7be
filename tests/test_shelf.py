"""The reward shelf: rewards, stock, redemptions, donations and the liability view, on both databases."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from functools import partial

import pytest
from sqlalchemy import func, select

from ledger.db import db, write_transaction
from ledger.errors import AlreadyExists, IdempotencyConflict, InsufficientBalance, InvalidInput, NotFound
from ledger.models import (
    AccountKind,
    Activity,
    AppUser,
    OrgNode,
    Participant,
    PeriodKind,
    PeriodTotal,
    Redemption,
    Reward,
    StockMovement,
    Transaction,
)
from ledger.participants import register_co_building_unit
from ledger.shelf import (
    LimitReached,
    OutOfStock,
    RedemptionSettled,
    RewardNotActive,
    StarLevelTooLow,
    add_reward,
    cancel,
    catalogue,
    donate_stock,
    fulfil,
    liability,
    priority_holders,
    redeem,
    restock,
)
from ledger.transactions import account_balance, system_account
from ledger.verify import verify_ledger
from tests.refusals import refused, row_counts
from tests.helpers import earn, participant_of, run_at_once, tamper

#: 10:00 on Tuesday 10 November 2026 in Shanghai.
NOW = dt.datetime(2026, 11, 10, 2, 0, tzinfo=dt.timezone.utc)
OPENED = dt.date(2026, 1, 1)


@pytest.fixture
def offer(session, write, street, actor_id):
    """Return a callable that offers a reward (on the community's shelf by default) and returns its id."""

    def make(name: str = "大米 5kg", *, org_id: int | None = None, **fields) -> int:
        fields = {"kind": "goods", "price_points": 20, "active_from": OPENED, **fields}
        return write(
            lambda: (
                add_reward(
                    session,
                    actor=session.get(AppUser, actor_id),
                    org=session.get(OrgNode, org_id or street.community),
                    name=name,
                    now=NOW,
                    **fields,
                ).id
            )  # read before the commit: a read after it would hold a SQLite snapshot from before any race
        )

    return make


def redeeming(session, actor_id, account_id, reward_id, *, key, quantity=1, now=NOW):
    """Return the work of one redemption by the owner of ``account_id``, to run in a write."""
    return lambda: redeem(
        session,
        actor=session.get(AppUser, actor_id),
        participant_id=participant_of(session, account_id),
        reward_id=reward_id,
        quantity=quantity,
        idempotency_key=key,
        now=now,
    )


def balance(session, account_id) -> int:
    return account_balance(session, account_id).balance


def stock_of(session, reward_id) -> int | None:
    return session.scalar(select(Reward.stock).where(Reward.id == reward_id))


def movements(session, reward_id) -> list[tuple[str, int]]:
    rows = session.execute(
        select(StockMovement.reason, StockMovement.change)
        .where(StockMovement.reward_id == reward_id)
        .order_by(StockMovement.id)
    )
    return [tuple(row) for row in rows]


def test_a_reward_is_offered_with_its_initial_stock_recorded_as_a_movement(session, offer):
    reward_id = offer(stock=12, unit_value_yuan=40, per_person_limit=2, limit_period="month", description="东北大米")
    reward = session.get(Reward, reward_id)
    assert (reward.name, reward.kind, reward.price_points, reward.stock, reward.limit_period) == (
        "大米 5kg",
        "goods",
        20,
        12,
        "month",
    )
    assert movements(session, reward_id) == [("initial", 12)]
    assert movements(session, offer("理发", kind="service")) == []


def test_adding_a_reward_refuses_each_bad_field_by_name(session, write, street, actor_id, offer):
    offer("大米 5kg")

    def adding(**change):
        fields = {"name": "食用油", "kind": "goods", "price_points": 30, "active_from": OPENED, **change}
        org = session.get(OrgNode, street.community)
        return lambda: add_reward(session, actor=session.get(AppUser, actor_id), org=org, **fields)

    for field, change in [
        ("name", {"name": " "}),
        ("kind", {"kind": "cash"}),
        ("price_points", {"price_points": 0}),
        ("price_points", {"price_points": 2.5}),
        ("stock", {"stock": -1}),
        ("unit_value_yuan", {"unit_value_yuan": -5}),
        ("per_person_limit", {"per_person_limit": 0}),
        ("limit_period", {"limit_period": "week"}),
        ("min_star_level", {"min_star_level": 11}),
        ("active_from", {"active_from": "2026-01-01"}),
        ("active_to", {"active_to": dt.date(2025, 12, 31)}),
    ]:
        assert refused(session, write, adding(**change)).field == field
    assert "already offers" in str(refused(session, write, adding(name="大米 5kg"), AlreadyExists))


def test_a_redemption_spends_points_to_the_shelf_account_and_takes_stock(
    session, write, street, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 100)
    reward_id = offer(stock=5)
    result = write(redeeming(session, actor_id, volunteer_account, reward_id, key="r1", quantity=2))

    redemption = result.redemption
    assert not result.replayed
    assert (redemption.status, redemption.quantity, redemption.points, redemption.requested_on) == (
        "requested",
        2,
        40,
        dt.date(2026, 11, 10),
    )
    transaction = session.get(Transaction, redemption.transaction_id)
    shelf = system_account(session, session.get(OrgNode, street.community), AccountKind.REWARD_SHELF)
    assert transaction.kind == "redeem" and transaction.business_date == dt.date(2026, 11, 10)
    assert sorted((p.account_id, p.amount) for p in transaction.postings) == sorted(
        [(volunteer_account, -40), (shelf.id, 40)]
    )
    assert balance(session, volunteer_account) == 60 and balance(session, shelf.id) == 40
    assert stock_of(session, reward_id) == 3
    assert movements(session, reward_id) == [("initial", 5), ("redemption", -2)]
    assert (
        session.scalar(select(StockMovement.redemption_id).where(StockMovement.reason == "redemption")) == redemption.id
    )
    spent = session.scalar(
        select(PeriodTotal.points_spent).where(
            PeriodTotal.account_id == volunteer_account, PeriodTotal.period == PeriodKind.MONTH
        )
    )
    assert spent == 40


def test_a_retried_redemption_returns_the_first_and_writes_nothing_more(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 100)
    reward_id = offer(stock=5)
    first = write(redeeming(session, actor_id, volunteer_account, reward_id, key="r1")).redemption.id
    before = row_counts(session)
    again = write(redeeming(session, actor_id, volunteer_account, reward_id, key="r1", now=NOW + dt.timedelta(days=40)))
    assert again.replayed and again.redemption.id == first
    assert row_counts(session) == before and stock_of(session, reward_id) == 4
    other = refused(
        session,
        write,
        redeeming(session, actor_id, volunteer_account, reward_id, key="r1", quantity=2),
        IdempotencyConflict,
    )
    assert other.field == "idempotency_key"


def test_a_redemption_short_of_points_says_so_and_changes_nothing(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)
    reward_id = offer(stock=5)
    refusal = refused(
        session,
        write,
        redeeming(session, actor_id, volunteer_account, reward_id, key="r", quantity=3),
        InsufficientBalance,
    )
    assert refusal.field == "points"
    assert "costs 60 points" in refusal.message and "has 50, 10 short" in refusal.message
    assert stock_of(session, reward_id) == 5


def test_a_redemption_short_of_stock_says_how_many_are_left_and_changes_nothing(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 500)
    reward_id = offer(stock=2)
    refusal = refused(
        session, write, redeeming(session, actor_id, volunteer_account, reward_id, key="r", quantity=3), OutOfStock
    )
    assert refusal.field == "quantity" and "has 2 left; 3 asked for, 1 short" in refusal.message
    assert balance(session, volunteer_account) == 500


def test_a_monthly_limit_counts_this_months_redemptions_and_says_how_many_are_left(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 500)
    reward_id = offer(per_person_limit=2, limit_period="month")
    write(redeeming(session, actor_id, volunteer_account, reward_id, key="nov-1", now=NOW - dt.timedelta(days=9)))
    refusal = refused(
        session,
        write,
        redeeming(session, actor_id, volunteer_account, reward_id, key="nov-2", quantity=2),
        LimitReached,
    )
    assert refusal.field == "quantity"
    assert (
        "allows 2 per person a month" in refusal.message
        and "has redeemed 1, so 1 left and 2 asked for" in refusal.message
    )
    write(redeeming(session, actor_id, volunteer_account, reward_id, key="nov-3"))
    # 16:30 UTC on 30 November is already December in Shanghai: a new month, a new allowance.
    december = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.timezone.utc)
    assert write(
        redeeming(session, actor_id, volunteer_account, reward_id, key="dec-1", quantity=2, now=december)
    ).redemption.requested_on == dt.date(2026, 12, 1)


def test_a_cancelled_redemption_no_longer_counts_against_the_limit(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 500)
    reward_id = offer(per_person_limit=1)
    first = write(redeeming(session, actor_id, volunteer_account, reward_id, key="a")).redemption.id
    refused(session, write, redeeming(session, actor_id, volunteer_account, reward_id, key="b"), LimitReached)
    write(lambda: cancel(session, actor=session.get(AppUser, actor_id), redemption_id=first, reason="换别的", now=NOW))
    assert write(redeeming(session, actor_id, volunteer_account, reward_id, key="c")).redemption.status == "requested"


def test_a_reward_above_the_participants_star_level_says_both_levels(
    session, write, street, actor_id, default_rules, offer, make_volunteer, issue_points
):
    newcomer, veteran = make_volunteer(), make_volunteer(name="王芳")
    for account_id in (newcomer, veteran):
        issue_points(account_id, 100)
    for day in range(1, 6):  # 5 × 20 hours = 100 hours: one star under the default ladder
        write(partial(earn, session, actor_id, street.community, veteran, 1, dt.date(2026, 3, day), service_minutes=1200))
    reward_id = offer("体检套餐", kind="service", min_star_level=1)
    refusal = refused(session, write, redeeming(session, actor_id, newcomer, reward_id, key="n"), StarLevelTooLow)
    assert refusal.field == "participant_id" and "needs 1 stars; 李明 has 0, 1 short" in refusal.message
    assert write(redeeming(session, actor_id, veteran, reward_id, key="v")).redemption.points == 20


def test_a_reward_outside_its_dates_is_not_redeemable(session, write, actor_id, offer, volunteer_account, issue_points):
    issue_points(volunteer_account, 100)
    ended = offer("中秋月饼", active_to=dt.date(2026, 10, 6))
    refusal = refused(session, write, redeeming(session, actor_id, volunteer_account, ended, key="a"), RewardNotActive)
    assert refusal.field == "reward_id" and "from 2026-01-01 to 2026-10-06, not on 2026-11-10" in refusal.message
    future = offer("春联", active_from=dt.date(2027, 1, 15))
    not_yet = refused(session, write, redeeming(session, actor_id, volunteer_account, future, key="b"), RewardNotActive)
    assert "from 2027-01-15 onwards, not on 2026-11-10" in not_yet.message


def test_an_unknown_reward_or_another_communitys_shelf_is_refused(
    session, write, street, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 100)
    assert (
        refused(session, write, redeeming(session, actor_id, volunteer_account, 999, key="a"), NotFound).field
        == "reward_id"
    )
    elsewhere = offer(org_id=street.other_community)
    refusal = refused(session, write, redeeming(session, actor_id, volunteer_account, elsewhere, key="b"))
    assert refusal.field == "participant_id" and "does not serve" in refusal.message
    above = offer("街道纪念品", org_id=street.street)
    assert write(redeeming(session, actor_id, volunteer_account, above, key="c")).redemption.org_id == street.street


def test_fulfilling_hands_a_redemption_over_once(session, write, actor_id, offer, volunteer_account, issue_points):
    issue_points(volunteer_account, 100)
    redemption_id = write(redeeming(session, actor_id, volunteer_account, offer(stock=3), key="a")).redemption.id
    staff = lambda: session.get(AppUser, actor_id)  # noqa: E731
    fulfilled = write(lambda: fulfil(session, actor=staff(), redemption_id=redemption_id, now=NOW))
    assert fulfilled.status == "fulfilled" and fulfilled.fulfilled_at == NOW
    again = refused(
        session, write, lambda: fulfil(session, actor=staff(), redemption_id=redemption_id), RedemptionSettled
    )
    assert "already fulfilled" in again.message
    refused(
        session,
        write,
        lambda: cancel(session, actor=staff(), redemption_id=redemption_id, reason="晚了"),
        RedemptionSettled,
    )


def test_cancelling_refunds_by_a_reversal_and_returns_the_stock_once(
    session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 100)
    reward_id = offer(stock=3)
    redemption = write(redeeming(session, actor_id, volunteer_account, reward_id, key="a", quantity=2)).redemption
    staff = lambda: session.get(AppUser, actor_id)  # noqa: E731
    cancelled = write(
        lambda: cancel(session, actor=staff(), redemption_id=redemption.id, reason="居民不需要了", now=NOW)
    )
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "居民不需要了")
    reversal = session.scalar(select(Transaction).where(Transaction.reverses_id == cancelled.transaction_id))
    assert reversal.kind == "reverse" and reversal.memo == "居民不需要了"
    assert balance(session, volunteer_account) == 100 and stock_of(session, reward_id) == 3
    assert movements(session, reward_id) == [("initial", 3), ("redemption", -2), ("cancellation", 2)]
    twice = refused(
        session,
        write,
        lambda: cancel(session, actor=staff(), redemption_id=redemption.id, reason="再取消"),
        RedemptionSettled,
    )
    assert twice.field == "redemption_id" and "already cancelled" in twice.message
    refused(session, write, lambda: fulfil(session, actor=staff(), redemption_id=redemption.id), RedemptionSettled)
    refused(session, write, lambda: cancel(session, actor=staff(), redemption_id=redemption.id, reason=" "))
    assert verify_ledger(session).ok


def test_restocking_adds_units_and_an_unlimited_reward_has_none_to_add(session, write, actor_id, offer):
    reward_id = offer(stock=1)
    write(lambda: restock(session, actor=session.get(AppUser, actor_id), reward_id=reward_id, quantity=9, now=NOW))
    assert stock_of(session, reward_id) == 10 and movements(session, reward_id)[-1] == ("restock", 9)
    unlimited = offer("理发", kind="service")
    refusal = refused(
        session, write, lambda: restock(session, actor=session.get(AppUser, actor_id), reward_id=unlimited, quantity=1)
    )
    assert refusal.field == "reward_id" and "unlimited" in refusal.message


def test_a_donation_adds_stock_and_earns_the_unit_points_as_a_unit_donation(
    session, write, street, actor_id, default_rules, offer, volunteer_account
):
    unit_id = write(
        lambda: (
            register_co_building_unit(
                session,
                community=session.get(OrgNode, street.community),
                name="城东物业",
                unit_kind="property_company",
                reported_on=OPENED,
            ).id
        )
    )
    reward_id = offer(stock=2)

    def donate(quantity=10, participant_id=unit_id):
        return lambda: donate_stock(
            session,
            actor=session.get(AppUser, actor_id),
            reward_id=reward_id,
            unit_participant_id=participant_id,
            quantity=quantity,
            value_yuan=5000,
            handed_over_at=(NOW - dt.timedelta(hours=1), NOW - dt.timedelta(minutes=30)),
            idempotency_key="donation-1",
            now=NOW,
        )

    donation = write(donate())
    assert not donation.replayed and stock_of(session, reward_id) == 12
    assert movements(session, reward_id)[-1] == ("donation", 10)
    assert session.scalar(select(StockMovement.donor_id).where(StockMovement.reason == "donation")) == unit_id
    activity = session.get(Activity, donation.recorded.activity.id)
    assert (activity.activity_type, activity.quantity, activity.participant_id) == ("unit_donation", 5000, unit_id)
    unit_account = session.get(Participant, unit_id).account.id
    assert balance(session, unit_account) == 50  # 1 point per 100 yuan
    before = row_counts(session)
    assert write(donate()).replayed and row_counts(session) == before
    refused(session, write, donate(quantity=11), IdempotencyConflict)
    not_a_unit = refused(session, write, donate(participant_id=participant_of(session, volunteer_account)))
    assert not_a_unit.field == "unit_participant_id" and "only units donate" in not_a_unit.message
    assert verify_ledger(session).ok


def test_the_catalogue_lists_the_rewards_of_the_org_and_those_above_it_on_a_day(session, street, offer):
    offer("大米 5kg", price_points=50)
    offer("街道纪念品", org_id=street.street, price_points=10)
    offer("中秋月饼", active_to=dt.date(2026, 10, 6))
    offer("和平社区的油", org_id=street.other_community)
    grid = session.get(OrgNode, street.grid)
    assert [r.name for r in catalogue(session, grid, on=dt.date(2026, 11, 10))] == ["街道纪念品", "大米 5kg"]
    assert [r.name for r in catalogue(session, grid, on=dt.date(2026, 9, 1))] == ["街道纪念品", "中秋月饼", "大米 5kg"]


def test_liability_weighs_points_outstanding_against_the_stock_on_the_shelves(
    session, street, offer, make_volunteer, issue_points
):
    issue_points(make_volunteer(), 300)
    issue_points(make_volunteer(name="王芳"), 200)
    issue_points(make_volunteer(org_id=street.other_community, name="赵强"), 1000, org_id=street.other_community)
    offer("大米 5kg", stock=10, price_points=20, unit_value_yuan=40)
    offer("毛巾", stock=5, price_points=30, org_id=street.grid)
    offer("理发", kind="service")
    offer("和平社区的油", stock=100, price_points=10, unit_value_yuan=60, org_id=street.other_community)

    community = liability(session, session.get(OrgNode, street.community))
    assert (community.points_outstanding, community.stock_points, community.stock_yuan) == (500, 350, 400)
    assert (community.unlimited_rewards, community.unvalued_rewards, community.coverage_percent) == (1, 1, 70)
    whole_street = liability(session, session.get(OrgNode, street.street))
    assert (whole_street.points_outstanding, whole_street.stock_points, whole_street.stock_yuan) == (1500, 1350, 6400)
    assert liability(session, session.get(OrgNode, street.subgrid)).coverage_percent is None


def test_priority_holders_are_listed_first_redeemed_first_without_the_cancelled(
    session, write, actor_id, offer, make_volunteer, issue_points
):
    priority = offer("社区服务优先权", kind="priority", price_points=50, per_person_limit=1)
    accounts = [make_volunteer(name=name) for name in ("李明", "王芳", "赵强")]
    ids = []
    for minutes, account_id in enumerate(accounts):
        issue_points(account_id, 60)
        ids.append(
            write(
                redeeming(
                    session, actor_id, account_id, priority, key=f"p{minutes}", now=NOW + dt.timedelta(minutes=minutes)
                )
            ).redemption.id
        )
    write(lambda: cancel(session, actor=session.get(AppUser, actor_id), redemption_id=ids[1], reason="放弃", now=NOW))
    write(lambda: fulfil(session, actor=session.get(AppUser, actor_id), redemption_id=ids[2], now=NOW))
    holders = priority_holders(session, priority)
    assert [(h.display_name, h.status, h.redemption_id) for h in holders] == [
        ("李明", "requested", ids[0]),
        ("赵强", "fulfilled", ids[2]),
    ]
    with pytest.raises(InvalidInput) as not_a_priority:
        priority_holders(session, offer())
    assert not_a_priority.value.field == "reward_id" and "goods, not a priority" in not_a_priority.value.message


def test_verify_passes_after_shelf_work_and_names_a_stock_or_redemption_changed_behind_its_back(
    app, session, write, actor_id, offer, volunteer_account, issue_points
):
    issue_points(volunteer_account, 200)
    reward_id = offer(stock=5)
    kept = write(redeeming(session, actor_id, volunteer_account, reward_id, key="a")).redemption.id
    dropped = write(redeeming(session, actor_id, volunteer_account, reward_id, key="b")).redemption.id
    write(lambda: cancel(session, actor=session.get(AppUser, actor_id), redemption_id=dropped, reason="取消", now=NOW))
    assert verify_ledger(session).ok

    tamper(app, f"UPDATE reward SET stock = stock + 3 WHERE id = {reward_id}")
    [problem] = verify_ledger(session).problems
    assert problem.check == "stock" and f"reward {reward_id}" in problem.message and "stock 7" in problem.message
    tamper(
        app,
        f"UPDATE reward SET stock = stock - 3 WHERE id = {reward_id}",
        f"UPDATE stock_movement SET change = -2 WHERE redemption_id = {kept}",
        f"UPDATE redemption SET status = 'requested', cancelled_at = NULL, points = 99 WHERE id = {dropped}",
    )
    problems = verify_ledger(session).problems
    assert {p.check for p in problems} == {"stock", "redemption"}
    assert sum(f"redemption {dropped} is requested but its transaction is reversed" in p.message for p in problems) == 1
    assert sum(f"redemption {dropped}: 1 × 20 points, recorded as 99" in p.message for p in problems) == 1


def racing_redeemers(app, actor_id, account_id, reward_id, workers=16):
    def redeemer(n):
        def work():
            try:
                write_transaction(redeeming(db.session, actor_id, account_id, reward_id, key=f"race-{n}"))
                yield "redeemed"
            except OutOfStock:
                yield "out of stock"
            except InsufficientBalance:
                yield "short of points"

        return work

    return run_at_once(app, [redeemer(n) for n in range(workers)])


def test_sixteen_redeemers_racing_for_the_last_five_items_take_exactly_five(
    app, session, offer, volunteer_account, issue_points, actor_id
):
    issue_points(volunteer_account, 10_000)
    reward_id = offer(stock=5)
    assert racing_redeemers(app, actor_id, volunteer_account, reward_id) == Counter({"redeemed": 5, "out of stock": 11})
    assert stock_of(session, reward_id) == 0 and balance(session, volunteer_account) == 10_000 - 5 * 20
    assert session.scalar(select(func.count()).select_from(Redemption)) == 5
    report = verify_ledger(session)
    assert report.ok, report.problems


def test_sixteen_redeemers_racing_for_the_last_points_take_exactly_what_they_allow(
    app, session, offer, volunteer_account, issue_points, actor_id
):
    issue_points(volunteer_account, 60)
    reward_id = offer(price_points=20)
    assert racing_redeemers(app, actor_id, volunteer_account, reward_id) == Counter(
        {"redeemed": 3, "short of points": 13}
    )
    assert balance(session, volunteer_account) == 0 and stock_of(session, reward_id) is None
    report = verify_ledger(session)
    assert report.ok, report.problems


def test_staff_cancelling_one_redemption_at_once_refund_it_once(
    app, session, write, offer, volunteer_account, issue_points, actor_id
):
    issue_points(volunteer_account, 100)
    reward_id = offer(stock=3)
    # The id is read inside the write: a read after it would hold a SQLite snapshot from before the race.
    redemption_id = write(lambda: redeeming(session, actor_id, volunteer_account, reward_id, key="a")().redemption.id)

    def canceller():
        try:
            write_transaction(
                lambda: cancel(
                    db.session, actor=db.session.get(AppUser, actor_id), redemption_id=redemption_id, reason="重复"
                )
            )
            yield "cancelled"
        except RedemptionSettled:
            yield "already settled"

    assert run_at_once(app, [canceller] * 8) == Counter({"cancelled": 1, "already settled": 7})
    assert balance(session, volunteer_account) == 100 and stock_of(session, reward_id) == 3
    assert verify_ledger(session).ok


def test_the_shelf_commands_offer_redeem_cancel_and_weigh_the_liability(runner, street, make_volunteer, issue_points):
    issue_points(make_volunteer(), 100)
    added = runner.invoke(
        args="shelf add --org C1 --name 洗衣液 --price 30 --stock 3 --value-yuan 25 --limit 2 --per month "
        "--from 2025-01-01".split()
    )
    assert added.exit_code == 0, added.output
    reward_id = added.output.split()[1]
    restocked = runner.invoke(args=["shelf", "restock", reward_id, "2"])
    assert restocked.output.startswith("Restocked 洗衣液 with 2; 5 on the shelf")
    assert "洗衣液" in runner.invoke(args=["shelf", "list", "--org", "C1-G1"]).output

    redeem_two = f"redeem --volunteer V00001 --reward {reward_id} --quantity 2 --key k1".split()
    redeemed = runner.invoke(args=redeem_two)
    assert redeemed.exit_code == 0 and "redeemed 2 × 洗衣液 for 60 points; 40 points left" in redeemed.output
    redemption_id = redeemed.output.split()[1].rstrip(":")
    assert "already recorded with this key" in runner.invoke(args=redeem_two).output
    over = runner.invoke(args=["redeem", "--volunteer", "V00001", "--reward", reward_id])
    assert over.exit_code == 1 and "quantity: 洗衣液 allows 2 per person a month" in over.output

    cancelled = runner.invoke(args=["redemptions", "cancel", redemption_id, "--reason", "买错了"])
    assert cancelled.exit_code == 0 and "60 points refunded" in cancelled.output and "stock 5" in cancelled.output
    twice = runner.invoke(args=["redemptions", "fulfil", redemption_id])
    assert twice.exit_code == 1 and "already cancelled" in twice.output

    weighed = runner.invoke(args=["liability", "--org", "C1"])
    assert "100" in weighed.output and "150  (covers 150%)" in weighed.output and "125" in weighed.output


def test_the_holders_command_exports_a_priority_list_no_spreadsheet_reads_as_a_formula(
    runner, street, make_volunteer, issue_points
):
    issue_points(make_volunteer(name="=1+1"), 100)
    added = runner.invoke(
        args="shelf add --org C1 --name 养老服务优先 --price 50 --kind priority --from 2025-01-01".split()
    )
    reward_id = added.output.split()[1]
    assert runner.invoke(args=["redeem", "--volunteer", "V00001", "--reward", reward_id]).exit_code == 0
    exported = runner.invoke(args=["shelf", "holders", reward_id])
    header, row = exported.output.splitlines()
    assert header == "redemption,participant,name,quantity,status,requested_on"
    assert ",'=1+1,1,requested," in row
