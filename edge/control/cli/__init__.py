"""The ``edgelab`` command line."""
