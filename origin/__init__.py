"""The edgelab demo origin (``python -m origin --port 8000``); see ``origin.app`` for its routes."""

from origin.app import make_app

__all__ = ["make_app"]
