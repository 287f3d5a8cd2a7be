"""Recording service: one activity, a sign-in sheet, self-reports and corrections, on SQLite and PostgreSQL.

The default rules are published at the district (patrol: 10 points an hour, whole half hours,
weekend ×120%, holiday ×150%; at most 8 hours a day, 100 points an activity, 300 a month).
The usual service is a two-hour patrol on Wednesday 2026-03-04 in the first grid of 幸福社区:
20 points and 120 service minutes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Callable, NamedTuple

import pytest
from sqlalchemy import func, select

from ledger.activities import (
    NotAllowed,
    Service,
    correct_activity,
    record_activity,
    report_own_service,
    review_report,
)
from ledger.db import db, write_transaction
from ledger.errors import AlreadyExists, IdempotencyConflict, InvalidInput, LedgerError, NotFound
from ledger.events import Attendee, record_event
from ledger.models import (
    AccountKind,
    Activity,
    ActivityReview,
    AppUser,
    OrgNode,
    PeriodKind,
    PeriodTotal,
    Transaction,
    TransactionKindCode,
)
from ledger.points import describe_breakdown
from ledger.transactions import account_balance, system_account
from ledger.verify import verify_ledger
from tests.activity_fixtures import Desk, Totals, at, service
from tests.refusals import row_counts
from tests.helpers import run_at_once

MARCH = dt.date(2026, 3, 1)
WEDNESDAY = dt.date(2026, 3, 4)


def on_wednesday(start: str = "09:00", end: str = "11:00", activity_type: str = "patrol") -> Callable[[int], Service]:
    """Return a maker of a participant's service on Wednesday 2026-03-04."""
    return lambda participant_id: service(participant_id, f"2026-03-04 {start}", end, activity_type)


def by_account(transaction: Transaction) -> dict[int, int]:
    return {posting.account_id: posting.amount for posting in transaction.postings}


def steps(transaction: Transaction, name: str) -> list[dict]:
    return [step for step in transaction.breakdown["steps"] if step["step"] == name]


def assert_verifies(session) -> None:
    report = verify_ledger(session)
    assert report.ok, report.problems


def balance(desk: Desk, account_id: int) -> int:
    return account_balance(desk.session, account_id).balance


# One activity.


def test_recording_an_activity_posts_an_explained_earn_from_the_orgs_issuance_account(desk, resident):
    recorded = desk.record(on_wednesday()(resident.participant_id))

    transaction, activity = recorded.transaction, recorded.activity
    issuance = system_account(desk.session, desk.org(), AccountKind.ISSUANCE)
    assert not recorded.replayed
    assert (activity.source, activity.org_id, activity.participant_id) == (
        "staff",
        desk.street.grid,
        resident.participant_id,
    )
    assert transaction.kind == TransactionKindCode.EARN and transaction.business_date == WEDNESDAY
    assert by_account(transaction) == {issuance.id: -20, resident.account_id: 20}
    assert transaction.activity_id == activity.id
    assert transaction.rule_set_version_id == desk.default_rules
    assert transaction.service_minutes == 120
    assert transaction.subject_account_id == resident.account_id
    assert describe_breakdown(transaction.breakdown, "en") == [
        "Service time 120 min",
        "Rounded down to 30 min: 120 min",
        "Base: 10 points an hour × 120 min = 20",
    ]
    assert transaction.breakdown["inputs"]["local_start"] == "2026-03-04T09:00"
    assert balance(desk, resident.account_id) == 20
    assert desk.totals(resident.account_id, PeriodKind.DAY, WEDNESDAY) == Totals(20, 120, 1)
    assert desk.totals(resident.account_id, PeriodKind.MONTH, MARCH) == Totals(20, 120, 1)
    assert_verifies(desk.session)


def test_the_same_key_and_content_returns_the_first_activity_and_writes_nothing(desk, resident):
    patrol = on_wednesday()(resident.participant_id)
    first = desk.record(patrol, key="patrol-1")
    before = row_counts(desk.session)

    again = desk.record(patrol, key="patrol-1")

    assert again.replayed
    assert (again.activity.id, again.transaction.id) == (first.activity.id, first.transaction.id)
    assert row_counts(desk.session) == before


def test_the_same_key_with_other_content_is_an_idempotency_conflict(desk, resident):
    desk.record(on_wednesday()(resident.participant_id), key="patrol-1")

    other = on_wednesday("13:00", "15:00")(resident.participant_id)
    refusal = desk.refuse(lambda: desk.record(other, key="patrol-1"), IdempotencyConflict)

    assert refusal.field == "idempotency_key"


# Refusals: each names its field and writes nothing.

NOW = at("2026-06-01 12:00")


class Refusal(NamedTuple):
    #: Builds the refused service for a participant id.
    refused: Callable[[int], Service]
    error: type[LedgerError]
    field: str
    #: Whose service it is: "resident" (in the first grid), "outsider" (of 和平社区) or "nobody".
    who: str = "resident"
    #: The resident's service recorded (and accepted) first, as (start, end).
    earlier: tuple[tuple[str, str], ...] = ()
    key: str = "refused-1"


def naive(participant_id: int) -> Service:
    return Service(participant_id, "patrol", dt.datetime(2026, 3, 4, 9), dt.datetime(2026, 3, 4, 11))


def between(start: str, end: str) -> Callable[[int], Service]:
    return lambda participant_id: service(participant_id, start, end)


REFUSALS = {
    "in the future": Refusal(between("2026-06-01 11:00", "13:00"), InvalidInput, "ended_at"),
    "zero duration": Refusal(on_wednesday("09:00", "09:00"), InvalidInput, "ended_at"),
    "negative duration": Refusal(on_wednesday("09:00", "08:00"), InvalidInput, "ended_at"),
    "longer than 24 hours": Refusal(between("2026-03-04 09:00", "2026-03-05 09:01"), InvalidInput, "ended_at"),
    # Non-overlapping, but 12 + 10 + 3 hours of service starting on one day.
    "more than 24 hours on one day": Refusal(
        between("2026-03-04 22:00", "2026-03-05 01:00"),
        InvalidInput,
        "ended_at",
        earlier=(("2026-03-04 00:00", "12:00"), ("2026-03-04 12:00", "22:00")),
    ),
    "overlapping an earlier activity": Refusal(
        on_wednesday("10:30", "12:00"), InvalidInput, "started_at", earlier=(("2026-03-04 09:00", "11:00"),)
    ),
    "unknown activity type": Refusal(on_wednesday(activity_type="juggling"), InvalidInput, "activity_type"),
    "unit-only type for a volunteer": Refusal(
        on_wednesday(activity_type="unit_report_in"), InvalidInput, "activity_type"
    ),
    "participant outside the community": Refusal(on_wednesday(), InvalidInput, "participant_id", who="outsider"),
    # Checked before the idempotency digest, whose chain.format_utc would raise a bare ValueError.
    "naive datetimes": Refusal(naive, InvalidInput, "started_at"),
    "unknown participant": Refusal(on_wednesday(), NotFound, "participant_id", who="nobody"),
    "no rule set in force (2024)": Refusal(between("2024-06-04 09:00", "11:00"), NotFound, "started_at"),
    "bad idempotency key": Refusal(on_wednesday(), InvalidInput, "idempotency_key", key="a key"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_activity_names_its_field_and_writes_nothing(desk, resident, make_resident, case):
    for start, end in case.earlier:
        desk.record(service(resident.participant_id, start, end), now=NOW)
    participant_id = {
        "resident": lambda: resident.participant_id,
        "outsider": lambda: make_resident(desk.street.other_community, "王芳").participant_id,
        "nobody": lambda: 999_999,
    }[case.who]()

    refusal = desk.refuse(lambda: desk.record(case.refused(participant_id), key=case.key, now=NOW), case.error)

    assert refusal.field == case.field


# Scoring through the database: day kinds, caps, the minimum.


@pytest.mark.parametrize(
    ("day", "day_kind", "points"),
    [
        ("2026-03-04", "workday", 20),  # Wednesday
        ("2026-03-07", "weekend", 24),  # Saturday: ×120%
        ("2026-10-03", "holiday", 30),  # a Saturday of the National Day holiday: ×150%, not also a weekend
        ("2026-02-14", "workday", 20),  # a Saturday worked to make up for the Spring Festival
    ],
)
def test_weekends_and_public_holidays_multiply_and_make_up_days_do_not(desk, resident, day, day_kind, points):
    transaction = desk.record(service(resident.participant_id, f"{day} 09:00", "11:00")).transaction

    assert transaction.breakdown["inputs"]["day_kind"] == day_kind
    assert transaction.breakdown["points"] == by_account(transaction)[resident.account_id] == points
    assert [step["percent"] for step in steps(transaction, "multiplier")] == ([] if points == 20 else [points * 5])


def test_the_monthly_cap_binds_across_activities_and_a_full_month_still_records_service(desk, resident):
    # Eight hours on each working day of a week: 80 points a day against 300 a month.
    week = [
        desk.record(service(resident.participant_id, f"2026-03-0{day} 09:00", "17:00")).transaction
        for day in range(2, 7)
    ]

    assert [t.breakdown["points"] for t in week] == [80, 80, 80, 60, 0]
    assert [t.breakdown["inputs"]["earned_before"]["month_points"] for t in week] == [0, 80, 160, 240, 300]
    assert steps(week[3], "cap_month") == [{"step": "cap_month", "limit": 300, "earned_before": 240, "points": 60}]
    full = week[4]
    assert full.postings == [] and full.service_minutes == 480
    assert describe_breakdown(full.breakdown, "en")[-1] == "Monthly cap 300 (300 earned before): 0"
    assert desk.totals(resident.account_id, PeriodKind.MONTH, MARCH) == Totals(300, 5 * 480, 5)
    assert balance(desk, resident.account_id) == 300
    assert_verifies(desk.session)


def test_the_daily_hours_cap_counts_earlier_service_that_day(desk, resident):
    desk.record(on_wednesday("09:00", "15:00")(resident.participant_id))
    evening = desk.record(on_wednesday("16:00", "20:00")(resident.participant_id)).transaction

    assert steps(evening, "cap_hours_per_day") == [
        {"step": "cap_hours_per_day", "limit": 8, "earned_before": 360, "minutes": 120}
    ]
    assert (evening.service_minutes, evening.breakdown["points"]) == (120, 20)
    assert desk.totals(resident.account_id, PeriodKind.DAY, WEDNESDAY) == Totals(80, 480, 2)


def test_service_below_the_minimum_is_on_record_but_earns_and_counts_nothing(desk, resident):
    recorded = desk.record(on_wednesday("09:00", "09:20")(resident.participant_id))

    transaction = recorded.transaction
    assert transaction.activity_id == recorded.activity.id
    assert (transaction.postings, transaction.service_minutes) == ([], 0)
    assert describe_breakdown(transaction.breakdown, "en") == [
        "Service time 20 min",
        "20 min is below the 30 min minimum: 0",
    ]
    assert desk.totals(resident.account_id, PeriodKind.DAY, WEDNESDAY) == Totals()
    assert desk.totals(resident.account_id, PeriodKind.MONTH, MARCH) == Totals()
    assert_verifies(desk.session)


def test_the_yearly_cap_holds_when_service_is_recorded_out_of_order(desk, resident):
    desk.publish(desk.street.community, {"caps.points_per_month": 30, "caps.points_per_year": 30})
    desk.record(service(resident.participant_id, "2026-11-04 09:00", "11:00"))  # 20 points

    late = desk.record(on_wednesday()(resident.participant_id)).transaction  # a paper sheet from March

    assert late.breakdown["points"] == 10
    assert balance(desk, resident.account_id) <= 30


# Which rule version scores an activity.

RATES = {"district": 10, "street": 20, "community": 30}


@pytest.mark.parametrize(
    ("home", "day", "rules_from"),
    [
        ("community", "2026-06-30", "district"),  # before the street's and the community's versions take effect
        ("community", "2026-07-01", "community"),  # 幸福社区 publishes its own: it overrides the street's
        ("other_community", "2026-06-30", "district"),
        ("other_community", "2026-07-01", "street"),  # 和平社区 has none of its own
    ],
)
def test_an_activity_is_scored_by_the_version_in_force_on_its_day_in_the_nearest_org(
    desk, make_resident, home, day, rules_from
):
    published = {"district": desk.default_rules}
    for org in ("street", "community"):
        changes = {"activity_types.patrol.points": RATES[org], "effective_from": "2026-07-01"}
        published[org] = desk.publish(getattr(desk.street, org), changes).id
    where = getattr(desk.street, home)
    volunteer = make_resident(where)

    transaction = desk.record(service(volunteer.participant_id, f"{day} 09:00", "10:00"), org_id=where).transaction

    assert transaction.rule_set_version_id == published[rules_from]
    assert transaction.breakdown["points"] == RATES[rules_from]


def test_a_new_version_changes_later_entries_only(desk, resident):
    before = desk.record(service(resident.participant_id, "2026-07-01 09:00", "10:00")).transaction
    desk.publish(desk.street.street, {"activity_types.patrol.points": 20, "effective_from": "2026-07-01"})
    after = desk.record(service(resident.participant_id, "2026-07-02 09:00", "10:00")).transaction

    assert (before.breakdown["points"], after.breakdown["points"]) == (10, 20)
    assert desk.session.get(Transaction, before.id).rule_set_version_id == desk.default_rules


# Events: a whole sign-in sheet at once.


def record_sheet(desk: Desk, attendees: list[Attendee], *, key: str = "sheet-1"):
    """Record the clean-up of Saturday 2026-03-07, 09:00–12:00, from its sign-in sheet."""
    return desk.write(
        lambda: record_event(
            desk.session,
            actor=desk.user(),
            org=desk.org(),
            title="周末清洁家园",
            activity_type="environment_cleanup",
            started_at=at("2026-03-07 09:00"),
            ended_at=at("2026-03-07 12:00"),
            attendees=attendees,
            idempotency_key=key,
        )
    )


def test_an_event_records_and_posts_one_activity_per_attendee(desk, make_resident):
    early, punctual, late = (make_resident(name=name) for name in ("张伟", "李娜", "王强"))

    recorded = record_sheet(
        desk,
        [
            Attendee(early.participant_id),
            Attendee(punctual.participant_id),
            Attendee(late.participant_id, started_at=at("2026-03-07 10:00")),
        ],
    )

    # Three hours at ten points, ×120% on a Saturday: 36; the latecomer's two hours: 24.
    points = {r.activity.participant_id: r.transaction.breakdown["points"] for r in recorded.activities}
    assert points == {early.participant_id: 36, punctual.participant_id: 36, late.participant_id: 24}
    assert {(r.activity.event_id, r.activity.source) for r in recorded.activities} == {(recorded.event.id, "event")}
    assert [balance(desk, someone.account_id) for someone in (early, punctual, late)] == [36, 36, 24]
    assert_verifies(desk.session)


@pytest.mark.parametrize(
    ("problem", "field"),
    [
        ("overlaps", "attendees[2].started_at"),
        ("lives elsewhere", "attendees[2].participant_id"),
        ("signed twice", "attendees[2].participant_id"),
    ],
)
def test_an_event_is_all_or_nothing_and_names_the_refused_line(desk, make_resident, problem, field):
    first, second = make_resident(name="张伟"), make_resident(name="李娜")
    # Registered last, so the sheet's other lines are added and posted before this one is refused.
    third = make_resident(desk.street.other_community if problem == "lives elsewhere" else None, name="王强")
    if problem == "overlaps":
        desk.record(service(third.participant_id, "2026-03-07 11:00", "13:00"))
    last_line = first if problem == "signed twice" else third
    sheet = [Attendee(second.participant_id), Attendee(first.participant_id), Attendee(last_line.participant_id)]

    refusal = desk.refuse(lambda: record_sheet(desk, sheet))

    assert refusal.field == field


def test_recording_a_sheet_again_with_its_key_returns_the_event(desk, make_resident):
    sheet = [Attendee(make_resident(name=name).participant_id) for name in ("张伟", "李娜")]
    first = record_sheet(desk, sheet)
    before = row_counts(desk.session)

    again = record_sheet(desk, sheet)

    assert again.replayed and again.event.id == first.event.id
    assert [r.transaction.id for r in again.activities] == [r.transaction.id for r in first.activities]
    assert row_counts(desk.session) == before
    desk.refuse(lambda: record_sheet(desk, sheet[:1]), IdempotencyConflict)


# Self-reports and their review.


def report(desk: Desk, user_id: int, what: Service, key: str = "report-1"):
    actor, org = desk.user(user_id), desk.org()
    return desk.write(lambda: report_own_service(desk.session, actor=actor, org=org, service=what, idempotency_key=key))


def review(desk: Desk, reviewer_id: int, activity_id: int, approve: bool, reason: str | None = None):
    actor = desk.user(reviewer_id)
    return desk.write(
        lambda: review_report(desk.session, actor=actor, activity_id=activity_id, approve=approve, reason=reason)
    )


@pytest.fixture
def reporter(desk, resident) -> int:
    """The user the resident signs in as."""
    return desk.add_user("liming", resident.participant_id)


@pytest.fixture
def pending(desk, resident, reporter) -> Activity:
    """The resident's own report of Wednesday's patrol, waiting for review."""
    return report(desk, reporter, on_wednesday()(resident.participant_id)).activity


def test_a_self_report_waits_for_review_and_posts_nothing(desk, resident, pending):
    assert pending.source == "self_report" and pending.review is None
    scored = select(func.count()).select_from(Transaction).where(Transaction.activity_id == pending.id)
    assert desk.session.scalar(scored) == 0
    assert balance(desk, resident.account_id) == 0


def test_only_the_participant_reports_their_own_service(desk, resident):
    refusal = desk.refuse(lambda: report(desk, desk.staff_id, on_wednesday()(resident.participant_id)), NotAllowed)

    assert refusal.field == "participant_id"


def test_approving_a_self_report_posts_it(desk, resident, pending):
    approved = review(desk, desk.staff_id, pending.id, approve=True)

    assert approved.transaction.recorded_by_id == desk.staff_id
    assert by_account(approved.transaction)[resident.account_id] == 20
    assert desk.session.get(ActivityReview, pending.id).approved
    assert_verifies(desk.session)


def test_a_rejection_needs_a_reason_and_posts_nothing(desk, resident, pending):
    refusal = desk.refuse(lambda: review(desk, desk.staff_id, pending.id, approve=False, reason=" "))
    assert refusal.field == "reason"

    rejected = review(desk, desk.staff_id, pending.id, approve=False, reason="当天未排班")

    assert rejected.transaction is None
    assert desk.session.get(ActivityReview, pending.id).reason == "当天未排班"
    assert balance(desk, resident.account_id) == 0


@pytest.mark.parametrize("reviewer", ["the reporter", "the participant's current user"])
def test_nobody_reviews_their_own_report(desk, resident, reporter, pending, reviewer):
    # The reporter's account is unlinked from the resident, and a new user signs in as the resident:
    # each is refused for a reason of their own.
    new_user = desk.add_user("liming-new")

    def relink():
        desk.user(reporter).participant_id = None
        desk.session.flush()
        desk.user(new_user).participant_id = resident.participant_id

    desk.write(relink)
    reviewer_id = reporter if reviewer == "the reporter" else new_user

    desk.refuse(lambda: review(desk, reviewer_id, pending.id, approve=True), NotAllowed)


def test_a_report_is_reviewed_once(desk, pending):
    first = review(desk, desk.staff_id, pending.id, approve=True)
    other_staff = desk.add_user("wang")

    again = review(desk, desk.staff_id, pending.id, approve=True)

    assert again.replayed and again.transaction.id == first.transaction.id
    for reviewer, approve in ((desk.staff_id, False), (other_staff, True)):
        desk.refuse(lambda: review(desk, reviewer, pending.id, approve, reason="重复"), AlreadyExists)  # noqa: B023


def test_a_rejected_report_no_longer_blocks_its_time(desk, resident, pending):
    same_time = on_wednesday()(resident.participant_id)
    with pytest.raises(InvalidInput, match="overlaps"):
        desk.record(same_time)

    review(desk, desk.staff_id, pending.id, approve=False, reason="请由队长统一登记")

    assert by_account(desk.record(same_time).transaction)[resident.account_id] == 20


# Corrections.


def correct(desk: Desk, activity_id: int, what: Service, *, key: str = "fix-1", reason: str = "结束时间录错"):
    actor = desk.user()
    return desk.write(
        lambda: correct_activity(
            desk.session, actor=actor, activity_id=activity_id, service=what, reason=reason, idempotency_key=key
        )
    )


def test_a_correction_reverses_the_original_and_scores_the_corrected_service(desk, resident):
    original = desk.record(on_wednesday()(resident.participant_id))

    # Over the original's own time: it is being replaced, so it does not overlap.
    corrected = correct(desk, original.activity.id, on_wednesday("09:00", "12:00")(resident.participant_id))

    reversal = desk.session.execute(
        select(Transaction).where(Transaction.reverses_id == original.transaction.id)
    ).scalar_one()
    assert (reversal.memo, by_account(reversal)[resident.account_id], reversal.service_minutes) == (
        "结束时间录错",
        -20,
        -120,
    )
    assert (corrected.activity.corrects_id, corrected.activity.correction_reason) == (original.activity.id, "结束时间录错")
    assert by_account(corrected.transaction)[resident.account_id] == 30
    assert corrected.transaction.activity_id == corrected.activity.id
    assert balance(desk, resident.account_id) == 30
    assert_verifies(desk.session)


def test_the_corrected_activity_replaces_the_original_in_the_period_totals(desk, resident):
    original = desk.record(on_wednesday()(resident.participant_id))

    thursday = service(resident.participant_id, "2026-03-05 09:00", "12:00")
    correct(desk, original.activity.id, thursday, reason="日期录错")

    assert desk.totals(resident.account_id, PeriodKind.DAY, WEDNESDAY) == Totals(0, 0, 0)
    assert desk.totals(resident.account_id, PeriodKind.DAY, dt.date(2026, 3, 5)) == Totals(30, 180, 1)
    assert desk.totals(resident.account_id, PeriodKind.MONTH, MARCH) == Totals(30, 180, 1)
    assert_verifies(desk.session)


def test_an_activity_is_corrected_once(desk, resident):
    original = desk.record(on_wednesday()(resident.participant_id))
    fixed = on_wednesday("09:00", "12:00")(resident.participant_id)
    first = correct(desk, original.activity.id, fixed)

    assert correct(desk, original.activity.id, fixed).activity.id == first.activity.id  # a retry with its key
    refusal = desk.refuse(lambda: correct(desk, original.activity.id, fixed, key="fix-2"), AlreadyExists)
    assert refusal.field == "activity_id"


def test_a_corrected_self_report_is_not_reviewed_again(desk, resident, pending):
    review(desk, desk.staff_id, pending.id, approve=True)
    corrected = correct(desk, pending.id, on_wednesday("09:00", "12:00")(resident.participant_id))
    other_staff = desk.add_user("wang")

    with pytest.raises(LedgerError):
        review(desk, other_staff, corrected.activity.id, approve=True)
    assert balance(desk, resident.account_id) == 30


# Many writers at once.


def recorder(desk: Desk, patrol: Service, key: str):
    """Return a worker for run_at_once that records ``patrol`` on a thread's own session."""

    def work():
        recorded = write_transaction(
            lambda: record_activity(
                db.session,
                actor=db.session.get(AppUser, desk.staff_id),
                org=db.session.get(OrgNode, desk.street.grid),
                service=patrol,
                idempotency_key=key,
            )
        )
        yield f"activity {recorded.activity.id}"

    return work


def test_eight_writers_at_once_never_take_a_volunteer_past_the_monthly_cap(app, desk, resident):
    desk.publish(desk.street.community, {"caps.points_per_month": 50})
    hours = [
        (service(resident.participant_id, f"2026-03-04 {hour:02d}:00", f"{hour + 1:02d}:00"), f"hour-{hour}")
        for hour in range(8, 16)
    ]

    outcomes = run_at_once(app, [recorder(desk, patrol, key) for patrol, key in hours])

    assert sum(outcomes.values()) == 8 and all(outcome.startswith("activity") for outcome in outcomes), outcomes
    desk.session.rollback()  # read what the threads committed
    month = desk.session.get(PeriodTotal, (resident.account_id, PeriodKind.MONTH, MARCH))
    assert (month.points_earned, month.activity_count) == (50, 8)  # five full hours, then the cap: service still counts
    assert_verifies(desk.session)


def test_the_same_request_sent_twice_at_once_is_recorded_once_and_both_get_it(app, desk, resident):
    patrol = on_wednesday()(resident.participant_id)

    outcomes = run_at_once(app, [recorder(desk, patrol, "double-click")] * 4)

    desk.session.rollback()  # read what the threads committed
    assert outcomes == Counter({f"activity {desk.session.scalar(select(Activity.id))}": 4})
