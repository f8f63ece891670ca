"""outbox delivery: status, attempts and backoff, claim, Message-ID, HTML part

Revision ID: 0cef6a92ec39
Revises: b7c1d2e3f4a5
Create Date: 2026-12-01 13:24:33.074235

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0cef6a92ec39'
down_revision = 'b7c1d2e3f4a5'
branch_labels = None
depends_on = None

# A snapshot, not an import: later changes to the models must not rewrite this migration.
OUTBOX_STATUSES = ('queued', 'sending', 'sent', 'failed', 'skipped')
STATUS_KNOWN = 'status IN (' + ', '.join(f"'{s}'" for s in OUTBOX_STATUSES) + ')'


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('html_body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=255), nullable=True))

    # Messages written before the shop sent mail are not sent now (old sign-in links,
    # months-old receipts): they stay in the table, marked skipped.
    op.execute(
        "UPDATE outbox_message SET status = 'skipped', attempts = 0, "
        "next_attempt_at = created_at, last_error = 'written before the shop sent mail'"
    )

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('next_attempt_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.alter_column('attempts', existing_type=sa.Integer(), nullable=False)
        batch_op.create_check_constraint(op.f('ck_outbox_message_status_known'), STATUS_KNOWN)
        batch_op.create_index('ix_outbox_message_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f('uq_outbox_message_message_id'), ['message_id']
        )


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_outbox_message_message_id'), type_='unique')
        batch_op.drop_index('ix_outbox_message_due')
        batch_op.drop_constraint(op.f('ck_outbox_message_status_known'), type_='check')
        batch_op.drop_column('message_id')
        batch_op.drop_column('last_error')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('claim_token')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('status')
        batch_op.drop_column('html_body')
