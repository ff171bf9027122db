"""add an owner to items

Revision ID: 0002_item_owner
"""

from alembic import op

revision = "0002_item_owner"
down_revision = "0001_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN owner text")


def downgrade() -> None:
    op.execute("ALTER TABLE items DROP COLUMN owner")
