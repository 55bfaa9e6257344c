"""Microsoft Teams: Entra admin consent, auth_check, teams, channels, revoke_access."""
