"""Bulk import (批量导入): a volunteer roster or a sign-in sheet uploaded as CSV or XLSX.

``…/check`` reads and checks every row against the ledger and writes nothing; the import
itself writes the rows that pass every check, all in one database transaction, and reports the
others with their line and reason. Uploads are ``multipart/form-data`` with the file in the part
``file``, no larger than the app's body limit (``LEDGER_MAX_BODY_BYTES``; 413 past it). What a
row may be, and why one is refused, is :mod:`ledger.imports`'s to say; here a request is only
authorized: a roster needs the right to manage participants in the org, a sign-in sheet the
right to record service there.
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write, takes_no_idempotency_key
from ledger.api.policy import Action, Principal
from ledger.api.problems import LANGUAGES, language
from ledger.api.resources.common import object_in_scope
from ledger.api.resources.participants import PATH_ID
from ledger.api.schemas import StrictSchema
from ledger.db import db
from ledger.exports import MEDIA_TYPES
from ledger.import_rows import PROBLEM_LABELS, SHEETS, TEMPLATE_FORMATS, column_header, template
from ledger.imports import ImportReport, check_file, import_rows, rehearse
from ledger.models import OrgNode

imports = Blueprint(
    "imports",
    __name__,
    url_prefix="/api/v1",
    description="Bulk import (批量导入): volunteer rosters and sign-in sheets from CSV or XLSX, checked row by row.",
)

SHEET = f"<any({', '.join(SHEETS)}):sheet_name>"
ORG = f"<{PATH_ID}:org_id>"
#: The template, in either format, as an attachment.
TEMPLATE_RESPONSE = {
    "responses": {
        "200": {
            "description": "An empty sheet to fill in, as an attachment.",
            "content": {media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()},
        }
    }
}
#: What importing each sheet needs the right to do in the org.
ACTIONS = {"volunteers": Action.MANAGE_PARTICIPANTS, "activities": Action.RECORD_SERVICE}


class UploadedFile(StrictSchema):
    file = Upload(required=True, metadata={"description": "The roster or sign-in sheet: .xlsx, or .csv in UTF-8 or GB18030."})


class TemplateQuery(StrictSchema):
    format = fields.String(load_default="xlsx", validate=validate.OneOf(TEMPLATE_FORMATS))


class ProblemShown(StrictSchema):
    line = fields.Integer(metadata={"description": "The row's line as a spreadsheet numbers it (the header is line 1)."})
    kind = fields.String(
        metadata={"description": "bad_value, bad_date, unknown_person, overlapping_time, duplicate_row, out_of_scope, already_registered or refused."}
    )
    kind_label = fields.String(metadata={"description": "The kind in the request's language."})
    field = fields.String(allow_none=True, metadata={"description": "The column's field name; null for the row as a whole."})
    column = fields.String(allow_none=True, metadata={"description": "The column's name in the template."})
    message = fields.String()


class ReportShown(StrictSchema):
    sheet = fields.String()
    written = fields.Boolean(metadata={"description": "false for a check, which writes nothing."})
    rows = fields.Integer(metadata={"description": "Rows read, good and bad."})
    imported = fields.Integer(metadata={"description": "Rows written (in a check: that an import would write)."})
    already_imported = fields.Integer(metadata={"description": "Rows the ledger already held: importing again writes nothing."})
    bad_rows = fields.Integer()
    problems = fields.List(fields.Nested(ProblemShown))


def _import(principal: Principal, org_id: int, sheet_name: str, content: bytes) -> ImportReport:
    """Check the file and try its rows, as the caller, in an org where they may import this sheet."""
    org = object_in_scope(OrgNode, org_id, ACTIONS[sheet_name], field="org_id")
    sheet = SHEETS[sheet_name]
    return import_rows(
        db.session,
        actor=principal.user,
        org=org,
        checked=check_file(sheet, content, org),
        sheet=sheet,
        id_number_key=current_app.config["LEDGER_ID_NUMBER_KEY"],
    )


def _shown(report: ImportReport, *, written: bool) -> dict:
    in_language = LANGUAGES.index(language())
    sheet = SHEETS[report.sheet]
    return ReportShown().dump(
        {
            "sheet": report.sheet,
            "written": written,
            "rows": report.rows,
            "imported": report.imported,
            "already_imported": report.already_imported,
            "bad_rows": report.bad_rows,
            "problems": [
                {
                    "line": problem.line,
                    "kind": problem.kind.value,
                    "kind_label": PROBLEM_LABELS[problem.kind][in_language],
                    "field": problem.field,
                    "column": column_header(sheet, problem.field),
                    "message": problem.message,
                }
                for problem in report.problems
            ],
        }
    )


def _upload(status: int):
    """Parse an uploaded sheet, and document what an upload is answered with."""
    decorators = (
        imports.arguments(UploadedFile, location="files"),
        imports.response(status, ReportShown),
        imports.alt_response(404, description="The org is outside your scope."),
        imports.alt_response(413, description="The file is larger than the body limit."),
        imports.alt_response(422, description="The file cannot be read, or its columns are not the sheet's."),
    )

    def decorate(view):
        for decorator in reversed(decorators):
            view = decorator(view)
        return view

    return decorate


@imports.route(f"/orgs/{ORG}/imports/{SHEET}/check")
class ImportCheck(MethodView):
    @_upload(200)
    @takes_no_idempotency_key
    def post(self, files, org_id, sheet_name):
        """Check a file row by row, against each other and the ledger, and report every bad row; write nothing."""
        content = files["file"].read()
        report = rehearse(lambda: _import(current_principal(), org_id, sheet_name, content))
        return _shown(report, written=False)


@imports.route(f"/orgs/{ORG}/imports/{SHEET}")
class Import(MethodView):
    @_upload(201)
    def post(self, files, org_id, sheet_name):
        """Import the rows that pass every check, all at once, and report the others; rows already in are not written again."""
        content = files["file"].read()
        return idempotent_write(
            lambda principal, _key: _import(principal, org_id, sheet_name, content),
            lambda report: _shown(report, written=True),
        )


@imports.route(f"/imports/{SHEET}/template")
class ImportTemplate(MethodView):
    @imports.arguments(TemplateQuery, location="query")
    @imports.response(200, content_type=MEDIA_TYPES["xlsx"], description="An empty sheet to fill in.")
    @imports.doc(**TEMPLATE_RESPONSE)
    def get(self, query, sheet_name):
        """Download an empty roster or sign-in sheet (XLSX with an explanation of each column, or CSV)."""
        current_principal()
        response = Response(template(SHEETS[sheet_name], query["format"]), content_type=MEDIA_TYPES[query["format"]])
        response.headers["Content-Disposition"] = f'attachment; filename="{sheet_name}-template.{query["format"]}"'
        return response
