"""Commands for rankings, star levels and annual titles."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ledger.cli.common import (
    ACTOR_OPTION,
    actor_named,
    hours,
    left,
    org_coded,
    participant_named,
    participant_options,
    refusals_as_messages,
    right,
    today_in,
)
from ledger.db import db, write_transaction
from ledger.models import utc_now
from ledger.rulesets import Category

CATEGORY_LABELS = {Category.VOLUNTEER: "志愿者 volunteers", Category.PARTY_MEMBER: "党员 party members", Category.UNIT: "共建单位 units"}


@click.command("rank")
@click.option("--org", "org_code", required=True, help="Org whose subtree is ranked (grid, community, street).")
@click.option("--category", type=click.Choice([c.value for c in Category]), default="volunteer", show_default=True)
@click.option("--period", help="2026, 2026-03, 2026Q1 or 2026-03-01..2026-03-15 (default: this year).")
@click.option("--public", is_flag=True, help="As the public sees it: without those who opted out.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@participant_options
@with_appcontext
@refusals_as_messages
def rank_command(org_code, category, period, public, limit, page, volunteer_number, participant_id) -> None:
    """Show a ranking by points earned in a period, or one person's rank with their neighbours."""
    from ledger.rankings import own_standing, parse_period, ranking

    org = org_coded(org_code)
    period = parse_period(period or str(today_in(org).year))
    heading = f"{org.name} · {CATEGORY_LABELS[Category(category)]} · {period.label}" + (" · 公开 public" if public else "")
    if volunteer_number is None and participant_id is None:
        result = ranking(db.session, org=org, category=category, period=period, public=public, limit=limit, offset=(page - 1) * limit)
        click.echo(f"{heading} · {result.ranked} ranked")
        rows = result.rows
    else:
        participant = participant_named(volunteer_number, participant_id)
        standing = own_standing(db.session, org=org, category=category, period=period, participant_id=participant.id, public=public)
        click.echo(f"{heading} · {standing.ranked} ranked")
        if standing.me is None:
            click.echo(f"{participant.display_name} has no points in this period.")
        rows = (*standing.above, *([standing.me] if standing.me else []), *standing.below)
    click.echo(left("名次 rank", 10) + left("参与者 participant", 24) + right("积分 points", 12) + right("时长 hours", 12))
    for row in rows:
        click.echo(left(str(row.rank), 10) + left(row.name, 24) + right(str(row.points), 12) + right(hours(row.service_minutes), 12))
    db.session.rollback()


@click.command("stars")
@participant_options
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="The day to look from (default: today).")
@with_appcontext
@refusals_as_messages
def stars_command(volunteer_number, participant_id, today) -> None:
    """Show a participant's star level, when each was reached, and the hours to the next."""
    from ledger.rankings import star_record

    participant = participant_named(volunteer_number, participant_id)
    record = star_record(db.session, participant_id=participant.id, today=today.date() if today else today_in(participant.org))
    click.echo(f"{participant.display_name}: {'★' * record.level or '—'} {record.level} 星 stars, {hours(record.service_minutes)} hours of service")
    for level, day in record.reached:
        click.echo(f"  {level} 星 reached on {day.isoformat()}")
    if record.next_level is not None:
        click.echo(f"  {hours(record.minutes_to_next)} more hours to {record.next_level} 星")
    if record.year_level is not None:
        click.echo(f"  年度星级 this year's own ladder: {record.year_level} 星 for {hours(record.year_minutes)} hours this year")
    db.session.rollback()


@click.command("titles")
@click.option("--org", "org_code", required=True)
@click.option("--year", required=True, type=int)
@click.option("--title", "title_code", help="One title's code (default: every title of the rules).")
@click.option("--all", "show_all", is_flag=True, help="Also list who is not eligible, and what they miss.")
@with_appcontext
@refusals_as_messages
def titles_command(org_code, year, title_code, show_all) -> None:
    """Show who qualifies for each annual title, criterion by criterion."""
    from ledger.rankings import title_reports

    org = org_coded(org_code)
    reports = title_reports(db.session, org=org, year=year, today=today_in(org), title_code=title_code)
    for report in reports:
        click.echo(f"{report.title_name} ({report.title_code}) {year}: {len(report.eligible)} of {len(report.candidates)} eligible")
        for candidate in report.candidates if show_all else report.eligible:
            verdict = "✓" if candidate.eligibility.eligible else "✗"
            reasons = "; ".join(describe_criterion(c) for c in candidate.eligibility.criteria)
            click.echo(f"  {verdict} {left(candidate.name, 20)} {reasons}")
    db.session.rollback()


def describe_criterion(result) -> str:
    """Say what a title criterion asked, what was achieved, and by how much it was missed."""
    shown = {
        "min_hours": lambda value: hours(value),
        "min_points": str,
        "min_activities": str,
    }
    if result.criterion in shown:
        show = shown[result.criterion]
        text = f"{result.criterion[4:]} {show(result.achieved)} (needs {show(result.required)})"
    elif result.criterion in ("max_rank", "top_percent"):
        text = f"rank {result.achieved} (needs {result.required} or better)"
    elif result.criterion == "party_requirement":
        text = "yearly requirement " + ("met" if result.met else "not met")
    else:
        text = "not in this title's category"
    return text if result.met else f"{text}, short by {hours(result.shortfall) if result.criterion == 'min_hours' else result.shortfall}"


@click.command("unit-points")
@click.option("--org", "org_code", required=True)
@click.option("--year", required=True, type=int)
@with_appcontext
@refusals_as_messages
def unit_points_command(org_code, year) -> None:
    """Show each co-building unit's points of a year by kind: report-in, projects, staff sent, donations…"""
    from ledger.rankings import unit_points_by_kind

    for unit in unit_points_by_kind(db.session, org=org_coded(org_code), year=year):
        kinds = ", ".join(f"{kind} {points}" for kind, points in sorted(unit.by_kind.items(), key=lambda item: -item[1]))
        click.echo(f"{left(unit.name, 30)} {right(str(unit.total), 6)}  {kinds}")
    db.session.rollback()


@click.command("award-titles")
@click.option("--org", "org_code", required=True)
@click.option("--year", required=True, type=int)
@click.option("--title", "title_code", required=True)
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def award_titles_command(org_code, year, title_code, username) -> None:
    """Grant a title to everyone eligible for it in an org and year (those who hold it keep it)."""
    from ledger.rankings import award_titles

    awards = write_transaction(
        lambda: award_titles(
            db.session, actor=actor_named(username), org=org_coded(org_code), year=year, title_code=title_code, now=utc_now()
        )
    )
    click.echo(f"Granted {title_code} {year} to {len(awards)} participants")


@click.command("ranking-visibility")
@participant_options
@click.option("--hide/--show", "hide", required=True, help="Leave out of, or show in, public rankings.")
@with_appcontext
@refusals_as_messages
def ranking_visibility_command(volunteer_number, participant_id, hide) -> None:
    """Opt a participant out of public rankings, or back in (staff still see everyone)."""
    from ledger.rankings import set_ranking_opt_out

    participant = write_transaction(
        lambda: set_ranking_opt_out(
            db.session, participant_id=participant_named(volunteer_number, participant_id).id, opt_out=hide
        )
    )
    click.echo(f"{participant.display_name} is {'hidden from' if hide else 'shown in'} public rankings")


COMMANDS = (
    rank_command,
    stars_command,
    titles_command,
    unit_points_command,
    award_titles_command,
    ranking_visibility_command,
)
