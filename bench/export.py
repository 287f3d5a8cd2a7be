"""The raw side of the annual export: stream the year's aggregate per participant into XlsxWriter.

Run as its own process (``python -m bench.export URL YEAR PARTICIPANTS FILE``) so that its peak
resident memory is its own; it prints ``{"rows", "seconds", "peak_rss_kib"}`` as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from contextlib import closing

import xlsxwriter

from bench.raw import Raw

HEADERS = ("participant", "name", "points earned", "points spent", "service minutes", "activities")


def export(database_url: str, year: int, participants: int, path: str) -> dict:
    raw = Raw(database_url)
    started = time.perf_counter()
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = workbook.add_worksheet("annual")
    sheet.write_row(0, 0, HEADERS)
    mark = raw.mark
    query = (
        "SELECT participant.id, participant.display_name, period_total.points_earned, period_total.points_spent,"
        " period_total.service_minutes, period_total.activity_count"
        " FROM participant JOIN account ON account.participant_id = participant.id"
        f" LEFT JOIN period_total ON period_total.account_id = account.id AND period_total.period = 'year' AND period_total.starts_on = {mark}"
        f" ORDER BY participant.id LIMIT {mark}"
    )
    rows = 0
    with closing(raw.connect()) as connection:
        with closing(raw.streaming_cursor(connection)) as cursor:
            cursor.execute(query, (f"{year}-01-01", participants))
            for rows, row in enumerate(cursor, 1):
                sheet.write_row(rows, 0, row)
    workbook.close()
    return {
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


if __name__ == "__main__":
    database_url, year, participants, path = sys.argv[1:]
    print(json.dumps(export(database_url, int(year), int(participants), path)))
