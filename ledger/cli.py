"""The ``ledger`` command: a Flask CLI group, so ``flask --app ledger …`` works the same.

Each command is a thin wrapper: it parses options, calls a service function inside
:func:`ledger.db.write_transaction` (or a read), and prints. A refusal of the ledger's
(:class:`~ledger.errors.LedgerError`) prints its message and exits with status 1.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from ledger.db import db, write_transaction
from ledger.errors import LedgerError
from ledger.models import utc_now


def refusals_as_messages(command):
    """Turn a ledger refusal into a one-line error and exit status 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


@click.command("demo")
@click.option("--seed", default=2026, show_default=True, help="Seed of the generated residents and balances.")
@with_appcontext
@refusals_as_messages
def demo_command(seed: int) -> None:
    """Upgrade the database and load the demo street (running it again adds nothing)."""
    from flask_migrate import upgrade

    from ledger.demo import load_demo

    upgrade()
    summary = write_transaction(
        lambda: load_demo(db.session, seed=seed, id_number_key=current_app.config["LEDGER_ID_NUMBER_KEY"])
    )
    click.echo(summary.describe())


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the ledger with waitress (for production behind a load balancer, see the README)."""
    from waitress import serve

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Serving the volunteer points ledger on http://{shown_host}:{port}/  (Ctrl+C to stop)")
    serve(current_app._get_current_object(), host=host, port=port, threads=threads, ident="ledger")


@click.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file written by `ledger checkpoint`: also detect a deleted or rewritten tail since then.",
)
@click.option("--replay", is_flag=True, help="Also recompute every scored entry from its activity and rule version.")
@with_appcontext
@refusals_as_messages
def verify_command(checkpoint_file: Path | None, replay: bool) -> None:
    """Check chains, zero-sum, balances, versions and period totals; exit non-zero on any failure."""
    from ledger.replay import replay_ledger
    from ledger.verify import parse_checkpoint, verify_ledger

    checkpoint = parse_checkpoint(checkpoint_file.read_text(encoding="utf-8")) if checkpoint_file else None
    report = verify_ledger(db.session, checkpoint=checkpoint)
    if replay:
        replayed = replay_ledger(db.session)
        click.echo(f"Replayed {replayed.entries} scored entries under their recorded rule versions.")
        report.problems.extend(replayed.problems)
    db.session.rollback()
    click.echo(
        f"Checked {report.chains} chains, {report.transactions} transactions, "
        f"{report.postings} postings, {report.accounts} accounts"
        + (f", against {report.checkpoint_chains} checkpointed heads" if checkpoint else "")
        + "."
    )
    if report.ok:
        click.echo("OK: every chain, transaction and balance verifies.")
        return
    first = report.first_bad_transaction()
    if first is not None:
        click.echo(
            f"FIRST BAD TRANSACTION: id {first.transaction_id}, link {first.seq} of chain {first.chain_id} "
            f"({first.check}: {first.message})",
            err=True,
        )
    for problem in report.problems:
        place = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("chain", problem.chain_id),
                ("link", problem.seq),
                ("transaction", problem.transaction_id),
                ("account", problem.account_id),
            )
            if value is not None
        )
        click.echo(f"FAIL [{problem.check}] {place}: {problem.message}", err=True)
    for check, count in report.suppressed.items():
        click.echo(f"... and {count} more [{check}] problems", err=True)
    raise SystemExit(1)


@click.command("checkpoint")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: ledger-checkpoint-<UTC time>.json in the current folder).",
)
@with_appcontext
def checkpoint_command(output: Path | None) -> None:
    """Write the head of every chain to a JSON file to keep outside the database."""
    from ledger.verify import take_checkpoint

    now = utc_now()
    document = take_checkpoint(db.session, now=now)
    db.session.rollback()
    output = output or Path(f"ledger-checkpoint-{now:%Y%m%dT%H%M%SZ}.json")
    output.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    links = sum(entry["seq"] for entry in document["chains"])
    click.echo(f"Wrote the heads of {len(document['chains'])} chains ({links} links) to {output}")


@click.command("history")
@click.option("--volunteer", "volunteer_number", help="Volunteer number, for example DEMO-V00012.")
@click.option("--participant", "participant_id", type=int, help="Or a participant id.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@with_appcontext
@refusals_as_messages
def history_command(volunteer_number, participant_id, limit, language) -> None:
    """Show a participant's balance and latest entries, each with why it earned what it did."""
    from sqlalchemy import select

    from ledger.errors import InvalidInput, NotFound
    from ledger.models import Participant, Volunteer
    from ledger.points import describe_breakdown
    from ledger.transactions import participant_account, participant_history

    if (volunteer_number is None) == (participant_id is None):
        raise InvalidInput("give either --volunteer NUMBER or --participant ID", field="volunteer")
    if volunteer_number is not None:
        participant_id = db.session.scalar(
            select(Volunteer.participant_id).where(Volunteer.volunteer_number == volunteer_number)
        )
        if participant_id is None:
            raise NotFound(f"no volunteer has number {volunteer_number}", field="volunteer")
    participant = db.session.get(Participant, participant_id)
    account = participant_account(db.session, participant_id)
    click.echo(f"{participant.display_name} — {account.balance} points ({participant.org.name})")
    for line in participant_history(db.session, account.id, limit=limit):
        transaction = line.transaction
        balance = "" if line.balance_after is None else f"  → {line.balance_after}"
        click.echo(f"{transaction.business_date.isoformat()}  {transaction.kind:<15} {line.amount:+6d}{balance}  {transaction.memo or ''}")
        if transaction.breakdown:
            for text in describe_breakdown(transaction.breakdown, language):
                click.echo(f"      {text}")
    db.session.rollback()


def _actor(username: str):
    from ledger.users import ensure_user

    return ensure_user(db.session, username)


def _org(code: str):
    from ledger.orgs import org_by_code

    return org_by_code(db.session, code)


ACTOR_OPTION = click.option(
    "--as", "username", default="system", show_default=True, help="User recorded as having done this."
)


@click.group("rules")
def rules_group() -> None:
    """Scoring rule sets: validate, draft, publish, list, simulate."""


@rules_group.command("validate")
@click.argument("document", type=click.File("r", encoding="utf-8"))
@refusals_as_messages
def rules_validate_command(document) -> None:
    """Check a rule document (YAML or JSON) and list every problem in it."""
    from ledger.errors import RuleSetInvalid
    from ledger.ruleset_schema import parse_rule_set

    try:
        rules = parse_rule_set(document.read(), format=_format_of(document.name))
    except RuleSetInvalid as invalid:
        for path, messages in invalid.errors.items():
            for message in messages:
                click.echo(f"{path}: {message}", err=True)
        raise click.ClickException(f"{sum(len(m) for m in invalid.errors.values())} problem(s) in {document.name}")
    click.echo(f"OK: {rules.name}, {len(rules.activity_types)} activity types, in force from {rules.effective_from}")


@rules_group.command("draft")
@click.option("--org", "org_code", required=True, help="Code of the org the rules are for.")
@click.option("--publish", is_flag=True, help="Publish the new version at once.")
@ACTOR_OPTION
@click.argument("document", type=click.File("r", encoding="utf-8"))
@with_appcontext
@refusals_as_messages
def rules_draft_command(org_code: str, publish: bool, username: str, document) -> None:
    """Store a rule document as the org's next version (a draft unless --publish)."""
    from ledger import rules

    text, format = document.read(), _format_of(document.name)

    def work():
        org, actor = _org(org_code), _actor(username)
        if publish:
            return rules.publish_document(db.session, actor=actor, org=org, text=text, format=format)
        return rules.create_draft(db.session, actor=actor, org=org, text=text, format=format)

    version = write_transaction(work)
    click.echo(f"{org_code} version {version.version} (id {version.id}) is {version.status}: {version.name}")


@rules_group.command("edit")
@click.argument("version_id", type=int)
@click.argument("document", type=click.File("r", encoding="utf-8"))
@with_appcontext
@refusals_as_messages
def rules_edit_command(version_id: int, document) -> None:
    """Replace a draft's document (a published version never changes: draft a new one)."""
    from ledger import rules

    text, format = document.read(), _format_of(document.name)
    version = write_transaction(lambda: rules.update_draft(db.session, version_id=version_id, text=text, format=format))
    click.echo(f"Draft version {version.version} (id {version.id}) now reads: {version.name}")


@rules_group.command("publish")
@click.argument("version_id", type=int)
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def rules_publish_command(version_id: int, username: str) -> None:
    """Publish a draft: from now on it scores entries in its org and period."""
    from ledger import rules

    version = write_transaction(lambda: rules.publish(db.session, actor=_actor(username), version_id=version_id))
    click.echo(f"Published version {version.version} (id {version.id}), in force from {version.effective_from}")


@rules_group.command("publish-default")
@click.option("--org", "org_code", required=True, help="Code of the org (usually the district).")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def rules_publish_default_command(org_code: str, username: str) -> None:
    """Publish the rule set that ships with the product (docs/rules.md) for an org."""
    from ledger import rules

    version = write_transaction(
        lambda: rules.publish_default(db.session, actor=_actor(username), org=_org(org_code))
    )
    click.echo(f"Published the default rules as {org_code} version {version.version} (id {version.id})")


@rules_group.command("list")
@click.option("--org", "org_code", required=True)
@with_appcontext
@refusals_as_messages
def rules_list_command(org_code: str) -> None:
    """List an org's rule-set versions, newest first."""
    from ledger import rules

    for version in rules.versions(db.session, _org(org_code)):
        until = version.effective_to.isoformat() if version.effective_to else "open"
        click.echo(
            f"{version.version:>3}  id {version.id:<5} {version.status:<9} "
            f"{version.effective_from.isoformat()} – {until}  {version.name}"
        )
    db.session.rollback()


@rules_group.command("simulate")
@click.option("--org", "org_code", required=True, help="Org whose subtree's activities are re-scored.")
@click.option("--draft", "version_id", type=int, help="A stored draft version to try.")
@click.option("--file", "document", type=click.File("r", encoding="utf-8"), help="Or a rule document to try.")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day, YYYY-MM-DD.")
@click.option("--all", "show_all", is_flag=True, help="List unchanged participants too.")
@with_appcontext
@refusals_as_messages
def rules_simulate_command(org_code, version_id, document, start, end, show_all) -> None:
    """Re-score a past period under a draft and show who changes; nothing is written."""
    from ledger.errors import InvalidInput
    from ledger.models import RuleSetVersion
    from ledger.rules import rules_of
    from ledger.ruleset_schema import parse_rule_set
    from ledger.simulate import simulate

    if (version_id is None) == (document is None):
        raise InvalidInput("give either --draft VERSION_ID or --file DOCUMENT", field="draft")
    if document is not None:
        draft = parse_rule_set(document.read(), format=_format_of(document.name))
    else:
        version = db.session.get(RuleSetVersion, version_id)
        if version is None:
            raise InvalidInput(f"rule set version {version_id} does not exist", field="draft")
        draft = rules_of(version)
    report = simulate(
        db.session, org=_org(org_code), draft=draft, draft_name=draft.name, start=start.date(), end=end.date()
    )
    db.session.rollback()
    click.echo(format_simulation(report, show_all=show_all))


def format_simulation(report, *, show_all: bool) -> str:
    """Render a simulation as a plain-text comparison table (Chinese and English headings)."""
    before, after = report.totals()
    changed = [change for change in report.participants if change.changed]
    lines = [
        f"模拟 Simulation: {report.draft_name} — {report.org.name} ({report.org.code}), "
        f"{report.start.isoformat()} – {report.end.isoformat()}; nothing was written.",
        f"{report.activities} activities re-scored for {len(report.participants)} participants; "
        f"{len(changed)} change. Points in the period: {before} → {after} ({after - before:+d}).",
        "",
        _left("参与者 participant", 22)
        + _right("积分 points", 16)
        + _right("时长 hours", 18)
        + _right("星级 stars", 12)
        + _right("排名 rank", 12)
        + "  称号 titles",
    ]
    for change in report.participants if show_all else changed:
        b, a = change.before, change.after
        titles = "" if b.titles == a.titles else (
            " ".join([f"+{t}" for t in sorted(a.titles - b.titles)] + [f"-{t}" for t in sorted(b.titles - a.titles)])
        )
        lines.append(
            _left(change.name[:10], 22)
            + _right(f"{b.points} → {a.points}", 16)
            + _right(f"{_hours(b.service_minutes)} → {_hours(a.service_minutes)}", 18)
            + _right(f"{b.stars} → {a.stars}", 12)
            + _right(f"{b.rank} → {a.rank}", 12)
            + f"  {titles}"
        )
    if not changed and not show_all:
        lines.append("(no participant changes)")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Return how many terminal columns ``text`` takes: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)


def _left(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 1)


def _right(text: str, width: int) -> str:
    return " " * max(width - _width(text), 1) + text


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _format_of(filename: str) -> str:
    return "json" if filename.lower().endswith(".json") else "yaml"


COMMANDS = (demo_command, serve_command, verify_command, checkpoint_command, history_command, rules_group)


def init_app(app) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``ledger`` console script."""
    from ledger import create_app

    FlaskGroup(create_app=create_app, help="The volunteer points ledger.")(prog_name="ledger")

