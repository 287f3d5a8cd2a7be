"""Commands for the annual evaluation: its exports, its freeze, what changed since, the employers' feedback."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from ledger.cli.common import ACTOR_OPTION, actor_named, org_coded, refusals_as_messages, today_in
from ledger.db import db, write_transaction
from ledger.evaluation import LANGUAGES, Kind, display, hours
from ledger.exports import Format, write
from ledger.models import utc_now

FORMAT_OPTION = click.option(
    "--format", "format_", type=click.Choice([f.value for f in Format]), default=Format.XLSX.value, show_default=True
)
LANGUAGE_OPTION = click.option(
    "--language", type=click.Choice(LANGUAGES), default="zh", show_default=True, help="Language of the headers and words."
)
ORG_OPTION = click.option("--org", "org_code", required=True, help="Code of the org evaluated (street, community, grid).")
YEAR_OPTION = click.option("--year", required=True, type=int)
SHEETS = ("participants", "party_members", "units")


@click.group("export")
def export_group() -> None:
    """Download the annual evaluation and the employers' feedback as XLSX or CSV."""


@export_group.command("annual")
@ORG_OPTION
@YEAR_OPTION
@FORMAT_OPTION
@click.option("--sheet", type=click.Choice(SHEETS), help="Only this sheet (CSV holds one sheet: participants unless told).")
@LANGUAGE_OPTION
@click.option("--live", is_flag=True, help="Compute it afresh even when the year is frozen.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
@with_appcontext
@refusals_as_messages
def export_annual_command(org_code, year, format_, sheet, language, live, output) -> None:
    """Write an org's annual evaluation of a year: as frozen, if it was, else as the ledger says now."""
    from ledger.annual import evaluation, tables

    org = org_coded(org_code)
    result = evaluation(db.session, org=org, year=year, today=today_in(org), live=live)
    if format_ == Format.CSV and sheet is None:
        sheet = "participants"
    chosen = [each for each in result.sheets if sheet in (None, each.spec.code)]
    total = sum(each.count() for each in chosen)
    created = result.freeze.frozen_at if result.freeze else utc_now()
    with click.progressbar(length=total, label="导出 exporting", file=sys.stderr) as bar:
        with output.open("wb") as target:
            write(tables(result, language, sheet=sheet, counted=lambda: bar.update(1)), format_, target, created=created)
    db.session.rollback()
    state = f"frozen at {result.freeze.frozen_at.isoformat()}" if result.freeze else "computed now"
    click.echo(f"Wrote {total} rows of {org.name}'s {year} evaluation ({state}) to {output}")


@export_group.command("feedback")
@ORG_OPTION
@YEAR_OPTION
@FORMAT_OPTION
@click.option("--employer", "employer_unit_id", type=int, help="Only this employer unit (by id).")
@LANGUAGE_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(writable=True, path_type=Path),
    required=True,
    help="The workbook; for CSV, a folder that gets one file per employer.",
)
@with_appcontext
@refusals_as_messages
def export_feedback_command(org_code, year, format_, employer_unit_id, language, output) -> None:
    """Write the double-reporting feedback to employers: a sheet (or a CSV file) per employer unit."""
    from ledger.annual import employer_feedback, feedback_tables

    org = org_coded(org_code)
    rules, feedbacks = employer_feedback(db.session, org=org, year=year, today=today_in(org), employer_unit_id=employer_unit_id)
    if format_ == Format.XLSX:
        with output.open("wb") as target:
            write(feedback_tables(rules, feedbacks, language), format_, target, created=utc_now())
        click.echo(f"Wrote the {year} feedback of {org.name}'s employers to {output}")
    else:
        output.mkdir(parents=True, exist_ok=True)
        for feedback in feedbacks:
            path = output / f"{feedback.employer_unit_id}.csv"
            with path.open("wb") as target:
                write(feedback_tables(rules, iter([feedback]), language), format_, target, created=utc_now())
            click.echo(f"{path}  {feedback.name}")
    db.session.rollback()


@click.group("evaluation")
def evaluation_group() -> None:
    """Freeze an annual evaluation, see what changed since, and feed the employers' feedback."""


@evaluation_group.command("freeze")
@ORG_OPTION
@YEAR_OPTION
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def freeze_command(org_code, year, username) -> None:
    """Freeze an org's evaluation of a year as it is now (a street admin's step at the deadline)."""
    from ledger.annual import freeze_evaluation

    freeze = write_transaction(
        lambda: freeze_evaluation(db.session, actor=actor_named(username), org=org_coded(org_code), year=year, now=utc_now())
    )
    click.echo(f"Froze {freeze.org.name}'s {year} evaluation at {freeze.frozen_at.isoformat()} (freeze {freeze.id})")
    db.session.rollback()


@evaluation_group.command("changes")
@ORG_OPTION
@YEAR_OPTION
@LANGUAGE_OPTION
@with_appcontext
@refusals_as_messages
def changes_command(org_code, year, language) -> None:
    """List what changed in a frozen evaluation since the freeze, and the year's transactions recorded since."""
    from ledger.annual import changes_since_freeze
    from ledger.evaluation import ROW, SheetSpec

    org = org_coded(org_code)
    found = changes_since_freeze(db.session, org=org, year=year, today=today_in(org))
    kinds = {
        (spec["code"], column.code): column.kind
        for spec in found.freeze.sheets
        for column in SheetSpec.from_json(spec).columns
    }
    click.echo(f"{org.name} {year}, frozen at {found.freeze.frozen_at.isoformat()}")
    count = 0
    for change in found.changes():
        count += 1
        kind = Kind.TEXT if change.field == ROW else kinds.get((change.sheet, change.field), Kind.TEXT)
        before, after = (display(kind, value, language) for value in (change.frozen, change.current))
        click.echo(f"  {change.sheet} · participant {change.participant_id} · {change.field}: {before} → {after}")
    click.echo(f"{count} changes since the freeze")
    late = 0
    for entry in found.transactions():
        late += 1
        click.echo(
            f"  #{entry.transaction_id} {entry.kind} {entry.business_date.isoformat()} recorded {entry.recorded_at.isoformat()}"
            f" · {entry.name}: {entry.points:+d} points, {hours(entry.service_minutes)} hours"
            + (f" · reverses #{entry.reverses_id}" if entry.reverses_id else "")
            + (f" · {entry.memo}" if entry.memo else "")
        )
    click.echo(f"{late} transaction postings of {year} recorded since the freeze")
    db.session.rollback()


@evaluation_group.command("remark")
@click.option("--participant", "participant_id", required=True, type=int, help="The party member's participant id.")
@YEAR_OPTION
@click.option("--text", "remark", required=True, help="The community's remark for the employer.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def remark_command(participant_id, year, remark, username) -> None:
    """Write the home community's remark on a party member's year (the latest one goes to the employer)."""
    from ledger.annual import write_remark

    write_transaction(
        lambda: write_remark(
            db.session, actor=actor_named(username), participant_id=participant_id, year=year, remark=remark, now=utc_now()
        )
    )
    click.echo(f"Remark on participant {participant_id}'s {year} recorded")


@evaluation_group.command("headcount")
@click.option("--employer", "employer_unit_id", required=True, type=int, help="The employer unit's id.")
@click.option("--party-members", "count", required=True, type=int, help="In-service party members it has.")
@with_appcontext
@refusals_as_messages
def headcount_command(employer_unit_id, count) -> None:
    """Record how many in-service party members an employer has: its report-in rate is counted against it."""
    from ledger.annual import set_party_members_employed

    employer = write_transaction(
        lambda: set_party_members_employed(db.session, employer_unit_id=employer_unit_id, count=count)
    )
    click.echo(f"{employer.name} has {count} in-service party members")


COMMANDS = (export_group, evaluation_group)
