"""Commands for the ledger itself: the demo, serving, verifying, checkpoints, a participant's history."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ledger.cli.common import participant_named, participant_options, refusals_as_messages
from ledger.db import db, write_transaction
from ledger.models import utc_now


@click.command("demo")
@click.option("--seed", default=2026, show_default=True, help="Seed of the generated residents and balances.")
@with_appcontext
@refusals_as_messages
def demo_command(seed: int) -> None:
    """Upgrade the database and load the demo street (running it again adds nothing)."""
    from flask_migrate import upgrade

    from ledger.demo import DEMO_PASSWORD, load_demo

    upgrade()
    # Known passwords are for a laptop: a production deployment issues its own.
    password = None if current_app.config["LEDGER_ENV"] == "production" else DEMO_PASSWORD
    summary = write_transaction(
        lambda: load_demo(
            db.session, seed=seed, id_number_key=current_app.config["LEDGER_ID_NUMBER_KEY"], sign_in_password=password
        )
    )
    click.echo(summary.describe())
    if password:
        click.echo(f"Sign in to the API as demo-admin, demo-street, demo-staff, demo-grid, demo-auditor or demo-volunteer, password {password}")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the ledger with waitress (for production behind a load balancer, see the README)."""
    import socket

    from waitress import create_server

    try:
        # Bound here rather than by waitress, which leaves its half-made server open when it cannot bind.
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}; stop what is using it, or pass another --port"
        ) from None
    server = create_server(current_app._get_current_object(), sockets=[listening], threads=threads, ident="ledger")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Serving the volunteer points ledger on http://{shown_host}:{port}/  (Ctrl+C to stop)")
    server.run()


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
        click.echo(f"FAIL [{problem.check}] " + (f"{place}: " if place else "") + problem.message, err=True)
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
@participant_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@with_appcontext
@refusals_as_messages
def history_command(volunteer_number, participant_id, limit, language) -> None:
    """Show a participant's balance and latest entries, each with why it earned what it did."""
    from ledger.rewards import explain_entry
    from ledger.transactions import participant_account, participant_history

    participant = participant_named(volunteer_number, participant_id)
    account = participant_account(db.session, participant.id)
    click.echo(f"{participant.display_name} — {account.balance} points ({participant.org.name})")
    for line in participant_history(db.session, account.id, limit=limit):
        transaction = line.transaction
        balance = "" if line.balance_after is None else f"  → {line.balance_after}"
        click.echo(f"{transaction.business_date.isoformat()}  {transaction.kind:<15} {line.amount:+6d}{balance}  {transaction.memo or ''}")
        for text in explain_entry(transaction.kind, transaction.breakdown, language):
            click.echo(f"      {text}")
    db.session.rollback()


COMMANDS = (demo_command, serve_command, verify_command, checkpoint_command, history_command)
