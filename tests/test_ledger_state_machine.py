"""Property: any sequence of valid and invalid operations keeps every invariant `verify` checks.

A hypothesis state machine drives the real write path on a real database and keeps a model of
what the balances should be. After every step the database must agree with the model and all
balances must sum to zero; a refused operation must leave the ledger exactly as it was; at the
end of every run `verify_ledger` must find nothing wrong.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger.db import db, write_transaction
from ledger.errors import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    NotReversible,
)
from ledger.models import Account, AccountKind, AppUser, OrgNode
from ledger.points import transfer
from ledger.transactions import record_transaction, reverse_transaction, system_account
from ledger.verify import verify_ledger
from tests.helpers import ledger_counts


@dataclass(frozen=True)
class Written:
    """A transaction the machine wrote, and what undoing it would need."""

    transaction_id: int
    #: ``{account_id: amount}`` of the transaction's postings.
    amounts: tuple[tuple[int, int], ...]
    is_reversal: bool


@dataclass(frozen=True)
class Call:
    """A successful call, kept so that it can be replayed with the same or other content."""

    key: str
    account_id: int
    amount: int
    kind: str
    transaction_id: int


class LedgerMachine(RuleBasedStateMachine):
    written = Bundle("written")

    #: Set by the test: the community the machine writes in, the actor, and a callable that
    #: registers a volunteer and returns the account id. Every run gets accounts of its own, so
    #: what one run wrote never changes what the next run's draws do.
    org_id: int
    other_org_id: int
    actor_id: int
    make_volunteer: staticmethod

    def __init__(self):
        super().__init__()
        self.participant_ids = [self.make_volunteer(), self.make_volunteer(), self.make_volunteer(self.other_org_id)]
        self.run = uuid.uuid4().hex[:8]
        self.counter = 0
        self.balances = dict(db.session.execute(select(Account.id, Account.balance)).all())
        self.reversed: set[int] = set()
        self.calls: list[Call] = []

    # -- helpers ---------------------------------------------------------------------------

    def next_key(self) -> str:
        self.counter += 1
        return f"{self.run}-{self.counter}"

    def system_account_id(self, kind: AccountKind) -> int:
        return system_account(db.session, db.session.get(OrgNode, self.org_id), kind).id

    def move(self, kind: str, account_id: int, amount: int, key: str):
        """Earn moves issuance → participant; redeem moves participant → reward shelf."""
        org = db.session.get(OrgNode, self.org_id)
        if kind == "earn":
            legs = transfer(self.system_account_id(AccountKind.ISSUANCE), account_id, amount)
        else:
            legs = transfer(account_id, self.system_account_id(AccountKind.REWARD_SHELF), amount)
        return record_transaction(
            db.session,
            actor=db.session.get(AppUser, self.actor_id),
            org=org,
            kind=kind,
            legs=legs,
            business_date=dt.date(2026, 11, 3),
            idempotency_key=key,
        )

    def refused(self, error_type, work) -> None:
        """Run ``work``, expect ``error_type``, and check that nothing at all changed."""
        before = (ledger_counts(db.session), self.database_balances())
        with pytest.raises(error_type):
            write_transaction(work)
        assert (ledger_counts(db.session), self.database_balances()) == before

    def database_balances(self) -> dict[int, int]:
        return dict(db.session.execute(select(Account.id, Account.balance)).all())

    def apply(self, amounts) -> None:
        for account_id, amount in amounts:
            self.balances[account_id] = self.balances.get(account_id, 0) + amount

    def written_from(self, recorded) -> Written:
        transaction = recorded.transaction
        amounts = tuple((p.account_id, p.amount) for p in transaction.postings)
        return Written(transaction.id, amounts, transaction.kind == "reverse")

    # -- rules -----------------------------------------------------------------------------

    @rule(target=written, index=st.integers(0, 2), amount=st.integers(1, 60))
    def earn(self, index, amount):
        account_id, key = self.participant_ids[index], self.next_key()
        recorded = write_transaction(lambda: self.move("earn", account_id, amount, key))
        done = self.written_from(recorded)
        self.apply(done.amounts)
        self.calls.append(Call(key, account_id, amount, "earn", done.transaction_id))
        return done

    @rule(target=written, index=st.integers(0, 2), amount=st.integers(1, 90))
    def spend(self, index, amount):
        account_id, key = self.participant_ids[index], self.next_key()
        if self.balances[account_id] < amount:
            self.refused(InsufficientBalance, lambda: self.move("redeem", account_id, amount, key))
            return multiple()
        recorded = write_transaction(lambda: self.move("redeem", account_id, amount, key))
        done = self.written_from(recorded)
        self.apply(done.amounts)
        self.calls.append(Call(key, account_id, amount, "redeem", done.transaction_id))
        return done

    @rule(target=written, original=written)
    def reverse(self, original):
        def work():
            return reverse_transaction(
                db.session,
                actor=db.session.get(AppUser, self.actor_id),
                transaction_id=original.transaction_id,
                idempotency_key=self.next_key(),
                reason="state machine",
            )

        if original.is_reversal:
            self.refused(NotReversible, work)
        elif original.transaction_id in self.reversed:
            self.refused(AlreadyReversed, work)
        elif any(
            self.balances[account_id] - amount < 0
            for account_id, amount in original.amounts
            if account_id in self.participant_ids
        ):
            self.refused(InsufficientBalance, work)
        else:
            done = self.written_from(write_transaction(work))
            self.reversed.add(original.transaction_id)
            self.apply(done.amounts)
            return done
        return multiple()

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def replay(self, data):
        call = data.draw(st.sampled_from(self.calls))
        before = (ledger_counts(db.session), self.database_balances())
        recorded = write_transaction(lambda: self.move(call.kind, call.account_id, call.amount, call.key))
        assert recorded.replayed and recorded.transaction.id == call.transaction_id
        assert (ledger_counts(db.session), self.database_balances()) == before

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), extra=st.integers(1, 5))
    def reuse_a_key_for_other_content(self, data, extra):
        call = data.draw(st.sampled_from(self.calls))
        self.refused(IdempotencyConflict, lambda: self.move(call.kind, call.account_id, call.amount + extra, call.key))

    @rule(
        index=st.integers(0, 2),
        amount=st.one_of(st.integers(max_value=0), st.integers(min_value=10**12 + 1), st.floats(), st.booleans()),
    )
    def refuse_a_bad_amount(self, index, amount):
        account_id = self.participant_ids[index]
        issuance = self.system_account_id(AccountKind.ISSUANCE)

        def work():
            return record_transaction(
                db.session,
                actor=db.session.get(AppUser, self.actor_id),
                org=db.session.get(OrgNode, self.org_id),
                kind="earn",
                legs=transfer(issuance, account_id, amount),
                business_date=dt.date(2026, 11, 3),
                idempotency_key=self.next_key(),
            )

        self.refused(InvalidInput, work)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model_and_sum_to_zero(self):
        database = self.database_balances()
        assert {a: database[a] for a in self.participant_ids} == {a: self.balances[a] for a in self.participant_ids}
        assert sum(database.values()) == 0
        assert db.session.scalar(select(func.min(Account.balance)).where(Account.kind == "participant")) >= 0

    def teardown(self):
        report = verify_ledger(db.session)
        db.session.rollback()
        assert report.ok, report.problems


def test_any_sequence_of_operations_keeps_every_invariant_verify_checks(session, street, actor_id, make_volunteer):
    staff_id = actor_id

    class Machine(LedgerMachine):
        org_id = street.community
        other_org_id = street.other_community
        actor_id = staff_id

    Machine.make_volunteer = staticmethod(make_volunteer)

    run_state_machine_as_test(Machine, settings=settings(max_examples=12, stateful_step_count=20, deadline=None))
