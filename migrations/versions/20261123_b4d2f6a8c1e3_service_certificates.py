"""Service certificates (志愿服务记录证明): what each certified, with its number and verification code; append-only.

Revision ID: b4d2f6a8c1e3
Revises: 9e1a7c3b5d20
Create Date: 2026-11-23

"""
import sqlalchemy as sa
from alembic import op

TABLE = "service_certificate"

POSTGRESQL_UP = [
    f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
]
POSTGRESQL_DOWN = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
]
SQLITE_UP = [
    f"""
    CREATE TRIGGER {TABLE}_append_only_{operation.lower()} BEFORE {operation} ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, 'append-only: {operation} on {TABLE} is refused');
    END
    """
    for operation in ("UPDATE", "DELETE")
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS {TABLE}_append_only_{operation}" for operation in ("update", "delete")]


def run(statements_by_dialect: dict) -> None:
    bind = op.get_bind()
    for statement in statements_by_dialect[bind.dialect.name]:
        bind.exec_driver_sql(statement)


# revision identifiers, used by Alembic.
revision = 'b4d2f6a8c1e3'
down_revision = '9e1a7c3b5d20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('service_certificate',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('service_minutes', sa.BigInteger(), nullable=False),
    sa.Column('activity_count', sa.Integer(), nullable=False),
    sa.Column('certified_digest', sa.String(length=64), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint('period_to >= period_from', name=op.f('ck_service_certificate_period_runs_forward')),
    sa.CheckConstraint('service_minutes > 0 AND activity_count > 0', name=op.f('ck_service_certificate_certifies_service')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['app_user.id'], name=op.f('fk_service_certificate_issued_by_id_app_user')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_service_certificate_org_id_org_node')),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_service_certificate_participant_id_participant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_certificate')),
    sa.UniqueConstraint('code', name=op.f('uq_service_certificate_code')),
    sa.UniqueConstraint('number', name=op.f('uq_service_certificate_number')),
    sa.UniqueConstraint('org_id', 'issued_by_id', 'idempotency_key', name=op.f('uq_service_certificate_org_id_issued_by_id_idempotency_key'))
    )
    with op.batch_alter_table('service_certificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_certificate_participant_id'), ['participant_id'], unique=False)

    run({"postgresql": POSTGRESQL_UP, "sqlite": SQLITE_UP})


def downgrade():
    run({"postgresql": POSTGRESQL_DOWN, "sqlite": SQLITE_DOWN})
    with op.batch_alter_table('service_certificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_certificate_participant_id'))

    op.drop_table('service_certificate')
