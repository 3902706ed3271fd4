"""The store: SQLAlchemy schema, Alembic migrations and the set-based queries over them."""
