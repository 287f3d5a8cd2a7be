"""``python -m bench --db URL --scale small|district``: build, measure, print the table, write JSON.

On PostgreSQL ``--db`` names the server (any database on it): the run creates a database of its
own, ``bench_<scale>``, and drops it at the end (``--keep`` leaves it). On SQLite it names a
file that must not exist yet; the run leaves it behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys

import psycopg
from sqlalchemy.engine import make_url

from bench.run import as_json, as_table, run_bench
from bench.scales import SCALES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="postgresql://user@host:port/any_database, or sqlite:///new-file.sqlite3")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--entries", type=int, help="history entries to build instead of the scale's own number")
    parser.add_argument("--years", type=int, help="years the history spans, ending this year, instead of the scale's own number")
    parser.add_argument("--json", dest="json_path", help="where to write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="leave the PostgreSQL database behind")
    parser.add_argument("--build-only", action="store_true", help="build the district and stop (with --keep, to measure later)")
    parser.add_argument("--reuse", action="store_true", help="measure the district a --keep run left, instead of building one")
    arguments = parser.parse_args(argv)
    scale = SCALES[arguments.scale]
    if arguments.entries:
        scale = dataclasses.replace(scale, entries=arguments.entries)
    if arguments.years:
        scale = dataclasses.replace(scale, years=arguments.years)
    url = make_url(arguments.db)
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    if url.get_backend_name() == "sqlite":
        if os.path.exists(url.database):
            parser.error(f"{url.database} exists; name a new file")
        rows = run_bench(arguments.db, scale, build_only=arguments.build_only)
    else:
        rows = _on_own_database(url, scale, keep=arguments.keep, reuse=arguments.reuse, build_only=arguments.build_only)
    print(as_table(rows))
    if arguments.json_path:
        with open(arguments.json_path, "w", encoding="utf-8") as target:
            target.write(as_json(rows, scale=scale, command=command))


def _on_own_database(server, scale, *, keep: bool, reuse: bool, build_only: bool):
    """Run on a PostgreSQL database of the benchmark's own, created for the run (or kept by an earlier one) and dropped after it."""
    name = f"bench_{scale.name}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    if not reuse:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = server.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        return run_bench(url, scale, reuse=reuse, build_only=build_only)
    finally:
        if not keep:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
