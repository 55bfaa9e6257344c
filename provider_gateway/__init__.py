"""provider-gateway: a self-hosted, Knock-compatible Providers API for Slack and Microsoft Teams."""

__version__ = "0.1.0"
