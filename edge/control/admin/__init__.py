"""The stack's admin API under ``/edgelab/v1`` and the dashboard at ``/edgelab/``."""
