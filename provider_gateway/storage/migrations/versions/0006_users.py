"""Users identified through the users API, their properties encrypted whole.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_users_environment_id_environments"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("properties_encrypted", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("environment_id", "user_id", name="uq_users_environment_user"),
    )
    op.create_index("ix_users_environment_id_id", "users", ["environment_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_users_environment_id_id", table_name="users")
    op.drop_table("users")
