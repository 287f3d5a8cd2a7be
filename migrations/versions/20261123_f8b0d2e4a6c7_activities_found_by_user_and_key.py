"""Activities are found by the user who recorded them and their key, in every org.

A history import looks up its lines' references among everything the importing user brought
in before, in any org. The unique key starts with the org, so PostgreSQL scanned every activity
and compared each with the batch's 10,000 references: at 600,000 activities one batch's lookup
took minutes, and each batch took longer than the one before.

Revision ID: f8b0d2e4a6c7
Revises: e7a9c1d3f5b6
Create Date: 2026-11-23

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f8b0d2e4a6c7'
down_revision = 'e7a9c1d3f5b6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_activity_recorded_by_id_idempotency_key', 'activity', ['recorded_by_id', 'idempotency_key'])


def downgrade():
    op.drop_index('ix_activity_recorded_by_id_idempotency_key', table_name='activity')
