"""Persistence: SQLAlchemy 2 async core on SQLite (embedded) or PostgreSQL, behind small stores."""
