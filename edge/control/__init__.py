"""The control plane: Lambda-compatible REST API, admin API, CLI, supervisor and dashboard."""
