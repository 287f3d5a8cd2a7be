"""Period totals move the standings once a statement on PostgreSQL, not once a row.

The bulk path writes a batch's day, month and year totals (thousands of rows) in one statement.
A row-level trigger set a new token once per row, which cost more than writing the rows; a
statement-level trigger reads the rows the statement wrote from its transition tables and sets
one token per org they name, in org order so that concurrent writers lock tokens alike. An
update moves the orgs of the totals whose earned points, minutes, org or key it changed: the
rows that differ between the old and new transition tables. SQLite has only row-level
triggers, which stay as they are.

Revision ID: e7a9c1d3f5b6
Revises: d6f8b0c2e4a5
Create Date: 2026-11-23

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e7a9c1d3f5b6'
down_revision = 'd6f8b0c2e4a5'
branch_labels = None
depends_on = None

#: What a ranking reads of a total, with its key: a row whose values all stay the same moves nothing.
RANKED = "account_id, period, starts_on, org_id, points_earned, service_minutes"
MOVE_ORGS = """
    INSERT INTO standings_version (org_id, token)
    SELECT org_id, (random() * 9.2e18)::bigint FROM ({orgs}) AS moved GROUP BY org_id ORDER BY org_id
    ON CONFLICT (org_id) DO UPDATE SET token = EXCLUDED.token
"""

UPGRADE = [
    "DROP TRIGGER period_total_moves_standings ON period_total",
    "DROP TRIGGER period_total_change_moves_standings ON period_total",
    "DROP FUNCTION ledger_total_moves_standings()",
    f"""
    CREATE FUNCTION ledger_totals_written_move_standings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {MOVE_ORGS.format(orgs="SELECT org_id FROM written_totals")};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION ledger_totals_changed_move_standings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {MOVE_ORGS.format(orgs=f'''
            (SELECT {RANKED} FROM old_totals EXCEPT SELECT {RANKED} FROM new_totals)
            UNION (SELECT {RANKED} FROM new_totals EXCEPT SELECT {RANKED} FROM old_totals)
        ''')};
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER period_total_insert_moves_standings AFTER INSERT ON period_total
        REFERENCING NEW TABLE AS written_totals
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_written_move_standings()
    """,
    """
    CREATE TRIGGER period_total_delete_moves_standings AFTER DELETE ON period_total
        REFERENCING OLD TABLE AS written_totals
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_written_move_standings()
    """,
    """
    CREATE TRIGGER period_total_update_moves_standings AFTER UPDATE ON period_total
        REFERENCING OLD TABLE AS old_totals NEW TABLE AS new_totals
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_changed_move_standings()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER period_total_update_moves_standings ON period_total",
    "DROP TRIGGER period_total_delete_moves_standings ON period_total",
    "DROP TRIGGER period_total_insert_moves_standings ON period_total",
    "DROP FUNCTION ledger_totals_changed_move_standings()",
    "DROP FUNCTION ledger_totals_written_move_standings()",
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
    """
    CREATE TRIGGER period_total_moves_standings AFTER INSERT OR DELETE ON period_total
        FOR EACH ROW EXECUTE FUNCTION ledger_total_moves_standings()
    """,
    """
    CREATE TRIGGER period_total_change_moves_standings AFTER UPDATE ON period_total
        FOR EACH ROW WHEN (OLD.points_earned IS DISTINCT FROM NEW.points_earned
            OR OLD.service_minutes IS DISTINCT FROM NEW.service_minutes OR OLD.org_id IS DISTINCT FROM NEW.org_id)
        EXECUTE FUNCTION ledger_total_moves_standings()
    """,
]


def run(statements: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in statements:
            bind.exec_driver_sql(statement)


def upgrade():
    run(UPGRADE)


def downgrade():
    run(DOWNGRADE)
