"""Unit tests of ledger.chain: the canonical encoding (against RFC 8785's reference) and link hashes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import zoneinfo

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import (
    GENESIS_HASH,
    MAX_CANONICAL_INTEGER,
    PostingLink,
    TransactionLink,
    canonical_bytes,
    check_canonical_value,
    format_utc,
    link_document,
    link_hash,
)
from ledger.errors import InvalidInput

UTC = dt.timezone.utc

#: Characters whose encoding is easy to get wrong: controls, JSON's escapes, line and paragraph
#: separators, DEL, the ends of the BMP around the surrogate block, CJK and emoji.
SPECIAL_CHARACTERS = (
    "\x00", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", '"', "\\", "/", "\x7f",
    "\x80", "\u00e9", "\u2028", "\u2029", "\ud7ff", "\ue000", "\ufeff", "\uffff",
    "中", "社", "区", "\U0001f600", "\U0001f468", "\u200d", "\U00020000", "\U0010ffff",
)  # fmt: skip

text_characters = st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL_CHARACTERS))
key_characters = text_characters.filter(lambda character: ord(character) <= 0xFFFF)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_CANONICAL_INTEGER, MAX_CANONICAL_INTEGER),
    st.text(text_characters),
)
canonical_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(key_characters, max_size=6), children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=500)
@given(canonical_values)
def test_canonical_bytes_equal_the_rfc8785_reference_for_every_value_of_the_domain(value):
    check_canonical_value(value, "breakdown")  # the strategy stays inside the checked domain
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        MAX_CANONICAL_INTEGER,
        -MAX_CANONICAL_INTEGER,
        0,
        True,
        None,
        "",
        [],
        {},
        "".join(SPECIAL_CHARACTERS),
        {"\uffff": 1, "\ue000": 2, "中": 3, "a": 4, "": 5, "\x00": 6},
    ],
    ids=repr,
)
def test_boundary_values_of_the_domain_are_accepted_and_encoded_as_rfc8785_does(value):
    check_canonical_value(value, "breakdown")
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_astral_keys_are_outside_the_domain_because_utf16_order_differs_from_code_point_order():
    value = {"\U0001f600": 1, "\uffff": 2}
    assert canonical_bytes(value) != rfc8785.dumps(value)
    with pytest.raises(InvalidInput):
        check_canonical_value(value, "breakdown")


class Stars(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    ("value", "field", "expected_field"),
    [
        pytest.param(1.5, "amount", "amount", id="float"),
        pytest.param(2.0, "amount", "amount", id="integral float"),
        pytest.param(float("nan"), "amount", "amount", id="nan"),
        pytest.param({"steps": [{"x": 0.5}]}, "breakdown", "breakdown.steps[0].x", id="nested float"),
        pytest.param([[{"a": {"b": 2.0}}]], "breakdown", "breakdown[0][0].a.b", id="deeply nested float"),
        pytest.param(MAX_CANONICAL_INTEGER + 1, "breakdown", "breakdown", id="integer above 2**53-1"),
        pytest.param(-MAX_CANONICAL_INTEGER - 1, "breakdown", "breakdown", id="integer below -(2**53-1)"),
        pytest.param({"total": 10**20}, "breakdown", "breakdown.total", id="huge integer in an object"),
        pytest.param({1: "a"}, "breakdown", "breakdown", id="integer key"),
        pytest.param({"ok": {None: 1}}, "breakdown", "breakdown.ok", id="None key in a nested object"),
        pytest.param({"\U0001f600": 1}, "breakdown", "breakdown", id="emoji key"),
        pytest.param({"a\U00020000": 1}, "breakdown", "breakdown", id="astral CJK key"),
        pytest.param({"\ud800": 1}, "breakdown", "breakdown", id="lone surrogate key"),
        pytest.param("\ud800", "memo", "memo", id="lone high surrogate"),
        pytest.param({"a": ["ok", "x\udfffy"]}, "breakdown", "breakdown.a[1]", id="lone low surrogate in a list"),
        pytest.param((1, 2), "breakdown", "breakdown", id="tuple"),
        pytest.param({1, 2}, "breakdown", "breakdown", id="set"),
        pytest.param(b"bytes", "breakdown", "breakdown", id="bytes"),
        pytest.param(decimal.Decimal("1"), "breakdown", "breakdown", id="decimal"),
        pytest.param(dt.date(2026, 1, 1), "breakdown", "breakdown", id="date"),
        pytest.param({"level": Stars.ONE}, "breakdown", "breakdown.level", id="int subclass"),
    ],
)
def test_values_outside_the_canonical_domain_are_refused_naming_the_path(value, field, expected_field):
    with pytest.raises(InvalidInput) as refusal:
        check_canonical_value(value, field)
    assert refusal.value.field == expected_field


RECORDED_AT = dt.datetime(2026, 11, 1, 8, 30, 0, 123456, tzinfo=UTC)
POSTINGS = (PostingLink(5, -10, -10, 1), PostingLink(9, 10, 40, 3))
LINK = TransactionLink(
    chain_id=1,
    seq=7,
    prev_hash="a" * 64,
    org_id=3,
    kind="earn",
    business_date=dt.date(2026, 11, 1),
    recorded_at=RECORDED_AT,
    recorded_by_id=4,
    idempotency_key="issue-1",
    request_digest="d" * 64,
    activity_id=11,
    rule_set_version_id=2,
    breakdown={"base": 10, "steps": [{"rule": "清扫", "points": 10}]},
    memo="社区清扫",
    reverses=None,
    postings=POSTINGS,
)

#: For every field of a link, values that differ from LINK's; each must change the hash.
FIELD_CHANGES = [
    ("chain_id", 2),
    ("seq", 8),
    ("prev_hash", "b" * 64),
    ("prev_hash", GENESIS_HASH),
    ("org_id", 4),
    ("kind", "spend"),
    ("business_date", dt.date(2026, 11, 2)),
    ("recorded_at", RECORDED_AT + dt.timedelta(microseconds=1)),
    ("recorded_by_id", 5),
    ("idempotency_key", "issue-2"),
    ("request_digest", "e" * 64),
    ("activity_id", 12),
    ("activity_id", None),
    ("rule_set_version_id", 3),
    ("rule_set_version_id", None),
    ("breakdown", {"base": 11, "steps": [{"rule": "清扫", "points": 10}]}),
    ("breakdown", {"base": 10, "steps": [{"rule": "清扫", "points": 10}], "bonus": 0}),
    ("breakdown", None),
    ("memo", "社区清扫 "),
    ("memo", ""),
    ("memo", None),
    ("reverses", (1, 6)),
    ("postings", POSTINGS[:1]),
    ("postings", POSTINGS + (PostingLink(12, 0, 0, 1),)),
    ("service_minutes", 90),
    ("subject_account_id", 11),
]


def test_the_field_change_table_covers_every_field_of_a_link():
    assert {name for name, _ in FIELD_CHANGES} == {field.name for field in dataclasses.fields(TransactionLink)}


def test_a_link_hashes_the_rfc8785_bytes_of_its_documented_fields():
    document = {
        "v": 1,
        "chain": 1,
        "seq": 7,
        "prev": "a" * 64,
        "org": 3,
        "kind": "earn",
        "business_date": "2026-11-01",
        "recorded_at": "2026-11-01T08:30:00.123456Z",
        "recorded_by": 4,
        "idempotency_key": "issue-1",
        "request_digest": "d" * 64,
        "activity": 11,
        "rule_set_version": 2,
        "breakdown": {"base": 10, "steps": [{"rule": "清扫", "points": 10}]},
        "memo": "社区清扫",
        "reverses": None,
        "postings": [
            {"account": 5, "amount": -10, "balance_after": -10, "version": 1},
            {"account": 9, "amount": 10, "balance_after": 40, "version": 3},
        ],
    }
    assert link_document(LINK) == document
    assert link_hash(LINK) == hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def test_a_reversal_records_the_place_of_the_reversed_transaction_in_its_chain():
    assert link_document(dataclasses.replace(LINK, reverses=(1, 6)))["reverses"] == {"chain": 1, "seq": 6}


def test_link_hash_is_deterministic_for_equal_links():
    copy = dataclasses.replace(LINK, postings=[dataclasses.replace(posting) for posting in POSTINGS])
    assert link_hash(copy) == link_hash(LINK)
    assert len(link_hash(LINK)) == 64 and set(link_hash(LINK)) <= set("0123456789abcdef")


@pytest.mark.parametrize(("field", "value"), FIELD_CHANGES, ids=[f"{name}={value!r}" for name, value in FIELD_CHANGES])
def test_changing_any_field_of_a_link_changes_its_hash(field, value):
    assert link_hash(dataclasses.replace(LINK, **{field: value})) != link_hash(LINK)


@pytest.mark.parametrize("index", range(len(POSTINGS)))
@pytest.mark.parametrize("attribute", [field.name for field in dataclasses.fields(PostingLink)])
def test_changing_any_attribute_of_any_posting_changes_the_hash(index, attribute):
    postings = list(POSTINGS)
    postings[index] = dataclasses.replace(postings[index], **{attribute: getattr(postings[index], attribute) + 100})
    assert link_hash(dataclasses.replace(LINK, postings=postings)) != link_hash(LINK)


def test_the_same_instant_written_in_another_zone_gives_the_same_hash():
    shanghai = RECORDED_AT.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    assert link_hash(dataclasses.replace(LINK, recorded_at=shanghai)) == link_hash(LINK)


@given(
    st.lists(
        st.builds(
            PostingLink,
            st.integers(1, 10**9),
            st.integers(-(10**12), 10**12),
            st.integers(-(10**15), 10**15),
            st.integers(1, 10**6),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda posting: posting.account_id,
    ),
    st.data(),
)
def test_link_hash_does_not_depend_on_the_order_postings_are_given_in(postings, data):
    shuffled = data.draw(st.permutations(postings))
    in_given_order = dataclasses.replace(LINK, postings=postings)
    assert link_hash(dataclasses.replace(LINK, postings=shuffled)) == link_hash(in_given_order)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(RECORDED_AT, "2026-11-01T08:30:00.123456Z", id="UTC"),
        pytest.param(dt.datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "2026-11-01T08:30:00.000000Z", id="no microseconds"),
        pytest.param(
            dt.datetime(2026, 11, 1, 8, 30, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")),
            "2026-11-01T00:30:00.000000Z",
            id="Asia/Shanghai",
        ),
        pytest.param(
            dt.datetime(2027, 1, 1, 7, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "2026-12-31T23:59:59.999999Z",
            id="+08:00 across a year",
        ),
        pytest.param(
            dt.datetime(2026, 12, 31, 20, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            "2027-01-01T01:00:00.000005Z",
            id="-05:00 across a year",
        ),
    ],
)
def test_format_utc_writes_utc_with_microseconds_and_a_z(moment, text):
    assert format_utc(moment) == text


@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9998, 12, 30)),
    st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)),
)
def test_format_utc_keeps_the_instant_whatever_the_zone(moment, offset):
    aware = moment.replace(tzinfo=dt.timezone(offset))
    text = format_utc(aware)
    assert text.endswith("Z")
    assert dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") == aware


def test_a_link_without_service_time_hashes_as_it_did_before_service_time_was_recorded():
    assert "service" not in link_document(LINK)
    assert link_document(dataclasses.replace(LINK, service_minutes=90, subject_account_id=11))["service"] == {
        "minutes": 90,
        "account": 11,
    }
