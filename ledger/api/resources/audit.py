"""Audit: proving the ledger is what its writes made it, and running expiry.

Verification covers the whole deployment, not the caller's subtree: the hash chains, the
zero sum and the balances are facts of the whole ledger, and a partial proof would prove
nothing. Whoever holds ``verify`` anywhere (auditors, street and system admins) may run it.
It writes nothing, so ``POST /verify`` takes no Idempotency-Key; it is a POST only because
it carries a checkpoint. A checkpoint from ``GET /checkpoint``, kept outside the database,
lets a later verification find a deleted or rewritten tail.
"""

from __future__ import annotations

import dataclasses

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write, takes_no_idempotency_key
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope
from ledger.api.resources.participants import MAX_ID, Flag
from ledger.api.schemas import StrictSchema, Whole, text
from ledger.chain import MAX_CANONICAL_INTEGER
from ledger.db import db
from ledger.errors import Forbidden, InvalidInput
from ledger.expiry import expire_points
from ledger.models import OrgNode, utc_now
from ledger.orgs import local_date
from ledger.replay import replay_ledger
from ledger.verify import CHECKPOINT_FORMAT, take_checkpoint, verify_ledger

audit = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/v1",
    description="Verifying the ledger against itself and a checkpoint; expiry runs.",
)


def require_verify() -> None:
    """Refuse whoever holds ``verify`` nowhere: verification is of the whole ledger, so anywhere will do."""
    if current_principal().scopes(Action.VERIFY) == []:
        raise Forbidden("none of your roles allows verify")


# Schemas -----------------------------------------------------------------------------------


class CheckpointChain(StrictSchema):
    chain_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    org_code = text(maximum=64, required=True)
    seq = Whole(minimum=0, maximum=MAX_CANONICAL_INTEGER, required=True)
    hash = fields.String(required=True, validate=validate.Regexp(r"[0-9a-f]{64}", error="must be 64 hexadecimal digits"))
    recorded_at = text(maximum=40, allow_none=True, load_default=None)


class Checkpoint(StrictSchema):
    format = fields.String(required=True, validate=validate.Equal(CHECKPOINT_FORMAT))
    taken_at = text(maximum=40, required=True)
    chains = fields.List(fields.Nested(CheckpointChain), required=True)


class VerifyRequest(StrictSchema):
    checkpoint = fields.Nested(
        Checkpoint,
        allow_none=True,
        load_default=None,
        metadata={"description": "A checkpoint from GET /checkpoint: also find a deleted or rewritten tail since."},
    )
    replay = Flag(load_default=False, metadata={"description": "Also recompute every scored entry under its rule version."})


class VerifyProblem(StrictSchema):
    check = fields.String(metadata={"description": "hash, chain_link, zero_sum, cached_balance, period_total, replay, …"})
    message = fields.String()
    chain = fields.Integer(attribute="chain_id", allow_none=True)
    seq = fields.Integer(allow_none=True)
    transaction = fields.Integer(attribute="transaction_id", allow_none=True)
    account = fields.Integer(attribute="account_id", allow_none=True)


class VerifyReportSchema(StrictSchema):
    ok = fields.Boolean()
    chains = fields.Integer()
    transactions = fields.Integer()
    postings = fields.Integer()
    accounts = fields.Integer()
    checkpoint_chains = fields.Integer()
    replayed_entries = fields.Integer(allow_none=True, metadata={"description": "Null unless replay was asked for."})
    problems = fields.List(fields.Nested(VerifyProblem))
    suppressed = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "Further problems only counted, by check."}
    )


class ExpiryRunRequest(StrictSchema):
    as_of = fields.Date(required=True, metadata={"description": "The day whose due points expire; not after today."})
    org_id = Whole(minimum=1, maximum=MAX_ID, required=True, metadata={"description": "Whose subtree's participants."})


class ExpiryRunSchema(StrictSchema):
    org_id = fields.Integer()
    as_of = fields.Date()
    accounts_examined = fields.Integer()
    accounts_expired = fields.Integer()
    points_expired = fields.Integer()


# Routes ------------------------------------------------------------------------------------


@audit.route("/verify")
class Verify(MethodView):
    @audit.arguments(VerifyRequest)
    @audit.response(200, VerifyReportSchema)
    @takes_no_idempotency_key
    def post(self, body):
        """Check every chain, zero sum, balance, version, period total and stock of the whole ledger.

        Writes nothing, so it takes no Idempotency-Key. ``ok`` is false when any problem is found.
        """
        require_verify()
        report = verify_ledger(db.session, checkpoint=body["checkpoint"])
        replayed = replay_ledger(db.session) if body["replay"] else None
        for problem in replayed.problems if replayed else ():
            report.add(problem)
        return {
            **dataclasses.asdict(report),
            "ok": report.ok,
            "replayed_entries": None if replayed is None else replayed.entries,
        }


@audit.route("/checkpoint")
class CurrentCheckpoint(MethodView):
    @audit.response(200, Checkpoint)
    def get(self):
        """Give the head of every chain, to keep outside the database for a later verification."""
        require_verify()
        return take_checkpoint(db.session, now=utc_now())


@audit.route("/expiry-runs")
class ExpiryRuns(MethodView):
    @audit.arguments(ExpiryRunRequest)
    @audit.response(201, ExpiryRunSchema)
    def post(self, body):
        """Expire the points due by a day in an org's subtree, first earned first expired (street admins).

        Running it again for the same day expires nothing twice. The whole subtree is one
        database transaction: for a district, prefer ``ledger expire``, which commits batch by batch.
        """

        def run(principal, _key):
            org = object_in_scope(OrgNode, body["org_id"], Action.RUN_EXPIRY, field="org_id")
            if body["as_of"] > local_date(utc_now(), org):
                raise InvalidInput("must not be after today in the org's time zone: points expire when due", field="as_of")
            done = expire_points(db.session, actor=principal.user, as_of=body["as_of"], org=org)
            return {"org_id": org.id, **dataclasses.asdict(done)}

        return idempotent_write(run, ExpiryRunSchema().dump)
