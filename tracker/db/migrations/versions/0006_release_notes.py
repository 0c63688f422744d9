"""Release notes and launch commands: the admin's words for each build, and how the friends' app starts a game;
and whether each build's Discord post went out, for `mistpipe ls`.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("notes", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("launch", sa.String(500), nullable=False, server_default=""))
        batch.add_column(sa.Column("news_status", sa.String(500), nullable=False, server_default=""))
    with op.batch_alter_table("games") as batch:
        batch.add_column(sa.Column("launch", sa.String(500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("games") as batch:
        batch.drop_column("launch")
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("news_status")
        batch.drop_column("launch")
        batch.drop_column("notes")
