"""The procrastinate job-queue schema, applied through Alembic like every other table.

The SQL is procrastinate's own `schema.sql` for the locked version; a later procrastinate
upgrade adds an Alembic revision that runs its shipped migration files.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        "procrastinate_jobs, procrastinate_workers CASCADE"
    )
