"""Proof that the ledger is what its writes made it: ``ledger verify`` and ``ledger checkpoint``.

:func:`verify_ledger` streams the whole ledger twice and collects every problem it finds
rather than stopping at the first:

* chains: sequence numbers 1, 2, 3, … without gaps; each link's ``prev_hash`` is the hash
  of the link before; each stored hash equals the hash recomputed from the stored content
  and postings (so a changed amount, date, memo or posting names its transaction); the
  chain head row agrees with the last link;
* transactions: at least two postings summing to zero; a reversal and its link agree;
* accounts: versions 1, 2, 3, … without gaps; each posting's balance-after is the running
  sum; no participant account ever below zero; the cached balance and version equal the
  postings'; all balances together sum to zero;
* period totals: every participant's day, month and year totals of points earned, spent
  and expired, service minutes and activities equal what the transactions add up to (in
  bounded memory: past TOTALS_IN_MEMORY, the totals go to disk by account range);
* the reward shelf: every counted stock equals the sum of its stock movements; every
  redemption's points are its quantity times the reward's price and what its ``redeem``
  transaction took from the participant; a redemption is cancelled exactly when its
  transaction was reversed;
* against a checkpoint file (kept outside the database): every recorded head is still in
  its chain with the same hash, so a deleted or rewritten tail is found even if whoever did
  it also moved the chain head.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import tempfile
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import groupby
from typing import IO, Any, Iterator

import orjson
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session, aliased

from ledger import chain
from ledger.errors import InvalidInput
from ledger.models import (
    Account,
    AccountKind,
    ChainHead,
    OrgNode,
    PeriodTotal,
    Posting,
    Redemption,
    RedemptionStatus,
    Reward,
    StockMovement,
    Transaction,
)
from ledger.transactions import PERIOD_TOTAL_COLUMNS, activity_count_change, period_effects, period_starts

CHECKPOINT_FORMAT = "volunteer-points-ledger/checkpoint/1"
#: Where the chain query's rows hold a link's content fields, in ``chain.CONTENT_FIELDS`` order.
CONTENT_COLUMNS = slice(6, 6 + len(chain.CONTENT_FIELDS))
#: Rows fetched per round trip while streaming.
STREAM_BATCH = 10_000
#: Problems kept per check before the rest are only counted, so one broken chain cannot flood the report.
MAX_PROBLEMS_PER_CHECK = 50
#: Expected period totals held in memory while the chains are read; past this many they go to disk.
TOTALS_IN_MEMORY = 500_000
#: Stored period totals compared at a time: the accounts are cut into ranges of at most about this many.
TOTALS_PER_RANGE = 500_000


@dataclass(frozen=True)
class Problem:
    check: str
    message: str
    chain_id: int | None = None
    seq: int | None = None
    transaction_id: int | None = None
    account_id: int | None = None


@dataclass
class VerifyReport:
    chains: int = 0
    transactions: int = 0
    postings: int = 0
    accounts: int = 0
    checkpoint_chains: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Problems found beyond MAX_PROBLEMS_PER_CHECK, by check.
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if sum(1 for p in self.problems if p.check == problem.check) >= MAX_PROBLEMS_PER_CHECK:
            self.suppressed[problem.check] = self.suppressed.get(problem.check, 0) + 1
        else:
            self.problems.append(problem)

    def first_bad_transaction(self) -> Problem | None:
        """Return the problem with the lowest-numbered bad link of the first broken chain."""
        with_links = [p for p in self.problems if p.seq is not None]
        return min(with_links, key=lambda p: (p.chain_id, p.seq)) if with_links else None


def verify_ledger(session: Session, *, checkpoint: dict | None = None) -> VerifyReport:
    """Check every invariant of the ledger and return what was found."""
    report = VerifyReport()
    heads = {
        head.org_id: head
        for head in session.execute(select(ChainHead).execution_options(populate_existing=True)).scalars()
    }
    report.chains = len(heads)
    expected_totals = _ExpectedTotals(_account_ranges(session))
    _verify_chains(session, heads, report, expected_totals)
    _verify_accounts(session, report)
    _verify_period_totals(session, expected_totals, report)
    _verify_stock(session, report)
    if checkpoint is not None:
        _verify_against_checkpoint(session, checkpoint, report)
    return report


def _stream(session: Session, query) -> Iterator[Any]:
    # Through the session's connection, not the session: the ORM's row loading doubled the cost of each row.
    return iter(session.connection().execute(query.execution_options(yield_per=STREAM_BATCH)))


def _verify_chains(
    session: Session,
    heads: dict[int, ChainHead],
    report: VerifyReport,
    expected_totals: _ExpectedTotals,
) -> None:
    """Check every chain link by link, collecting the period totals the links add up to."""
    participant_accounts = set(
        session.execute(select(Account.id).where(Account.kind == AccountKind.PARTICIPANT)).scalars()
    )
    tx = Transaction.__table__.c
    reversed_tx = aliased(Transaction)
    query = (
        select(
            tx.id,
            tx.chain_id,
            tx.seq,
            tx.prev_hash,
            tx.hash,
            tx.reverses_id,
            # As text, decoded once a transaction below: the join repeats it on every posting's row.
            *(cast(tx[name], Text).label(name) if name == "breakdown" else tx[name] for name in chain.CONTENT_FIELDS),
            reversed_tx.chain_id.label("reversed_chain"),
            reversed_tx.seq.label("reversed_seq"),
            reversed_tx.kind.label("reversed_kind"),
            Posting.account_id,
            Posting.amount,
            Posting.balance_after,
            Posting.account_version,
        )
        .outerjoin(Posting, Posting.transaction_id == tx.id)
        .outerjoin(reversed_tx, reversed_tx.id == tx.reverses_id)
        .order_by(tx.chain_id, tx.seq, Posting.account_id)
    )
    last_link: dict[int, tuple[int, str]] = {}
    previous: tuple[int, int, str] | None = None  # chain, seq, hash of the link before
    for _, rows in groupby(_stream(session, query), key=lambda row: row.id):
        rows = list(rows)
        row = rows[0]
        report.transactions += 1
        where = dict(chain_id=row.chain_id, seq=row.seq, transaction_id=row.id)

        if previous is None or previous[0] != row.chain_id:
            expected_seq, expected_prev = 1, chain.GENESIS_HASH
        else:
            expected_seq, expected_prev = previous[1] + 1, previous[2]
        if row.seq != expected_seq:
            report.add(Problem("chain_sequence", f"link {row.seq} follows link {expected_seq - 1}", **where))
        if row.prev_hash != expected_prev:
            report.add(Problem("chain_link", "previous-hash does not match the link before", **where))

        postings = [
            chain.PostingLink(r.account_id, r.amount, r.balance_after, r.account_version)
            for r in rows
            if r.account_id is not None
        ]
        report.postings += len(postings)
        total = sum(p.amount for p in postings)
        scores_without_points = not postings and (row.service_minutes != 0 or row.activity_id is not None)
        if not scores_without_points and (len(postings) < 2 or total != 0):
            report.add(Problem("zero_sum", f"{len(postings)} postings sum to {total}", **where))
        _add_period_effects(expected_totals, row, postings, participant_accounts)

        if row.reverses_id is not None and (row.reversed_chain is None or row.reversed_kind == "reverse"):
            report.add(Problem("reversal", "reverses a missing transaction or a reversal", **where))

        content = dict(zip(chain.CONTENT_FIELDS, row[CONTENT_COLUMNS]))
        content["breakdown"] = _breakdown(row.breakdown)
        recomputed = chain.link_hash(
            chain.TransactionLink(
                chain_id=row.chain_id,
                seq=row.seq,
                prev_hash=row.prev_hash,
                reverses=None if row.reverses_id is None else (row.reversed_chain, row.reversed_seq),
                postings=postings,
                **content,
            )
        )
        if recomputed != row.hash:
            report.add(Problem("hash", "content or postings changed after the transaction was written", **where))

        previous = (row.chain_id, row.seq, row.hash)
        last_link[row.chain_id] = (row.seq, row.hash)

    for chain_id, head in heads.items():
        seq, head_hash = last_link.get(chain_id, (0, chain.GENESIS_HASH))
        if (head.seq, head.head_hash) != (seq, head_hash):
            report.add(
                Problem(
                    "chain_head",
                    f"chain head says link {head.seq} but the chain ends at link {seq}",
                    chain_id=chain_id,
                )
            )
    for chain_id in last_link.keys() - heads.keys():
        report.add(Problem("chain_head", "transactions on a chain that has no head", chain_id=chain_id))


def _breakdown(text: str | None) -> Any:
    """Return a stored breakdown decoded; text that is not JSON (SQLite stores any) is hashed as it is, and so fails."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _add_period_effects(expected: _ExpectedTotals, row, postings, participant_accounts) -> None:
    if row.reverses_id is not None and row.reversed_kind is None:
        return  # a reversal of nothing: reported above, and it counts in no period
    effects = period_effects(
        counted_kind=row.reversed_kind or row.kind,
        participant_postings=[(p.account_id, p.amount) for p in postings if p.account_id in participant_accounts],
        subject_account_id=row.subject_account_id,
        service_minutes=row.service_minutes,
        activity_count=activity_count_change(
            row.activity_id, bool(postings), row.service_minutes, reversal=row.reverses_id is not None
        ),
    )
    for account_id, changes in effects.items():
        changed = [changes[name] for name in PERIOD_TOTAL_COLUMNS]
        for period, starts_on in period_starts(row.business_date):
            expected.add((account_id, period, starts_on), changed)


def _account_ranges(session: Session) -> list[int]:
    """Return the first account id of each range after the first; a range holds at most TOTALS_PER_RANGE stored totals.

    A range holds more only when one account alone has more.
    """
    boundaries, in_range = [], 0
    query = select(PeriodTotal.account_id, func.count()).group_by(PeriodTotal.account_id).order_by(PeriodTotal.account_id)
    for account_id, count in _stream(session, query):
        if in_range and in_range + count > TOTALS_PER_RANGE:
            boundaries.append(account_id)
            in_range = 0
        in_range += count
    return boundaries


class _ExpectedTotals:
    """The day, month and year totals the links add up to, by account range, in bounded memory.

    A district's ledger holds tens of millions of period totals, too many to hold at once.
    They add up in memory until there are TOTALS_IN_MEMORY of them; then they are set aside
    on disk, each in the file of its account's range, and added up again one range at a time.
    """

    def __init__(self, boundaries: list[int]):
        #: The first account id of each range after the first.
        self.boundaries = boundaries
        self.adding: dict[tuple[int, str, dt.date], list[int]] = {}
        self.set_aside: dict[int, IO[bytes]] = {}

    def add(self, key: tuple[int, str, dt.date], changes: list[int]) -> None:
        totals = self.adding.get(key)
        if totals is None:
            self.adding[key] = list(changes)
            if len(self.adding) >= TOTALS_IN_MEMORY:
                self._set_aside()
        else:
            for index, change in enumerate(changes):
                totals[index] += change

    def _set_aside(self) -> None:
        by_range: dict[int, list] = {}
        for key, totals in self.adding.items():
            by_range.setdefault(bisect_right(self.boundaries, key[0]), []).append((key, totals))
        for index, items in by_range.items():
            if index not in self.set_aside:
                self.set_aside[index] = tempfile.TemporaryFile()
            pickle.dump(items, self.set_aside[index], protocol=pickle.HIGHEST_PROTOCOL)
        self.adding = {}

    def by_range(self) -> Iterator[tuple[int | None, int | None, dict[tuple[int, str, dt.date], list[int]]]]:
        """Yield each range's lowest and past-highest account id (``None``: unbounded) and its totals, added up."""
        if not self.set_aside:
            # Everything fitted in memory: one range.
            yield None, None, self.adding
            return
        self._set_aside()
        bounds = [None, *self.boundaries, None]
        for index in range(len(bounds) - 1):
            totals: dict[tuple[int, str, dt.date], list[int]] = {}
            aside = self.set_aside.pop(index, None)
            if aside is not None:
                with aside:
                    aside.seek(0)
                    for key, changes in _pickled_lists(aside):
                        added = totals.setdefault(key, [0] * len(changes))
                        for position, change in enumerate(changes):
                            added[position] += change
            yield bounds[index], bounds[index + 1], totals


def _pickled_lists(source: IO[bytes]) -> Iterator[Any]:
    while True:
        try:
            yield from pickle.load(source)
        except EOFError:
            return


def _verify_period_totals(session: Session, expected: _ExpectedTotals, report: VerifyReport) -> None:
    """Check every stored day, month and year total against what the postings add up to, one account range at a time."""
    zero = [0] * len(PERIOD_TOTAL_COLUMNS)
    columns = [getattr(PeriodTotal, name) for name in PERIOD_TOTAL_COLUMNS]
    for lowest, past_highest, totals in expected.by_range():
        query = select(PeriodTotal.account_id, PeriodTotal.period, PeriodTotal.starts_on, *columns)
        if lowest is not None:
            query = query.where(PeriodTotal.account_id >= lowest)
        if past_highest is not None:
            query = query.where(PeriodTotal.account_id < past_highest)
        stored_keys = set()
        for account_id, period, starts_on, *stored in _stream(session, query):
            key = (account_id, period, starts_on)
            stored_keys.add(key)
            if stored != totals.get(key, zero):
                report.add(_period_problem(key, stored, totals.get(key, zero)))
        for key in totals.keys() - stored_keys:
            if totals[key] != zero:
                report.add(_period_problem(key, zero, totals[key]))


def _period_problem(key, stored: list[int], expected: list[int]) -> Problem:
    account_id, period, starts_on = key
    differences = ", ".join(
        f"{name} {was} (postings say {should})"
        for name, was, should in zip(PERIOD_TOTAL_COLUMNS, stored, expected)
        if was != should
    )
    return Problem("period_total", f"{period} from {starts_on.isoformat()}: {differences}", account_id=account_id)


def _verify_accounts(session: Session, report: VerifyReport) -> None:
    query = (
        select(
            Account.id,
            Account.kind,
            Account.balance,
            Account.version,
            Posting.amount,
            Posting.balance_after,
            Posting.account_version,
            Posting.transaction_id,
        )
        .outerjoin(Posting, Posting.account_id == Account.id)
        .order_by(Account.id, Posting.account_version)
    )
    grand_total = 0
    for account_id, rows in groupby(_stream(session, query), key=lambda row: row[0]):
        report.accounts += 1
        running, version = 0, 0
        kind = cached_balance = cached_version = None
        for _, kind, cached_balance, cached_version, amount, balance_after, posting_version, tx_id in rows:
            if amount is None:
                continue
            version += 1
            running += amount
            if posting_version != version:
                report.add(
                    Problem(
                        "account_version",
                        f"posting has version {posting_version} where {version} was expected",
                        account_id=account_id,
                        transaction_id=tx_id,
                    )
                )
                version = posting_version
            if balance_after != running:
                report.add(
                    Problem(
                        "balance_after",
                        f"posting says the balance became {balance_after}; the postings add up to {running}",
                        account_id=account_id,
                        transaction_id=tx_id,
                    )
                )
            if kind == AccountKind.PARTICIPANT and running < 0:
                report.add(
                    Problem("overdraft", f"participant account went to {running}", account_id=account_id, transaction_id=tx_id)
                )
        if (cached_balance, cached_version) != (running, version):
            report.add(
                Problem(
                    "cached_balance",
                    f"account says balance {cached_balance} after {cached_version} postings; "
                    f"its postings say {running} after {version}",
                    account_id=account_id,
                )
            )
        grand_total += cached_balance
    if grand_total != 0:
        report.add(Problem("zero_sum", f"all account balances sum to {grand_total}, not 0"))


def _verify_stock(session: Session, report: VerifyReport) -> None:
    """Check the reward shelf against its movements and each redemption against its transaction."""
    moved = (
        select(StockMovement.reward_id, func.sum(StockMovement.change).label("total"))
        .group_by(StockMovement.reward_id)
        .subquery()
    )
    for reward_id, name, stock, total in session.execute(
        select(Reward.id, Reward.name, Reward.stock, moved.c.total)
        .outerjoin(moved, moved.c.reward_id == Reward.id)
        .where(Reward.stock.is_not(None))
        .order_by(Reward.id)
    ):
        if stock != (total or 0):
            message = f"reward {reward_id} ({name}) has stock {stock}; its movements add up to {total or 0}"
            report.add(Problem("stock", message))

    reversal = aliased(Transaction)
    query = (
        select(
            Redemption.id,
            Redemption.quantity,
            Redemption.points,
            Redemption.status,
            Redemption.transaction_id,
            Reward.price_points,
            Posting.amount,
            reversal.id.label("reversal_id"),
        )
        .join(Reward, Reward.id == Redemption.reward_id)
        .join(Account, Account.participant_id == Redemption.participant_id)
        .outerjoin(
            Posting, (Posting.transaction_id == Redemption.transaction_id) & (Posting.account_id == Account.id)
        )
        .outerjoin(reversal, reversal.reverses_id == Redemption.transaction_id)
        .order_by(Redemption.id)
    )
    for row in _stream(session, query):
        where = dict(transaction_id=row.transaction_id)
        spent = -row.amount if row.amount is not None else 0
        if not row.quantity * row.price_points == row.points == spent:
            report.add(
                Problem(
                    "redemption",
                    f"redemption {row.id}: {row.quantity} × {row.price_points} points, recorded as {row.points}; "
                    f"its transaction took {spent} from the participant",
                    **where,
                )
            )
        if (row.status == RedemptionStatus.CANCELLED) != (row.reversal_id is not None):
            state = "reversed" if row.reversal_id is not None else "not reversed"
            message = f"redemption {row.id} is {row.status} but its transaction is {state}"
            report.add(Problem("redemption", message, **where))


def take_checkpoint(session: Session, *, now: dt.datetime) -> dict:
    """Return the head (sequence, hash, time) of every chain, for keeping outside the database."""
    rows = session.execute(
        select(ChainHead.org_id, OrgNode.code, ChainHead.seq, ChainHead.head_hash, Transaction.recorded_at)
        .join(OrgNode, OrgNode.id == ChainHead.org_id)
        .outerjoin(Transaction, (Transaction.chain_id == ChainHead.org_id) & (Transaction.seq == ChainHead.seq))
        .order_by(ChainHead.org_id)
    )
    return {
        "format": CHECKPOINT_FORMAT,
        "taken_at": chain.format_utc(now),
        "chains": [
            {
                "chain_id": chain_id,
                "org_code": code,
                "seq": seq,
                "hash": head_hash,
                "recorded_at": None if recorded_at is None else chain.format_utc(recorded_at),
            }
            for chain_id, code, seq, head_hash, recorded_at in rows
        ],
    }


def parse_checkpoint(text: str) -> dict:
    """Return a checkpoint read from ``text`` after checking its shape."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"is not JSON: {error}", field="checkpoint") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInput(f"is not a ledger checkpoint (format {CHECKPOINT_FORMAT})", field="checkpoint")
    chains = document.get("chains")
    if not isinstance(chains, list):
        raise InvalidInput("has no list of chains", field="checkpoint.chains")
    for index, entry in enumerate(chains):
        if not (
            isinstance(entry, dict)
            and type(entry.get("chain_id")) is int
            and type(entry.get("seq")) is int
            and entry["seq"] >= 0
            and isinstance(entry.get("hash"), str)
            and isinstance(entry.get("org_code"), str)
        ):
            raise InvalidInput("needs chain_id, org_code, seq and hash", field=f"checkpoint.chains[{index}]")
    return document


def _verify_against_checkpoint(session: Session, checkpoint: dict, report: VerifyReport) -> None:
    codes = dict(session.execute(select(OrgNode.id, OrgNode.code)).all())
    for entry in checkpoint["chains"]:
        report.checkpoint_chains += 1
        chain_id, seq = entry["chain_id"], entry["seq"]
        where = dict(chain_id=chain_id, seq=seq)
        if codes.get(chain_id) != entry["org_code"]:
            report.add(Problem("checkpoint", f"chain {chain_id} ({entry['org_code']}) no longer exists", **where))
            continue
        if seq == 0:
            continue
        stored = session.execute(
            select(Transaction.id, Transaction.hash).where(Transaction.chain_id == chain_id, Transaction.seq == seq)
        ).one_or_none()
        if stored is None:
            last = session.execute(
                select(func.coalesce(func.max(Transaction.seq), 0)).where(Transaction.chain_id == chain_id)
            ).scalar_one()
            report.add(
                Problem(
                    "checkpoint",
                    f"chain of {entry['org_code']} ends at link {last} but the checkpoint recorded link {seq}: "
                    "its tail was deleted",
                    **where,
                )
            )
        elif stored.hash != entry["hash"]:
            report.add(
                Problem(
                    "checkpoint",
                    f"link {seq} of {entry['org_code']} has another hash than the checkpoint recorded: "
                    "the chain was rewritten",
                    transaction_id=stored.id,
                    **where,
                )
            )
