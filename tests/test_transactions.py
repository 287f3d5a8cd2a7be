"""The write path: zero-sum, idempotency, overdraft, reversal, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from ledger.errors import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    LedgerError,
    NotFound,
    NotReversible,
)
from ledger.models import Account, AccountKind, AppUser, OrgNode, Posting, Transaction
from ledger.points import Leg, transfer
from ledger.transactions import account_balance, account_history, record_transaction, system_account
from ledger.users import ensure_user
from ledger.verify import verify_ledger
from tests.helpers import ledger_counts, reverse, spend


def test_every_transaction_sums_to_zero_and_so_do_all_balances(
    session, write, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=20, key="s1"))

    sums = session.execute(select(Posting.transaction_id, func.sum(Posting.amount)).group_by(Posting.transaction_id)).all()
    assert len(sums) == 2 and all(total == 0 for _, total in sums)
    assert session.scalar(select(func.sum(Account.balance))) == 0
    assert account_balance(session, volunteer_account).balance == 30


def test_each_posting_records_the_balance_after_it_and_the_account_version(
    session, volunteer_account, issue_points
):
    for amount in (10, 15, 5):
        issue_points(volunteer_account, amount)
    history = account_history(session, volunteer_account)
    assert [(p.amount, p.balance_after, p.account_version) for p, _ in history] == [(5, 30, 3), (15, 25, 2), (10, 10, 1)]
    older = account_history(session, volunteer_account, before_version=2, limit=1)
    assert [p.account_version for p, _ in older] == [1]


def test_the_same_key_twice_returns_the_first_transaction_and_writes_nothing(
    session, write, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)
    first = write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=20, key="k"))
    before = ledger_counts(session)
    again = write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=20, key="k"))
    assert (first.replayed, again.replayed) == (False, True)
    assert again.transaction.id == first.transaction.id
    assert ledger_counts(session) == before
    assert account_balance(session, volunteer_account).balance == 30


def test_the_same_key_with_different_content_is_a_conflict_not_a_success(
    session, write, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=20, key="k"))
    before = ledger_counts(session)
    with pytest.raises(IdempotencyConflict) as refused:
        write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=21, key="k"))
    assert refused.value.field == "idempotency_key"
    assert ledger_counts(session) == before


def test_idempotency_keys_are_scoped_to_the_org_and_the_caller(
    session, write, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)
    other_actor = write(lambda: ensure_user(session, "another-staff").id)
    for actor, org in ((actor_id, street.community), (other_actor, street.community), (actor_id, street.other_community)):
        result = write(lambda: spend(session, actor_id=actor, org_id=org, account_id=volunteer_account, amount=5, key="same"))
        assert not result.replayed
    assert account_balance(session, volunteer_account).balance == 35


def test_twenty_threads_with_one_key_give_exactly_one_transaction(
    app, session, street, actor_id, volunteer_account, issue_points
):
    from ledger.db import db, write_transaction

    issue_points(volunteer_account, 100)
    barrier = threading.Barrier(20)
    results, errors = [], []

    def worker():
        with app.app_context():
            barrier.wait()
            try:
                recorded = write_transaction(
                    lambda: spend(
                        db.session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=7, key="one"
                    )
                )
                results.append((recorded.transaction.id, recorded.replayed))
            except Exception as error:  # noqa: BLE001 - every failure is reported by the assertion
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({tx_id for tx_id, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 19
    assert account_balance(session, volunteer_account).balance == 93
    assert session.scalar(select(func.count()).select_from(Transaction).where(Transaction.idempotency_key == "one")) == 1


def test_an_overdraft_is_refused_with_the_balance_and_changes_nothing(
    session, write, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 10)
    before = ledger_counts(session)
    with pytest.raises(InsufficientBalance) as refused:
        write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=11, key="big"))
    assert "has 10" in refused.value.message and refused.value.details["needed"] == 11
    assert ledger_counts(session) == before
    assert account_balance(session, volunteer_account).balance == 10


def test_a_refusal_is_not_stored_as_the_answer_to_its_key(
    session, write, street, actor_id, volunteer_account, issue_points
):
    with pytest.raises(InsufficientBalance):
        write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=5, key="later"))
    issue_points(volunteer_account, 5)
    result = write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=5, key="later"))
    assert not result.replayed
    assert account_balance(session, volunteer_account).balance == 0


def test_system_accounts_may_go_negative_but_participants_may_not(session, street, volunteer_account, issue_points):
    issue_points(volunteer_account, 25)
    issuance = system_account(session, session.get(OrgNode, street.community), AccountKind.ISSUANCE)
    assert account_balance(session, issuance.id).balance == -25


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "gift"}, "kind"),
        ({"kind": "reverse"}, "kind"),
        ({"business_date": "2026-11-02"}, "business_date"),
        ({"business_date": dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)}, "business_date"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "x" * 129}, "idempotency_key"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"memo": "长" * 501}, "memo"),
        ({"breakdown": {"points": 1.5}}, "breakdown.points"),
        ({"breakdown": {"steps": [{"x": 2**60}]}}, "breakdown.steps[0].x"),
        ({"activity_id": True}, "activity_id"),
        ({"rule_set_version_id": -3}, "rule_set_version_id"),
        ({"legs": [Leg(1, 5), Leg(2, -4)]}, "legs"),
        ({"legs": [Leg(1, 5.0), Leg(2, -5)]}, "legs[0].amount"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    session, write, street, actor_id, volunteer_account, issue_points, overrides, field
):
    issue_points(volunteer_account, 10)
    before = ledger_counts(session)
    with pytest.raises(InvalidInput) as refused:
        write(
            lambda: spend(
                session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=1, key="bad", **overrides
            )
        )
    assert refused.value.field == field
    assert ledger_counts(session) == before


def test_an_unknown_account_is_not_found(session, write, street, actor_id, volunteer_account):
    with pytest.raises(NotFound) as refused:
        write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=999_999, amount=1, key="ghost"))
    assert refused.value.field.startswith("legs[")


def test_a_transaction_may_not_use_another_orgs_system_account(session, write, street, actor_id, volunteer_account):
    other_issuance = system_account(session, session.get(OrgNode, street.other_community), AccountKind.ISSUANCE)
    with pytest.raises(InvalidInput) as refused:
        write(
            lambda: record_transaction(
                session,
                actor=session.get(AppUser, actor_id),
                org=session.get(OrgNode, street.community),
                kind="earn",
                legs=transfer(other_issuance.id, volunteer_account, 5),
                business_date=dt.date(2026, 11, 1),
                idempotency_key="foreign",
            )
        )
    assert "another org" in refused.value.message


def test_a_reversal_mirrors_the_original_and_points_back_to_it(
    session, write, actor_id, volunteer_account, issue_points
):
    original_id = issue_points(volunteer_account, 40)
    reversal = write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo")).transaction
    original = session.get(Transaction, original_id)
    assert reversal.kind == "reverse" and reversal.reverses_id == original_id
    assert reversal.business_date == original.business_date
    assert sorted((p.account_id, p.amount) for p in reversal.postings) == sorted(
        (p.account_id, -p.amount) for p in original.postings
    )
    assert account_balance(session, volunteer_account).balance == 0


def test_reversing_a_transaction_twice_is_refused(session, write, actor_id, volunteer_account, issue_points):
    original_id = issue_points(volunteer_account, 40)
    write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo-1"))
    before = ledger_counts(session)
    with pytest.raises(AlreadyReversed):
        write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo-2"))
    assert ledger_counts(session) == before


def test_retrying_a_reversal_with_its_key_returns_it_instead_of_refusing(
    session, write, actor_id, volunteer_account, issue_points
):
    original_id = issue_points(volunteer_account, 40)
    first = write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo"))
    again = write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo"))
    assert again.replayed and again.transaction.id == first.transaction.id


def test_two_threads_racing_to_reverse_one_transaction_one_wins(
    app, session, actor_id, volunteer_account, issue_points
):
    from ledger.db import db, write_transaction

    original_id = issue_points(volunteer_account, 40)
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(key):
        with app.app_context():
            barrier.wait()
            try:
                write_transaction(lambda: reverse(db.session, actor_id=actor_id, transaction_id=original_id, key=key))
                outcomes.append("reversed")
            except LedgerError as error:
                outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=worker, args=(f"race-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["AlreadyReversed", "reversed"]
    assert account_balance(session, volunteer_account).balance == 0


def test_a_reversal_cannot_itself_be_reversed(session, write, actor_id, volunteer_account, issue_points):
    original_id = issue_points(volunteer_account, 40)
    reversal_id = write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo")).transaction.id
    with pytest.raises(NotReversible):
        write(lambda: reverse(session, actor_id=actor_id, transaction_id=reversal_id, key="undo-undo"))


def test_a_reversal_that_would_overdraw_the_participant_is_refused(
    session, write, street, actor_id, volunteer_account, issue_points
):
    original_id = issue_points(volunteer_account, 40)
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=30, key="spent"))
    with pytest.raises(InsufficientBalance) as refused:
        write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo"))
    assert refused.value.message.startswith("reversing this transaction needs 40 points")
    assert account_balance(session, volunteer_account).balance == 10


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reversal_needs_a_reason(session, write, actor_id, volunteer_account, issue_points, reason):
    original_id = issue_points(volunteer_account, 40)
    with pytest.raises(InvalidInput) as refused:
        write(lambda: reverse(session, actor_id=actor_id, transaction_id=original_id, key="undo", reason=reason))
    assert refused.value.field == "reason"


def test_reversing_an_unknown_transaction_is_not_found(session, write, actor_id):
    with pytest.raises(NotFound):
        write(lambda: reverse(session, actor_id=actor_id, transaction_id=424242, key="undo"))


def test_each_community_keeps_its_own_chain(session, street, make_volunteer, issue_points):
    here = make_volunteer()
    there = make_volunteer(org_id=street.other_community)
    issue_points(here, 5)
    issue_points(there, 5, org_id=street.other_community)
    issue_points(here, 5)
    links = session.execute(select(Transaction.chain_id, Transaction.seq).order_by(Transaction.id)).all()
    assert links == [(street.community, 1), (street.other_community, 1), (street.community, 2)]
    assert verify_ledger(session).ok
