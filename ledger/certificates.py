"""Service certificates (志愿服务记录证明): what a person served in a period, certified, printable and checkable.

A certificate certifies the person's *verified* service in a period: every activity scored by an
``earn`` transaction that recorded service time, has not been reversed, and whose business day
lies in the period. It keeps the totals (minutes, activities) and a digest of the (activity,
transaction, minutes) triples they came from. The ledger is append-only, so a check can always
recompute the same triples: when they still give the digest, the certificate still matches the
ledger; a later reversal (a correction, say) or service entered late for the period makes the
check say it no longer does, and a new certificate is issued for the period.

Its number (证明编号) is the issuing community's code, the year and a serial; its verification
code (查验码) is 80 random bits, so that only someone shown the certificate can check it, and a
check shows nothing personal beyond what the certificate itself prints: the masked name, the
period, the totals and the issuer.

The PDF follows what Chinese practice expects of a 志愿服务记录证明: name, masked ID number,
volunteer number, the period, total hours and the activities, the issuing organisation, the
certificate number and date, and how to verify it. Its Chinese is set in Noto Sans SC, which
ships with the package (``ledger/fonts``) and is embedded, subset to the characters used.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from ledger import chain
from ledger.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound
from ledger.models import (
    Activity,
    AppUser,
    OrgNode,
    Participant,
    RuleSetVersion,
    ServiceCertificate,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.orgs import local_date
from ledger.rules import rules_of
from ledger.transactions import IDEMPOTENCY_KEY_PATTERN, lock_chain, participant_account

FONT = Path(__file__).resolve().parent / "fonts" / "NotoSansSC-Regular.ttf"
#: Crockford's base32: no I, L, O or U, so a code read aloud or retyped is not misread.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
_CODE_READINGS = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class CertifiedLine:
    """One activity a certificate counts, with the transaction that scored it."""

    activity_id: int
    transaction_id: int
    day: dt.date
    started_at: dt.datetime
    ended_at: dt.datetime
    activity_type: str
    #: The activity type's Chinese name in the rules that scored it.
    type_label: str
    org_name: str
    description: str | None
    minutes: int


@dataclass(frozen=True)
class CertifiedService:
    lines: tuple[CertifiedLine, ...]

    @property
    def minutes(self) -> int:
        return sum(line.minutes for line in self.lines)

    @property
    def digest(self) -> str:
        return chain.digest([[line.activity_id, line.transaction_id, line.minutes] for line in self.lines])


@dataclass(frozen=True)
class Issued:
    certificate: ServiceCertificate
    replayed: bool


@dataclass(frozen=True)
class Check:
    """What a check of a code shows: nothing but what the certificate prints, and whether it still holds."""

    number: str
    holder: str
    org_name: str
    period_from: dt.date
    period_to: dt.date
    service_minutes: int
    activity_count: int
    issued_on: dt.date
    matches_ledger: bool


def certified_service(session: Session, participant: Participant, period_from: dt.date, period_to: dt.date) -> CertifiedService:
    """Return the person's verified, unreversed service with business days in the period, in order."""
    reversal = aliased(Transaction)
    rows = session.execute(
        select(Transaction, Activity, OrgNode.name)
        .join(Activity, Activity.id == Transaction.activity_id)
        .join(OrgNode, OrgNode.id == Activity.org_id)
        .where(
            Transaction.subject_account_id == participant_account(session, participant.id).id,
            Transaction.kind == TransactionKindCode.EARN,
            Transaction.service_minutes > 0,
            Transaction.business_date.between(period_from, period_to),
            ~exists().where(reversal.reverses_id == Transaction.id),
        )
        .order_by(Activity.started_at, Activity.id)
    ).all()
    labels = _type_labels(session, {transaction.rule_set_version_id for transaction, _, _ in rows})
    return CertifiedService(
        tuple(
            CertifiedLine(
                activity_id=activity.id,
                transaction_id=transaction.id,
                day=transaction.business_date,
                started_at=activity.started_at,
                ended_at=activity.ended_at,
                activity_type=activity.activity_type,
                type_label=labels.get((transaction.rule_set_version_id, activity.activity_type), activity.activity_type),
                org_name=org_name,
                description=activity.description,
                minutes=transaction.service_minutes,
            )
            for transaction, activity, org_name in rows
        )
    )


def _type_labels(session: Session, version_ids: set[int | None]) -> dict[tuple[int, str], str]:
    versions = session.scalars(select(RuleSetVersion).where(RuleSetVersion.id.in_(version_ids - {None})))
    return {
        (version.id, code): kind.label.zh for version in versions for code, kind in rules_of(version).activity_types.items()
    }


def issue_certificate(
    session: Session,
    *,
    actor: AppUser,
    participant: Participant,
    period_from: dt.date,
    period_to: dt.date,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Issued:
    """Certify a person's verified service in a period, issued by their community."""
    now = now or utc_now()
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidInput("must be 1 to 128 characters of letters, digits and . _ : / @ + = -", field="idempotency_key")
    if participant.person is None:
        raise InvalidInput("a service certificate is for a person, not a unit", field="participant_id")
    org = session.get(OrgNode, participant.org.chain_id)
    today = local_date(now, org)
    for field, day in (("period_from", period_from), ("period_to", period_to)):
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            raise InvalidInput("must be a date", field=field)
    if period_to < period_from:
        raise InvalidInput("must not be before period_from", field="period_to")
    if period_to > today:
        raise InvalidInput(f"must not be after today ({today.isoformat()})", field="period_to")
    request_digest = chain.digest(
        {"participant": participant.id, "from": period_from.isoformat(), "to": period_to.isoformat()}
    )
    # Certificates of a community are numbered in turn, and certify the ledger as its writers left it.
    lock_chain(session, org)
    earlier = session.execute(
        select(ServiceCertificate).where(
            ServiceCertificate.org_id == org.id,
            ServiceCertificate.issued_by_id == actor.id,
            ServiceCertificate.idempotency_key == idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.request_digest != request_digest:
            raise IdempotencyConflict("this idempotency key was already used for a different request", field="idempotency_key")
        return Issued(earlier, replayed=True)
    service = certified_service(session, participant, period_from, period_to)
    if not service.lines:
        raise InvalidInput(
            f"{participant.display_name} has no verified service from {period_from.isoformat()} to {period_to.isoformat()}",
            field="period_from",
        )
    serial = 1 + session.scalar(
        select(func.count())
        .select_from(ServiceCertificate)
        .where(ServiceCertificate.org_id == org.id, ServiceCertificate.issued_on.between(today.replace(month=1, day=1), today))
    )
    certificate = ServiceCertificate(
        number=f"{org.code}-{today.year}-{serial:05d}",
        code=new_code(),
        participant_id=participant.id,
        org_id=org.id,
        period_from=period_from,
        period_to=period_to,
        service_minutes=service.minutes,
        activity_count=len(service.lines),
        certified_digest=service.digest,
        issued_on=today,
        issued_at=now,
        issued_by_id=actor.id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
    )
    session.add(certificate)
    session.flush()
    return Issued(certificate, replayed=False)


def new_code() -> str:
    """Return a fresh verification code: 16 characters of Crockford base32 (80 bits), in groups of four."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(code[start : start + 4] for start in range(0, CODE_LENGTH, 4))


def normalise_code(raw: str) -> str:
    """Return a code as stored, however it was typed: any case, spaces or dashes, O for 0, I or L for 1."""
    text = "".join(character for character in str(raw).upper() if character.isalnum()).translate(_CODE_READINGS)
    if len(text) != CODE_LENGTH or any(character not in CODE_ALPHABET for character in text):
        raise NotFound("no certificate has this verification code", field="code")
    return "-".join(text[start : start + 4] for start in range(0, CODE_LENGTH, 4))


def still_certified(session: Session, certificate: ServiceCertificate) -> CertifiedService | None:
    """Return the service the certificate certified if the ledger still holds exactly that, else ``None``."""
    now = certified_service(session, certificate.participant, certificate.period_from, certificate.period_to)
    matches = (now.digest, now.minutes, len(now.lines)) == (
        certificate.certified_digest,
        certificate.service_minutes,
        certificate.activity_count,
    )
    return now if matches else None


def check_code(session: Session, code: str) -> Check:
    """Check a verification code: the certificate's public facts, and whether it still matches the ledger."""
    certificate = session.execute(
        select(ServiceCertificate).where(ServiceCertificate.code == normalise_code(code))
    ).scalar_one_or_none()
    if certificate is None:
        raise NotFound("no certificate has this verification code", field="code")
    return Check(
        number=certificate.number,
        holder=masked_name(certificate.participant.person.real_name),
        org_name=certificate.org.name,
        period_from=certificate.period_from,
        period_to=certificate.period_to,
        service_minutes=certificate.service_minutes,
        activity_count=certificate.activity_count,
        issued_on=certificate.issued_on,
        matches_ledger=still_certified(session, certificate) is not None,
    )


def masked_name(name: str) -> str:
    """Return a name with all but its first character hidden: 李明 → 李*, 欧阳修 → 欧**."""
    return name[:1] + "*" * (len(name) - 1)


def hours_text(minutes: int) -> str:
    """Return minutes as Chinese hours and minutes: 150 → 2小时30分钟."""
    hours, rest = divmod(minutes, 60)
    return f"{hours}小时" + (f"{rest}分钟" if rest else "")


def certificate_pdf(session: Session, certificate: ServiceCertificate, *, check_address: str) -> bytes:
    """Return the certificate as a PDF, refusing one the ledger no longer bears out (issue a new one)."""
    service = still_certified(session, certificate)
    if service is None:
        raise Conflict(
            f"certificate {certificate.number} no longer matches the ledger (an entry of the period was reversed "
            "or added since); issue a new certificate for the period",
            field="certificate",
        )
    return render_pdf(certificate, service, check_address=check_address)


def render_pdf(certificate: ServiceCertificate, service: CertifiedService, *, check_address: str) -> bytes:
    """Lay the certificate out on A4, its Chinese set in the embedded Noto Sans SC."""
    from fpdf import FPDF
    from fpdf.enums import Align, XPos, YPos
    from fpdf.fonts import FontFace

    person = certificate.participant.person
    volunteer_number = person.volunteer.volunteer_number if person.volunteer else "—"
    pdf = FPDF(format="A4")
    pdf.set_title(f"志愿服务记录证明 {certificate.number}")
    pdf.set_creator("志愿服务积分台账 · Volunteer points ledger")
    pdf.set_creation_date(certificate.issued_at)
    pdf.add_font("NotoSansSC", fname=str(FONT))
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    below = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    pdf.set_font("NotoSansSC", size=9)
    pdf.cell(0, 6, f"证明编号：{certificate.number}", align=Align.R, **below)
    pdf.ln(6)
    pdf.set_font("NotoSansSC", size=22)
    pdf.cell(0, 14, "志愿服务记录证明", align=Align.C, **below)
    pdf.ln(6)
    pdf.set_font("NotoSansSC", size=12)
    pdf.multi_cell(
        0,
        8,
        f"兹证明{person.real_name}（公民身份号码：{person.id_number_masked}，志愿者编号：{volunteer_number}）"
        f"于{_chinese_date(certificate.period_from)}至{_chinese_date(certificate.period_to)}期间，"
        f"在{certificate.org.name}参加志愿服务{certificate.activity_count}次，"
        f"累计志愿服务时长{hours_text(certificate.service_minutes)}。具体服务记录如下：",
        align=Align.L,
        **below,
    )
    pdf.ln(3)
    pdf.set_font("NotoSansSC", size=9)
    # One weight of the font is embedded: the heading row is shaded rather than bold.
    heading = FontFace(emphasis="", fill_color=(235, 235, 235))
    with pdf.table(col_widths=(8, 22, 20, 22, 62, 18), text_align="LEFT", line_height=6, headings_style=heading) as table:
        table.row(("序号", "日期", "服务类型", "服务地点", "服务内容", "时长"))
        for index, line in enumerate(service.lines, start=1):
            table.row(
                (str(index), line.day.isoformat(), line.type_label, line.org_name, line.description or "", hours_text(line.minutes))
            )
    pdf.ln(6)
    pdf.set_font("NotoSansSC", size=12)
    pdf.cell(0, 8, "特此证明。", **below)
    pdf.ln(8)
    pdf.cell(0, 8, f"出具单位：{certificate.org.name}（盖章）", align=Align.R, **below)
    pdf.cell(0, 8, f"出具日期：{_chinese_date(certificate.issued_on)}", align=Align.R, **below)
    pdf.ln(8)
    pdf.set_font("NotoSansSC", size=9)
    pdf.multi_cell(
        0,
        5,
        f"查验码：{certificate.code}\n"
        f"查验方式：打开 {check_address}，输入查验码，可核对本证明所载服务时长与台账是否一致。\n"
        "本证明依据志愿服务积分台账出具；台账只增不改，每笔记录经哈希链校验。",
        align=Align.L,
        **below,
    )
    return bytes(pdf.output())


def _chinese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
