"""One benchmark run: build the district, then measure every path against the raw database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

from flask_migrate import upgrade

from bench import dataset, http, measure
from bench.measure import AT_LEAST, AT_MOST, Bench, Row
from bench.raw import Raw
from bench.scales import Scale
from ledger import create_app
from ledger.db import db, write_transaction
from ledger.models import Account, OrgNode
from ledger.users import ensure_user, grant_role, issue_token


def run_bench(database_url: str, scale: Scale, *, reuse: bool = False, build_only: bool = False, progress=sys.stderr) -> list[Row]:
    """Build ``scale``'s district in the (empty or freshly migrated) database and measure every path.

    ``reuse`` measures the district an earlier run built and kept there; ``build_only`` builds and stops.
    """
    app = create_app(
        {
            "LEDGER_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": database_url,
            # One connection per concurrent writer, and a few to spare.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": measure.CONCURRENT_WRITERS + 4, "max_overflow": 4},
        }
    )
    raw = Raw(database_url)
    measures_http = bool(scale.http_seconds) and raw.dialect == "postgresql"
    if measures_http and not build_only and (missing := http.missing_tools()):
        # Said before the build and the other measurements, not after them.
        raise SystemExit(f"the HTTP measurements need {' and '.join(missing)}")
    rows: list[Row] = []
    with app.app_context():
        upgrade()
        if reuse:
            district = dataset.find()
        else:
            started = time.perf_counter()
            district = dataset.build(scale)
            built = time.perf_counter() - started
            rows.append(Row("build: history import (whole data set)", raw.dialect, district.entries / built, 0, "entries/s", None, AT_LEAST, None, f"{district.entries:,} entries in {built:,.0f} s"))
        if build_only:
            return rows
        bench = Bench(app, raw, district)
        raw.create_scratch([account_id for community in district.community_ids for account_id in bench.account_ids(community, 1_000)])
        try:
            for step in (
                lambda: measure.single_writes(bench, scale.single_writes),
                lambda: measure.concurrent_writes(bench, scale.writes_per_writer),
                lambda: measure.bulk_writes(bench, scale.bulk_batches),
                # In-process SQLite answers a primary-key lookup in microseconds: no yardstick for a service call.
                lambda: measure.balance_reads(bench, scale.lookups) if raw.dialect == "postgresql" else [],
                lambda: measure.ranking_reads(bench, scale.ranking_pages),
                lambda: export_rows(database_url, raw.dialect, district),
                lambda: http_rows(app, database_url, district, scale) if measures_http else [],
                lambda: measure.verify_run(bench),
            ):
                new = step()
                for row in new:
                    print(f"  {row.path}: ours {row.ours:,.3f} {row.unit}, raw {row.raw:,.3f}", file=progress, flush=True)
                rows += new
        finally:
            db.session.remove()
            raw.drop_scratch()
            db.engine.dispose()
    return rows


def export_rows(database_url: str, backend: str, district: dataset.District) -> list[Row]:
    """The annual export of a street and of the whole district, ours and raw, each in its own process."""
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for side, org_code in itertools.product(("ours", "raw"), (dataset.street_code(1), dataset.DISTRICT_CODE)):
            output = subprocess.run(
                [sys.executable, "-m", "bench.export", side, database_url, org_code, str(district.last_day.year), os.path.join(folder, "annual.xlsx")],
                capture_output=True, text=True, check=True,
            ).stdout
            figures[side, org_code] = json.loads(output)
    ours, raw = figures["ours", dataset.DISTRICT_CODE], figures["raw", dataset.DISTRICT_CODE]
    ours_street, raw_street = figures["ours", dataset.street_code(1)], figures["raw", dataset.street_code(1)]
    return [
        Row(
            f"annual export, participants sheet of the district ({ours['rows']:,} rows)",
            backend,
            ours["rows"] / ours["seconds"],
            raw["rows"] / raw["seconds"],
            "rows/s",
            (ours["rows"] / ours["seconds"]) / (raw["rows"] / raw["seconds"]),
            AT_LEAST,
            0.5,
        ),
        Row(
            f"annual export, peak memory: district ÷ a street ({ours_street['rows']:,} rows)",
            backend,
            ours["peak_rss_kib"] / 1024,
            raw["peak_rss_kib"] / 1024,
            "MiB",
            ours["peak_rss_kib"] / ours_street["peak_rss_kib"],
            AT_MOST,
            1.2,
            f"ratio: our district peak ÷ our street peak ({ours_street['peak_rss_kib'] / 1024:,.0f} MiB); "
            f"raw: {raw['peak_rss_kib'] / raw_street['peak_rss_kib']:.2f}",
        ),
    ]


def http_rows(app, database_url: str, district: dataset.District, scale: Scale) -> list[Row]:
    """Requests per second of the balance and ranking endpoints against the bare app's one SELECT."""
    community_id = district.community_ids[3 % len(district.community_ids)]
    bench = Bench(app, Raw(database_url), district)
    participant_id = bench.people_of(community_id)[0][0]
    session = db.session

    def staff_token():
        user = ensure_user(session, "bench-http-staff", "社区工作者")
        grant_role(session, user=user, role="community_staff", org=session.get(OrgNode, community_id))
        account_id = session.query(Account.id).filter(Account.participant_id == participant_id).scalar()
        return issue_token(session, user=user, name="bench", now=dt.datetime.now(dt.timezone.utc)).secret, account_id

    token, account_id = write_transaction(staff_token)
    environment = {
        "LEDGER_ENV": "production",
        "LEDGER_DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LEDGER_ID_NUMBER_KEY": secrets.token_urlsafe(48),
    }
    with http.served("bench.http:bare_app()", environment) as base:
        bare, bare_problems = http.requests_per_second(f"{base}/accounts/{account_id}", scale.http_seconds)
    rows = []
    with http.served("ledger:create_app()", environment) as base:
        for label, path in (
            ("balance endpoint", f"/api/v1/participants/{participant_id}/balance"),
            ("ranking endpoint (community, this year)", f"/api/v1/orgs/{community_id}/rankings"),
        ):
            ours, problems = http.requests_per_second(base + path, scale.http_seconds, token)
            note = "; ".join(filter(None, (problems, bare_problems and f"bare app: {bare_problems}")))
            rows.append(Row(f"HTTP {label}, gunicorn 2 workers", "postgresql", ours, bare, "requests/s", ours / bare, AT_LEAST, 0.5, note))
    return rows


def as_json(rows: list[Row], *, scale: Scale, command: str) -> str:
    return json.dumps(
        {
            "scale": dataclasses.asdict(scale),
            "command": command,
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "rows": [{**dataclasses.asdict(row), "met": row.met} for row in rows],
        },
        ensure_ascii=False,
        indent=2,
    )


def as_table(rows: list[Row]) -> str:
    """Return the rows as a Markdown table: path, ours, raw, ratio, target, met."""
    lines = ["| path | db | ours | raw | ratio | target | met | note |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "–" if row.ratio is None else f"{row.ratio:,.2f}"
        target = "–" if row.target is None else f"{row.direction} {row.target:g}"
        met = {True: "yes", False: "**no**", None: "–"}[row.met]
        raw = "–" if not row.raw else f"{row.raw:,.2f} {row.unit}"
        ours = "–" if not row.ours else f"{row.ours:,.2f} {row.unit}"
        lines.append(f"| {row.path} | {row.backend} | {ours} | {raw} | {ratio} | {target} | {met} | {row.note} |")
    return "\n".join(lines)
