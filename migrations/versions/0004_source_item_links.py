"""The links each crawled page had when it was last fetched (`source_items.links`).

A re-crawl that gets `304 Not Modified` has no body to read links from; it follows the stored
ones, so the pages behind an unchanged page are still reached (and are not taken for unlinked).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE source_items ADD COLUMN links text[]")


def downgrade() -> None:
    op.execute("ALTER TABLE source_items DROP COLUMN IF EXISTS links")
