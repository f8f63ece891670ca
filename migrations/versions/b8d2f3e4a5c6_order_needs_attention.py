"""order.needs_attention (a paid order stock could not cover, for staff)

Revision ID: b8d2f3e4a5c6
Revises: 0cef6a92ec39
Create Date: 2026-12-01 14:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8d2f3e4a5c6'
down_revision = '0cef6a92ec39'
branch_labels = None
depends_on = None


def upgrade():
    # An added column with a default: SQLite's ALTER TABLE does it in place.
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('needs_attention', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('needs_attention')
