"""order.checkout_token (one order per cart checkout) and webhook_event.attempted_at

Revision ID: 3c5d7e9f1a2b
Revises: e0e159981eea
Create Date: 2026-11-29 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c5d7e9f1a2b'
down_revision = 'e0e159981eea'
branch_labels = None
depends_on = None


def upgrade():
    # Added columns and a unique index only: SQLite's ALTER TABLE does these in place.
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkout_token', sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_order_checkout_token'), ['checkout_token'], unique=True
        )

    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempted_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.drop_column('attempted_at')

    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_checkout_token'))
        batch_op.drop_column('checkout_token')
