"""Recorded service (activities, events, self-report reviews), versioned rule sets, period totals.

Also gives ledger transactions the service minutes they record and the account whose service
it is, and lets a transaction that scores an activity stand without postings when the activity
earned no points (capped, or below the minimum): its breakdown still says why.

Revision ID: 1a6b999d016e
Revises: 03d1dbc5b498
Create Date: 2026-11-23

"""
import sqlalchemy as sa
from alembic import op

NEW_APPEND_ONLY_TABLES = ("activity", "activity_review", "service_event")

POSTGRESQL_UP = [
    *(
        statement
        for table in NEW_APPEND_ONLY_TABLES
        for statement in (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
        )
    ),
    """
    CREATE FUNCTION ledger_refuse_published_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'published' THEN
            RAISE EXCEPTION 'rule set version % is published and never changes; publish a new version', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER rule_set_version_published_frozen BEFORE UPDATE OR DELETE ON rule_set_version "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_published_change()",
    """
    CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tx_id bigint;
        total numeric;
        legs bigint;
        minutes bigint;
        activity bigint;
    BEGIN
        IF TG_TABLE_NAME = 'posting' THEN
            tx_id := NEW.transaction_id;
        ELSE
            tx_id := NEW.id;
        END IF;
        SELECT coalesce(sum(amount), 0), count(*) INTO total, legs FROM posting WHERE transaction_id = tx_id;
        SELECT service_minutes, activity_id INTO minutes, activity FROM ledger_transaction WHERE id = tx_id;
        IF NOT ((legs >= 2 AND total = 0) OR (legs = 0 AND (minutes <> 0 OR activity IS NOT NULL))) THEN
            RAISE EXCEPTION 'ledger transaction % is unbalanced: % postings summing to %', tx_id, legs, total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ledger_check_activity_exists() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.activity_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM activity WHERE id = NEW.activity_id) THEN
            RAISE EXCEPTION 'ledger transaction names activity %, which does not exist', NEW.activity_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER ledger_transaction_activity_exists BEFORE INSERT ON ledger_transaction "
    "FOR EACH ROW EXECUTE FUNCTION ledger_check_activity_exists()",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_transaction_activity_exists ON ledger_transaction",
    "DROP FUNCTION IF EXISTS ledger_check_activity_exists()",
    """
    CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tx_id bigint;
        total numeric;
        legs bigint;
    BEGIN
        IF TG_TABLE_NAME = 'posting' THEN
            tx_id := NEW.transaction_id;
        ELSE
            tx_id := NEW.id;
        END IF;
        SELECT coalesce(sum(amount), 0), count(*) INTO total, legs
          FROM posting WHERE transaction_id = tx_id;
        IF legs < 2 OR total <> 0 THEN
            RAISE EXCEPTION 'ledger transaction % is unbalanced: % postings summing to %', tx_id, legs, total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    "DROP TRIGGER IF EXISTS rule_set_version_published_frozen ON rule_set_version",
    "DROP FUNCTION IF EXISTS ledger_refuse_published_change()",
    *(
        statement
        for table in NEW_APPEND_ONLY_TABLES
        for statement in (
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        )
    ),
]
SQLITE_UP = [
    *(
        f"""
        CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} ON {table}
        BEGIN
            SELECT RAISE(ABORT, 'append-only: {operation} on {table} is refused; record a correction');
        END
        """
        for table in NEW_APPEND_ONLY_TABLES
        for operation in ("UPDATE", "DELETE")
    ),
    *(
        f"""
        CREATE TRIGGER rule_set_version_published_frozen_{operation.lower()} BEFORE {operation} ON rule_set_version
        WHEN OLD.status = 'published'
        BEGIN
            SELECT RAISE(ABORT, 'a published rule set version never changes; publish a new version');
        END
        """
        for operation in ("UPDATE", "DELETE")
    ),
    """
    CREATE TRIGGER ledger_transaction_activity_exists BEFORE INSERT ON ledger_transaction
    WHEN NEW.activity_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM activity WHERE id = NEW.activity_id)
    BEGIN
        SELECT RAISE(ABORT, 'ledger transaction names an activity that does not exist');
    END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_transaction_activity_exists",
    "DROP TRIGGER IF EXISTS rule_set_version_published_frozen_update",
    "DROP TRIGGER IF EXISTS rule_set_version_published_frozen_delete",
    *(
        f"DROP TRIGGER IF EXISTS {table}_append_only_{operation}"
        for table in NEW_APPEND_ONLY_TABLES
        for operation in ("update", "delete")
    ),
]


def run(statements_by_dialect: dict) -> None:
    bind = op.get_bind()
    for statement in statements_by_dialect[bind.dialect.name]:
        # psycopg reads % as a placeholder; PL/pgSQL's RAISE needs it literally.
        bind.exec_driver_sql(statement.replace("%", "%%") if bind.dialect.name == "postgresql" else statement)


def add_reference(table: str, column: str, referred: str) -> None:
    """Add a nullable integer column referring to ``referred.id``, altering the table in place.

    SQLite cannot add a constraint to an existing table, only a column that carries one;
    Alembic's batch mode would rebuild the table instead, dropping the append-only triggers.
    """
    name = op.f(f"fk_{table}_{column}_{referred}")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER CONSTRAINT {name} REFERENCES {referred} (id)")
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(name, table, referred, [column], ["id"])


# revision identifiers, used by Alembic.
revision = '1a6b999d016e'
down_revision = '03d1dbc5b498'
branch_labels = None
depends_on = None


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('period_total',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('points_spent', sa.BigInteger(), nullable=False),
    sa.Column('points_expired', sa.BigInteger(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('activity_count', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("period IN ('day', 'month')", name=op.f('ck_period_total_period')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_period_total_account_id_account')),
    sa.PrimaryKeyConstraint('account_id', 'period', 'starts_on', name=op.f('pk_period_total'))
    )
    op.create_table('rule_set_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'published') = (published_at IS NOT NULL)", name=op.f('ck_rule_set_version_published_has_time')),
    sa.CheckConstraint("status IN ('draft', 'published')", name=op.f('ck_rule_set_version_status')),
    sa.CheckConstraint('effective_to IS NULL OR effective_to >= effective_from', name=op.f('ck_rule_set_version_effective_period')),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f('fk_rule_set_version_created_by_id_app_user')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_rule_set_version_org_id_org_node')),
    sa.ForeignKeyConstraint(['published_by_id'], ['app_user.id'], name=op.f('fk_rule_set_version_published_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_set_version')),
    sa.UniqueConstraint('org_id', 'version', name=op.f('uq_rule_set_version_org_id_version'))
    )
    op.create_table('service_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('activity_type', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint('ended_at > started_at', name=op.f('ck_service_event_ends_after_start')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_service_event_org_id_org_node')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['app_user.id'], name=op.f('fk_service_event_recorded_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_event')),
    sa.UniqueConstraint('org_id', 'recorded_by_id', 'idempotency_key', name=op.f('uq_service_event_org_id_recorded_by_id_idempotency_key'))
    )
    op.create_table('activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('activity_type', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('travel_minutes', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('corrects_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('correction_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("source IN ('staff', 'event', 'self_report')", name=op.f('ck_activity_source')),
    sa.CheckConstraint('(corrects_id IS NULL) = (correction_reason IS NULL)', name=op.f('ck_activity_correction_has_reason')),
    sa.CheckConstraint('ended_at > started_at', name=op.f('ck_activity_ends_after_start')),
    sa.CheckConstraint('quantity IS NULL OR quantity > 0', name=op.f('ck_activity_quantity_positive')),
    sa.CheckConstraint('travel_minutes >= 0', name=op.f('ck_activity_travel_not_negative')),
    sa.ForeignKeyConstraint(['corrects_id'], ['activity.id'], name=op.f('fk_activity_corrects_id_activity')),
    sa.ForeignKeyConstraint(['event_id'], ['service_event.id'], name=op.f('fk_activity_event_id_service_event')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_activity_org_id_org_node')),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_activity_participant_id_participant')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['app_user.id'], name=op.f('fk_activity_recorded_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity')),
    sa.UniqueConstraint('corrects_id', name=op.f('uq_activity_corrects_id')),
    sa.UniqueConstraint('org_id', 'recorded_by_id', 'idempotency_key', name=op.f('uq_activity_org_id_recorded_by_id_idempotency_key'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_activity_participant_started', ['participant_id', 'started_at'], unique=False)

    op.create_table('activity_review',
    sa.Column('activity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('approved OR reason IS NOT NULL', name=op.f('ck_activity_review_rejection_has_reason')),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_activity_review_activity_id_activity')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['app_user.id'], name=op.f('fk_activity_review_reviewed_by_id_app_user')),
    sa.PrimaryKeyConstraint('activity_id', name=op.f('pk_activity_review'))
    )
    add_reference('app_user', 'participant_id', 'participant')
    op.create_index('uq_app_user_participant_id', 'app_user', ['participant_id'], unique=True)
    op.add_column('ledger_transaction', sa.Column('service_minutes', sa.BigInteger(), server_default='0', nullable=False))
    add_reference('ledger_transaction', 'subject_account_id', 'account')
    op.create_index(op.f('ix_ledger_transaction_subject_account_id'), 'ledger_transaction', ['subject_account_id'])
    op.create_index(op.f('ix_ledger_transaction_activity_id'), 'ledger_transaction', ['activity_id'])
    run({"postgresql": POSTGRESQL_UP, "sqlite": SQLITE_UP})
    # ### end Alembic commands ###


def downgrade():
    run({"postgresql": POSTGRESQL_DOWN, "sqlite": SQLITE_DOWN})
    # ### commands auto generated by Alembic - please adjust! ###
    # SQLite (3.35+) drops these columns in place; the append-only triggers do not refer to them.
    op.drop_index(op.f('ix_ledger_transaction_activity_id'), table_name='ledger_transaction')
    op.drop_index(op.f('ix_ledger_transaction_subject_account_id'), table_name='ledger_transaction')
    op.drop_column('ledger_transaction', 'subject_account_id')
    op.drop_column('ledger_transaction', 'service_minutes')
    op.drop_index('uq_app_user_participant_id', table_name='app_user')
    op.drop_column('app_user', 'participant_id')

    op.drop_table('activity_review')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_participant_started')
        batch_op.drop_index(batch_op.f('ix_activity_event_id'))

    op.drop_table('activity')
    op.drop_table('service_event')
    op.drop_table('rule_set_version')
    op.drop_table('period_total')
    # ### end Alembic commands ###
