"""Replay proves scored entries reproducible; simulation re-scores a period under a draft."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from ledger.activities import Service, correct_activity, record_activity
from ledger.db import db
from ledger.models import APPEND_ONLY_TABLES, Account, AppUser, OrgNode, Transaction
from ledger.replay import replay_ledger
from ledger.ruleset_schema import default_rules_text, parse_rule_set
from ledger.simulate import simulate
from tests.helpers import triggers_dropped

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def season(session, write, street, actor_id, default_rules, make_volunteer):
    """Three volunteers' March: weekday and weekend patrols, a correction, one who hits the month cap."""
    people = [session.get(Account, make_volunteer()).participant_id for _ in range(3)]
    actor = lambda: session.get(AppUser, actor_id)  # noqa: E731 - re-read inside each write
    grid = lambda: session.get(OrgNode, street.grid)  # noqa: E731

    def record(person, day, hours, key, activity_type="patrol"):
        service = Service(person, activity_type, at(day, 9), at(day, 9) + dt.timedelta(hours=hours))
        return write(lambda: record_activity(session, actor=actor(), org=grid(), service=service, idempotency_key=key))

    for day in range(2, 28):  # the first volunteer patrols 6 hours a day: the 300-point month cap binds
        record(people[0], day, 6, f"busy-{day}")
    record(people[1], 7, 3, "weekend")  # a Saturday
    wrong = record(people[1], 10, 5, "wrong")
    corrected = Service(people[1], "patrol", at(10, 9), at(10, 11))
    write(
        lambda: correct_activity(
            session, actor=actor(), activity_id=wrong.activity.id, service=corrected, reason="结束时间录错", idempotency_key="fix"
        )
    )
    record(people[2], 12, 2, "micro", activity_type="micro_wish")
    return people


def test_replay_of_an_honest_ledger_finds_no_difference(session, season):
    report = replay_ledger(session)
    assert report.ok, report.problems
    assert report.entries == 26 + 1 + 1 + 1 + 1  # the corrected original stays on record, reversed


def test_replay_reports_a_breakdown_edited_behind_the_applications_back(app, session, season):
    edited, breakdown = session.execute(
        select(Transaction.id, Transaction.breakdown).where(Transaction.activity_id.is_not(None)).limit(1)
    ).one()
    forged = breakdown | {"steps": [step | {"rate": 20} if step["step"] == "base" else step for step in breakdown["steps"]]}
    db.session.rollback()
    with app.app_context(), db.engine.begin() as connection, triggers_dropped(connection, APPEND_ONLY_TABLES):
        connection.execute(update(Transaction.__table__).where(Transaction.__table__.c.id == edited).values(breakdown=forged))
    report = replay_ledger(session)
    assert [p.transaction_id for p in report.problems] == [edited]
    assert "step 3 of the breakdown" in report.problems[0].message


def test_the_verify_command_replays_on_request(runner, season):
    result = runner.invoke(args=["verify", "--replay"])
    assert result.exit_code == 0, result.output
    assert "Replayed 30 scored entries" in result.output


def test_simulating_the_rules_in_force_changes_nobody(session, street, season):
    report = simulate(
        session,
        org=session.get(OrgNode, street.community),
        draft=parse_rule_set(default_rules_text()),
        draft_name="same rules",
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 3, 31),
    )
    assert report.activities == 29
    assert not any(change.changed for change in report.participants)


def test_simulating_higher_patrol_points_shows_who_gains_and_where_the_cap_holds(session, street, season):
    rules = parse_rule_set(default_rules_text())
    patrol = dataclasses.replace(rules.activity_types["patrol"], points=20)
    richer = dataclasses.replace(rules, activity_types={**rules.activity_types, "patrol": patrol})
    report = simulate(
        session,
        org=session.get(OrgNode, street.community),
        draft=richer,
        draft_name="double patrol",
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 3, 31),
    )
    by_person = {change.participant_id: change for change in report.participants}
    busy, weekend, micro = season
    assert by_person[busy].before.points == by_person[busy].after.points == 300  # capped either way
    assert by_person[weekend].after.points == 2 * by_person[weekend].before.points
    assert not by_person[micro].changed


def test_the_simulate_command_prints_a_readable_comparison(runner, street, season, tmp_path):
    richer = tmp_path / "richer.yaml"
    richer.write_text(
        default_rules_text().replace("name: ", "name: 巡逻加分试行 ", 1).replace(
            "  patrol:\n    label: {zh: 巡逻, en: Patrol}\n    unit: hour\n    points: 10",
            "  patrol:\n    label: {zh: 巡逻, en: Patrol}\n    unit: hour\n    points: 20",
        ),
        encoding="utf-8",
    )
    result = runner.invoke(args=["rules", "simulate", "--org", "C1", "--file", str(richer), "--from", "2026-03-01", "--to", "2026-03-31"])
    assert result.exit_code == 0, result.output
    assert "nothing was written" in result.output
    assert "29 activities re-scored for 3 participants; 1 change" in result.output
    assert "积分 points" in result.output and "→" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "2026-03-31", "--to", "2026-03-01", "--draft", "1"], "end: must not be before the start"),
        (["--from", "2026-03-01", "--to", "2026-03-31"], "give either --draft VERSION_ID or --file DOCUMENT"),
        (["--from", "2026-03-01", "--to", "2026-03-31", "--draft", "999"], "draft: rule set version 999 does not exist"),
        (["--from", "2026-13-01", "--to", "2026-03-31", "--draft", "1"], "Invalid value for '--from'"),
    ],
)
def test_the_simulate_command_refuses_bad_arguments_clearly(runner, street, default_rules, arguments, message):
    result = runner.invoke(args=["rules", "simulate", "--org", "C1", *arguments])
    assert result.exit_code != 0 and message in result.output


def test_the_history_command_explains_each_entry_in_chinese_and_english(runner, session, season):
    from ledger.models import Volunteer

    number = session.scalar(select(Volunteer.volunteer_number).where(Volunteer.participant_id == season[1]))
    chinese = runner.invoke(args=["history", "--volunteer", number])
    assert chinese.exit_code == 0, chinese.output
    assert "周末 ×120%" in chinese.output and "reverse" in chinese.output and "结束时间录错" in chinese.output
    english = runner.invoke(args=["history", "--volunteer", number, "--language", "en"])
    assert "Weekend ×120%" in english.output


def test_the_history_command_names_an_unknown_volunteer(runner, street):
    result = runner.invoke(args=["history", "--volunteer", "V-404"])
    assert result.exit_code == 1 and "no volunteer has number V-404" in result.output
