"""The `ledger rules` commands: validate, draft, edit, publish, list and simulate rule sets."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ledger.cli.common import ACTOR_OPTION, actor_named, hours, left, org_coded, refusals_as_messages, right
from ledger.db import db, write_transaction


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
        org, actor = org_coded(org_code), actor_named(username)
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

    version = write_transaction(lambda: rules.publish(db.session, actor=actor_named(username), version_id=version_id))
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
        lambda: rules.publish_default(db.session, actor=actor_named(username), org=org_coded(org_code))
    )
    click.echo(f"Published the default rules as {org_code} version {version.version} (id {version.id})")


@rules_group.command("list")
@click.option("--org", "org_code", required=True)
@with_appcontext
@refusals_as_messages
def rules_list_command(org_code: str) -> None:
    """List an org's rule-set versions, newest first."""
    from ledger import rules

    for version in rules.versions(db.session, org_coded(org_code)):
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
        db.session, org=org_coded(org_code), draft=draft, draft_name=draft.name, start=start.date(), end=end.date()
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
        left("参与者 participant", 22)
        + right("积分 points", 16)
        + right("时长 hours", 18)
        + right("星级 stars", 12)
        + right("排名 rank", 12)
        + "  称号 titles",
    ]
    for change in report.participants if show_all else changed:
        b, a = change.before, change.after
        titles = "" if b.titles == a.titles else (
            " ".join([f"+{t}" for t in sorted(a.titles - b.titles)] + [f"-{t}" for t in sorted(b.titles - a.titles)])
        )
        lines.append(
            left(change.name[:10], 22)
            + right(f"{b.points} → {a.points}", 16)
            + right(f"{hours(b.service_minutes)} → {hours(a.service_minutes)}", 18)
            + right(f"{b.stars} → {a.stars}", 12)
            + right(f"{b.rank} → {a.rank}", 12)
            + f"  {titles}"
        )
    if not changed and not show_all:
        lines.append("(no participant changes)")
    return "\n".join(lines)


def _format_of(filename: str) -> str:
    return "json" if filename.lower().endswith(".json") else "yaml"


COMMANDS = (rules_group,)
