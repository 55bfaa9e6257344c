"""API keys and signing keys belong to a key pair, which can be revoked.

Keys issued before this revision become pairs of one key each: which keys were issued
together was not recorded, and guessing could revoke more than the operator asked for.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY_TABLES = ("api_keys", "signing_keys")


def upgrade() -> None:
    op.create_table(
        "key_pairs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_key_pairs_environment_id_environments"),
            nullable=False,
        ),
        sa.Column("public_key", sa.String(128), nullable=True),
        sa.Column("secret_key_hint", sa.String(4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_key_pairs_environment_id", "key_pairs", ["environment_id"])
    # One pair per existing key, with the key's own id; "sk_...abcd" keeps its last four.
    op.execute(
        "INSERT INTO key_pairs (id, environment_id, secret_key_hint, created_at) "
        "SELECT id, environment_id, "
        "CASE WHEN kind = 'secret' THEN substr(hint, length(hint) - 3) END, created_at "
        "FROM api_keys"
    )
    op.execute(
        "INSERT INTO key_pairs (id, environment_id, created_at) "
        "SELECT id, environment_id, created_at FROM signing_keys"
    )
    for table in _KEY_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("pair_id", sa.String(36), nullable=True))
        op.execute(f"UPDATE {table} SET pair_id = id")  # noqa: S608 - constant table names
        with op.batch_alter_table(table) as batch:
            batch.alter_column("pair_id", existing_type=sa.String(36), nullable=False)
            batch.create_foreign_key(
                f"fk_{table}_pair_id_key_pairs", "key_pairs", ["pair_id"], ["id"]
            )
            batch.create_index(f"ix_{table}_pair_id", ["pair_id"])


def downgrade() -> None:
    for table in _KEY_TABLES:  # without revocation, a revoked key would work again
        op.execute(
            f"DELETE FROM {table} WHERE pair_id IN "  # noqa: S608 - constant table names
            "(SELECT id FROM key_pairs WHERE revoked_at IS NOT NULL)"
        )
    for table in _KEY_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_pair_id")
            batch.drop_constraint(f"fk_{table}_pair_id_key_pairs", type_="foreignkey")
            batch.drop_column("pair_id")
    op.drop_table("key_pairs")
