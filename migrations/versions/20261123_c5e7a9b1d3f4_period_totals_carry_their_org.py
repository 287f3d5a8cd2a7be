"""Period totals carry their account's org, so a ranking reads one org's totals by index.

The pair (account_id, org_id) refers to the account's (id, org_id), so the copy can never
differ from the account's org.

Revision ID: c5e7a9b1d3f4
Revises: b4d2f6a8c1e3
Create Date: 2026-11-23

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c5e7a9b1d3f4'
down_revision = 'b4d2f6a8c1e3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('uq_account_id_org_id', 'account', ['id', 'org_id'], unique=True)
    op.add_column('period_total', sa.Column('org_id', sa.Integer(), nullable=True))
    op.execute("UPDATE period_total SET org_id = (SELECT account.org_id FROM account WHERE account.id = period_total.account_id)")
    # SQLite rebuilds the table; nothing refers to it.
    with op.batch_alter_table('period_total', recreate='auto') as batch_op:
        batch_op.alter_column('org_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(op.f('fk_period_total_account_id_account'), type_='foreignkey')
        batch_op.create_foreign_key(
            op.f('fk_period_total_account_id_account'), 'account', ['account_id', 'org_id'], ['id', 'org_id']
        )
        batch_op.drop_index('ix_period_total_period_starts_on')
        batch_op.create_index('ix_period_total_period_org_id_starts_on', ['period', 'org_id', 'starts_on', 'account_id'], unique=False)


def downgrade():
    with op.batch_alter_table('period_total', recreate='auto') as batch_op:
        batch_op.drop_index('ix_period_total_period_org_id_starts_on')
        batch_op.create_index('ix_period_total_period_starts_on', ['period', 'starts_on', 'account_id'], unique=False)
        batch_op.drop_constraint(op.f('fk_period_total_account_id_account'), type_='foreignkey')
        batch_op.create_foreign_key(op.f('fk_period_total_account_id_account'), 'account', ['account_id'], ['id'])
        batch_op.drop_column('org_id')
    op.drop_index('uq_account_id_org_id', table_name='account')
