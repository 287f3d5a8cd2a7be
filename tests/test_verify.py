"""`ledger verify` proves an honest ledger and names what was changed behind its back."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ledger import verify
from ledger.errors import InvalidInput
from ledger.models import Posting, Transaction, utc_now
from ledger.transactions import period_effects, period_starts
from ledger.verify import parse_checkpoint, take_checkpoint, verify_ledger
from tests.helpers import reverse, spend, tamper


@pytest.fixture
def history(session, write, street, actor_id, make_volunteer, issue_points) -> list[int]:
    """Five transactions over two communities, a spend and a reversal among them."""
    here, there = make_volunteer(), make_volunteer(org_id=street.other_community)
    ids = [issue_points(here, 40), issue_points(there, 25, org_id=street.other_community), issue_points(here, 10)]
    ids.append(write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=here, amount=15, key="s")).transaction.id)
    ids.append(write(lambda: reverse(session, actor_id=actor_id, transaction_id=ids[2], key="r")).transaction.id)
    return ids


def problems_by_check(report) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for problem in report.problems:
        grouped.setdefault(problem.check, []).append(problem)
    return grouped


def test_an_honest_ledger_verifies(session, history):
    report = verify_ledger(session)
    assert report.ok, report.problems
    assert (report.transactions, report.postings) == (5, 10)


def test_an_amount_edited_by_raw_sql_is_found_and_its_transaction_named(app, session, history):
    edited = history[2]
    tamper(app, f"UPDATE posting SET amount = amount * 2 WHERE transaction_id = {edited} AND amount > 0")
    report = verify_ledger(session)
    assert not report.ok
    assert report.first_bad_transaction().transaction_id == edited
    checks = problems_by_check(report)
    assert {p.transaction_id for p in checks["hash"]} == {edited}
    assert {p.transaction_id for p in checks["zero_sum"]} == {edited}


def test_a_consistent_forgery_of_amounts_and_balances_is_still_caught_by_the_hash(app, session, history):
    edited = history[0]
    postings = session.execute(select(Posting.account_id, Posting.amount).where(Posting.transaction_id == edited)).all()
    # Double both legs and every balance and total that follows them, so all but the hash agree again.
    statements = [f"UPDATE posting SET amount = amount * 2 WHERE transaction_id = {edited}"]
    for account_id, amount in postings:
        statements += [
            f"UPDATE posting SET balance_after = balance_after + {amount} WHERE account_id = {account_id}",
            f"UPDATE account SET balance = balance + {amount} WHERE id = {account_id}",
            # The edited transaction's day and month start on 1 November, its year on 1 January.
            f"UPDATE period_total SET points_earned = points_earned + {amount} "
            f"WHERE account_id = {account_id} AND starts_on IN ('2026-11-01', '2026-01-01')",
        ]
    tamper(app, *statements)
    report = verify_ledger(session)
    # Later links of those accounts fail too: their hashes cover the balances they left.
    assert {p.check for p in report.problems} == {"hash"}
    assert report.first_bad_transaction().transaction_id == edited


def test_an_edited_memo_is_found(app, session, history):
    tamper(app, f"UPDATE ledger_transaction SET memo = 'nothing to see' WHERE id = {history[4]}")
    report = verify_ledger(session)
    assert [(p.check, p.transaction_id) for p in report.problems] == [("hash", history[4])]


def test_an_edited_breakdown_is_found_even_when_it_is_no_longer_json(app, session, history):
    tamper(app, f"""UPDATE ledger_transaction SET breakdown = '{{"points": 999}}' WHERE id = {history[1]}""")
    report = verify_ledger(session)
    assert [(p.check, p.transaction_id) for p in report.problems] == [("hash", history[1])]
    if session.get_bind().dialect.name == "sqlite":  # PostgreSQL's json type refuses what is not JSON
        tamper(app, f"UPDATE ledger_transaction SET breakdown = 'points: 999' WHERE id = {history[1]}")
        report = verify_ledger(session)
        assert [(p.check, p.transaction_id) for p in report.problems] == [("hash", history[1])]


def test_an_edited_period_total_is_found(app, session, history):
    account_id = session.scalar(select(Posting.account_id).where(Posting.transaction_id == history[0], Posting.amount > 0))
    tamper(app, f"UPDATE period_total SET points_spent = points_spent + 7 WHERE account_id = {account_id} AND period = 'month'")
    [problem] = verify_ledger(session).problems
    assert (problem.check, problem.account_id) == ("period_total", account_id)
    assert "points_spent 22 (postings say 15)" in problem.message


@pytest.mark.parametrize("in_memory, per_range", [(1, 1), (3, 2), (4, 10)])
def test_period_totals_set_aside_on_disk_by_account_range_are_checked_the_same(
    app, session, history, make_volunteer, monkeypatch, in_memory, per_range
):
    here, there = (
        session.scalar(select(Posting.account_id).where(Posting.transaction_id == history[index], Posting.amount > 0))
        for index in (0, 1)
    )
    idle = make_volunteer()  # no postings, so no totals
    tamper(
        app,
        f"UPDATE period_total SET points_spent = points_spent + 7 WHERE account_id = {here} AND period = 'month'",
        f"DELETE FROM period_total WHERE account_id = {there} AND period = 'year'",
        (
            "INSERT INTO period_total (account_id, period, starts_on, org_id, points_earned, points_spent, points_expired, "
            f"service_minutes, activity_count) SELECT id, 'day', '2026-01-05', org_id, 3, 0, 0, 0, 0 FROM account WHERE id = {idle}"
        ),
    )
    in_one_go = verify_ledger(session).problems
    monkeypatch.setattr(verify, "TOTALS_IN_MEMORY", in_memory)
    monkeypatch.setattr(verify, "TOTALS_PER_RANGE", per_range)

    problems = verify_ledger(session).problems
    assert sorted((p.account_id, p.message) for p in problems) == sorted((p.account_id, p.message) for p in in_one_go)
    assert {(p.check, p.account_id, p.message.split()[0]) for p in problems} == {
        ("period_total", here, "month"),
        ("period_total", there, "year"),
        ("period_total", idle, "day"),
    }


def test_an_edited_cached_balance_is_found(app, session, history):
    account_id = session.scalar(select(Posting.account_id).where(Posting.transaction_id == history[0], Posting.amount > 0))
    tamper(app, f"UPDATE account SET balance = balance + 100 WHERE id = {account_id}")
    checks = problems_by_check(verify_ledger(session))
    assert [p.account_id for p in checks["cached_balance"]] == [account_id]
    assert "sum to 100" in checks["zero_sum"][0].message


def delete_last_link(session, chain_id: int) -> list[str]:
    """Return the SQL that removes a chain's last link and covers its tracks everywhere else."""
    last = session.scalar(select(Transaction).where(Transaction.chain_id == chain_id).order_by(Transaction.seq.desc()).limit(1))
    statements = [
        f"UPDATE account SET balance = balance - {posting.amount}, version = version - 1 WHERE id = {posting.account_id}"
        for posting in last.postings
    ]
    effects = period_effects(
        counted_kind=last.reverses.kind if last.reverses else last.kind,
        participant_postings=[(p.account_id, p.amount) for p in last.postings if p.account.kind == "participant"],
        subject_account_id=last.subject_account_id,
        service_minutes=last.service_minutes,
        activity_count=0,
    )
    for account_id, changes in effects.items():
        undo = ", ".join(f"{name} = {name} - {change}" for name, change in changes.items())
        for period, starts_on in period_starts(last.business_date):
            statements.append(
                f"UPDATE period_total SET {undo} WHERE account_id = {account_id} "
                f"AND period = '{period}' AND starts_on = '{starts_on.isoformat()}'"
            )
    statements += [
        f"DELETE FROM posting WHERE transaction_id = {last.id}",
        f"DELETE FROM ledger_transaction WHERE id = {last.id}",
        f"UPDATE chain_head SET seq = seq - 1, head_hash = '{last.prev_hash}' WHERE org_id = {chain_id}",
    ]
    return statements


def test_a_deleted_tail_passes_a_plain_verify_but_not_one_against_a_checkpoint(app, session, street, history):
    checkpoint = take_checkpoint(session, now=utc_now())
    tamper(app, *delete_last_link(session, street.community))
    assert verify_ledger(session).ok  # the intruder covered every track inside the database
    report = verify_ledger(session, checkpoint=checkpoint)
    [problem] = report.problems
    assert problem.check == "checkpoint" and problem.chain_id == street.community
    assert "tail was deleted" in problem.message


def test_a_rewritten_tail_is_found_against_a_checkpoint(app, session, street, issue_points, history):
    checkpoint = take_checkpoint(session, now=utc_now())
    account_id = session.scalar(select(Posting.account_id).where(Posting.transaction_id == history[0], Posting.amount > 0))
    tamper(app, *delete_last_link(session, street.community))
    # Write a different link in its place through the application: a well-formed chain again.
    issue_points(account_id, 3, key="rewritten")
    assert verify_ledger(session).ok
    [problem] = verify_ledger(session, checkpoint=checkpoint).problems
    assert "rewritten" in problem.message


def test_a_checkpoint_lists_every_chain_head(session, street, history):
    checkpoint = take_checkpoint(session, now=utc_now())
    heads = {entry["org_code"]: entry["seq"] for entry in checkpoint["chains"]}
    assert heads == {"D": 0, "S": 0, "C1": 4, "C2": 1}
    assert parse_checkpoint(json.dumps(checkpoint)) == checkpoint


@pytest.mark.parametrize(
    ("text_", "field"),
    [
        ("not json", "checkpoint"),
        ('{"format": "something else", "chains": []}', "checkpoint"),
        ('{"format": "volunteer-points-ledger/checkpoint/1"}', "checkpoint.chains"),
        ('{"format": "volunteer-points-ledger/checkpoint/1", "chains": [{"chain_id": 1}]}', "checkpoint.chains[0]"),
    ],
)
def test_a_malformed_checkpoint_is_refused_with_a_clear_error(text_, field):
    with pytest.raises(InvalidInput) as refused:
        parse_checkpoint(text_)
    assert refused.value.field == field


def test_the_verify_command_reports_ok_and_exits_zero(runner, history):
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0, result.output
    assert "Checked 4 chains, 5 transactions, 10 postings" in result.output
    assert "OK" in result.output


def test_the_verify_command_names_the_first_bad_transaction_and_exits_non_zero(app, runner, history):
    tamper(app, f"UPDATE posting SET amount = amount + 1 WHERE transaction_id = {history[1]} AND amount > 0")
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 1
    assert f"FIRST BAD TRANSACTION: id {history[1]}" in result.output


def test_checkpoint_then_verify_against_it_from_the_command_line(app, runner, session, street, history, tmp_path):
    path = tmp_path / "heads.json"
    written = runner.invoke(args=["checkpoint", "--output", str(path)])
    assert written.exit_code == 0 and "4 chains" in written.output
    assert runner.invoke(args=["verify", "--checkpoint", str(path)]).exit_code == 0
    tamper(app, *delete_last_link(session, street.community))
    failed = runner.invoke(args=["verify", "--checkpoint", str(path)])
    assert failed.exit_code == 1 and "tail was deleted" in failed.output


def test_verify_with_a_malformed_checkpoint_file_says_why(runner, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    result = runner.invoke(args=["verify", "--checkpoint", str(path)])
    assert result.exit_code == 1
    assert "checkpoint: is not JSON" in result.output
