"""Cool Papers companion backend: the redirector and the algorithm services of Scientific Spaces.

``from backend import create_app`` builds the Flask app. The import is lazy so that the services' pure
cores (``backend.services.<name>``) stay usable as libraries without loading Flask.
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from backend.app import create_app

        return create_app
    raise AttributeError(f"module 'backend' has no attribute {name!r}")
