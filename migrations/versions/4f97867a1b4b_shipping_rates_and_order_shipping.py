"""shipping_rate table (rates from the catalog file); order shipping, recipient address and card used

Revision ID: 4f97867a1b4b
Revises: 3c5d7e9f1a2b
Create Date: 2026-12-01 13:24:26.218897

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f97867a1b4b'
down_revision = '3c5d7e9f1a2b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('shipping_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lookup_key', sa.String(length=80), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('delivery_min_days', sa.Integer(), nullable=False),
    sa.Column('delivery_max_days', sa.Integer(), nullable=False),
    sa.Column('free_for_members', sa.Boolean(), nullable=False),
    sa.Column('free_over', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_shipping_rate_amount_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_rate')),
    sa.UniqueConstraint('lookup_key', name=op.f('uq_shipping_rate_lookup_key'))
    )
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipping_rate_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('shipping_rate_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('shipping_amount', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('delivery_min_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivery_max_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ship_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('ship_line1', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('ship_line2', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('ship_city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('ship_state', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('ship_postal_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('ship_country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('card_brand', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('card_last4', sa.String(length=4), nullable=True))



def downgrade():
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('card_last4')
        batch_op.drop_column('card_brand')
        batch_op.drop_column('ship_country')
        batch_op.drop_column('ship_postal_code')
        batch_op.drop_column('ship_state')
        batch_op.drop_column('ship_city')
        batch_op.drop_column('ship_line2')
        batch_op.drop_column('ship_line1')
        batch_op.drop_column('ship_name')
        batch_op.drop_column('delivery_max_days')
        batch_op.drop_column('delivery_min_days')
        batch_op.drop_column('shipping_amount')
        batch_op.drop_column('shipping_rate_name')
        batch_op.drop_column('shipping_rate_code')

    op.drop_table('shipping_rate')
