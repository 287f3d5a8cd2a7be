"""Identity numbers: resident ID numbers of people and credit codes of organisations.

Resident ID numbers (居民身份证号码) are checked, masked and digested, never kept whole.

An 18-character number per GB 11643-1999: a six-digit region code, the birth date as
YYYYMMDD, a three-digit sequence, and a check character (ISO 7064 MOD 11-2, ``X`` for 10).
The ledger keeps only a keyed HMAC digest (to find the same person twice) and a mask that
shows the region and the last four characters, which is what certificates print.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata

from ledger.errors import InvalidInput

#: No one registering today was born before this.
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def check_character(first_seventeen: str) -> str:
    """Return the check character that completes ``first_seventeen`` digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first_seventeen, _WEIGHTS))
    return _CHECK_CHARACTERS[total % 11]


def normalise_id_number(raw: str, *, field: str = "id_number") -> str:
    """Return the ID number in upper case after checking its shape, birth date and check digit."""
    if not isinstance(raw, str):
        raise InvalidInput("must be an 18-character resident ID number", field=field)
    # Input methods often type full-width digits (１２３); NFKC folds them to 0-9.
    number = unicodedata.normalize("NFKC", raw).strip().upper()
    if not _SHAPE.fullmatch(number):
        raise InvalidInput("must be 17 digits followed by a digit or X", field=field)
    birth_date(number, field=field)
    if check_character(number[:17]) != number[17]:
        raise InvalidInput("check character does not match; please re-type the number", field=field)
    return number


def birth_date(number: str, *, field: str = "id_number") -> dt.date:
    """Return the birth date written in a normalised ID number."""
    try:
        born = dt.datetime.strptime(number[6:14], "%Y%m%d").date()
    except ValueError:
        raise InvalidInput("does not contain a valid birth date", field=field) from None
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidInput(f"contains a birth date before {EARLIEST_BIRTH_DATE.year}", field=field)
    return born


def age_on(born: dt.date, day: dt.date) -> int:
    """Return a person's age in whole years on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def mask(number: str) -> str:
    """Return the number with everything but the region code and the last four hidden."""
    return number[:6] + "*" * 8 + number[-4:]


def id_digest(number: str, key: str) -> str:
    """Return the keyed digest under which a normalised ID number is stored."""
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


#: Unified social credit codes (统一社会信用代码, GB 32100-2015) use these 31 characters
#: (no I, O, S, V or Z) and end in a MOD 31 check character.
_CREDIT_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_SHAPE = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}")


def credit_check_character(first_seventeen: str) -> str:
    """Return the check character that completes the first 17 characters of a credit code."""
    total = sum(_CREDIT_CHARACTERS.index(c) * w for c, w in zip(first_seventeen, _CREDIT_WEIGHTS))
    return _CREDIT_CHARACTERS[(31 - total % 31) % 31]


def normalise_credit_code(raw: str, *, field: str = "credit_code") -> str:
    """Return an organisation's unified social credit code in upper case, after checking it."""
    if not isinstance(raw, str):
        raise InvalidInput("must be an 18-character unified social credit code", field=field)
    code = unicodedata.normalize("NFKC", raw).strip().upper()
    if not _CREDIT_SHAPE.fullmatch(code):
        raise InvalidInput("must be 18 characters: digits and capital letters other than I, O, S, V, Z", field=field)
    if credit_check_character(code[:17]) != code[17]:
        raise InvalidInput("check character does not match; please re-type the code", field=field)
    return code
