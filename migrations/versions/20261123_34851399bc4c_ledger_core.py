"""The ledger core: org tree, participants, accounts, the append-only ledger and its guards.

Revision ID: 34851399bc4c
Revises: 
Create Date: 2026-11-23 05:44:02.227821

"""
import sqlalchemy as sa
from alembic import op

#: The transaction kinds of this revision; later revisions add rows, never rename them.
TRANSACTION_KINDS = [
    ("opening_balance", "Balance carried over from a paper points passbook"),
    ("earn", "Points earned for recorded service"),
    ("redeem", "Points spent on the reward shelf"),
    ("expire", "Points expired under the rule set's expiry policy"),
    ("adjust", "Manual adjustment by staff, with a reason"),
    ("penalty", "Points deducted under the rule set's penalties"),
    ("reverse", "Reversal of an earlier transaction"),
]


# The database's own guards of this revision, frozen here as they were created: later
# revisions replace them with statements of their own, never by editing these.
POSTGRESQL_GUARDS = [
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'append-only: % on % is refused; correct with a reversal', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
    """
    CREATE FUNCTION ledger_check_transaction_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        expected text;
        original_kind text;
    BEGIN
        IF NEW.seq = 1 THEN
            expected := '0000000000000000000000000000000000000000000000000000000000000000';
        ELSE
            SELECT hash INTO expected FROM ledger_transaction
             WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1;
        END IF;
        IF expected IS DISTINCT FROM NEW.prev_hash THEN
            RAISE EXCEPTION 'ledger transaction must link to link % of chain %', NEW.seq - 1, NEW.chain_id
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.reverses_id IS NOT NULL THEN
            SELECT kind INTO original_kind FROM ledger_transaction WHERE id = NEW.reverses_id;
            IF original_kind = 'reverse' THEN
                RAISE EXCEPTION 'a reversal cannot itself be reversed'
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER ledger_transaction_insert_rules BEFORE INSERT ON ledger_transaction
        FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_insert()
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER posting_balanced AFTER INSERT ON posting
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
    """,
    """
    CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER posting_append_only BEFORE UPDATE OR DELETE ON posting
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER posting_no_truncate BEFORE TRUNCATE ON posting
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
    """,
]
POSTGRESQL_GUARDS_DROP = [
    "DROP TRIGGER IF EXISTS ledger_transaction_no_truncate ON ledger_transaction",
    "DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction",
    "DROP TRIGGER IF EXISTS posting_no_truncate ON posting",
    "DROP TRIGGER IF EXISTS posting_append_only ON posting",
    "DROP TRIGGER IF EXISTS posting_balanced ON posting",
    "DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction",
    "DROP TRIGGER IF EXISTS ledger_transaction_insert_rules ON ledger_transaction",
    "DROP FUNCTION IF EXISTS ledger_check_transaction_insert()",
    "DROP FUNCTION IF EXISTS ledger_check_balanced()",
    "DROP FUNCTION IF EXISTS ledger_refuse_change()",
]
SQLITE_GUARDS = [
    """
    CREATE TRIGGER ledger_transaction_insert_rules BEFORE INSERT ON ledger_transaction
    BEGIN
        SELECT RAISE(ABORT, 'ledger transaction must link to the previous link of its chain')
         WHERE NEW.prev_hash IS NOT (
            CASE WHEN NEW.seq = 1 THEN '0000000000000000000000000000000000000000000000000000000000000000'
                 ELSE (SELECT hash FROM ledger_transaction
                        WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1)
            END);
        SELECT RAISE(ABORT, 'a reversal cannot itself be reversed')
         WHERE NEW.reverses_id IS NOT NULL
           AND (SELECT kind FROM ledger_transaction WHERE id = NEW.reverses_id) = 'reverse';
    END
    """,
    """
    CREATE TRIGGER ledger_transaction_append_only_update BEFORE UPDATE ON ledger_transaction
    BEGIN
        SELECT RAISE(ABORT, 'append-only: UPDATE on ledger_transaction is refused; correct with a reversal');
    END
    """,
    """
    CREATE TRIGGER ledger_transaction_append_only_delete BEFORE DELETE ON ledger_transaction
    BEGIN
        SELECT RAISE(ABORT, 'append-only: DELETE on ledger_transaction is refused; correct with a reversal');
    END
    """,
    """
    CREATE TRIGGER posting_append_only_update BEFORE UPDATE ON posting
    BEGIN
        SELECT RAISE(ABORT, 'append-only: UPDATE on posting is refused; correct with a reversal');
    END
    """,
    """
    CREATE TRIGGER posting_append_only_delete BEFORE DELETE ON posting
    BEGIN
        SELECT RAISE(ABORT, 'append-only: DELETE on posting is refused; correct with a reversal');
    END
    """,
]
SQLITE_GUARDS_DROP = [
    "DROP TRIGGER IF EXISTS ledger_transaction_insert_rules",
    "DROP TRIGGER IF EXISTS ledger_transaction_append_only_update",
    "DROP TRIGGER IF EXISTS ledger_transaction_append_only_delete",
    "DROP TRIGGER IF EXISTS posting_append_only_update",
    "DROP TRIGGER IF EXISTS posting_append_only_delete",
]


def run(statements_by_dialect: dict) -> None:
    bind = op.get_bind()
    for statement in statements_by_dialect[bind.dialect.name]:
        # psycopg reads % as a placeholder; PL/pgSQL's RAISE needs it literally.
        bind.exec_driver_sql(statement.replace("%", "%%") if bind.dialect.name == "postgresql" else statement)


# revision identifiers, used by Alembic.
revision = '34851399bc4c'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_table('org_node',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('grid_level', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=400), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'district') = (parent_id IS NULL)", name=op.f('ck_org_node_root_is_district')),
    sa.CheckConstraint("(kind = 'grid' AND grid_level BETWEEN 1 AND 3) OR (kind != 'grid' AND grid_level IS NULL)", name=op.f('ck_org_node_grid_level')),
    sa.CheckConstraint("kind IN ('district', 'street', 'community', 'grid')", name=op.f('ck_org_node_kind')),
    sa.ForeignKeyConstraint(['community_id'], ['org_node.id'], name=op.f('fk_org_node_community_id_org_node')),
    sa.ForeignKeyConstraint(['parent_id'], ['org_node.id'], name=op.f('fk_org_node_parent_id_org_node')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_node')),
    sa.UniqueConstraint('code', name=op.f('uq_org_node_code'))
    )
    with op.batch_alter_table('org_node', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_node_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_org_node_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_org_node_path'), ['path'], unique=False)

    transaction_kind = op.create_table('transaction_kind',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_transaction_kind'))
    )
    op.bulk_insert(transaction_kind, [{"code": code, "description": text} for code, text in TRANSACTION_KINDS])
    op.create_table('chain_head',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('seq >= 0', name=op.f('ck_chain_head_seq_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_chain_head_org_id_org_node')),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_chain_head'))
    )
    op.create_table('employer_unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_employer_unit_org_id_org_node')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_employer_unit')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_employer_unit_credit_code')),
    sa.UniqueConstraint('name', name=op.f('uq_employer_unit_name'))
    )
    with op.batch_alter_table('employer_unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_employer_unit_org_id'), ['org_id'], unique=False)

    op.create_table('participant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('person', 'unit')", name=op.f('ck_participant_kind')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_participant_org_id_org_node')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant'))
    )
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_org_id'), ['org_id'], unique=False)

    op.create_table('team',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('founded_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_team_org_id_org_node')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('org_id', 'name', name=op.f('uq_team_org_id_name'))
    )
    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_org_id'), ['org_id'], unique=False)

    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=True),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("(kind = 'participant') = (participant_id IS NOT NULL)", name=op.f('ck_account_owner_matches_kind')),
    sa.CheckConstraint("kind != 'participant' OR balance >= 0", name=op.f('ck_account_participant_not_negative')),
    sa.CheckConstraint("kind IN ('participant', 'issuance', 'reward_shelf', 'expiry', 'adjustment', 'opening_balance')", name=op.f('ck_account_kind')),
    sa.CheckConstraint('version >= 0', name=op.f('ck_account_version_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_account_org_id_org_node')),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_account_participant_id_participant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_account_participant_id'))
    )
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_org_id'), ['org_id'], unique=False)
        batch_op.create_index('uq_account_system_kind_per_org', ['org_id', 'kind'], unique=True, sqlite_where=sa.text('participant_id IS NULL'), postgresql_where=sa.text('participant_id IS NULL'))

    op.create_table('co_building_unit',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('unit_kind', sa.String(length=32), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.CheckConstraint("unit_kind IN ('government_agency', 'enterprise', 'public_institution', 'property_company', 'social_organisation', 'two_new_organisation')", name=op.f('ck_co_building_unit_unit_kind')),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_co_building_unit_participant_id_participant')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_co_building_unit')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_co_building_unit_credit_code'))
    )
    op.create_table('ledger_transaction',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('activity_id', sa.BigInteger(), nullable=True),
    sa.Column('rule_set_version_id', sa.BigInteger(), nullable=True),
    sa.Column('breakdown', sa.JSON(), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=True),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("(kind = 'reverse') = (reverses_id IS NOT NULL)", name=op.f('ck_ledger_transaction_reversal_links_original')),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_ledger_transaction_seq_positive')),
    sa.ForeignKeyConstraint(['chain_id'], ['chain_head.org_id'], name=op.f('fk_ledger_transaction_chain_id_chain_head')),
    sa.ForeignKeyConstraint(['kind'], ['transaction_kind.code'], name=op.f('fk_ledger_transaction_kind_transaction_kind')),
    sa.ForeignKeyConstraint(['org_id'], ['org_node.id'], name=op.f('fk_ledger_transaction_org_id_org_node')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['app_user.id'], name=op.f('fk_ledger_transaction_recorded_by_id_app_user')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_transaction_reverses_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction')),
    sa.UniqueConstraint('chain_id', 'seq', name=op.f('uq_ledger_transaction_chain_id_seq')),
    sa.UniqueConstraint('hash', name=op.f('uq_ledger_transaction_hash')),
    sa.UniqueConstraint('org_id', 'recorded_by_id', 'idempotency_key', name=op.f('uq_ledger_transaction_org_id_recorded_by_id_idempotency_key')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_ledger_transaction_reverses_id'))
    )
    op.create_table('person',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('real_name', sa.String(length=100), nullable=False),
    sa.Column('id_number_digest', sa.String(length=64), nullable=False),
    sa.Column('id_number_masked', sa.String(length=18), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_person_participant_id_participant')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_person')),
    sa.UniqueConstraint('id_number_digest', name=op.f('uq_person_id_number_digest'))
    )
    op.create_table('team_member',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('joined_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_team_member_participant_id_participant')),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_team_member_team_id_team')),
    sa.PrimaryKeyConstraint('team_id', 'participant_id', name=op.f('pk_team_member'))
    )
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_member_participant_id'), ['participant_id'], unique=False)

    op.create_table('party_member',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('employer_unit_id', sa.Integer(), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['employer_unit_id'], ['employer_unit.id'], name=op.f('fk_party_member_employer_unit_id_employer_unit')),
    sa.ForeignKeyConstraint(['participant_id'], ['person.participant_id'], name=op.f('fk_party_member_participant_id_person')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_party_member'))
    )
    with op.batch_alter_table('party_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_party_member_employer_unit_id'), ['employer_unit_id'], unique=False)

    op.create_table('posting',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('account_version', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('account_version >= 1', name=op.f('ck_posting_account_version_positive')),
    sa.CheckConstraint('amount != 0 AND amount BETWEEN -1000000000000 AND 1000000000000', name=op.f('ck_posting_amount_nonzero_bounded')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_posting_account_id_account')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_posting_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting')),
    sa.UniqueConstraint('account_id', 'account_version', name=op.f('uq_posting_account_id_account_version')),
    sa.UniqueConstraint('transaction_id', 'account_id', name=op.f('uq_posting_transaction_id_account_id'))
    )
    op.create_table('volunteer',
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('volunteer_number', sa.String(length=32), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['person.participant_id'], name=op.f('fk_volunteer_participant_id_person')),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_volunteer')),
    sa.UniqueConstraint('volunteer_number', name=op.f('uq_volunteer_volunteer_number'))
    )
    # ### end Alembic commands ###
    run({"postgresql": POSTGRESQL_GUARDS, "sqlite": SQLITE_GUARDS})


def downgrade():
    run({"postgresql": POSTGRESQL_GUARDS_DROP, "sqlite": SQLITE_GUARDS_DROP})
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_table('volunteer')
    op.drop_table('posting')
    with op.batch_alter_table('party_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_party_member_employer_unit_id'))

    op.drop_table('party_member')
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_member_participant_id'))

    op.drop_table('team_member')
    op.drop_table('person')
    op.drop_table('ledger_transaction')
    op.drop_table('co_building_unit')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index('uq_account_system_kind_per_org', sqlite_where=sa.text('participant_id IS NULL'), postgresql_where=sa.text('participant_id IS NULL'))
        batch_op.drop_index(batch_op.f('ix_account_org_id'))

    op.drop_table('account')
    with op.batch_alter_table('team', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_org_id'))

    op.drop_table('team')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_org_id'))

    op.drop_table('participant')
    with op.batch_alter_table('employer_unit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_employer_unit_org_id'))

    op.drop_table('employer_unit')
    op.drop_table('chain_head')
    op.drop_table('transaction_kind')
    with op.batch_alter_table('org_node', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_node_path'))
        batch_op.drop_index(batch_op.f('ix_org_node_parent_id'))
        batch_op.drop_index(batch_op.f('ix_org_node_community_id'))

    op.drop_table('org_node')
    op.drop_table('app_user')
    # ### end Alembic commands ###
