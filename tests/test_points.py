"""Unit tests of ledger.points: legs of a double-entry transaction as pure values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.points import MAX_POSTING_AMOUNT, Leg, balanced_legs, check_amount, mirrored, transfer

MAX = MAX_POSTING_AMOUNT


@st.composite
def valid_legs(draw) -> list[Leg]:
    """Legs with distinct positive accounts and non-zero amounts within bounds, summing to zero."""
    accounts = draw(st.lists(st.integers(1, 2**40), min_size=2, max_size=8, unique=True))
    # Each of the first n-1 amounts stays within MAX // 8, so the balancing last one is within MAX.
    share = st.integers(-(MAX // 8), MAX // 8).filter(bool)
    amounts = [draw(share) for _ in accounts[1:]]
    if sum(amounts) == 0:
        amounts[0] *= 2  # now the sum is the old amounts[0]: non-zero, and still within bounds
    amounts.append(-sum(amounts))
    return [Leg(account, amount) for account, amount in zip(accounts, amounts)]


def test_balanced_legs_are_returned_as_a_tuple_sorted_by_account():
    assert balanced_legs([Leg(9, 5), Leg(2, -7), Leg(5, 2)]) == (Leg(2, -7), Leg(5, 2), Leg(9, 5))


def test_balanced_legs_accept_any_iterable_including_a_generator():
    assert balanced_legs(leg for leg in [Leg(2, 3), Leg(1, -3)]) == (Leg(1, -3), Leg(2, 3))


def test_amounts_of_exactly_the_maximum_posting_size_are_accepted():
    assert balanced_legs([Leg(1, MAX), Leg(2, -MAX)]) == (Leg(1, MAX), Leg(2, -MAX))


@pytest.mark.parametrize(
    ("legs", "field"),
    [
        pytest.param([], "legs", id="no legs"),
        pytest.param([Leg(1, 5)], "legs", id="a single leg"),
        pytest.param([Leg(1, 5), Leg(2, -4)], "legs", id="sum is positive"),
        pytest.param([Leg(1, 5), Leg(2, -6)], "legs", id="sum is negative"),
        pytest.param([Leg(1, 5), Leg(1, -5)], "legs[1].account_id", id="duplicate account"),
        pytest.param([Leg(1, 5), Leg(2, -2), Leg(1, -3)], "legs[2].account_id", id="duplicate account later"),
        pytest.param([Leg(0, 5), Leg(2, -5)], "legs[0].account_id", id="account id zero"),
        pytest.param([Leg(1, 5), Leg(-2, -5)], "legs[1].account_id", id="negative account id"),
        pytest.param([Leg("1", 5), Leg(2, -5)], "legs[0].account_id", id="text account id"),
        pytest.param([Leg(True, 5), Leg(2, -5)], "legs[0].account_id", id="bool account id"),
        pytest.param([Leg(1.0, 5), Leg(2, -5)], "legs[0].account_id", id="float account id"),
        pytest.param([Leg(1, 5.0), Leg(2, -5)], "legs[0].amount", id="float amount"),
        pytest.param([Leg(1, -1), Leg(2, True)], "legs[1].amount", id="bool amount that would balance"),
        pytest.param([Leg(1, "5"), Leg(2, -5)], "legs[0].amount", id="text amount"),
        pytest.param([Leg(1, None), Leg(2, -5)], "legs[0].amount", id="missing amount"),
        pytest.param([Leg(1, 5), Leg(2, 0), Leg(3, -5)], "legs[1].amount", id="zero amount"),
        pytest.param([Leg(1, MAX + 1), Leg(2, -(MAX + 1))], "legs[0].amount", id="amount above maximum"),
        pytest.param([Leg(1, MAX), Leg(2, -MAX - 1), Leg(3, 1)], "legs[1].amount", id="amount below minus maximum"),
    ],
)
def test_invalid_legs_are_refused_naming_the_field(legs, field):
    with pytest.raises(InvalidInput) as refusal:
        balanced_legs(legs)
    assert refusal.value.field == field
    assert refusal.value.code == "invalid_input"


def test_transfer_moves_the_amount_from_source_to_target():
    assert transfer(1, 2, 30) == (Leg(1, -30), Leg(2, 30))


def test_transfer_legs_are_sorted_by_account_whichever_way_points_move():
    assert transfer(7, 3, 30) == (Leg(3, 30), Leg(7, -30))


@pytest.mark.parametrize(
    ("source", "target", "amount", "field"),
    [
        pytest.param(1, 2, 0, "amount", id="zero"),
        pytest.param(1, 2, -5, "amount", id="negative"),
        pytest.param(1, 2, True, "amount", id="bool"),
        pytest.param(1, 2, 1.5, "amount", id="float"),
        pytest.param(1, 2, "3", "amount", id="text"),
        pytest.param(1, 2, MAX + 1, "amount", id="above maximum"),
        pytest.param(4, 4, 10, "legs[1].account_id", id="to the same account"),
        pytest.param(0, 4, 10, "legs[0].account_id", id="from account zero"),
    ],
)
def test_invalid_transfers_are_refused_naming_the_field(source, target, amount, field):
    with pytest.raises(InvalidInput) as refusal:
        transfer(source, target, amount)
    assert refusal.value.field == field


@pytest.mark.parametrize("amount", [1, 2, 999, MAX])
def test_check_amount_returns_positive_integers_within_bounds(amount):
    assert check_amount(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, MAX + 1, True, False, 1.0, 2.5, "1", None, 10**30])
def test_check_amount_refuses_anything_but_a_positive_integer_within_bounds(amount):
    with pytest.raises(InvalidInput) as refusal:
        check_amount(amount)
    assert refusal.value.field == "amount"


def test_check_amount_names_the_field_it_is_given():
    with pytest.raises(InvalidInput) as refusal:
        check_amount(0, field="reward.price")
    assert refusal.value.field == "reward.price"


def test_mirrored_legs_undo_a_transfer():
    assert mirrored(transfer(1, 2, 5)) == transfer(2, 1, 5)


@given(valid_legs(), st.data())
def test_balanced_legs_accept_any_zero_sum_legs_and_return_them_sorted(legs, data):
    shuffled = data.draw(st.permutations(legs))
    result = balanced_legs(shuffled)
    assert result == tuple(sorted(legs, key=lambda leg: leg.account_id))
    assert sorted(result) == sorted(legs)  # a permutation: nothing added, lost or changed


@given(valid_legs(), st.data())
def test_changing_one_amount_of_balanced_legs_unbalances_them(legs, data):
    index = data.draw(st.integers(0, len(legs) - 1))
    leg = legs[index]
    delta = data.draw(st.integers(1, MAX - abs(leg.amount)).map(lambda size: size if leg.amount > 0 else -size))
    legs[index] = Leg(leg.account_id, leg.amount + delta)
    with pytest.raises(InvalidInput) as refusal:
        balanced_legs(legs)
    assert refusal.value.field == "legs"


@given(valid_legs())
def test_mirrored_legs_negate_every_amount_and_still_sum_to_zero(legs):
    result = mirrored(legs)
    assert sum(leg.amount for leg in result) == 0
    assert {(leg.account_id, -leg.amount) for leg in result} == {(leg.account_id, leg.amount) for leg in legs}


@given(valid_legs())
def test_mirroring_twice_gives_back_the_balanced_legs(legs):
    assert mirrored(mirrored(legs)) == balanced_legs(legs)
