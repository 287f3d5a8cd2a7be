"""The annual evaluation: downloads, the freeze, the changes since, the employers' feedback, remarks.

Downloads are GETs that answer with the file itself: an XLSX workbook (written in constant
memory to a temporary file, then sent) or a CSV (streamed a few hundred rows at a time, UTF-8
with a BOM), headers in Chinese or English (``language``, else the request's
Accept-Language). An org's evaluation of a year comes as frozen once it is, unless
``live=true`` asks for it afresh. Staff, street admins and auditors read and download within
their subtree; only a street admin freezes.
"""

from __future__ import annotations

import itertools
import tempfile

from typing import Iterator

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ledger.annual import (
    changes_since_freeze,
    employer_feedback,
    evaluation,
    feedback_tables,
    find_freeze,
    freeze_evaluation,
    scoring_versions,
    tables,
    write_remark,
)
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.problems import language as request_language
from ledger.api.resources.common import object_in_scope
from ledger.api.resources.participants import MAX_ID, participant_in_scope
from ledger.api.schemas import QueryWhole, StrictSchema, Whole, text
from ledger.db import db
from ledger.errors import InvalidInput
from ledger.evaluation import LANGUAGES
from ledger.exports import MEDIA_TYPES, Format, csv_chunks, write
from ledger.models import OrgNode, utc_now
from ledger.orgs import local_date

evaluations = Blueprint(
    "evaluation",
    __name__,
    url_prefix="/api/v1",
    description="The annual evaluation (年度考评): downloads, the freeze, changes since it, the employers' feedback.",
)

ORG = f"<int(min=1, max={MAX_ID}):org_id>"
YEAR = "<int(min=2000, max=2100):year>"
PARTICIPANT = f"<int(min=1, max={MAX_ID}):participant_id>"
SHEETS = ["participants", "party_members", "units"]
#: Bytes of a workbook sent at a time.
CHUNK_BYTES = 64 * 1024
#: How the two file formats are documented as one response.
FILE_CONTENT = {
    MEDIA_TYPES[Format.XLSX]: {"schema": {"type": "string", "format": "binary"}},
    MEDIA_TYPES[Format.CSV].split(";")[0]: {"schema": {"type": "string"}},
}
FILE_RESPONSE = {"responses": {"200": {"description": "The file, as an attachment.", "content": FILE_CONTENT}}}


# Schemas -----------------------------------------------------------------------------------


class DownloadQuery(StrictSchema):
    format = fields.String(load_default=Format.XLSX.value, validate=validate.OneOf([f.value for f in Format]))
    language = fields.String(
        validate=validate.OneOf(LANGUAGES), metadata={"description": "zh or en (default: from Accept-Language)."}
    )


class EvaluationQuery(DownloadQuery):
    sheet = fields.String(
        validate=validate.OneOf(SHEETS),
        metadata={"description": "Only this sheet; a CSV holds one sheet, participants unless told."},
    )
    live = fields.Boolean(load_default=False, metadata={"description": "Compute it afresh even when the year is frozen."})


class FeedbackQuery(DownloadQuery):
    employer_unit_id = QueryWhole(
        minimum=1, maximum=MAX_ID, metadata={"description": "Only this employer; required for CSV (one file per employer)."}
    )


class SheetCount(StrictSchema):
    code = fields.String()
    title = fields.String()
    rows = fields.Integer()


class FreezeSchema(StrictSchema):
    org_id = fields.Integer()
    year = fields.Integer()
    frozen = fields.Boolean()
    frozen_at = fields.DateTime(allow_none=True)
    frozen_by_id = fields.Integer(allow_none=True)
    rule_set_version_id = fields.Integer(metadata={"description": "The version whose star levels and titles apply."})
    scoring_rule_set_version_ids = fields.List(
        fields.Integer(), metadata={"description": "The versions that scored the year's entries."}
    )
    sheets = fields.List(fields.Nested(SheetCount))


class ChangesQuery(StrictSchema):
    limit = QueryWhole(minimum=1, maximum=1000, load_default=200, metadata={"description": "At most this many of each list."})


class ChangeSchema(StrictSchema):
    sheet = fields.String()
    participant_id = fields.Integer()
    field = fields.String(metadata={"description": "A column code, or row for someone in only one of the two."})
    frozen = fields.Raw(allow_none=True)
    current = fields.Raw(allow_none=True)


class LateTransactionSchema(StrictSchema):
    transaction_id = fields.Integer()
    kind = fields.String()
    business_date = fields.Date()
    recorded_at = fields.DateTime()
    participant_id = fields.Integer()
    name = fields.String()
    points = fields.Integer()
    service_minutes = fields.Integer()
    memo = fields.String(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)


class ChangesSchema(StrictSchema):
    org_id = fields.Integer()
    year = fields.Integer()
    frozen_at = fields.DateTime()
    changes = fields.List(fields.Nested(ChangeSchema), metadata={"description": "Cells that differ now, by sheet and participant."})
    changes_total = fields.Integer()
    transactions = fields.List(fields.Nested(LateTransactionSchema), metadata={"description": "The year's, recorded after the freeze."})
    transactions_total = fields.Integer()


class RemarkRequest(StrictSchema):
    year = Whole(minimum=2000, maximum=2100, required=True)
    remark = text(maximum=500, required=True)


class RemarkSchema(StrictSchema):
    id = fields.Integer()
    participant_id = fields.Integer()
    year = fields.Integer()
    remark = fields.String()
    written_at = fields.DateTime()


# Views -------------------------------------------------------------------------------------


def _today(org: OrgNode):
    return local_date(utc_now(), org)


def _download(tables_to_write, format: str, name: str, created) -> Response:
    """Answer with ``tables_to_write`` as an XLSX attachment, or the first one streamed as CSV."""
    if format == Format.CSV:
        body = stream_with_context(csv_chunks(next(iter(tables_to_write))))
    else:
        spool = tempfile.TemporaryFile()
        write(tables_to_write, Format.XLSX, spool, created=created)
        spool.seek(0)
        body = _read_through(spool)
    response = Response(body, content_type=MEDIA_TYPES[Format(format)])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{format}"'
    return response


def _read_through(spool) -> Iterator[bytes]:
    """Yield a temporary file's bytes a chunk at a time, and close (so delete) it at the end."""
    with spool:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk


def _freeze_view(org: OrgNode, year: int, freeze) -> dict:
    result = evaluation(db.session, org=org, year=year, today=_today(org))
    return {
        "org_id": org.id,
        "year": year,
        "frozen": freeze is not None,
        "frozen_at": freeze.frozen_at if freeze else None,
        "frozen_by_id": freeze.frozen_by_id if freeze else None,
        "rule_set_version_id": result.version.id,
        "scoring_rule_set_version_ids": scoring_versions(db.session, org=org, year=year),
        "sheets": [
            {"code": sheet.spec.code, "title": getattr(sheet.spec.title, request_language()), "rows": sheet.count()}
            for sheet in result.sheets
        ],
    }


@evaluations.route(f"/orgs/{ORG}/evaluations/{YEAR}")
class EvaluationStatus(MethodView):
    @evaluations.response(200, FreezeSchema)
    def get(self, org_id, year):
        """Say whether an org's evaluation of a year is frozen, with which rules, and how many rows each sheet has."""
        org = object_in_scope(OrgNode, org_id, Action.EXPORT_EVALUATION)
        return _freeze_view(org, year, find_freeze(db.session, org=org, year=year))


@evaluations.route(f"/orgs/{ORG}/evaluations/{YEAR}/export")
class EvaluationExport(MethodView):
    @evaluations.arguments(EvaluationQuery, location="query")
    @evaluations.response(200, content_type=MEDIA_TYPES[Format.XLSX], description="The evaluation as a file.")
    @evaluations.doc(**FILE_RESPONSE)
    def get(self, query, org_id, year):
        """Download an org's annual evaluation of a year: one row per participant, party member and unit."""
        org = object_in_scope(OrgNode, org_id, Action.EXPORT_EVALUATION)
        result = evaluation(db.session, org=org, year=year, today=_today(org), live=query["live"])
        sheet = query.get("sheet") or ("participants" if query["format"] == Format.CSV else None)
        language = query.get("language") or request_language()
        name = f"evaluation-{org.code}-{year}" + ("-frozen" if result.freeze else "") + (f"-{sheet}" if sheet else "")
        created = result.freeze.frozen_at if result.freeze else utc_now()
        return _download(tables(result, language, sheet=sheet), query["format"], name, created)


@evaluations.route(f"/orgs/{ORG}/evaluations/{YEAR}/freeze")
class Freeze(MethodView):
    @evaluations.response(201, FreezeSchema)
    def post(self, org_id, year):
        """Freeze an org's evaluation of a year as it is now (a street admin's step; once per org and year)."""

        def freeze(principal, _key):
            org = object_in_scope(OrgNode, org_id, Action.FREEZE_EVALUATION)
            frozen = freeze_evaluation(db.session, actor=principal.user, org=org, year=year, now=utc_now())
            return _freeze_view(org, year, frozen)

        return idempotent_write(freeze, FreezeSchema().dump)


@evaluations.route(f"/orgs/{ORG}/evaluations/{YEAR}/changes")
class EvaluationChanges(MethodView):
    @evaluations.arguments(ChangesQuery, location="query")
    @evaluations.response(200, ChangesSchema)
    def get(self, query, org_id, year):
        """List what a fresh computation shows otherwise than the frozen evaluation, and the year's later transactions."""
        org = object_in_scope(OrgNode, org_id, Action.EXPORT_EVALUATION)
        found = changes_since_freeze(db.session, org=org, year=year, today=_today(org))
        changes, changes_total = _first(found.changes(), query["limit"])
        late, late_total = _first(found.transactions(), query["limit"])
        return {
            "org_id": org.id,
            "year": year,
            "frozen_at": found.freeze.frozen_at,
            "changes": changes,
            "changes_total": changes_total,
            "transactions": late,
            "transactions_total": late_total,
        }


def _first(items, limit: int) -> tuple[list, int]:
    """Return the first ``limit`` of an iterator's items and how many it has, holding no more than ``limit``."""
    first = list(itertools.islice(items, limit))
    return first, len(first) + sum(1 for _ in items)


@evaluations.route(f"/orgs/{ORG}/employer-feedback/{YEAR}/export")
class FeedbackExport(MethodView):
    @evaluations.arguments(FeedbackQuery, location="query")
    @evaluations.response(200, content_type=MEDIA_TYPES[Format.XLSX], description="The feedback as a file.")
    @evaluations.doc(**FILE_RESPONSE)
    def get(self, query, org_id, year):
        """Download the double-reporting feedback to employers: a sheet per employer, or one employer's CSV."""
        org = object_in_scope(OrgNode, org_id, Action.EXPORT_EVALUATION)
        employer_unit_id = query.get("employer_unit_id")
        if query["format"] == Format.CSV and employer_unit_id is None:
            raise InvalidInput("a CSV holds one employer: give its id", field="employer_unit_id")
        rules, feedbacks = employer_feedback(
            db.session, org=org, year=year, today=_today(org), employer_unit_id=employer_unit_id
        )
        language = query.get("language") or request_language()
        name = f"employer-feedback-{org.code}-{year}" + (f"-{employer_unit_id}" if employer_unit_id else "")
        return _download(feedback_tables(rules, feedbacks, language), query["format"], name, utc_now())


@evaluations.route(f"/participants/{PARTICIPANT}/remarks")
class Remarks(MethodView):
    @evaluations.arguments(RemarkRequest)
    @evaluations.response(201, RemarkSchema)
    def post(self, body, participant_id):
        """Write the home community's remark on a party member's year, for the employer's feedback."""

        def remark(principal, _key):
            participant = participant_in_scope(participant_id, Action.MANAGE_PARTICIPANTS, field="participant_id")
            return write_remark(
                db.session, actor=principal.user, participant_id=participant.id, year=body["year"], remark=body["remark"], now=utc_now()
            )

        return idempotent_write(remark, RemarkSchema().dump)
