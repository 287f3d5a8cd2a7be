"""Standings versions: a token per org that triggers change whenever what a ranking reads changes.

A process keeps rankings computed from period totals while the tokens of the org's subtree
stand still. What a ranking reads of an org's people: their period totals (points earned,
service minutes; the org is their account's), their name and opt-out, and the category
tables (volunteer, party member, co-building unit). Every change to those sets a new random
token on the orgs of the participant's accounts, whatever client writes. Spending alone
changes no ranking, so a total whose earned points, minutes and org stay the same leaves the
token as it was.

Revision ID: d6f8b0c2e4a5
Revises: c5e7a9b1d3f4
Create Date: 2026-11-23

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd6f8b0c2e4a5'
down_revision = 'c5e7a9b1d3f4'
branch_labels = None
depends_on = None

#: Tables that say which category a participant ranks in, by their participant column.
CATEGORY_TABLES = ("volunteer", "party_member", "co_building_unit")
RANKED_TOTAL_CHANGED = (
    "OLD.points_earned IS DISTINCT FROM NEW.points_earned OR OLD.service_minutes IS DISTINCT FROM NEW.service_minutes "
    "OR OLD.org_id IS DISTINCT FROM NEW.org_id"
)
RANKED_PARTICIPANT_CHANGED = (
    "OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.ranking_opt_out IS DISTINCT FROM NEW.ranking_opt_out "
    "OR OLD.org_id IS DISTINCT FROM NEW.org_id"
)

POSTGRESQL_UP = [
    """
    CREATE FUNCTION ledger_move_standings(org integer) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO standings_version (org_id, token) VALUES (org, (random() * 9.2e18)::bigint)
        ON CONFLICT (org_id) DO UPDATE SET token = EXCLUDED.token;
    END $$
    """,
    """
    CREATE FUNCTION ledger_move_standings_of_participant(participant integer) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        org integer;
    BEGIN
        FOR org IN SELECT DISTINCT org_id FROM account WHERE participant_id = participant ORDER BY org_id LOOP
            PERFORM ledger_move_standings(org);
        END LOOP;
    END $$
    """,
    """
    CREATE FUNCTION ledger_total_moves_standings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'DELETE' THEN
            PERFORM ledger_move_standings(NEW.org_id);
        END IF;
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.org_id <> NEW.org_id) THEN
            PERFORM ledger_move_standings(OLD.org_id);
        END IF;
        RETURN NULL;
    END $$
    """,
    # TG_ARGV[0] names the column that holds the participant's id.
    """
    CREATE FUNCTION ledger_participant_moves_standings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            PERFORM ledger_move_standings_of_participant((to_jsonb(OLD) ->> TG_ARGV[0])::integer);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM ledger_move_standings_of_participant((to_jsonb(NEW) ->> TG_ARGV[0])::integer);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER period_total_moves_standings AFTER INSERT OR DELETE ON period_total
        FOR EACH ROW EXECUTE FUNCTION ledger_total_moves_standings()
    """,
    f"""
    CREATE TRIGGER period_total_change_moves_standings AFTER UPDATE ON period_total
        FOR EACH ROW WHEN ({RANKED_TOTAL_CHANGED}) EXECUTE FUNCTION ledger_total_moves_standings()
    """,
    f"""
    CREATE TRIGGER participant_moves_standings AFTER UPDATE ON participant
        FOR EACH ROW WHEN ({RANKED_PARTICIPANT_CHANGED}) EXECUTE FUNCTION ledger_participant_moves_standings('id')
    """,
    *(
        f"""
        CREATE TRIGGER {table}_moves_standings AFTER INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_participant_moves_standings('participant_id')
        """
        for table in CATEGORY_TABLES
    ),
]
POSTGRESQL_DOWN = [
    *(f"DROP TRIGGER IF EXISTS {table}_moves_standings ON {table}" for table in CATEGORY_TABLES),
    "DROP TRIGGER IF EXISTS participant_moves_standings ON participant",
    "DROP TRIGGER IF EXISTS period_total_change_moves_standings ON period_total",
    "DROP TRIGGER IF EXISTS period_total_moves_standings ON period_total",
    "DROP FUNCTION IF EXISTS ledger_participant_moves_standings()",
    "DROP FUNCTION IF EXISTS ledger_total_moves_standings()",
    "DROP FUNCTION IF EXISTS ledger_move_standings_of_participant(integer)",
    "DROP FUNCTION IF EXISTS ledger_move_standings(integer)",
]


def _sqlite_move(org_id: str) -> str:
    return (
        f"INSERT INTO standings_version (org_id, token) VALUES ({org_id}, random()) "
        "ON CONFLICT (org_id) DO UPDATE SET token = excluded.token;"
    )


def _sqlite_move_of_participant(participant_id: str) -> str:
    # WHERE true tells SQLite's parser the ON CONFLICT is the upsert's, not a join's.
    return (
        "INSERT INTO standings_version (org_id, token) "
        f"SELECT org_id, random() FROM (SELECT DISTINCT org_id FROM account WHERE participant_id = {participant_id}) WHERE true "
        "ON CONFLICT (org_id) DO UPDATE SET token = excluded.token;"
    )


def _sqlite_trigger(name: str, event: str, body: list[str], when: str | None = None) -> str:
    return f"CREATE TRIGGER {name} AFTER {event} FOR EACH ROW {f'WHEN {when} ' if when else ''}BEGIN {' '.join(body)} END"


SQLITE_UP = [
    _sqlite_trigger("period_total_insert_moves_standings", "INSERT ON period_total", [_sqlite_move("NEW.org_id")]),
    _sqlite_trigger("period_total_delete_moves_standings", "DELETE ON period_total", [_sqlite_move("OLD.org_id")]),
    _sqlite_trigger(
        "period_total_update_moves_standings",
        "UPDATE ON period_total",
        [_sqlite_move("OLD.org_id"), _sqlite_move("NEW.org_id")],
        RANKED_TOTAL_CHANGED.replace("IS DISTINCT FROM", "IS NOT"),
    ),
    _sqlite_trigger(
        "participant_moves_standings",
        "UPDATE ON participant",
        [_sqlite_move_of_participant("NEW.id")],
        RANKED_PARTICIPANT_CHANGED.replace("IS DISTINCT FROM", "IS NOT"),
    ),
    *(
        _sqlite_trigger(f"{table}_{event.lower()}_moves_standings", f"{event} ON {table}", body)
        for table in CATEGORY_TABLES
        for event, body in (
            ("INSERT", [_sqlite_move_of_participant("NEW.participant_id")]),
            ("DELETE", [_sqlite_move_of_participant("OLD.participant_id")]),
            ("UPDATE", [_sqlite_move_of_participant("OLD.participant_id"), _sqlite_move_of_participant("NEW.participant_id")]),
        )
    ),
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "period_total_insert_moves_standings",
        "period_total_delete_moves_standings",
        "period_total_update_moves_standings",
        "participant_moves_standings",
        *(f"{table}_{event}_moves_standings" for table in CATEGORY_TABLES for event in ("insert", "delete", "update")),
    )
]


def run(statements_by_dialect: dict) -> None:
    bind = op.get_bind()
    for statement in statements_by_dialect[bind.dialect.name]:
        bind.exec_driver_sql(statement)


def upgrade():
    op.create_table(
        'standings_version',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('token', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_standings_version_org_id_org_node')),
        sa.PrimaryKeyConstraint('org_id', name=op.f('pk_standings_version')),
    )
    run({"postgresql": POSTGRESQL_UP, "sqlite": SQLITE_UP})


def downgrade():
    run({"postgresql": POSTGRESQL_DOWN, "sqlite": SQLITE_DOWN})
    op.drop_table('standings_version')
