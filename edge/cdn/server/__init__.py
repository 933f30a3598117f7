"""Serving a POP: the viewer-facing server and its runner, wire serialisation of responses, the admin app."""
