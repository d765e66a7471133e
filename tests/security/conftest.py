"""Fixtures for the security suite: the API suite's three principals, empty cache and problem() helper."""

from tests.api.conftest import Api, _fresh_cache, outsider, problem, reader, writer

__all__ = ["Api", "_fresh_cache", "outsider", "problem", "reader", "writer"]
