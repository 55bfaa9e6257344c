"""Indexes for 100,000 tenants: a blind index of Slack installs on channel data (filled for
existing rows by `storage.backfill` after the upgrade: it needs the key ring), and audit
indexes for search by recipient and for retention pruning.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOT_NULL_TEAM = sa.text("slack_team_hmac IS NOT NULL")
_NOT_NULL_ENTERPRISE = sa.text("slack_enterprise_hmac IS NOT NULL")
_UNINDEXED = sa.text("key_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("channel_data") as batch:
        batch.add_column(sa.Column("slack_team_hmac", sa.String(32), nullable=True))
        batch.add_column(sa.Column("slack_enterprise_hmac", sa.String(32), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(8), nullable=True))
    _partial_index("ix_channel_data_slack_team", ["channel_id", "slack_team_hmac"], _NOT_NULL_TEAM)
    _partial_index(
        "ix_channel_data_slack_enterprise",
        ["channel_id", "slack_enterprise_hmac"],
        _NOT_NULL_ENTERPRISE,
    )
    _partial_index("ix_channel_data_unindexed", ["channel_id"], _UNINDEXED)
    op.create_index("ix_audit_events_target", "audit_events", ["target"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_occurred_at", "audit_events")
    op.drop_index("ix_audit_events_target", "audit_events")
    for name in (
        "ix_channel_data_unindexed",
        "ix_channel_data_slack_enterprise",
        "ix_channel_data_slack_team",
    ):
        op.drop_index(name, "channel_data")
    with op.batch_alter_table("channel_data") as batch:
        batch.drop_column("key_id")
        batch.drop_column("slack_enterprise_hmac")
        batch.drop_column("slack_team_hmac")


def _partial_index(name: str, columns: list[str], where: sa.TextClause) -> None:
    op.create_index(name, "channel_data", columns, postgresql_where=where, sqlite_where=where)
