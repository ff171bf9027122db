"""The demo's backend (app.py) and its Alembic migrations (alembic/)."""
