"""WSGI entry point for production: ``gunicorn backend.wsgi:app`` (settings in the repository's gunicorn.conf.py)."""

from backend import create_app

app = create_app()
