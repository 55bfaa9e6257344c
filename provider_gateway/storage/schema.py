"""Table definitions; Alembic migrations in `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

environments = Table(
    "environments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What `keys create` issues at once: a pk_/sk_ pair and a user-token signing key, revoked
# together (0005). The public key is kept whole (it ships to browsers; it is not a secret);
# of the secret key only its last four characters. Pairs from before 0005 hold one key each.
key_pairs = Table(
    "key_pairs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("environment_id", ForeignKey("environments.id"), nullable=False, index=True),
    Column("public_key", String(128), nullable=True),
    Column("secret_key_hint", String(4), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Only a SHA-256 of each API key is kept: keys are 256-bit random, so a fast hash is safe.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("environment_id", ForeignKey("environments.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # "public" | "secret"
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("pair_id", ForeignKey("key_pairs.id"), nullable=False, index=True),  # 0005
)

# Only the public half of each user-token signing key is kept.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("environment_id", ForeignKey("environments.id"), nullable=False, index=True),
    Column("public_key_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("pair_id", ForeignKey("key_pairs.id"), nullable=False, index=True),  # 0005
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(36), primary_key=True),
    # NULL: the channel serves every environment, as a Knock account-level channel does.
    Column("environment_id", ForeignKey("environments.id"), nullable=True, index=True),
    Column("provider", String(20), nullable=False),  # "slack" | "ms-teams"
    Column("client_id", String(255), nullable=False),
    Column("client_secret_encrypted", Text, nullable=False),
    Column("app_id", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("signing_secret_encrypted", Text, nullable=True),  # Slack Events API (0002)
)

channel_data = Table(
    "channel_data",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment_id", ForeignKey("environments.id"), nullable=False),
    Column("channel_id", ForeignKey("channels.id"), nullable=False),
    Column("recipient_kind", String(10), nullable=False),  # "user" | "object"
    Column("collection", String(255), nullable=False),  # "" for users
    Column("recipient_id", String(255), nullable=False),
    Column("payload_encrypted", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Blind index of the Slack install (storage/blind_index.py) and the id of the ring key
    # that encrypted the payload and made the index; NULL key_id: written before 0004.
    Column("slack_team_hmac", String(32), nullable=True),
    Column("slack_enterprise_hmac", String(32), nullable=True),
    Column("key_id", String(8), nullable=True),
    UniqueConstraint(
        "environment_id",
        "channel_id",
        "recipient_kind",
        "collection",
        "recipient_id",
        name="uq_channel_data_recipient",
    ),
)
# Partial indexes: only rows holding a Slack token (or not indexed yet) take space in them.
Index(
    "ix_channel_data_slack_team",
    channel_data.c.channel_id,
    channel_data.c.slack_team_hmac,
    postgresql_where=channel_data.c.slack_team_hmac.is_not(None),
    sqlite_where=channel_data.c.slack_team_hmac.is_not(None),
)
Index(
    "ix_channel_data_slack_enterprise",
    channel_data.c.channel_id,
    channel_data.c.slack_enterprise_hmac,
    postgresql_where=channel_data.c.slack_enterprise_hmac.is_not(None),
    sqlite_where=channel_data.c.slack_enterprise_hmac.is_not(None),
)
Index(
    "ix_channel_data_unindexed",
    channel_data.c.channel_id,
    postgresql_where=channel_data.c.key_id.is_(None),
    sqlite_where=channel_data.c.key_id.is_(None),
)

# Users identified through `PUT /v1/users/{id}` (0006). The id is the lookup key; every property
# a caller sent is personal data, sealed whole like channel data. `id` orders the listing.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment_id", ForeignKey("environments.id"), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("properties_encrypted", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("environment_id", "user_id", name="uq_users_environment_user"),
    Index("ix_users_environment_id_id", "environment_id", "id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("environment_id", String(36), nullable=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("channel_id", String(36), nullable=True),
    Column("target", String(600), nullable=True),
    Column("details", JSON, nullable=False),
    Column("sealed_details", Text, nullable=True),  # encrypted JSON (0003)
    Index("ix_audit_events_environment_occurred", "environment_id", "occurred_at"),
    Index("ix_audit_events_target", "target"),  # 0004: audit search by recipient
    Index("ix_audit_events_occurred_at", "occurred_at"),  # 0004: retention pruning
)
