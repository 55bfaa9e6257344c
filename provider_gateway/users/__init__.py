"""Users API: identify, get, delete and list `/v1/users`, Knock-compatible."""
