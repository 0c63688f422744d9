"""The tracker's database (SQLAlchemy 2 and Alembic live only under this package)."""
