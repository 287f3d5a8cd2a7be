"""Service certificates (志愿服务记录证明): issue one, list and read them, download the PDF, check a code.

A volunteer issues and downloads their own; staff in scope do so for any volunteer in their
scope. Checking a verification code needs no sign-in (anyone shown a certificate may check it)
and shows only what the certificate prints: its number, the masked name, the period, the
totals, the issuer, and whether the ledger still bears them out. What is certified, and when a
certificate has gone stale, is :mod:`ledger.certificates`'s to say.
"""

from __future__ import annotations

import dataclasses

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validates_schema
from sqlalchemy import select

from ledger.api.auth import limiter
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.participants import MAX_ID, participant_in_scope
from ledger.api.schemas import PageInfo, PageQuery, QueryWhole, StrictSchema, Whole
from ledger.certificates import certificate_pdf, check_code, hours_text, issue_certificate, still_certified
from ledger.db import db
from ledger.models import ServiceCertificate

certificates = Blueprint(
    "certificates",
    __name__,
    url_prefix="/api/v1",
    description="Service certificates (志愿服务记录证明): issue, download as PDF, and check a verification code.",
)

CERTIFICATE = f"<int(max={2**63 - 1}):certificate_id>"
#: Checks one client may make a minute: codes are unguessable, and stay so.
CHECK_RATE_LIMIT = "60 per minute"
PDF_RESPONSE = {
    "responses": {
        "200": {
            "description": "The certificate, as a PDF attachment.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


class NewCertificate(StrictSchema):
    participant_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    period_from = fields.Date(required=True, metadata={"description": "First day certified."})
    period_to = fields.Date(required=True, metadata={"description": "Last day certified (today at the latest)."})

    @validates_schema
    def _period_runs_forward(self, data, **_kwargs):
        if data["period_to"] < data["period_from"]:
            raise ValidationError("must not be before period_from", "period_to")


class CertificateQuery(PageQuery):
    participant_id = QueryWhole(minimum=1, maximum=MAX_ID, required=True)


class Certified(StrictSchema):
    """What a certificate certifies, as it prints it."""

    number = fields.String(metadata={"description": "证明编号: the issuing community's code, the year and a serial."})
    org_name = fields.String(metadata={"description": "The issuing organisation."})
    period_from = fields.Date()
    period_to = fields.Date()
    service_minutes = fields.Integer()
    activity_count = fields.Integer()
    issued_on = fields.Date()


class CertificateShown(Certified):
    id = fields.Integer()
    code = fields.String(metadata={"description": "查验码: anyone given it may check the certificate."})
    participant_id = fields.Integer()
    org_id = fields.Integer()
    org_name = fields.String(attribute="org.name")
    issued_at = fields.DateTime()
    issued_by_id = fields.Integer()


class CertificateRead(StrictSchema):
    certificate = fields.Nested(CertificateShown)
    matches_ledger = fields.Boolean(metadata={"description": "false once an entry of the period was reversed or added."})


class CertificatePage(StrictSchema):
    items = fields.List(fields.Nested(CertificateShown))
    page = fields.Nested(PageInfo)


class CheckShown(Certified):
    holder = fields.String(metadata={"description": "The holder's name with all but its first character hidden."})
    service_hours = fields.String(metadata={"description": "The certified time in hours and minutes, in Chinese."})
    matches_ledger = fields.Boolean(
        metadata={"description": "Whether the ledger still holds exactly the service certified; false after a later reversal."}
    )


def _certificate(certificate_id: int) -> ServiceCertificate:
    """Return a certificate the caller may read: of a participant in their scope (a volunteer: their own)."""
    return object_in_scope(
        ServiceCertificate,
        certificate_id,
        Action.READ_LEDGER,
        field="certificate_id",
        org_of=lambda certificate: certificate.participant.org,
    )


@certificates.route("/certificates")
class CertificateList(MethodView):
    @certificates.arguments(CertificateQuery, location="query")
    @certificates.response(200, CertificatePage)
    def get(self, query):
        """List a participant's certificates, newest first."""
        participant = participant_in_scope(query["participant_id"], Action.READ_LEDGER, field="participant_id")
        statement = (
            select(ServiceCertificate)
            .where(ServiceCertificate.participant_id == participant.id)
            .order_by(ServiceCertificate.id.desc())
        )
        return page_of(statement, query)

    @certificates.arguments(NewCertificate)
    @certificates.response(201, CertificateShown)
    @certificates.alt_response(404, description="The participant is outside your scope, or not you.")
    @certificates.alt_response(422, description="No verified service in the period, or a period in the future.")
    def post(self, body):
        """Certify a participant's verified service in a period; the PDF is at /certificates/{id}/pdf."""

        def issue(principal, key):
            participant = participant_in_scope(body["participant_id"], Action.READ_PARTICIPANTS, field="participant_id")
            principal.authorize(Action.ISSUE_CERTIFICATES, participant.org, participant_id=participant.id)
            return issue_certificate(
                db.session,
                actor=principal.user,
                participant=participant,
                period_from=body["period_from"],
                period_to=body["period_to"],
                idempotency_key=key,
            ).certificate

        return idempotent_write(issue, CertificateShown().dump)


@certificates.route(f"/certificates/{CERTIFICATE}")
class CertificateById(MethodView):
    @certificates.response(200, CertificateRead)
    def get(self, certificate_id):
        """Show a certificate and whether the ledger still bears it out."""
        certificate = _certificate(certificate_id)
        return {"certificate": certificate, "matches_ledger": still_certified(db.session, certificate) is not None}


@certificates.route(f"/certificates/{CERTIFICATE}/pdf")
class CertificatePdf(MethodView):
    @certificates.response(200, content_type="application/pdf", description="The certificate, as a PDF attachment.")
    @certificates.alt_response(409, description="The certificate no longer matches the ledger: issue a new one.")
    @certificates.doc(**PDF_RESPONSE)
    def get(self, certificate_id):
        """Download the certificate as a PDF, its Chinese in an embedded font, with its verification code."""
        certificate = _certificate(certificate_id)
        content = certificate_pdf(db.session, certificate, check_address=url_for("pages.certificate_check", _external=True))
        response = Response(content, mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'attachment; filename="{certificate.number}.pdf"'
        return response


@certificates.route("/certificate-checks/<string(maxlength=40):code>")
class CertificateCheck(MethodView):
    decorators = [limiter.limit(CHECK_RATE_LIMIT)]

    @certificates.response(200, CheckShown)
    @certificates.alt_response(404, description="No certificate has this code.")
    @certificates.alt_response(429, description="Too many checks; wait a minute.")
    def get(self, code):
        """Check a verification code (no sign-in): the certificate's facts and whether they still match the ledger."""
        check = check_code(db.session, code)
        return {**dataclasses.asdict(check), "service_hours": hours_text(check.service_minutes)}
