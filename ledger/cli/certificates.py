"""The `ledger certificates` commands: issue a service certificate as a PDF, print it again, check a code."""

from __future__ import annotations

import uuid
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ledger.cli.common import ACTOR_OPTION, actor_named, hours, participant_named, participant_options, refusals_as_messages
from ledger.db import db, write_transaction
from ledger.errors import NotFound
from ledger.models import ServiceCertificate

DATE = click.DateTime(["%Y-%m-%d"])
#: Where the certificate sends its reader to check a code, when no public address is given.
CHECK_PATH = "/certificates/check"


@click.group("certificates")
def certificates_group() -> None:
    """Service certificates (志愿服务记录证明): issue one as a PDF, print it again, check a verification code."""


def _check_address(base_url: str) -> str:
    return base_url.rstrip("/") + CHECK_PATH


BASE_URL_OPTION = click.option(
    "--base-url", default="", help="The service's public address, printed on the certificate with where to check it."
)


@certificates_group.command("issue")
@participant_options
@click.option("--from", "period_from", required=True, type=DATE, help="First day certified.")
@click.option("--to", "period_to", required=True, type=DATE, help="Last day certified.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Where to write the PDF.")
@BASE_URL_OPTION
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def issue_command(volunteer_number, participant_id, period_from, period_to, output, base_url, username) -> None:
    """Certify a volunteer's verified service in a period and write the certificate as a PDF."""
    from ledger.certificates import issue_certificate

    key = f"cli-{uuid.uuid4()}"
    certificate = write_transaction(
        lambda: issue_certificate(
            db.session,
            actor=actor_named(username),
            participant=participant_named(volunteer_number, participant_id),
            period_from=period_from.date(),
            period_to=period_to.date(),
            idempotency_key=key,
        ).certificate
    )
    click.echo(
        f"Certificate {certificate.number}: {certificate.activity_count} activities, "
        f"{hours(certificate.service_minutes)} hours, {certificate.period_from} to {certificate.period_to}; "
        f"verification code {certificate.code}"
    )
    _write_pdf(certificate, output or Path(f"{certificate.number}.pdf"), base_url)


@certificates_group.command("pdf")
@click.argument("number")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Where to write the PDF.")
@BASE_URL_OPTION
@with_appcontext
@refusals_as_messages
def pdf_command(number, output, base_url) -> None:
    """Write an issued certificate's PDF again (refused once it no longer matches the ledger)."""
    certificate = db.session.execute(
        select(ServiceCertificate).where(ServiceCertificate.number == number)
    ).scalar_one_or_none()
    if certificate is None:
        raise NotFound(f"no certificate is numbered {number}", field="number")
    _write_pdf(certificate, output or Path(f"{certificate.number}.pdf"), base_url)


def _write_pdf(certificate: ServiceCertificate, output: Path, base_url: str) -> None:
    from ledger.certificates import certificate_pdf

    output.write_bytes(certificate_pdf(db.session, certificate, check_address=_check_address(base_url)))
    db.session.rollback()
    click.echo(f"Wrote {output}")


@certificates_group.command("check")
@click.argument("code")
@with_appcontext
@refusals_as_messages
def check_command(code) -> None:
    """Check a verification code as anyone may: the certificate's facts, and whether the ledger still bears them out."""
    from ledger.certificates import check_code

    check = check_code(db.session, code)
    db.session.rollback()
    click.echo(
        f"{check.number} · {check.holder} · {check.org_name} · {check.period_from} to {check.period_to} · "
        f"{check.activity_count} activities, {hours(check.service_minutes)} hours · issued {check.issued_on}"
    )
    if not check.matches_ledger:
        click.echo("NO LONGER MATCHES the ledger: an entry of the period was reversed or added since it was issued.", err=True)
        raise SystemExit(1)
    click.echo("Matches the ledger.")


COMMANDS = (certificates_group,)
