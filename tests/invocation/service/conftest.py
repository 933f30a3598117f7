"""Fixtures of the service tests: ``service`` (a LambdaService over a recording fake executor) and ``code_dir``,
defined next to the tests that introduced them (test_service.py) and shared with the other modules here."""

from tests.invocation.service.test_service import code_dir, service

__all__ = ["code_dir", "service"]
