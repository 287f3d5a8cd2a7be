"""The annual export of an org's participants, ours and raw, each run as its own process.

``python -m bench.export ours|raw URL ORG_CODE YEAR FILE`` writes the year's participants sheet
of the org to an XLSX file and prints ``{"rows", "seconds", "peak_rss_kib"}`` as JSON: a process
of its own, so that its peak resident memory is its own.

* ours: the product's live evaluation (year totals, window-function ranks, titles) through its
  constant-memory XLSX writer, as ``ledger export annual --live --sheet participants`` does;
* raw: one aggregate query over the org's participants' year totals, streamed straight into
  XlsxWriter in constant-memory mode.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
from contextlib import closing

import xlsxwriter

from bench.raw import Raw

HEADERS = ("participant", "name", "points earned", "points spent", "service minutes", "activities")


def ours(database_url: str, org_code: str, year: int, path: str) -> int:
    from ledger import create_app
    from ledger.annual import evaluation, tables
    from ledger.db import db
    from ledger.exports import write_xlsx
    from ledger.models import utc_now
    from ledger.orgs import org_by_code

    rows = 0

    def counted():
        nonlocal rows
        rows += 1

    app = create_app({"LEDGER_ENV": "development", "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context(), open(path, "wb") as target:
        org = org_by_code(db.session, org_code)
        result = evaluation(db.session, org=org, year=year, today=dt.date(year, 12, 31), live=True)
        write_xlsx(tables(result, "zh", sheet="participants", counted=counted), target, created=utc_now())
    return rows


def raw(database_url: str, org_code: str, year: int, path: str) -> int:
    database = Raw(database_url)
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = workbook.add_worksheet("annual")
    sheet.write_row(0, 0, HEADERS)
    mark = database.mark
    query = (
        "SELECT participant.id, participant.display_name, period_total.points_earned, period_total.points_spent,"
        " period_total.service_minutes, period_total.activity_count"
        f" FROM org_node AS root JOIN org_node AS place ON place.path LIKE root.path || {mark}"
        " JOIN participant ON participant.org_id = place.id"
        " JOIN account ON account.participant_id = participant.id"
        f" LEFT JOIN period_total ON period_total.account_id = account.id AND period_total.period = 'year' AND period_total.starts_on = {mark}"
        f" WHERE root.code = {mark} ORDER BY participant.id"
    )
    rows = 0
    with closing(database.connect()) as connection, closing(database.streaming_cursor(connection)) as cursor:
        cursor.execute(query, ("%", f"{year}-01-01", org_code))
        for rows, row in enumerate(cursor, 1):
            sheet.write_row(rows, 0, row)
    workbook.close()
    return rows


if __name__ == "__main__":
    side, database_url, org_code, year, path = sys.argv[1:]
    started = time.perf_counter()
    written = {"ours": ours, "raw": raw}[side](database_url, org_code, int(year), path)
    print(
        json.dumps(
            {
                "rows": written,
                "seconds": time.perf_counter() - started,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
