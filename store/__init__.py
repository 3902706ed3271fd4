"""The store: SQLAlchemy schema, Alembic migrations and the set-based SQL over them. It imports
only the kernel, ``audience`` and ``domain``."""
