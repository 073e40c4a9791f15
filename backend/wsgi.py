"""WSGI entry point for production servers: ``gunicorn -w 2 'backend.wsgi:app'``."""

from backend import create_app

app = create_app()
