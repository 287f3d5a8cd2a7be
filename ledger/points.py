"""Points: integer amounts and the legs of a double-entry transaction, as pure values.

A transaction moves points between accounts in legs. The legs of one transaction touch each
account at most once, carry non-zero integer amounts within :data:`MAX_POSTING_AMOUNT`, and
sum to zero, so points are never created or destroyed: they are issued from an org's
issuance account, spent to its reward shelf, expired to its expiry account. This module
checks those rules and builds the common shapes; it knows nothing of Flask or databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ledger.errors import InvalidInput

#: Largest amount one posting may carry. Keeps every amount exactly representable in the
#: canonical JSON of the hash chain (RFC 8785 allows integers up to 2**53).
MAX_POSTING_AMOUNT = 10**12
#: Largest balance, in either direction, any account may reach; far below 2**53 for the same reason.
MAX_BALANCE = 10**15


@dataclass(frozen=True, order=True)
class Leg:
    """An amount added to (positive) or taken from (negative) one account."""

    account_id: int
    amount: int


def is_integer(value: object) -> bool:
    """Tell whether ``value`` is a true integer (``True`` and ``1.0`` are not)."""
    return type(value) is int


def check_amount(amount: object, *, field: str = "amount") -> int:
    """Return ``amount`` if it is a positive integer number of points within bounds."""
    if not is_integer(amount):
        raise InvalidInput("must be an integer number of points", field=field)
    if not 0 < amount <= MAX_POSTING_AMOUNT:
        raise InvalidInput(f"must be between 1 and {MAX_POSTING_AMOUNT}", field=field)
    return amount


def balanced_legs(legs: Iterable[Leg]) -> tuple[Leg, ...]:
    """Return ``legs`` sorted by account after checking they form a valid transaction."""
    legs = tuple(legs)
    if len(legs) < 2:
        raise InvalidInput("a transaction needs at least two legs", field="legs")
    seen: set[int] = set()
    for index, leg in enumerate(legs):
        field = f"legs[{index}]"
        if not is_integer(leg.account_id) or leg.account_id <= 0:
            raise InvalidInput("must name an account by its positive integer id", field=f"{field}.account_id")
        if leg.account_id in seen:
            raise InvalidInput("an account may appear only once in a transaction", field=f"{field}.account_id")
        seen.add(leg.account_id)
        if not is_integer(leg.amount):
            raise InvalidInput("must be an integer number of points", field=f"{field}.amount")
        if leg.amount == 0 or abs(leg.amount) > MAX_POSTING_AMOUNT:
            raise InvalidInput(
                f"must be non-zero and at most {MAX_POSTING_AMOUNT} in size", field=f"{field}.amount"
            )
    total = sum(leg.amount for leg in legs)
    if total != 0:
        raise InvalidInput(f"legs must sum to zero, not {total}", field="legs")
    return tuple(sorted(legs))


def transfer(source_account_id: int, target_account_id: int, amount: int) -> tuple[Leg, ...]:
    """Return the legs that move ``amount`` points from one account to another."""
    check_amount(amount)
    return balanced_legs([Leg(source_account_id, -amount), Leg(target_account_id, amount)])


def mirrored(legs: Iterable[Leg]) -> tuple[Leg, ...]:
    """Return the legs that undo ``legs`` exactly."""
    return balanced_legs(Leg(leg.account_id, -leg.amount) for leg in legs)
