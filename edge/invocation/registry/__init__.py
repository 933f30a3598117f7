"""The function registry: SQLite records of functions, versions, aliases, layers and concurrency settings,
the content-addressed code store, deployment packages, and the in-memory resolution cache."""
