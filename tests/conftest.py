"""Fixtures: every database test runs on SQLite and on PostgreSQL, each on a fresh database.

Each test run migrates one template database per backend (``ledger db upgrade``'s own
migrations, triggers and all), and each test process makes one copy of it per backend: a
file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL. Before every test the copy
is made fresh again: the file is copied anew; on PostgreSQL every table is emptied and the
migrations' own rows and sequence values are put back (as the superuser, with the ledger's
append-only triggers off for that one transaction), which takes a fraction of what creating a
database does. Since a process's copy of a backend keeps its name, one app per backend and
process serves every test (building an app's routes also takes longer than the reset); its
engine is disposed and its configuration restored after each test.

PostgreSQL is found at ``LEDGER_TEST_POSTGRES_URL`` (default: the local server, user
postgres). Without it the PostgreSQL half is skipped, except under ``CI=true``, where a
missing PostgreSQL fails the run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from ledger import create_app
from ledger.api.auth import limiter
from ledger.db import db, write_transaction
from ledger.identity import check_character
from ledger.models import AccountKind, OrgNode
from ledger.orgs import create_org_node
from ledger.participants import register_volunteer
from ledger.points import transfer
from ledger.transactions import participant_account, record_transaction, system_account
from ledger.users import ensure_user

#: Shared fixtures: the recording-service desk and resident, and the API users and caller.
pytest_plugins = ["tests.activity_fixtures", "tests.api_fixtures"]

settings.register_profile(
    "ledger", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
settings.load_profile("ledger")

BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
ID_NUMBER_KEY = "test-id-number-key"


def app_config(database_url: str) -> dict:
    return {
        "LEDGER_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-tests",
        "LEDGER_ID_NUMBER_KEY": ID_NUMBER_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "LEDGER_SQLITE_BUSY_TIMEOUT_MS": 30_000,
        "LEDGER_WRITE_RETRIES": 50,
        # Concurrency tests run twenty-odd threads, each with its own connection.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 24, "max_overflow": 8}
        | (
            # A test database is thrown away: its commits need not wait for the disk.
            {"connect_args": {"options": "-c synchronous_commit=off"}} if database_url.startswith("postgresql") else {}
        ),
    }


def migrate(database_url: str) -> None:
    """Run every migration on an empty database, as ``ledger db upgrade`` does."""
    from flask_migrate import upgrade

    app = create_app(app_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


class Databases:
    """Creates a migrated template per backend once, and a fresh copy of it per test."""

    def __init__(self, folder):
        self.folder = folder
        self.run = uuid.uuid4().hex[:8]
        self.counter = itertools.count()
        self.templates: dict[str, str] = {}
        self.postgres_problem: str | None = None
        self.postgres_copy: PostgresCopy | None = None

    def fresh(self, backend: str) -> str:
        if backend == "sqlite":
            return self._fresh_sqlite()
        return self._fresh_postgres()

    def empty(self, backend: str) -> str:
        """Return a database with no schema at all, for migration tests."""
        if backend == "sqlite":
            return f"sqlite:///{self.folder / f'empty-{next(self.counter)}.sqlite3'}"
        self._require_postgres()
        return self._create(f"ledger_test_{self.run}_{next(self.counter)}")

    def discard(self, url: str) -> None:
        if url.startswith("sqlite"):
            return  # the file lives in pytest's temporary folder
        name = make_url(url).database
        if self.postgres_copy is not None and name == self.postgres_copy.name:
            return  # reset before the next test, dropped with the template at the end
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.postgres_copy is not None:
            with self._admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.postgres_copy.name}" WITH (FORCE)')
        if "postgresql" in self.templates:
            self.discard(self.templates["postgresql"])

    def _fresh_sqlite(self) -> str:
        if "sqlite" not in self.templates:
            path = self.folder / "template.sqlite3"
            migrate(f"sqlite:///{path}")
            self.templates["sqlite"] = str(path)
        path = self.folder / "test.sqlite3"
        # Unlinked, not overwritten: a connection the last test left open keeps its own file.
        for leftover in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(self.templates["sqlite"], path)
        return f"sqlite:///{path}"

    def _fresh_postgres(self) -> str:
        template = make_url(self._require_postgres()).database
        if self.postgres_copy is None:
            url = self._create(f"ledger_test_{self.run}", template=template)
            self.postgres_copy = PostgresCopy.of(url)
        else:
            self.postgres_copy.reset()
        return self.postgres_copy.url

    def _require_postgres(self) -> str:
        """Return the migrated template's URL; skip the test (fail it under CI) without PostgreSQL."""
        if self.postgres_problem is None and "postgresql" not in self.templates:
            try:
                template = self._create(f"ledger_test_{self.run}_template")
                migrate(template)
                self.templates["postgresql"] = template
            except psycopg.OperationalError as error:
                self.postgres_problem = f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}"
        if self.postgres_problem:
            if IN_CI:
                pytest.fail(f"{self.postgres_problem} (CI=true: PostgreSQL tests must run)")
            pytest.skip(self.postgres_problem)
        return self.templates["postgresql"]

    def _create(self, name: str, template: str | None = None) -> str:
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return make_url(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)).set(
            database=name
        ).render_as_string(hide_password=False)

    def _admin(self):
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)


@dataclass(frozen=True)
class PostgresCopy:
    """A copy of the migrated template, and what it held when it was made, to reset it to."""

    url: str
    name: str
    tables: tuple[str, ...]
    #: Each table's rows as the migrations left them, in COPY's text format.
    rows: dict[str, bytes]
    #: Each sequence's last value, or None where none was taken yet.
    sequences: dict[str, int | None]

    @classmethod
    def of(cls, url: str) -> PostgresCopy:
        with psycopg.connect(cls._dsn(url), autocommit=True) as connection:
            tables = tuple(
                table
                for (table,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            )
            rows = {}
            for table in tables:
                with connection.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
                    data = b"".join(bytes(block) for block in copy)
                if data:
                    rows[table] = data
            sequences = dict(
                connection.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'").fetchall()
            )
        return cls(url, make_url(url).database, tables, rows, sequences)

    def reset(self) -> None:
        """Put every table and sequence back as the template had them; end what the last test left connected."""
        with psycopg.connect(self._dsn(self.url), autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            with connection.transaction():
                connection.execute("SET LOCAL session_replication_role = replica")  # no triggers, no foreign key checks
                connection.execute("TRUNCATE " + ", ".join(f'"{table}"' for table in self.tables))
                for table, data in self.rows.items():
                    with connection.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
                        copy.write(data)
                for sequence, last_value in self.sequences.items():
                    connection.execute("SELECT setval(%s, %s, %s)", (sequence, last_value or 1, last_value is not None))

    @staticmethod
    def _dsn(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


#: Marker → the backend whose run of a marked test is deselected.
SINGLE_BACKEND_MARKERS = {"postgresql_only": "sqlite", "sqlite_only": "postgresql"}


def pytest_collection_modifyitems(config, items):
    """Deselect the other backend's run of tests marked ``postgresql_only`` or ``sqlite_only``."""
    deselected = [
        item
        for item in items
        for marker, other in SINGLE_BACKEND_MARKERS.items()
        if item.get_closest_marker(marker) and other in item.callspec.id.split("-")
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    registry = Databases(tmp_path_factory.mktemp("databases"))
    yield registry
    registry.close()


@pytest.fixture(params=BACKENDS)
def database_url(request, databases):
    url = databases.fresh(request.param)
    yield url
    databases.discard(url)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, databases):
    url = databases.empty(request.param)
    yield url
    databases.discard(url)


@pytest.fixture
def make_app():
    """Return a callable that creates an app on a given database; its engines close afterwards."""
    made = []

    def make(database_url: str):
        made.append(create_app(app_config(database_url)))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


#: This process's app per test database URL (one per backend, see the module's docstring).
_apps: dict[str, Flask] = {}


@pytest.fixture
def app(database_url):
    if database_url not in _apps:
        _apps[database_url] = create_app(app_config(database_url))
    app = _apps[database_url]
    config = dict(app.config)
    limiter.reset()  # the login rate limit counts per test, as on an app of its own
    yield app
    app.config.clear()
    app.config.update(config)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.remove()


@pytest.fixture
def backend(database_url) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def write(session):
    """Run a piece of work in one committed write transaction, as the edges do."""
    return write_transaction


@dataclass(frozen=True)
class Street:
    """Ids of a small tree: district → street → two communities, with grids in the first."""

    district: int
    street: int
    community: int
    other_community: int
    grid: int
    subgrid: int


@pytest.fixture
def street(session, write) -> Street:
    def build():
        district = create_org_node(session, code="D", name="示范区", kind="district")
        street = create_org_node(session, code="S", name="城东街道", kind="street", parent=district)
        community = create_org_node(session, code="C1", name="幸福社区", kind="community", parent=street)
        other = create_org_node(session, code="C2", name="和平社区", kind="community", parent=street)
        grid = create_org_node(session, code="C1-G1", name="第一网格", kind="grid", parent=community)
        subgrid = create_org_node(session, code="C1-G1-1", name="第一微网格", kind="grid", parent=grid)
        return Street(district.id, street.id, community.id, other.id, grid.id, subgrid.id)

    return write(build)


@pytest.fixture
def actor_id(session, write) -> int:
    return write(lambda: ensure_user(session, "staff", "社区工作者").id)


_id_numbers = itertools.count(1)


def valid_id_number(birth: dt.date = dt.date(1980, 1, 1)) -> str:
    """Return a new ID number with a correct check character."""
    first = f"320102{birth:%Y%m%d}{next(_id_numbers) % 1000:03d}"
    return first + check_character(first)


@pytest.fixture
def make_volunteer(session, write, street):
    """Return a callable registering a volunteer; it returns the volunteer's account id."""
    numbers = itertools.count(1)

    def make(org_id: int | None = None, name: str = "李明") -> int:
        def register():
            org = session.get(OrgNode, org_id or street.grid)
            participant = register_volunteer(
                session,
                org=org,
                real_name=name,
                id_number=valid_id_number(),
                volunteer_number=f"V{next(numbers):05d}",
                registered_on=dt.date(2025, 3, 1),
                id_number_key=ID_NUMBER_KEY,
            )
            return participant_account(session, participant.id).id

        return write(register)

    return make


@pytest.fixture
def volunteer_account(make_volunteer) -> int:
    return make_volunteer()


@pytest.fixture
def issue_points(session, write, street, actor_id):
    """Return a callable that issues points from a community to an account (an earn)."""
    keys = itertools.count(1)

    def issue(account_id: int, amount: int, *, org_id: int | None = None, key: str | None = None):
        def earn():
            from ledger.models import AppUser

            org = session.get(OrgNode, org_id or street.community)
            issuance = system_account(session, org, AccountKind.ISSUANCE)
            return record_transaction(
                session,
                actor=session.get(AppUser, actor_id),
                org=org,
                kind="earn",
                legs=transfer(issuance.id, account_id, amount),
                business_date=dt.date(2026, 11, 1),
                idempotency_key=key or f"issue-{next(keys)}",
            ).transaction.id

        return write(earn)

    return issue


@pytest.fixture
def default_rules(session, write, street, actor_id) -> int:
    """Publish the default rule set at the district, in force everywhere below it; return its id."""
    from ledger.models import AppUser
    from ledger.rules import publish_default

    return write(
        lambda: publish_default(
            session,
            actor=session.get(AppUser, actor_id),
            org=session.get(OrgNode, street.district),
            now=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
        ).id
    )
