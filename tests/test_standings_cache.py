"""Rankings kept in the process while their org subtree's standings tokens stand still.

Every test compares what a warm cache answers with what the totals say when read afresh, after
a change made through the service layer or around it in plain SQL, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from ledger.activities import Service
from ledger.bulk import HistoryLine, import_history
from ledger.db import db
from ledger.models import AppUser, OrgNode
from ledger.orgs import create_org_node
from ledger.participants import register_employer_unit
from ledger.rankings import STANDINGS_CACHE, Period, StandingsCache, _Standings, own_rank, ranking, set_ranking_opt_out
from tests.activity_fixtures import at
from tests.helpers import earn, participant_of, reverse, spend

YEAR_2026 = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
_keys = itertools.count(1)


def _everything(session, org_id, category="volunteer"):
    """Return both views of the year's ranking and everyone's own rank, as plain values."""
    org = session.get(OrgNode, org_id)
    views = {
        public: ranking(session, org=org, category=category, period=YEAR_2026, public=public, limit=200)
        for public in (True, False)
    }
    people = [row.participant_id for row in views[False].rows]
    return (
        {
            public: (page.ranked, [(row.rank, row.participant_id, row.name, row.points) for row in page.rows])
            for public, page in views.items()
        },
        {
            (pid, public): own_rank(session, org=org, category=category, period=YEAR_2026, participant_id=pid, public=public)
            for pid in people
            for public in (True, False)
        },
    )


def _afresh(session, org_id, category="volunteer"):
    STANDINGS_CACHE.clear()
    return _everything(session, org_id, category)


def _token_of(session, org_id):
    return session.execute(text("SELECT token FROM standings_version WHERE org_id = :org"), {"org": org_id}).scalar()


class _Statements:
    """Keep the statements the session's engine runs, with their parameters."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    @property
    def count(self) -> int:
        return len(self.seen)

    def _seen(self, _connection, _cursor, sql, parameters, *_):
        self.seen.append((sql, parameters))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_):
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_a_kept_ranking_is_answered_with_one_statement_until_a_write_changes_its_tokens(
    session, write, street, actor_id, make_volunteer
):
    accounts = [make_volunteer() for _ in range(3)]
    for account_id, points in zip(accounts, (30, 50, 20)):
        write(lambda: earn(session, actor_id, street.community, account_id, points, dt.date(2026, 3, 2)))
    community, first = session.get(OrgNode, street.community), participant_of(session, accounts[0])
    STANDINGS_CACHE.clear()
    ranking(session, org=community, category="volunteer", period=YEAR_2026, public=True)

    with _Statements(db.engine) as statements:
        page = ranking(session, org=community, category="volunteer", period=YEAR_2026, public=True)
        rank = own_rank(session, org=community, category="volunteer", period=YEAR_2026, participant_id=first, public=False)
    assert statements.count == 2  # the subtree's tokens, once for each call
    assert [row.points for row in page.rows] == [50, 30, 20] and rank == (2, 3)

    # Spending changes no ranking, so once the day's totals exist it leaves the token as it was.
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=accounts[1], amount=5, key="tea"))
    token = _token_of(session, street.grid)
    write(lambda: spend(session, actor_id=actor_id, org_id=street.community, account_id=accounts[1], amount=40, key="treat"))
    assert _token_of(session, street.grid) == token

    write(lambda: earn(session, actor_id, street.community, accounts[2], 40, dt.date(2026, 3, 3)))
    assert _token_of(session, street.grid) != token
    page = ranking(session, org=community, category="volunteer", period=YEAR_2026, public=True)
    assert [row.points for row in page.rows] == [60, 50, 30]


def test_after_a_write_a_ranking_reads_again_only_the_totals_of_the_org_it_moved(
    session, write, street, actor_id, make_volunteer
):
    here, there = make_volunteer(), make_volunteer(org_id=street.other_community)
    write(lambda: earn(session, actor_id, street.community, here, 30, dt.date(2026, 3, 2)))
    write(lambda: earn(session, actor_id, street.other_community, there, 50, dt.date(2026, 3, 2)))
    whole_street = session.get(OrgNode, street.street)
    ranking(session, org=whole_street, category="volunteer", period=YEAR_2026, public=False)

    write(lambda: earn(session, actor_id, street.community, here, 40, dt.date(2026, 3, 3)))
    with _Statements(db.engine) as statements:
        page = ranking(session, org=whole_street, category="volunteer", period=YEAR_2026, public=False)

    assert [(row.participant_id, row.points) for row in page.rows] == [
        (participant_of(session, here), 70),
        (participant_of(session, there), 50),
    ]
    [(_, parameters)] = [(sql, parameters) for sql, parameters in statements.seen if "FROM period_total" in sql]
    orgs = set(vars(street).values())
    assert {value for value in (parameters.values() if isinstance(parameters, dict) else parameters) if value in orgs} == {
        street.grid
    }


OPERATIONS = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 4), st.integers(1, 40)),
    st.tuples(st.just("earn elsewhere"), st.integers(0, 4), st.integers(1, 40)),
    st.tuples(st.just("spend"), st.integers(0, 4), st.integers(1, 10)),
    st.tuples(st.just("reverse last"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("opt out"), st.integers(0, 4), st.booleans()),
    st.tuples(st.just("rename in SQL"), st.integers(0, 4), st.integers(0, 9)),
    st.tuples(st.just("add points in SQL"), st.integers(0, 4), st.integers(-5, 5)),
    st.tuples(st.just("import"), st.integers(0, 4), st.integers(1, 6)),
    st.tuples(st.just("remove year total in SQL"), st.integers(0, 4), st.just(0)),
)


@settings(max_examples=6, deadline=None)
@given(st.lists(OPERATIONS, min_size=1, max_size=12))
def test_a_warm_cache_always_answers_what_the_totals_say(
    session, write, street, actor_id, make_volunteer, default_rules, operations
):
    community = write(
        lambda: (
            create_org_node(
                session, code=f"K{next(_keys)}", name="缓存社区", kind="community", parent=session.get(OrgNode, street.street)
            ).id
        )
    )
    grid = write(
        lambda: (
            create_org_node(session, code=f"K{next(_keys)}", name="网格", kind="grid", parent=session.get(OrgNode, community)).id
        )
    )
    # Four live in the community (one in its grid), one elsewhere and served here.
    accounts = [make_volunteer(org_id=org_id) for org_id in (community, community, community, grid, street.other_community)]
    for account_id in accounts:
        write(lambda: earn(session, actor_id, community, account_id, 50, dt.date(2026, 2, 1)))
    last_earned: dict[int, int] = {}

    for step, (operation, person, amount) in enumerate(operations):
        _everything(session, community)  # warm
        _everything(session, street.street)
        account_id, pid = accounts[person], participant_of(session, accounts[person])
        if operation == "earn":
            last_earned[person] = write(lambda: earn(session, actor_id, community, account_id, amount, dt.date(2026, 5, 1))).id
        elif operation == "earn elsewhere":
            write(lambda: earn(session, actor_id, street.other_community, account_id, amount, dt.date(2026, 6, 1)))
        elif operation == "spend":
            write(
                lambda: spend(
                    session, actor_id=actor_id, org_id=community, account_id=account_id, amount=amount, key=f"s{next(_keys)}"
                )
            )
        elif operation == "reverse last" and person in last_earned:
            write(lambda: reverse(session, actor_id=actor_id, transaction_id=last_earned.pop(person), key=f"r{next(_keys)}"))
        elif operation == "opt out":
            write(lambda: set_ranking_opt_out(session, participant_id=pid, opt_out=amount))
        elif operation == "rename in SQL":
            write(
                lambda: session.execute(
                    text("UPDATE participant SET display_name = :name WHERE id = :id"), {"name": f"改名{amount}", "id": pid}
                )
            )
        elif operation == "add points in SQL":
            write(
                lambda: session.execute(
                    text(
                        "UPDATE period_total SET points_earned = points_earned + :points WHERE account_id = :id AND period = 'year'"
                    ),
                    {"points": amount, "id": account_id},
                )
            )
        elif operation == "import":
            # The bulk path, three hours a step (as long as the longest import lasts, so that none overlap);
            # the one who lives elsewhere is imported in their own community.
            started_at = at("2026-07-01 09:00") + dt.timedelta(hours=3 * step)
            history = HistoryLine(
                f"h{next(_keys)}",
                street.other_community if person == 4 else community,
                Service(pid, "patrol", started_at, started_at + dt.timedelta(minutes=30 * amount)),
            )
            write(lambda: import_history(session, actor=session.get(AppUser, actor_id), lines=[history]))
        elif operation == "remove year total in SQL":
            write(
                lambda: session.execute(
                    text("DELETE FROM period_total WHERE account_id = :id AND period = 'year'"), {"id": account_id}
                )
            )
        for org_id in (community, street.street):
            kept = _everything(session, org_id)
            assert kept == _afresh(session, org_id), f"after step {step}: {operation}"


def test_joining_a_category_moves_the_rankings_of_the_accounts_org(session, write, street, actor_id, make_volunteer):
    account_id = make_volunteer(name="王芳")
    write(lambda: earn(session, actor_id, street.community, account_id, 30, dt.date(2026, 4, 1)))
    pid = participant_of(session, account_id)
    assert _everything(session, street.community, "party_member")[0][False] == (0, [])

    employer_id = write(lambda: register_employer_unit(session, org=session.get(OrgNode, street.street), name="城东供电所").id)
    # The volunteer reports in as a party member too: a row of the party-member table, written in plain SQL.
    write(
        lambda: session.execute(
            text(
                "INSERT INTO party_member (participant_id, employer_unit_id, reported_on) VALUES (:id, :employer, '2026-01-05')"
            ),
            {"id": pid, "employer": employer_id},
        )
    )
    kept = _everything(session, street.community, "party_member")
    assert kept == _afresh(session, street.community, "party_member")
    assert [row[1] for row in kept[0][False][1]] == [pid]


def test_a_ranking_read_inside_a_transaction_that_rolls_back_is_never_served_again(
    session, write, street, actor_id, make_volunteer
):
    account_id = make_volunteer()
    write(lambda: earn(session, actor_id, street.community, account_id, 30, dt.date(2026, 4, 1)))
    before = _everything(session, street.community)

    earn(session, actor_id, street.community, account_id, 70, dt.date(2026, 4, 2))
    assert _everything(session, street.community)[0][False][1][0][3] == 100  # this transaction sees its own write
    session.rollback()

    assert _everything(session, street.community) == before == _afresh(session, street.community)


def test_the_cache_forgets_the_rankings_used_longest_ago_and_keeps_none_larger_than_it():
    cache = StandingsCache(max_people=3)

    def people(count):
        return lambda: _Standings([(pid, "名", False, 10, 0) for pid in range(count)])

    first = cache.get(("a",), (1,), people(2))
    assert cache.get(("a",), (1,), people(2)) is first  # kept
    assert cache.get(("a",), (2,), people(2)) is not first  # another token: read afresh
    cache.get(("b",), (1,), people(1))
    cache.get(("a",), (2,), people(2))  # used last
    cache.get(("c",), (1,), people(1))  # four people: "b" goes
    b = cache.get(("b",), (1,), people(1))
    assert cache.get(("b",), (1,), people(1)) is b
    big = cache.get(("d",), (1,), people(4))
    assert cache.get(("d",), (1,), people(4)) is not big  # larger than the cache: never kept


@pytest.mark.parametrize("table", ["volunteer", "party_member", "co_building_unit", "participant", "period_total"])
def test_every_table_a_ranking_reads_has_a_trigger_that_moves_the_standings(session, backend, table):
    if backend == "postgresql":
        names = (
            session.execute(
                text("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:table AS regclass) AND tgname LIKE '%moves_standings'"),
                {"table": table},
            )
            .scalars()
            .all()
        )
    else:
        names = (
            session.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table AND name LIKE '%moves_standings'"
                ),
                {"table": table},
            )
            .scalars()
            .all()
        )
    assert names
