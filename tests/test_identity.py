"""Unit tests of ledger.identity: resident ID numbers checked, masked and digested."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.identity import birth_date, check_character, id_digest, mask, normalise_id_number

#: The textbook example of GB 11643-1999: born 1949-12-31 in Beijing's Chaoyang district.
NUMBER = "11010519491231002X"
OTHER_NUMBER = "110105194912310038"  # same region and birth date, next sequence; 169 % 11 == 4 → "8"
DIGITS = "0123456789"
FULL_WIDTH_DIGITS = "０１２３４５６７８９"


def completed(first_seventeen: str) -> str:
    return first_seventeen + check_character(first_seventeen)


def test_the_textbook_numbers_have_the_check_characters_the_standard_gives():
    assert check_character(NUMBER[:17]) == "X"
    assert check_character(OTHER_NUMBER[:17]) == "8"


@given(st.text(DIGITS, min_size=17, max_size=17))
def test_check_character_satisfies_iso_7064_mod_11_2(first):
    """ISO 7064 MOD 11-2: with weights 2**17 … 2**1 and X for 10, the full number sums to 1 mod 11."""
    check = check_character(first)
    value = 10 if check == "X" else int(check)
    assert (sum(int(digit) * 2 ** (17 - index) for index, digit in enumerate(first)) + value) % 11 == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(NUMBER, NUMBER, id="already normal"),
        pytest.param(NUMBER.lower(), NUMBER, id="lower-case x"),
        pytest.param(f"  {NUMBER}\n", NUMBER, id="surrounding spaces and newline"),
        pytest.param(f"\t{NUMBER.lower()} ", NUMBER, id="tab and lower-case x"),
        pytest.param(f"\u3000{NUMBER}\u3000", NUMBER, id="ideographic spaces"),
        pytest.param(OTHER_NUMBER, OTHER_NUMBER, id="digit check character"),
    ],
)
def test_valid_numbers_are_normalised_to_upper_case_without_surrounding_whitespace(raw, expected):
    assert normalise_id_number(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(NUMBER[:17] + "0", id="wrong check digit"),
        pytest.param(OTHER_NUMBER[:17] + "X", id="X where a digit belongs"),
        pytest.param("11010519491231003X", id="sequence mistyped"),
        pytest.param("", id="empty"),
        pytest.param(NUMBER[:17], id="17 characters"),
        pytest.param(NUMBER + "1", id="19 characters"),
        pytest.param("1101051949123100X2", id="X inside the number"),
        pytest.param("11010519491231002Y", id="other letter as check character"),
        pytest.param("110105 19491231002X", id="inner space"),
        pytest.param("110105-19491231-002X", id="dashes"),
        pytest.param("110105491231002", id="old 15-digit number"),
        pytest.param(completed("11010519800230001"), id="30 February"),
        pytest.param(completed("11010519810229001"), id="29 February outside a leap year"),
        pytest.param(completed("11010519801301001"), id="month 13"),
        pytest.param(completed("11010519800100001"), id="day 0"),
        pytest.param(None, id="None"),
        pytest.param(110105194912310038, id="an integer"),
    ],
)
def test_invalid_numbers_are_refused_naming_the_id_number_field(raw):
    with pytest.raises(InvalidInput) as refusal:
        normalise_id_number(raw)
    assert refusal.value.field == "id_number"


def test_a_leap_day_birth_date_is_accepted():
    assert normalise_id_number(completed("11010520000229001"))[6:14] == "20000229"


def test_refusals_name_the_field_they_are_given():
    with pytest.raises(InvalidInput) as refusal:
        normalise_id_number("123", field="members[2].id_number")
    assert refusal.value.field == "members[2].id_number"


@pytest.mark.parametrize("positions", [range(0, 6), range(14, 17), range(0, 17)], ids=["region", "sequence", "all"])
def test_non_ascii_digits_are_refused_or_normalised_to_the_ascii_number(positions):
    """Full-width digits (全角, common from Chinese input methods) match ``\\d``; if they were
    kept, the same person would get a different digest and could be registered twice."""
    raw = "".join(FULL_WIDTH_DIGITS[int(c)] if i in positions else c for i, c in enumerate(OTHER_NUMBER))
    try:
        result = normalise_id_number(raw)
    except InvalidInput as refusal:
        assert refusal.field == "id_number"
    else:
        assert result == OTHER_NUMBER


def test_birth_date_reads_the_date_from_a_normalised_number():
    assert birth_date(NUMBER) == dt.date(1949, 12, 31)


def test_mask_shows_only_the_region_and_the_last_four():
    assert mask(NUMBER) == "110105********002X"
    assert "19491231" not in mask(NUMBER)


def test_id_digest_is_the_keyed_hmac_sha256_of_the_number():
    assert id_digest(NUMBER, "key-1") == hmac.new(b"key-1", NUMBER.encode(), hashlib.sha256).hexdigest()


def test_id_digest_is_stable_and_differs_per_key_and_per_number():
    assert id_digest(NUMBER, "key-1") == id_digest(NUMBER, "key-1")
    assert id_digest(NUMBER, "key-1") != id_digest(NUMBER, "key-2")
    assert id_digest(NUMBER, "key-1") != id_digest(OTHER_NUMBER, "key-1")
    assert NUMBER not in id_digest(NUMBER, "key-1")


first_seventeens = st.builds(
    lambda region, born, sequence: f"{region}{born:%Y%m%d}{sequence}",
    st.text(DIGITS, min_size=6, max_size=6),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
    st.text(DIGITS, min_size=3, max_size=3),
)


@given(first_seventeens)
def test_any_seventeen_digits_with_a_valid_date_completed_by_their_check_character_are_accepted(first):
    number = completed(first)
    assert normalise_id_number(number) == number
    assert normalise_id_number(number.lower()) == number


@given(first_seventeens, st.data())
def test_changing_any_single_character_of_a_valid_number_makes_it_invalid(first, data):
    number = completed(first)
    position = data.draw(st.integers(0, 17), label="position")
    allowed = DIGITS + "X" if position == 17 else DIGITS
    replacement = data.draw(st.sampled_from(allowed).filter(lambda c: c != number[position]), label="replacement")
    changed = number[:position] + replacement + number[position + 1 :]
    if position < 17:  # MOD 11-2 detects every single-digit error on its own, whatever the date
        assert check_character(changed[:17]) != number[17]
    with pytest.raises(InvalidInput) as refusal:
        normalise_id_number(changed)
    assert refusal.value.field == "id_number"


@given(first_seventeens)
def test_a_mask_never_reveals_the_birth_date(first):
    number = completed(first)
    masked = mask(number)
    assert masked == number[:6] + "*" * 8 + number[14:]
    assert number[6:14] not in masked


def test_a_birth_date_before_1900_is_refused_and_1900_itself_is_not():
    assert birth_date(completed("11010519000101001")) == dt.date(1900, 1, 1)
    with pytest.raises(InvalidInput) as refusal:
        birth_date(completed("11010518991231001"))
    assert refusal.value.field == "id_number"
    with pytest.raises(InvalidInput):
        normalise_id_number(completed("11010518991231001"))


# Unified social credit codes (统一社会信用代码, GB 32100-2015): 18 characters, MOD 31 check.

from ledger.identity import credit_check_character, normalise_credit_code  # noqa: E402

#: Known-valid codes: an enterprise (91…) and a government organ (11…) registered in region 320102.
CREDIT_CODES = ("91320102MAJ70P6D0C", "11320102945807305F")
CREDIT_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
FULL_WIDTH_CREDIT = str.maketrans(
    DIGITS + "ABCDEFGHJKLMNPQRTUWXYabcdefghjklmnpqrtuwxy",
    FULL_WIDTH_DIGITS + "ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＸＹａｂｃｄｅｆｇｈｊｋｌｍｎｐｑｒｔｕｗｘｙ",
)


@pytest.mark.parametrize("code", CREDIT_CODES)
def test_known_credit_codes_end_in_the_check_character_gb_32100_gives(code):
    assert credit_check_character(code[:17]) == code[17]


def test_a_weighted_sum_divisible_by_31_gives_the_check_character_0():
    assert credit_check_character("0" * 17) == "0"
    assert normalise_credit_code("0" * 18) == "0" * 18


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(CREDIT_CODES[0], CREDIT_CODES[0], id="already normal"),
        pytest.param(CREDIT_CODES[1], CREDIT_CODES[1], id="letter check character"),
        pytest.param(CREDIT_CODES[0].lower(), CREDIT_CODES[0], id="lower case"),
        pytest.param(CREDIT_CODES[0].translate(FULL_WIDTH_CREDIT), CREDIT_CODES[0], id="full-width"),
        pytest.param(CREDIT_CODES[0].lower().translate(FULL_WIDTH_CREDIT), CREDIT_CODES[0], id="full-width lower case"),
        pytest.param(f"\u3000{CREDIT_CODES[1]} \n", CREDIT_CODES[1], id="surrounding spaces"),
    ],
)
def test_valid_credit_codes_are_normalised_to_upper_case_ascii(raw, expected):
    assert normalise_credit_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(CREDIT_CODES[0][:17] + "D", id="wrong check character"),
        pytest.param(CREDIT_CODES[1][:17] + "0", id="digit where a letter check character belongs"),
        *(
            pytest.param(CREDIT_CODES[0][:8] + letter + CREDIT_CODES[0][9:], id=f"letter {letter}")
            for letter in "IOSVZ"
        ),
        pytest.param(CREDIT_CODES[0][:17] + "Z", id="Z as check character"),
        pytest.param(CREDIT_CODES[0][:8].lower() + "i" + CREDIT_CODES[0][9:].lower(), id="lower-case i"),
        pytest.param("91A20102MAJ70P6D0C", id="letter in the region code"),
        pytest.param(CREDIT_CODES[0][:17], id="17 characters"),
        pytest.param(CREDIT_CODES[0] + "0", id="19 characters"),
        pytest.param("", id="empty"),
        pytest.param("91320102 MAJ70P6D0C", id="inner space"),
        pytest.param("MAJ70P6D0", id="old 9-character organisation code"),
        pytest.param(None, id="None"),
        pytest.param(913201029458073050, id="an integer"),
    ],
)
def test_invalid_credit_codes_are_refused_naming_the_credit_code_field(raw):
    with pytest.raises(InvalidInput) as refusal:
        normalise_credit_code(raw)
    assert refusal.value.field == "credit_code"


credit_prefixes = st.builds(
    lambda registration, region, organisation: registration + region + organisation,
    st.text(CREDIT_CHARACTERS, min_size=2, max_size=2),
    st.text(DIGITS, min_size=6, max_size=6),
    st.text(CREDIT_CHARACTERS, min_size=9, max_size=9),
)


def allowed_credit_characters(position: int) -> str:
    """The characters GB 32100 allows at ``position``: digits in the region code, else the 31."""
    return DIGITS if 2 <= position < 8 else CREDIT_CHARACTERS


@given(credit_prefixes)
def test_any_valid_seventeen_characters_completed_by_their_check_character_are_accepted(prefix):
    code = prefix + credit_check_character(prefix)
    assert code[17] in CREDIT_CHARACTERS
    assert normalise_credit_code(code) == code
    assert normalise_credit_code(code.lower()) == code


@given(credit_prefixes, st.data())
def test_changing_any_single_character_of_a_valid_credit_code_makes_it_invalid(prefix, data):
    code = prefix + credit_check_character(prefix)
    position = data.draw(st.integers(0, 17), label="position")
    replacement = data.draw(
        st.sampled_from(allowed_credit_characters(position)).filter(lambda c: c != code[position]), label="replacement"
    )
    changed = code[:position] + replacement + code[position + 1 :]
    if position < 17:  # 31 is prime and no weight is 0 mod 31: every single substitution moves the sum
        assert credit_check_character(changed[:17]) != code[17]
    with pytest.raises(InvalidInput) as refusal:
        normalise_credit_code(changed)
    assert refusal.value.field == "credit_code"
