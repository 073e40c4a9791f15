"""Cool Papers companion backend: the redirector and the algorithm services of Scientific Spaces."""

from backend.app import create_app

__all__ = ["create_app"]
