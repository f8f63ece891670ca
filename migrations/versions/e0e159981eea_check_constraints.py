"""check constraints: amounts not negative, quantities 1-99, known order statuses

Revision ID: e0e159981eea
Revises: 69a9d0aacf24
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e0e159981eea'
down_revision = '69a9d0aacf24'
branch_labels = None
depends_on = None

# A snapshot, not an import: later changes to the models must not rewrite this migration.
ORDER_STATUSES = (
    'pending', 'processing', 'paid', 'failed', 'canceled', 'refunded', 'partially_refunded'
)
STATUS_KNOWN = 'status IN (' + ', '.join(f"'{s}'" for s in ORDER_STATUSES) + ')'


# SQLite batch mode rebuilds price, order and order_item; env.py switches SQLite's
# foreign keys off meanwhile (with them on, dropping price would null order_item.price_id).


def upgrade():
    with op.batch_alter_table('price', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_price_unit_amount_not_negative'), 'unit_amount >= 0'
        )
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_order_amount_total_not_negative'), 'amount_total >= 0'
        )
        batch_op.create_check_constraint(op.f('ck_order_status_known'), STATUS_KNOWN)
    with op.batch_alter_table('order_item', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_order_item_quantity_in_range'), 'quantity BETWEEN 1 AND 99'
        )
        batch_op.create_check_constraint(
            op.f('ck_order_item_unit_amount_not_negative'), 'unit_amount >= 0'
        )


def downgrade():
    with op.batch_alter_table('order_item', schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f('ck_order_item_unit_amount_not_negative'), type_='check'
        )
        batch_op.drop_constraint(op.f('ck_order_item_quantity_in_range'), type_='check')
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_order_status_known'), type_='check')
        batch_op.drop_constraint(op.f('ck_order_amount_total_not_negative'), type_='check')
    with op.batch_alter_table('price', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_price_unit_amount_not_negative'), type_='check')
