"""WSGI entry point for production servers: ``gunicorn wsgi:app``."""

from storefront import create_app

app = create_app()
