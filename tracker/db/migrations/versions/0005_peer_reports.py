"""Reports from friends' clients that a peer sent them a corrupt chunk, kept for the admin to read.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reported_at", sa.Float, nullable=False),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("peer_user", sa.String(64), nullable=False, index=True),
        sa.Column("build_digest", sa.String(64), nullable=False),
        sa.Column("game", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("peer_reports")
