"""An import killed midway leaves nothing half-written; `ledger verify` passes; importing again completes it.

``ledger import`` runs as a process of its own against the test's database (a SQLite file, or
the test's PostgreSQL database), is killed with SIGKILL while it writes a large sign-in sheet,
and is then run again to the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from ledger.db import integer_sum
from ledger.models import Activity, Transaction
from ledger.verify import verify_ledger
from tests.conftest import ID_NUMBER_KEY

VOLUNTEERS = 10
DAYS = 20
#: What the sheet's first lines are written on: 2026-03-02, a Monday, and the days after.
FIRST_DAY = 2


def ledger_process(database_url: str, *args: str) -> subprocess.Popen:
    """Start ``ledger ARGS`` against the database, as an operator would from a shell."""
    environment = {
        **os.environ,
        "LEDGER_ENV": "testing",
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ID_NUMBER_KEY": ID_NUMBER_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from ledger.cli import main; main()", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_ledger(database_url: str, *args: str) -> tuple[int, str]:
    process = ledger_process(database_url, *args)
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def wait_for_line(process: subprocess.Popen, text: str) -> list[str]:
    """Read the process's output until a line containing ``text``; return what was read."""
    lines = []
    while True:
        line = process.stdout.readline()
        assert line, f"the process ended before printing {text!r}: {''.join(lines)}"
        lines.append(line)
        if text in line:
            return lines


def test_an_import_killed_midway_writes_nothing_and_importing_again_completes_it(
    session, database_url, make_volunteer, default_rules, tmp_path
):
    numbers = [f"V{index:05d}" for index in range(1, VOLUNTEERS + 1)]
    for _ in numbers:
        make_volunteer(name="李明")
    rows = [
        f"{number},李明,巡逻,2026-03-{FIRST_DAY + day:02d},09:00,10:00"
        for day in range(DAYS)
        for number in numbers
    ]
    sheet = tmp_path / "签到表.csv"
    sheet.write_text("志愿者编号,姓名,服务类型,服务日期,开始时间,结束时间\n" + "\n".join(rows), encoding="utf-8")
    arguments = ("import", "activities", str(sheet), "--org", "C1", "--import-good-rows", "--as", "staff")
    session.rollback()  # hold no transaction open while another process writes

    importing = ledger_process(database_url, *arguments)
    wait_for_line(importing, f"Importing {len(rows)} rows")
    time.sleep(1)  # well into the rows, well before the last
    importing.send_signal(signal.SIGKILL)
    output, _ = importing.communicate(timeout=60)

    assert importing.returncode == -signal.SIGKILL, f"the import ended before it was killed: {output}"
    assert session.scalar(select(func.count()).select_from(Activity)) == 0

    verified, report = run_ledger(database_url, "verify")
    assert verified == 0 and "OK: every chain, transaction and balance verifies." in report, report

    completed, report = run_ledger(database_url, *arguments)
    assert completed == 0 and f"Imported {len(rows)} of {len(rows)} rows." in report, report

    session.rollback()
    minutes = session.scalar(select(integer_sum(Transaction.service_minutes)).where(Transaction.kind == "earn"))
    assert (session.scalar(select(func.count()).select_from(Activity)), minutes) == (len(rows), 60 * len(rows))
    assert verify_ledger(session).ok
