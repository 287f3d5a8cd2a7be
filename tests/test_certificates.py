"""Service certificates, on SQLite and PostgreSQL: what they certify, their codes, their staleness, their PDF.

李明 (V00001) of 幸福社区's first grid patrols two hours on 2026-03-04 and on 2026-03-11, and
three hours on 2026-04-01; the certificate is for March 2026: two activities, four hours.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import text

from ledger.activities import correct_activity
from ledger.certificates import (
    CODE_ALPHABET,
    certificate_pdf,
    check_code,
    hours_text,
    issue_certificate,
    masked_name,
    new_code,
    normalise_code,
)
from ledger.db import db
from ledger.errors import AppendOnlyViolation, Conflict, IdempotencyConflict, InvalidInput, NotFound
from ledger.models import AppUser, OrgNode, Participant, ServiceCertificate
from ledger.participants import register_co_building_unit
from tests.activity_fixtures import service
from tests.refusals import refused

MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
CHECK_ADDRESS = "https://ledger.example.org/certificates/check"


@pytest.fixture
def served(desk, resident):
    """李明's season: two patrols in March, one in April; return the first March activity."""
    first = desk.record(service(resident.participant_id, "2026-03-04 09:00", "11:00"))
    desk.record(service(resident.participant_id, "2026-03-11 09:00", "11:00"))
    desk.record(service(resident.participant_id, "2026-04-01 09:00", "12:00"))
    return first.activity


@pytest.fixture
def issue(desk, resident):
    """Return a callable issuing (as staff, in a committed write) a certificate of 李明's service in a period."""
    keys = iter(range(1, 1000))

    def issue_for(period=MARCH, *, key=None, participant_id=None, actor_id=None):
        key = key or f"certificate-{next(keys)}"
        return desk.write(
            lambda: issue_certificate(
                desk.session,
                actor=desk.user(actor_id),
                participant=desk.session.get(Participant, participant_id or resident.participant_id),
                period_from=period[0],
                period_to=period[1],
                idempotency_key=key,
            )
        )

    return issue_for


def test_a_certificate_certifies_the_verified_service_of_its_period(served, issue):
    certificate = issue().certificate

    assert (certificate.service_minutes, certificate.activity_count) == (240, 2)
    assert certificate.number == f"C1-{certificate.issued_on.year}-00001"
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", certificate.code)
    assert certificate.org.code == "C1"  # the community issues, though the service was in its grid


def test_its_code_verifies_and_the_check_shows_only_what_the_certificate_prints(served, issue, session):
    certificate = issue().certificate

    check = check_code(session, certificate.code.lower().replace("-", " "))

    assert check.matches_ledger
    assert (check.number, check.holder, check.org_name) == (certificate.number, "李*", "幸福社区")
    assert (check.period_from, check.period_to, check.service_minutes, check.activity_count) == (*MARCH, 240, 2)


def test_a_reversal_after_issuing_makes_the_check_say_it_no_longer_matches(served, issue, desk, session):
    certificate = issue().certificate
    desk.write(
        lambda: correct_activity(
            session,
            actor=desk.user(),
            activity_id=served.id,
            service=service(served.participant_id, "2026-03-04 09:00", "10:00"),
            reason="签退时间登记错误",
            idempotency_key="fix-1",
        )
    )

    assert not check_code(session, certificate.code).matches_ledger
    with pytest.raises(Conflict, match="no longer matches the ledger"):
        certificate_pdf(session, certificate, check_address=CHECK_ADDRESS)
    assert issue().certificate.service_minutes == 180  # a new certificate certifies the corrected ledger


def test_service_entered_late_for_the_period_also_makes_it_stale(served, issue, desk, resident, session):
    certificate = issue().certificate
    desk.record(service(resident.participant_id, "2026-03-20 09:00", "10:00"))

    assert not check_code(session, certificate.code).matches_ledger


def test_service_outside_the_period_or_of_others_leaves_it_standing(served, issue, desk, make_resident, resident, session):
    certificate = issue().certificate
    other = make_resident(name="王芳")
    desk.record(service(other.participant_id, "2026-03-04 09:00", "11:00"))
    desk.record(service(resident.participant_id, "2026-05-06 09:00", "11:00"))

    assert check_code(session, certificate.code).matches_ledger


def test_the_pdf_text_extracts_back_to_the_right_chinese(served, issue, session):
    certificate = issue().certificate

    pdf = PdfReader(io.BytesIO(certificate_pdf(session, certificate, check_address=CHECK_ADDRESS)))
    # Spacing and line breaks are the layout's: compare the characters.
    words = "".join("".join(page.extract_text() for page in pdf.pages).split())

    for expected in (
        "志愿服务记录证明",
        f"证明编号：{certificate.number}",
        "兹证明 李明",
        certificate.participant.person.id_number_masked,
        "志愿者编号：V00001",
        "2026年3月1日 至 2026年3月31日",
        "参加志愿服务 2 次",
        "累计志愿服务时长 4小时",
        "巡逻",
        "出具单位：幸福社区（盖章）",
        f"查验码：{certificate.code}",
        CHECK_ADDRESS,
    ):
        assert "".join(expected.split()) in words
    fonts = {font["/BaseFont"] for page in pdf.pages for font in page["/Resources"]["/Font"].values()}
    assert all(name.endswith("NotoSansSC") for name in fonts)  # a subset of the embedded Noto Sans SC
    descendant = pdf.pages[0]["/Resources"]["/Font"]["/F1"]["/DescendantFonts"][0].get_object()
    assert "/FontFile2" in descendant["/FontDescriptor"]


def test_the_same_key_returns_the_first_certificate_and_another_period_under_it_is_refused(served, issue, session):
    first = issue(key="cert-1")
    again = issue(key="cert-1")

    assert again.replayed and again.certificate.id == first.certificate.id
    with pytest.raises(IdempotencyConflict):
        issue((dt.date(2026, 3, 1), dt.date(2026, 4, 30)), key="cert-1")


def test_certificates_of_a_community_are_numbered_in_turn(served, issue):
    numbers = [issue().certificate.number for _ in range(3)]

    assert [number.rsplit("-", 1)[1] for number in numbers] == ["00001", "00002", "00003"]


@pytest.mark.parametrize(
    ("period", "field"),
    [
        ((dt.date(2026, 6, 1), dt.date(2026, 6, 30)), "period_from"),  # no service then
        ((dt.date(2026, 3, 31), dt.date(2026, 3, 1)), "period_to"),
        ((dt.date(2026, 3, 1), dt.date(2099, 1, 1)), "period_to"),
    ],
)
def test_a_period_without_service_backwards_or_in_the_future_is_refused(served, issue, session, period, field):
    refusal = refused(session, lambda work: work(), lambda: issue(period), InvalidInput)

    assert refusal.field == field


def test_a_unit_gets_no_service_certificate(served, issue, desk, street, session):
    unit = desk.write(
        lambda: register_co_building_unit(
            session, community=desk.org(street.community), name="幸福物业", unit_kind="property_company", reported_on=dt.date(2026, 1, 5)
        )
    )

    with pytest.raises(InvalidInput) as refusal:
        issue(participant_id=unit.id)
    assert refusal.value.field == "participant_id"


def test_an_unknown_or_malformed_code_is_not_found(served, issue, session):
    issue()

    for code in ("0000-0000-0000-0000", "not a code", ""):
        with pytest.raises(NotFound):
            check_code(session, code)


def test_a_certificate_is_never_changed_or_deleted(served, issue, session, app):
    certificate = issue().certificate

    certificate.service_minutes = 6000
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()
    for statement in (
        "UPDATE service_certificate SET service_minutes = 6000",
        "DELETE FROM service_certificate",
    ):
        with pytest.raises(Exception, match="append-only"):
            with app.app_context(), db.engine.begin() as connection:
                connection.execute(text(statement))


# The command line.


def test_the_commands_issue_a_pdf_print_it_again_and_check_its_code(served, runner, tmp_path, session, desk):
    issued = runner.invoke(
        args=["certificates", "issue", "--volunteer", "V00001", "--from", "2026-03-01", "--to", "2026-03-31", "-o", str(tmp_path / "c.pdf")]
    )
    code = re.search(r"verification code (\S+)", issued.output).group(1)
    number = re.search(r"Certificate (\S+):", issued.output).group(1)
    again = runner.invoke(args=["certificates", "pdf", number, "-o", str(tmp_path / "again.pdf")])
    checked = runner.invoke(args=["certificates", "check", code])

    assert issued.exit_code == 0 and "2 activities, 4:00 hours" in issued.output
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF") and again.exit_code == 0
    assert checked.exit_code == 0 and "李* · 幸福社区" in checked.output and "Matches the ledger." in checked.output


def test_the_check_command_exits_non_zero_once_the_certificate_is_stale(served, issue, runner, desk, resident):
    certificate = issue().certificate
    desk.record(service(resident.participant_id, "2026-03-20 09:00", "10:00"))

    result = runner.invoke(args=["certificates", "check", certificate.code])

    assert result.exit_code == 1 and "NO LONGER MATCHES" in result.output


# Pure parts.


@given(st.integers(min_value=0, max_value=10**6))
def test_hours_are_written_in_whole_hours_and_minutes(minutes):
    written = hours_text(minutes)
    hours, rest = re.fullmatch(r"(\d+)小时(?:(\d+)分钟)?", written).groups()
    assert int(hours) * 60 + int(rest or 0) == minutes


@pytest.mark.parametrize(("name", "masked"), [("李明", "李*"), ("欧阳修", "欧**"), ("买买提·艾力", "买*****")])
def test_a_name_is_masked_to_its_first_character(name, masked):
    assert masked_name(name) == masked


@given(st.data())
def test_a_code_however_retyped_normalises_to_itself(data):
    code = new_code()
    plain = code.replace("-", "")
    retyped = data.draw(st.sampled_from([plain.lower(), " ".join(plain), code.replace("0", "O").replace("1", "l")]))
    assert normalise_code(retyped) == code and set(plain) <= set(CODE_ALPHABET)
