"""Annual evaluation: frozen evaluations with their rows and rule sets, remarks on party members, employers' headcount.

Revision ID: 9e1a7c3b5d20
Revises: 6b3fe93e2863
Create Date: 2026-11-23

"""
import sqlalchemy as sa
from alembic import op

NEW_APPEND_ONLY_TABLES = ("evaluation_freeze", "evaluation_freeze_row", "evaluation_freeze_rule_set", "party_member_remark")

POSTGRESQL_UP = [
    statement
    for table in NEW_APPEND_ONLY_TABLES
    for statement in (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()",
    )
]
POSTGRESQL_DOWN = [
    statement
    for table in NEW_APPEND_ONLY_TABLES
    for statement in (
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
    )
]
SQLITE_UP = [
    f"""
    CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} ON {table}
    BEGIN
        SELECT RAISE(ABORT, 'append-only: {operation} on {table} is refused');
    END
    """
    for table in NEW_APPEND_ONLY_TABLES
    for operation in ("UPDATE", "DELETE")
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {table}_append_only_{operation}"
    for table in NEW_APPEND_ONLY_TABLES
    for operation in ("update", "delete")
]


def run(statements_by_dialect: dict) -> None:
    bind = op.get_bind()
    for statement in statements_by_dialect[bind.dialect.name]:
        bind.exec_driver_sql(statement)


# revision identifiers, used by Alembic.
revision = '9e1a7c3b5d20'
down_revision = '6b3fe93e2863'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('evaluation_freeze',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('rule_set_version_id', sa.Integer(), nullable=False),
    sa.Column('sheets', sa.JSON(), nullable=False),
    sa.Column('frozen_by_id', sa.Integer(), nullable=False),
    sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 2000 AND 2100', name=op.f('ck_evaluation_freeze_year')),
    sa.ForeignKeyConstraint(['frozen_by_id'], ['app_user.id'], name=op.f('fk_evaluation_freeze_frozen_by_id_app_user')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_evaluation_freeze_org_id_org_node')),
    sa.ForeignKeyConstraint(['rule_set_version_id'], ['rule_set_version.id'], name=op.f('fk_evaluation_freeze_rule_set_version_id_rule_set_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_freeze')),
    sa.UniqueConstraint('org_id', 'year', name=op.f('uq_evaluation_freeze_org_id_year'))
    )
    op.create_table('party_member_remark',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('remark', sa.String(length=500), nullable=False),
    sa.Column('written_by_id', sa.Integer(), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 2000 AND 2100', name=op.f('ck_party_member_remark_year')),
    sa.ForeignKeyConstraint(['participant_id'], ['party_member.participant_id'], name=op.f('fk_party_member_remark_participant_id_party_member')),
    sa.ForeignKeyConstraint(['written_by_id'], ['app_user.id'], name=op.f('fk_party_member_remark_written_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_party_member_remark'))
    )
    with op.batch_alter_table('party_member_remark', schema=None) as batch_op:
        batch_op.create_index('ix_party_member_remark_participant_year', ['participant_id', 'year'], unique=False)

    op.create_table('evaluation_freeze_row',
    sa.Column('freeze_id', sa.Integer(), nullable=False),
    sa.Column('sheet', sa.String(length=24), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('cells', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['freeze_id'], ['evaluation_freeze.id'], name=op.f('fk_evaluation_freeze_row_freeze_id_evaluation_freeze')),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_evaluation_freeze_row_participant_id_participant')),
    sa.PrimaryKeyConstraint('freeze_id', 'sheet', 'seq', name=op.f('pk_evaluation_freeze_row')),
    sa.UniqueConstraint('freeze_id', 'sheet', 'participant_id', name=op.f('uq_evaluation_freeze_row_freeze_id_sheet_participant_id'))
    )
    op.create_table('evaluation_freeze_rule_set',
    sa.Column('freeze_id', sa.Integer(), nullable=False),
    sa.Column('rule_set_version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['freeze_id'], ['evaluation_freeze.id'], name=op.f('fk_evaluation_freeze_rule_set_freeze_id_evaluation_freeze')),
    sa.ForeignKeyConstraint(['rule_set_version_id'], ['rule_set_version.id'], name=op.f('fk_evaluation_freeze_rule_set_rule_set_version_id_rule_set_version')),
    sa.PrimaryKeyConstraint('freeze_id', 'rule_set_version_id', name=op.f('pk_evaluation_freeze_rule_set'))
    )
    # In place: rebuilding employer_unit would break the party members' keys referring to it.
    op.add_column('employer_unit', sa.Column('party_members_employed', sa.Integer(), nullable=True))

    run({"postgresql": POSTGRESQL_UP, "sqlite": SQLITE_UP})


def downgrade():
    run({"postgresql": POSTGRESQL_DOWN, "sqlite": SQLITE_DOWN})
    op.drop_column('employer_unit', 'party_members_employed')

    op.drop_table('evaluation_freeze_rule_set')
    op.drop_table('evaluation_freeze_row')
    with op.batch_alter_table('party_member_remark', schema=None) as batch_op:
        batch_op.drop_index('ix_party_member_remark_participant_year')

    op.drop_table('party_member_remark')
    op.drop_table('evaluation_freeze')
