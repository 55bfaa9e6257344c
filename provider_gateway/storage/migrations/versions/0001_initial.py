"""Initial schema: environments, API keys, signing keys, channels, channel data, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_environments_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_api_keys_environment_id_environments"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_environment_id", "api_keys", ["environment_id"])
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_signing_keys_environment_id_environments"),
            nullable=False,
        ),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signing_keys_environment_id", "signing_keys", ["environment_id"])
    op.create_table(
        "channels",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_channels_environment_id_environments"),
            nullable=True,
        ),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text, nullable=False),
        sa.Column("app_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_channels_environment_id", "channels", ["environment_id"])
    op.create_table(
        "channel_data",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "environment_id",
            sa.String(36),
            sa.ForeignKey("environments.id", name="fk_channel_data_environment_id_environments"),
            nullable=False,
        ),
        sa.Column(
            "channel_id",
            sa.String(36),
            sa.ForeignKey("channels.id", name="fk_channel_data_channel_id_channels"),
            nullable=False,
        ),
        sa.Column("recipient_kind", sa.String(10), nullable=False),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("recipient_id", sa.String(255), nullable=False),
        sa.Column("payload_encrypted", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "environment_id",
            "channel_id",
            "recipient_kind",
            "collection",
            "recipient_id",
            name="uq_channel_data_recipient",
        ),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("environment_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(36), nullable=True),
        sa.Column("target", sa.String(600), nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_audit_events_environment_occurred", "audit_events", ["environment_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("channel_data")
    op.drop_table("channels")
    op.drop_table("signing_keys")
    op.drop_table("api_keys")
    op.drop_table("environments")
