"""The `ledger import` commands: a volunteer roster or a sign-in sheet from CSV or XLSX, and their templates."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ledger.cli.common import ACTOR_OPTION, actor_named, org_coded, refusals_as_messages
from ledger.db import db, write_transaction
from ledger.import_rows import PROBLEM_LABELS, SHEETS, TEMPLATE_FORMATS, Sheet, column_header, template
from ledger.imports import ImportReport, check_file, import_rows, rehearse


@click.group("import")
def import_group() -> None:
    """Import a volunteer roster or a sign-in sheet (CSV or XLSX), or write a template to fill in.

    Every row is checked first and each bad one reported with its line and why. Nothing is
    written unless you add --import-good-rows; then the good rows are written at once, all or
    none. Importing a file again writes only what it has that is new.
    """


def _add_import_command(sheet: Sheet) -> None:
    @import_group.command(sheet.name, help=f"Check (or import) a {sheet.title} file.")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--org", "org_code", required=True, help="Code of the org the file is for; its rows lie in it.")
    @click.option("--import-good-rows", "write", is_flag=True, help="Write the rows that pass every check.")
    @ACTOR_OPTION
    @with_appcontext
    @refusals_as_messages
    def command(file: Path, org_code: str, write: bool, username: str) -> None:
        checked = check_file(sheet, file.read_bytes(), org_coded(org_code))
        click.echo(f"{sheet.title} · {file.name} · {checked.total} rows")

        def work(progress) -> ImportReport:
            return import_rows(
                db.session,
                actor=actor_named(username),
                org=org_coded(org_code),
                checked=checked,
                sheet=sheet,
                id_number_key=current_app.config["LEDGER_ID_NUMBER_KEY"],
                on_row=lambda: progress.update(1),
            )

        label = f"{'Importing' if write else 'Checking'} {len(checked.rows)} rows against the ledger"
        with click.progressbar(length=len(checked.rows), label=label) as progress:
            report = (write_transaction if write else rehearse)(lambda: work(progress))
        _echo_report(sheet, report, write)
        if report.problems:
            raise SystemExit(1)


def _echo_report(sheet: Sheet, report: ImportReport, written: bool) -> None:
    for problem in report.problems:
        zh, en = PROBLEM_LABELS[problem.kind]
        column = f"{column_header(sheet, problem.field)} ({problem.field}): " if problem.field else ""
        click.echo(f"line {problem.line:>5} · {zh} {en} · {column}{problem.message}", err=True)
    before = f", {report.already_imported} were imported before" if report.already_imported else ""
    bad = f", {report.bad_rows} rows have problems" if report.problems else ""
    if written:
        click.echo(f"Imported {report.imported} of {report.rows} rows{before}{bad}.")
        if report.problems:
            click.echo("The rows with problems were left out: correct them and import the file again.")
    else:
        click.echo(f"{report.imported} of {report.rows} rows can be imported{before}{bad}.")
        click.echo(f"Nothing was written. To write the {report.imported} good rows, run again with --import-good-rows.")


@import_group.command("template")
@click.argument("sheet_name", metavar="SHEET", type=click.Choice(list(SHEETS)))
@click.argument("output", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@refusals_as_messages
def template_command(sheet_name: str, output: Path) -> None:
    """Write an empty roster or sign-in sheet to fill in: OUTPUT ending in .xlsx or .csv."""
    sheet = SHEETS[sheet_name]
    output.write_bytes(template(sheet, output.suffix.lstrip(".").lower()))
    click.echo(f"Wrote a template of the {sheet.title} to {output} (formats: {', '.join(TEMPLATE_FORMATS)})")


for _sheet in SHEETS.values():
    _add_import_command(_sheet)

COMMANDS = (import_group,)
