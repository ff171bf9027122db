"""create items

Revision ID: 0001_items
"""

from alembic import op

revision = "0001_items"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
    op.execute("INSERT INTO items (name) VALUES ('towel'), ('lamp')")


def downgrade() -> None:
    op.execute("DROP TABLE items")
