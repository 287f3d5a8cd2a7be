"""The hash chain: a canonical encoding of each transaction and the SHA-256 link over it.

Each transaction's hash covers one RFC 8785 (JSON Canonicalization Scheme) document: its
chain and sequence number, the previous link's hash, every content field, and its postings
sorted by account. RFC 8785 fixes key order, string escaping and number formatting, so the
same content always gives the same bytes and no two different contents can collide by
moving a separator.

The values allowed in a link (:func:`check_canonical_value`: integers within 2**53,
well-formed strings, booleans, null, lists, objects with keys in the Basic Multilingual
Plane, and no floats) are a domain on which a compact, key-sorted JSON encoder that leaves
non-ASCII text unescaped produces exactly the RFC 8785 bytes; the test suite proves that for
orjson against the reference implementation. orjson writes the same bytes as the standard
library's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, which
links were hashed with before, at a tenth of its cost: the bulk import hashes three documents an
activity, and ``ledger verify`` rehashes ten million links. Changing any stored field of any link, or removing or reordering links,
breaks the chain from that link on.

There is one chain per community (streets and districts keep their own for their own books):
writers in different communities never wait for each other, and a street office can keep
each community's head outside the database (``ledger checkpoint``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from ledger.errors import InvalidInput

#: The hash a chain starts from.
GENESIS_HASH = "0" * 64

#: Integers in a link stay within what RFC 8785 (IEEE 754 doubles) represents exactly.
MAX_CANONICAL_INTEGER = 2**53 - 1

#: Version of the canonical document; a new encoding would bump it, never change it in place.
ENCODING_VERSION = 1


@dataclass(frozen=True)
class PostingLink:
    account_id: int
    amount: int
    balance_after: int
    account_version: int


@dataclass(frozen=True)
class TransactionLink:
    """Everything a transaction's hash covers, as plain values."""

    chain_id: int
    seq: int
    prev_hash: str
    org_id: int
    kind: str
    business_date: dt.date
    recorded_at: dt.datetime
    recorded_by_id: int
    idempotency_key: str
    request_digest: str
    activity_id: int | None
    rule_set_version_id: int | None
    breakdown: Any
    memo: str | None
    #: ``(chain_id, seq)`` of the reversed transaction: its place in a chain, not a surrogate id.
    reverses: tuple[int, int] | None
    postings: Sequence[PostingLink]
    #: Verified service minutes recorded, and for whose account.
    service_minutes: int = 0
    subject_account_id: int | None = None


#: Fields of a link stored under the same name on the transaction row.
CONTENT_FIELDS = (
    "org_id",
    "kind",
    "business_date",
    "recorded_at",
    "recorded_by_id",
    "idempotency_key",
    "request_digest",
    "activity_id",
    "rule_set_version_id",
    "breakdown",
    "memo",
    "service_minutes",
    "subject_account_id",
)


def format_utc(moment: dt.datetime) -> str:
    """Return ``moment`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the one text form of a timestamp."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; pass an aware one")
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_canonical_value(value: Any, field: str) -> None:
    """Refuse anything outside the JSON domain a link may hold, naming the offending path."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, field)
    elif type(value) is int:
        if abs(value) > MAX_CANONICAL_INTEGER:
            raise InvalidInput(f"integers must be at most {MAX_CANONICAL_INTEGER} in size", field=field)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_canonical_value(item, f"{field}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("object keys must be strings", field=field)
            _check_text(key, field)
            if any(ord(character) > 0xFFFF for character in key):
                raise InvalidInput("object keys must not contain emoji or other astral characters", field=field)
            check_canonical_value(item, f"{field}.{key}")
    else:
        raise InvalidInput(f"{type(value).__name__} values are not allowed; use integers", field=field)


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("must be well-formed text", field=field) from None


def canonical_bytes(value: Any) -> bytes:
    """Encode a value of the canonical domain exactly as RFC 8785 does."""
    # Dates and dataclasses are refused, as json.dumps refused them, rather than encoded orjson's way.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)


def digest(value: Any) -> str:
    """Return the SHA-256 hex digest of ``value``'s canonical encoding."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def link_document(link: TransactionLink) -> dict:
    """Return the canonical document a transaction's hash is computed over.

    Service time joined the ledger after points: a link that records none leaves the key out,
    so links written before keep their hashes, and absence can only mean none.
    """
    document = {
        "v": ENCODING_VERSION,
        "chain": link.chain_id,
        "seq": link.seq,
        "prev": link.prev_hash,
        "org": link.org_id,
        "kind": link.kind,
        "business_date": link.business_date.isoformat(),
        "recorded_at": format_utc(link.recorded_at),
        "recorded_by": link.recorded_by_id,
        "idempotency_key": link.idempotency_key,
        "request_digest": link.request_digest,
        "activity": link.activity_id,
        "rule_set_version": link.rule_set_version_id,
        "breakdown": link.breakdown,
        "memo": link.memo,
        "reverses": None if link.reverses is None else {"chain": link.reverses[0], "seq": link.reverses[1]},
        "postings": [
            {
                "account": posting.account_id,
                "amount": posting.amount,
                "balance_after": posting.balance_after,
                "version": posting.account_version,
            }
            for posting in sorted(link.postings, key=lambda posting: posting.account_id)
        ],
    }
    if link.service_minutes or link.subject_account_id is not None:
        document["service"] = {"minutes": link.service_minutes, "account": link.subject_account_id}
    return document


def link_hash(link: TransactionLink) -> str:
    """Return the hash of ``link``, which covers its content, postings and previous hash."""
    return digest(link_document(link))
