"""The benchmark at its small scale, on each backend, so that it never rots.

Only that every path runs, without errors, and leaves a ledger ``verify`` accepts: the ratios
of a run this small, on a machine shared with the rest of the suite, prove nothing.
"""

from __future__ import annotations

from bench.run import as_table, run_bench
from bench.scales import SMALL


def test_small_scale_runs_every_path_and_verify_passes(database_url):
    rows = run_bench(database_url, SMALL)

    table = as_table(rows)
    paths = {row.path for row in rows}
    assert {
        "one activity recorded, one commit each",
        "16 concurrent writers, one community",
        "16 concurrent writers, 16 communities",
        "history import, 1,000 activities per transaction",
        "event sign-in sheet, one transaction",
        "ranking page, top 50 of a street, this year (p50)",
        "ledger verify, whole ledger",
    } <= paths, table
    assert all(row.ours > 0 or row.path.startswith("annual export") for row in rows), table
    assert all("0 errors" in row.note for row in rows if "concurrent" in row.path), table
    assert "verify passes" in next(row.note for row in rows if row.path == "ledger verify, whole ledger"), table
