"""The ledger: transactions and their reversal; a participant's balance, history, totals and expiries.

Every entry explains itself: a transaction or a history line carries its breakdown and the
``explanation`` lines rendered from it in the request's language. Staff read the entries of
their subtree; a volunteer reads only the entries that move their own account or record their
own service, and is told that anyone else's are not found.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from ledger.activities import NotAllowed
from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action, Principal
from ledger.api.problems import language
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.participants import MAX_ID, in_subtrees, participant_in_scope
from ledger.api.schemas import MAX_PAGE_SIZE, PageInfo, PageQuery, QueryWhole, StrictSchema, text
from ledger.db import db
from ledger.errors import NotFound
from ledger.expiry import expiring_soon
from ledger.models import Account, OrgNode, PeriodKind, PeriodTotal, Posting, Transaction, TransactionKindCode, utc_now
from ledger.orgs import local_date
from ledger.rankings import balance_summary, home_community
from ledger.rewards import explain_entry
from ledger.transactions import MAX_MEMO_LENGTH, concerns_account, participant_history, reverse_transaction

entries = Blueprint(
    "ledger",
    __name__,
    url_prefix="/api/v1",
    description="The ledger: transactions and reversals; a participant's balance, history, period totals and expiries.",
)

#: The largest transaction id (a BIGINT on PostgreSQL).
MAX_ENTRY_ID = 2**63 - 1
#: Path parts for ids, bounded so that an id no column can hold is "not found", not a database error.
PARTICIPANT = f"<int(min=1, max={MAX_ID}):participant_id>"
ENTRY = f"<int(min=1, max={MAX_ENTRY_ID}):transaction_id>"


# Who may read which entries ----------------------------------------------------------------


def reading_scopes(principal: Principal, action: Action) -> tuple[list[str] | None, list[str]]:
    """Split the caller's subtrees into those where ``action`` reaches everyone's records and those where only their own.

    The policy decides: in each subtree it is asked about a record that is not the caller's
    own; where it says not found, the caller (a volunteer there) may read only their own.
    ``None`` for the first means everywhere.
    """
    paths = principal.scopes(action)
    if paths is None:
        return None, []
    everyone, own = [], []
    for org in db.session.scalars(select(OrgNode).where(OrgNode.path.in_(paths))):
        try:
            principal.authorize(action, org)
            everyone.append(org.path)
        except NotFound:
            own.append(org.path)
    return everyone, own


def own_account_id(principal: Principal) -> int | None:
    """Return the points account of the participant the caller signs in as, if they are one."""
    if principal.user.participant_id is None:
        return None
    return db.session.scalar(select(Account.id).where(Account.participant_id == principal.user.participant_id))


def concerns_own_account(principal: Principal, transaction: Transaction) -> bool:
    """Tell whether ``transaction`` moves the caller's own points account or records their own service."""
    mine = own_account_id(principal)
    return mine is not None and (
        transaction.subject_account_id == mine or any(posting.account_id == mine for posting in transaction.postings)
    )


def transaction_in_scope(transaction_id: int, action: Action) -> Transaction:
    """Return a transaction the caller may see and do ``action`` on; else not found, or forbidden.

    A transaction is the record of the participant whose account it moves or whose service it
    records: a volunteer sees it only when that is them. Whoever cannot see it is told it is
    not found, whatever they meant to do with it.
    """
    transaction = db.session.get(Transaction, transaction_id)
    if transaction is None:
        raise NotFound(f"transaction {transaction_id} does not exist", field="transaction_id")
    principal = current_principal()
    whose = principal.user.participant_id if concerns_own_account(principal, transaction) else None
    principal.authorize(Action.READ_LEDGER, transaction.org, participant_id=whose)
    if action is not Action.READ_LEDGER:
        principal.authorize(action, transaction.org)
    return transaction


def explain(transaction: Transaction) -> list[str]:
    """Return the lines that say why an entry is what it is, in the request's language."""
    return explain_entry(transaction.kind, transaction.breakdown, language())


def reversal_of(transaction: Transaction) -> int | None:
    """Return the id of the reversal that undid ``transaction``, so staff see at once that it was corrected."""
    return db.session.scalar(select(Transaction.id).where(Transaction.reverses_id == transaction.id))


# Schemas -----------------------------------------------------------------------------------


class PostingSchema(StrictSchema):
    account_id = fields.Integer()
    account_kind = fields.String(
        attribute="account.kind", metadata={"description": "participant, issuance, reward_shelf, …"}
    )
    participant_id = fields.Integer(attribute="account.participant_id", allow_none=True)
    amount = fields.Integer(metadata={"description": "Points: positive into the account, negative out of it."})
    balance_after = fields.Integer()
    account_version = fields.Integer(metadata={"description": "The account's posting count after this one."})


class TransactionSchema(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer(metadata={"description": "The org whose books the transaction is in."})
    kind = fields.String()
    business_date = fields.Date(metadata={"description": "The day the points belong to, in the org's time zone."})
    recorded_at = fields.DateTime()
    recorded_by = fields.String(attribute="recorded_by.username", metadata={"description": "Who wrote it."})
    memo = fields.String(allow_none=True)
    activity_id = fields.Integer(allow_none=True)
    rule_set_version_id = fields.Integer(allow_none=True)
    service_minutes = fields.Integer(metadata={"description": "Verified service it records (negative on a reversal)."})
    subject_account_id = fields.Integer(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)
    breakdown = fields.Dict(allow_none=True, metadata={"description": "How the amounts were arrived at, step by step."})
    explanation = fields.Function(explain, metadata={"description": "The breakdown as sentences."})
    postings = fields.List(fields.Nested(PostingSchema))
    chain_id = fields.Integer(metadata={"description": "The hash chain (a community's) the transaction is a link of."})
    seq = fields.Integer()
    prev_hash = fields.String()
    hash = fields.String()


class TransactionDetail(TransactionSchema):
    reversed_by_id = fields.Function(
        reversal_of, allow_none=True, metadata={"description": "The reversal that undid this transaction, if one did."}
    )


class TransactionPage(StrictSchema):
    items = fields.List(fields.Nested(TransactionSchema))
    page = fields.Nested(PageInfo)


class DateRangeQuery(PageQuery):
    """Business dates from ``from`` to ``to``, both included."""

    from_ = fields.Date(data_key="from", metadata={"description": "First day, YYYY-MM-DD."})
    to = fields.Date(metadata={"description": "Last day, YYYY-MM-DD."})

    @validates_schema
    def _from_before_to(self, data, **_kwargs):
        if "from_" in data and "to" in data and data["to"] < data["from_"]:
            raise ValidationError("must not be before from", field_name="to")


class TransactionQuery(DateRangeQuery):
    org_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "Only the books of this org's subtree."})
    participant_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "Only this participant's entries."})
    kind = fields.String(validate=validate.OneOf([kind.value for kind in TransactionKindCode]))


class Reversal(StrictSchema):
    reason = text(maximum=MAX_MEMO_LENGTH, required=True, metadata={"description": "Why it is undone; kept as its memo."})


class StarSummary(StrictSchema):
    level = fields.Integer()
    next_level = fields.Integer(allow_none=True)
    minutes_to_next = fields.Integer(allow_none=True)


class CommunityRank(StrictSchema):
    org_id = fields.Integer(metadata={"description": "The participant's community."})
    category = fields.String()
    period = fields.String(metadata={"description": "This year, in the community's time zone."})
    public = fields.Boolean(metadata={"description": "Ranked among those shown publicly (a volunteer's view)."})
    rank = fields.Integer(allow_none=True, metadata={"description": "Null with no points this year."})
    ranked = fields.Integer(metadata={"description": "How many are ranked."})


class BalanceSchema(StrictSchema):
    participant_id = fields.Integer()
    balance = fields.Integer(metadata={"description": "Points that can be spent now."})
    service_minutes = fields.Integer(metadata={"description": "Verified service to date, which the star level counts."})
    stars = fields.Nested(StarSummary)
    rank = fields.Nested(CommunityRank)


class HistoryQuery(StrictSchema):
    before_id = QueryWhole(
        minimum=1, maximum=MAX_ENTRY_ID, metadata={"description": "Only entries older than this transaction id."}
    )
    limit = QueryWhole(minimum=1, maximum=MAX_PAGE_SIZE, load_default=50)


class HistoryLineSchema(StrictSchema):
    transaction_id = fields.Integer(attribute="transaction.id")
    kind = fields.String(attribute="transaction.kind")
    business_date = fields.Date(attribute="transaction.business_date")
    recorded_at = fields.DateTime(attribute="transaction.recorded_at")
    memo = fields.String(attribute="transaction.memo", allow_none=True)
    amount = fields.Integer(metadata={"description": "Points the entry moved on this account (0: it earned none)."})
    balance_after = fields.Integer(allow_none=True)
    service_minutes = fields.Integer(attribute="transaction.service_minutes")
    activity_id = fields.Integer(attribute="transaction.activity_id", allow_none=True)
    reverses_id = fields.Integer(attribute="transaction.reverses_id", allow_none=True)
    breakdown = fields.Dict(attribute="transaction.breakdown", allow_none=True)
    explanation = fields.Function(lambda line: explain(line.transaction))


class HistoryPage(StrictSchema):
    items = fields.List(fields.Nested(HistoryLineSchema))
    next_before_id = fields.Integer(
        allow_none=True, metadata={"description": "Pass as before_id for the next page; null on the last one."}
    )


class PeriodTotalsQuery(DateRangeQuery):
    period = fields.String(load_default=PeriodKind.MONTH.value, validate=validate.OneOf([kind.value for kind in PeriodKind]))


class PeriodTotalSchema(StrictSchema):
    period = fields.String()
    starts_on = fields.Date()
    points_earned = fields.Integer()
    points_spent = fields.Integer()
    points_expired = fields.Integer()
    service_minutes = fields.Integer()
    activity_count = fields.Integer()


class PeriodTotalPage(StrictSchema):
    items = fields.List(fields.Nested(PeriodTotalSchema))
    page = fields.Nested(PageInfo)


class ExpiringPoints(StrictSchema):
    expires_on = fields.Date()
    points = fields.Integer()


class ExpiringSchema(StrictSchema):
    participant_id = fields.Integer()
    balance = fields.Integer()
    today = fields.Date(metadata={"description": "Today in the participant's time zone."})
    expiring = fields.List(fields.Nested(ExpiringPoints), metadata={"description": "Soonest first."})


# Transactions ------------------------------------------------------------------------------


@entries.route("/transactions")
class Transactions(MethodView):
    @entries.arguments(TransactionQuery, location="query")
    @entries.response(200, TransactionPage)
    def get(self, query):
        """List the transactions you may see, newest first (a volunteer: those of their own account)."""
        principal = current_principal()
        everyone, own = reading_scopes(principal, Action.READ_LEDGER)
        visible = in_subtrees(everyone)
        mine = own_account_id(principal)
        if own and mine is not None:
            visible = or_(visible, and_(in_subtrees(own), concerns_account(mine)))
        statement = (
            select(Transaction)
            .join(OrgNode, OrgNode.id == Transaction.org_id)
            .where(visible)
            .options(
                selectinload(Transaction.postings).selectinload(Posting.account),
                selectinload(Transaction.recorded_by),
            )
            .order_by(Transaction.id.desc())
        )
        if "org_id" in query:
            org = object_in_scope(OrgNode, query["org_id"], Action.READ_ORGS, field="org_id")
            statement = statement.where(OrgNode.path.startswith(org.path))
        if "participant_id" in query:
            participant = participant_in_scope(query["participant_id"], Action.READ_LEDGER, field="participant_id")
            statement = statement.where(concerns_account(participant.account.id))
        if "kind" in query:
            statement = statement.where(Transaction.kind == query["kind"])
        if "from_" in query:
            statement = statement.where(Transaction.business_date >= query["from_"])
        if "to" in query:
            statement = statement.where(Transaction.business_date <= query["to"])
        return page_of(statement, query)


@entries.route(f"/transactions/{ENTRY}")
class OneTransaction(MethodView):
    @entries.response(200, TransactionDetail)
    def get(self, transaction_id):
        """Show one transaction: its postings, its breakdown explained, and its link in the hash chain."""
        return transaction_in_scope(transaction_id, Action.READ_LEDGER)


@entries.route(f"/transactions/{ENTRY}/reversal")
class TransactionReversal(MethodView):
    @entries.arguments(Reversal)
    @entries.response(201, TransactionSchema)
    @entries.alt_response(403, description="Your roles do not correct here, or the entry is of your own account.")
    @entries.alt_response(409, description="Already reversed, or itself a reversal, or the points were already spent.")
    def post(self, body, transaction_id):
        """Undo a transaction with one that mirrors it and says why; then record the right entry anew."""

        def reverse(principal, key):
            original = transaction_in_scope(transaction_id, Action.CORRECT)
            if concerns_own_account(principal, original):
                # Reversing one's own spending or expiry would give oneself points: four eyes, as for corrections.
                raise NotAllowed(
                    "nobody reverses an entry of their own account; ask another staff member", field="transaction_id"
                )
            return reverse_transaction(
                db.session, actor=principal.user, transaction_id=original.id, idempotency_key=key, reason=body["reason"]
            ).transaction

        return idempotent_write(reverse, TransactionSchema().dump)


# A participant's account -------------------------------------------------------------------


@entries.route(f"/participants/{PARTICIPANT}/balance")
class Balance(MethodView):
    @entries.response(200, BalanceSchema)
    def get(self, participant_id):
        """Show a participant's points, service time, star level and rank in their community this year.

        One call for what a volunteer's phone shows first; it reads the account row and the year
        totals of the person and of their community, never the ledger itself.
        """
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        community = home_community(db.session, participant)
        summary = balance_summary(
            db.session,
            participant=participant,
            community=community,
            today=local_date(utc_now(), participant.org),
            public=not current_principal().may(Action.READ_FULL_RANKINGS, community),
        )
        return {
            "participant_id": participant.id,
            "balance": summary.balance,
            "service_minutes": summary.stars.service_minutes,
            "stars": summary.stars,
            "rank": {
                "org_id": community.id,
                "category": summary.category,
                "period": summary.year.label,
                "public": summary.public,
                "rank": summary.rank,
                "ranked": summary.ranked,
            },
        }


@entries.route(f"/participants/{PARTICIPANT}/history")
class History(MethodView):
    @entries.arguments(HistoryQuery, location="query")
    @entries.response(200, HistoryPage)
    def get(self, query, participant_id):
        """List a participant's entries, newest first, each with why it earned what it did.

        Pages are keyed by transaction id: pass the last page's ``next_before_id`` as
        ``before_id``; entries written meanwhile never shift what the next page holds.
        """
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        lines = participant_history(
            db.session, participant.account.id, before_id=query.get("before_id"), limit=query["limit"]
        )
        last_page = len(lines) < query["limit"]
        return {"items": lines, "next_before_id": None if last_page else lines[-1].transaction.id}


@entries.route(f"/participants/{PARTICIPANT}/period-totals")
class PeriodTotals(MethodView):
    @entries.arguments(PeriodTotalsQuery, location="query")
    @entries.response(200, PeriodTotalPage)
    def get(self, query, participant_id):
        """List a participant's day, month or year totals whose period starts between ``from`` and ``to``."""
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        statement = (
            select(PeriodTotal)
            .where(PeriodTotal.account_id == participant.account.id, PeriodTotal.period == query["period"])
            .order_by(PeriodTotal.starts_on)
        )
        if "from_" in query:
            statement = statement.where(PeriodTotal.starts_on >= query["from_"])
        if "to" in query:
            statement = statement.where(PeriodTotal.starts_on <= query["to"])
        return page_of(statement, query)


@entries.route(f"/participants/{PARTICIPANT}/expiring")
class Expiring(MethodView):
    @entries.response(200, ExpiringSchema)
    def get(self, participant_id):
        """Say which of a participant's points expire next and when, under the rules in force today."""
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        today = local_date(utc_now(), participant.org)
        account = participant.account
        return {
            "participant_id": participant.id,
            "balance": account.balance,
            "today": today,
            "expiring": [
                {"expires_on": day, "points": points} for day, points in expiring_soon(db.session, account.id, today=today)
            ],
        }
