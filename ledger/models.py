"""The data model: the org tree, participants, accounts and the append-only ledger.

Invariants the database itself holds (see also ``ledger/guards.py`` for the triggers):

* ``ledger_transaction`` and ``posting`` are append-only: no UPDATE, DELETE or TRUNCATE.
* Every posting amount is a non-zero integer; a transaction's postings sum to zero
  (PostgreSQL checks it at commit; ``ledger verify`` checks it everywhere).
* A participant account never has a negative balance; system accounts may.
* ``(account_id, account_version)`` is unique, so two writers can never both be "version 7"
  of an account, and a lost update shows as a gap or a duplicate.
* A transaction is reversed at most once, and a reversal is never itself reversed.
* ``(chain_id, seq)`` is unique: one hash chain per community, no forks.
* Every change a ranking reads (period totals, names, opt-outs, categories) sets a new
  standings token on the org of the accounts it concerns (``StandingsVersion``).

All timestamps are UTC (``*_at``); business dates are dates in the org's time zone.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ledger.chain import GENESIS_HASH
from ledger.db import db
from ledger.order_flow import ONCE_PER_CLAIM, ONCE_PER_ORDER, ClaimantKind, Happening, OrderKind
from ledger.points import MAX_POSTING_AMOUNT

#: ``BIGINT`` on PostgreSQL; ``INTEGER`` on SQLite, where only that is an auto-incrementing rowid.
BigIntId = BigInteger().with_variant(Integer, "sqlite")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _in(column: str, values) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class OrgKind(StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


class OrgNode(db.Model):
    """A node of the governance tree: district → street → community → grid (1–3 levels)."""

    __tablename__ = "org_node"
    __table_args__ = (
        CheckConstraint(_in("kind", OrgKind), name="kind"),
        CheckConstraint(
            "(kind = 'grid' AND grid_level BETWEEN 1 AND 3) OR (kind != 'grid' AND grid_level IS NULL)",
            name="grid_level",
        ),
        CheckConstraint("(kind = 'district') = (parent_id IS NULL)", name="root_is_district"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Stable code, unique in the deployment, used by imports, the CLI and checkpoints.
    code: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"), nullable=True, index=True)
    #: 1 = grid of 300–500 households, 2 = 50–100, 3 = 10–20; null above grids.
    grid_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The community this node is or lies in; null for streets and districts.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"), nullable=True, index=True)
    #: Ids from the root down to this node, "/1/4/9/", so a subtree is one prefix match.
    path: Mapped[str] = mapped_column(String(400), nullable=False, index=True)
    #: IANA zone in which this node's days, months and years are counted.
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    parent: Mapped[OrgNode | None] = relationship(remote_side=[id], foreign_keys=[parent_id])

    @property
    def chain_id(self) -> int:
        """The org whose hash chain records this node's transactions (its community)."""
        return self.community_id if self.community_id is not None else self.id


class AppUser(db.Model):
    """Someone (or something, like the CLI) that uses the ledger; what they may do is in their roles."""

    __tablename__ = "app_user"
    __table_args__ = (Index("uq_app_user_participant_id", "participant_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: The participant this user is, when a volunteer or unit signs in for themselves.
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), nullable=True)
    #: argon2id hash of the password; ``None`` for users who only use tokens or the command line.
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: A deactivated user can no longer sign in or use a token; their past writes stay theirs.
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    roles: Mapped[list[RoleAssignment]] = relationship(back_populates="user")


class Role(StrEnum):
    #: Own data only: balance, history, self-reports, claims, redemptions.
    VOLUNTEER = "volunteer"
    #: Records and confirms service in their own grid.
    GRID_WORKER = "grid_worker"
    #: Records, approves, corrects; manages orders and the reward shelf in their community.
    COMMUNITY_STAFF = "community_staff"
    #: Everything in the street's subtree, rule sets included.
    STREET_ADMIN = "street_admin"
    #: Reads and verifies, never writes.
    AUDITOR = "auditor"
    #: Everything everywhere; the only role not scoped to an org.
    SYSTEM_ADMIN = "system_admin"


class RoleAssignment(db.Model):
    """A role a user holds over an org's subtree."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "org_id"),
        CheckConstraint(_in("role", Role), name="role"),
        CheckConstraint("(role = 'system_admin') = (org_id IS NULL)", name="scoped_unless_system_admin"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(24), nullable=False)
    #: The root of the subtree the role covers; ``None`` only for a system admin.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("org_node.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    user: Mapped[AppUser] = relationship(back_populates="roles")
    org: Mapped[OrgNode | None] = relationship()


class ApiToken(db.Model):
    """A bearer token for an API client: only its SHA-256 is stored; it expires and can be revoked."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False, index=True)
    #: SHA-256 of the token. Tokens are 256 random bits, so a fast hash is enough to store them.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[AppUser] = relationship()


class IdempotencyRecord(db.Model):
    """The first response to a write sent with an ``Idempotency-Key``, to replay to its retries."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    #: SHA-256 of the method, path and body: the same key with another request is refused.
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)


class ParticipantKind(StrEnum):
    PERSON = "person"
    UNIT = "unit"


class Participant(db.Model):
    """Anyone who earns points: a person (volunteer and/or party member) or a co-building unit."""

    __tablename__ = "participant"
    __table_args__ = (
        CheckConstraint(_in("kind", ParticipantKind), name="kind"),
        # A unit reports in to a community once; people may share a name, units may not.
        Index(
            "uq_participant_unit_name_per_org",
            "org_id",
            "display_name",
            unique=True,
            sqlite_where=text("kind = 'unit'"),
            postgresql_where=text("kind = 'unit'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Where the participant belongs: a community or a grid in it.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    #: Name shown to staff; a person's real name or a unit's name.
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: Left out of public rankings (staff still see them); minors are out unless they opt in.
    ranking_opt_out: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    org: Mapped[OrgNode] = relationship()
    person: Mapped[Person | None] = relationship(back_populates="participant")
    unit: Mapped[CoBuildingUnit | None] = relationship(back_populates="participant")
    account: Mapped[Account | None] = relationship(
        back_populates="participant", primaryjoin="Participant.id == Account.participant_id"
    )


class Person(db.Model):
    """A resident. The ID number is never stored whole: only a keyed digest and a mask."""

    __tablename__ = "person"

    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True)
    real_name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: HMAC-SHA256 of the ID number under LEDGER_ID_NUMBER_KEY: finds duplicates, reveals nothing.
    id_number_digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: "320102********123X": region and last four only.
    id_number_masked: Mapped[str] = mapped_column(String(18), nullable=False)
    birth_date: Mapped[dt.date] = mapped_column(Date, nullable=False)

    participant: Mapped[Participant] = relationship(back_populates="person")
    volunteer: Mapped[Volunteer | None] = relationship(back_populates="person")
    party_member: Mapped[PartyMember | None] = relationship(back_populates="person")


class Volunteer(db.Model):
    """A person's registration as a volunteer (志愿者)."""

    __tablename__ = "volunteer"

    participant_id: Mapped[int] = mapped_column(ForeignKey("person.participant_id"), primary_key=True)
    volunteer_number: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    registered_on: Mapped[dt.date] = mapped_column(Date, nullable=False)

    person: Mapped[Person] = relationship(back_populates="volunteer")


class EmployerUnit(db.Model):
    """The employer of in-service party members; receives the yearly feedback."""

    __tablename__ = "employer_unit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The node (usually the district) under which the employer was registered.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    #: Unified social credit code (统一社会信用代码), when known.
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)
    #: In-service party members the employer says it has: what its report-in rate is counted against.
    party_members_employed: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PartyMember(db.Model):
    """An in-service party member's report-in (党员报到) to the community they live in."""

    __tablename__ = "party_member"

    participant_id: Mapped[int] = mapped_column(ForeignKey("person.participant_id"), primary_key=True)
    employer_unit_id: Mapped[int] = mapped_column(ForeignKey("employer_unit.id"), nullable=False, index=True)
    reported_on: Mapped[dt.date] = mapped_column(Date, nullable=False)

    person: Mapped[Person] = relationship(back_populates="party_member")
    employer_unit: Mapped[EmployerUnit] = relationship()


class UnitKind(StrEnum):
    GOVERNMENT_AGENCY = "government_agency"
    ENTERPRISE = "enterprise"
    PUBLIC_INSTITUTION = "public_institution"
    PROPERTY_COMPANY = "property_company"
    SOCIAL_ORGANISATION = "social_organisation"
    TWO_NEW_ORGANISATION = "two_new_organisation"


class CoBuildingUnit(db.Model):
    """An organisation that reported to a community (共建单位); its participant org is that community."""

    __tablename__ = "co_building_unit"
    __table_args__ = (CheckConstraint(_in("unit_kind", UnitKind), name="unit_kind"),)

    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True)
    unit_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True, unique=True)
    reported_on: Mapped[dt.date] = mapped_column(Date, nullable=False)

    participant: Mapped[Participant] = relationship(back_populates="unit")


class Team(db.Model):
    """A volunteer service team (志愿服务队)."""

    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    founded_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)

    members: Mapped[list[TeamMember]] = relationship(back_populates="team")


class TeamMember(db.Model):
    __tablename__ = "team_member"

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), primary_key=True, index=True)
    joined_on: Mapped[dt.date] = mapped_column(Date, nullable=False)

    team: Mapped[Team] = relationship(back_populates="members")
    participant: Mapped[Participant] = relationship()


class AccountKind(StrEnum):
    PARTICIPANT = "participant"
    #: Points are issued from here when earned.
    ISSUANCE = "issuance"
    #: Points spent on the reward shelf (爱心超市) land here.
    REWARD_SHELF = "reward_shelf"
    #: Expired points land here.
    EXPIRY = "expiry"
    #: Counterpart of manual adjustments and penalties.
    ADJUSTMENT = "adjustment"
    #: Counterpart of balances carried over from paper passbooks.
    OPENING_BALANCE = "opening_balance"


SYSTEM_ACCOUNT_KINDS = tuple(kind for kind in AccountKind if kind is not AccountKind.PARTICIPANT)


class Account(db.Model):
    """A points account with its balance cached; changed only by the ledger write path."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(_in("kind", AccountKind), name="kind"),
        CheckConstraint("(kind = 'participant') = (participant_id IS NOT NULL)", name="owner_matches_kind"),
        CheckConstraint("kind != 'participant' OR balance >= 0", name="participant_not_negative"),
        CheckConstraint("version >= 0", name="version_not_negative"),
        # What a period total's copy of its account's org refers to (see PeriodTotal.org_id).
        Index("uq_account_id_org_id", "id", "org_id", unique=True),
        Index(
            "uq_account_system_kind_per_org",
            "org_id",
            "kind",
            unique=True,
            sqlite_where=text("participant_id IS NULL"),
            postgresql_where=text("participant_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), nullable=True, unique=True)
    #: Sum of this account's postings.
    balance: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    #: Number of postings to this account; the last posting carries this version.
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    participant: Mapped[Participant | None] = relationship(back_populates="account")
    org: Mapped[OrgNode] = relationship()


class ChainHead(db.Model):
    """The newest link of one hash chain; locking this row serialises the chain's writers."""

    __tablename__ = "chain_head"
    __table_args__ = (CheckConstraint("seq >= 0", name="seq_not_negative"),)

    #: The chain's root org: a community, or a street or district for its own books.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False, default=GENESIS_HASH)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    org: Mapped[OrgNode] = relationship()


class TransactionKindCode(StrEnum):
    """The transaction kinds this version knows; the migrations seed ``transaction_kind`` with them."""

    #: A balance carried over from a paper points passbook.
    OPENING_BALANCE = "opening_balance"
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"
    PENALTY = "penalty"
    REVERSE = "reverse"


class TransactionKind(db.Model):
    """The kinds a transaction may have; a lookup table so adding one is adding a row."""

    __tablename__ = "transaction_kind"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), nullable=False)


class Transaction(db.Model):
    """One balanced movement of points; immutable once written."""

    __tablename__ = "ledger_transaction"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq"),
        UniqueConstraint("org_id", "recorded_by_id", "idempotency_key"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("(kind = 'reverse') = (reverses_id IS NOT NULL)", name="reversal_links_original"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: The org whose books this is in; its community's chain records it.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    chain_id: Mapped[int] = mapped_column(ForeignKey("chain_head.org_id"), nullable=False)
    #: Position in the chain, 1, 2, 3, … with no gaps.
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(ForeignKey("transaction_kind.code"), nullable=False)
    #: The day the points belong to, in the org's time zone.
    business_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    #: Chosen by the caller; unique per org and caller, so a retry finds the first result.
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    #: SHA-256 of the request's canonical content; the same key with other content is refused.
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The recorded service this transaction scores, when it scores one.
    activity_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    #: Verified service minutes this transaction records (negative on a reversal).
    service_minutes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    #: The participant account whose service (minutes, activity count) this transaction records.
    subject_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), nullable=True, index=True)
    #: The rule-set version that produced the amounts, when rules produced them.
    rule_set_version_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: How the amounts were arrived at, step by step (JSON; integers and strings only).
    breakdown: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    memo: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)

    postings: Mapped[list[Posting]] = relationship(
        back_populates="transaction", order_by="Posting.account_id"
    )
    org: Mapped[OrgNode] = relationship()
    recorded_by: Mapped[AppUser] = relationship()
    reverses: Mapped[Transaction | None] = relationship(remote_side=[id])


class Posting(db.Model):
    """One leg of a transaction: an amount on one account, with the balance it left."""

    __tablename__ = "posting"
    __table_args__ = (
        UniqueConstraint("transaction_id", "account_id"),
        UniqueConstraint("account_id", "account_version"),
        CheckConstraint(
            f"amount != 0 AND amount BETWEEN -{MAX_POSTING_AMOUNT} AND {MAX_POSTING_AMOUNT}",
            name="amount_nonzero_bounded",
        ),
        CheckConstraint("account_version >= 1", name="account_version_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id"), nullable=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    balance_after: Mapped[int] = mapped_column(BigInteger, nullable=False)
    account_version: Mapped[int] = mapped_column(BigInteger, nullable=False)

    transaction: Mapped[Transaction] = relationship(back_populates="postings")
    account: Mapped[Account] = relationship()


class PeriodKind(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class PeriodTotal(db.Model):
    """A participant account's totals for one day, month or year (in the org's time zone).

    Changed only by the ledger write path, in the same database transaction as the postings;
    ``ledger verify`` recomputes every row from the postings. A ranking reads one row per
    person for a year or a month, and never the ledger itself.
    """

    __tablename__ = "period_total"
    __table_args__ = (
        CheckConstraint(_in("period", PeriodKind), name="period"),
        # The org is the account's own: the pair refers to the account, so the copy cannot differ.
        ForeignKeyConstraint(["account_id", "org_id"], ["account.id", "account.org_id"]),
        # A ranking reads one period's rows of an org's subtree: one range of this index per org.
        Index("ix_period_total_period_org_id_starts_on", "period", "org_id", "starts_on", "account_id"),
    )

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: First day of the period: the day itself, or the first of the month.
    starts_on: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    #: The account's org (a participant's community or grid), so a ranking finds an org's
    #: totals by index instead of joining every account and participant to the org tree.
    org_id: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Earned, adjusted, carried over and penalised points, net of reversals.
    points_earned: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_spent: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_expired: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    service_minutes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    activity_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class StandingsVersion(db.Model):
    """A token that changes whenever anything a ranking reads of one org's people changes.

    Triggers the migrations create set a new random token, on SQLite and PostgreSQL, whatever
    client writes: a period total of the org's accounts written or removed, or a participant
    with an account in the org renamed, opting out or in, or joining or leaving a category.
    A process keeps a ranking computed from totals for as long as the tokens of its org's
    subtree stand still (``ledger.rankings``). A random token, unlike a counter, is not handed
    out again after a rollback or a restored backup (PostgreSQL draws 52 random bits, SQLite 64).
    """

    __tablename__ = "standings_version"

    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger, nullable=False)


class RuleSetStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class RuleSetVersion(db.Model):
    """One version of an org's scoring rules. A published version is never changed again."""

    __tablename__ = "rule_set_version"
    __table_args__ = (
        UniqueConstraint("org_id", "version"),
        CheckConstraint(_in("status", RuleSetStatus), name="status"),
        CheckConstraint("(status = 'published') = (published_at IS NOT NULL)", name="published_has_time"),
        CheckConstraint("effective_to IS NULL OR effective_to >= effective_from", name="effective_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The node the rules apply to, and everything under it that has none of its own.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    #: 1, 2, 3, … per org.
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The validated rule document in its canonical form (see ledger.ruleset_schema). Loaded
    #: only when read: ledger.rules.rules_of parses each version once per process, and every
    #: write and balance looks up the version in force.
    document: Mapped[dict] = mapped_column(JSON, nullable=False, deferred=True)
    #: SHA-256 of the canonical document: what a breakdown's rule version stands for.
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    effective_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    effective_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    org: Mapped[OrgNode] = relationship()


class ActivitySource(StrEnum):
    #: Recorded by staff for one participant.
    STAFF = "staff"
    #: One line of an event's sign-in sheet.
    EVENT = "event"
    #: Reported by the participant; counts only once a staff member approves it.
    SELF_REPORT = "self_report"


class ServiceEvent(db.Model):
    """An event recorded at once from its sign-in sheet: one activity per person who came."""

    __tablename__ = "service_event"
    __table_args__ = (
        UniqueConstraint("org_id", "recorded_by_id", "idempotency_key"),
        CheckConstraint("ended_at > started_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    activity_type: Mapped[str] = mapped_column(String(40), nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)


class Activity(db.Model):
    """A fact of service: who served, what kind, where, when, for how long, recorded by whom.

    Never changed: a correction is a new activity that names the one it replaces.
    """

    __tablename__ = "activity"
    __table_args__ = (
        UniqueConstraint("org_id", "recorded_by_id", "idempotency_key"),
        CheckConstraint("ended_at > started_at", name="ends_after_start"),
        CheckConstraint("travel_minutes >= 0", name="travel_not_negative"),
        CheckConstraint("quantity IS NULL OR quantity > 0", name="quantity_positive"),
        CheckConstraint(_in("source", ActivitySource), name="source"),
        CheckConstraint("(corrects_id IS NULL) = (correction_reason IS NULL)", name="correction_has_reason"),
        Index("ix_activity_participant_started", "participant_id", "started_at"),
        # A history import looks for its references by user, in every org (ledger.bulk._already_imported).
        Index("ix_activity_recorded_by_id_idempotency_key", "recorded_by_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: Where the service happened: a community or a grid.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), nullable=False)
    #: A code of the rule set's activity types.
    activity_type: Mapped[str] = mapped_column(String(40), nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    travel_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: Persons sent, yuan donated: for activity types counted per quantity.
    quantity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Tags such as "emergency" that rules may multiply on.
    tags: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("service_event.id"), nullable=True, index=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The activity this one replaces, and why.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"), nullable=True, unique=True)
    correction_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

    participant: Mapped[Participant] = relationship()
    org: Mapped[OrgNode] = relationship()
    review: Mapped[ActivityReview | None] = relationship(back_populates="activity")


class ActivityReview(db.Model):
    """A staff member's decision on a self-reported activity; made once, never changed."""

    __tablename__ = "activity_review"
    __table_args__ = (CheckConstraint("approved OR reason IS NOT NULL", name="rejection_has_reason"),)

    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"), primary_key=True)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reviewed_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    reviewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    activity: Mapped[Activity] = relationship(back_populates="review")


class RewardKind(StrEnum):
    #: Goods on the reward shelf (爱心超市).
    GOODS = "goods"
    #: A service, such as a haircut or a health check.
    SERVICE = "service"
    #: Priority for a community service (welfare linkage), granted rather than handed over.
    PRIORITY = "priority"


class LimitPeriod(StrEnum):
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


class Reward(db.Model):
    """Something points can buy on an org's reward shelf, with its price, stock and limits."""

    __tablename__ = "reward"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        CheckConstraint(_in("kind", RewardKind), name="kind"),
        CheckConstraint("price_points > 0", name="price_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("per_person_limit IS NULL OR per_person_limit > 0", name="limit_positive"),
        CheckConstraint(_in("limit_period", LimitPeriod), name="limit_period"),
        CheckConstraint("min_star_level BETWEEN 0 AND 10", name="min_star_level"),
        CheckConstraint("active_to IS NULL OR active_to >= active_from", name="active_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The org whose shelf holds it; redemptions are in this org's books.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    price_points: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Units left; ``None`` for no limit. Changed only with a stock movement.
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: What one unit is worth in yuan, for the liability view; ``None`` when unknown.
    unit_value_yuan: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Units one person may redeem per ``limit_period``; ``None`` for no limit.
    per_person_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    limit_period: Mapped[str] = mapped_column(String(8), nullable=False, default=LimitPeriod.EVER)
    min_star_level: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    active_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=utc_now)

    org: Mapped[OrgNode] = relationship()


class StockReason(StrEnum):
    INITIAL = "initial"
    RESTOCK = "restock"
    #: Given by a co-building unit, which earns unit points for it.
    DONATION = "donation"
    REDEMPTION = "redemption"
    CANCELLATION = "cancellation"


class StockMovement(db.Model):
    """One change of a reward's stock; the stock always equals the sum of its movements."""

    __tablename__ = "stock_movement"
    __table_args__ = (
        CheckConstraint("change != 0", name="change_nonzero"),
        CheckConstraint(_in("reason", StockReason), name="reason"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("reward.id"), nullable=False, index=True)
    change: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemption.id"), nullable=True)
    #: The donating co-building unit, for a donation.
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), nullable=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class RedemptionStatus(StrEnum):
    REQUESTED = "requested"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class Redemption(db.Model):
    """Points spent on a reward: requested, then fulfilled (handed over) or cancelled (refunded)."""

    __tablename__ = "redemption"
    __table_args__ = (
        UniqueConstraint("org_id", "requested_by_id", "idempotency_key"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint(_in("status", RedemptionStatus), name="status"),
        CheckConstraint("(status = 'fulfilled') = (fulfilled_at IS NOT NULL)", name="fulfilled_has_time"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_has_time"),
        Index("ix_redemption_participant_reward", "participant_id", "reward_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    reward_id: Mapped[int] = mapped_column(ForeignKey("reward.id"), nullable=False)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The redeem transaction that spent the points.
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id"), nullable=False, unique=True)
    #: The day it counts against the person's limit, in the shelf org's time zone.
    requested_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    fulfilled_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    fulfilled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

    reward: Mapped[Reward] = relationship()
    participant: Mapped[Participant] = relationship()


class TitleAward(db.Model):
    """An annual title granted to a participant (评优), from the eligibility the rules gave."""

    __tablename__ = "title_award"
    __table_args__ = (UniqueConstraint("participant_id", "title_code", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The org that granted it (a street or a community).
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), nullable=False)
    title_code: Mapped[str] = mapped_column(String(40), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    rule_set_version_id: Mapped[int] = mapped_column(ForeignKey("rule_set_version.id"), nullable=False)
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


#: Whose needs an order serves, as shown publicly instead of the beneficiary's name.
BENEFICIARY_GROUPS = ("elderly_living_alone", "left_behind_child", "family_in_difficulty", "disabled", "community", "other")


class ServiceOrder(db.Model):
    """A need posted for claimants (需求 / 微心愿 / 共建项目). Never changed: its state is its history."""

    __tablename__ = "service_order"
    __table_args__ = (
        UniqueConstraint("org_id", "created_by_id", "idempotency_key"),
        CheckConstraint(_in("kind", OrderKind), name="kind"),
        CheckConstraint(_in("claimant_kind", ClaimantKind), name="claimant_kind"),
        CheckConstraint(_in("beneficiary_group", BENEFICIARY_GROUPS), name="beneficiary_group"),
        CheckConstraint("capacity BETWEEN 1 AND 100", name="capacity"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: The community or grid whose need it is.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    #: Public: whose need it is, as a group.
    beneficiary_group: Mapped[str] = mapped_column(String(24), nullable=False)
    #: Private: shown to staff and to the claimant once they hold a claim, never in public lists.
    beneficiary_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    beneficiary_contact: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: The rule set's activity type that confirmation scores.
    activity_type: Mapped[str] = mapped_column(String(40), nullable=False)
    claimant_kind: Mapped[str] = mapped_column(String(8), nullable=False)
    #: How many claims it takes.
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)

    org: Mapped[OrgNode] = relationship()


class OrderClaim(db.Model):
    """Who took a place on an order: a person, a unit, or a team."""

    __tablename__ = "order_claim"
    __table_args__ = (
        CheckConstraint("(participant_id IS NULL) != (team_id IS NULL)", name="one_claimant"),
        Index("ix_order_claim_participant_id", "participant_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("service_order.id"), nullable=False, index=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), nullable=True)
    claimed_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class OrderEvent(db.Model):
    """One thing that happened to an order or one of its claims; the order's state is their sum."""

    __tablename__ = "order_event"
    __table_args__ = (
        CheckConstraint(_in("happening", Happening), name="happening"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("happening != 'rejected' OR note IS NOT NULL", name="rejection_has_reason"),
        # What happens once, happens once, whoever asks and however often.
        Index(
            "uq_order_event_once_per_order",
            "order_id",
            "happening",
            unique=True,
            sqlite_where=text(_in("happening", ONCE_PER_ORDER)),
            postgresql_where=text(_in("happening", ONCE_PER_ORDER)),
        ),
        Index(
            "uq_order_event_once_per_claim",
            "claim_id",
            "happening",
            unique=True,
            sqlite_where=text(_in("happening", ONCE_PER_CLAIM)),
            postgresql_where=text(_in("happening", ONCE_PER_CLAIM)),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("service_order.id"), nullable=False, index=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("order_claim.id"), nullable=True)
    happening: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    #: What the claimant delivered, why staff rejected it, why it was cancelled.
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: The beneficiary's rating on confirmation, 1–5.
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: For a delivery: when the service was done, and for a team, who served.
    served_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    served_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    served_by: Mapped[list | None] = mapped_column(JSON, nullable=True)
    #: The ledger transaction a confirmation or a penalty posted, when it posted one.
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transaction.id"), nullable=True)


class EvaluationFreeze(db.Model):
    """An org's annual evaluation (年度考评) for a year, frozen at its deadline by a street admin.

    Its rows keep every cell as it was exported, so the frozen export is reproduced byte for
    byte; later corrections to the year show as changes since the freeze, never in it.
    """

    __tablename__ = "evaluation_freeze"
    __table_args__ = (UniqueConstraint("org_id", "year"), CheckConstraint("year BETWEEN 2000 AND 2100", name="year"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The rule-set version whose star levels and titles the evaluation applied.
    rule_set_version_id: Mapped[int] = mapped_column(ForeignKey("rule_set_version.id"), nullable=False)
    #: Each sheet's code, names and columns, in order: what the cells of the frozen rows mean.
    sheets: Mapped[list] = mapped_column(JSON, nullable=False)
    frozen_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    frozen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    org: Mapped[OrgNode] = relationship()


class EvaluationFreezeRow(db.Model):
    """One participant's row of one sheet of a frozen evaluation, cell by cell as exported."""

    __tablename__ = "evaluation_freeze_row"
    __table_args__ = (UniqueConstraint("freeze_id", "sheet", "participant_id"),)

    freeze_id: Mapped[int] = mapped_column(ForeignKey("evaluation_freeze.id"), primary_key=True)
    #: The code of the sheet: participants, party_members or units.
    sheet: Mapped[str] = mapped_column(String(24), primary_key=True)
    #: Position in the sheet, from 1.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), nullable=False)
    #: The cells, in the order of the sheet's columns (JSON: integers, text, booleans, nulls, lists).
    cells: Mapped[list] = mapped_column(JSON, nullable=False)


class EvaluationFreezeRuleSet(db.Model):
    """A rule-set version that scored entries of the frozen year in the frozen org."""

    __tablename__ = "evaluation_freeze_rule_set"

    freeze_id: Mapped[int] = mapped_column(ForeignKey("evaluation_freeze.id"), primary_key=True)
    rule_set_version_id: Mapped[int] = mapped_column(ForeignKey("rule_set_version.id"), primary_key=True)


class PartyMemberRemark(db.Model):
    """The home community's remark on a party member's year, for the employer's feedback; the latest counts."""

    __tablename__ = "party_member_remark"
    __table_args__ = (
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year"),
        Index("ix_party_member_remark_participant_year", "participant_id", "year"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("party_member.participant_id"), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    remark: Mapped[str] = mapped_column(String(500), nullable=False)
    written_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class ServiceCertificate(db.Model):
    """A certificate of a person's service over a period (志愿服务记录证明); never changed once issued.

    It keeps what it certified: the totals, and a digest of the activities and the transactions
    that scored them, so that a check recomputes both from the ledger and says whether a later
    reversal or late entry has made the certificate stale.
    """

    __tablename__ = "service_certificate"
    __table_args__ = (
        UniqueConstraint("org_id", "issued_by_id", "idempotency_key"),
        CheckConstraint("period_to >= period_from", name="period_runs_forward"),
        CheckConstraint("service_minutes > 0 AND activity_count > 0", name="certifies_service"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    #: The certificate number (证明编号) printed on it and shown by a check: issuer's code, year, serial.
    number: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    #: The verification code (查验码): 80 random bits, so that holding it is what lets one check.
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), nullable=False, index=True)
    #: The issuing org: the person's community.
    org_id: Mapped[int] = mapped_column(ForeignKey("org_node.id"), nullable=False)
    #: First and last day certified, in the issuing org's time zone.
    period_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    period_to: Mapped[dt.date] = mapped_column(Date, nullable=False)
    service_minutes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    activity_count: Mapped[int] = mapped_column(Integer, nullable=False)
    #: SHA-256 of the certified (activity, scoring transaction, minutes) triples.
    certified_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The date printed on it, in the issuing org's time zone.
    issued_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)

    participant: Mapped[Participant] = relationship()
    org: Mapped[OrgNode] = relationship()


#: Tables the database refuses to UPDATE, DELETE or TRUNCATE.
APPEND_ONLY_MODELS = (
    Transaction,
    Posting,
    Activity,
    ActivityReview,
    ServiceEvent,
    StockMovement,
    TitleAward,
    ServiceOrder,
    OrderClaim,
    OrderEvent,
    EvaluationFreeze,
    EvaluationFreezeRow,
    EvaluationFreezeRuleSet,
    PartyMemberRemark,
    ServiceCertificate,
)
APPEND_ONLY_TABLES = tuple(model.__tablename__ for model in APPEND_ONLY_MODELS)

__all__ = [
    "Account",
    "Activity",
    "ApiToken",
    "ActivityReview",
    "ActivitySource",
    "AccountKind",
    "AppUser",
    "ChainHead",
    "CoBuildingUnit",
    "EmployerUnit",
    "EvaluationFreeze",
    "EvaluationFreezeRow",
    "EvaluationFreezeRuleSet",
    "IdempotencyRecord",
    "OrgKind",
    "OrgNode",
    "Participant",
    "ParticipantKind",
    "LimitPeriod",
    "PeriodKind",
    "PeriodTotal",
    "Redemption",
    "RedemptionStatus",
    "Reward",
    "Role",
    "RoleAssignment",
    "RewardKind",
    "StockMovement",
    "StockReason",
    "TitleAward",
    "PartyMember",
    "PartyMemberRemark",
    "Person",
    "OrderClaim",
    "OrderEvent",
    "Posting",
    "RuleSetStatus",
    "RuleSetVersion",
    "ServiceCertificate",
    "ServiceEvent",
    "ServiceOrder",
    "Team",
    "TeamMember",
    "Transaction",
    "TransactionKind",
    "TransactionKindCode",
    "UnitKind",
    "Volunteer",
]
