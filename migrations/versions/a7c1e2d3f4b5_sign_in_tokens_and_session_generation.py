"""sign_in_token (one-time sign-in links) and customer.session_generation (sign-out)

Revision ID: a7c1e2d3f4b5
Revises: 9325e05863d7
Create Date: 2026-12-01 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c1e2d3f4b5'
down_revision = '9325e05863d7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sign_in_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_sign_in_token_token_hash')),
    )
    with op.batch_alter_table('sign_in_token', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_sign_in_token_expires_at'), ['expires_at'], unique=False
        )

    # An added column with a default: SQLite's ALTER TABLE does it in place.
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('session_generation')

    with op.batch_alter_table('sign_in_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_token_expires_at'))

    op.drop_table('sign_in_token')
