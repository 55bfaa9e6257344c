"""Slack: OAuth v2 install flow, auth_check, channels, revoke_access."""
