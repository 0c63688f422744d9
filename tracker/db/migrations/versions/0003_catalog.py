"""Catalog metadata: description, header image, Steam app id, and which fields the admin set by hand.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("games") as batch:
        batch.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("header_image", sa.String(500), nullable=False, server_default=""))
        batch.add_column(sa.Column("steam_app_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("overrides", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("steam_synced_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("steam_error", sa.String(500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("games") as batch:
        for column in ("steam_error", "steam_synced_at", "overrides", "steam_app_id", "header_image", "description"):
            batch.drop_column(column)
