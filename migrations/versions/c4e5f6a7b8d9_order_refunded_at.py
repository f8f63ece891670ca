"""order.refunded_at (when charge.refunded last raised amount_refunded)

Revision ID: c4e5f6a7b8d9
Revises: 305fa82ce82d
Create Date: 2026-12-01 17:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e5f6a7b8d9'
down_revision = '305fa82ce82d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_at', sa.DateTime(), nullable=True))
    # Orders refunded before this column: their last change is the best date there is.
    op.execute('UPDATE "order" SET refunded_at = updated_at WHERE amount_refunded > 0')


def downgrade():
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('refunded_at')
